//! A circuit breaker per endpoint: an endpoint that keeps failing stops costing the webhook
//! function its time.
//!
//! A dead endpoint that answers slowly (a timeout per POST) holds one of the function's
//! concurrent deliveries for the whole timeout, every time one of its deliveries is due; with
//! enough of them, every owner's deliveries wait behind it. So:
//! - an endpoint whose last attempt failed slowly (no answer within half the timeout) is
//!   *suspect*: one POST to it at a time, the other deliveries due meanwhile go back to the
//!   queue for a while (a bulkhead: a batch full of a dead endpoint's retries holds one POST,
//!   not eight). A fast failure (a 503 at once) costs nothing and does not limit it;
//! - after [`BreakerPolicy::slow_threshold`] slow failures in a row, or
//!   [`BreakerPolicy::threshold`] failures in a row over at least [`BreakerPolicy::quiet`]
//!   without an answer (fast failures are cheap, and an endpoint that answers some attempts,
//!   such as a busy one that fails first attempts and takes retries, is not shut out), its
//!   circuit opens: its deliveries are not
//!   attempted (no read, no POST, no attempt spent from their schedule) but sent back to the
//!   queue until the circuit lets one through again, after a cool-down that doubles while the
//!   endpoint stays down. That one delivery is the probe: an answer closes the circuit, a
//!   failure opens it again.
//!
//! The state is the function's own memory (each concurrent instance learns on its own): no
//! write per failure, no shared item to contend on. What a dead endpoint costs is a few POSTs
//! per instance, then one per cool-down. A healthy endpoint is not limited.
//!
//! What it does not spare: the onset. Until an instance has seen an endpoint fail, its
//! deliveries go out as any others, and a batch holding one that hangs lasts the POST's
//! timeout (10 s); each instance learns this once per dead endpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use crate::WebhookId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Failures in a row that open the circuit.
    pub threshold: u32,
    /// Slow failures in a row (no answer within half the POST's timeout) that open it.
    pub slow_threshold: u32,
    /// How long a delivery to a suspect endpoint waits while another POST to it is in flight.
    pub busy_wait: Duration,
    /// Fast failures open the circuit only once they have gone on this long without an answer.
    pub quiet: Duration,
    /// How long the circuit stays open the first time.
    pub cool_down: Duration,
    /// The longest it stays open (the cool-down doubles each time a probe fails).
    pub longest: Duration,
    /// How long a probe may take before another delivery may probe instead (one whose
    /// holder died or gave up before the POST).
    pub probe_lease: Duration,
    /// Endpoints remembered at most (when full, those idle and healthy are forgotten first).
    pub capacity: usize,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            slow_threshold: 2,
            busy_wait: Duration::from_secs(5),
            quiet: Duration::from_secs(60),
            cool_down: Duration::from_secs(30),
            longest: Duration::from_secs(600),
            probe_lease: Duration::from_secs(90),
            capacity: 10_000,
        }
    }
}

/// What the breaker says about a delivery to an endpoint now. `Go` and `Probe` count as a
/// POST in flight until [`Breakers::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Attempt it.
    Go,
    /// Attempt it: it is the probe of an open circuit.
    Probe,
    /// Do not attempt it: the circuit is open, or the endpoint is suspect and busy, for about
    /// this long yet.
    Wait(Duration),
}

impl Admit {
    /// `Wait`'s duration, if it is one.
    pub fn wait(&self) -> Option<Duration> {
        match self {
            Admit::Wait(d) => Some(*d),
            _ => None,
        }
    }
}

/// How an attempt went, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    /// The endpoint answered (any status but 5xx and 429).
    Answered,
    /// No answer, 5xx or 429.
    Failed,
    /// Failed, and took at least half the POST's timeout.
    Slow,
}

