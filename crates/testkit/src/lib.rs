//! Test support shared by intake's test suites: a throwaway HTTP server on loopback (a webhook
//! receiver, a slow or endless endpoint), the workspace's own paths, and the sample bytes more
//! than one suite sends. Never shipped: only `[dev-dependencies]` name this crate, and it knows
//! no intake crate (support that needs intake's types stays with the suites that use it).

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A small PDF the policy accepts: a catalog and a trailer.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// The intake policy the functions ship with (`shared/policy.toml`).
pub const POLICY: &str = include_str!("../../../shared/policy.toml");

/// Serves HTTP/1.1 on a free port of 127.0.0.1 for as long as the test's runtime lives: each
/// request goes to `handler`, and what it answers is sent back. Returns the address to send
/// requests to.
///
/// Each connection is served on a task of its own, with Nagle's algorithm off (a test waits
/// for answers, not for full packets). A connection that fails is dropped; if accepting one
/// fails (the runtime is shutting down), the server stops quietly.
pub async fn serve<F, Fut, B>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on loopback");
    let address = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let answer = handler(req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// A request's head and its whole body (a handler of [`serve`] that looks at what arrived).
pub async fn body(req: Request<Incoming>) -> (Parts, Bytes) {
    let (head, body) = req.into_parts();
    let bytes = body.collect().await.expect("the request's body").to_bytes();
    (head, bytes)
}

/// The workspace's root folder: where `template.yaml`, `events/` and `.venv/` are.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace's root folder")
}

/// Where `cargo build` puts the workspace's debug binaries (the function binaries the local
/// pipeline runs): `$CARGO_TARGET_DIR/debug`, else `target/debug` in the workspace.
pub fn debug_binaries() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target"))
        .join("debug")
}
