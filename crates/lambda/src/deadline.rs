//! Every invocation ends before Lambda's deadline, with an answer: the handler runs within the
//! time the invocation has left, less a margin in which the runtime reports what happened. A
//! handler cut short fails like any other error (its work is safe to repeat), instead of being
//! killed mid-log by Lambda's timeout.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

/// Kept back from the deadline for reporting the outcome.
pub const MARGIN: Duration = Duration::from_millis(500);

/// The invocation ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("the invocation ran out of time ({budget:?} were left for it); it will be retried")]
pub struct OutOfTime {
    pub budget: Duration,
}

impl From<OutOfTime> for lambda_runtime::Diagnostic {
    fn from(e: OutOfTime) -> Self {
        Self {
            error_type: "Intake.OutOfTime".into(),
            error_message: e.to_string(),
        }
    }
}

/// When the work of an invocation must be done by: its deadline less [`MARGIN`], as an
/// `Instant` (a deadline already past gives now).
pub fn instant(deadline: SystemTime) -> Instant {
    let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    Instant::now() + left.saturating_sub(MARGIN)
}

/// Runs `work` until `until` at the latest.
pub async fn within<T>(until: Instant, work: impl Future<Output = T>) -> Result<T, OutOfTime> {
    let budget = until.saturating_duration_since(Instant::now());
    tokio::time::timeout_at(until.into(), work)
        .await
        .map_err(|_| OutOfTime { budget })
}

/// Runs a handler's `work` until `until`; its error, or running out of time, is what the
/// runtime reports (logged here, with the invocation's span).
pub async fn bounded<T, E: Into<lambda_runtime::Diagnostic>>(
    until: Instant,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, lambda_runtime::Diagnostic> {
    match within(until, work).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(e.into()),
        Err(out_of_time) => {
            tracing::error!(error = %out_of_time, "stopped before the deadline");
            Err(out_of_time.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_the_deadline_is_cut_short_with_an_error() {
        let until = instant(SystemTime::now() + MARGIN + Duration::from_millis(50));
        let slow = within(until, tokio::time::sleep(Duration::from_secs(5))).await;
        assert!(slow.is_err());
        let quick = within(instant(SystemTime::now() + Duration::from_secs(5)), async { 7 }).await;
        assert_eq!(quick.unwrap(), 7);
        // A deadline already past leaves no time at all.
        assert!(instant(SystemTime::now() - Duration::from_secs(1)) <= Instant::now());
    }
}
