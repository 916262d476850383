//! Logs: JSON lines on stdout (what CloudWatch and Lambda's JSON log format expect), each
//! carrying the runtime's span (request id, X-Ray trace id) and ours (cold start). The level
//! comes from `AWS_LAMBDA_LOG_LEVEL` (set by the template's logging config) and applies to
//! intake's own code; libraries (the AWS SDK, hyper, rustls) log warnings and errors only, as
//! their debug lines would be most of a DEBUG log's volume (CloudWatch bills per GB). `RUST_LOG`
//! (full `EnvFilter` syntax) overrides both.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

static COLD: AtomicBool = AtomicBool::new(true);

pub fn init() {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_else(|_| "info".into());
        directives(&level)
    });
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(directives);
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

/// `level` for intake's crates (and the Lambda runtime's span), `warn` for everything else.
fn directives(level: &str) -> String {
    let level = match level.to_ascii_lowercase().as_str() {
        l @ ("trace" | "debug" | "info" | "warn" | "error") => l.to_owned(),
        "fatal" => "error".into(),
        _ => "info".into(),
    };
    let ours = [
        "intake_core",
        "intake_aws",
        "intake_lambda",
        "intake_alb",
        "intake_s3",
        "intake_ses",
        "intake_dynamodb_stream",
        "intake_sns",
        "intake_sqs",
        "intake_webhooks",
        "lambda_runtime",
        "lambda_http",
    ];
    std::iter::once("warn".to_owned())
        .chain(ours.iter().map(|c| format!("{c}={level}")))
        .collect::<Vec<_>>()
        .join(",")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_applies_to_intake_and_libraries_log_warnings_only() {
        let d = directives("DEBUG");
        assert!(d.starts_with("warn,"), "{d}");
        assert!(
            d.contains("intake_core=debug") && d.contains("intake_webhooks=debug"),
            "{d}"
        );
        assert!(directives("FATAL").contains("intake_alb=error"));
        assert!(directives("nonsense").contains("intake_alb=info"));
        assert!(EnvFilter::builder().parse(directives("info")).is_ok());
    }
}