#[derive(Debug, Clone, Default)]
struct Circuit {
    /// Failures in a row.
    failures: u32,
    /// Slow failures in a row.
    slow: u32,
    /// Attempts admitted and not finished.
    in_flight: u32,
    /// Times the circuit opened without an answer in between.
    openings: u32,
    open_until: Option<OffsetDateTime>,
    probe_until: Option<OffsetDateTime>,
    /// When the failures in a row began.
    failing_since: Option<OffsetDateTime>,
}

impl Circuit {
    /// Nothing in flight and nothing failing: forgotten first when memory is full.
    fn idle_and_healthy(&self) -> bool {
        self.in_flight == 0 && self.failures == 0 && self.open_until.is_none()
    }
}

/// Circuit breakers of the endpoints this instance delivers to.
#[derive(Debug, Default)]
pub struct Breakers {
    pub policy: BreakerPolicy,
    circuits: Mutex<HashMap<WebhookId, Circuit>>,
}

impl Breakers {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            circuits: Mutex::default(),
        }
    }

    fn circuits(&self) -> std::sync::MutexGuard<'_, HashMap<WebhookId, Circuit>> {
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a delivery to `hook` be attempted at `now`? `Go` and `Probe` must be followed by
    /// [`Breakers::finish`] (after [`Breakers::record`] if a POST was made).
    pub fn admit(&self, hook: &WebhookId, now: OffsetDateTime) -> Admit {
        let mut circuits = self.circuits();
        if !circuits.contains_key(hook) && circuits.len() >= self.policy.capacity {
            circuits.retain(|_, c| !c.idle_and_healthy());
        }
        if !circuits.contains_key(hook) && circuits.len() >= self.policy.capacity {
            // Full of endpoints in use or failing: this one goes untracked.
            return Admit::Go;
        }
        let circuit = circuits.entry(*hook).or_default();
        match circuit.open_until {
            None if circuit.slow == 0 => {
                circuit.in_flight += 1;
                Admit::Go
            }
            // Suspect (its last attempt failed slowly) and busy: back to the queue a while.
            None if circuit.in_flight > 0 => Admit::Wait(self.policy.busy_wait),
            None => {
                circuit.in_flight += 1;
                Admit::Go
            }
            Some(open_until) if now < open_until => Admit::Wait(to_std(open_until - now)),
            Some(_) => {
                if let Some(probe_until) = circuit.probe_until.filter(|until| now < *until) {
                    // Another delivery is probing: look again when its answer is due.
                    return Admit::Wait(to_std(probe_until - now).min(self.policy.cool_down));
                }
                circuit.probe_until = Some(now + self.policy.probe_lease);
                circuit.in_flight += 1;
                Admit::Probe
            }
        }
    }

    /// What an attempt to `hook` got. Returns the cool-down when this failure opened the
    /// circuit.
    pub fn record(&self, hook: &WebhookId, attempted: Attempted, now: OffsetDateTime) -> Option<Duration> {
        let mut circuits = self.circuits();
        let Some(circuit) = circuits.get_mut(hook) else {
            // Untracked (memory full): attempted as if no breaker were there.
            return None;
        };
        if attempted == Attempted::Answered {
            *circuit = Circuit {
                in_flight: circuit.in_flight,
                ..Circuit::default()
            };
            return None;
        }
        circuit.failures += 1;
        circuit.slow = if attempted == Attempted::Slow {
            circuit.slow + 1
        } else {
            0
        };
        let since = *circuit.failing_since.get_or_insert(now);
        let probing = circuit.open_until.is_some_and(|until| now >= until);
        let quiet = time::Duration::try_from(self.policy.quiet).unwrap_or_default();
        let failing = circuit.failures >= self.policy.threshold && now - since >= quiet;
        if !failing && circuit.slow < self.policy.slow_threshold && !probing {
            return None;
        }
        let doublings = circuit.openings.min(16);
        let cool_down = self
            .policy
            .cool_down
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.policy.longest);
        circuit.openings += 1;
        circuit.open_until = Some(now + cool_down);
        circuit.probe_until = None;
        Some(cool_down)
    }

    /// An admitted delivery is over (whether or not it made its POST): one fewer in flight;
    /// if it was the probe and made none, another may probe at once.
    pub fn finish(&self, hook: &WebhookId, probe: bool) {
        let mut circuits = self.circuits();
        let Some(circuit) = circuits.get_mut(hook) else {
            return;
        };
        circuit.in_flight = circuit.in_flight.saturating_sub(1);
        if probe {
            circuit.probe_until = None;
        }
    }

    /// Endpoints whose circuit is open at `now`.
    pub fn open(&self, now: OffsetDateTime) -> usize {
        self.circuits()
            .values()
            .filter(|c| c.open_until.is_some_and(|until| now < until))
            .count()
    }
}

