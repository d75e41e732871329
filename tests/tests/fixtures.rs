//! The committed fixtures are what they claim: TEST keys matching `parties.json`, a token per
//! party, sample chains and events that verify and that the domain accepts in order, sample
//! files that regenerate byte for byte, and a generator whose streams are valid and
//! reproducible.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use lading_domain::{
    Action, Chain, ContainerNumber, DocumentView, EventCode, Jwk, Party, ReasonCode, Role,
    ShipmentEvent, SignedEvent, SignedTransition, Status, TransitionPayload, TransportDocument,
};
use lading_e2e::gen::{
    build_samples, container_number, fixtures_dir, iso6346_check_digit, kid_for, pretty,
    sample_document, FixtureParties, GeneratorConfig, LedgerGenerator, OPERATOR_KEY, PARTIES,
    REGISTRY_KEY,
};
use serde::Deserialize;
use serde_json::Value;

fn read(path: impl Into<PathBuf>) -> String {
    let path = path.into();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(relative: &str) -> T {
    serde_json::from_str(&read(fixtures_dir().join(relative))).unwrap()
}

fn parties() -> FixtureParties {
    FixtureParties::load().unwrap()
}

/// `parties.json` as the binary's importer reads it (its struct, spelled out again).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyFile {
    parties: Vec<PartyEntry>,
    operator_keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyEntry {
    id: String,
    name: String,
    role: String,
    #[serde(default)]
    ports: Vec<String>,
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplesFile {
    chains: Vec<ChainFile>,
    events: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainFile {
    reference: String,
    transitions: Vec<String>,
}

#[test]
fn every_key_is_a_private_test_key_and_matches_parties_json() {
    let dir = fixtures_dir().join("keys");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "jwk") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let jwk: Jwk = serde_json::from_str(&read(&path)).unwrap();
            assert!(jwk.is_test_key(), "{name} is not marked lading_test_key");
            assert!(jwk.is_private(), "{name} has no private part");
            assert_eq!(jwk.kid().as_str(), kid_for(&name));
            // The raw file says so too (not only our parser's default).
            let raw: Value = serde_json::from_str(&read(&path)).unwrap();
            assert_eq!(raw["lading_test_key"], Value::Bool(true), "{name}");
            names.insert(name);
        }
    }
    let expected: BTreeSet<String> = PARTIES
        .iter()
        .map(|p| p.id.to_owned())
        .chain([REGISTRY_KEY.to_owned(), OPERATOR_KEY.to_owned()])
        .collect();
    assert_eq!(names, expected);

    let file: PartyFile = read_json("parties.json");
    // The operator's TEST key, public, as the genesis of party statements.
    let operator: Jwk = read_json("keys/operator.jwk");
    assert_eq!(file.operator_keys, vec![operator.to_public()]);
    assert_eq!(file.parties.len(), PARTIES.len());
    for (entry, spec) in file.parties.iter().zip(PARTIES) {
        assert_eq!(entry.id, spec.id);
        assert_eq!(entry.name, spec.name);
        assert_eq!(entry.role, spec.role.as_str());
        assert_eq!(entry.ports, spec.ports);
        assert_eq!(entry.keys.len(), 1);
        let public = &entry.keys[0];
        assert!(
            !public.is_private(),
            "parties.json must hold public keys only"
        );
        assert!(public.is_test_key());
        let private: Jwk = read_json(&format!("keys/{}.jwk", entry.id));
        assert_eq!(public, &private.to_public(), "{}", entry.id);
        // The importer's rules: a domain party (id, name, role, ports) and a usable key.
        let party: Party = serde_json::from_value(serde_json::json!({
            "id": entry.id, "name": entry.name, "role": entry.role, "ports": entry.ports,
        }))
        .unwrap();
        assert_eq!(
            party.role == Role::CustomsAuthority,
            !party.ports.is_empty()
        );
        public.verifying_key().unwrap();
    }
    // The file is exactly what `lading-fixtures keys` writes.
    assert_eq!(
        read(fixtures_dir().join("parties.json")),
        pretty(&parties().parties_json())
    );
}

