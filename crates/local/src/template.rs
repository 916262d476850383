//! template.yaml as CloudFormation receives it (the SAM transform, run by
//! `scripts/lib/sam_transform.py`), and the part of CloudFormation a local run needs: parameter
//! values, conditions and the intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`,
//! `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::FindInMap`, condition functions), resolved
//! against the physical names and attributes the local stack gives its resources.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value};

/// The transformed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub json: Value,
}

impl Template {
    /// Runs the SAM transform of `template` with `python` (which has aws-sam-translator) for
    /// these parameter values.
    pub fn transform(
        python: &Path,
        repo: &Path,
        template: &Path,
        stack: &StackIdentity,
        parameters: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut cmd = std::process::Command::new(python);
        cmd.arg(repo.join("scripts/lib/sam_transform.py"))
            .arg("--template")
            .arg(template)
            .args([
                "--region",
                &stack.region,
                "--account",
                &stack.account,
                "--stack-name",
                &stack.name,
            ]);
        for (k, v) in parameters {
            cmd.arg("--param").arg(format!("{k}={v}"));
        }
        let out = cmd.output().map_err(|e| {
            format!(
                "cannot run the SAM transform with {} ({e}); run scripts/bootstrap",
                python.display()
            )
        })?;
        if !out.status.success() {
            return Err(format!(
                "the SAM transform of {} failed:\n{}",
                template.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let json = serde_json::from_slice(&out.stdout).map_err(|e| format!("the SAM transform's output: {e}"))?;
        Ok(Self { json })
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.json["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.json["Resources"].get(logical_id)
    }

    /// The logical ids of the resources of `kind`, in order.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"] == kind)
    }
}

/// Who the stack is: its name, account and region (the pseudo parameters).
#[derive(Debug, Clone)]
pub struct StackIdentity {
    pub name: String,
    pub account: String,
    pub region: String,
}

/// What a resource resolves to: its `Ref` and its attributes.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub reference: String,
    pub attributes: HashMap<String, String>,
}

/// Resolves intrinsic functions against parameter values and the physical resources known so
/// far. Resolving something that names a resource not known yet is an error that says which.
pub struct Resolver<'a> {
    pub template: &'a Template,
    pub stack: &'a StackIdentity,
    pub parameters: BTreeMap<String, String>,
    pub physical: HashMap<String, Physical>,
}

/// The marker `AWS::NoValue` resolves to: removed from the lists and objects that hold it.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

impl<'a> Resolver<'a> {
    pub fn new(template: &'a Template, stack: &'a StackIdentity, given: &BTreeMap<String, String>) -> Self {
        let mut parameters = BTreeMap::new();
        for (name, spec) in template.json["Parameters"].as_object().into_iter().flatten() {
            let value = given.get(name).cloned().or_else(|| scalar(&spec["Default"]));
            if let Some(v) = value {
                parameters.insert(name.clone(), v);
            }
        }
        Self {
            template,
            stack,
            parameters,
            physical: HashMap::new(),
        }
    }

    /// Whether the condition `name` holds.
    pub fn condition(&self, name: &str) -> Result<bool, String> {
        let definition = self.template.json["Conditions"]
            .get(name)
            .ok_or_else(|| format!("no condition {name}"))?;
        self.truth(definition)
    }

    /// Whether a resource exists in this stack (its `Condition`, if any, holds).
    pub fn exists(&self, resource: &Value) -> Result<bool, String> {
        match resource["Condition"].as_str() {
            Some(c) => self.condition(c),
            None => Ok(true),
        }
    }

