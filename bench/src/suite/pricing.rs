//! What the measured CPU time costs on Lambda, at its list prices.

use std::collections::HashMap;

use super::common::MEMORY_MB;
use crate::report::{Report, us};

// Lambda's prices and CPU share are declared once, with the whole bill's.
use crate::bill::pricing::{
    LAMBDA_PER_GB_SECOND_ARM64 as PRICE_PER_GB_SECOND_ARM64, LAMBDA_PER_REQUEST as PRICE_PER_REQUEST, MB_PER_VCPU,
};

/// What one invocation costs on Lambda at 128 MB arm64, if it is CPU-bound: its CPU time
/// stretched to the 128 MB CPU share, billed by the millisecond (at least 1 ms).
fn invocation_cost(cpu_us: f64) -> (f64, f64) {
    let billed_ms = (cpu_us / 1e3 * MB_PER_VCPU / MEMORY_MB).ceil().max(1.0);
    let cost = PRICE_PER_REQUEST + billed_ms / 1e3 * (MEMORY_MB / 1024.0) * PRICE_PER_GB_SECOND_ARM64;
    (billed_ms, cost)
}

pub(super) fn cost_section(r: &mut Report, costs: &HashMap<&'static str, f64>) {
    r.heading(2, "Cost per million documents (Lambda at 128 MB, arm64)");
    r.para(&format!(
        "From the CPU time per invocation measured above. Assumptions: at 128 MB a function gets {MEMORY_MB}/{MB_PER_VCPU} \
         of a vCPU, so its duration is its CPU time x {:.1} (CPU-bound); a Graviton core is as fast as this \
         machine's; billing is per 1 ms, at least 1 ms; ${:.2} per million requests and ${PRICE_PER_GB_SECOND_ARM64} \
         per GB-s. Time spent waiting on AWS APIs is not counted (it is billed too, and depends on the region's \
         latency, not on the code); nor are the S3, DynamoDB and SNS charges. A document comes through the HTTP \
         door (8 KiB), makes 3 stream records (arrived, its content claimed, accepted), handled in batches of 100, \
         and one event, for which the sns function queues one webhook delivery (the webhooks function's sending \
         it is not in this table). The whole bill, every function and every AWS request priced, is \
         [BILL.md](BILL.md).",
        MB_PER_VCPU / MEMORY_MB,
        PRICE_PER_REQUEST * 1e6,
    ));
    let stages: [(&str, &str, f64); 4] = [
        ("`AlbFunction` `POST /v1/documents`", "alb-post", 1.0),
        ("`S3Function` on the upload", "s3-8k", 1.0),
        ("`DynamoDbStreamFunction`, batch of 100", "stream-100", 3.0 / 100.0),
        ("`SnsFunction`, one webhook delivery queued", "sns", 1.0),
    ];
    let mut rows = Vec::new();
    let mut total = 0.0;
    for (label, key, per_doc) in stages {
        let Some(&cpu) = costs.get(key) else { continue };
        let (billed, cost) = invocation_cost(cpu);
        total += cost * per_doc * 1e6;
        rows.push(vec![
            label.into(),
            format!("{per_doc}"),
            us(cpu),
            format!("{billed:.0} ms"),
            format!("${:.4}", cost * per_doc * 1e6),
        ]);
    }
    rows.push(vec![
        "**total**".into(),
        String::new(),
        String::new(),
        String::new(),
        format!("**${total:.4}**"),
    ]);
    r.table(
        &[
            "stage",
            "invocations per document",
            "CPU per invocation",
            "billed per invocation",
            "per million documents",
        ],
        &rows,
    );
    let requests: f64 = stages
        .iter()
        .filter(|(_, key, _)| costs.contains_key(key))
        .map(|(_, _, per_doc)| per_doc * PRICE_PER_REQUEST * 1e6)
        .sum();
    r.para(&format!(
        "Of the ${total:.4}, ${requests:.4} ({:.0}%) is the per-request charge: at these durations compute is the \
         smaller part, so fewer invocations (batching) saves more than faster code.",
        requests / total * 100.0
    ));
    if let (Some(&ours), Some(&py)) = (costs.get("stream-100"), costs.get("python-stream-100")) {
        let (ob, oc) = invocation_cost(ours);
        let (pb, pc) = invocation_cost(py);
        r.para(&format!(
            "The same stage with the Python peer: {} CPU per 100-record batch, {pb:.0} ms billed, ${:.4} per million \
             documents, against intake's {} ({ob:.0} ms billed, ${:.4}).",
            us(py),
            pc * 0.03 * 1e6,
            us(ours),
            oc * 0.03 * 1e6
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_billed_its_cpu_time_stretched_to_the_128_mb_share_by_the_millisecond() {
        // 1 ms of CPU at 128/1769 of a vCPU is 13.8 ms: 14 ms billed.
        let (billed, cost) = invocation_cost(1_000.0);
        assert_eq!(billed, 14.0);
        let expected = 0.20 / 1e6 + 0.014 * (128.0 / 1024.0) * 0.000_013_333_4;
        assert!((cost - expected).abs() < 1e-15, "{cost} vs {expected}");
        // Never less than 1 ms.
        assert_eq!(invocation_cost(1.0).0, 1.0);
    }
}