#[test]
fn customs_jurisdictions_are_as_documented() {
    let p = parties();
    let ports = |id: &str| -> Vec<String> {
        p.party(id)
            .unwrap()
            .ports
            .iter()
            .map(|u| u.to_string())
            .collect()
    };
    assert_eq!(ports("customs-nl"), ["NLRTM", "NLAMS"]);
    assert_eq!(ports("customs-sg"), ["SGSIN"]);
    assert_eq!(ports("customs-us"), ["USNYC", "USLAX"]);
    assert_eq!(
        p.party("carrier-oceanic").unwrap().name.as_str(),
        "Oceanic Container Lines"
    );
    assert_eq!(
        p.party("forwarder-swift").unwrap().role,
        Role::FreightForwarder
    );
}

#[test]
fn every_party_has_a_distinct_well_formed_token() {
    let tokens: BTreeMap<String, String> = read_json("tokens.json");
    let ids: BTreeSet<&str> = PARTIES.iter().map(|p| p.id).collect();
    assert_eq!(
        tokens.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        ids
    );
    for (id, token) in &tokens {
        let secret = token
            .strip_prefix(&format!("lading-test-{id}-"))
            .unwrap_or_else(|| panic!("token of {id} has the wrong prefix"));
        assert_eq!(secret.len(), 32, "{id}");
        assert!(
            secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{id}"
        );
    }
    let distinct: BTreeSet<&String> = tokens.values().collect();
    assert_eq!(distinct.len(), tokens.len());
    assert_eq!(
        parties().token("bank-harbour"),
        Some(tokens["bank-harbour"].as_str())
    );
}

/// Parses, verifies with the key named by `kid` (which must be the actor's) and replays every
/// sample chain; returns the chains by reference.
fn replay_samples() -> (
    BTreeMap<String, Chain>,
    BTreeMap<String, TransportDocument>,
    Vec<Action>,
) {
    let p = parties();
    let samples: SamplesFile = read_json("samples.json");
    let mut chains = BTreeMap::new();
    let mut documents = BTreeMap::new();
    let mut actions = Vec::new();
    for chain_file in &samples.chains {
        let mut chain: Option<Chain> = None;
        for compact in &chain_file.transitions {
            let signed = SignedTransition::parse(compact).unwrap();
            let (party, key) = p.key_by_kid(signed.kid().as_str()).unwrap();
            signed.verify(&key).unwrap();
            let payload = signed.payload();
            assert_eq!(
                payload.actor(),
                &party.id,
                "signed by someone else than the actor"
            );
            assert_eq!(payload.document_reference().as_str(), chain_file.reference);
            actions.push(payload.action());
            match &mut chain {
                None => {
                    chain = Some(Chain::issue(signed.checksum(), payload).unwrap());
                    documents.insert(
                        chain_file.reference.clone(),
                        payload.transport_document().unwrap().clone(),
                    );
                }
                Some(c) => c
                    .append(signed.checksum(), payload)
                    .unwrap_or_else(|e| panic!("{}: {e}", chain_file.reference)),
            }
        }
        chains.insert(chain_file.reference.clone(), chain.unwrap());
    }
    (chains, documents, actions)
}

#[test]
fn sample_chains_verify_and_are_accepted_in_order() {
    let (chains, documents, actions) = replay_samples();
    let status = |r: &str| chains[r].state().status;
    let possessor = |r: &str| chains[r].state().possessor.to_string();
    assert_eq!(status("OCNL2026000101"), Status::SurrenderedForDelivery);
    assert_eq!(status("OCNL2026000102"), Status::SurrenderedForDelivery);
    assert_eq!(status("PLRS2026000201"), Status::Void);
    assert_eq!(status("PLRS2026000202"), Status::Active);
    assert_eq!(possessor("PLRS2026000202"), "forwarder-swift");
    assert_eq!(status("OCNL2026000103"), Status::Active);
    assert_eq!(possessor("OCNL2026000103"), "consignee-delta");
    // Every action code appears somewhere.
    let used: BTreeSet<Action> = actions.into_iter().collect();
    assert_eq!(used, Action::ALL.into_iter().collect());
    assert!(documents.values().any(TransportDocument::is_to_order));
    // The issued documents are the committed document files.
    for (reference, doc) in &documents {
        let file: Value = read_json(&format!("documents/{reference}.json"));
        assert_eq!(&TransportDocument::from_json(&file).unwrap(), doc);
    }
    // The switch to paper carries reason SWTP.
    let samples: SamplesFile = read_json("samples.json");
    let swtp = samples
        .chains
        .iter()
        .flat_map(|c| &c.transitions)
        .map(|t| SignedTransition::parse(t).unwrap())
        .filter(|t| t.payload().is_switch_to_paper())
        .count();
    assert_eq!(swtp, 1);
}

