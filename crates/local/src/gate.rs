//! The IAM gate: each function of a local run talks to AWS through a gate of its own, which
//! reads every request as the authorizations it needs ([`crate::aws_request`]), decides them
//! against the function's role from the template ([`crate::iam`]), and answers a request the
//! role would not allow with the service's own `AccessDenied`, as AWS would. Every decision is
//! recorded, so a run can tell which calls were denied and which grants were never used.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::aws_request::Scope;
use crate::capacity::{Capacity, Named, Refusal};
use crate::dynamodb_keys;
use crate::iam::{self, Decision, Statement};
use crate::observe::{Call, Observer, Touched};

/// One authorization a function needed, and what IAM said.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decided {
    pub function: String,
    pub operation: String,
    pub action: String,
    pub resource: String,
    /// The statement that allowed it; `None`: denied.
    pub allowed_by: Option<String>,
}

/// What every function's gate saw.
#[derive(Debug, Default)]
pub struct Ledger {
    pub decisions: Mutex<BTreeSet<Decided>>,
    /// function -> its role's statements (to tell which were never used)
    pub roles: Mutex<BTreeMap<String, Vec<Statement>>>,
    /// Who is told of every allowed call (the benchmark's meter), if anyone.
    pub observer: Option<Arc<dyn Observer>>,
    /// The capacity model that refuses what AWS would throttle, if it is on.
    pub capacity: Option<Arc<Capacity>>,
}

impl Ledger {
    /// A ledger whose allowed calls are shown to `observer`.
    pub fn observed_by(observer: Option<Arc<dyn Observer>>) -> Self {
        Self {
            observer,
            ..Self::default()
        }
    }

    /// This ledger, with `capacity` holding the calls it lets through to AWS's limits.
    pub fn with_capacity(self, capacity: Option<Arc<Capacity>>) -> Self {
        Self { capacity, ..self }
    }

    pub fn denied(&self) -> Vec<Decided> {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|d| d.allowed_by.is_none())
            .cloned()
            .collect()
    }

    /// Per function, the statements of its role (managed policies aside) that allowed nothing.
    pub fn unused(&self) -> BTreeMap<String, Vec<String>> {
        let decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        let used: BTreeSet<&str> = decisions.iter().filter_map(|d| d.allowed_by.as_deref()).collect();
        self.roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(function, statements)| {
                let unused = statements
                    .iter()
                    .filter(|s| s.allow && !s.name.starts_with("arn:aws:iam::aws:policy/"))
                    .filter(|s| !used.contains(s.name.as_str()))
                    .map(|s| s.name.clone())
                    .collect();
                (function.clone(), unused)
            })
            .collect()
    }

    /// The statements of the function's role.
    pub fn role(&self, function: &str) -> Vec<Statement> {
        self.roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
            .cloned()
            .unwrap_or_default()
    }

    /// Decides (and records) a request made on the function's behalf by the plumbing (a
    /// destination, a poller), as Lambda does with the function's role.
    pub fn authorize(&self, function: &str, operation: &str, request: &iam::Request) -> bool {
        let decision = iam::decide(&self.role(function), request);
        let allowed = matches!(decision, Decision::Allowed(_));
        self.record(function, operation, request, decision);
        allowed
    }

    fn record(&self, function: &str, operation: &str, request: &iam::Request, decision: Decision) {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Decided {
                function: function.to_owned(),
                operation: operation.to_owned(),
                action: request.action.clone(),
                resource: request.resource.clone(),
                allowed_by: match decision {
                    Decision::Allowed(by) => Some(by),
                    Decision::Denied(_) => None,
                },
            });
    }

    /// A summary per function: calls by action, denied ones, unused grants.
    pub fn report(&self) -> String {
        self.report_of(|_| true)
    }

    /// [`Self::report`] of the functions `which` picks.
    pub fn report_of(&self, which: impl Fn(&str) -> bool) -> String {
        let decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        let mut by_function: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
        for d in decisions.iter().filter(|d| which(&d.function)) {
            *by_function
                .entry(&d.function)
                .or_default()
                .entry(format!(
                    "{}{}",
                    d.action,
                    if d.allowed_by.is_none() { " DENIED" } else { "" }
                ))
                .or_default() += 1;
        }
        for (function, actions) in by_function {
            let list: Vec<String> = actions.iter().map(|(a, n)| format!("{a} ({n} resources)")).collect();
            out.push_str(&format!("  {function}: {}\n", list.join(", ")));
        }
        for (function, unused) in self.unused() {
            if !unused.is_empty() && which(&function) {
                out.push_str(&format!(
                    "  {function}: granted but never used: {}\n",
                    unused.join(", ")
                ));
            }
        }
        out
    }
}

