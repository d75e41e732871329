//! The JSON Schemas under `schemas/`, loaded for checking what the registry answers.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::harness::repo_root;

/// Base URI of the schemas' `$id`s.
pub const SCHEMA_BASE: &str = "https://lading.dev/schemas/";

/// A validator for `reference` (e.g. `entry-answer.json` or `proof-answer.json#/...`), with
/// every schema under `schemas/` registered by its `$id` so relative `$ref`s resolve offline.
pub fn validator(reference: &str) -> Result<jsonschema::Validator> {
    let dir = repo_root().join("schemas");
    let mut options = jsonschema::options();
    let mut found = false;
    for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        // The OpenAPI documents are not JSON Schemas (they hold them as components).
        if path.extension().is_none_or(|x| x != "json")
            || path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("openapi"))
        {
            continue;
        }
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let id = schema["$id"]
            .as_str()
            .with_context(|| format!("{} has no $id", path.display()))?
            .to_owned();
        found |= reference.split('#').next() == id.strip_prefix(SCHEMA_BASE);
        let resource = jsonschema::Resource::from_contents(schema)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        options = options.with_resource(id, resource);
    }
    if !found {
        bail!("no schema {reference} under {}", dir.display());
    }
    options
        .build(&json!({ "$ref": format!("{SCHEMA_BASE}{reference}") }))
        .map_err(|e| anyhow!("{reference}: {e}"))
}
