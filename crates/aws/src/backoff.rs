//! Pauses between attempts of a write that met concurrent writes: exponential, capped, with
//! full jitter (a random pause up to the bound), so that writers that collided once do not
//! collide again in step.

use std::time::Duration;

/// The bound of the first pause; it doubles with each attempt.
const BASE: Duration = Duration::from_millis(20);
/// The largest bound.
const CAP: Duration = Duration::from_millis(1_000);

/// A pause before attempt `attempt` (1 for the first retry): uniform in `[0, min(CAP, BASE·2^attempt))`.
pub(crate) fn jittered(attempt: u32) -> Duration {
    let bound = bound(attempt);
    let random = getrandom::u64().unwrap_or(u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(random % nanos)
}

fn bound(attempt: u32) -> Duration {
    BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_cap_and_stay_under_their_bound() {
        assert_eq!(bound(1), Duration::from_millis(40));
        assert_eq!(bound(5), Duration::from_millis(640));
        assert_eq!(bound(6), CAP);
        assert_eq!(bound(40), CAP);
        for attempt in 1..10 {
            assert!(jittered(attempt) < bound(attempt));
        }
    }

    #[test]
    fn pauses_are_not_in_step() {
        let pauses: std::collections::BTreeSet<Duration> = (0..20).map(|_| jittered(6)).collect();
        assert!(pauses.len() > 10, "{pauses:?}");
    }
}
