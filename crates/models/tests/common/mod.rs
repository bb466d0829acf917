//! Helpers shared by the integration tests: the reference specs and instance builders.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

/// `shared/reference/stet/`, beside the repository (as in CI).
pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/stet")
}

fn load(file: &str) -> Value {
    let path = reference_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (shared/ must sit beside the repo)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// The official STET 1.5.0.43 OpenAPI file.
pub fn official_1_5() -> Value {
    load("stet-psd2-api-v1.5.0.43.openapi.json")
}

/// The bank variant (Crédit Agricole, STET 1.4 dialect).
pub fn bank_variant() -> Value {
    load("credit-agricole-dsp2-v1.21.openapi.json")
}

/// How many times `key` appears as an object key anywhere in `v`.
pub fn count_key(v: &Value, key: &str) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| usize::from(k == key) + count_key(x, key))
            .sum(),
        Value::Array(a) => a.iter().map(|x| count_key(x, key)).sum(),
        _ => 0,
    }
}

fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &spec["components"]["schemas"][name]
        }
        None => node,
    }
}

/// Builds a JSON instance of a schema node: every property (`full`) or only the required ones.
/// Strings that the bank variant types as plain strings get a plausible value from their name.
pub fn instance_of(spec: &Value, node: &Value, full: bool, depth: usize) -> Value {
    instance_named(spec, node, full, depth, "")
}

fn instance_named(spec: &Value, node: &Value, full: bool, depth: usize, name: &str) -> Value {
    let node = resolve(spec, node);
    if let Some(first) = node.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    match node.get("type").and_then(Value::as_str).unwrap_or("object") {
        "string" => {
            let lower = name.to_ascii_lowercase();
            let format = node.get("format").and_then(Value::as_str).unwrap_or("");
            Value::String(
                if format == "date-time" || lower.ends_with("datetime") || lower == "timestamp" {
                    "2019-01-12T10:26:43.123+01:00".into()
                } else if format == "date" || lower.ends_with("date") {
                    "2019-01-12".into()
                } else if lower == "amount" {
                    "12.10".into()
                } else if lower.contains("currency") {
                    "EUR".into()
                } else {
                    format!("{name}-text")
                },
            )
        }
        "number" => serde_json::from_str("12.10").unwrap(),
        "integer" => json!(1),
        "boolean" => json!(true),
        "array" => match node.get("items") {
            Some(items) if depth < 8 => {
                json!([instance_named(spec, items, full, depth + 1, name)])
            }
            _ => json!([]),
        },
        _ => {
            let required: Vec<&str> = node
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = serde_json::Map::new();
            if depth < 8 {
                for (k, p) in node
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if full || required.contains(&k.as_str()) {
                        out.insert(k.clone(), instance_named(spec, p, full, depth + 1, k));
                    }
                }
            }
            Value::Object(out)
        }
    }
}