struct Gate {
    function: String,
    upstream: String,
    scope: Scope,
    ledger: Arc<Ledger>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// Starts a gate for `function` in front of `upstream`; returns its URL (the function's
/// `AWS_ENDPOINT_URL`).
pub async fn start(
    function: &str,
    role: Vec<Statement>,
    upstream: &str,
    scope: Scope,
    ledger: Arc<Ledger>,
) -> std::io::Result<String> {
    ledger
        .roles
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(function.to_owned(), role);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let gate = Arc::new(Gate {
        function: function.to_owned(),
        upstream: upstream.trim_end_matches('/').to_owned(),
        scope,
        ledger,
        http: Client::builder(TokioExecutor::new()).build_http(),
    });
    tokio::spawn(crate::serve_http(listener, move |req, _| {
        let gate = gate.clone();
        async move { gate.handle(req).await }
    }));
    Ok(url)
}

impl Gate {
    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let headers: HashMap<String, String> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let call = self.scope.classify(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or_default(),
            &headers,
            &body,
        );
        // A browser's CORS preflight (before a presigned part upload from the console) carries
        // no credentials: S3 answers it from the bucket's CORS rules, without IAM.
        if parts.method == hyper::Method::OPTIONS && call.service == "s3" && parts.headers.contains_key("origin") {
            return self.forward(parts, body).await.0;
        }
        let statements = self.ledger.role(&self.function);
        let mut denied = call.needs.is_empty().then(|| {
            format!(
                "{} {} is not an operation the local run knows",
                call.service, call.operation
            )
        });
        for need in &call.needs {
            let decision = iam::decide(&statements, need);
            if !matches!(decision, Decision::Allowed(_)) && denied.is_none() {
                denied = Some(format!(
                    "User: {} is not authorized to perform: {} on resource: {} because no identity-based policy allows the {} action",
                    self.function, need.action, need.resource, need.action
                ));
            }
            self.ledger.record(&self.function, &call.operation, need, decision);
        }
        if let Some(message) = denied {
            eprintln!("[iam] {} DENIED: {message}", self.function);
            return access_denied(&call.service, &message);
        }
        let observer = self.ledger.observer.clone();
        let capacity = self.ledger.capacity.clone().filter(|_| call.service == "dynamodb");
        if observer.is_none() && capacity.is_none() {
            return self.forward(parts, body).await.0;
        }
        let request: serde_json::Value = if call.service == "dynamodb" {
            serde_json::from_slice(&body).unwrap_or_default()
        } else {
            serde_json::Value::Null
        };
        let written = if call.service == "dynamodb" && dynamodb_keys::is_write(&call.operation) {
            dynamodb_keys::written_keys(&call.operation, &request, &self.scope.tables)
        } else {
            Vec::new()
        };
        let wants_items = observer.as_ref().is_some_and(|o| o.wants_items());
        let authorization = headers.get("authorization").cloned().unwrap_or_default();
        let before = if !written.is_empty() && (wants_items || capacity.is_some()) {
            self.read_items(&written, &authorization).await
        } else {
            Vec::new()
        };
        let admitted = match &capacity {
            Some(capacity) => {
                let named: Vec<Named> = written
                    .iter()
                    .enumerate()
                    .map(|(i, (table, key))| Named {
                        table: table.clone(),
                        key: key.clone(),
                        before: before.get(i).cloned().flatten(),
                    })
                    .collect();
                match capacity.admit(&self.function, &call.operation, &request, &named, &self.scope.tables) {
                    Ok(admitted) => Some(admitted),
                    Err(refusal) => return refused(&refusal),
                }
            }
            None => None,
        };
        let (response, answer) = self.forward(parts, body.clone()).await;
        if let Some(admitted) = &admitted {
            admitted.answered(&answer);
        }
        drop(admitted);
        let Some(observer) = observer else {
            return response;
        };
        let after = if wants_items && !written.is_empty() {
            self.read_items(&written, &authorization).await
        } else {
            Vec::new()
        };
        let before = if wants_items { before } else { Vec::new() };
        let items: Vec<Touched> = written
            .into_iter()
            .enumerate()
            .map(|(i, (table, key))| Touched {
                table,
                key,
                before: before.get(i).cloned().flatten(),
                after: after.get(i).cloned().flatten(),
            })
            .collect();
        observer.call(&Call {
            function: &self.function,
            service: &call.service,
            operation: &call.operation,
            request: &body,
            answer: &answer,
            items: &items,
            tables: &self.scope.tables,
        });
        response
    }

