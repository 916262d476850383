//! The webhook HTTP client: hyper over rustls, with the same TLS stack and crypto provider the
//! AWS SDK already links (aws-lc-rs, the system's root certificates). Built on first use, so a
//! cold start that delivers nothing pays nothing for it.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use intake_core::WebhookUrl;
use intake_core::ports::{WEBHOOK_ANSWER_LIMIT, WebhookClient};

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Default)]
pub struct HyperWebhookClient {
    client: OnceLock<Result<Https, String>>,
}

impl HyperWebhookClient {
    fn client(&self) -> Result<&Https, String> {
        self.client
            .get_or_init(|| {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| format!("no usable root certificates: {e}"))?
                    // Plain HTTP only reaches hooks a deployment allowed (ALLOW_PRIVATE_WEBHOOKS).
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(https))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl WebhookClient for HyperWebhookClient {
    async fn post(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<u16, String> {
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
                .map_err(|e| format!("request failed: {e}"))?;
            let status = response.status().as_u16();
            // Read a bounded amount (so a short answer's connection can be reused), then drop.
            let _ = http_body_util::Limited::new(response.into_body(), WEBHOOK_ANSWER_LIMIT)
                .collect()
                .await;
            Ok(status)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
    }
}
