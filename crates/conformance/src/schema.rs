//! Bank answers against the official STET schemas.
//!
//! The schemas are the official files' own (`schemas/`, extracted by `cargo xtask
//! conformance-schemas`): 1.4.0.47 for 1.4 banks, 1.5.0.43 for 1.5 and later (no official
//! 1.6 file is published in machine-readable form). A missing required field, a wrong type or
//! a value outside an enumeration is an error; a field the schema does not define is a
//! remark: banks may add fields, but a TPP cannot rely on them.

use std::sync::OnceLock;

use serde_json::{Value, json};
use stet_client::bank::Dialect;

const V1_5: &str = include_str!("../schemas/stet-1.5.0.43.schemas.json");
const V1_4: &str = include_str!("../schemas/stet-1.4.0.47.schemas.json");

/// What validation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// Violations, each with the JSON path it is at.
    pub errors: Vec<String>,
    /// Fields the schema does not define, as JSON paths.
    pub unknown: Vec<String>,
}

fn schemas(dialect: Dialect) -> &'static Value {
    static V14: OnceLock<Value> = OnceLock::new();
    static V15: OnceLock<Value> = OnceLock::new();
    // The embedded files are checked by this crate's tests: failing to read them is a build
    // defect, not an input error.
    match dialect {
        Dialect::V1_4 => {
            V14.get_or_init(|| serde_json::from_str(V1_4).expect("embedded 1.4 schemas"))
        }
        _ => V15.get_or_init(|| serde_json::from_str(V1_5).expect("embedded 1.5 schemas")),
    }
}

/// The official file a dialect is checked against.
pub fn official_version(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::V1_4 => "1.4.0.47",
        _ => "1.5.0.43",
    }
}

/// Whether the dialect's official file defines `name`.
pub fn defines(dialect: Dialect, name: &str) -> bool {
    schemas(dialect).get(name).is_some()
}

/// The document a validator is built from: `{"$ref": …, <root>: <the schemas>}`.
fn document(dialect: Dialect, name: &str) -> Value {
    let all = schemas(dialect).clone();
    match dialect {
        Dialect::V1_4 => json!({"$ref": format!("#/definitions/{name}"), "definitions": all}),
        _ => {
            json!({"$ref": format!("#/components/schemas/{name}"), "components": {"schemas": all}})
        }
    }
}

/// Validates `instance` against the schema `name` of `dialect`'s official file.
pub fn validate(dialect: Dialect, name: &str, instance: &Value) -> SchemaReport {
    if !defines(dialect, name) {
        return SchemaReport {
            errors: vec![format!(
                "the official {} file defines no schema {name}",
                official_version(dialect)
            )],
            unknown: Vec::new(),
        };
    }
    // Swagger 2.0 and OpenAPI 3.0 schemas are JSON Schema draft 4 with extensions.
    let validator = match jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&document(dialect, name))
    {
        Ok(v) => v,
        Err(e) => {
            return SchemaReport {
                errors: vec![format!(
                    "the official schema {name} cannot be compiled: {e}"
                )],
                unknown: Vec::new(),
            };
        }
    };
    let errors = validator
        .iter_errors(instance)
        .map(|e| {
            let path = e.instance_path().to_string();
            format!("{}: {e}", if path.is_empty() { "/" } else { &path })
        })
        .collect();
    let mut unknown = Vec::new();
    let top = json!({"$ref": format!("#/{}/{name}", if dialect == Dialect::V1_4 { "definitions" } else { "components/schemas" })});
    walk_unknown(dialect, &top, instance, "", &mut unknown, 0);
    SchemaReport { errors, unknown }
}

/// Follows `$ref`s to the schema object.
fn resolve(dialect: Dialect, mut schema: &Value) -> &Value {
    let all = schemas(dialect);
    for _ in 0..16 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let name = r.rsplit('/').next().unwrap_or_default();
        match all.get(name) {
            Some(s) => schema = s,
            None => break,
        }
    }
    schema
}

