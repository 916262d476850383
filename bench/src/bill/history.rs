//! Earlier whole-bill measurements, kept so that each report shows what changed since: the
//! first measurement (issue 15), and the same code measured with release binaries, as deployed.
//! Figures per million documents, by service, copied from the reports they were measured in.

/// One earlier measurement.
pub struct Earlier {
    pub label: &'static str,
    pub by_service: &'static [(&'static str, f64)],
}

impl Earlier {
    pub fn total(&self) -> f64 {
        self.by_service.iter().map(|(_, d)| d).sum()
    }

    pub fn get(&self, service: &str) -> f64 {
        self.by_service
            .iter()
            .find(|(s, _)| *s == service)
            .map_or(0.0, |(_, d)| *d)
    }
}

/// The first measurement: commit 69516bf, debug binaries (bench/BILL.md of that commit).
pub const FIRST: Earlier = Earlier {
    label: "first (69516bf, debug binaries)",
    by_service: &[
        ("DynamoDB", 18.53),
        ("S3 requests", 9.815),
        ("SES", 9.744),
        ("Lambda", 2.965),
        ("CloudWatch Logs", 2.586),
        ("SQS", 1.149),
        ("S3 storage (a month)", 1.095),
        ("SNS", 0.577),
        ("KMS", 0.327),
        ("DynamoDB storage (a month)", 0.238),
        ("ALB (LCU)", 0.143),
    ],
};

/// The design of the first measurement with release binaries (commit ddb69d6): what the
/// binaries alone change (Lambda's CPU time), before any of the reductions.
pub const RELEASE_BEFORE: Earlier = Earlier {
    label: "before the reductions (ddb69d6, release binaries)",
    by_service: &[
        ("DynamoDB", 17.90),
        ("S3 requests", 9.655),
        ("SES", 9.744),
        ("Lambda", 1.405),
        ("CloudWatch Logs", 2.537),
        ("SQS", 1.087),
        ("S3 storage (a month)", 1.096),
        ("SNS", 0.577),
        ("KMS", 0.404),
        ("DynamoDB storage (a month)", 0.238),
        ("ALB (LCU)", 0.143),
    ],
};
