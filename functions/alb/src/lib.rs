//! The HTTP door: intake's API as an ALB target. `Api::handle` turns one request into one
//! response and never fails: every error becomes a JSON answer with the right status (see
//! [`reply`]). Routing is in [`routes`]; the rules are in `intake-core`.

pub mod console;
pub mod edge;
pub mod event_types;
pub mod reply;
pub mod routes;

use std::time::Instant;

use bytes::Bytes;
use intake_core::contract::{
    ApiDocumentV1, DeliveryPageV1, DeliveryV1, DocumentPageV1, DownloadLinkV1, HealthV1, HistoryV1, MultipartPlanV1,
    MultipartProgressV1, MultipartStartedV1, PartRequestV1, PartRequestsV1, PresignedUploadV1, QuotaV1, ReplayedV1,
    StatsV1, SubmittedV1, UploadStartedV1, WebhookCreatedV1, WebhookListV1, WebhookV1, document_url,
};
use intake_core::multipart::{PartToSend, SentPart};
use intake_core::ports::{BlobStore, Catalog, DeliveryQuery, ListQuery, MultipartStore, SecretSealer, WorkQueue};
use intake_core::service::{IdempotencyKey, Intake, Upload, UploadIntent};
use intake_core::webhooks::{NewWebhook, Registry, Replay, WebhookPatch};
use intake_core::{
    ContentType, DocumentId, DocumentPatch, EventType, FileName, Invalid, Owner, Sha256, Tags, TokenRecord, WebhookId,
};
use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::reply::{ApiError, empty, json, ok};
use crate::routes::Route;

/// The OpenAPI 3 description of this API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

pub struct Api<C, B, S, Q> {
    intake: Intake<C, B>,
    webhooks: Registry<C, S, Q>,
    console: console::Console,
}

impl<C: Catalog, B: BlobStore + MultipartStore, S: SecretSealer, Q: WorkQueue> Api<C, B, S, Q> {
    pub fn new(intake: Intake<C, B>, webhooks: Registry<C, S, Q>) -> Self {
        Self {
            intake,
            webhooks,
            console: console::Console::default(),
        }
    }

    /// Serves the web console with this policy (its `connect-src` names the bucket's origin).
    pub fn with_console(mut self, console: console::Console) -> Self {
        self.console = console;
        self
    }

    pub fn intake(&self) -> &Intake<C, B> {
        &self.intake
    }

    pub fn webhooks(&self) -> &Registry<C, S, Q> {
        &self.webhooks
    }

