//! The JSON Schemas under `schemas/` agree with the domain: what the fixtures contain validates
//! and parses, and chosen invalid variants are refused by both.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonschema::{Draft, Resource, Validator};
use lading_domain::merkle::{leaf_hash, verify_inclusion};
use lading_domain::party::PartyRegistryFile;
use lading_domain::{
    Chain, Checkpoint, Digest, InclusionProof, Jwk, KeyRecord, Membership, PartyStatement,
    Principal, ShipmentEvent, SignedCheckpoint, SignedPartyStatement, SignedTransition,
    TransitionPayload, TransportDocument, PARTY_STATEMENT_TYP,
};
use lading_e2e::gen::{fixtures_dir, iso6346_check_digit, FixtureParties};
use serde_json::{json, Value};

const BASE: &str = "https://lading.dev/schemas/";

fn schemas_dir() -> PathBuf {
    fixtures_dir().join("..").join("schemas")
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture(relative: &str) -> Value {
    read_json(fixtures_dir().join(relative))
}

/// Every schema file with its name.
fn all_schemas() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(schemas_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // The OpenAPI documents hold the schemas as components; they are not schemas.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("openapi"))
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_owned(),
                read_json(p),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The custom format of container numbers: the ISO 6346 check digit.
fn iso6346(s: &str) -> bool {
    s.len() == 11 && iso6346_check_digit(&s[..10]).is_some_and(|d| s[10..] == d.to_string())
}

/// A validator for `name`, with the other schemas registered under their `$id`s, formats
/// asserted and the `iso6346` format known.
fn validator(name: &str) -> Validator {
    let mut options = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_format("iso6346", iso6346);
    let mut main = None;
    for (file, schema) in all_schemas() {
        if file == name {
            main = Some(schema);
        } else {
            let id = schema["$id"].as_str().unwrap().to_owned();
            options = options.with_resource(id, Resource::from_contents(schema).unwrap());
        }
    }
    options.build(&main.unwrap()).unwrap()
}

fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn assert_valid(v: &Validator, instance: &Value, what: &str) {
    let errors = errors(v, instance);
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

fn documents() -> Vec<(String, Value)> {
    let dir = fixtures_dir().join("documents");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), read_json(p)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5);
    out
}

fn jws_payload(compact: &str) -> Value {
    let part = compact.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn samples() -> (Vec<Vec<String>>, Vec<String>) {
    let v = fixture("samples.json");
    let chains = v["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["transitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    let events = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    (chains, events)
}

#[test]
fn every_schema_is_a_valid_2020_12_schema_with_its_id() {
    let schemas = all_schemas();
    let names: Vec<&str> = schemas.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "transport-document.json",
        "transition-payload.json",
        "shipment-event.json",
        "checkpoint.json",
        "inclusion-proof.json",
        "proof-answer.json",
        "problem.json",
        "jwk.json",
        "entry-answer.json",
        "consistency-proof.json",
        "consistency-answer.json",
        "entry-read.json",
        "party-statement.json",
        "parties-answer.json",
        "document-list.json",
        "event-list.json",
        "submission-page.json",
    ] {
        assert!(names.contains(&expected), "missing {expected}");
    }
    for (name, schema) in &schemas {
        assert_eq!(schema["$id"], json!(format!("{BASE}{name}")), "{name}");
        assert_eq!(
            schema["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema"),
            "{name}"
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!("{name}: {e}");
        }
        // Every schema compiles with its references resolved offline.
        validator(name);
    }
}

#[test]
fn fixture_documents_validate_and_parse() {
    let v = validator("transport-document.json");
    for (path, doc) in documents() {
        assert_valid(&v, &doc, &path);
        TransportDocument::from_json(&doc).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// Both the schema and the domain refuse `doc`.
fn assert_refused_document(v: &Validator, doc: &Value, what: &str) {
    assert!(!v.is_valid(doc), "schema accepted {what}");
    assert!(
        TransportDocument::from_json(doc).is_err(),
        "domain accepted {what}"
    );
}

#[test]
fn invalid_documents_are_refused_by_schema_and_domain() {
    let v = validator("transport-document.json");
    let (_, base) = documents().remove(0);
    assert_valid(&v, &base, "base");
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut d = base.clone();
        f(&mut d);
        d
    };
    let container = base["utilizedTransportEquipments"][0]["equipment"]["equipmentReference"]
        .as_str()
        .unwrap()
        .to_owned();
    let digit = container.as_bytes()[10] - b'0';
    let bad_digit = format!("{}{}", &container[..10], (digit + 1) % 10);
    let cases: Vec<(&str, Value)> = vec![
        (
            "bad container check digit",
            edit(&|d| {
                d["utilizedTransportEquipments"][0]["equipment"]["equipmentReference"] =
                    json!(bad_digit);
                d["consignmentItems"][0]["cargoItems"][0]["equipmentReference"] = json!(bad_digit);
            }),
        ),
        (
            "container with category X",
            edit(&|d| {
                d["utilizedTransportEquipments"][0]["equipment"]["equipmentReference"] =
                    json!(format!("{}X{}", &container[..3], &container[4..]))
            }),
        ),
        ("bad LOCODE", edit(&|d| d["portOfLoading"] = json!("NLRT1"))),
        (
            "lowercase LOCODE",
            edit(&|d| d["portOfDischarge"] = json!("sgsin")),
        ),
        (
            "negative weight",
            edit(&|d| {
                d["consignmentItems"][0]["cargoItems"][0]["cargoGrossWeight"]["value"] = json!(-5)
            }),
        ),
        (
            "zero weight",
            edit(&|d| {
                d["consignmentItems"][0]["cargoItems"][0]["cargoGrossWeight"]["value"] = json!(0)
            }),
        ),
        (
            "unknown field",
            edit(&|d| d["freightCharges"] = json!("prepaid")),
        ),
        (
            "unknown nested field",
            edit(&|d| d["utilizedTransportEquipments"][0]["tareWeight"] = json!(3800)),
        ),
        ("null member", edit(&|d| d["placeOfReceipt"] = Value::Null)),
        (
            "short HS code",
            edit(&|d| d["consignmentItems"][0]["HSCodes"][0] = json!("8413")),
        ),
        (
            "bad issue date",
            edit(&|d| d["issueDate"] = json!("2026-11-31")),
        ),
        (
            "bad party id",
            edit(&|d| d["shipper"] = json!("Shipper Acme")),
        ),
        (
            "empty notify parties",
            edit(&|d| d["notifyParties"] = json!([])),
        ),
        (
            "duplicate notify parties",
            edit(&|d| d["notifyParties"] = json!(["bank-harbour", "bank-harbour"])),
        ),
        (
            "reference too long",
            edit(&|d| d["transportDocumentReference"] = json!("X".repeat(21))),
        ),
        (
            "carrier code too long",
            edit(&|d| d["carrierCode"] = json!("OCNLX")),
        ),
        (
            "straight without consignee",
            edit(&|d| {
                d["isToOrder"] = json!(false);
                d.as_object_mut().unwrap().remove("consignee");
            }),
        ),
        (
            "to-order sea waybill",
            edit(&|d| {
                d["transportDocumentTypeCode"] = json!("SWB");
                d["isToOrder"] = json!(true);
            }),
        ),
        (
            "endorsee on a straight document",
            edit(&|d| {
                d["isToOrder"] = json!(false);
                d["consignee"] = json!("consignee-delta");
                d["endorsee"] = json!("bank-harbour");
            }),
        ),
        (
            "description line over 35 chars",
            edit(&|d| d["consignmentItems"][0]["descriptionOfGoods"][0] = json!("x".repeat(36))),
        ),
        (
            "padded vessel name",
            edit(&|d| d["vesselName"] = json!(" Oceanic Star")),
        ),
        (
            "no seals",
            edit(&|d| d["utilizedTransportEquipments"][0]["seals"] = json!([])),
        ),
    ];
    for (what, doc) in &cases {
        assert_refused_document(&v, doc, what);
    }
    // The check digit is the `iso6346` format's job: a validator that does not know the
    // format (as the schema's description says) checks only the shape.
    let plain = jsonschema::options()
        .with_resources(all_schemas().into_iter().map(|(_, s)| {
            let id = s["$id"].as_str().unwrap().to_owned();
            (id, Resource::from_contents(s).unwrap())
        }))
        .build(&json!({"$ref": format!("{BASE}transport-document.json")}))
        .unwrap();
    assert!(plain.is_valid(&base));
    assert!(plain.is_valid(&cases[0].1));
    assert!(!plain.is_valid(&cases[1].1));
}

#[test]
fn sample_payloads_validate_against_their_schemas() {
    let transitions = validator("transition-payload.json");
    let events = validator("shipment-event.json");
    for name in ["issue", "transfer"] {
        let payload = fixture(&format!("payloads/{name}.json"));
        assert_valid(&transitions, &payload, name);
        TransitionPayload::from_json(&payload).unwrap();
    }
    let event = fixture("payloads/event.json");
    assert_valid(&events, &event, "event");
    ShipmentEvent::from_json(&event).unwrap();

    let (chains, signed_events) = samples();
    for compact in chains.iter().flatten() {
        assert_valid(&transitions, &jws_payload(compact), compact);
        SignedTransition::parse(compact).unwrap();
    }
    for compact in &signed_events {
        assert_valid(&events, &jws_payload(compact), compact);
    }
}

#[test]
fn invalid_payloads_are_refused_by_schema_and_domain() {
    let transitions = validator("transition-payload.json");
    let issue = fixture("payloads/issue.json");
    let transfer = fixture("payloads/transfer.json");
    let edit = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut p = base.clone();
        f(&mut p);
        p
    };
    let previous = transfer["previousTransitionChecksum"].clone();
    let cases = vec![
        (
            "ISSUE with a previous checksum",
            edit(&issue, &|p| {
                p["previousTransitionChecksum"] = previous.clone()
            }),
        ),
        (
            "ISSUE without its document",
            edit(&issue, &|p| {
                p.as_object_mut().unwrap().remove("transportDocument");
            }),
        ),
        (
            "TRANSFER without previous",
            edit(&transfer, &|p| {
                p.as_object_mut()
                    .unwrap()
                    .remove("previousTransitionChecksum");
            }),
        ),
        (
            "TRANSFER without recipient",
            edit(&transfer, &|p| {
                p.as_object_mut().unwrap().remove("recipient");
            }),
        ),
        (
            "SIGN with a recipient",
            edit(&transfer, &|p| p["action"] = json!("SIGN")),
        ),
        (
            "unknown action",
            edit(&transfer, &|p| p["action"] = json!("STEAL")),
        ),
        (
            "uppercase digest",
            edit(&transfer, &|p| {
                p["documentChecksum"] =
                    json!(p["documentChecksum"].as_str().unwrap().to_uppercase())
            }),
        ),
        (
            "time without milliseconds",
            edit(&transfer, &|p| p["time"] = json!("2026-11-02T13:15:00Z")),
        ),
        (
            "time with an offset",
            edit(&transfer, &|p| {
                p["time"] = json!("2026-11-02T13:15:00.000+01:00")
            }),
        ),
        (
            "leap second",
            edit(&transfer, &|p| {
                p["time"] = json!("2026-12-31T23:59:60.000Z")
            }),
        ),
        (
            "lowercase reason",
            edit(&transfer, &|p| p["reasonCode"] = json!("swtp")),
        ),
        (
            "unknown member",
            edit(&transfer, &|p| p["note"] = json!("hi")),
        ),
        (
            "null recipient",
            edit(&transfer, &|p| p["recipient"] = Value::Null),
        ),
        (
            "bad document inside ISSUE",
            edit(&issue, &|p| {
                p["transportDocument"]["portOfLoading"] = json!("XX1")
            }),
        ),
    ];
    for (what, payload) in &cases {
        assert!(!transitions.is_valid(payload), "schema accepted {what}");
        assert!(
            TransitionPayload::from_json(payload).is_err(),
            "domain accepted {what}"
        );
    }

    let events = validator("shipment-event.json");
    let event = fixture("payloads/event.json");
    let cases = vec![
        (
            "kind does not match code",
            edit(&event, &|e| e["eventKind"] = json!("TRANSPORT")),
        ),
        (
            "unknown code",
            edit(&event, &|e| e["eventCode"] = json!("SAIL")),
        ),
        (
            "no reference at all",
            edit(&event, &|e| {
                let o = e.as_object_mut().unwrap();
                o.remove("documentReference");
                o.remove("equipmentReference");
            }),
        ),
        (
            "DECLARED without document",
            edit(&event, &|e| {
                e["eventKind"] = json!("CUSTOMS");
                e["eventCode"] = json!("DECLARED");
                e.as_object_mut().unwrap().remove("documentReference");
            }),
        ),
        (
            "event id over 64 chars",
            edit(&event, &|e| e["eventId"] = json!("e".repeat(65))),
        ),
        (
            "bad location",
            edit(&event, &|e| e["location"] = json!("NL-RTM")),
        ),
        (
            "bad container",
            edit(&event, &|e| e["equipmentReference"] = json!("OCLU4127900")),
        ),
    ];
    for (what, e) in &cases {
        assert!(!events.is_valid(e), "schema accepted {what}");
        assert!(
            ShipmentEvent::from_json(e).is_err(),
            "domain accepted {what}"
        );
    }
}

#[test]
fn merkle_vector_proofs_validate_and_answers_verify() {
    let proofs_schema = validator("inclusion-proof.json");
    let vectors = fixture("merkle/vectors.json");
    let mut count = 0;
    for ledger in vectors["ledgers"].as_array().unwrap() {
        for proof in ledger["proofs"].as_array().unwrap() {
            assert_valid(&proofs_schema, proof, &proof.to_string());
            serde_json::from_value::<InclusionProof>(proof.clone()).unwrap();
            count += 1;
        }
    }
    assert!(count > 20);
    let mut proof = vectors["ledgers"][2]["proofs"][0].clone();
    proof["leafPath"][0] = json!(proof["leafPath"][0].as_str().unwrap().to_uppercase());
    assert!(!proofs_schema.is_valid(&proof));
    let mut extra = vectors["ledgers"][2]["proofs"][0].clone();
    extra["root"] = json!("00");
    assert!(!proofs_schema.is_valid(&extra));
    assert!(serde_json::from_value::<InclusionProof>(extra).is_err());

    // A proof answer as the API gives it, over the largest vector ledger, signed by the
    // fixture registry key: valid by schema, and verifiable.
    let parties = FixtureParties::load().unwrap();
    let ledger = vectors["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap();
    let checkpoint = Checkpoint {
        size: ledger["size"].as_u64().unwrap(),
        root: ledger["root"].as_str().unwrap().parse().unwrap(),
        time: "2026-11-02T08:00:00.000Z".parse().unwrap(),
        block_size: u32::try_from(ledger["blockSize"].as_u64().unwrap()).unwrap(),
    };
    let signed = checkpoint.sign(parties.registry_signer());
    let checkpoint_schema = validator("checkpoint.json");
    assert_valid(
        &checkpoint_schema,
        &jws_payload(&signed),
        "checkpoint payload",
    );
    let proof_json = ledger["proofs"].as_array().unwrap().last().unwrap().clone();
    let index = proof_json["index"].as_u64().unwrap();
    let leaf = ledger["leafHashes"][usize::try_from(index).unwrap()].clone();
    let answer = json!({
        "leafHash": leaf,
        "proof": proof_json,
        "checkpoint": {
            "size": checkpoint.size,
            "root": checkpoint.root.to_hex(),
            "time": checkpoint.time.to_string(),
            "blockSize": checkpoint.block_size,
            "signed": signed,
        },
    });
    let answers = validator("proof-answer.json");
    assert_valid(&answers, &answer, "proof answer");
    let verified = SignedCheckpoint::parse(answer["checkpoint"]["signed"].as_str().unwrap())
        .unwrap()
        .verify(&parties.registry_signer().verifying_key())
        .unwrap();
    let proof: InclusionProof = serde_json::from_value(answer["proof"].clone()).unwrap();
    let leaf: Digest = answer["leafHash"].as_str().unwrap().parse().unwrap();
    assert_eq!(leaf, leaf_hash(format!("entry-{index}").as_bytes()));
    verify_inclusion(&proof, leaf, verified.root).unwrap();

    let mut bad = answer.clone();
    bad["checkpoint"]["signed"] = json!("not.a.jws");
    assert!(!answers.is_valid(&bad));
    let mut bad = answer;
    bad["checkpoint"]["extra"] = json!(1);
    assert!(!answers.is_valid(&bad));
    let mut bad_checkpoint = jws_payload(&signed);
    bad_checkpoint["blockSize"] = json!(0);
    assert!(!checkpoint_schema.is_valid(&bad_checkpoint));
}

#[test]
fn jwks_validate() {
    let v = validator("jwk.json");
    let dir = fixtures_dir().join("keys");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "jwk") {
            assert_valid(&v, &read_json(path.clone()), &path.display().to_string());
        }
    }
    let parties = fixture("parties.json");
    for party in parties["parties"].as_array().unwrap() {
        for key in party["keys"].as_array().unwrap() {
            assert_valid(&v, key, &key.to_string());
        }
    }
    // The operator's keys of the genesis, when the file has them.
    for key in parties["operator_keys"].as_array().into_iter().flatten() {
        assert_valid(&v, key, &key.to_string());
        assert!(key.get("d").is_none(), "operator key {key} is private");
    }
    let good = fixture("keys/registry.jwk");
    // A kid may name a key of a party with '#', in the schema as in the domain.
    let mut hashed = good.clone();
    hashed["kid"] = json!("carrier-oceanic#2026");
    assert_valid(&v, &hashed, "kid with '#'");
    assert!(serde_json::from_value::<Jwk>(hashed).is_ok());
    for (member, value) in [
        ("kty", json!("EC")),
        ("crv", json!("X25519")),
        ("x", json!("AAAA")),
        ("kid", json!("bad kid")),
        ("use", json!("enc")),
        ("alg", json!("ES256")),
    ] {
        let mut bad = good.clone();
        bad[member] = value;
        assert!(!v.is_valid(&bad), "schema accepted {member}");
        assert!(
            serde_json::from_value::<Jwk>(bad).is_err(),
            "domain accepted {member}"
        );
    }
}

#[test]
fn problems_validate() {
    let v = validator("problem.json");
    let problem = json!({
        "type": "urn:lading:problem:double_spend",
        "title": "Conflict",
        "status": 409,
        "detail": "double spend: transition 00.. already has a successor",
        "code": "double_spend",
    });
    assert_valid(&v, &problem, "problem");
    let mut with_pointer = problem.clone();
    with_pointer["pointer"] = json!("/transportDocument/utilizedTransportEquipments/0/equipment");
    assert_valid(&v, &with_pointer, "problem with pointer");
    for (member, value) in [
        ("pointer", json!("transportDocument")),
        ("pointer", json!("/a~2b")),
        ("code", json!("DoubleSpend")),
        ("status", json!(200)),
        ("type", json!("about:blank")),
    ] {
        let mut bad = problem.clone();
        bad[member] = value;
        assert!(!v.is_valid(&bad), "{member}");
    }
    let mut missing = problem;
    missing.as_object_mut().unwrap().remove("code");
    assert!(!v.is_valid(&missing));
}

#[test]
fn entry_answers_validate_with_the_domains_document_states() {
    let v = validator("entry-answer.json");
    let (chains, _) = samples();
    let mut index = 0u64;
    for transitions in &chains {
        let mut chain: Option<Chain> = None;
        for compact in transitions {
            let signed = SignedTransition::parse(compact).unwrap();
            match &mut chain {
                None => chain = Some(Chain::issue(signed.checksum(), signed.payload()).unwrap()),
                Some(c) => c.append(signed.checksum(), signed.payload()).unwrap(),
            }
            let state = serde_json::to_value(chain.as_ref().unwrap().state()).unwrap();
            let answer = json!({
                "index": index,
                "leafHash": leaf_hash(compact.as_bytes()).to_hex(),
                "kind": "transition",
                "documentReference": signed.payload().document_reference(),
                "state": state,
                "duplicate": false,
            });
            assert_valid(&v, &answer, compact);
            index += 1;
        }
    }
    let event = json!({
        "index": index,
        "leafHash": leaf_hash(b"x").to_hex(),
        "kind": "event",
        "documentReference": "OCNL2026000101",
        "duplicate": true,
    });
    assert_valid(&v, &event, "event answer");
    let mut with_state = event.clone();
    with_state["state"] = json!({});
    assert!(!v.is_valid(&with_state));
    let mut negative = event;
    negative["index"] = json!(-1);
    assert!(!v.is_valid(&negative));
}

#[test]
fn timestamp_rule_matches_the_domain() {
    let v = validator("checkpoint.json");
    let checkpoint =
        |time: &str| json!({"blockSize": 1024, "root": "0".repeat(64), "size": 1, "time": time});
    for (time, ok) in [
        ("2026-11-02T08:00:00.000Z", true),
        ("2028-02-29T23:59:59.999Z", true),
        ("2026-11-02T08:00:00Z", false),
        ("2026-11-02T08:00:00.0000Z", false),
        ("2026-11-02 08:00:00.000Z", false),
        ("2026-11-02T08:00:00.000z", false),
        ("2026-02-30T08:00:00.000Z", false),
        ("2026-11-02T24:00:00.000Z", false),
        ("2026-11-02T08:00:60.000Z", false),
    ] {
        assert_eq!(v.is_valid(&checkpoint(time)), ok, "schema on {time}");
        assert_eq!(
            time.parse::<lading_domain::Timestamp>().is_ok(),
            ok,
            "domain on {time}"
        );
    }
}

#[test]
fn consistency_proofs_validate_and_malformed_ones_do_not() {
    use lading_domain::merkle::{ConsistencyProof, LedgerTree};
    let schema = validator("consistency-proof.json");
    let mut ledger = LedgerTree::new(4).unwrap();
    let leaves: Vec<Digest> = (0..11)
        .map(|i| leaf_hash(format!("entry-{i}").as_bytes()))
        .collect();
    for leaf in &leaves {
        ledger.push(*leaf);
    }
    let checkpoint = ledger.checkpoint_tree();
    for old in 0..=11u64 {
        let block = checkpoint.consistency_entries(old).unwrap().map(|r| {
            lading_domain::merkle::BlockTree::build(&leaves[r.start as usize..r.end as usize])
                .unwrap()
        });
        let proof = checkpoint.prove_consistency(old, block.as_ref()).unwrap();
        let value = serde_json::to_value(&proof).unwrap();
        assert_valid(&schema, &value, &value.to_string());
        assert_eq!(
            serde_json::from_value::<ConsistencyProof>(value).unwrap(),
            proof
        );
    }
    let proof = json!({"oldSize": 1, "newSize": 2, "blockSize": 4, "blockRoots": [], "leaves": [Digest([7; 32]).to_hex()]});
    assert_valid(&schema, &proof, "a proof");
    for (field, value) in [
        ("blockSize", json!(0)),
        ("oldSize", json!(-1)),
        ("leaves", json!(["00"])),
        ("extra", json!(1)),
    ] {
        let mut bad = proof.clone();
        bad[field] = value;
        assert!(!schema.is_valid(&bad), "{bad}");
    }
}

/// A fresh key pair (private JWK) with `kid`.
fn new_key(kid: &str) -> Jwk {
    Jwk::generate(kid.parse().unwrap(), false)
}

fn public_value(jwk: &Jwk) -> Value {
    serde_json::to_value(jwk.to_public()).unwrap()
}

/// The genesis of the fixtures (`parties.json`) with `operator` as the operator's only key.
fn fixture_genesis(operator: &Jwk) -> Membership {
    let mut file = fixture("parties.json");
    file["operator_keys"] = json!([public_value(operator)]);
    Membership::genesis(&PartyRegistryFile::parse(&file.to_string()).unwrap()).unwrap()
}

/// A payload as a signer writes it, at a fixed time.
fn statement_payload(action: &str, actor: &str, members: Value) -> Value {
    let mut v = json!({"action": action, "actor": actor, "time": "2026-12-05T10:00:00.000Z"});
    for (name, value) in members.as_object().unwrap() {
        v[name] = value.clone();
    }
    v
}

/// A life of the membership after the fixtures' genesis: a bank joins, rotates its key
/// (ADD_KEY signed with the old key, REVOKE_KEY signed with the new one), the operator adds a
/// key of its own and a customs authority, and removes the bank. Each statement is signed, its
/// payload checked against the schema, and folded at its index with its signature verified.
/// Returns the payloads and the membership after them.
fn membership_life(first_index: u64) -> (Vec<Value>, Membership, Jwk) {
    let statements = validator("party-statement.json");
    let operator = new_key("operator:2026");
    let mut membership = fixture_genesis(&operator);
    let (bank1, bank2) = (new_key("bank-meridian:2026"), new_key("bank-meridian:2027"));
    let operator2 = new_key("operator:2027");
    let customs = new_key("customs-be:2026");
    let steps: Vec<(&Jwk, Value)> = vec![
        (
            &operator,
            statement_payload(
                "ADD_PARTY",
                "operator",
                json!({
                    "party": {"id": "bank-meridian", "name": "Meridian Trade Bank", "role": "bank"},
                    "keys": [public_value(&bank1)],
                }),
            ),
        ),
        (
            &bank1,
            statement_payload(
                "ADD_KEY",
                "bank-meridian",
                json!({"partyId": "bank-meridian", "key": public_value(&bank2)}),
            ),
        ),
        (
            &bank2,
            statement_payload(
                "REVOKE_KEY",
                "bank-meridian",
                json!({"partyId": "bank-meridian", "kid": "bank-meridian:2026"}),
            ),
        ),
        (
            &operator,
            statement_payload(
                "ADD_KEY",
                "operator",
                json!({"partyId": "operator", "key": public_value(&operator2)}),
            ),
        ),
        (
            &operator2,
            statement_payload(
                "ADD_PARTY",
                "operator",
                json!({
                    "party": {
                        "id": "customs-be", "name": "Douane Antwerpen",
                        "role": "customs_authority", "ports": ["BEANR"],
                    },
                    "keys": [public_value(&customs)],
                }),
            ),
        ),
        (
            &operator,
            statement_payload(
                "REMOVE_PARTY",
                "operator",
                json!({"partyId": "bank-meridian"}),
            ),
        ),
    ];
    let mut payloads = Vec::new();
    for (offset, (signer, payload)) in (0u64..).zip(steps) {
        let index = first_index + offset;
        let what = payload["action"].as_str().unwrap().to_owned();
        assert_valid(&statements, &payload, &what);
        let statement =
            PartyStatement::from_json(&payload).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(statement.to_json(), payload, "{what} round-trips");
        let compact = statement.sign(&signer.signing_key().unwrap());
        assert_eq!(jws_payload(&compact), payload);
        let signed = SignedPartyStatement::parse(&compact).unwrap();
        assert_eq!(signed.jws().typ(), Some(PARTY_STATEMENT_TYP));
        let key = membership
            .apply(index, signed.kid(), signed.statement())
            .unwrap_or_else(|e| panic!("{what} at {index}: {e}"));
        key.verify(signed.jws()).unwrap();
        payloads.push(payload);
    }
    (payloads, membership, operator)
}

#[test]
fn party_statements_validate_and_invalid_ones_are_refused_by_schema_and_domain() {
    let v = validator("party-statement.json");
    let (payloads, membership, operator) = membership_life(100);
    // The fold: the rotated key signed up to its own revocation, the new one after its ADD_KEY.
    let old = membership
        .key(&"bank-meridian:2026".parse().unwrap())
        .unwrap();
    assert_eq!((old.added_at, old.revoked_at), (Some(100), Some(102)));
    assert!(old.valid_at(101) && old.valid_at(102) && !old.valid_at(103));
    let new = membership
        .key(&"bank-meridian:2027".parse().unwrap())
        .unwrap();
    assert!(!new.valid_at(101) && new.valid_at(102));
    let bank = membership
        .member(&"bank-meridian".parse().unwrap())
        .unwrap();
    assert_eq!((bank.added_at, bank.removed_at), (Some(100), Some(105)));

    let [add_party, add_key, revoke_key, _, add_customs, remove_party] = &payloads[..] else {
        panic!("six statements");
    };
    let edit = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut p = base.clone();
        f(&mut p);
        p
    };
    let private = serde_json::to_value(new_key("bank-meridian:2028")).unwrap();
    // Refused by the schema and by the domain's parser.
    let cases = vec![
        (
            "unknown member",
            edit(add_key, &|p| p["note"] = json!("hi")),
        ),
        (
            "member of another action",
            edit(add_key, &|p| p["kid"] = json!("bank-meridian:2026")),
        ),
        (
            "unknown member of the party",
            edit(add_party, &|p| {
                p["party"]["lei"] = json!("5493001KJTIIGC8Y1R12")
            }),
        ),
        (
            "ADD_PARTY without keys",
            edit(add_party, &|p| {
                p.as_object_mut().unwrap().remove("keys");
            }),
        ),
        (
            "ADD_PARTY with no key",
            edit(add_party, &|p| p["keys"] = json!([])),
        ),
        (
            "REVOKE_KEY without partyId",
            edit(revoke_key, &|p| {
                p.as_object_mut().unwrap().remove("partyId");
            }),
        ),
        (
            "ADD_KEY without key",
            edit(add_key, &|p| {
                p.as_object_mut().unwrap().remove("key");
            }),
        ),
        (
            "without time",
            edit(remove_party, &|p| {
                p.as_object_mut().unwrap().remove("time");
            }),
        ),
        (
            "unknown action",
            edit(add_key, &|p| p["action"] = json!("BECOME_KING")),
        ),
        (
            "lowercase action",
            edit(add_key, &|p| p["action"] = json!("add_key")),
        ),
        (
            "the members of another action",
            edit(revoke_key, &|p| p["action"] = json!("ADD_KEY")),
        ),
        (
            "a private key",
            edit(add_key, &|p| p["key"] = private.clone()),
        ),
        (
            "removing the operator",
            edit(remove_party, &|p| p["partyId"] = json!("operator")),
        ),
        (
            "unknown role",
            edit(add_party, &|p| p["party"]["role"] = json!("pirate")),
        ),
        (
            "bad actor",
            edit(add_key, &|p| p["actor"] = json!("Bank Meridian")),
        ),
        (
            "time without milliseconds",
            edit(add_key, &|p| p["time"] = json!("2026-12-05T10:00:00Z")),
        ),
        (
            "bad port",
            edit(add_customs, &|p| p["party"]["ports"] = json!(["BE-ANR"])),
        ),
    ];
    for (what, payload) in &cases {
        assert!(!v.is_valid(payload), "schema accepted {what}");
        assert!(
            PartyStatement::from_json(payload).is_err(),
            "domain accepted {what}"
        );
    }
    // Parsed, then refused by the membership's rules (the schema says these too).
    let operator_kid = operator.kid().clone();
    let membership_cases = vec![
        (
            "ports on a bank",
            edit(add_party, &|p| {
                p["party"]["id"] = json!("bank-south");
                p["keys"][0]["kid"] = json!("bank-south:1");
                p["party"]["ports"] = json!(["NLRTM"]);
            }),
            "invalid_party",
        ),
        (
            "a party named operator",
            edit(add_party, &|p| {
                p["party"]["id"] = json!("operator");
                p["keys"][0]["kid"] = json!("operator:9");
            }),
            "party_exists",
        ),
        (
            "a kid without its owner",
            edit(add_party, &|p| {
                p["party"]["id"] = json!("bank-south");
                p["keys"][0]["kid"] = json!("banksouth2026");
            }),
            "kid_not_of_owner",
        ),
    ];
    let genesis = fixture_genesis(&operator);
    for (what, payload, code) in &membership_cases {
        assert!(!v.is_valid(payload), "schema accepted {what}");
        let statement =
            PartyStatement::from_json(payload).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            genesis
                .check(1, &operator_kid, &statement)
                .unwrap_err()
                .code(),
            *code,
            "{what}"
        );
    }
}

