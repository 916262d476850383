//! Logs: JSON lines on stdout (what CloudWatch and Lambda's JSON log format expect), each
//! carrying the runtime's span (request id, X-Ray trace id) and ours (cold start). The level
//! comes from `AWS_LAMBDA_LOG_LEVEL` (set by the template's logging config) or `RUST_LOG`.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

static COLD: AtomicBool = AtomicBool::new(true);

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(level.to_ascii_lowercase());
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests) keeps the first subscriber.
    let _ = if text {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    };
}

/// A span for one invocation; `cold_start` is true for the first one of the process, which
/// also counts a `ColdStarts` metric.
pub fn invocation_span() -> tracing::Span {
    let cold_start = COLD.swap(false, Ordering::Relaxed);
    if cold_start {
        let mut m = crate::metrics::Metrics::default();
        m.count("ColdStarts", 1);
        m.flush();
    }
    tracing::info_span!("invocation", cold_start)
}
