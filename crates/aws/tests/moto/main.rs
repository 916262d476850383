//! The adapters against a real S3/DynamoDB API (moto): the same contracts as the in-memory
//! ports, plus what only a real service shows (conditional writes, presigned URLs, paging).
//! One test binary, a module per area: the catalog's documents, what belongs to an owner
//! (tokens, webhooks, statistics), blobs, uploads (presigned and through the HTTP door), the
//! s3 and ses functions' use cases, and the ports that announce events.

mod announcing;
mod blobs;
mod documents;
mod owners;
mod pipeline;
mod scans;
mod uploads;

use std::sync::Arc;

use intake_core::{Document, DocumentId, FileName, Policy, Rejection, RejectionCode, Sha256, Source, Status, Tags};
use time::OffsetDateTime;

/// A document of `owner` created at `at`, its id made of `at` and `n`: tagged `even` when `n`
/// is even, rejected when `n` is a multiple of 3, else received.
pub(crate) fn doc(owner: &str, at: OffsetDateTime, n: u128) -> Document {
    Document {
        id: DocumentId::from_parts(at, n),
        owner: owner.parse().unwrap(),
        name: FileName::sanitize("Ünïcødé report.pdf").unwrap(),
        declared_type: Some("application/pdf".parse().unwrap()),
        content_type: None,
        size: Some(12),
        sha256: Some(Sha256::of(b"x")),
        tags: Tags::parse(if n.is_multiple_of(2) { vec!["even"] } else { vec![] }).unwrap(),
        source: Source::Email {
            sender: "a@b.c".into(),
            subject: Some("hi".into()),
            message_id: "m1".into(),
        },
        status: if n.is_multiple_of(3) {
            Status::Rejected {
                rejection: Rejection {
                    code: RejectionCode::TooLarge,
                    message: "big".into(),
                },
            }
        } else {
            Status::Received
        },
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

/// The intake policy the functions ship with.
pub(crate) fn policy() -> Arc<Policy> {
    Arc::new(intake_core::testing::ungated_policy(intake_testkit::POLICY))
}
