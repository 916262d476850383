//! IAM, as far as a function's own calls need it: a role's identity-based statements (the
//! template's, resolved) and the decision for one request (action, resource, condition keys):
//! allowed when an `Allow` statement matches and no `Deny` does, as IAM decides within one
//! account. Actions and resources match with IAM's wildcards (`*`, `?`; actions without regard
//! to case). Conditions: the `String*`, `Arn*`, `Bool` and `Null` operators, with the
//! `ForAllValues:`/`ForAnyValue:` set qualifiers (for `dynamodb:LeadingKeys`).

use std::collections::HashMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Where it comes from: `<role policy>/<Sid or index>`.
    pub name: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// One authorization a request needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Request {
    pub action: String,
    pub resource: String,
    /// Condition keys and their values (e.g. `dynamodb:LeadingKeys`).
    pub context: Vec<(String, Vec<String>)>,
}

impl Request {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.push((key.to_owned(), values));
        self
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// The statements of a resolved policy document, named after `policy`.
pub fn statements(policy: &str, document: &Value) -> Vec<Statement> {
    let list = match &document["Statement"] {
        Value::Array(a) => a.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    list.iter()
        .enumerate()
        .map(|(i, st)| {
            let mut conditions = Vec::new();
            for (operator, keys) in st["Condition"].as_object().into_iter().flatten() {
                for (key, values) in keys.as_object().into_iter().flatten() {
                    conditions.push(Condition {
                        operator: operator.clone(),
                        key: key.clone(),
                        values: strings(values),
                    });
                }
            }
            Statement {
                name: format!(
                    "{policy}/{}",
                    st["Sid"].as_str().map_or_else(|| i.to_string(), str::to_owned)
                ),
                allow: st["Effect"] == "Allow",
                actions: strings(&st["Action"]),
                resources: strings(&st["Resource"]),
                conditions,
            }
        })
        .collect()
}

/// Whether `pattern` (with `*` and `?`) matches `text`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Condition {
    fn holds(&self, context: &HashMap<&str, &Vec<String>>) -> bool {
        let (qualifier, operator) = match self.operator.split_once(':') {
            Some((q, o)) if q == "ForAllValues" || q == "ForAnyValue" => (Some(q), o),
            _ => (None, self.operator.as_str()),
        };
        let present = context.get(self.key.as_str());
        if operator == "Null" {
            let want_absent = self.values.first().is_some_and(|v| v == "true");
            return present.is_none_or(|v| v.is_empty()) == want_absent;
        }
        let (base, if_exists) = match operator.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (operator, false),
        };
        let Some(values) = present.filter(|v| !v.is_empty()) else {
            // IAM: ForAllValues holds for a key the request lacks; IfExists too.
            return qualifier == Some("ForAllValues") || if_exists;
        };
        let one = |value: &str| {
            let (negate, op) = match base.strip_prefix("StringNot").or_else(|| base.strip_prefix("ArnNot")) {
                Some(rest) => (
                    true,
                    if base.starts_with("Arn") {
                        format!("Arn{rest}")
                    } else {
                        format!("String{rest}")
                    },
                ),
                None => (false, base.to_owned()),
            };
            let matched = self.values.iter().any(|pattern| match op.as_str() {
                "StringEquals" | "ArnEquals" => pattern == value,
                "StringEqualsIgnoreCase" => pattern.eq_ignore_ascii_case(value),
                "StringLike" | "ArnLike" => glob(pattern, value),
                "Bool" => pattern.eq_ignore_ascii_case(value),
                _ => false,
            });
            matched != negate
        };
        match qualifier {
            Some("ForAllValues") => values.iter().all(|v| one(v)),
            _ => values.iter().any(|v| one(v)),
        }
    }
}

impl Statement {
    fn matches(&self, request: &Request, context: &HashMap<&str, &Vec<String>>) -> bool {
        self.actions
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &request.action.to_ascii_lowercase()))
            && self.resources.iter().any(|r| glob(r, &request.resource))
            && self.conditions.iter().all(|c| c.holds(context))
    }
}

/// What IAM decides, and which statement allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed(String),
    /// No statement allows it (an implicit deny) or one denies it (named).
    Denied(Option<String>),
}

pub fn decide(statements: &[Statement], request: &Request) -> Decision {
    let context: HashMap<&str, &Vec<String>> = request.context.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if let Some(deny) = statements.iter().find(|s| !s.allow && s.matches(request, &context)) {
        return Decision::Denied(Some(deny.name.clone()));
    }
    match statements.iter().find(|s| s.allow && s.matches(request, &context)) {
        Some(allow) => Decision::Allowed(allow.name.clone()),
        None => Decision::Denied(None),
    }
}

/// What the AWS-managed policies SAM attaches allow (as far as the local run needs to know:
/// logs, traces, and the pollers of the event source mappings).
pub fn managed_policy(arn: &str) -> Vec<Statement> {
    let document = match arn.rsplit('/').next().unwrap_or_default() {
        "AWSLambdaBasicExecutionRole" => serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}),
        "AWSXrayWriteOnlyAccess" => serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "Resource": "*"}]}),
        "AWSLambdaSQSQueueExecutionRole" => serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], "Resource": "*"}]}),
        "AWSLambdaDynamoDBExecutionRole" => serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"], "Resource": "*"}]}),
        _ => return Vec::new(),
    };
    statements(arn, &document)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table_statements() -> Vec<Statement> {
        statements(
            "Role/Policy0",
            &json!({"Statement": [
                {"Sid": "Read", "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:us-east-1:1:table/t",
                 "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["DOC#*", "BLOB#*"]}}},
                {"Sid": "Objects", "Effect": "Allow", "Action": ["s3:GetObject*"], "Resource": "arn:aws:s3:::b/incoming/*"},
                {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/incoming/secret*"}
            ]}),
        )
    }

    #[test]
    fn requests_are_decided_as_iam_decides_them() {
        let s = table_statements();
        let get = |pk: &str| {
            Request::new("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t")
                .with("dynamodb:LeadingKeys", vec![pk.into()])
        };
        assert_eq!(decide(&s, &get("DOC#1")), Decision::Allowed("Role/Policy0/Read".into()));
        assert_eq!(decide(&s, &get("TOKEN#1")), Decision::Denied(None));
        assert_eq!(
            decide(
                &s,
                &Request::new("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/t")
            ),
            Decision::Denied(None)
        );
        assert!(matches!(
            decide(
                &s,
                &Request::new("S3:GetObjectVersion", "arn:aws:s3:::b/incoming/a b.pdf")
            ),
            Decision::Allowed(_)
        ));
        assert_eq!(
            decide(&s, &Request::new("s3:GetObject", "arn:aws:s3:::b/incoming/secret.pdf")),
            Decision::Denied(Some("Role/Policy0/NoDeletes".into()))
        );
        assert_eq!(
            decide(&s, &Request::new("s3:GetObject", "arn:aws:s3:::b/blobs/x")),
            Decision::Denied(None)
        );
    }

    #[test]
    fn globs_match_like_iam() {
        assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b"));
        assert!(glob("DOC#*", "DOC#"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
    }
}
