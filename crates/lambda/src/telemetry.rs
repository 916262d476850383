//! Logs: JSON lines on stdout (what CloudWatch and Lambda's JSON log format expect), each
//! carrying the invocation's span (request id; the X-Ray trace id when sampled; cold start). The level
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

/// The X-Ray trace header, if X-Ray samples the request (`Sampled=1`): an unsampled trace
/// has nothing to look up, so its id is not worth its bytes on every log line.
fn sampled(trace: Option<&str>) -> Option<&str> {
    trace.filter(|t| t.split(';').any(|part| part.trim() == "Sampled=1"))
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
    ];
    // The runtime's INFO span ("Lambda runtime invoke") is replaced by ours
    // ([`invocation_span`]); it and lambda_http log at their own level only when debugging.
    let runtime = if matches!(level.as_str(), "debug" | "trace") {
        level.as_str()
    } else {
        "warn"
    };
    std::iter::once("warn".to_owned())
        .chain(ours.iter().map(|c| format!("{c}={level}")))
        .chain(
            ["lambda_runtime", "lambda_http"]
                .iter()
                .map(|c| format!("{c}={runtime}")),
        )
        .collect::<Vec<_>>()
        .join(",")
}

/// A span for one invocation: the request id, the X-Ray trace id when X-Ray samples the
/// request (an unsampled trace has nothing to look up), and `cold_start: true` on the first
/// invocation of the process, which also counts a `ColdStarts` metric. It replaces the
/// runtime's own span (disabled in [`directives`]), which repeats the trace id on every line
/// whether sampled or not: log lines are billed per byte.
pub fn invocation_span(context: Option<&lambda_runtime::Context>) -> tracing::Span {
    let cold_start = COLD.swap(false, Ordering::Relaxed);
    if cold_start {
        let mut m = crate::metrics::Metrics::default();
        m.count("ColdStarts", 1);
        m.flush();
    }
    let span = tracing::info_span!(
        "invocation",
        requestId = context.map_or("", |c| c.request_id.as_str()),
        xrayTraceId = tracing::field::Empty,
        cold_start = tracing::field::Empty
    );
    if let Some(trace) = sampled(context.and_then(|c| c.xray_trace_id.as_deref())) {
        span.record("xrayTraceId", trace);
    }
    if cold_start {
        span.record("cold_start", true);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_logged_only_when_xray_samples_the_request() {
        let sampled_header = "Root=1-6b0a9a7f-f80e1dfb88306e82386ffbb7;Parent=386ffbb7f024a94c;Sampled=1";
        assert_eq!(sampled(Some(sampled_header)), Some(sampled_header));
        assert_eq!(
            sampled(Some(
                "Root=1-6b0a9a7f-f80e1dfb88306e82386ffbb7;Parent=386ffbb7f024a94c;Sampled=0"
            )),
            None
        );
        assert_eq!(sampled(Some("Root=1-6b0a9a7f-f80e1dfb88306e82386ffbb7")), None);
        assert_eq!(sampled(None), None);
    }

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
        assert!(
            directives("INFO").contains("lambda_runtime=warn"),
            "the runtime's span is ours"
        );
        assert!(directives("DEBUG").contains("lambda_runtime=debug"));
        assert!(EnvFilter::builder().parse(directives("info")).is_ok());
    }
}