fn to_std(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(n: u8) -> WebhookId {
        format!("01M9535AYMR154VS0AYD76D9K{}", (b'A' + n) as char)
            .parse()
            .unwrap()
    }

    const T0: OffsetDateTime = time::macros::datetime!(2026-12-06 10:00 UTC);

    /// One whole attempt: admitted, recorded, finished. `None` if it was not admitted.
    fn attempt(b: &Breakers, h: &WebhookId, how: Attempted, now: OffsetDateTime) -> Option<Option<Duration>> {
        let admit = b.admit(h, now);
        if !matches!(admit, Admit::Go | Admit::Probe) {
            return None;
        }
        let opened = b.record(h, how, now);
        b.finish(h, matches!(admit, Admit::Probe));
        Some(opened)
    }

    #[test]
    fn an_endpoint_that_keeps_failing_is_paused_and_probed_with_a_growing_cool_down() {
        let b = Breakers::default();
        let (a, other) = (hook(0), hook(1));
        // Fast failures (a 503 at once) cost little: many in a row do not open it, nor limit it...
        for _ in 0..10 {
            assert_eq!(attempt(&b, &a, Attempted::Failed, T0), Some(None));
        }
        assert!(matches!(b.admit(&a, T0), Admit::Go));
        b.finish(&a, false);
        // ... failing for a minute without an answer does.
        let t0 = T0 + Duration::from_secs(60);
        assert_eq!(
            attempt(&b, &a, Attempted::Failed, t0),
            Some(Some(Duration::from_secs(30)))
        );
        assert_eq!(b.admit(&a, t0).wait(), Some(Duration::from_secs(30)));
        assert!(
            matches!(b.admit(&other, t0), Admit::Go),
            "other endpoints are not affected"
        );
        b.finish(&other, false);
        assert_eq!(b.open(t0), 1);

        // After the cool-down, one delivery probes; the others wait for its answer.
        let t1 = t0 + Duration::from_secs(30);
        assert!(matches!(b.admit(&a, t1), Admit::Probe));
        assert_eq!(b.admit(&a, t1).wait(), Some(Duration::from_secs(30)));
        // The probe fails: open again, twice as long.
        assert_eq!(b.record(&a, Attempted::Failed, t1), Some(Duration::from_secs(60)));
        b.finish(&a, true);
        assert_eq!(
            b.admit(&a, t1 + Duration::from_secs(59)).wait(),
            Some(Duration::from_secs(1))
        );
        let t2 = t1 + Duration::from_secs(60);
        assert!(matches!(b.admit(&a, t2), Admit::Probe));
        // The probe is answered: closed.
        assert_eq!(b.record(&a, Attempted::Answered, t2), None);
        b.finish(&a, true);
        assert_eq!(b.open(t2), 0);
        assert!(b.circuits()[&a].idle_and_healthy());
        // A busy endpoint that fails first attempts and answers retries is never shut out.
        let mut now = t2;
        for _ in 0..20 {
            for _ in 0..6 {
                assert_eq!(attempt(&b, &a, Attempted::Failed, now), Some(None));
            }
            now += Duration::from_secs(20);
            assert_eq!(attempt(&b, &a, Attempted::Answered, now), Some(None));
        }
        assert_eq!(b.open(now), 0);
    }

    #[test]
    fn a_slow_dead_endpoint_opens_sooner_and_a_suspect_one_gets_one_post_at_a_time() {
        let b = Breakers::default();
        let a = hook(0);
        // Healthy: any number of POSTs at once.
        for _ in 0..8 {
            assert!(matches!(b.admit(&a, T0), Admit::Go));
        }
        // They all time out. The first slow failure makes it suspect: one POST at a time,
        // the others back to the queue; the second slow failure opens the circuit.
        assert_eq!(b.record(&a, Attempted::Slow, T0), None);
        b.finish(&a, false);
        assert_eq!(b.admit(&a, T0).wait(), Some(Duration::from_secs(5)), "suspect and busy");
        assert_eq!(b.record(&a, Attempted::Slow, T0), Some(Duration::from_secs(30)));
        for _ in 0..7 {
            b.finish(&a, false);
        }
        assert!(b.admit(&a, T0).wait().is_some());
        // A fast failure between slow ones resets the slow count.
        let c = hook(2);
        assert_eq!(attempt(&b, &c, Attempted::Slow, T0), Some(None));
        assert_eq!(attempt(&b, &c, Attempted::Failed, T0), Some(None));
        assert!(matches!(b.admit(&c, T0), Admit::Go), "a fast failure does not limit it");
        assert!(matches!(b.admit(&c, T0), Admit::Go));
        b.finish(&c, false);
        b.finish(&c, false);
        assert_eq!(attempt(&b, &c, Attempted::Slow, T0), Some(None));
        // Suspect and idle: one POST goes, the next waits in the queue.
        assert!(matches!(b.admit(&c, T0), Admit::Go));
        assert_eq!(b.admit(&c, T0).wait(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn the_cool_down_stops_growing_and_a_lost_probe_is_taken_over() {
        let b = Breakers::default();
        let a = hook(0);
        let mut now = T0;
        let mut last = Duration::ZERO;
        for _ in 0..2 {
            last = attempt(&b, &a, Attempted::Slow, now).unwrap().unwrap_or(last);
        }
        assert_eq!(last, Duration::from_secs(30));
        for _ in 0..10 {
            now += last;
            assert!(matches!(b.admit(&a, now), Admit::Probe));
            last = b
                .record(&a, Attempted::Slow, now)
                .expect("a failed probe opens it again");
            b.finish(&a, true);
        }
        assert_eq!(last, Duration::from_secs(600));

        // A probe whose holder died: another may probe once its lease is over.
        now += last;
        assert!(matches!(b.admit(&a, now), Admit::Probe));
        assert!(b.admit(&a, now + Duration::from_secs(89)).wait().is_some());
        assert!(matches!(b.admit(&a, now + Duration::from_secs(90)), Admit::Probe));
        // One that ended before its POST lets the next probe at once.
        b.finish(&a, true);
        assert!(matches!(b.admit(&a, now + Duration::from_secs(90)), Admit::Probe));
    }

    #[test]
    fn memory_is_bounded() {
        let b = Breakers::new(BreakerPolicy {
            capacity: 2,
            threshold: 1,
            quiet: Duration::ZERO,
            ..BreakerPolicy::default()
        });
        assert_eq!(attempt(&b, &hook(0), Attempted::Answered, T0), Some(None));
        assert_eq!(
            attempt(&b, &hook(1), Attempted::Failed, T0),
            Some(Some(Duration::from_secs(30)))
        );
        // Full: the idle healthy one is forgotten for the new one.
        assert_eq!(
            attempt(&b, &hook(2), Attempted::Failed, T0),
            Some(Some(Duration::from_secs(30)))
        );
        assert!(!b.circuits().contains_key(&hook(0)));
        // Full of open circuits: a new endpoint goes untracked.
        assert_eq!(attempt(&b, &hook(3), Attempted::Failed, T0), Some(None));
        assert!(matches!(b.admit(&hook(3), T0), Admit::Go));
        assert_eq!(b.open(T0), 2);
    }
}
