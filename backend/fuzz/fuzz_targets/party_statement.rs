//! `SignedPartyStatement::parse`, `PartyStatement::from_json` / `to_json` / `sign`, and
//! `Membership::check` / `apply` (`lading_domain::membership`).
//!
//! Input: a mode byte (see `lading_fuzz::split`), then a compact JWS or a payload. Bits 4–5 of
//! the mode byte pick the ledger index the statement is applied at ([`FIRST`] + 0..=3); for a
//! payload, bits 1–3 pick the kid of the header it is wrapped in ([`KIDS`]: keys of the fixed
//! membership, valid, revoked, of a removed party, or unknown).
//!
//! - Whatever `parse` accepts has a canonical payload which `from_json` reads as the same
//!   statement, and which is the statement's `to_json()` canonicalised (see [`normal_form`]).
//!   Nothing in a statement is `null` (what fuzzing found first: serde read `"kid": null` in a
//!   `REMOVE_PARTY` as no `kid`, so `parse` took members of another action and `null`s the
//!   schema refuses).
//! - A payload that is JSON goes to `from_json` too; `parse` of the wrapped payload accepts it
//!   exactly when it is canonical and `from_json` accepts it, with the same statement. An
//!   accepted statement survives `to_json` / `from_json`, and signing it with the operator's
//!   fixture key gives a JWS that parses back to it and verifies.
//! - Every accepted statement is applied to a fixed membership ([`membership`]): `check` and
//!   `apply` give the same answer; a refusal changes nothing; an application does what the
//!   module docs say at that index (and nothing it should not), and is refused the second time.
//!
//! Seeds: `python3 backend/fuzz/seed-corpus.py party_statement` writes valid signed
//! statements of every action for [`membership`] (signed with the fixture keys behind
//! [`KIDS`]), a few refused by the membership, and their payloads with the mode byte of the kid
//! that signed them; the corpus was then grown by fuzzing and minimised (BENCHMARKS.md).
#![no_main]

use std::sync::OnceLock;

use lading_domain::canonical::{canonicalize, parse_canonical};
use lading_domain::ids::KeyId;
use lading_domain::jws::{Jwk, SigningKey};
use lading_domain::membership::{
    Membership, PartyStatement, Principal, SignedPartyStatement, Statement, PARTY_STATEMENT_TYP,
};
use lading_domain::party::PartyRegistryFile;
use lading_fuzz::{fixture_key, operator_key, split, unsigned_compact, Input};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// The first index after [`membership`]'s history.
const FIRST: u64 = 6;

/// The kids a payload is signed under, by bits 1–3 of its mode byte.
const KIDS: [&str; 8] = [
    "operator:test-2026",        // genesis operator key
    "operator:2027",             // the operator's second key (index 1)
    "carrier-oceanic:test-2026", // revoked at 4
    "carrier-oceanic:2027",      // added at 3
    "bank-harbour:test-2026",    // a party added at 2
    "customs-nl:test-2026",      // a party removed at 5
    "shipper-acme:test-2026",    // unknown
    "operator:2028",             // unknown
];

const TIME: &str = "2026-12-05T10:00:00.000Z";

fuzz_target!(|data: &[u8]| match split(data) {
    Some(Input::Compact(text)) => {
        if let Ok(signed) = SignedPartyStatement::parse(text) {
            check_signed(&signed, text);
            round_trips(signed.statement());
            folds(data[0], signed.kid(), signed.statement());
        }
    }
    Some(Input::Payload(payload)) => payload_agrees(data[0], payload),
    None => {}
});

struct Fixed {
    operator: SigningKey,
    membership: Membership,
}

/// The public half of a fixture key, under `kid`.
fn public(name: &str, jwk: &str, kid: &str) -> Value {
    let mut value =
        serde_json::to_value(fixture_key(name, jwk).to_public()).expect("a JWK serialises");
    value["kid"] = Value::from(kid);
    value
}

