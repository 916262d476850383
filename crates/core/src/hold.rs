//! Legal holds: a held document cannot be deleted (by its owner, by retention), and its bytes
//! cannot be removed by anyone — not a sweep, not a person with access to the bucket.
//!
//! **Two records.** The document carries its hold ([`crate::LegalHold`]). The blob's ledger
//! record counts the held documents that use it (`holds`), moved in the same transaction as
//! the document ([`crate::ports::BlobRef::Hold`] / [`crate::ports::BlobRef::Unhold`]), as its
//! references are; a blob shared by several documents stays held while any of them is.
//!
//! **The store's lock.** The bytes are protected by the store itself: S3 Object Lock's legal
//! hold on the blob's object version, which refuses every delete of that version (the bucket's
//! lifecycle rules included) until it is lifted. The store's hold must follow the ledger's
//! count, but two documents sharing a blob can be held and released at once, and their calls
//! to the store could land in the other order than their ledger writes (an "on", then a late
//! "off"). So every change is followed by a sync ([`sync_legal_hold`]) that reads the count,
//! makes the store say the same, and reads the count again: if it moved meanwhile, it goes
//! round again. The last call to land was made by a sync that read the count after it landed
//! and found it unchanged (a change after that read starts a sync of its own, whose calls
//! land later), so the store ends as the ledger says. The versions the store may hold are
//! recorded in the ledger before the store is asked and again after (each note counted), and
//! a lift forgets them only if nothing was noted since it read them, so a lift always knows
//! what to lift. (The explorer found both needs: without the count, a release forgot a version
//! a concurrent hold had just turned on again, and a later release left it held.)
//! A sync that dies half-way is repaired by the next sync of that blob: the same request sent
//! again (hold and release are idempotent), or the next hold or release.

use time::OffsetDateTime;

use crate::ports::{BlobLedger, BlobRef, BlobStore, Documents, StoreError};
use crate::{Document, DocumentId, Error, Invalid, LegalHold, ObjectKey, Owner, Sha256, Status};

/// The longest reason a hold may give.
pub const MAX_REASON: usize = 500;

/// A hold's reason as given: trimmed, not empty, at most [`MAX_REASON`] characters, no
/// control characters.
pub fn reason(raw: &str) -> Result<String, Invalid> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(Invalid::new("reason", "a hold needs a reason"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(Invalid::new("reason", format!("at most {MAX_REASON} characters")));
    }
    if reason.chars().any(char::is_control) {
        return Err(Invalid::new("reason", "control characters are not allowed"));
    }
    Ok(reason.to_owned())
}

/// `owner`'s document, unless deleted: another owner's is not found, never forbidden (the
/// HTTP door's `Intake::get` too).
pub(crate) async fn owned<C: Documents>(catalog: &C, owner: &Owner, id: &DocumentId) -> Result<Document, Error> {
    match catalog.get_document(id).await? {
        Some(doc) if &doc.owner == owner && !doc.is_deleted() => Ok(doc),
        _ => Err(Error::NotFound("document")),
    }
}