/// `GET /v1/parties` as the route writes it from a membership.
fn parties_answer(membership: &Membership) -> Value {
    let key = |k: &KeyRecord| {
        let mut v = json!({"jwk": Jwk::from_verifying_key(&k.key, false)});
        if let Some(i) = k.added_at {
            v["addedAt"] = json!(i);
        }
        if let Some(i) = k.revoked_at {
            v["revokedAt"] = json!(i);
        }
        v
    };
    let keys = membership.keys();
    let parties: Vec<Value> = membership
        .members()
        .into_iter()
        .map(|m| {
            let mut v = json!({
                "id": m.party.id.to_string(),
                "name": m.party.name.to_string(),
                "role": m.party.role.as_str(),
                "keys": keys
                    .iter()
                    .filter(|k| k.owner.party() == Some(&m.party.id))
                    .map(|k| key(k))
                    .collect::<Vec<_>>(),
            });
            if !m.party.ports.is_empty() {
                v["ports"] = json!(m
                    .party
                    .ports
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>());
            }
            if let Some(i) = m.added_at {
                v["addedAt"] = json!(i);
            }
            if let Some(i) = m.removed_at {
                v["removedAt"] = json!(i);
            }
            v
        })
        .collect();
    json!({
        "parties": parties,
        "operatorKeys": keys
            .iter()
            .filter(|k| k.owner == Principal::Operator)
            .map(|k| key(k))
            .collect::<Vec<_>>(),
    })
}

