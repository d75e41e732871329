//! The API's published contract: an OpenAPI 3.1 document per face (the registry's, a
//! replica's), generated from the handlers' `#[utoipa::path]` attributes, with the JSON
//! Schemas of `schemas/` as its components. Served at `GET /v1/openapi.json` with a browsable
//! reference at `GET /v1/reference`, committed as `schemas/openapi.json` and
//! `schemas/openapi-node.json` (a test fails when they drift), and — with
//! `LADING_CONTRACT_CHECK=1`, as every test sets — every answer is checked against it
//! ([`check`]).

pub mod check;
pub mod files;
pub mod reference;

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use crate::codes::Code;
use crate::routes;

/// Which face a document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `lading serve`.
    Registry,
    /// `lading replica` with `replica.listen`.
    Node,
}

impl Face {
    /// Where the face's committed document lives, relative to the repository.
    pub fn committed_path(self) -> &'static str {
        match self {
            Face::Registry => "schemas/openapi.json",
            Face::Node => "schemas/openapi-node.json",
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lading registry API",
        description = "The registry of electronic bills of lading: signed transitions, shipment events and party statements on one append-only ledger sealed into signed Merkle checkpoints; document search, inclusion and consistency proofs, customs exports, credentials and notifications. Every refusal is RFC 7807 application/problem+json with a stable `code` (the `Problem` response lists them all). TLS only; who calls is said by a client certificate (mutual TLS) or a bearer credential (`lading token issue`).",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        crate::openapi_json,
        crate::reference_page,
        routes::tokens::issue,
        routes::tokens::list,
        routes::tokens::revoke,
        routes::submitters::authorise,
        routes::submitters::list,
        routes::submitters::remove,
        routes::transitions::submit,
        routes::transitions::submit_batch,
        routes::events::submit,
        routes::search::events,
        routes::parties::submit,
        routes::parties::list,
        routes::search::documents,
        routes::search::submissions,
        routes::documents::get,
        routes::documents::transitions,
        routes::documents::events,
        routes::checkpoints::latest,
        routes::checkpoints::after,
        routes::checkpoints::consistency,
        routes::checkpoints::at_size,
        routes::entries::get,
        routes::checkpoints::proof,
        routes::exports::export,
        routes::subscriptions::list,
        routes::subscriptions::create,
        routes::subscriptions::get,
        routes::subscriptions::delete,
        routes::subscriptions::deliveries,
        routes::subscriptions::redeliver,
        routes::notifications::poll,
        routes::notifications::stream,
        crate::registry_key,
        routes::replication::entries,
        routes::replication::document,
        routes::replicas::list,
        routes::replicas::reconcile,
    ),
    tags(
        (name = "ledger", description = "Submitting signed entries and reading them by index"),
        (name = "documents", description = "Bills of lading the caller may read"),
        (name = "events", description = "Shipment events"),
        (name = "membership", description = "The consortium's parties and keys"),
        (name = "checkpoints", description = "Signed checkpoints, inclusion and consistency proofs (public: hashes only)"),
        (name = "exports", description = "Customs batch exports"),
        (name = "credentials", description = "API credentials, managed by a party's admin"),
        (name = "notifications", description = "Webhook subscriptions, long-poll and Server-Sent Events"),
        (name = "replication", description = "The consortium's replicas (mutual TLS)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "contract", description = "This document"),
    )
)]
struct RegistryApi;

/// The registry's document, built once.
pub fn registry() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| build(RegistryApi::openapi()))
}

/// A replica's document, built once.
pub fn node() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| build(crate::node::NodeApi::openapi()))
}

/// The document of `face`.
pub fn document(face: Face) -> &'static Value {
    match face {
        Face::Registry => registry(),
        Face::Node => node(),
    }
}

/// `GET /v1/openapi.json` of either face.
pub fn serve(face: Face) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(document(face))
}