#[test]
fn sample_events_verify_and_are_allowed_by_the_rules() {
    let p = parties();
    let (chains, documents, _) = replay_samples();
    let samples: SamplesFile = read_json("samples.json");
    let mut codes = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for compact in &samples.events {
        let signed = SignedEvent::parse(compact).unwrap();
        let (party, key) = p.key_by_kid(signed.kid().as_str()).unwrap();
        signed.verify(&key).unwrap();
        let event = signed.event();
        let chain_parties = event
            .document_reference()
            .map(|r| chains[r.as_str()].parties())
            .unwrap_or_default();
        let view = event.document_reference().map(|r| DocumentView {
            document: &documents[r.as_str()],
            chain_parties: &chain_parties,
        });
        event
            .check_actor(party, view.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", event.event_id()));
        if matches!(event.event_code(), EventCode::Hold | EventCode::Release) {
            assert_eq!(party.role, Role::CustomsAuthority);
        }
        assert!(ids.insert((event.actor().to_string(), event.event_id().to_owned())));
        codes.insert(event.event_code().as_str());
    }
    for code in [
        "GTIN", "GTOT", "LOAD", "DEPA", "ARRI", "DISC", "DECLARED", "HOLD", "RELEASE",
    ] {
        assert!(codes.contains(code), "no {code} event in the samples");
    }
}

#[test]
fn samples_regenerate_byte_for_byte() {
    let samples = build_samples(&parties()).unwrap();
    let files = samples.files();
    for (path, content) in &files {
        let on_disk = read(fixtures_dir().join(path));
        assert!(
            on_disk == *content,
            "{} drifted: run `cargo run -p lading-e2e --bin lading-fixtures -- samples`",
            path.display()
        );
    }
    let documents: BTreeSet<PathBuf> = std::fs::read_dir(fixtures_dir().join("documents"))
        .unwrap()
        .map(|e| PathBuf::from("documents").join(e.unwrap().file_name()))
        .collect();
    let expected: BTreeSet<PathBuf> = files
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p.starts_with("documents"))
        .collect();
    assert_eq!(documents, expected);
    assert!((5..=6).contains(&expected.len()));
}

#[test]
fn payload_examples_sign_into_a_valid_chain() {
    // As `lading sign --key fixtures/keys/<party>.jwk --kind ...` does: serde, then sign.
    let sign_with = |party: &str, payload: &TransitionPayload| {
        let jwk: Jwk = read_json(&format!("keys/{party}.jwk"));
        payload.sign(&jwk.signing_key().unwrap())
    };
    let issue: TransitionPayload = read_json("payloads/issue.json");
    let transfer: TransitionPayload = read_json("payloads/transfer.json");
    let event: ShipmentEvent = read_json("payloads/event.json");

    let issued = SignedTransition::parse(&sign_with("carrier-oceanic", &issue)).unwrap();
    let mut chain = Chain::issue(issued.checksum(), issued.payload()).unwrap();
    let transferred = SignedTransition::parse(&sign_with("shipper-acme", &transfer)).unwrap();
    chain
        .append(transferred.checksum(), transferred.payload())
        .unwrap();
    assert_eq!(chain.state().possessor.as_str(), "consignee-delta");

    let doc = issue.transport_document().unwrap();
    // A document of its own: not issued by any sample chain.
    let (chains, _, _) = replay_samples();
    assert!(!chains.contains_key(doc.reference().as_str()));
    let p = parties();
    let parties_seen = chain.parties();
    let view = DocumentView {
        document: doc,
        chain_parties: &parties_seen,
    };
    event
        .check_actor(p.party("carrier-oceanic").unwrap(), Some(&view))
        .unwrap();
}

