//! The web console: a few static files built into this function (`console/`, gzip-compressed
//! at build time by `build.rs`), served at `/console/` beside the API they call. Same origin,
//! so the API needs no CORS and still refuses every other origin's use of a token (a browser
//! gets no `Access-Control-Allow-Origin` from it). The page's Content-Security-Policy allows
//! scripts and styles from this origin only (no inline script, no `eval`) and connections to
//! this origin and the bucket the multipart parts go to.

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
    /// A strong validator per representation: the file as written, and gzip-compressed.
    pub etag: &'static str,
    pub etag_gzip: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Where the console is served.
pub const PREFIX: &str = "/console/";

pub struct Console {
    csp: HeaderValue,
}

impl Default for Console {
    /// Connections to this origin only (the API); part uploads need `Console::new`.
    fn default() -> Self {
        Self::new(None)
    }
}

impl Console {
    /// `store_origin`: the origins presigned part requests go to (space-separated; see
    /// `store_origin`), added to the policy's `connect-src`.
    pub fn new(store_origin: Option<&str>) -> Self {
        let connect = match store_origin {
            Some(o)
                if o.bytes()
                    .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b';' && b != b',') =>
            {
                format!("'self' {o}")
            }
            Some(o) => {
                tracing::warn!(
                    origin = o,
                    "the store's origin cannot go in a policy: the console cannot upload parts"
                );
                "'self'".to_owned()
            }
            None => "'self'".to_owned(),
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src {connect}; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
             require-trusted-types-for 'script'; trusted-types 'none'"
        );
        Self {
            csp: HeaderValue::from_str(&csp).expect("a header value: checked above"),
        }
    }

    /// The origins of presigned S3 requests for `bucket` in `region` (virtual-hosted, regional
    /// and legacy global names, and path-style, which the SDK uses for a bucket name with
    /// dots), or of `endpoint` (a local AWS).
    pub fn store_origin(endpoint: Option<&str>, bucket: &str, region: &str) -> String {
        match endpoint.and_then(|e| url::Url::parse(e).ok()) {
            Some(u) => u.origin().ascii_serialization(),
            None => format!(
                "https://{bucket}.s3.{region}.amazonaws.com https://{bucket}.s3.amazonaws.com https://s3.{region}.amazonaws.com"
            ),
        }
    }

    /// The console's answer to `req`, or `None` when the request is not for the console.
    pub fn serve(&self, req: &Request) -> Option<Response<Body>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return None;
        }
        let path = req.uri().path();
        let mut resp = if path == "/" || path == "/console" {
            redirect(PREFIX)
        } else {
            let name = path.strip_prefix(PREFIX)?;
            let name = if name.is_empty() { "index.html" } else { name };
            match ASSETS.iter().find(|a| a.name == name) {
                Some(asset) => self.answer(req, asset),
                None => not_found(),
            }
        };
        self.secure(resp.headers_mut());
        Some(resp)
    }

    fn answer(&self, req: &Request, asset: &Asset) -> Response<Body> {
        let gzip = accepts_gzip(req);
        let etag = if gzip { asset.etag_gzip } else { asset.etag };
        // If-None-Match compares weakly (RFC 9110 13.1.2): a `W/` a proxy added still matches.
        let fresh = req
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*");
        let body = if fresh || req.method() == Method::HEAD {
            Body::Empty
        } else if gzip {
            Body::Binary(asset.gzip.to_vec())
        } else {
            Body::Binary(asset.raw.to_vec())
        };
        let mut resp = Response::new(body);
        if fresh {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        h.insert(header::ETAG, HeaderValue::from_static(etag));
        // Always revalidated (a cheap 304): a new deployment is seen at the next load.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzip && !fresh {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        resp
    }

    fn secure(&self, h: &mut lambda_http::http::HeaderMap) {
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    }
}

/// Whether the request's `Accept-Encoding` lets gzip through (RFC 9110 12.5.3): an entry
/// naming gzip decides (refused with `q=0`), else a `*` entry does, else no.
fn accepts_gzip(req: &Request) -> bool {
    let (mut gzip, mut any) = (None, None);
    for coding in req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q > 0.0);
        } else if name == "*" {
            any = Some(q > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    resp
}

fn not_found() -> Response<Body> {
    let mut resp = Response::new(Body::Text("not found\n".into()));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// What a browser downloads to open the console, compressed (the budget is 250 KiB).
pub fn compressed_size() -> usize {
    ASSETS.iter().map(|a| a.gzip.len()).sum()
}
