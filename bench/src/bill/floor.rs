//! The floor: what the same documents would cost in the smallest design that still keeps
//! intake's promises, priced with the same prices, so the report can say how far above it the
//! measured bill is.
//!
//! Per document: the one request that brings its bytes in (the HTTP door's PUT, the client's
//! presigned POST or drop, SES's mail PUT and one PUT per attachment), one GET to hash it (no
//! copy: the object is the blob), one catalogue write (1 KiB item, in the owner index: 2 WRU)
//! and one content claim (1 WRU, a 0.5 RRU look first); the HTTP door's `received` record
//! (2 WRU) before the bytes. Per status change or edit: the catalogue write (2 WRU) and one SNS
//! message. Per webhook delivery: one queued job (a send, a tenth of a receive and of a delete:
//! batches of ten) and one delivery record (1 WRU). Lambda: one invocation for each door call,
//! each document catalogued, each delivery and each mail, plus one per hundred changes on the
//! stream; each 1 ms of work plus the typical latency of its calls. One 200-byte log line per
//! invocation plus the platform's. SES, storage and the load balancer as measured (they do not
//! depend on the design).

use std::collections::BTreeMap;

use super::pricing::*;
use super::{Bill, Measured};

/// The floor's bill per million documents, by service.
pub fn floor(m: &Measured) -> Bill {
    let docs = m.documents.max(1) as f64;
    let s = &m.sent;
    let http = (s.uploads + s.large) as f64;
    let events = docs + (s.renamed + s.deleted) as f64;
    let hooks_per_owner = 1.0;
    let deliveries = events * hooks_per_owner;

    // Requests per document kind, then per million documents.
    // One PUT (or POST) per document, attachments included, and SES's PUT of each mail.
    let s3_tier1 = docs + s.mails as f64;
    let s3_tier2 = docs; // the GET that hashes it
    let write_units = docs * (2.0 + 1.0) + http * 2.0 + (s.renamed + s.deleted) as f64 * 2.0 + deliveries * 1.0;
    let read_units = docs * 0.5;
    let sns = events;
    let sqs = deliveries * 1.2;
    let invocations = http + docs + deliveries + s.mails as f64 + events / 100.0;
    // Each invocation: 1 ms of work plus the latency of its calls (a PUT or GET, a write).
    let calls_ms = http * (30.0 + 5.0) + docs * (15.0 + 12.0) + deliveries * (5.0 + 10.0) + s.mails as f64 * 30.0;
    let billed_ms = invocations * 1.0 + calls_ms;
    // Lambda's own lines per invocation as the invoked functions have them (none at
    // SystemLogLevel WARN).
    let (mut platform_bytes, mut counted) = (0.0, 0.0);
    for (function, inv) in &m.invocations {
        let per = m
            .platform_log_bytes
            .get(function)
            .copied()
            .unwrap_or(LAMBDA_PLATFORM_LOG_BYTES);
        platform_bytes += (per * inv.count) as f64;
        counted += inv.count as f64;
    }
    let platform = if counted > 0.0 {
        platform_bytes / counted
    } else {
        LAMBDA_PLATFORM_LOG_BYTES as f64
    };
    let logs_bytes = invocations * (200.0 + platform);

    let scale = 1e6 / docs;
    let mut by_service: BTreeMap<&'static str, f64> = BTreeMap::new();
    by_service.insert(
        "DynamoDB",
        (write_units * DYNAMODB_PER_WRITE_UNIT + read_units * DYNAMODB_PER_READ_UNIT) * scale,
    );
    by_service.insert(
        "S3 requests",
        (s3_tier1 * S3_TIER1_PER_REQUEST + s3_tier2 * S3_TIER2_PER_REQUEST) * scale,
    );
    by_service.insert("SNS", sns * SNS_PER_REQUEST * scale);
    by_service.insert("SQS", sqs * SQS_PER_REQUEST * scale);
    by_service.insert(
        "Lambda",
        (invocations * LAMBDA_PER_REQUEST + billed_ms / 1000.0 * (128.0 / 1024.0) * LAMBDA_PER_GB_SECOND_ARM64) * scale,
    );
    by_service.insert(
        "CloudWatch Logs",
        logs_bytes / (1024.0 * 1024.0 * 1024.0) * LOGS_PER_GB_INGESTED * scale,
    );
    // What does not depend on the design: as measured.
    let measured = super::price(m);
    for line in [
        "SES",
        "S3 storage (a month)",
        "DynamoDB storage (a month)",
        "ALB (LCU)",
        "KMS",
        // One scan per distinct content is what the gate needs (a plan on `blobs/`).
        "GuardDuty malware scans",
    ] {
        if let Some(d) = measured.by_service.get(line) {
            by_service.insert(line, *d);
        }
    }
    let total = by_service.values().sum();
    Bill {
        by_service,
        by_caller: BTreeMap::new(),
        lambda_cpu_only: 0.0,
        lambda_wall: 0.0,
        total,
    }
}