#[test]
fn container_numbers_get_iso6346_check_digits() {
    // The domain's example and BIC's published example.
    assert_eq!(container_number("CSQU", 305_438).unwrap(), "CSQU3054383");
    assert_eq!(iso6346_check_digit("CSQU305438"), Some(3));
    assert_eq!(iso6346_check_digit("CSQU30543"), None);
    assert_eq!(iso6346_check_digit("CSQ1305438"), None);
    for serial in (0..1_000_000).step_by(9_973) {
        for owner in ["OCLU", "PLRU", "MSKU", "ZZZJ"] {
            let number = container_number(owner, serial).unwrap();
            assert!(number.parse::<ContainerNumber>().is_ok(), "{number}");
            let digit = number.as_bytes()[10] - b'0';
            let wrong = format!("{}{}", &number[..10], (digit + 1) % 10);
            assert!(wrong.parse::<ContainerNumber>().is_err(), "{wrong}");
        }
    }
}

#[test]
fn sample_document_is_deterministic_and_valid() {
    let a = sample_document(
        "REF-1",
        "carrier-oceanic",
        "shipper-acme",
        Some("consignee-delta"),
        false,
        7,
    )
    .unwrap();
    let b = sample_document(
        "REF-1",
        "carrier-oceanic",
        "shipper-acme",
        Some("consignee-delta"),
        false,
        7,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.carrier_code(), "OCNL");
    assert!(a
        .container_numbers()
        .iter()
        .all(|c| c.as_str().starts_with("OCLU")));
    let docs: BTreeSet<Vec<u8>> = (0..20)
        .map(|seed| {
            sample_document("REF-1", "carrier-polaris", "shipper-acme", None, true, seed)
                .unwrap()
                .canonical_bytes()
        })
        .collect();
    assert!(docs.len() > 15, "seeds barely change the document");
    // Round trip through JSON, as the registry will see it.
    assert_eq!(TransportDocument::from_json(&a.to_json()).unwrap(), a);
    // A straight document without a consignee is refused, not invented.
    let e =
        sample_document("REF-2", "carrier-oceanic", "shipper-acme", None, false, 1).unwrap_err();
    assert_eq!(e.code(), "invalid_document_field");
    assert_eq!(
        sample_document("bad ref", "carrier-oceanic", "shipper-acme", None, true, 1)
            .unwrap_err()
            .code(),
        "invalid_document_reference"
    );
}

