//! `intake upload`: a file of any size in parts (`/v1/multipart-uploads`), several at once,
//! each retried with backoff, resumed after the process is killed or the network drops.
//!
//! **Resume.** An upload is remembered in a state file in the cache directory, named by the
//! API's URL and the file (path, size, modification time): first its `Idempotency-Key` (before
//! the start is asked for, so a start whose answer was lost is asked for again with it and
//! answered with the same upload), then its id. A later run finds it, asks the API which parts
//! the store holds, and sends only the others; a file that changed since is a new upload. Once
//! the upload is complete the file is forgotten: uploading it again is a new upload (a
//! duplicate of the first).
//!
//! **Memory.** At most `parallel` parts are in memory at once (each read once, hashed, sent),
//! and never more than [`MEMORY_BUDGET`] bytes of them: large files (large parts) get fewer
//! parallel parts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use intake_core::contract::{ApiDocumentV1, PartRequestV1};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::api::{Api, Failure};
use crate::output::{Event, Reporter};

/// Parts in memory at once, at most.
pub const MEMORY_BUDGET: u64 = 256 << 20;
/// Attempts of one part before the upload gives up (the next run resumes it).
const ATTEMPTS: u32 = 6;

#[derive(Debug, Clone)]
pub struct Options {
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub content_type: Option<String>,
    pub parallel: usize,
    pub state_dir: PathBuf,
}

/// What a run keeps beside the file, to resume it.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    url: String,
    path: String,
    size: u64,
    modified: i128,
    /// This upload's Idempotency-Key: written before the start is asked for, so a start whose
    /// answer was lost is asked for again with it (and answered with the same upload).
    key: String,
    /// The upload's id, once started.
    id: Option<String>,
    sha256: String,
}

/// A key no other upload has (the clock's nanoseconds, the process, the file).
fn fresh_key(file_key: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{file_key}\n{now}\n{}", std::process::id());
    format!("cli-{}", hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..16]))
}

/// The name of a file's upload: the same for the same file at the same API, until it changes.
fn upload_key(api_url: &str, path: &Path, size: u64, modified: i128) -> String {
    let described = format!("{api_url}\n{}\n{size}\n{modified}", path.display());
    hex::encode(&sha2::Sha256::digest(described.as_bytes())[..16])
}

async fn sha256_of(path: &Path, reporter: &Reporter, file: &str, size: u64) -> Result<String, Failure> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    reporter.event(Event::Hashing { file, bytes: 0, size });
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        reporter.event(Event::Hashing {
            file,
            bytes: done,
            size,
        });
    }
    Ok(hex::encode(hasher.finalize()))
}

async fn read_part(path: &Path, offset: u64, len: u64) -> Result<bytes::Bytes, Failure> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| Failure::Other("part too large".into()))?];
    f.read_exact(&mut buf).await?;
    Ok(bytes::Bytes::from(buf))
}

/// An API call, tried again with backoff while it fails for a reason that passes.
async fn with_retries<T, F, Fut>(reporter: &Reporter, file: &str, number: u32, mut call: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                reporter.event(Event::Retry {
                    file,
                    number,
                    attempt,
                    error: &e.to_string(),
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(16));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// Sends one part with its presigned request; the answer is its ETag.
async fn put_part(http: &crate::http::Http, request: &PartRequestV1, body: bytes::Bytes) -> Result<String, Failure> {
    let length = body.len().to_string();
    let mut headers: Vec<(&str, &str)> = vec![("content-length", &length)];
    for (k, v) in &request.headers {
        // The length is the body's; the rest are signed and sent as given.
        if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
            headers.push((k, v));
        }
    }
    // Ten minutes, or longer for a large part on a slow line (128 KiB/s).
    let timeout = Duration::from_secs(600.max(body.len() as u64 / (128 << 10)));
    let answer = http
        .send(&request.method, &request.url, &headers, body, timeout)
        .await
        .map_err(Failure::Unreachable)?;
    if !(200..300).contains(&answer.status) {
        let text = String::from_utf8_lossy(&answer.body);
        let code = text
            .split("<Code>")
            .nth(1)
            .and_then(|s| s.split("</Code>").next())
            .unwrap_or("unexpected_answer")
            .to_owned();
        return Err(Failure::Api {
            status: answer.status,
            message: format!("the store refused part {}", request.number),
            code,
        });
    }
    answer
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Failure::Other("the store answered no ETag".into()))
}