    /// Answers within `until` (the invocation's deadline, less a margin): a request that runs
    /// out of time is answered 503, so the client may retry, before Lambda would cut it off.
    pub async fn handle_within(&self, req: Request, until: std::time::Instant) -> Response<Body> {
        match intake_lambda::deadline::within(until, self.handle(req)).await {
            Ok(response) => response,
            Err(out_of_time) => {
                tracing::error!(error = %out_of_time, status = 503, "request ran out of time");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the request ran out of time; retry",
                )
                .into_response()
            }
        }
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let response = self.dispatch(req).await.unwrap_or_else(ApiError::into_response);
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        if status >= 500 {
            tracing::error!(%method, %path, status, elapsed_ms, "request failed");
        } else {
            tracing::info!(%method, %path, status, elapsed_ms, "request");
        }
        response
    }

    async fn dispatch(&self, req: Request) -> Result<Response<Body>, ApiError> {
        if let Some(problem) = req.headers().get(&edge::MALFORMED) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                problem.to_str().unwrap_or("the request is malformed"),
            ));
        }
        if let Some(page) = self.console.serve(&req) {
            return Ok(page);
        }
        let route = routes::route(req.method(), req.uri().path())?;
        match route {
            // Unauthenticated and dependency-free: load balancer health checks hit it often.
            Route::Health => return ok(&HealthV1::ok()),
            Route::OpenApi => {
                let mut resp = Response::new(Body::Text(OPENAPI.into()));
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                return Ok(resp);
            }
            _ => {}
        }
        // The routes that reach AWS run in a future of their own, on the heap: holding every
        // route's state, it is kilobytes, and inline it made each request's future that large,
        // copied whole each time the runtime moved it (the health check paid ~100 k
        // instructions of copying per invocation, `docs/bill.md`).
        Box::pin(self.authenticated(route, req)).await
    }

    /// The routes that need a caller: one line each, to the handler below that answers it.
    async fn authenticated(&self, route: Route, req: Request) -> Result<Response<Body>, ApiError> {
        let caller = self.authenticate(req.headers()).await?;
        let owner = &caller.owner;
        match route {
            Route::Health | Route::OpenApi => unreachable!("answered above"),
            Route::SubmitDocument => self.submit(owner, &req).await,
            Route::StartUpload => self.start_upload(owner, &req).await,
            Route::ListDocuments => self.list_documents(owner, &req).await,
            Route::GetDocument(id) => ok(&ApiDocumentV1::from(&self.intake.get(owner, &id).await?)),
            Route::DocumentHistory(id) => ok(&HistoryV1::from(&self.intake.get(owner, &id).await?)),
            Route::DownloadDocument(id) => self.download(owner, &id, &req).await,
            Route::UpdateDocument(id) => self.update_document(owner, &id, &req).await,
            Route::DeleteDocument(id) => {
                self.intake.delete_document(owner, &id).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Route::HoldDocument(id) => {
                let body: HoldBody = required_json_body(&req)?;
                let held = self
                    .intake
                    .hold(owner, &id, &body.reason, &caller.id.to_string())
                    .await?;
                ok(&ApiDocumentV1::from(&held))
            }
            Route::ReleaseHold(id) => ok(&ApiDocumentV1::from(&self.intake.release_hold(owner, &id).await?)),
            Route::StartMultipart => self.start_multipart(owner, &req).await,
            Route::MultipartProgress(id) => ok(&MultipartProgressV1::new(
                &self.intake.multipart_progress(owner, &id).await?,
            )),
            Route::PartRequests(id) => self.part_requests(owner, &id, &req).await,
            Route::CompleteMultipart(id) => self.complete_multipart(owner, &id, &req).await,
            Route::AbortMultipart(id) => {
                self.intake.abort_multipart(owner, &id).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Route::Stats => ok(&StatsV1::new(owner, &self.intake.stats(owner).await?)),
            Route::Quota => ok(&QuotaV1::new(owner, &self.intake.quota(owner).await?)),
            Route::ListWebhooks => ok(&WebhookListV1 {
                items: self.webhooks.list(owner).await?.iter().map(WebhookV1::from).collect(),
            }),
            Route::CreateWebhook => self.create_webhook(owner, &req).await,
            Route::GetWebhook(id) => ok(&WebhookV1::from(&self.webhooks.get(owner, &id).await?)),
            Route::UpdateWebhook(id) => self.update_webhook(owner, &id, &req).await,
            Route::DeleteWebhook(id) => {
                self.webhooks.delete(owner, &id).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Route::RotateSecret(id) => {
                let (hook, secret) = self.webhooks.rotate_secret(owner, &id).await?;
                ok(&WebhookCreatedV1 {
                    webhook: WebhookV1::from(&hook),
                    secret: secret.reveal().to_owned(),
                })
            }
            Route::ListDeliveries(id) => {
                let page = self.webhooks.deliveries(owner, &id, &delivery_query(&req)?).await?;
                ok(&DeliveryPageV1 {
                    items: page.items.iter().map(DeliveryV1::from).collect(),
                    next_cursor: page.next,
                })
            }
            Route::Replay(id) => self.replay(owner, &id, &req).await,
            Route::EventTypes => ok(event_types::catalogue()),
        }
    }

    async fn submit(&self, owner: &Owner, req: &Request) -> Result<Response<Body>, ApiError> {
        let submitted = self.intake.submit(owner, upload_from(req)?).await?;
        let answer = SubmittedV1::new(&submitted.document);
        let mut resp = json(StatusCode::ACCEPTED, &answer);
        if let Ok(location) = HeaderValue::from_str(&answer.url) {
            resp.headers_mut().insert(header::LOCATION, location);
        }
        if submitted.replayed {
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(resp)
    }

    async fn start_upload(&self, owner: &Owner, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: UploadBody = required_json_body(req)?;
        let key = idempotency_key(req)?;
        let (doc, upload) = self.intake.start_upload(owner, upload_intent(body)?, key).await?;
        let answer = UploadStartedV1 {
            id: doc.id.to_string(),
            url: document_url(&doc),
            document: ApiDocumentV1::from(&doc),
            upload: PresignedUploadV1::from(&upload),
        };
        Ok(json(StatusCode::CREATED, &answer))
    }

    async fn start_multipart(&self, owner: &Owner, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: UploadBody = required_json_body(req)?;
        let intent = upload_intent(body)?;
        let key = idempotency_key(req)?;
        let started = self.intake.start_multipart(owner, intent, key).await?;
        let doc = &started.document;
        let answer = MultipartStartedV1 {
            id: doc.id.to_string(),
            url: format!("/v1/multipart-uploads/{}", doc.id),
            document: ApiDocumentV1::from(doc),
            upload: MultipartPlanV1::of(doc).ok_or_else(|| {
                ApiError::new(StatusCode::CONFLICT, "conflict", "the upload is not a multipart upload")
            })?,
        };
        let mut resp = json(
            if started.replayed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            &answer,
        );
        if started.replayed {
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(resp)
    }

    async fn part_requests(&self, owner: &Owner, id: &DocumentId, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: PartsBody = required_json_body(req)?;
        let parts = body
            .parts
            .into_iter()
            .map(|p| {
                Ok(PartToSend {
                    number: p.number,
                    sha256: parse_sha256(&p.sha256, "parts[].sha256")?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let requests = self.intake.part_requests(owner, id, &parts).await?;
        ok(&PartRequestsV1 {
            parts: requests
                .into_iter()
                .map(|(number, r)| PartRequestV1 {
                    number,
                    method: r.method.to_owned(),
                    url: r.url,
                    headers: r.headers,
                    expires_at: r.expires_at,
                })
                .collect(),
        })
    }

    async fn complete_multipart(
        &self,
        owner: &Owner,
        id: &DocumentId,
        req: &Request,
    ) -> Result<Response<Body>, ApiError> {
        let body: CompleteBody = match req.body().as_ref().iter().all(u8::is_ascii_whitespace) {
            true => CompleteBody::default(),
            false => required_json_body(req)?,
        };
        let sent: Vec<SentPart> = body
            .parts
            .unwrap_or_default()
            .into_iter()
            .map(|p| SentPart {
                number: p.number,
                etag: p.etag,
            })
            .collect();
        let doc = self.intake.complete_multipart(owner, id, &sent).await?;
        ok(&ApiDocumentV1::from(&doc))
    }

    async fn list_documents(&self, owner: &Owner, req: &Request) -> Result<Response<Body>, ApiError> {
        let page = self.intake.list(owner, &list_query(req)?).await?;
        ok(&DocumentPageV1 {
            items: page.items.iter().map(ApiDocumentV1::from).collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        })
    }

    /// A 302 to a short-lived link; with `?redirect=false`, a 200 with the link (a browser's
    /// script cannot read a redirect's target, and following it would fetch the bytes).
    async fn download(&self, owner: &Owner, id: &DocumentId, req: &Request) -> Result<Response<Body>, ApiError> {
        let follow = match req.query_string_parameters_ref().and_then(|q| q.first("redirect")) {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(Invalid::new("redirect", "must be true or false").into()),
        };
        let link = self.intake.download(owner, id).await?;
        if !follow {
            return ok(&DownloadLinkV1 {
                url: link.url,
                expires_at: link.expires_at,
            });
        }
        let location = HeaderValue::from_str(&link.url)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "unusable download link"))?;
        let mut resp = json(
            StatusCode::FOUND,
            &DownloadLinkV1 {
                url: link.url,
                expires_at: link.expires_at,
            },
        );
        resp.headers_mut().insert(header::LOCATION, location);
        Ok(resp)
    }

    async fn update_document(&self, owner: &Owner, id: &DocumentId, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: PatchBody = required_json_body(req)?;
        let patch = DocumentPatch {
            name: body
                .name
                .map(|n| FileName::sanitize(&n).ok_or_else(|| Invalid::new("name", "has no usable characters")))
                .transpose()?,
            tags: body.tags.map(Tags::parse).transpose()?,
        };
        ok(&ApiDocumentV1::from(&self.intake.update(owner, id, patch).await?))
    }

    async fn create_webhook(&self, owner: &Owner, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: WebhookBody = required_json_body(req)?;
        let new = NewWebhook {
            url: body.url,
            events: body.events,
            description: body.description,
            metadata: body.metadata,
            rate_limit: body.rate_limit,
        };
        let (hook, secret) = self.webhooks.create(owner, new).await?;
        // The only time the secret is shown (and after a rotation, the new one).
        let created = WebhookCreatedV1 {
            webhook: WebhookV1::from(&hook),
            secret: secret.reveal().to_owned(),
        };
        let mut resp = json(StatusCode::CREATED, &created);
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/webhooks/{}", hook.id)) {
            resp.headers_mut().insert(header::LOCATION, location);
        }
        Ok(resp)
    }

    async fn update_webhook(&self, owner: &Owner, id: &WebhookId, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: WebhookPatchBody = required_json_body(req)?;
        let patch = WebhookPatch {
            enabled: body.enabled,
            events: body.events,
            description: body.description,
            metadata: body.metadata,
            rate_limit: body.rate_limit,
        };
        let hook = self.webhooks.update(owner, id, patch).await?;
        ok(&WebhookV1::from(&hook))
    }

    async fn replay(&self, owner: &Owner, id: &WebhookId, req: &Request) -> Result<Response<Body>, ApiError> {
        let body: ReplayBody = required_json_body(req)?;
        let what = match (body.event_id, body.since) {
            (Some(event_id), None) if event_id.is_empty() => {
                return Err(Invalid::new("event_id", "must not be empty").into());
            }
            (Some(event_id), None) => Replay::Event(event_id),
            (None, Some(since)) => Replay::Since(
                OffsetDateTime::parse(&since, &Rfc3339)
                    .map_err(|_| Invalid::new("since", "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"))?,
            ),
            _ => return Err(Invalid::new("event_id", "give either event_id or since").into()),
        };
        let replayed = self.webhooks.replay(owner, id, what).await?;
        Ok(json(
            StatusCode::ACCEPTED,
            &ReplayedV1 {
                queued: replayed.queued,
                more_since: replayed.more_since,
            },
        ))
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<TokenRecord, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(intake_core::Error::Unauthenticated)?;
        Ok(self.intake.caller(token).await?)
    }
}

/// A media type as the upload body must give it: exactly `type/subtype`, in lower case.
fn canonical_media_type(raw: &str) -> Result<ContentType, Invalid> {
    let parsed: ContentType = raw.parse()?;
    if parsed.as_str() != raw {
        return Err(Invalid::new(
            "content_type",
            "must be a media type in lower case without parameters, such as application/pdf",
        ));
    }
    Ok(parsed)
}

/// The request's `Idempotency-Key`, if it sent one. A key that is not 1-255 visible ASCII
/// characters (including bytes `to_str` cannot read) is a 400, never silently no key: a client
/// that believes its retries are safe must not get a second document.
fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| Invalid::new("Idempotency-Key", "must be 1-255 visible ASCII characters"))?;
            Ok(Some(text.parse()?))
        }
    }
}

fn header_str(req: &Request, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A JSON object body (required), or a 415/400 that says what is wrong with it.
fn required_json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let first = req.body().as_ref().iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "this request needs a JSON object as its body",
        ));
    }
    json_body(req)
}