/// A genesis of two parties and one operator key (a `parties.json`), then five statements at
/// indexes 1..=5 so that a second operator key, a party added later, a rotated and a revoked
/// key and a removed party are there to be named.
fn membership() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let operator = public(
            "operator",
            include_str!("../../../fixtures/keys/operator.jwk"),
            "operator:test-2026",
        );
        let carrier = public(
            "carrier-oceanic",
            include_str!("../../../fixtures/keys/carrier-oceanic.jwk"),
            "carrier-oceanic:test-2026",
        );
        let customs = public(
            "customs-nl",
            include_str!("../../../fixtures/keys/customs-nl.jwk"),
            "customs-nl:test-2026",
        );
        let file = json!({
            "operator_keys": [operator],
            "parties": [
                {"id": "carrier-oceanic", "name": "Oceanic Container Lines", "role": "carrier",
                 "keys": [carrier]},
                {"id": "customs-nl", "name": "Douane Nederland", "role": "customs_authority",
                 "ports": ["NLRTM", "NLAMS"], "keys": [customs]},
            ],
        });
        let file = PartyRegistryFile::parse(&file.to_string()).expect("the genesis parses");
        let mut membership = Membership::genesis(&file).expect("the genesis is valid");
        // The second operator key and the carrier's new key reuse other fixture keys' points.
        let operator_2027 = public(
            "registry",
            include_str!("../../../fixtures/keys/registry.jwk"),
            "operator:2027",
        );
        let bank = public(
            "bank-harbour",
            include_str!("../../../fixtures/keys/bank-harbour.jwk"),
            "bank-harbour:test-2026",
        );
        let carrier_2027 = public(
            "carrier-polaris",
            include_str!("../../../fixtures/keys/carrier-polaris.jwk"),
            "carrier-oceanic:2027",
        );
        let history = [
            (
                "operator:test-2026",
                json!({"action": "ADD_KEY", "actor": "operator", "partyId": "operator",
                       "key": operator_2027}),
            ),
            (
                "operator:test-2026",
                json!({"action": "ADD_PARTY", "actor": "operator",
                       "party": {"id": "bank-harbour", "name": "Harbour Bank", "role": "bank"},
                       "keys": [bank]}),
            ),
            (
                "carrier-oceanic:test-2026",
                json!({"action": "ADD_KEY", "actor": "carrier-oceanic",
                       "partyId": "carrier-oceanic", "key": carrier_2027}),
            ),
            (
                "carrier-oceanic:2027",
                json!({"action": "REVOKE_KEY", "actor": "carrier-oceanic",
                       "partyId": "carrier-oceanic", "kid": "carrier-oceanic:test-2026"}),
            ),
            (
                "operator:2027",
                json!({"action": "REMOVE_PARTY", "actor": "operator", "partyId": "customs-nl"}),
            ),
        ];
        for (index, (kid, mut payload)) in (1..).zip(history) {
            payload["time"] = Value::from(TIME);
            let statement = PartyStatement::from_json(&payload).expect("the history parses");
            let kid: KeyId = kid.parse().expect("a kid");
            if let Err(e) = membership.apply(index, &kid, &statement) {
                panic!("the history's statement at {index} is refused: {e}");
            }
        }
        let operator = operator_key()
            .signing_key()
            .expect("the operator fixture key is private");
        Fixed {
            operator,
            membership,
        }
    })
}

