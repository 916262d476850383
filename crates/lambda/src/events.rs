//! Event records shared by more than one function, decoded into the core's terms: an S3
//! `ObjectCreated` record is what the s3 function catalogues and, when every retry failed,
//! what the deferred-work function records as failed.

use aws_lambda_events::event::s3::S3EventRecord;
use intake_core::ObjectKey;
use intake_core::ingest::Arrival;
use intake_core::ports::Revision;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

/// S3 event keys are URL-encoded form values: `+` for a space, `%XX` for other bytes.
pub fn decode_key(raw: &str) -> Option<String> {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The object a record reports, pinned to the write it reports (version id, ETag).
pub fn arrival(record: &S3EventRecord) -> Result<Arrival, String> {
    let raw = record.s3.object.key.as_deref().ok_or("the record has no object key")?;
    let key = decode_key(raw).ok_or_else(|| format!("key {raw:?} is not valid URL-encoded UTF-8"))?;
    let key = ObjectKey::parse(&key).map_err(|e| e.to_string())?;
    let nanos = record.event_time.timestamp_nanos_opt().unwrap_or_default();
    let event_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let object = &record.s3.object;
    Ok(Arrival {
        key,
        event_time,
        sequencer: object.sequencer.clone(),
        revision: Revision {
            // Unversioned buckets report no version id (or "null").
            version_id: object.version_id.clone().filter(|v| !v.is_empty() && v != "null"),
            etag: object
                .e_tag
                .as_deref()
                .map(|e| e.trim_matches('"').to_owned())
                .filter(|e| !e.is_empty()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            decode_key("incoming/acme/Q4+report.pdf").unwrap(),
            "incoming/acme/Q4 report.pdf"
        );
        assert_eq!(
            decode_key("incoming/acme/a%2Bb%20c.pdf").unwrap(),
            "incoming/acme/a+b c.pdf"
        );
        assert_eq!(
            decode_key("incoming/acme/%C3%9Cn%C3%AFc%C3%B8d%C3%A9.pdf").unwrap(),
            "incoming/acme/Ünïcødé.pdf"
        );
        assert!(decode_key("incoming/acme/%FF.pdf").is_none());
    }

    #[test]
    fn records_are_pinned_to_the_write_they_report() {
        let record: S3EventRecord = serde_json::from_value(serde_json::json!({
            "eventName": "ObjectCreated:Put", "eventTime": "2026-11-28T10:00:00.000Z",
            "userIdentity": {}, "requestParameters": {}, "responseElements": {},
            "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/acme/a+b.pdf", "size": 3,
                   "eTag": "abc", "versionId": "v1", "sequencer": "00"}}
        }))
        .unwrap();
        let a = arrival(&record).unwrap();
        assert_eq!(a.key.as_str(), "incoming/acme/a b.pdf");
        assert_eq!(a.revision.version_id.as_deref(), Some("v1"));
        assert_eq!(a.revision.etag.as_deref(), Some("abc"));
    }
}
