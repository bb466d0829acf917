//! `cargo xtask conformance-schemas`: the official STET schemas that `stet conformance` checks
//! bank answers against, extracted from the official files into `crates/conformance/schemas/`.
//!
//! The released `stet conformance` validates answers at run time, so the crate carries the
//! schemas rather than reading `shared/reference/stet/` (which only sits beside a checkout).
//! Only the schema objects are kept (`components.schemas` of the 1.5.0.43 OpenAPI file,
//! `definitions` of the 1.4.0.47 Swagger file); the prose (`description`, `example`,
//! `x-*` extensions) is dropped, since validation does not read it. The files are © STET,
//! CC BY 3.0 FR: `crates/conformance/schemas/README.md` gives the attribution.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::codegen::Error;

/// Where the official files are, relative to the workspace root: `shared/` beside the
/// repository, as in CI.
pub const REFERENCE: &str = "../shared/reference/stet";
/// Where the extracted schemas go, relative to the workspace root.
pub const OUTPUT_DIR: &str = "crates/conformance/schemas";

/// One official file and the schema file made from it.
pub struct Source {
    /// The official file, in [`REFERENCE`].
    pub official: &'static str,
    /// The extracted file, in [`OUTPUT_DIR`].
    pub output: &'static str,
    /// The JSON pointer of the schema objects in the official file.
    pub pointer: &'static str,
}

/// The two dialects' official files.
pub const SOURCES: [Source; 2] = [
    Source {
        official: "stet-psd2-api-v1.5.0.43.openapi.json",
        output: "stet-1.5.0.43.schemas.json",
        pointer: "/components/schemas",
    },
    Source {
        official: "stet-psd2-api-v1.4.0.47.swagger.yaml",
        output: "stet-1.4.0.47.schemas.json",
        pointer: "/definitions",
    },
];

/// Keys that carry prose, not constraints.
fn is_prose(key: &str) -> bool {
    matches!(key, "description" | "example" | "examples") || key.starts_with("x-")
}

fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                // A property *named* `description` (a schema, not prose) is kept: only
                // strings and examples under those keys are dropped.
                if is_prose(k) && !v.is_object() {
                    continue;
                }
                if matches!(k.as_str(), "example" | "examples") {
                    continue;
                }
                out.insert(k.clone(), strip(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// The extracted schema files, `(file name, contents)`, from the official files under `root`.
pub fn extract(root: &Path) -> Result<Vec<(&'static str, String)>, Error> {
    let dir: PathBuf = root.join(REFERENCE);
    let mut out = Vec::new();
    for source in &SOURCES {
        let path = dir.join(source.official);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "reading {}: {e} (the official STET files sit in shared/reference/stet beside the repository)",
                path.display()
            )
        })?;
        // The 1.4 file is YAML; YAML reads the 1.5 JSON file too.
        let spec: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("{}: not YAML or JSON: {e}", path.display()))?;
        let schemas = spec
            .pointer(source.pointer)
            .ok_or_else(|| format!("{}: no {}", path.display(), source.pointer))?;
        let mut text = serde_json::to_string_pretty(&strip(schemas))?;
        text.push('\n');
        out.push((source.output, text));
    }
    Ok(out)
}
