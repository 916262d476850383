//! Published on-demand list prices, and what metered usage costs at them.
//!
//! Region us-east-1 (N. Virginia), arm64 Lambda, S3 Standard, DynamoDB on-demand (Standard
//! table class, after its 2024-11-01 price cut), SNS and SQS standard. The figures are AWS's
//! published list prices as of 2025, checked on 2026-11-28 against public copies of the pricing
//! pages; free tiers are left out (they do not scale with documents).

use super::meter::{Invocations, Usage};

/// When and where the prices below were read.
pub const PRICES_AS_OF: &str =
    "us-east-1 on-demand list prices (AWS pricing pages; DynamoDB after its 2024-11-01 cut), checked 2026-11-28";

pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
pub const LAMBDA_PER_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
/// Lambda's platform lines per invocation (START, END, REPORT), ingested by CloudWatch Logs
/// when the function's `SystemLogLevel` is INFO (Lambda's default) or DEBUG; at WARN, which
/// intake's template sets, Lambda sends none of them.
pub const LAMBDA_PLATFORM_LOG_BYTES: u64 = 260;

/// The platform's log bytes per invocation for a function's `SystemLogLevel`.
pub fn platform_log_bytes(system_log_level: Option<&str>) -> u64 {
    match system_log_level.map(str::to_ascii_uppercase).as_deref() {
        Some("WARN") => 0,
        _ => LAMBDA_PLATFORM_LOG_BYTES,
    }
}
/// A 128 MB function gets 128/1769 of a vCPU: its CPU time stretches by 1769/memory.
pub const MB_PER_VCPU: f64 = 1769.0;

pub const DYNAMODB_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
pub const DYNAMODB_PER_READ_UNIT: f64 = 0.125 / 1e6;
pub const DYNAMODB_PER_GB_MONTH: f64 = 0.25;

/// PUT, COPY, POST, LIST.
pub const S3_TIER1_PER_REQUEST: f64 = 0.005 / 1000.0;
/// GET, HEAD and the rest (DELETE is free).
pub const S3_TIER2_PER_REQUEST: f64 = 0.0004 / 1000.0;
pub const S3_PER_GB_MONTH: f64 = 0.023;

/// Per 64 KiB chunk published (deliveries to Lambda and SQS are free).
pub const SNS_PER_REQUEST: f64 = 0.50 / 1e6;
/// Per 64 KiB chunk.
pub const SQS_PER_REQUEST: f64 = 0.40 / 1e6;
pub const KMS_PER_REQUEST: f64 = 0.03 / 10_000.0;
pub const LOGS_PER_GB_INGESTED: f64 = 0.50;
/// SES receiving: per message, and per 256 KiB chunk of it.
pub const SES_PER_MAIL: f64 = 0.10 / 1000.0;
pub const SES_PER_CHUNK: f64 = 0.09 / 1000.0;
/// The load balancer's LCUs, per GB processed (the dimension a document upload moves) and per
/// new connection (25 per second make one LCU).
pub const ALB_PER_GB: f64 = 0.008;
pub const ALB_PER_CONNECTION: f64 = 0.008 / (25.0 * 3600.0);

/// GuardDuty Malware Protection for S3: per GB scanned and per object scanned (the pricing
/// page's worked example for US East; docs/research/guardduty-malware-protection.md §7).
pub const GUARDDUTY_S3_PER_GB: f64 = 0.09;
pub const GUARDDUTY_S3_PER_OBJECT: f64 = 0.215 / 1000.0;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What one metered line costs: (service as billed, dollars).
pub fn call_cost(service: &str, operation: &str, u: &Usage) -> (&'static str, f64) {
    match service {
        "dynamodb" => (
            "DynamoDB",
            u.write_units * DYNAMODB_PER_WRITE_UNIT + u.read_units * DYNAMODB_PER_READ_UNIT,
        ),
        "s3" => {
            let per = match operation {
                "PutObject" | "CopyObject" | "PostObject" | "ListObjects" | "ListObjectVersions" => {
                    S3_TIER1_PER_REQUEST
                }
                "DeleteObject" => 0.0,
                _ => S3_TIER2_PER_REQUEST,
            };
            ("S3 requests", u.billed_requests as f64 * per)
        }
        "sns" => ("SNS", u.billed_requests as f64 * SNS_PER_REQUEST),
        "sqs" => ("SQS", u.billed_requests as f64 * SQS_PER_REQUEST),
        "kms" => ("KMS", u.requests as f64 * KMS_PER_REQUEST),
        "ses" => (
            "SES",
            u.billed_requests as f64 * SES_PER_CHUNK + u.requests as f64 * SES_PER_MAIL,
        ),
        "guardduty" => (
            "GuardDuty malware scans",
            u.requests as f64 * GUARDDUTY_S3_PER_OBJECT + u.request_bytes as f64 / GB * GUARDDUTY_S3_PER_GB,
        ),
        "alb" => (
            "ALB (LCU)",
            u.request_bytes as f64 / GB * ALB_PER_GB + u.requests as f64 * ALB_PER_CONNECTION,
        ),
        _ => ("other", 0.0),
    }
}