    /// The items `keys` name, as they are now (read straight from the local AWS, unmetered,
    /// with the caller's credentials so that the same account is read): one `GetItem` for one
    /// key, `BatchGetItem`s of up to 100 keys for more (a statistics transaction names 100
    /// items; reading them one by one would multiply the local AWS's load by a hundred).
    async fn read_items(
        &self,
        keys: &[(String, serde_json::Value)],
        authorization: &str,
    ) -> Vec<Option<serde_json::Value>> {
        if let [(table, key)] = keys {
            let body = serde_json::json!({"TableName": table, "Key": key, "ConsistentRead": true});
            let answer = self.dynamodb("GetItem", &body, authorization).await;
            return vec![answer.and_then(|v| v.get("Item").cloned())];
        }
        let mut found: HashMap<(String, String), serde_json::Value> = HashMap::new();
        let mut wanted: Vec<(String, serde_json::Value)> = Vec::new();
        for (table, key) in keys {
            if !wanted.iter().any(|(t, k)| t == table && k == key) {
                wanted.push((table.clone(), key.clone()));
            }
        }
        for chunk in wanted.chunks(100) {
            let mut request: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
            for (table, key) in chunk {
                let entry = request
                    .entry(table.clone())
                    .or_insert_with(|| serde_json::json!({"Keys": [], "ConsistentRead": true}));
                if let Some(keys) = entry["Keys"].as_array_mut() {
                    keys.push(key.clone());
                }
            }
            let body = serde_json::json!({ "RequestItems": request });
            let Some(answer) = self.dynamodb("BatchGetItem", &body, authorization).await else {
                continue;
            };
            for (table, items) in answer["Responses"].as_object().into_iter().flatten() {
                let names = self.scope.tables.get(table).map(|t| t.key.clone()).unwrap_or_default();
                for item in items.as_array().into_iter().flatten() {
                    let key: serde_json::Map<String, serde_json::Value> =
                        names.iter().map(|n| (n.clone(), item[n].clone())).collect();
                    found.insert(
                        (table.clone(), serde_json::Value::Object(key).to_string()),
                        item.clone(),
                    );
                }
            }
        }
        keys.iter()
            .map(|(table, key)| {
                let names = self.scope.tables.get(table).map(|t| t.key.clone()).unwrap_or_default();
                let key: serde_json::Map<String, serde_json::Value> =
                    names.iter().map(|n| (n.clone(), key[n].clone())).collect();
                found
                    .get(&(table.clone(), serde_json::Value::Object(key).to_string()))
                    .cloned()
            })
            .collect()
    }

    /// One DynamoDB request straight to the local AWS; its answer, if it answered 200.
    async fn dynamodb(
        &self,
        operation: &str,
        body: &serde_json::Value,
        authorization: &str,
    ) -> Option<serde_json::Value> {
        let request = Request::builder()
            .method("POST")
            .uri(format!("{}/", self.upstream))
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", authorization)
            .body(Full::new(Bytes::from(body.to_string())))
            .ok()?;
        let response = self.http.request(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&bytes).ok()
    }

    /// Sends the request on; the answer, and its body (for the observer).
    async fn forward(&self, parts: hyper::http::request::Parts, body: Bytes) -> (Response<Full<Bytes>>, Bytes) {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if name != hyper::header::HOST {
                request = request.header(name, value);
            }
        }
        let Ok(request) = request.body(Full::new(body)) else {
            return (status(StatusCode::BAD_GATEWAY, Bytes::new()), Bytes::new());
        };
        match self.http.request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                match body.collect().await {
                    Ok(b) => {
                        let b = b.to_bytes();
                        (Response::from_parts(parts, Full::new(b.clone())), b)
                    }
                    Err(e) => (
                        status(StatusCode::BAD_GATEWAY, Bytes::from(e.to_string())),
                        Bytes::new(),
                    ),
                }
            }
            Err(e) => (
                status(StatusCode::BAD_GATEWAY, Bytes::from(e.to_string())),
                Bytes::new(),
            ),
        }
    }
}

fn status(code: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = code;
    r
}

/// DynamoDB's answer to a request the capacity model refused.
fn refused(refusal: &Refusal) -> Response<Full<Bytes>> {
    let mut r = status(
        StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST),
        Bytes::from(refusal.body.clone()),
    );
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

/// The service's own answer to a request IAM denies.
fn access_denied(service: &str, message: &str) -> Response<Full<Bytes>> {
    let (code, content_type, body) = match service {
        "dynamodb" => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException", "message": message})
                .to_string(),
        ),
        "sqs" => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": "com.amazonaws.sqs#AccessDenied", "message": message}).to_string(),
        ),
        "s3" => (
            StatusCode::FORBIDDEN,
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
            ),
        ),
        _ => (
            StatusCode::FORBIDDEN,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>{message}</Message></Error></ErrorResponse>"
            ),
        ),
    };
    let mut r = status(code, Bytes::from(body));
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_answered_as_each_service_answers_them() {
        let ddb = access_denied("dynamodb", "no");
        assert_eq!(ddb.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ddb.headers()[hyper::header::CONTENT_TYPE], "application/x-amz-json-1.0");
        assert_eq!(access_denied("s3", "no").status(), StatusCode::FORBIDDEN);
        assert_eq!(access_denied("sns", "no").status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_ledger_tells_denied_calls_and_unused_grants() {
        let ledger = Ledger::default();
        let role = iam::statements(
            "Role/P",
            &serde_json::json!({"Statement": [
                {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "Write", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}
            ]}),
        );
        ledger.roles.lock().unwrap().insert("F".into(), role);
        assert!(ledger.authorize("F", "GetObject", &iam::Request::new("s3:GetObject", "arn:aws:s3:::b/k")));
        assert!(!ledger.authorize(
            "F",
            "DeleteObject",
            &iam::Request::new("s3:DeleteObject", "arn:aws:s3:::b/k")
        ));
        assert_eq!(ledger.denied().len(), 1);
        assert_eq!(ledger.denied()[0].action, "s3:DeleteObject");
        assert_eq!(ledger.unused()["F"], vec!["Role/P/Write".to_owned()]);
    }
}