#[test]
fn generated_transitions_are_accepted_in_order() {
    let p = parties();
    let config = GeneratorConfig::new(1_000, 9, 42);
    assert_eq!(config.total(), 10_000);
    let mut generator = LedgerGenerator::new(&p, config).unwrap();
    let mut chains: HashMap<String, Chain> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, compact) in generator.stream().take(5_000).enumerate() {
        let compact = compact.unwrap();
        let signed = SignedTransition::parse(&compact).unwrap();
        let payload = signed.payload();
        // Signatures cost milliseconds in debug builds: check a sample of them (the generator
        // signs all alike), and that the domain would have written the very same bytes.
        if i < 200 || i % 25 == 0 {
            let (party, key) = p.key_by_kid(signed.kid().as_str()).unwrap();
            assert_eq!(payload.actor(), &party.id);
            signed.verify(&key).unwrap();
            if i < 200 {
                assert_eq!(payload.sign(p.signer(party.id.as_str()).unwrap()), compact);
            }
        }
        let reference = payload.document_reference().to_string();
        if payload.action() == Action::Issue {
            let chain = Chain::issue(signed.checksum(), payload).unwrap();
            assert!(
                chains.insert(reference.clone(), chain).is_none(),
                "{reference} issued twice"
            );
        } else {
            chains
                .get_mut(&reference)
                .unwrap_or_else(|| panic!("{reference} used before its ISSUE"))
                .append(signed.checksum(), payload)
                .unwrap_or_else(|e| panic!("{reference}: {e}"));
        }
        order.push(reference);
    }
    assert_eq!(generator.emitted(), 5_000);
    assert_eq!(generator.remaining(), 5_000);
    // Interleaved: the first document's transitions are not all in one run.
    let first = &order[0];
    let positions: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, r)| *r == first)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(positions.len(), 10);
    assert!(positions.windows(2).any(|w| w[1] > w[0] + 1));
    assert!(chains.len() > 64);
    // Both ways of passing title on are used, and references follow the documented form.
    let actions: BTreeSet<Action> = chains
        .values()
        .map(|c| c.state().endorsee.is_some())
        .map(|endorsed| {
            if endorsed {
                Action::EndorseToOrder
            } else {
                Action::Transfer
            }
        })
        .collect();
    assert_eq!(actions.len(), 2);
    assert!(chains.contains_key("GEN0000000"));
    assert!(chains.keys().all(|r| r.len() == 10 && r.starts_with("GEN")));
}

#[test]
fn generator_is_deterministic_for_a_seed_and_batches_match_the_stream() {
    let p = parties();
    let run = |seed: u64| -> Vec<String> {
        let mut g = LedgerGenerator::new(&p, GeneratorConfig::new(30, 3, seed)).unwrap();
        g.stream().map(Result::unwrap).collect()
    };
    let a = run(5);
    assert_eq!(a.len(), 30 * 4);
    assert_eq!(a, run(5));
    assert_ne!(a, run(6));
    let mut g = LedgerGenerator::new(&p, GeneratorConfig::new(30, 3, 5)).unwrap();
    let batches: Vec<Vec<String>> = g.batches(7).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 18); // 17 of 7, then 1
    assert!(batches[..batches.len() - 1].iter().all(|b| b.len() == 7));
    assert_eq!(batches.concat(), a);
    assert!(g.next_batch(10).unwrap().is_empty());
}

#[test]
fn generator_edge_cases() {
    let p = parties();
    // Issue only.
    let mut g = LedgerGenerator::new(&p, GeneratorConfig::new(3, 0, 1)).unwrap();
    let all: Vec<String> = g.stream().map(Result::unwrap).collect();
    assert_eq!(all.len(), 3);
    assert!(all
        .iter()
        .all(|t| SignedTransition::parse(t).unwrap().payload().action() == Action::Issue));
    // One document in flight: no interleaving at all.
    let mut config = GeneratorConfig::new(3, 4, 1);
    config.in_flight = 1;
    config.reference_prefix = "LOAD-B-".into();
    let mut g = LedgerGenerator::new(&p, config).unwrap();
    let refs: Vec<String> = g
        .stream()
        .map(|t| {
            SignedTransition::parse(&t.unwrap())
                .unwrap()
                .payload()
                .document_reference()
                .to_string()
        })
        .collect();
    assert_eq!(refs.len(), 15);
    assert!(refs[..5].iter().all(|r| r == "LOAD-B-0000000"));
    assert!(refs[5..10].iter().all(|r| r == "LOAD-B-0000001"));
    // Bad configurations are refused up front.
    let mut config = GeneratorConfig::new(3, 4, 1);
    config.reference_prefix = "FAR-TOO-LONG-PREFIX".into();
    assert_eq!(
        LedgerGenerator::new(&p, config).unwrap_err().code(),
        "invalid_generator_config"
    );
    let mut config = GeneratorConfig::new(3, 4, 1);
    config.in_flight = 0;
    assert!(LedgerGenerator::new(&p, config).is_err());
}

#[test]
fn reason_code_swtp_is_the_domains() {
    // The samples rely on the domain spelling switch to paper as SWTP.
    assert_eq!("SWTP".parse::<ReasonCode>().unwrap(), ReasonCode::SWTP);
}
