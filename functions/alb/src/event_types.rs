//! The event-type catalogue (`GET /v1/event-types`): each type intake announces, what it means,
//! and the JSON Schema of its event. The schema is not written twice: it is `openapi.json`'s
//! `Event` schema (whose fields a test holds to `EventV1`'s), or `WebhookEvent` for
//! `webhook.disabled` (held to `WebhookEventV1`'s), with its references inlined and its `type`
//! narrowed to the one type.

use std::sync::OnceLock;

use intake_core::EventType;
use intake_core::contract::{EventTypeListV1, EventTypeV1};
use serde_json::{Value, json};

/// The catalogue, built once per instance from the OpenAPI document this function serves.
pub fn catalogue() -> &'static EventTypeListV1 {
    static CATALOGUE: OnceLock<EventTypeListV1> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let openapi: Value = serde_json::from_str(crate::OPENAPI).unwrap_or(Value::Null);
        let schemas = &openapi["components"]["schemas"];
        let document = inline(&schemas["Event"], schemas, 0);
        let webhook = inline(&schemas["WebhookEvent"], schemas, 0);
        EventTypeListV1 {
            items: EventType::ALL
                .iter()
                .map(|t| {
                    let mut schema = match t {
                        EventType::WebhookDisabled => webhook.clone(),
                        _ => document.clone(),
                    };
                    schema["properties"]["type"] = json!({"type": "string", "enum": [t.as_str()]});
                    schema["title"] = json!(format!("intake event {}", t.as_str()));
                    EventTypeV1 {
                        event_type: *t,
                        description: t.description().to_owned(),
                        schema,
                    }
                })
                .collect(),
        }
    })
}

/// `schema` with every `#/components/schemas/...` reference replaced by what it names.
fn inline(schema: &Value, schemas: &Value, depth: usize) -> Value {
    if depth > 16 {
        return schema.clone();
    }
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                let mut target = inline(&schemas[name], schemas, depth + 1);
                // Keywords beside the reference (a description, `nullable`) are kept.
                if let Value::Object(target_map) = &mut target {
                    for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                        target_map.insert(k.clone(), v.clone());
                    }
                }
                return target;
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(v, schemas, depth + 1)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, schemas, depth + 1)).collect()),
        other => other.clone(),
    }
}
