//! The committed OpenAPI documents (`schemas/openapi.json`, `schemas/openapi-node.json`) are
//! what the code generates: a change to a handler's contract that is not committed fails
//! here. `LADING_BLESS=1 cargo test -p lading-api --test openapi` writes them again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use lading_api::contract::{document, Face};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(face: Face) {
    let path = repo().join(face.committed_path());
    let generated = serde_json::to_string_pretty(document(face)).unwrap() + "\n";
    if std::env::var("LADING_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (LADING_BLESS=1 writes it)", path.display()));
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |l| l,
            );
        panic!(
            "{} differs from what the handlers generate, first at line {}: committed {:?}, generated {:?}. \
             Run LADING_BLESS=1 cargo test -p lading-api --test openapi and commit the result.",
            face.committed_path(),
            line + 1,
            committed.lines().nth(line),
            generated.lines().nth(line),
        );
    }
}

#[test]
fn the_registry_document_is_committed() {
    check(Face::Registry);
}

#[test]
fn the_node_document_is_committed() {
    check(Face::Node);
}

#[test]
fn every_route_of_both_faces_is_in_its_document() {
    // The routes as mounted (lib.rs, node.rs), method and path template.
    let registry = [
        "get /healthz",
        "get /readyz",
        "get /v1/openapi.json",
        "get /v1/reference",
        "post /v1/tokens",
        "get /v1/tokens",
        "delete /v1/tokens/{id}",
        "post /v1/submitters",
        "get /v1/submitters",
        "delete /v1/submitters/{party}",
        "post /v1/transitions",
        "post /v1/transitions/batch",
        "post /v1/events",
        "get /v1/events",
        "post /v1/party-statements",
        "get /v1/parties",
        "get /v1/documents",
        "get /v1/documents/{reference}",
        "get /v1/documents/{reference}/transitions",
        "get /v1/documents/{reference}/events",
        "get /v1/checkpoint",
        "get /v1/checkpoints",
        "get /v1/checkpoints/consistency",
        "get /v1/checkpoints/{size}",
        "get /v1/entries/{index}",
        "get /v1/entries/{index}/proof",
        "get /v1/exports",
        "get /v1/subscriptions",
        "post /v1/subscriptions",
        "get /v1/subscriptions/{id}",
        "delete /v1/subscriptions/{id}",
        "get /v1/notifications",
        "get /v1/notifications/stream",
        "get /v1/subscriptions/{id}/deliveries",
        "post /v1/subscriptions/{id}/redeliver",
        "get /v1/registry/key",
        "get /v1/replication/entries",
        "get /v1/replication/documents/{reference}",
        "get /v1/replicas",
        "post /v1/replicas/{party}/reconcile",
        "get /v1/submissions",
    ];
    let node = [
        "get /healthz",
        "get /v1/openapi.json",
        "get /v1/reference",
        "get /v1/status",
        "get /v1/documents/{reference}",
        "get /v1/documents/{reference}/transitions",
        "get /v1/entries/{index}/proof",
        "get /v1/entries",
        "get /v1/roots/{size}",
        "post /v1/transitions",
        "post /v1/events",
        "get /v1/submissions",
        "get /v1/submissions/{seq}",
        "post /v1/submissions/{seq}/retry",
        "get /v1/checkpoints",
        "post /v1/reconciliation",
        "post /v1/reconciliation/{session}/descend",
        "post /v1/reconciliation/{session}/repair",
    ];
    for (face, routes) in [(Face::Registry, &registry[..]), (Face::Node, &node[..])] {
        let doc = document(face);
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push(format!("{method} {path}"));
            }
        }
        documented.sort();
        let mut mounted: Vec<String> = routes.iter().map(|r| (*r).to_owned()).collect();
        mounted.sort();
        assert_eq!(documented, mounted, "{face:?}");
    }
}
