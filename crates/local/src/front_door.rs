//! An ALB-shaped front door on loopback: real HTTP in, an ALB target-group event to the
//! function, its response back as real HTTP. It does what the load balancer does for a Lambda
//! target: raw (still URL-encoded) query parameters, lower-case headers plus the
//! `x-forwarded-*` and `x-amzn-trace-id` ones, base64 for bodies that are not text, a 1 MB
//! request limit, and 502 when the function fails.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::runtime::FunctionHost;

/// What an ALB hands a Lambda target at most.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct FrontDoor {
    pub function: Arc<FunctionHost>,
    /// The target group's "multi-value headers" attribute.
    pub multi_value: bool,
}

impl FrontDoor {
    /// Serves until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        crate::serve_http(listener, move |req, peer| {
            let door = self.clone();
            async move { door.handle(req, peer).await }
        })
        .await
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                // What a load balancer answers itself when a request is over what it hands a
                // Lambda target (1 MB): its own HTML page.
                let mut r = plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center></body></html>",
                );
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/html"),
                );
                return r;
            }
        };
        let event = alb_event(&parts, &body, peer, self.multi_value);
        let invocation = self.function.invoke(Bytes::from(event.to_string())).await;
        match invocation.payload() {
            Ok(payload) => from_alb_response(payload).unwrap_or_else(|e| {
                eprintln!("[front door] the function's answer is not an ALB response: {e}");
                plain(StatusCode::BAD_GATEWAY, "502 Bad Gateway")
            }),
            Err(e) => {
                eprintln!("[front door] {} failed: {e}", self.function.name());
                plain(StatusCode::BAD_GATEWAY, "502 Bad Gateway")
            }
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("text/")
            || ct.contains("json")
            || ct.contains("xml")
            || ct.starts_with("application/x-www-form-urlencoded")
    })
}

/// A header's value as the event's string. Bytes that are not visible ASCII (UTF-8 from a
/// client, obs-text) are passed on, not dropped: a dropped `Idempotency-Key` would turn a
/// request the function must refuse into one without a key.
fn header_text(v: &hyper::header::HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// The target-group event for one request.
pub fn alb_event(parts: &hyper::http::request::Parts, body: &[u8], peer: SocketAddr, multi_value: bool) -> Value {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), header_text(v)))
        .collect();
    headers.push(("x-forwarded-for".into(), peer.ip().to_string()));
    headers.push(("x-forwarded-proto".into(), "http".into()));
    headers.push((
        "x-forwarded-port".into(),
        parts.uri.port_u16().unwrap_or(80).to_string(),
    ));
    headers.push((
        "x-amzn-trace-id".into(),
        format!("Root=1-{}", &crate::request_id().replace('-', "")[..32]),
    ));
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok());
    let (body, b64) = match std::str::from_utf8(body) {
        Ok(text) if body.is_empty() || is_text(content_type) => (text.to_owned(), false),
        _ => (B64.encode(body), true),
    };
    let mut event = json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/intake-local/0000000000000000" } },
        "httpMethod": parts.method.as_str(),
        "path": parts.uri.path(),
        "body": body,
        "isBase64Encoded": b64,
    });
    if multi_value {
        event["multiValueHeaders"] = group(headers);
        event["multiValueQueryStringParameters"] = group(query);
    } else {
        // Single-value mode: the last value of a repeated name wins, as ALB does.
        event["headers"] = Value::Object(headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        event["queryStringParameters"] = Value::Object(query.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    event
}

fn group(pairs: Vec<(String, String)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        let entry = map.entry(k).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(v));
        }
    }
    Value::Object(map)
}

/// The function's target-group response as HTTP.
pub fn from_alb_response(payload: &[u8]) -> Result<Response<Full<Bytes>>, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let status = v["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .ok_or("no statusCode")?;
    let body = v["body"].as_str().unwrap_or("");
    let body = if v["isBase64Encoded"].as_bool().unwrap_or(false) {
        Bytes::from(B64.decode(body).map_err(|e| format!("body is not base64: {e}"))?)
    } else {
        Bytes::copy_from_slice(body.as_bytes())
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    let multi = v["multiValueHeaders"].as_object().filter(|m| !m.is_empty());
    match multi {
        Some(m) => {
            for (k, values) in m {
                for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if let (Ok(k), Ok(value)) = (hyper::header::HeaderName::try_from(k.as_str()), value.parse()) {
                        headers.append(k, value);
                    }
                }
            }
        }
        None => {
            for (k, value) in v["headers"].as_object().into_iter().flatten() {
                if let (Ok(k), Some(Ok(value))) = (
                    hyper::header::HeaderName::try_from(k.as_str()),
                    value.as_str().map(str::parse),
                ) {
                    headers.insert(k, value);
                }
            }
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_are_not_ascii_reach_the_function() {
        let (parts, ()) = Request::post("http://127.0.0.1:3000/v1/multipart-uploads?x=1")
            .header(
                "idempotency-key",
                hyper::header::HeaderValue::from_bytes("×ø-1".as_bytes()).unwrap(),
            )
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        let event = alb_event(&parts, b"{}", "127.0.0.1:5000".parse().unwrap(), false);
        assert_eq!(event["headers"]["idempotency-key"], "×ø-1");
        assert_eq!(event["headers"]["content-type"], "application/json");
    }
}
