//! Objects too large for the s3 function. Cataloguing reads every byte once to hash it, and a
//! 128 MB function gets 7% of a CPU: about 40 MiB/s, so its 120 s end near 5 GiB (docs/uploads.md,
//! "The largest object"). An object whose event says it is larger than the threshold is not
//! read there: its arrival is handed, as a [`Job::CatalogueLarge`] on a queue of its own, to a
//! function with a whole vCPU and Lambda's 15 minutes, which catalogues it the same way
//! ([`super::Cataloguer::catalogue`]: same claims, same conditional writes, same outcome).
//!
//! The hand-off is one queue message, sent before anything is read or written; sending it
//! twice (a redelivered event) catalogues once, as a redelivered event always does. If the
//! message cannot be sent, the s3 function fails the record and Lambda retries it.

use std::time::Duration;

use super::Arrival;
use crate::jobs::Job;
use crate::ports::{Revision, WorkQueue};
use crate::{Error, ObjectKey};

/// The default threshold (`LARGE_OBJECT_BYTES`): 2 GiB, under half of what the s3 function
/// hashes within its time at its share of a CPU.
pub const LARGE_OBJECT_BYTES_DEFAULT: u64 = 2 << 30;

/// Where objects over `threshold` bytes are catalogued instead: the large-object queue.
#[derive(Debug, Clone)]
pub struct LargeObjects<Q> {
    pub threshold: u64,
    pub queue: Q,
}

impl<Q: WorkQueue> LargeObjects<Q> {
    /// Whether an object of `size` bytes (as its event reports it) goes to the large-object
    /// path. An event that states no size is catalogued where it arrived.
    pub fn is_large(&self, size: Option<u64>) -> bool {
        size.is_some_and(|s| s > self.threshold)
    }

    /// Hands the arrival to the large-object path if it is large; `true` if it did. An error
    /// means the hand-off was not made (the caller retries the record).
    pub async fn hand_off(&self, arrival: &Arrival, size: Option<u64>) -> Result<bool, Error> {
        let Some(size) = size.filter(|_| self.is_large(size)) else {
            return Ok(false);
        };
        self.queue
            .schedule(&Job::catalogue_large(arrival, size), Duration::ZERO)
            .await?;
        Ok(true)
    }
}

impl Job {
    /// The job that catalogues `arrival` on the large-object path.
    pub fn catalogue_large(arrival: &Arrival, size: u64) -> Job {
        Job::CatalogueLarge {
            key: arrival.key.as_str().to_owned(),
            event_time: arrival.event_time,
            sequencer: arrival.sequencer.clone(),
            version_id: arrival.revision.version_id.clone(),
            etag: arrival.revision.etag.clone(),
            size,
        }
    }
}

/// The arrival a [`Job::CatalogueLarge`] carries (`None` for other jobs); its key is checked
/// as the event's was.
pub fn handed_off(job: &Job) -> Option<Result<Arrival, Error>> {
    let Job::CatalogueLarge {
        key,
        event_time,
        sequencer,
        version_id,
        etag,
        ..
    } = job
    else {
        return None;
    };
    Some(ObjectKey::parse(key).map_err(Error::from).map(|key| Arrival {
        key,
        event_time: *event_time,
        sequencer: sequencer.clone(),
        revision: Revision {
            version_id: version_id.clone(),
            etag: etag.clone(),
        },
    }))
}