    fn truth(&self, v: &Value) -> Result<bool, String> {
        let (f, args) = single(v).ok_or_else(|| format!("not a condition: {v}"))?;
        let args = args.as_array();
        match (f, args) {
            ("Fn::Equals", Some(a)) if a.len() == 2 => {
                let l = self.resolve(&a[0])?;
                let r = self.resolve(&a[1])?;
                Ok(scalar(&l) == scalar(&r))
            }
            ("Fn::Not", Some(a)) if a.len() == 1 => Ok(!self.truth(&a[0])?),
            ("Fn::And", Some(a)) => {
                for c in a {
                    if !self.truth(c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            ("Fn::Or", Some(a)) => {
                for c in a {
                    if self.truth(c)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            ("Condition", _) => self.condition(v["Condition"].as_str().unwrap_or_default()),
            _ => Err(format!("not a condition: {v}")),
        }
    }

    /// `v` with every intrinsic function resolved.
    pub fn resolve(&self, v: &Value) -> Result<Value, String> {
        let out = self.resolve_inner(v)?;
        Ok(strip_no_value(out).unwrap_or(Value::Null))
    }

    /// `v` resolved to a string.
    pub fn string(&self, v: &Value) -> Result<String, String> {
        let r = self.resolve(v)?;
        scalar(&r).ok_or_else(|| format!("{v} does not resolve to a string but to {r}"))
    }

    fn resolve_inner(&self, v: &Value) -> Result<Value, String> {
        if let Some((f, args)) = single(v)
            && (f == "Ref" || f.starts_with("Fn::") || f == "Condition")
        {
            return self.function(f, args);
        }
        Ok(match v {
            Value::Array(items) => Value::Array(items.iter().map(|i| self.resolve_inner(i)).collect::<Result<_, _>>()?),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve_inner(v)?)))
                    .collect::<Result<Map<_, _>, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn function(&self, f: &str, args: &Value) -> Result<Value, String> {
        match f {
            "Ref" => self
                .reference(args.as_str().ok_or("Ref of a non-string")?)
                .map(Value::String),
            "Fn::GetAtt" => {
                let (resource, attribute) = match args {
                    Value::Array(a) if a.len() == 2 => {
                        (a[0].as_str().unwrap_or_default().to_owned(), self.string(&a[1])?)
                    }
                    Value::String(s) => match s.split_once('.') {
                        Some((r, a)) => (r.to_owned(), a.to_owned()),
                        None => return Err(format!("Fn::GetAtt {s}")),
                    },
                    _ => return Err(format!("Fn::GetAtt {args}")),
                };
                self.attribute(&resource, &attribute).map(Value::String)
            }
            "Fn::Sub" => {
                let (text, vars) = match args {
                    Value::String(s) => (s.clone(), Map::new()),
                    Value::Array(a) if a.len() == 2 => (
                        a[0].as_str().unwrap_or_default().to_owned(),
                        a[1].as_object().cloned().unwrap_or_default(),
                    ),
                    _ => return Err(format!("Fn::Sub {args}")),
                };
                let mut local = HashMap::new();
                for (k, v) in vars {
                    local.insert(k, self.string(&v)?);
                }
                self.substitute(&text, &local).map(Value::String)
            }
            "Fn::If" => {
                let a = args
                    .as_array()
                    .filter(|a| a.len() == 3)
                    .ok_or_else(|| format!("Fn::If {args}"))?;
                let holds = self.condition(a[0].as_str().unwrap_or_default())?;
                self.resolve_inner(if holds { &a[1] } else { &a[2] })
            }
            "Fn::Join" => {
                let a = args
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| format!("Fn::Join {args}"))?;
                let sep = a[0].as_str().unwrap_or_default();
                let items = strip_no_value(self.resolve_inner(&a[1])?).unwrap_or(Value::Null);
                let parts: Vec<String> = items.as_array().into_iter().flatten().filter_map(scalar).collect();
                Ok(Value::String(parts.join(sep)))
            }
            "Fn::Select" => {
                let a = args
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| format!("Fn::Select {args}"))?;
                let index: usize = self.string(&a[0])?.parse().map_err(|_| format!("Fn::Select {args}"))?;
                let list = self.resolve_inner(&a[1])?;
                list.get(index)
                    .cloned()
                    .ok_or_else(|| format!("Fn::Select {index} of {list}"))
            }
            "Fn::Split" => {
                let a = args
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| format!("Fn::Split {args}"))?;
                let sep = a[0].as_str().unwrap_or_default();
                let text = self.string(&a[1])?;
                Ok(Value::Array(
                    text.split(sep).map(|s| Value::String(s.to_owned())).collect(),
                ))
            }
            "Fn::FindInMap" => {
                let a = args
                    .as_array()
                    .filter(|a| a.len() == 3)
                    .ok_or_else(|| format!("Fn::FindInMap {args}"))?;
                let (map, top, second) = (self.string(&a[0])?, self.string(&a[1])?, self.string(&a[2])?);
                self.template.json["Mappings"][&map][&top]
                    .get(&second)
                    .cloned()
                    .ok_or_else(|| format!("no mapping {map}.{top}.{second}"))
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => {
                let mut call = Map::new();
                call.insert(f.to_owned(), args.clone());
                self.truth(&Value::Object(call)).map(Value::Bool)
            }
            other => Err(format!("{other} is not emulated")),
        }
    }

    fn reference(&self, name: &str) -> Result<String, String> {
        match name {
            "AWS::Region" => return Ok(self.stack.region.clone()),
            "AWS::AccountId" => return Ok(self.stack.account.clone()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::StackName" => return Ok(self.stack.name.clone()),
            "AWS::StackId" => {
                return Ok(format!(
                    "arn:aws:cloudformation:{}:{}:stack/{}/local",
                    self.stack.region, self.stack.account, self.stack.name
                ));
            }
            "AWS::NoValue" => return Ok(NO_VALUE.into()),
            _ => {}
        }
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        self.physical
            .get(name)
            .map(|p| p.reference.clone())
            .ok_or_else(|| format!("Ref {name}: not a parameter, and no such resource in the local stack"))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, String> {
        self.physical
            .get(resource)
            .and_then(|p| p.attributes.get(attribute).cloned())
            .ok_or_else(|| format!("Fn::GetAtt {resource}.{attribute}: not known to the local stack"))
    }

    fn substitute(&self, text: &str, local: &HashMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("Fn::Sub {text}: unclosed ${{"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = local.get(name) {
                out.push_str(v);
            } else if let Some((r, a)) = name.split_once('.').filter(|(r, _)| !r.starts_with("AWS::")) {
                out.push_str(&self.attribute(r, a)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A JSON object with exactly one key: `(key, value)`.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// A scalar as CloudFormation compares and substitutes it.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) => Some(a.iter().filter_map(scalar).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

fn strip_no_value(v: Value) -> Option<Value> {
    match v {
        Value::String(s) if s == NO_VALUE => None,
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(strip_no_value).collect())),
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| strip_no_value(v).map(|v| (k, v)))
                .collect(),
        )),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resolver_for(template: Value) -> (Template, StackIdentity) {
        (
            Template { json: template },
            StackIdentity {
                name: "intake-local".into(),
                account: "000000000001".into(),
                region: "us-east-1".into(),
            },
        )
    }

    #[test]
    fn intrinsics_resolve_as_cloudformation_resolves_them() {
        let (t, stack) = resolver_for(json!({
            "Parameters": {"Environment": {"Type": "String", "Default": "dev"}, "Count": {"Type": "Number", "Default": 0}},
            "Conditions": {
                "IsProd": {"Fn::Equals": [{"Ref": "Environment"}, "prod"]},
                "HasCount": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Count"}, 0]}]}
            },
            "Mappings": {"M": {"us-east-1": {"Id": "42"}}},
            "Resources": {}
        }));
        let mut r = Resolver::new(&t, &stack, &BTreeMap::new());
        r.physical.insert(
            "Queue".into(),
            Physical {
                reference: "https://q".into(),
                attributes: HashMap::from([("Arn".into(), "arn:aws:sqs:us-east-1:000000000001:q".into())]),
            },
        );
        let v = r
            .resolve(&json!({
                "name": {"Fn::Sub": "intake-${Environment}-${AWS::AccountId}-${AWS::Region}"},
                "arn": {"Fn::GetAtt": ["Queue", "Arn"]},
                "sub_attr": {"Fn::Sub": "${Queue.Arn}/x and ${!Literal}"},
                "url": {"Ref": "Queue"},
                "if": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]},
                "list": ["a", {"Fn::If": ["HasCount", "b", {"Ref": "AWS::NoValue"}]}],
                "join": {"Fn::Join": ["-", ["a", {"Fn::Select": [1, {"Fn::Split": [",", "x,y"]}]}]]},
                "map": {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Id"]}
            }))
            .unwrap();
        assert_eq!(
            v,
            json!({
                "name": "intake-dev-000000000001-us-east-1",
                "arn": "arn:aws:sqs:us-east-1:000000000001:q",
                "sub_attr": "arn:aws:sqs:us-east-1:000000000001:q/x and ${Literal}",
                "url": "https://q",
                "list": ["a"],
                "join": "a-y",
                "map": "42"
            })
        );
        assert!(!r.condition("IsProd").unwrap());
        let prod = Resolver::new(&t, &stack, &BTreeMap::from([("Environment".into(), "prod".into())]));
        assert!(prod.condition("IsProd").unwrap());
        assert!(r.resolve(&json!({"Ref": "Missing"})).unwrap_err().contains("Missing"));
    }
}