fn payload_agrees(mode: u8, payload: &[u8]) {
    let kid = KIDS[usize::from(mode >> 1) & 7];
    let compact = unsigned_compact(kid, PARTY_STATEMENT_TYP, payload);
    let signed = SignedPartyStatement::parse(&compact);
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        assert!(signed.is_err(), "accepted a payload that is not JSON");
        return;
    };
    let thorough = PartyStatement::from_json(&value);
    let canonical = parse_canonical(payload).is_ok();
    // `parse` takes a payload only in the statement's one normal form (see `normal_form`).
    let normal = thorough
        .as_ref()
        .is_ok_and(|s| canonicalize(&s.to_json()).as_slice() == payload);
    assert_eq!(
        signed.is_ok(),
        canonical && normal,
        "SignedPartyStatement::parse and from_json disagree: {:?} / {:?}",
        signed.as_ref().err(),
        thorough.as_ref().err()
    );
    let statement = match thorough {
        Ok(statement) => statement,
        Err(e) => {
            let _ = (e.code(), e.to_string());
            return;
        }
    };
    assert_eq!(
        canonicalize(&statement.to_json()),
        canonicalize(&normal_form(&value)),
        "to_json does not give the payload back"
    );
    round_trips(&statement);
    if let Ok(signed) = signed {
        assert_eq!(signed.statement(), &statement);
        check_signed(&signed, &compact);
    }
    let kid: KeyId = kid.parse().expect("a kid");
    folds(mode, &kid, &statement);
}

/// `value` (a payload `from_json` accepts) as `to_json` writes it.
///
/// The schemas let a payload say the same statement in more than one way; `from_json` reads
/// them all, `parse` takes only the one `to_json` writes (one byte form per statement): a JWK
/// may leave out `"use": "sig"` and `"alg": "EdDSA"`, write
/// `"lading_test_key": false`, and carry members Lading ignores (`schemas/jwk.json`); a party
/// may write `"ports": []`. `to_json` writes one spelling of each. Only those members are
/// rewritten here: everything else must come back byte for byte, and a payload already in
/// this form is the statement's `to_json()` canonicalised, exactly.
fn normal_form(value: &Value) -> Value {
    const JWK_MEMBERS: [&str; 7] = ["kty", "crv", "x", "kid", "use", "alg", "lading_test_key"];
    let mut value = value.clone();
    let jwk = |v: &mut Value| {
        let Some(members) = v.as_object_mut() else {
            return;
        };
        members.retain(|name, _| JWK_MEMBERS.contains(&name.as_str()));
        members.entry("use").or_insert_with(|| json!("sig"));
        members.entry("alg").or_insert_with(|| json!("EdDSA"));
        if members.get("lading_test_key") == Some(&json!(false)) {
            members.remove("lading_test_key");
        }
    };
    if let Some(keys) = value.get_mut("keys").and_then(Value::as_array_mut) {
        keys.iter_mut().for_each(jwk);
    }
    if let Some(key) = value.get_mut("key") {
        jwk(key);
    }
    if let Some(party) = value.get_mut("party").and_then(Value::as_object_mut) {
        if party.get("ports") == Some(&json!([])) {
            party.remove("ports");
        }
    }
    value
}

/// What every parsed statement keeps: its text, its header, and its payload, which is the
/// canonical form of what `from_json` read.
fn check_signed(signed: &SignedPartyStatement, text: &str) {
    assert_eq!(signed.jws().as_str(), text);
    assert_eq!(signed.jws().typ(), Some(PARTY_STATEMENT_TYP));
    assert!(signed.jws().has_canonical_header());
    assert_eq!(signed.kid(), signed.jws().kid());
    let payload = signed.jws().payload_bytes();
    let value = parse_canonical(payload).expect("an accepted payload is canonical");
    assert_eq!(
        PartyStatement::from_json(&value).as_ref(),
        Ok(signed.statement())
    );
    assert_eq!(
        canonicalize(&signed.statement().to_json()),
        canonicalize(&normal_form(&value)),
        "to_json does not give the signed payload back"
    );
}

/// `to_json` / `from_json`, and `sign` / `parse`, give the statement back.
fn round_trips(statement: &PartyStatement) {
    let json = statement.to_json();
    assert_eq!(PartyStatement::from_json(&json).as_ref(), Ok(statement));
    let fixed = membership();
    let compact = statement.sign(&fixed.operator);
    let signed = match SignedPartyStatement::parse(&compact) {
        Ok(signed) => signed,
        Err(e) => panic!("a signed statement does not parse: {e}"),
    };
    assert_eq!(signed.statement(), statement);
    assert_eq!(signed.kid(), &fixed.operator.kid);
    assert_eq!(signed.jws().payload_bytes(), canonicalize(&json));
    assert!(fixed.operator.verifying_key().verify(signed.jws()).is_ok());
    let _ = (statement.statement.action(), statement.statement.subject());
}

