//! Webhooks people can rely on: Standard Webhooks v1 signatures, durable deliveries retried on
//! a schedule of about three days, a delivery log, replays, and endpoints that disable
//! themselves when they are gone.
//!
//! Two steps, two functions:
//!
//! 1. [`Fanout`] (the sns function): for each of the owner's webhooks that wants the event, a
//!    [`DeliveryRecord`] is opened in the catalog (once per event and hook, however often the
//!    event arrives) holding the exact body to send, and a [`Job::DeliverWebhook`] is queued.
//! 2. [`Deliverer`] (the webhook function, on that queue): claims the record, signs and POSTs,
//!    records the attempt. A failure answers how long to wait ([`Outcome::RetryIn`]): the job
//!    goes back to the queue delayed (at most 15 minutes per hop: a job that comes back early
//!    is answered "not yet" and sent on again), so the schedule survives restarts and no retry
//!    waits in flight; the record says what happened and when the next attempt is.
//!    `410 Gone` disables the endpoint; so does a delivery that failed its whole schedule. The
//!    owner sees why (`disabled`), re-enables it, and replays what was missed.
//!
//! Signing (<https://www.standardwebhooks.com>): `webhook-id` is the event id (the same on
//! every retry and replay: receivers de-duplicate on it), `webhook-timestamp` the unix time of
//! the attempt, `webhook-signature` a space-separated list of `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, one per secret that signs (two during a rotation).

mod breaker;
mod deliverer;
mod fanout;
mod notice;
mod registry;
mod schedule;
mod signing;

pub use crate::domain::delivery::{Attempt, DeliveryPage, DeliveryRecord, DeliveryStatus};
pub use breaker::{Admit, Attempted, BreakerPolicy, Breakers};
pub use deliverer::{DEADLINE_MARGIN, Deliverer, MIN_POST_TIME, Outcome};
pub use fanout::{Fanned, Fanout};
pub use notice::open_disabled_notice;
pub use registry::{NewWebhook, ROTATION_GRACE, Registry, Replay, Replayed, WebhookPatch};
pub use schedule::{Schedule, human};
pub use signing::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};