/// Lambda for one function: requests, and GB-seconds from `billed_ms`.
pub fn lambda_cost(inv: &Invocations, billed_ms: u64) -> f64 {
    inv.count as f64 * LAMBDA_PER_REQUEST
        + billed_ms as f64 / 1000.0 * (f64::from(inv.memory_mb) / 1024.0) * LAMBDA_PER_GB_SECOND_ARM64
}

/// CloudWatch Logs ingestion for one function: its own lines and the platform's
/// (`platform_bytes` per invocation, from [`platform_log_bytes`]).
pub fn logs_cost(inv: &Invocations, platform_bytes: u64) -> f64 {
    (inv.log_bytes + inv.count * platform_bytes) as f64 / GB * LOGS_PER_GB_INGESTED
}

/// A month of `bytes` in S3 Standard.
pub fn s3_storage_month(bytes: f64) -> f64 {
    bytes / GB * S3_PER_GB_MONTH
}

/// A month of `bytes` in DynamoDB.
pub fn dynamodb_storage_month(bytes: f64) -> f64 {
    bytes / GB * DYNAMODB_PER_GB_MONTH
}

/// What a function waits for an AWS call, in milliseconds: typical in-region latencies (the
/// local AWS answers slower, so measured wall time would overstate what Lambda bills).
pub fn call_latency_ms(service: &str, operation: &str) -> f64 {
    match (service, operation) {
        ("dynamodb", "TransactWriteItems") => 12.0,
        ("dynamodb", _) => 5.0,
        ("s3", "PutObject" | "CopyObject") => 30.0,
        ("s3", _) => 15.0,
        ("sns" | "sqs", _) => 10.0,
        ("kms", _) => 5.0,
        _ => 0.0,
    }
}

/// Billed milliseconds from CPU time: a function with `memory_mb` runs at memory/1769 of a
/// vCPU, so `cpu_ms` of work takes cpu_ms × 1769/memory of billed time (at least 1 ms).
pub fn cpu_derived_ms(cpu_ms: f64, memory_mb: u32) -> f64 {
    (cpu_ms * MB_PER_VCPU / f64::from(memory_mb)).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_classes_and_units_are_priced_as_published() {
        let u = Usage {
            requests: 1000,
            billed_requests: 1000,
            ..Usage::default()
        };
        assert_eq!(call_cost("s3", "PutObject", &u).1, 0.005);
        assert!((call_cost("s3", "GetObject", &u).1 - 0.0004).abs() < 1e-12);
        assert_eq!(call_cost("s3", "DeleteObject", &u).1, 0.0);
        let w = Usage {
            write_units: 1e6,
            read_units: 1e6,
            ..Usage::default()
        };
        assert!((call_cost("dynamodb", "PutItem", &w).1 - 0.75).abs() < 1e-9);
        let inv = Invocations {
            count: 1_000_000,
            memory_mb: 128,
            ..Invocations::default()
        };
        // A thousand scans of 1 MiB each: $0.215 for the objects, $0.088 for the GB.
        let scans = Usage {
            requests: 1000,
            request_bytes: 1000 << 20,
            ..Usage::default()
        };
        assert!((call_cost("guardduty", "MalwareScan", &scans).1 - (0.215 + 0.09 * 1000.0 / 1024.0)).abs() < 1e-9);
        // A million 1 ms invocations at 128 MB: $0.20 of requests and $0.0017 of GB-s.
        assert!((lambda_cost(&inv, 1_000_000) - 0.201_666_7).abs() < 1e-6);
    }
}
