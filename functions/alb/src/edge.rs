//! What arrives from the load balancer, checked before `lambda_http` turns it into a request:
//! that conversion panics on a body marked base64 that is not (`aws_lambda_events` decodes it
//! with `expect`) and on a `Host` or path that does not make a URL. A panic must never be how
//! hostile input is answered, so such an event is repaired here and marked with
//! [`MALFORMED`], which the API answers with a 400 (a client cannot set the mark: it is
//! removed from every event first). The release profile also unwinds on panic, so anything
//! missed here is still reported by the runtime as an error, not a crashed process.

use base64::Engine as _;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, header};
use lambda_http::request::LambdaRequest;

/// The header that carries what was wrong with the event; set only here.
pub const MALFORMED: HeaderName = HeaderName::from_static("x-intake-malformed-request");

/// The event, safe to convert: either unchanged, or repaired and marked.
pub fn sanitize(mut request: LambdaRequest) -> LambdaRequest {
    if let LambdaRequest::Alb(alb) = &mut request {
        alb.headers.remove(&MALFORMED);
        alb.multi_value_headers.remove(&MALFORMED);
        let mut problems = Vec::new();
        if alb.is_base64_encoded
            && alb
                .body
                .as_deref()
                .is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_err())
        {
            problems.push("the body is marked base64 but is not valid base64");
            alb.body = None;
            alb.is_base64_encoded = false;
        }
        let path = alb.path.clone().unwrap_or_default();
        if !path.is_empty() && (!path.starts_with('/') || !makes_uri(&format!("http://localhost{path}"))) {
            problems.push("the path is not a valid URL path");
            alb.path = Some("/".into());
        }
        let path = alb.path.clone().unwrap_or_default();
        let host = alb
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        if let Some(host) = host {
            let scheme = alb
                .headers
                .get("x-forwarded-proto")
                .and_then(|s| s.to_str().ok())
                .unwrap_or("https");
            if !makes_uri(&format!("{scheme}://{host}{path}")) {
                // The API does not use the host: without it, the request is read by its path.
                alb.headers.remove(header::HOST);
            }
        }
        if !problems.is_empty() {
            mark(&mut alb.headers, &problems);
            mark(&mut alb.multi_value_headers, &problems);
        }
    }
    request
}

fn mark(headers: &mut HeaderMap, problems: &[&str]) {
    if let Ok(value) = HeaderValue::from_str(&problems.join("; ")) {
        headers.insert(MALFORMED, value);
    }
}

/// Whether `lambda_http` can build a request URI from this (it parses it as a URL, then as an
/// `http::Uri`).
fn makes_uri(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| u.as_str().parse::<lambda_http::http::Uri>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alb(json: serde_json::Value) -> LambdaRequest {
        serde_json::from_value(json).unwrap()
    }

    fn event(body: &str, base64: bool, host: &str, path: &str) -> serde_json::Value {
        serde_json::json!({
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1"}},
            "httpMethod": "POST", "path": path, "queryStringParameters": {},
            "headers": {"host": host, "x-intake-malformed-request": "forged"},
            "body": body, "isBase64Encoded": base64
        })
    }

    fn converted(request: LambdaRequest) -> lambda_http::Request {
        std::panic::catch_unwind(|| lambda_http::Request::from(request)).expect("lambda_http must not panic")
    }

    #[test]
    fn a_body_that_is_not_base64_is_marked_instead_of_panicking() {
        let request = converted(sanitize(alb(event(
            "%%% not base64 %%%",
            true,
            "api.example",
            "/v1/documents",
        ))));
        assert!(request.headers()[&MALFORMED].to_str().unwrap().contains("base64"));
        assert!(request.body().is_empty());
    }

    #[test]
    fn hosts_and_paths_that_make_no_url_are_repaired() {
        let request = converted(sanitize(alb(event("", false, "bad host[", "/health"))));
        assert_eq!(request.uri().path(), "/health");
        assert!(
            request.headers().get(&MALFORMED).is_none(),
            "a bad Host alone is no error"
        );
        let request = converted(sanitize(alb(event("", false, "api.example", "@evil"))));
        assert!(request.headers()[&MALFORMED].to_str().unwrap().contains("path"));
    }

    #[test]
    fn a_forged_mark_is_removed_and_good_events_pass_unchanged() {
        let request = converted(sanitize(alb(event("aGVsbG8=", true, "api.example", "/v1/documents"))));
        assert!(request.headers().get(&MALFORMED).is_none());
        assert_eq!(request.body().as_ref(), b"hello");
    }
}