/// The generated document, completed: the schema files as components (their references
/// rewritten to point inside the document), the problem answer every operation may give, the
/// security schemes, and operation ids that are unique.
// Built from what is compiled in (the handlers' attributes, schemas/): a failure here is a
// bug in them, and the tests building both documents find it before any binary ships.
#[allow(clippy::expect_used, clippy::panic)]
fn build(api: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api).expect("an OpenAPI document serializes");
    doc["openapi"] = json!("3.1.0");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let components = doc
        .as_object_mut()
        .expect("an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    let schemas = components
        .as_object_mut()
        .expect("an object")
        .entry("schemas")
        .or_insert_with(|| json!({}));
    let schemas = schemas.as_object_mut().expect("an object");
    for (name, file, text) in files::SCHEMA_FILES {
        let mut schema: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("schemas/{file}: {e}"));
        if let Some(object) = schema.as_object_mut() {
            object.remove("$id");
            object.remove("$schema");
        }
        rewrite_refs(&mut schema, name);
        // A type deriving its schema under a file's name would be silently replaced.
        if let Some(derived) = schemas.get(*name) {
            assert!(
                *derived == json!({ "type": "object" }),
                "the component {name} is both schemas/{file} and a derived schema"
            );
        }
        schemas.insert((*name).to_owned(), schema);
    }
    components["responses"] = json!({
        "Problem": {
            "description": problem_description(),
            "content": {
                "application/problem+json": {
                    "schema": { "$ref": "#/components/schemas/Problem" }
                }
            }
        }
    });
    components["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API credential of a party (`lading token issue`, `POST /v1/tokens`); the scopes it needs are named per operation: read, submit, subscribe, admin."
        },
        "mutualTLS": {
            "type": "mutualTLS",
            "description": "A client certificate issued by the consortium's CA: it names a party, or the registry itself."
        }
    });
    components["x-problem-codes"] = Value::Array(
        Code::ALL
            .iter()
            .map(|c| json!({ "code": c.as_str(), "status": c.status(), "meaning": c.sentence() }))
            .collect(),
    );
    unsigned_formats(&mut doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                complete_operation(method, path, operation);
            }
        }
    }
    doc
}

/// A unique operation id, the problem answer, and media types the generator cannot name.
// Built from what is compiled in (the handlers' attributes, schemas/): a failure here is a
// bug in them, and the tests building both documents find it before any binary ships.
#[allow(clippy::expect_used, clippy::panic)]
fn complete_operation(method: &str, path: &str, operation: &mut Value) {
    operation["operationId"] = json!(operation_id(method, path));
    let responses = operation["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    responses
        .entry("default")
        .or_insert_with(|| json!({ "$ref": "#/components/responses/Problem" }));
    for response in responses.values_mut() {
        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
            for (media, body) in content.iter_mut() {
                match media.as_str() {
                    "application/zip" | "application/octet-stream" => {
                        body["schema"] = json!({ "type": "string", "contentMediaType": media });
                    }
                    "text/event-stream" => {
                        body["schema"] = json!({ "type": "string" });
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(content) = operation
        .get_mut("requestBody")
        .and_then(|b| b.get_mut("content"))
        .and_then(Value::as_object_mut)
    {
        for (media, body) in content.iter_mut() {
            match media.as_str() {
                "application/jose" => {
                    body["schema"] =
                        json!({ "$ref": "#/components/schemas/Defs/$defs/compactJws" });
                }
                "application/json" if body["schema"]["type"] == "array" => {
                    // A batch: strings, each judged on its own — one that is no JWS is
                    // refused in its result (`malformed_jws`), not with the batch.
                    body["schema"]["items"] = json!({
                        "type": "string",
                        "description": "A compact JWS (Defs/$defs/compactJws); anything else is refused in its own result"
                    });
                    body["schema"]["maxItems"] = json!(crate::body::MAX_BATCH_ITEMS);
                }
                "application/octet-stream" => {
                    body["schema"] = json!({ "type": "string", "contentMediaType": media });
                }
                _ => {}
            }
        }
    }
}

/// Rust's unsigned integers, which the generator calls `int64`/`int32` with a minimum of 0,
/// as what they take: up to `u64::MAX`/`u32::MAX` (a client taking `int64` at its word would
/// think 2^63 refused, and it is not).
fn unsigned_formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let unsigned =
                map.get("type") == Some(&json!("integer")) && map.get("minimum") == Some(&json!(0));
            if unsigned {
                match map.get("format").and_then(Value::as_str) {
                    Some("int64") => {
                        map.insert("format".into(), json!("uint64"));
                        map.insert("maximum".into(), json!(u64::MAX));
                    }
                    Some("int32") => {
                        map.insert("format".into(), json!("uint32"));
                        map.insert("maximum".into(), json!(u32::MAX));
                    }
                    _ => {}
                }
            }
            map.values_mut().for_each(unsigned_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_formats),
        _ => {}
    }
}

/// `get` + `/v1/documents/{reference}/events` → `getV1DocumentsReferenceEvents`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// Points a schema file's references inside the document: `defs.json#/$defs/x` becomes
/// `#/components/schemas/Defs/$defs/x`, and a file's references to itself (`#/$defs/x`) point
/// into its own component.
fn rewrite_refs(value: &mut Value, own: &str) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref") {
                *reference = rewritten(reference, own);
            }
            for (key, child) in map.iter_mut() {
                if key != "$ref" {
                    rewrite_refs(child, own);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, own)),
        _ => {}
    }
}