/// A JSON body, or a 415/400 that says what is wrong with it.
fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if let Some(ct) = header_str(req, header::CONTENT_TYPE)
        && ct
            .parse::<ContentType>()
            .map_or(true, |ct| ct.as_str() != "application/json")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send this request's body as application/json",
        ));
    }
    let bytes: &[u8] = req.body().as_ref();
    let bytes = if bytes.is_empty() { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes).map_err(ApiError::invalid_json)
}

/// The file name from `?name=` or `Content-Disposition` (`filename*` preferred, RFC 6266).
fn upload_name(req: &Request) -> Option<String> {
    if let Some(name) = req.query_string_parameters_ref().and_then(|q| q.first("name")) {
        return Some(name.to_owned());
    }
    let disposition = header_str(req, header::CONTENT_DISPOSITION)?;
    let params = disposition
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()));
    let mut plain = None;
    for (key, value) in params {
        match key.as_str() {
            "filename*" => {
                let encoded = value.split_once("''").map_or(value, |(_, v)| v);
                return Some(percent_decode_str(encoded).decode_utf8_lossy().into_owned());
            }
            "filename" => plain = Some(value.trim_matches('"').to_owned()),
            _ => {}
        }
    }
    plain
}

fn upload_from(req: &Request) -> Result<Upload, ApiError> {
    let content_type = header_str(req, header::CONTENT_TYPE)
        .map(str::parse::<ContentType>)
        .transpose()?;
    let tags = req
        .query_string_parameters_ref()
        .and_then(|q| q.all("tag"))
        .unwrap_or_default();
    Ok(Upload {
        body: Bytes::copy_from_slice(req.body().as_ref()),
        name: upload_name(req),
        content_type,
        tags: Tags::parse(tags)?,
        idempotency_key: idempotency_key(req)?,
    })
}

