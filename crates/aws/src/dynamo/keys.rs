//! Every key of the table, built here and nowhere else (the layout: [`crate::schema`]).

use intake_core::{DocumentId, MessageId, Owner, Sha256, TokenHash, WebhookId};

/// A primary key: partition and sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: &str) -> Self {
        Self { pk, sk: sk.to_owned() }
    }

    pub fn document(id: &DocumentId) -> Self {
        Self::new(format!("DOC#{id}"), "DOC")
    }

    pub fn idempotency(owner: &Owner, key: &str) -> Self {
        Self::new(format!("IDEM#{owner}#{key}"), "IDEM")
    }

    pub fn token(hash: &TokenHash) -> Self {
        Self::new(format!("TOKEN#{hash}"), "TOKEN")
    }

    pub fn webhook(id: &WebhookId) -> Self {
        Self::new(format!("WEBHOOK#{id}"), "WEBHOOK")
    }

    /// A webhook's delivery slots in one second (its rate limit): `RATE#<id>`, sorted by the
    /// second (unix time); each item expires a minute later.
    pub fn delivery_slots(id: &WebhookId, second: i64) -> Self {
        Self::new(format!("RATE#{id}"), &second.to_string())
    }

    /// One shard of an owner's counters, each its own partition key (DynamoDB spreads
    /// partition keys, not an item collection's sort keys): shard 0 is `STATS#<owner>`, where
    /// the single counter item was kept before the counters were sharded; shard `n` is
    /// `STATS#<owner>#<n>` (an owner name has no `#`).
    pub fn stats(owner: &Owner, shard: u8) -> Self {
        match shard {
            0 => Self::new(format!("STATS#{owner}"), "STATS"),
            n => Self::new(format!("STATS#{owner}#{n}"), "STATS"),
        }
    }

    /// An owner's claim on a digest: which of their documents holds these bytes.
    pub fn content(owner: &Owner, sha: &Sha256) -> Self {
        Self::new(format!("CONTENT#{owner}#{sha}"), "CONTENT")
    }

    pub fn mail(message: &MessageId) -> Self {
        Self::new(format!("MAIL#{message}"), "MAIL")
    }

    /// A blob's ledger record: its references and sweep state.
    pub fn blob(sha: &Sha256) -> Self {
        Self::new(format!("BLOB#{sha}"), "BLOB")
    }

    /// The malware scan's verdict on content (`SCAN#<sha>`): the verdict that stands, and when
    /// a scan was last asked for.
    pub fn scan(sha: &Sha256) -> Self {
        Self::new(format!("SCAN#{sha}"), "SCAN")
    }

    /// A document waiting for its content's verdict: in the verdict's partition, so that one
    /// query finds every waiter.
    pub fn scan_wait(sha: &Sha256, doc: &DocumentId) -> Self {
        Self {
            pk: format!("SCAN#{sha}"),
            sk: format!("WAIT#{doc}"),
        }
    }

    /// An owner's quota item: its counters (documents per day, bytes, uploads in flight) and
    /// its overrides of the policy's limits. One item, so that one conditional write checks
    /// every limit.
    pub fn quota(owner: &Owner) -> Self {
        Self::new(format!("QUOTA#{owner}"), "QUOTA")
    }

    /// When a document's retention period ends: the table's TTL removes it then.
    pub fn retention(id: &DocumentId) -> Self {
        Self::new(format!("RETAIN#{id}"), "RETAIN")
    }

    /// The marker that makes a stream record count once in the statistics.
    pub fn applied(record_id: &str) -> Self {
        Self::new(format!("APPLIED#{record_id}"), "APPLIED")
    }

    pub fn delivery(event_id: &str, hook: &WebhookId) -> Self {
        Self::new(format!("DELIVERY#{event_id}#{hook}"), "DELIVERY")
    }
}

/// Items an owner lists through `gsi1`: documents, tokens, webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owned {
    Document,
    Token,
    Webhook,
}

