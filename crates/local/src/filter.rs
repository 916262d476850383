//! Event filter patterns, as Lambda's event source mappings (`FilterCriteria`) and SNS filter
//! policies match them: an event matches a pattern when, for every field the pattern names,
//! the event's value is one of the pattern's values. Values: exact strings, numbers, booleans,
//! `null`, and the operators `{"prefix": …}`, `{"suffix": …}`, `{"exists": bool}` and
//! `{"anything-but": …}`. An operator this does not know never matches (and is reported when
//! the mapping is read), so a filter is never silently wider than declared.

use serde_json::Value;

/// Whether `event` matches `pattern` (both JSON).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(name, wanted)| {
        let value = event.get(name);
        match wanted {
            Value::Object(_) => value.is_some_and(|v| matches(wanted, v)),
            Value::Array(options) => options.iter().any(|option| one(option, value)),
            _ => false,
        }
    })
}

fn one(option: &Value, value: Option<&Value>) -> bool {
    let values: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    match option {
        Value::Object(op) => {
            let Some((name, arg)) = op.iter().next() else {
                return false;
            };
            match (name.as_str(), arg) {
                ("exists", Value::Bool(want)) => value.is_some() == *want,
                ("prefix", Value::String(p)) => values
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.starts_with(p.as_str()))),
                ("suffix", Value::String(p)) => values
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.ends_with(p.as_str()))),
                ("anything-but", Value::Array(not)) => !values.is_empty() && values.iter().all(|v| !not.contains(v)),
                ("anything-but", not) => !values.is_empty() && values.iter().all(|v| *v != not),
                _ => false,
            }
        }
        exact => values.contains(&exact),
    }
}

/// The operators of `pattern` this module does not know (empty when it can be emulated).
pub fn unknown_operators(pattern: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for wanted in pattern.as_object().into_iter().flat_map(|m| m.values()) {
        match wanted {
            Value::Object(_) => out.extend(unknown_operators(wanted)),
            Value::Array(options) => {
                for option in options {
                    if let Some((name, _)) = option.as_object().and_then(|o| o.iter().next())
                        && !["exists", "prefix", "suffix", "anything-but"].contains(&name.as_str())
                    {
                        out.push(name.clone());
                    }
                }
            }
            _ => out.push(format!("{wanted} (not a list)")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_stream_filter_passes_document_changes_only() {
        let pattern: Value =
            serde_json::from_str(r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "DOC#"}]}}}}"#).unwrap();
        let record =
            |pk: &str| json!({"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": "X"}}}});
        assert!(matches(&pattern, &record("DOC#01")));
        assert!(!matches(&pattern, &record("STATS#acme")));
        assert!(!matches(&pattern, &json!({"dynamodb": {}})));
        assert!(unknown_operators(&pattern).is_empty());
    }

    #[test]
    fn values_and_operators_match_like_eventbridge() {
        let pattern = json!({"type": ["document.accepted", "document.deleted"], "owner": [{"anything-but": ["globex"]}], "size": [{"exists": true}]});
        assert!(matches(
            &pattern,
            &json!({"type": "document.accepted", "owner": "acme", "size": 1})
        ));
        assert!(!matches(
            &pattern,
            &json!({"type": "document.accepted", "owner": "globex", "size": 1})
        ));
        assert!(!matches(
            &pattern,
            &json!({"type": "document.updated", "owner": "acme", "size": 1})
        ));
        assert!(!matches(
            &pattern,
            &json!({"type": "document.accepted", "owner": "acme"})
        ));
        assert_eq!(
            unknown_operators(&json!({"x": [{"numeric": [">", 1]}]})),
            vec!["numeric"]
        );
    }
}
