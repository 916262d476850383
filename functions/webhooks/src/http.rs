//! The webhook HTTP client: hyper over rustls (aws-lc-rs, the platform's root certificates),
//! safe against server-side request forgery:
//!
//! - the host is resolved at connect time and every address it resolves to is checked: only
//!   public unicast addresses are used (`intake_core::address_class` names what the others
//!   are: loopback, private, link-local, CGNAT, benchmarking, multicast, reserved, IPv6 ULA
//!   and link-local, and the IPv4-mapped, NAT64 and 6to4 forms of those);
//! - the connection goes to the address that was checked (no second resolution by anyone);
//! - HTTPS only (plain HTTP and private addresses only where the deployment allows them: local
//!   runs); redirects are never followed (a 3xx is an answer like any other);
//! - at most [`WEBHOOK_ANSWER_LIMIT`] bytes of an answer are read.
//!
//! Built on first use, so a cold start that delivers nothing pays nothing for it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use intake_core::ports::{WEBHOOK_ANSWER_LIMIT, WebhookAnswer, WebhookClient};
use intake_core::{WebhookUrl, address_class};
use time::OffsetDateTime;

/// Name resolution, replaceable in tests.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
}

/// The system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Why a connection was refused before it was made.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Connects to a URI's host on a checked address.
pub struct SafeConnector<R> {
    resolver: Arc<R>,
    allow_private: bool,
    connect_timeout: Duration,
}

impl<R> Clone for SafeConnector<R> {
    fn clone(&self) -> Self {
        Self {
            resolver: self.resolver.clone(),
            allow_private: self.allow_private,
            connect_timeout: self.connect_timeout,
        }
    }
}

impl<R: Resolve> SafeConnector<R> {
    pub fn new(resolver: R, allow_private: bool) -> Self {
        Self {
            resolver: Arc::new(resolver),
            allow_private,
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// The addresses of `host` that may be connected to, or why there are none.
    pub async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let resolved = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => self
                .resolver
                .resolve(host, port)
                .await
                .map_err(|e| Refused(format!("cannot resolve {host}: {e}")))?,
        };
        if self.allow_private {
            return Ok(resolved);
        }
        let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            resolved.iter().partition(|a| address_class(a.ip()).is_none());
        if public.is_empty() {
            let why: Vec<String> = refused
                .iter()
                .map(|a| format!("{} is {}", a.ip(), address_class(a.ip()).unwrap_or("not public")))
                .collect();
            return Err(Refused(if why.is_empty() {
                format!("{host} resolves to no address")
            } else {
                format!("refused: {host} resolves to no public address ({})", why.join(", "))
            }));
        }
        Ok(public)
    }
}

impl<R: Resolve> tower_service::Service<Uri> for SafeConnector<R> {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| Refused("the URL has no host".into()))?
                .to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
            let addresses = this.addresses(&host, port).await?;
            let mut last = None;
            for address in addresses {
                match tokio::time::timeout(this.connect_timeout, tokio::net::TcpStream::connect(address)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Ok(Err(e)) => last = Some(format!("{address}: {e}")),
                    Err(_) => last = Some(format!("{address}: no connection within {:?}", this.connect_timeout)),
                }
            }
            Err(Box::new(Refused(format!(
                "cannot connect to {host}: {}",
                last.unwrap_or_default()
            ))) as Self::Error)
        })
    }
}

type Https<R> = Client<HttpsConnector<SafeConnector<R>>, Full<Bytes>>;

pub struct HyperWebhookClient<R: Resolve = SystemResolver> {
    resolver: Option<R>,
    allow_private: bool,
    client: OnceLock<Result<Https<R>, String>>,
}

impl HyperWebhookClient<SystemResolver> {
    pub fn new(allow_private: bool) -> Self {
        Self::with_resolver(SystemResolver, allow_private)
    }
}

impl<R: Resolve + Clone> HyperWebhookClient<R> {
    pub fn with_resolver(resolver: R, allow_private: bool) -> Self {
        Self {
            resolver: Some(resolver),
            allow_private,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&Https<R>, String> {
        self.client
            .get_or_init(|| {
                let resolver = self.resolver.clone().ok_or("no resolver")?;
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| format!("no usable root certificates: {e}"))?;
                // Plain HTTP only reaches hooks a deployment allowed (ALLOW_PRIVATE_WEBHOOKS).
                let builder = if self.allow_private {
                    builder.https_or_http()
                } else {
                    builder.https_only()
                };
                let https = builder
                    .enable_http1()
                    .wrap_connector(SafeConnector::new(resolver, self.allow_private));
                Ok(Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(https))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// `Retry-After`: seconds, or an HTTP date (then the wait until it).
pub fn retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    Duration::try_from(at - now).ok()
}

/// The innermost cause of an error (hyper's own messages say little: "client error (Connect)").
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

impl<R: Resolve + Clone> WebhookClient for HyperWebhookClient<R> {
    async fn post(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<WebhookAnswer, String> {
        let client = self.client()?;
        let mut request = hyper::Request::post(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| format!("bad request: {e}"))?;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("request failed: {}", cause(&e)))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, OffsetDateTime::now_utc()));
            // Read a bounded amount (so a short answer's connection can be reused), then drop.
            let _ = http_body_util::Limited::new(response.into_body(), WEBHOOK_ANSWER_LIMIT)
                .collect()
                .await;
            Ok(WebhookAnswer { status, retry_after })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
    }
}
