//! Domain events: what subscribers learn about documents. The dynamodb-stream function turns
//! catalog changes into events ([`classify`]) and keeps per-owner statistics ([`stat_deltas`]);
//! the sns function delivers them to webhooks.
//!
//! The JSON schema is versioned (`version`); the event id is the stream record's id, so a
//! replayed record yields the same event and subscribers can de-duplicate on it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Document, EventType, Owner, Status, StatusKind};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub version: u32,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub owner: Owner,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub document: Document,
    /// The status before the change, if the document existed.
    pub previous_status: Option<StatusKind>,
}

/// A change of one document, as the table's stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The stream record's id: unique per change, the same when the record is replayed.
    pub record_id: String,
    pub old: Option<Document>,
    pub new: Option<Document>,
    pub at: OffsetDateTime,
}

/// The event a change is, if subscribers care about it. Arriving (`received`) and hard removal
/// (TTL, operators) are not announced; a document whose status did not change is `updated` only
/// when its name or tags did.
pub fn classify(change: &Change) -> Option<EventType> {
    let new = change.new.as_ref()?;
    let old_kind = change.old.as_ref().map(|d| d.status.kind());
    let new_kind = new.status.kind();
    if old_kind == Some(new_kind) {
        let old = change.old.as_ref()?;
        // A rename, a retag, a legal hold set or lifted.
        return (old.name != new.name || old.tags != new.tags || old.hold != new.hold)
            .then_some(EventType::DocumentUpdated);
    }
    match new.status {
        // Arriving, and waiting for the malware scan: not decided yet.
        Status::Received | Status::Scanning => None,
        Status::Accepted => Some(EventType::DocumentAccepted),
        Status::Duplicate { .. } => Some(EventType::DocumentDuplicate),
        Status::Rejected { .. } => Some(EventType::DocumentRejected),
        Status::Quarantined { .. } => Some(EventType::DocumentQuarantined),
        Status::Failed { .. } => Some(EventType::DocumentFailed),
        Status::Deleted { .. } => Some(EventType::DocumentDeleted),
    }
}

pub fn event_for(change: &Change) -> Option<DomainEvent> {
    let event_type = classify(change)?;
    let document = change.new.clone()?;
    Some(DomainEvent {
        version: SCHEMA_VERSION,
        id: change.record_id.clone(),
        event_type,
        owner: document.owner.clone(),
        occurred_at: change.at,
        previous_status: change.old.as_ref().map(|d| d.status.kind()),
        document,
    })
}

/// How one change moves an owner's counters: (status, documents, bytes), negative for what
/// leaves a status. Statistics count documents by their current status.
pub fn stat_deltas(change: &Change) -> Vec<(StatusKind, i64, i64)> {
    let bytes = |d: &Document| d.size.unwrap_or(0) as i64;
    let mut deltas = Vec::new();
    match (&change.old, &change.new) {
        (Some(old), Some(new)) if old.status.kind() == new.status.kind() => {
            if bytes(old) != bytes(new) {
                deltas.push((new.status.kind(), 0, bytes(new) - bytes(old)));
            }
        }
        (old, new) => {
            if let Some(old) = old {
                deltas.push((old.status.kind(), -1, -bytes(old)));
            }
            if let Some(new) = new {
                deltas.push((new.status.kind(), 1, bytes(new)));
            }
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DocumentId, FileName, Rejection, RejectionCode, Sha256, Source, Tags};
    use time::macros::datetime;

    fn doc(status: Status) -> Document {
        let at = datetime!(2026-11-27 10:00 UTC);
        Document {
            id: DocumentId::from_parts(at, 1),
            owner: "acme".parse().unwrap(),
            name: FileName::sanitize("a.pdf").unwrap(),
            declared_type: None,
            content_type: None,
            size: Some(100),
            sha256: Some(Sha256::of(b"a")),
            tags: Tags::default(),
            source: Source::Http,
            status,
            created_at: at,
            updated_at: at,
            version: 1,
            upload_deadline: None,
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        }
    }

    fn change(old: Option<Status>, new: Option<Status>) -> Change {
        Change {
            record_id: "r1".into(),
            old: old.map(doc),
            new: new.map(doc),
            at: datetime!(2026-11-27 10:00 UTC),
        }
    }

    #[test]
    fn status_transitions_become_events() {
        let rejected = Status::Rejected {
            rejection: Rejection {
                code: RejectionCode::Empty,
                message: "empty".into(),
            },
        };
        let deleted = Status::Deleted {
            deleted_at: datetime!(2026-11-27 11:00 UTC),
            reason: None,
        };
        assert_eq!(classify(&change(None, Some(Status::Received))), None);
        assert_eq!(
            classify(&change(Some(Status::Received), Some(Status::Accepted))),
            Some(EventType::DocumentAccepted)
        );
        assert_eq!(
            classify(&change(None, Some(Status::Accepted))),
            Some(EventType::DocumentAccepted)
        );
        assert_eq!(
            classify(&change(None, Some(rejected))),
            Some(EventType::DocumentRejected)
        );
        assert_eq!(
            classify(&change(Some(Status::Accepted), Some(deleted))),
            Some(EventType::DocumentDeleted)
        );
        assert_eq!(classify(&change(Some(Status::Accepted), None)), None);
        assert_eq!(classify(&change(Some(Status::Accepted), Some(Status::Accepted))), None);
    }

    #[test]
    fn renames_and_retags_are_updates() {
        let mut c = change(Some(Status::Accepted), Some(Status::Accepted));
        c.new.as_mut().unwrap().tags = Tags::parse(["x"]).unwrap();
        let event = event_for(&c).unwrap();
        assert_eq!(event.event_type, EventType::DocumentUpdated);
        assert_eq!(event.id, "r1");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "document.updated");
        assert_eq!(json["version"], 1);
        assert_eq!(serde_json::from_value::<DomainEvent>(json).unwrap(), event);
    }

    #[test]
    fn a_legal_hold_set_or_lifted_is_an_update() {
        let mut c = change(Some(Status::Accepted), Some(Status::Accepted));
        c.new.as_mut().unwrap().hold = Some(crate::LegalHold {
            reason: "case".into(),
            set_by: "tok".into(),
            set_at: time::macros::datetime!(2026-12-06 10:00 UTC),
        });
        assert_eq!(event_for(&c).unwrap().event_type, EventType::DocumentUpdated);
        let lifted = Change {
            old: c.new.clone(),
            new: c.old.clone(),
            ..c
        };
        assert_eq!(event_for(&lifted).unwrap().event_type, EventType::DocumentUpdated);
    }

    #[test]
    fn statistics_move_documents_between_statuses() {
        assert_eq!(
            stat_deltas(&change(None, Some(Status::Received))),
            vec![(StatusKind::Received, 1, 100)]
        );
        assert_eq!(
            stat_deltas(&change(Some(Status::Received), Some(Status::Accepted))),
            vec![(StatusKind::Received, -1, -100), (StatusKind::Accepted, 1, 100)]
        );
        assert_eq!(
            stat_deltas(&change(Some(Status::Accepted), Some(Status::Accepted))),
            vec![]
        );
    }
}
