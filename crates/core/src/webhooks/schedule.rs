//! When a failed delivery is tried again: the retry schedule (about three days), and how a
//! duration is said to people.

use std::time::Duration;

/// When failed deliveries are tried again: the waits after the first attempt (which is made
/// at once), each with ±10% jitter. Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h) carried on at 10 hours to about three days: 12 attempts over 2 d 19 h 35 min.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub waits: Vec<Duration>,
    /// Jitter, as a fraction of each wait (0.1: ±10%).
    pub jitter: f64,
    /// The longest a wait may be (12 hours: what SQS can hide a message for, when a failure
    /// of ours keeps it; a retry's wait hops through the queue 15 minutes at a time).
    pub longest: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        let (s, m, h) = (1, 60, 3600);
        Self {
            waits: [
                5 * s,
                5 * m,
                30 * m,
                2 * h,
                5 * h,
                10 * h,
                10 * h,
                10 * h,
                10 * h,
                10 * h,
                10 * h,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.1,
            longest: Duration::from_secs(12 * h),
        }
    }
}

impl Schedule {
    /// How many attempts a delivery gets.
    pub fn attempts(&self) -> u32 {
        self.waits.len() as u32 + 1
    }

    /// The wait before attempt `made + 1`, after `made` failed attempts (`None`: no more),
    /// honouring a `Retry-After` longer than the schedule's wait. `random` picks the jitter.
    pub fn wait_after(&self, made: u32, retry_after: Option<Duration>, random: u64) -> Option<Duration> {
        let base = *self.waits.get(made.checked_sub(1)? as usize)?;
        let unit = (random % 10_001) as f64 / 10_000.0; // 0..=1
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        let jittered = Duration::from_secs_f64(base.as_secs_f64() * factor);
        Some(jittered.max(retry_after.unwrap_or_default()).min(self.longest))
    }

    /// The whole schedule, without jitter (for the docs and the owner).
    pub fn total(&self) -> Duration {
        self.waits.iter().sum()
    }
}

/// "2 d 19 h 35 min", "5 min", "12 s".
pub fn human(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, m) => format!("{d} d {h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_about_three_days_and_honours_retry_after() {
        let s = Schedule::default();
        assert_eq!(s.attempts(), 12);
        assert_eq!(human(time::Duration::try_from(s.total()).unwrap()), "2 d 19 h 35 min");
        // Without jitter (the middle of the range): the spec's waits.
        let mid = 5_000;
        assert_eq!(s.wait_after(0, None, mid), None, "the first attempt is not a retry");
        assert_eq!(s.wait_after(1, None, mid), Some(Duration::from_secs(5)));
        assert_eq!(s.wait_after(2, None, mid), Some(Duration::from_secs(300)));
        assert_eq!(s.wait_after(11, None, mid), Some(Duration::from_secs(36_000)));
        assert_eq!(s.wait_after(12, None, mid), None, "12 attempts, then it gives up");
        // Jitter stays within ±10%.
        assert_eq!(s.wait_after(3, None, 0), Some(Duration::from_secs(1620)));
        assert_eq!(s.wait_after(3, None, 10_000), Some(Duration::from_secs(1980)));
        // Retry-After wins when longer, and never beyond what SQS can hide a message for.
        assert_eq!(
            s.wait_after(1, Some(Duration::from_secs(120)), mid),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            s.wait_after(1, Some(Duration::from_secs(86_400)), mid),
            Some(Duration::from_secs(43_200))
        );
    }
}