fn list_query(req: &Request) -> Result<ListQuery, ApiError> {
    let q = req.query_string_parameters();
    let time = |field: &'static str| -> Result<Option<OffsetDateTime>, Invalid> {
        q.first(field)
            .map(|v| {
                OffsetDateTime::parse(v, &Rfc3339)
                    .map_err(|_| Invalid::new(field, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"))
            })
            .transpose()
    };
    Ok(ListQuery {
        status: q.first("status").map(str::parse).transpose()?,
        tag: q.first("tag").map(str::parse).transpose()?,
        since: time("since")?,
        until: time("until")?,
        after: q
            .first("cursor")
            .map(|c| {
                c.parse()
                    .map_err(|_| Invalid::new("cursor", "is not a cursor this API returned"))
            })
            .transpose()?,
        limit: q
            .first("limit")
            .map(|l| {
                l.parse()
                    .map_err(|_| Invalid::new("limit", format!("must be between 1 and {}", ListQuery::MAX_LIMIT)))
            })
            .transpose()?
            .unwrap_or(ListQuery::DEFAULT_LIMIT),
    })
}

/// An optional field that, when present, must not be `null` (as the schema says).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `POST /v1/multipart-uploads/{id}/parts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartsBody {
    parts: Vec<PartBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartBody {
    number: u32,
    /// Hex SHA-256 of the part's bytes: the store refuses other bytes.
    sha256: String,
}

/// `POST /v1/multipart-uploads/{id}/complete` (the body is optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    #[serde(default)]
    parts: Option<Vec<SentPartBody>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SentPartBody {
    number: u32,
    etag: String,
}

fn parse_sha256(hex: &str, field: &'static str) -> Result<Sha256, Invalid> {
    hex.to_ascii_lowercase()
        .parse::<Sha256>()
        .map_err(|_| Invalid::new(field, "must be 64 hexadecimal digits"))
}

/// What `POST /v1/uploads` and `POST /v1/multipart-uploads` say about the file to come.
fn upload_intent(body: UploadBody) -> Result<UploadIntent, ApiError> {
    Ok(UploadIntent {
        name: body.name,
        content_type: body.content_type.as_deref().map(canonical_media_type).transpose()?,
        size: body.size,
        sha256: body.sha256.as_deref().map(|h| parse_sha256(h, "sha256")).transpose()?,
        tags: Tags::parse(body.tags.unwrap_or_default())?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    content_type: Option<String>,
    #[serde(default, deserialize_with = "present")]
    size: Option<u64>,
    /// Hex SHA-256 of the bytes to come: S3 refuses other bytes.
    #[serde(default, deserialize_with = "present")]
    sha256: Option<String>,
    #[serde(default, deserialize_with = "present")]
    tags: Option<Vec<String>>,
}

/// `PUT /v1/documents/{id}/hold`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    tags: Option<Vec<String>>,
}

/// An optional field that may be `null` (to clear it): absent is `None`, `null` is
/// `Some(None)`.
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    #[serde(default)]
    events: Vec<EventType>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    rate_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookPatchBody {
    #[serde(default, deserialize_with = "present")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    events: Option<Vec<EventType>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    metadata: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit: Option<Option<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default, deserialize_with = "present")]
    event_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    since: Option<String>,
}

fn delivery_query(req: &Request) -> Result<DeliveryQuery, ApiError> {
    let q = req.query_string_parameters();
    Ok(DeliveryQuery {
        since: q
            .first("since")
            .map(|v| {
                OffsetDateTime::parse(v, &Rfc3339)
                    .map_err(|_| Invalid::new("since", "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"))
            })
            .transpose()?,
        cursor: q
            .first("cursor")
            .map(|c| {
                let well_formed = c.split_once('#').is_some_and(|(at, id)| {
                    at.len() == 20
                        && at.bytes().all(|b| b.is_ascii_digit())
                        && (1..=128).contains(&id.len())
                        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
                well_formed
                    .then(|| c.to_owned())
                    .ok_or_else(|| Invalid::new("cursor", "is not a cursor this API returned"))
            })
            .transpose()?,
        limit: q
            .first("limit")
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| Invalid::new("limit", "must be between 1 and 100"))
            })
            .transpose()?
            .unwrap_or(50),
        oldest_first: false,
    })
}
