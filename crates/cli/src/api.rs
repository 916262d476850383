//! The HTTP API, typed with the server's own contract types (`intake_core::contract`): what the
//! client reads is what the server writes. Every call's route is listed in [`ROUTES`], which a
//! test holds to `openapi.json`.

use std::time::Duration;

use bytes::Bytes;
use intake_core::contract::{
    ApiDocumentV1, DocumentPageV1, MultipartProgressV1, MultipartStartedV1, PartRequestsV1, WebhookCreatedV1,
    WebhookListV1,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Every `(method, path)` the client calls; `{id}` is a path parameter. (Read by the test that
/// holds the client to `openapi.json`.)
#[cfg_attr(not(test), allow(dead_code))]
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/documents"),
    ("GET", "/v1/documents/{id}"),
    ("DELETE", "/v1/documents/{id}"),
    ("GET", "/v1/documents/{id}/content"),
    ("POST", "/v1/multipart-uploads"),
    ("GET", "/v1/multipart-uploads/{id}"),
    ("POST", "/v1/multipart-uploads/{id}/parts"),
    ("POST", "/v1/multipart-uploads/{id}/complete"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("DELETE", "/v1/webhooks/{id}"),
];

/// What went wrong, as one line: the API's own error, or the connection's.
#[derive(Debug)]
pub enum Failure {
    /// The API answered with an error (`{"error": {"code", "message"}}`).
    Api { status: u16, code: String, message: String },
    /// No answer (connection refused, timed out, reset).
    Unreachable(String),
    /// Anything else (a local file, an answer that is not the API's).
    Other(String),
}

impl Failure {
    /// Worth trying again: no answer, throttling, a dependency unavailable.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Unreachable(_) => true,
            Failure::Api { status, .. } => *status == 429 || *status >= 500,
            Failure::Other(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api { status, code, message } => write!(f, "{message} ({code}, HTTP {status})"),
            Failure::Unreachable(why) => write!(f, "no answer: {why}"),
            Failure::Other(why) => f.write_str(why),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.to_string())
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: crate::http::Http,
    pub url: String,
    token: String,
}

/// How long an API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Api {
    pub fn new(url: &str, token: &str) -> Result<Self, Failure> {
        Ok(Self {
            http: crate::http::Http::new().map_err(Failure::Other)?,
            url: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// An API call: the answer of a success (2xx, 3xx), the API's error otherwise.
    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<crate::http::Answer, Failure> {
        let auth = format!("Bearer {}", self.token);
        let mut all: Vec<(&str, &str)> = vec![
            ("authorization", &auth),
            ("user-agent", concat!("intake-cli/", env!("CARGO_PKG_VERSION"))),
        ];
        let bytes = match body {
            Some(b) => {
                all.push(("content-type", "application/json"));
                Bytes::from(serde_json::to_vec(b).map_err(|e| Failure::Other(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        all.extend_from_slice(headers);
        let answer = self
            .http
            .send(method, &format!("{}{path}", self.url), &all, bytes, CALL_TIMEOUT)
            .await
            .map_err(Failure::Unreachable)?;
        if !(200..400).contains(&answer.status) {
            let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
            let error = parsed.as_ref().map(|v| &v["error"]);
            let shown = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                .trim()
                .to_owned();
            return Err(Failure::Api {
                status: answer.status,
                code: error
                    .and_then(|e| e["code"].as_str())
                    .unwrap_or("unexpected_answer")
                    .to_owned(),
                message: error
                    .and_then(|e| e["message"].as_str())
                    .map_or_else(|| format!("HTTP {} {shown}", answer.status), str::to_owned),
            });
        }
        Ok(answer)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Option<T>), Failure> {
        let answer = self.raw(method, path, body, headers).await?;
        if answer.body.is_empty() {
            return Ok((answer.status, None));
        }
        let value = serde_json::from_slice(&answer.body)
            .map_err(|e| Failure::Other(format!("{path}: an answer that is not the API's: {e}")))?;
        Ok((answer.status, Some(value)))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, Failure> {
        match self.call(method, path, body, &[]).await? {
            (_, Some(v)) => Ok(v),
            (_, None) => Err(Failure::Other(format!("{path}: an empty answer"))),
        }
    }

    pub async fn list(&self, query: &[(&str, String)]) -> Result<DocumentPageV1, Failure> {
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let path = match query.is_empty() {
            true => "/v1/documents".to_owned(),
            false => format!("/v1/documents?{}", query.join("&")),
        };
        self.json("GET", &path, None::<&()>).await
    }

    pub async fn document(&self, id: &str) -> Result<ApiDocumentV1, Failure> {
        self.json("GET", &format!("/v1/documents/{}", encode(id)), None::<&()>)
            .await
    }

    pub async fn delete(&self, id: &str) -> Result<(), Failure> {
        self.call::<Value>("DELETE", &format!("/v1/documents/{}", encode(id)), None::<&()>, &[])
            .await
            .map(|_| ())
    }

    /// The short-lived link to a document's bytes (the API answers 302 with it).
    pub async fn content_link(&self, id: &str) -> Result<String, Failure> {
        let answer = self
            .raw(
                "GET",
                &format!("/v1/documents/{}/content", encode(id)),
                None::<&()>,
                &[],
            )
            .await?;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        body["url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::Other("the download answer has no url".into()))
    }

    pub async fn start_multipart(&self, body: &Value, idempotency_key: &str) -> Result<MultipartStartedV1, Failure> {
        match self
            .call(
                "POST",
                "/v1/multipart-uploads",
                Some(body),
                &[("idempotency-key", idempotency_key)],
            )
            .await?
        {
            (_, Some(v)) => Ok(v),
            _ => Err(Failure::Other("the start of the upload answered nothing".into())),
        }
    }

    pub async fn progress(&self, id: &str) -> Result<MultipartProgressV1, Failure> {
        self.json("GET", &format!("/v1/multipart-uploads/{}", encode(id)), None::<&()>)
            .await
    }

    /// Presigned requests for parts: `(number, hex SHA-256)`.
    pub async fn part_requests(&self, id: &str, parts: &[(u32, String)]) -> Result<PartRequestsV1, Failure> {
        let parts: Vec<Value> = parts
            .iter()
            .map(|(n, sha)| json!({"number": n, "sha256": sha}))
            .collect();
        self.json(
            "POST",
            &format!("/v1/multipart-uploads/{}/parts", encode(id)),
            Some(&json!({ "parts": parts })),
        )
        .await
    }

    pub async fn complete(&self, id: &str) -> Result<ApiDocumentV1, Failure> {
        self.json(
            "POST",
            &format!("/v1/multipart-uploads/{}/complete", encode(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn webhooks(&self) -> Result<WebhookListV1, Failure> {
        self.json("GET", "/v1/webhooks", None::<&()>).await
    }

    pub async fn create_webhook(&self, url: &str, events: &[String]) -> Result<WebhookCreatedV1, Failure> {
        self.json("POST", "/v1/webhooks", Some(&json!({ "url": url, "events": events })))
            .await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), Failure> {
        self.call::<Value>("DELETE", &format!("/v1/webhooks/{}", encode(id)), None::<&()>, &[])
            .await
            .map(|_| ())
    }
}

/// A path segment or query value, percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client calls only what the API's OpenAPI document describes, with the body types
    /// the server's contract types give (they are the same types).
    #[test]
    fn every_route_the_client_calls_is_in_the_openapi_document() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions/alb/openapi.json")).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        for (method, path) in ROUTES {
            let operation = &doc["paths"][*path][method.to_ascii_lowercase()];
            assert!(operation.is_object(), "{method} {path} is not in openapi.json");
        }
        // The upload's start sends what the schema allows and nothing else.
        let start =
            &doc["paths"]["/v1/multipart-uploads"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let allowed: Vec<&str> = start["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for field in ["name", "size", "sha256", "tags", "content_type"] {
            assert!(allowed.contains(&field), "{field} is not in the start's schema");
        }
        let parts = &doc["paths"]["/v1/multipart-uploads/{id}/parts"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["parts"]["items"]["properties"];
        assert!(parts["number"].is_object() && parts["sha256"].is_object());
    }

    #[test]
    fn path_segments_and_values_are_encoded() {
        assert_eq!(encode("01ABC"), "01ABC");
        assert_eq!(encode("a b/c?"), "a%20b%2Fc%3F");
    }
}