/// Uploads one file, resuming an earlier run's upload of it if there is one. Returns the
/// document (still `received` until the pipeline has read it: `intake watch` follows it).
pub async fn upload(api: &Api, path: &Path, options: &Options, reporter: &Reporter) -> Result<ApiDocumentV1, Failure> {
    let file = path.display().to_string();
    let meta = tokio::fs::metadata(path).await?;
    if !meta.is_file() {
        return Err(Failure::Other(format!("{file}: not a file")));
    }
    let size = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let key = upload_key(&api.url, &absolute, size, modified);
    let state_path = options.state_dir.join(format!("{key}.json"));

    // An earlier run's upload of this very file, if the store still has it.
    let stored: Option<State> = tokio::fs::read_to_string(&state_path)
        .await
        .ok()
        .and_then(|text| serde_json::from_str::<State>(&text).ok())
        .filter(|s| s.size == size && s.modified == modified);
    // An earlier run's upload of this very file, if the store still has it.
    let mut resumed = None;
    if let Some(state) = &stored
        && let Some(id) = &state.id
    {
        match api.progress(id).await {
            Ok(progress) => resumed = Some((id.clone(), progress)),
            // Completed (the run was killed before it forgot the upload), or aborted or
            // expired: completing again tells which (it answers the same for a completed one).
            Err(Failure::Api { status: 409, .. }) => match api.complete(id).await {
                Ok(document) => {
                    let _ = tokio::fs::remove_file(&state_path).await;
                    return Ok(document);
                }
                Err(Failure::Api { status: 404 | 409, .. }) => {}
                Err(e) => return Err(e),
            },
            // Deleted: start again.
            Err(Failure::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (id, plan, missing, held) = match resumed {
        Some((id, progress)) => (id, progress.upload, progress.missing, progress.bytes_received),
        None => {
            // A start asked for before (its answer lost) is asked for again with its key.
            let (sha256, idempotency) = match stored.filter(|s| s.id.is_none()) {
                Some(state) => (state.sha256, state.key),
                None => (sha256_of(path, reporter, &file, size).await?, fresh_key(&key)),
            };
            let mut state = State {
                url: api.url.clone(),
                path: absolute.display().to_string(),
                size,
                modified,
                key: idempotency.clone(),
                id: None,
                sha256: sha256.clone(),
            };
            tokio::fs::create_dir_all(&options.state_dir).await?;
            tokio::fs::write(&state_path, serde_json::to_vec(&state).unwrap_or_default()).await?;
            let name = options.name.clone().unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "unnamed".into())
            });
            let mut body = json!({"name": name, "size": size, "sha256": sha256, "tags": options.tags});
            if let Some(ct) = &options.content_type {
                body["content_type"] = json!(ct);
            }
            let started = match with_retries(reporter, &file, 0, || api.start_multipart(&body, &idempotency)).await {
                // A key kept from a run that failed before its start was recorded, now used for
                // another description of the file (other tags, name or type): a new key.
                Err(Failure::Api { status: 409, .. }) => {
                    state.key = fresh_key(&key);
                    tokio::fs::write(&state_path, serde_json::to_vec(&state).unwrap_or_default()).await?;
                    let fresh = state.key.clone();
                    with_retries(reporter, &file, 0, || api.start_multipart(&body, &fresh)).await?
                }
                other => other?,
            };
            if started.document.status.as_str() != "received" {
                // The start was answered before, and its upload finished since.
                let _ = tokio::fs::remove_file(&state_path).await;
                return Ok(started.document);
            }
            state.id = Some(started.id.clone());
            tokio::fs::write(&state_path, serde_json::to_vec(&state).unwrap_or_default()).await?;
            let count = u32::try_from(started.upload.part_count).unwrap_or(u32::MAX);
            (started.id, started.upload, (1..=count).collect::<Vec<u32>>(), 0)
        }
    };
    reporter.event(Event::Started {
        file: &file,
        id: &id,
        size,
        part_size: plan.part_size,
        part_count: plan.part_count,
        bytes_held: held,
        parts_to_send: missing.len() as u64,
    });

    // Parts in flight: as many as asked, within the memory budget.
    let parallel = options
        .parallel
        .clamp(1, 64)
        .min(usize::try_from((MEMORY_BUDGET / plan.part_size).max(1)).unwrap_or(1));
    let sent = Arc::new(AtomicU64::new(held));
    let part_len = |n: u32| plan.part_size.min(size - (u64::from(n) - 1) * plan.part_size);
    // Windows of parts: each part read and hashed, then one request for all the window's part
    // URLs (the API takes 100), then the parts sent, `parallel` at a time (read again: only
    // those in flight are in memory).
    let window = (parallel * 4).clamp(1, 100);
    for numbers in missing.chunks(window) {
        let mut hashed = Vec::with_capacity(numbers.len());
        for &n in numbers {
            let body = read_part(path, (u64::from(n) - 1) * plan.part_size, part_len(n)).await?;
            hashed.push((n, hex::encode(sha2::Sha256::digest(&body))));
        }
        let requests = with_retries(reporter, &file, 0, || api.part_requests(&id, &hashed)).await?;
        let results: Vec<Result<(), Failure>> = futures::stream::iter(requests.parts)
            .map(|request| {
                let (sent, file, id) = (sent.clone(), file.clone(), id.clone());
                let sha = hashed
                    .iter()
                    .find(|(n, _)| *n == request.number)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                async move {
                    let number = request.number;
                    let len = part_len(number);
                    let body = read_part(path, (u64::from(number) - 1) * plan.part_size, len).await?;
                    if hex::encode(sha2::Sha256::digest(&body)) != sha {
                        return Err(Failure::Other(format!("{file} changed while it was sent; run again")));
                    }
                    let mut request = request;
                    let mut delay = Duration::from_millis(500);
                    for attempt in 1..=ATTEMPTS {
                        match put_part(&api.http, &request, body.clone()).await {
                            Ok(_) => {
                                let done = sent.fetch_add(len, Ordering::Relaxed) + len;
                                reporter.event(Event::Part {
                                    file: &file,
                                    id: &id,
                                    number,
                                    bytes: done,
                                    size,
                                });
                                return Ok(());
                            }
                            // 4xx other than an expired or refused request will not pass.
                            Err(e) if !e.is_transient() && !matches!(e.status(), Some(400 | 403)) => return Err(e),
                            Err(e) if attempt == ATTEMPTS => return Err(e),
                            Err(e) => {
                                reporter.event(Event::Retry {
                                    file: &file,
                                    number,
                                    attempt,
                                    error: &e.to_string(),
                                });
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(16));
                                // A fresh request: the last one may have expired.
                                let one = [(number, sha.clone())];
                                let fresh =
                                    with_retries(reporter, &file, number, || api.part_requests(&id, &one)).await?;
                                if let Some(r) = fresh.parts.into_iter().next() {
                                    request = r;
                                }
                            }
                        }
                    }
                    Err(Failure::Other("the part was not sent".into()))
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            return Err(Failure::Other(format!(
                "{file}: {e}; run the same command again to resume"
            )));
        }
    }
    let document = with_retries(reporter, &file, 0, || api.complete(&id)).await?;
    let _ = tokio::fs::remove_file(&state_path).await;
    reporter.event(Event::Completed {
        file: &file,
        id: &id,
        size,
    });
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_named_by_the_api_the_file_and_its_version() {
        let a = upload_key("http://x", Path::new("/tmp/a"), 10, 1);
        assert_eq!(a, upload_key("http://x", Path::new("/tmp/a"), 10, 1));
        assert_ne!(a, upload_key("http://x", Path::new("/tmp/a"), 10, 2), "modified");
        assert_ne!(a, upload_key("http://x", Path::new("/tmp/a"), 11, 1), "resized");
        assert_ne!(a, upload_key("http://y", Path::new("/tmp/a"), 10, 1), "another API");
        assert_eq!(a.len(), 32);
    }
}