/// Applies the statement to the fixed membership at the index the mode byte picks.
fn folds(mode: u8, kid: &KeyId, statement: &PartyStatement) {
    let index = FIRST + u64::from((mode >> 4) & 3);
    let before = &membership().membership;
    let checked = before.check(index, kid, statement);
    let mut after = before.clone();
    let applied = after.apply(index, kid, statement);
    assert_eq!(checked, applied, "check and apply disagree");
    let key = match applied {
        Ok(key) => key,
        Err(e) => {
            assert_eq!(
                &after, before,
                "apply refused ({e}) but changed the membership"
            );
            let _ = e.code();
            return;
        }
    };
    assert_eq!(&key.kid, kid);
    assert_eq!(
        before.signer_key(kid, &statement.actor, index),
        Ok(&key),
        "applied, signed by a key the actor may not sign with"
    );
    effects(before, &after, index, statement);
    // No statement can be applied twice.
    let mut again = after.clone();
    assert!(
        again.apply(index + 1, kid, statement).is_err(),
        "applied twice"
    );
    assert_eq!(again, after);
}

/// What the module docs say an applied statement does at `index`.
fn effects(before: &Membership, after: &Membership, index: u64, statement: &PartyStatement) {
    let added = |jwk: &Jwk, owner: &Principal| {
        let record = after.key(jwk.kid()).expect("an added key is there");
        assert_eq!(record.key, jwk.verifying_key().expect("a valid key"));
        assert_eq!(
            (&record.owner, record.added_at, record.revoked_at),
            (owner, Some(index), None)
        );
        assert!(!record.valid_at(index) && record.valid_at(index + 1));
        assert!(after.signer_key(jwk.kid(), owner, index).is_err());
        assert!(after.signer_key(jwk.kid(), owner, index + 1).is_ok());
    };
    let (parties, keys) = (before.members().len(), before.keys().len());
    match &statement.statement {
        Statement::AddParty { party, keys: new } => {
            let member = after.member(&party.id).expect("an added party is there");
            assert_eq!(
                (&member.party, member.added_at, member.removed_at),
                (party, Some(index), None)
            );
            assert!(!member.active_at(index) && member.active_at(index + 1));
            let owner = Principal::Party(party.id.clone());
            new.iter().for_each(|jwk| added(jwk, &owner));
            assert_eq!(after.members().len(), parties + 1);
            assert_eq!(after.keys().len(), keys + new.len());
        }
        Statement::RemoveParty { party } => {
            let member = after.member(party).expect("a removed party stays");
            assert_eq!(member.removed_at, Some(index));
            assert!(member.active_at(index) && !member.active_at(index + 1));
            let owner = Principal::Party(party.clone());
            for record in after.keys().into_iter().filter(|r| r.owner == owner) {
                assert!(after
                    .signer_key(&record.key.kid, &owner, index + 1)
                    .is_err());
            }
            assert_eq!(after.keys(), before.keys());
        }
        Statement::AddKey { subject, key } => {
            added(key, subject);
            assert_eq!(after.members(), before.members());
            assert_eq!(after.keys().len(), keys + 1);
        }
        Statement::RevokeKey { subject, kid } => {
            let record = after.key(kid).expect("a revoked key stays");
            assert_eq!((&record.owner, record.revoked_at), (subject, Some(index)));
            assert!(!record.valid_at(index + 1));
            assert!(after.signer_key(kid, subject, index + 1).is_err());
            if *subject == Principal::Operator {
                assert!(
                    after
                        .keys()
                        .iter()
                        .any(|r| r.owner == Principal::Operator && r.valid_at(index + 1)),
                    "the operator's last valid key was revoked"
                );
            }
            assert_eq!(after.members(), before.members());
            assert_eq!(after.keys().len(), keys);
        }
    }
}