/// The properties a schema defines (its own and those of its `allOf` parts), and whether it
/// allows others (`additionalProperties` set).
fn properties(dialect: Dialect, schema: &Value, out: &mut Vec<(String, Value)>) -> bool {
    let schema = resolve(dialect, schema);
    let mut open = schema
        .get("additionalProperties")
        .is_some_and(|a| a.is_object() || a == &Value::Bool(true));
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        out.extend(props.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        open |= properties(dialect, part, out);
    }
    open
}

fn walk_unknown(
    dialect: Dialect,
    schema: &Value,
    instance: &Value,
    path: &str,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let resolved = resolve(dialect, schema);
    match instance {
        Value::Object(map) => {
            let mut props = Vec::new();
            let open = properties(dialect, resolved, &mut props);
            if props.is_empty() && !resolved.get("type").is_some_and(|t| t == "object") {
                return;
            }
            for (key, value) in map {
                match props.iter().find(|(k, _)| k == key) {
                    Some((_, sub)) => {
                        walk_unknown(
                            dialect,
                            sub,
                            value,
                            &format!("{path}/{key}"),
                            out,
                            depth + 1,
                        );
                    }
                    None if !open => out.push(format!("{path}/{key}")),
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = resolved.get("items") {
                for (i, value) in items.iter().enumerate() {
                    walk_unknown(dialect, item, value, &format!("{path}/{i}"), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Whether a body is an error report in STET's error model (`ErrorModel`, or for 400 in 1.5
/// `Error400Model`); `Err` says what is wrong with it.
pub fn error_model(dialect: Dialect, status: u16, body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        let text = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        if body.is_empty() {
            "the body is empty, not an ErrorModel".to_owned()
        } else {
            format!(
                "the body is not JSON (it starts `{}`), not an ErrorModel",
                text.trim()
            )
        }
    })?;
    let mut tried = Vec::new();
    for name in ["ErrorModel", "Error400Model"] {
        if name == "Error400Model" && (status != 400 || !defines(dialect, name)) {
            continue;
        }
        let report = validate(dialect, name, &value);
        if report.errors.is_empty() {
            return Ok(());
        }
        tried.push(format!("{name}: {}", report.errors.join("; ")));
    }
    Err(format!(
        "the body is not in STET's error model ({})",
        tried.join(" | ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_official_files_compile_and_judge() {
        for dialect in [Dialect::V1_4, Dialect::V1_5] {
            for name in [
                "HalAccounts",
                "HalBalances",
                "HalTransactions",
                "ErrorModel",
            ] {
                assert!(defines(dialect, name), "{dialect} {name}");
            }
            let r = validate(
                dialect,
                "ErrorModel",
                &json!({"status": 404, "message": "no"}),
            );
            assert_eq!(r, SchemaReport::default(), "{dialect}");
            let r = validate(
                dialect,
                "ErrorModel",
                &json!({"message": "no", "colour": 1}),
            );
            assert!(r.errors.iter().any(|e| e.contains("status")), "{r:?}");
            assert_eq!(r.unknown, ["/colour"]);
        }
        assert!(error_model(Dialect::V1_5, 404, b"Not Found").is_err());
        assert!(error_model(Dialect::V1_5, 401, br#"{"status":401,"message":"x"}"#).is_ok());
    }

    #[test]
    fn unknown_fields_are_found_deep_down() {
        let accounts = json!({
            "accounts": [{"name": "n", "cashAccountType": "CACC", "_links": {}, "nickname": "x"}],
            "_links": {"self": {"href": "/accounts"}},
        });
        let r = validate(Dialect::V1_5, "HalAccounts", &accounts);
        assert!(r.errors.is_empty(), "{r:?}");
        assert_eq!(r.unknown, ["/accounts/0/nickname"]);
    }
}
