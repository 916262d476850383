//! A small HTTP client on the stack the rest of intake already builds (hyper, hyper-rustls with
//! aws-lc-rs and the system's roots): no second TLS stack, and no TLS feature that would change
//! how other crates of the workspace build.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// An answer whose body has been read.
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Http {
    pub fn new() -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("TLS: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Sends a request and returns its answer, the body still streaming.
    pub async fn open(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<hyper::Response<Incoming>, String> {
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("{method} {}: {e}", strip_query(url)))?;
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                let mut cause: &dyn std::error::Error = &e;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                Err(format!("{method} {}: {cause}", strip_query(url)))
            }
            Err(_) => Err(format!(
                "{method} {}: no answer in {}s",
                strip_query(url),
                timeout.as_secs()
            )),
        }
    }

    /// Sends a request and reads its whole answer.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let response = self.open(method, url, headers, body, timeout).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(timeout, response.into_body().collect())
            .await
            .map_err(|_| format!("{method} {}: the answer stopped", strip_query(url)))?
            .map_err(|e| format!("{method} {}: {e}", strip_query(url)))?
            .to_bytes();
        Ok(Answer { status, headers, body })
    }
}

/// A URL without its query (a presigned URL's query is a credential: never print it).
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}