impl Owned {
    /// The sort key of the item, and the `<KIND>` of `OWNER#<owner>#<KIND>`.
    pub fn kind(self) -> &'static str {
        match self {
            Owned::Document => "DOC",
            Owned::Token => "TOKEN",
            Owned::Webhook => "WEBHOOK",
        }
    }

    /// `entity`: what the item is, for people reading the table.
    pub fn entity(self) -> &'static str {
        match self {
            Owned::Document => "document",
            Owned::Token => "token",
            Owned::Webhook => "webhook",
        }
    }

    /// The `gsi1` partition listing this kind of item of `owner` (documents: the first of
    /// their [`DOCUMENT_SHARDS`], see [`document_partition`]).
    pub fn partition(self, owner: &Owner) -> String {
        format!("OWNER#{owner}#{}", self.kind())
    }
}

/// How many `gsi1` partitions an owner's documents are spread over. One partition takes at
/// most 1,000 write units a second, and each document writes its listing entry two or three
/// times (received, scanning, decided): one partition would cap an owner near 200 documents
/// a second. A listing reads every shard (in parallel) and merges them.
pub(crate) const DOCUMENT_SHARDS: u32 = 8;

/// The `gsi1` partition of a document: `OWNER#<owner>#DOC` for shard 0 (where every document
/// was listed before the listing was sharded), `OWNER#<owner>#DOC#<n>` for shard `n`, the
/// shard a fixed hash of the id (FNV-1a, never to change: it places stored items).
pub(crate) fn document_partition(owner: &Owner, id: &DocumentId) -> String {
    let hash = id
        .to_string()
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    match hash % DOCUMENT_SHARDS {
        0 => Owned::Document.partition(owner),
        n => format!("{}#{n}", Owned::Document.partition(owner)),
    }
}

/// Every `gsi1` partition an owner's documents may be listed in.
pub(crate) fn document_partitions(owner: &Owner) -> Vec<String> {
    (0..DOCUMENT_SHARDS)
        .map(|n| match n {
            0 => Owned::Document.partition(owner),
            n => format!("{}#{n}", Owned::Document.partition(owner)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let owner: Owner = "acme".parse().unwrap();
        let sha = Sha256::of(b"x");
        assert_eq!(Key::content(&owner, &sha).pk, format!("CONTENT#acme#{sha}"));
        assert_eq!(Key::blob(&sha).sk, "BLOB");
        assert_eq!(Key::applied("r1").pk, "APPLIED#r1");
        assert_eq!(Owned::Document.partition(&owner), "OWNER#acme#DOC");
        assert_eq!(Key::stats(&owner, 0), Key::new("STATS#acme".into(), "STATS"));
        let partitions = document_partitions(&owner);
        assert_eq!(
            partitions[0], "OWNER#acme#DOC",
            "shard 0 is where documents were listed before"
        );
        assert_eq!(partitions[7], "OWNER#acme#DOC#7");
        let id = DocumentId::from_parts(time::macros::datetime!(2026-12-06 10:00 UTC), 42);
        assert_eq!(document_partition(&owner, &id), document_partition(&owner, &id));
        assert!(partitions.contains(&document_partition(&owner, &id)));
        assert_eq!(Key::stats(&owner, 3), Key::new("STATS#acme#3".into(), "STATS"));
    }

    #[test]
    fn documents_spread_evenly_over_the_listing_shards() {
        let owner: Owner = "acme".parse().unwrap();
        let mut per_shard = std::collections::HashMap::new();
        for n in 0..8_000u128 {
            let id = DocumentId::from_parts(time::macros::datetime!(2026-12-06 10:00 UTC), n * 7919);
            *per_shard.entry(document_partition(&owner, &id)).or_insert(0) += 1;
        }
        assert_eq!(per_shard.len(), DOCUMENT_SHARDS as usize);
        assert!(per_shard.values().all(|n| (800..1200).contains(n)), "{per_shard:?}");
    }
}
