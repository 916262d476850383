//! The route table: one list that the router matches against and that a test compares with
//! `openapi.json`, so the document cannot drift from what the function serves.

use intake_core::{DocumentId, WebhookId};
use lambda_http::http::Method;

/// A matched route, with its parsed path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    SubmitDocument,
    StartUpload,
    ListDocuments,
    GetDocument(DocumentId),
    DocumentHistory(DocumentId),
    DownloadDocument(DocumentId),
    UpdateDocument(DocumentId),
    DeleteDocument(DocumentId),
    HoldDocument(DocumentId),
    ReleaseHold(DocumentId),
    StartMultipart,
    MultipartProgress(DocumentId),
    PartRequests(DocumentId),
    CompleteMultipart(DocumentId),
    AbortMultipart(DocumentId),
    Stats,
    Quota,
    ListWebhooks,
    CreateWebhook,
    GetWebhook(WebhookId),
    UpdateWebhook(WebhookId),
    DeleteWebhook(WebhookId),
    RotateSecret(WebhookId),
    ListDeliveries(WebhookId),
    Replay(WebhookId),
    EventTypes,
}

/// `(method, path pattern)` for every route; `{id}` is a path parameter.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/documents"),
    ("GET", "/v1/documents"),
    ("POST", "/v1/uploads"),
    ("GET", "/v1/documents/{id}"),
    ("PATCH", "/v1/documents/{id}"),
    ("DELETE", "/v1/documents/{id}"),
    ("GET", "/v1/documents/{id}/content"),
    ("GET", "/v1/documents/{id}/history"),
    ("PUT", "/v1/documents/{id}/hold"),
    ("DELETE", "/v1/documents/{id}/hold"),
    ("POST", "/v1/multipart-uploads"),
    ("GET", "/v1/multipart-uploads/{id}"),
    ("DELETE", "/v1/multipart-uploads/{id}"),
    ("POST", "/v1/multipart-uploads/{id}/parts"),
    ("POST", "/v1/multipart-uploads/{id}/complete"),
    ("GET", "/v1/stats"),
    ("GET", "/v1/quota"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{id}"),
    ("PATCH", "/v1/webhooks/{id}"),
    ("DELETE", "/v1/webhooks/{id}"),
    ("POST", "/v1/webhooks/{id}/secret"),
    ("GET", "/v1/webhooks/{id}/deliveries"),
    ("POST", "/v1/webhooks/{id}/replay"),
    ("GET", "/v1/event-types"),
];

#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    MethodNotAllowed { allow: Vec<&'static str> },
}

fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("{id}"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

pub fn route(method: &Method, path: &str) -> Result<Route, NoRoute> {
    // A trailing slash is the same resource.
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let candidates: Vec<&(&str, &str)> = ROUTES.iter().filter(|(_, p)| matches(p, path)).collect();
    let Some((_, pattern)) = candidates.iter().find(|(m, _)| *m == method.as_str()) else {
        return Err(match candidates.is_empty() {
            true => NoRoute::NotFound,
            false => NoRoute::MethodNotAllowed {
                allow: candidates.iter().map(|(m, _)| *m).collect(),
            },
        });
    };
    let param = path.split('/').nth(3).unwrap_or_default();
    let doc_id = || param.parse::<DocumentId>().map_err(|_| NoRoute::NotFound);
    let hook_id = || param.parse::<WebhookId>().map_err(|_| NoRoute::NotFound);
    Ok(match (method.as_str(), *pattern) {
        ("GET", "/health") => Route::Health,
        ("GET", "/openapi.json") => Route::OpenApi,
        ("POST", "/v1/documents") => Route::SubmitDocument,
        ("GET", "/v1/documents") => Route::ListDocuments,
        ("POST", "/v1/uploads") => Route::StartUpload,
        ("GET", "/v1/documents/{id}") => Route::GetDocument(doc_id()?),
        ("PATCH", "/v1/documents/{id}") => Route::UpdateDocument(doc_id()?),
        ("DELETE", "/v1/documents/{id}") => Route::DeleteDocument(doc_id()?),
        ("GET", "/v1/documents/{id}/content") => Route::DownloadDocument(doc_id()?),
        ("GET", "/v1/documents/{id}/history") => Route::DocumentHistory(doc_id()?),
        ("PUT", "/v1/documents/{id}/hold") => Route::HoldDocument(doc_id()?),
        ("DELETE", "/v1/documents/{id}/hold") => Route::ReleaseHold(doc_id()?),
        ("POST", "/v1/multipart-uploads") => Route::StartMultipart,
        ("GET", "/v1/multipart-uploads/{id}") => Route::MultipartProgress(doc_id()?),
        ("DELETE", "/v1/multipart-uploads/{id}") => Route::AbortMultipart(doc_id()?),
        ("POST", "/v1/multipart-uploads/{id}/parts") => Route::PartRequests(doc_id()?),
        ("POST", "/v1/multipart-uploads/{id}/complete") => Route::CompleteMultipart(doc_id()?),
        ("GET", "/v1/stats") => Route::Stats,
        ("GET", "/v1/quota") => Route::Quota,
        ("GET", "/v1/webhooks") => Route::ListWebhooks,
        ("POST", "/v1/webhooks") => Route::CreateWebhook,
        ("GET", "/v1/webhooks/{id}") => Route::GetWebhook(hook_id()?),
        ("PATCH", "/v1/webhooks/{id}") => Route::UpdateWebhook(hook_id()?),
        ("DELETE", "/v1/webhooks/{id}") => Route::DeleteWebhook(hook_id()?),
        ("POST", "/v1/webhooks/{id}/secret") => Route::RotateSecret(hook_id()?),
        ("GET", "/v1/webhooks/{id}/deliveries") => Route::ListDeliveries(hook_id()?),
        ("POST", "/v1/webhooks/{id}/replay") => Route::Replay(hook_id()?),
        ("GET", "/v1/event-types") => Route::EventTypes,
        _ => return Err(NoRoute::NotFound),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_routes() {
        let id = "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2";
        for (m, p) in ROUTES {
            let path = p.replace("{id}", id);
            assert!(route(&m.parse().unwrap(), &path).is_ok(), "{m} {path}");
        }
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        assert_eq!(route(&Method::GET, "/v2/documents"), Err(NoRoute::NotFound));
        assert_eq!(route(&Method::GET, "/v1/documents/not-an-id"), Err(NoRoute::NotFound));
        assert_eq!(
            route(&Method::PUT, "/v1/documents"),
            Err(NoRoute::MethodNotAllowed {
                allow: vec!["POST", "GET"]
            })
        );
        assert_eq!(route(&Method::GET, "/v1/documents/"), Ok(Route::ListDocuments));
    }
}