/// Puts the document under a legal hold: it cannot be deleted while held, and its bytes are
/// held by the store. Only a document that has its bytes (accepted, or a duplicate) can be
/// held. Holding a held document again with another reason records the new reason; with the
/// same one it changes nothing. The answer comes once the store holds the bytes.
pub async fn hold<C: Documents + BlobLedger, B: BlobStore>(
    catalog: &C,
    blobs: &B,
    now: OffsetDateTime,
    owner: &Owner,
    id: &DocumentId,
    reason: &str,
    set_by: &str,
) -> Result<Document, Error> {
    let reason = self::reason(reason)?;
    for _ in 0..3 {
        let doc = owned(catalog, owner, id).await?;
        let sha = match (&doc.status, doc.sha256) {
            (Status::Accepted | Status::Duplicate { .. }, Some(sha)) => sha,
            (status, _) => {
                return Err(Error::Conflict(format!(
                    "only a document with its bytes (accepted or duplicate) can be held; this one is {}",
                    status.kind().as_str()
                )));
            }
        };
        let blob = match &doc.hold {
            Some(held) if held.reason == reason => {
                // Held already (perhaps by this request, whose answer was lost): make sure the
                // store agrees.
                sync_legal_hold(catalog, blobs, &sha).await?;
                return Ok(doc);
            }
            // A new reason: recorded; the count of held documents does not move.
            Some(_) => None,
            None => Some(BlobRef::Hold(sha)),
        };
        let expected = doc.version;
        let mut held = doc;
        held.hold = Some(LegalHold {
            reason: reason.clone(),
            set_by: set_by.to_owned(),
            set_at: now,
        });
        held.version += 1;
        held.updated_at = now;
        match catalog.replace_document(&held, expected, blob).await {
            Ok(()) => {
                sync_legal_hold(catalog, blobs, &sha).await?;
                return Ok(held);
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(
        "the document is being changed concurrently; retry".into(),
    ))
}

/// Lifts the document's legal hold (lifting one that is not there succeeds). The store lets
/// go of the bytes once no document using them is held.
pub async fn release<C: Documents + BlobLedger, B: BlobStore>(
    catalog: &C,
    blobs: &B,
    now: OffsetDateTime,
    owner: &Owner,
    id: &DocumentId,
) -> Result<Document, Error> {
    for _ in 0..3 {
        let doc = owned(catalog, owner, id).await?;
        let Some(sha) = doc.sha256 else {
            return Ok(doc);
        };
        if doc.hold.is_none() {
            // Perhaps lifted by this request, whose answer was lost: make sure the store agrees.
            sync_legal_hold(catalog, blobs, &sha).await?;
            return Ok(doc);
        }
        let expected = doc.version;
        let mut released = doc;
        released.hold = None;
        released.version += 1;
        released.updated_at = now;
        match catalog
            .replace_document(&released, expected, Some(BlobRef::Unhold(sha)))
            .await
        {
            Ok(()) => {
                sync_legal_hold(catalog, blobs, &sha).await?;
                return Ok(released);
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(
        "the document is being changed concurrently; retry".into(),
    ))
}

/// Makes the store's legal holds on the blob's versions follow the ledger's count of held
/// documents (see the module's documentation). Returns whether the blob is held now.
pub async fn sync_legal_hold<L: BlobLedger, B: BlobStore>(ledger: &L, blobs: &B, sha: &Sha256) -> Result<bool, Error> {
    let key = ObjectKey::blob(sha);
    let Some(mut state) = ledger.hold_state(sha).await? else {
        return Ok(false);
    };
    // The versions this sync asked the store to hold: if the count then drops to zero, they
    // are lifted with the recorded ones.
    let mut touched: Vec<String> = Vec::new();
    for _ in 0..8 {
        let held = state.holds > 0;
        if held {
            // The version documents read now, and any held before (the same bytes: a hold is
            // only lifted when no document using them is held).
            let mut versions = state.held_versions.clone();
            match blobs.head(&key, None).await?.and_then(|info| info.revision.version_id) {
                Some(current) if !versions.contains(&current) => versions.push(current),
                Some(_) => {}
                None if versions.is_empty() => {
                    return Err(Error::Unavailable(format!(
                        "blob {sha} has no object version to hold (is the bucket versioned?)"
                    )));
                }
                None => {}
            }
            // Recorded before the store is asked, and again after: a release that lifted
            // them while they were being held finds its forgetting refused (a note came
            // after its read), or loses to this second note.
            ledger.note_held_versions(sha, &versions).await?;
            for version in &versions {
                if !touched.contains(version) {
                    touched.push(version.clone());
                }
                blobs.set_legal_hold(&key, version, true).await?;
            }
            ledger.note_held_versions(sha, &versions).await?;
        } else {
            let mut versions = state.held_versions.clone();
            versions.extend(touched.iter().filter(|v| !state.held_versions.contains(v)).cloned());
            for version in &versions {
                blobs.set_legal_hold(&key, version, false).await?;
            }
            touched.clear();
            if !ledger.forget_held_versions(sha, &versions, state.noted).await? {
                // Held again meanwhile: look again.
                match ledger.hold_state(sha).await? {
                    Some(again) => {
                        state = again;
                        continue;
                    }
                    None => return Ok(false),
                }
            }
        }
        match ledger.hold_state(sha).await? {
            Some(again) if (again.holds > 0) != held => state = again,
            _ => return Ok(held),
        }
    }
    Err(Error::Conflict(format!(
        "the legal holds of blob {sha} kept changing; retry"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_bounded_and_plain_text() {
        assert_eq!(reason("  case 2026-114 ").unwrap(), "case 2026-114");
        assert!(reason("   ").is_err());
        assert!(reason(&"x".repeat(MAX_REASON + 1)).is_err());
        assert!(reason(&"é".repeat(MAX_REASON)).is_ok());
        assert!(reason("a\u{0}b").is_err());
    }
}