#[test]
fn parties_answers_validate() {
    let v = validator("parties-answer.json");
    let (_, membership, _) = membership_life(40);
    let answer = parties_answer(&membership);
    assert_valid(&v, &answer, "parties answer");
    let bank = answer["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "bank-meridian")
        .unwrap();
    assert_eq!(
        (&bank["addedAt"], &bank["removedAt"]),
        (&json!(40), &json!(45))
    );
    assert_eq!(answer["operatorKeys"].as_array().unwrap().len(), 2);
    // The genesis alone: no indexes at all.
    assert_valid(
        &v,
        &parties_answer(&fixture_genesis(&new_key("operator:1"))),
        "genesis",
    );

    let edit = |f: &dyn Fn(&mut Value)| {
        let mut a = answer.clone();
        f(&mut a);
        a
    };
    let private = serde_json::to_value(new_key("operator:3")).unwrap();
    for (what, bad) in [
        ("unknown member", edit(&|a| a["size"] = json!(1))),
        (
            "without operator keys",
            edit(&|a| {
                a.as_object_mut().unwrap().remove("operatorKeys");
            }),
        ),
        (
            "a party without keys",
            edit(&|a| {
                a["parties"][0].as_object_mut().unwrap().remove("keys");
            }),
        ),
        (
            "unknown member of a party",
            edit(&|a| a["parties"][0]["token"] = json!("secret")),
        ),
        (
            "unknown member of a key",
            edit(&|a| a["operatorKeys"][0]["validFrom"] = json!(0)),
        ),
        (
            "a private key",
            edit(&|a| a["operatorKeys"][0]["jwk"] = private.clone()),
        ),
        (
            "negative index",
            edit(&|a| a["operatorKeys"][0]["addedAt"] = json!(-1)),
        ),
        (
            "empty ports",
            edit(&|a| a["parties"][0]["ports"] = json!([])),
        ),
        (
            "null removedAt",
            edit(&|a| a["parties"][0]["removedAt"] = Value::Null),
        ),
        (
            "unknown role",
            edit(&|a| a["parties"][0]["role"] = json!("pirate")),
        ),
    ] {
        assert!(!v.is_valid(&bad), "schema accepted {what}");
    }
}

#[test]
fn party_statement_entry_answers_validate() {
    let answers = validator("entry-answer.json");
    let reads = validator("entry-read.json");
    let operator = new_key("operator:2026").signing_key().unwrap();
    let compact = PartyStatement::from_json(&statement_payload(
        "REMOVE_PARTY",
        "operator",
        json!({"partyId": "bank-harbour"}),
    ))
    .unwrap()
    .sign(&operator);
    let answer = json!({
        "index": 7,
        "leafHash": leaf_hash(compact.as_bytes()).to_hex(),
        "kind": "party",
        "duplicate": false,
    });
    assert_valid(&answers, &answer, "party entry answer");
    let mut with_reference = answer.clone();
    with_reference["documentReference"] = json!("OCNL2026000101");
    assert!(!answers.is_valid(&with_reference));
    let mut with_state = answer.clone();
    with_state["state"] = json!({});
    assert!(!answers.is_valid(&with_state));
    let mut other_kind = answer.clone();
    other_kind["kind"] = json!("membership");
    assert!(!answers.is_valid(&other_kind));
    // Every member reads a party statement in full.
    let read = json!({
        "index": 7,
        "leafHash": answer["leafHash"],
        "kind": "party",
        "receivedAt": "2026-12-05T10:00:00.123Z",
        "signed": compact,
    });
    assert_valid(&reads, &read, "party entry read");
    // And a batch answer may carry it like any entry answer.
    assert_valid(
        &validator("batch-answer.json"),
        &json!({"accepted": 1, "duplicates": 0, "refused": 0,
                "results": [{"status": 201, "entry": answer}]}),
        "batch",
    );
}