// Built from what is compiled in (the handlers' attributes, schemas/): a failure here is a
// bug in them, and the tests building both documents find it before any binary ships.
#[allow(clippy::expect_used, clippy::panic)]
fn rewritten(reference: &str, own: &str) -> String {
    let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    let component = if file.is_empty() {
        own
    } else {
        files::component_of(file).unwrap_or_else(|| panic!("no schema file {file} for {own}"))
    };
    format!("#/components/schemas/{component}{fragment}")
}

/// The problem answer's description: every code, its status and meaning.
fn problem_description() -> String {
    let mut text = String::from(
        "A refusal: RFC 7807 application/problem+json. `code` is stable and machine-readable; `type` is `urn:lading:problem:<code>`. The codes (also in `components.x-problem-codes`):\n\n| code | status | meaning |\n|---|---|---|\n",
    );
    for code in Code::ALL {
        text.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.status(),
            code.sentence().replace('|', "\\|")
        ));
    }
    text
}

/// The operations of a document, for matching requests and rendering the reference.
pub(crate) fn operations(doc: &Value) -> Vec<(String, String, &Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for (method, operation) in item {
                    if let Some(operation) = operation.as_object() {
                        found.push((method.clone(), path.clone(), operation));
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_camel_case_of_method_and_path() {
        assert_eq!(
            operation_id("get", "/v1/documents/{reference}/events"),
            "getV1DocumentsReferenceEvents"
        );
    }

    #[test]
    fn references_point_into_the_document() {
        assert_eq!(
            rewritten("defs.json#/$defs/partyId", "EntryAnswer"),
            "#/components/schemas/Defs/$defs/partyId"
        );
        assert_eq!(
            rewritten("#/$defs/index", "FeedPage"),
            "#/components/schemas/FeedPage/$defs/index"
        );
        assert_eq!(rewritten("jwk.json", "X"), "#/components/schemas/Jwk");
    }

    #[test]
    fn every_operation_id_is_unique_and_every_reference_resolves() {
        for face in [Face::Registry, Face::Node] {
            let doc = document(face);
            let mut ids = std::collections::HashSet::new();
            for (method, path, operation) in operations(doc) {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "{method} {path}: {id} twice");
            }
            let mut refs = Vec::new();
            collect_refs(doc, &mut refs);
            assert!(!refs.is_empty());
            for reference in refs {
                let pointer = reference.strip_prefix('#').unwrap();
                assert!(
                    doc.pointer(pointer).is_some(),
                    "{face:?}: {reference} resolves to nothing"
                );
            }
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
