//! The payloads: stream batches, ALB events, small documents and large files.

use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use intake_core::ports::{ByteStream, StoreError};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::common::STREAM_BATCH;

/// The first `n` records of the 1,000-record sample batch, as an event.
pub(super) fn stream_batch(records: usize) -> Result<Bytes, String> {
    let raw: Value = serde_json::from_slice(&std::fs::read(STREAM_BATCH).map_err(|e| format!("{STREAM_BATCH}: {e}"))?)
        .map_err(|e| e.to_string())?;
    let all = raw["Records"].as_array().ok_or("no Records")?;
    let some: Vec<Value> = all.iter().take(records).cloned().collect();
    Ok(Bytes::from(json!({ "Records": some }).to_string()))
}

/// An ALB event as the load balancer sends it.
pub(super) fn alb_event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Bytes {
    let mut h = serde_json::Map::new();
    for (k, v) in [
        ("host", "intake-bench.example.com"),
        ("x-forwarded-for", "203.0.113.10"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
        ("user-agent", "intake-bench"),
    ]
    .iter()
    .chain(headers)
    {
        h.insert((*k).into(), Value::String((*v).into()));
    }
    let q: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).into(), Value::String((*v).into())))
        .collect();
    Bytes::from(
        json!({
            "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/intake-bench/0000000000000000" } },
            "httpMethod": method,
            "path": path,
            "queryStringParameters": q,
            "headers": h,
            "body": body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)).unwrap_or_default(),
            "isBase64Encoded": body.is_some(),
        })
        .to_string(),
    )
}

/// `n` distinct small "PDF" files of `size` bytes.
pub(super) fn small_pdf(n: usize, size: usize) -> Vec<u8> {
    let mut body = format!("%PDF-1.7\n% intake-bench document {n}\n").into_bytes();
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
    while body.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.push(b'a' + (state % 26) as u8);
    }
    body
}

/// A file of `mib` MiB starting with a PDF header, filled with pseudo-random bytes (so nothing
/// downstream can take a shortcut on repeated content).
pub(super) fn make_file(path: &Path, mib: u64) -> std::io::Result<()> {
    use std::io::Write;
    if path.metadata().is_ok_and(|m| m.len() == mib << 20) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        if i == 0 {
            block[..9].copy_from_slice(b"%PDF-1.7\n");
        }
        f.write_all(&block)?;
    }
    f.flush()
}

/// The file as the s3 function sees an object: a stream of chunks (64 KiB, like a socket read).
pub(super) async fn file_stream(path: &Path) -> std::io::Result<ByteStream> {
    let file = tokio::fs::File::open(path).await?;
    Ok(Box::pin(futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(StoreError::Unavailable(e.to_string())), None)),
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_documents_are_distinct_pdfs_of_the_size_asked() {
        let (a, b) = (small_pdf(1, 8192), small_pdf(2, 8192));
        assert_eq!((a.len(), b.len()), (8192, 8192));
        assert!(a.starts_with(b"%PDF-1.7\n"));
        assert_ne!(a, b);
    }

    #[test]
    fn alb_events_carry_the_body_in_base64() {
        let event: Value = serde_json::from_slice(&alb_event(
            "POST",
            "/v1/documents",
            &[("name", "a.pdf")],
            &[],
            Some(b"%PDF"),
        ))
        .unwrap();
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "JVBERg==");
        assert_eq!(event["queryStringParameters"]["name"], "a.pdf");
        assert_eq!(event["headers"]["x-forwarded-proto"], "https");
    }
}
