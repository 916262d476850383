//! Answers: JSON bodies, and the one mapping from errors to HTTP statuses. Every error has the
//! same shape: `{"error": {"code": "...", "message": "..."}}`, plus `field` when one input is
//! at fault.

use intake_core::{Error, Invalid};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

use crate::routes::NoRoute;

/// A 200 with `value` as its JSON body.
pub fn ok<T: Serialize, E>(value: &T) -> Result<Response<Body>, E> {
    Ok(json(StatusCode::OK, value))
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value)
        .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"serialization failed"}}"#.into());
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = status;
    resp
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    /// Which quota refused the request (`quota_exceeded`).
    pub limit: Option<&'static str>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            limit: None,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    pub fn invalid_json(message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON for this request: {message}"),
        )
    }

    pub fn into_response(self) -> Response<Body> {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        if let Some(limit) = self.limit {
            error["limit"] = json!(limit);
        }
        let mut resp = json(self.status, &json!({ "error": error }));
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string());
        err.field = Some(e.field);
        err
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(invalid) => invalid.into(),
            Error::Unauthenticated => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
                .with_header(header::WWW_AUTHENTICATE, "Bearer"),
            Error::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            Error::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("{e}; send large files with POST /v1/uploads"),
            ),
            Error::UnsupportedType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                e.to_string(),
            ),
            Error::QuotaExceeded { refused, retry_after } => {
                // Storage comes back only when documents are deleted: the upload is too large
                // for what is left. The other limits pass: the client waits and retries.
                let status = match refused {
                    intake_core::quota::QuotaExceeded::BytesStored { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::TOO_MANY_REQUESTS,
                };
                let mut err = ApiError::new(status, "quota_exceeded", refused.to_string());
                err.limit = Some(refused.limit_name());
                if let Some(after) = retry_after
                    && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
                {
                    err.headers.push((header::RETRY_AFTER, v));
                }
                err
            }
            Error::Throttled => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", e.to_string())
                .with_header(header::RETRY_AFTER, "1"),
            Error::Unavailable(detail) => {
                // The detail is for the logs; the client learns only that it may retry.
                tracing::error!(error = %detail, "dependency failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "a dependency is unavailable; retry later",
                )
                .with_header(header::RETRY_AFTER, "1")
            }
        }
    }
}

impl From<NoRoute> for ApiError {
    fn from(e: NoRoute) -> Self {
        match e {
            NoRoute::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource"),
            NoRoute::MethodNotAllowed { allow } => {
                let mut err = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("this resource supports {}", allow.join(", ")),
                );
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    err.headers.push((header::ALLOW, v));
                }
                err
            }
        }
    }
}
