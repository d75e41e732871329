//! Fixture parties with TEST keys, realistic sample documents, the committed sample chains and
//! events, and a fast generator of large valid ledgers.
//!
//! # Files under `fixtures/`
//!
//! - `keys/<party-id>.jwk`, `keys/registry.jwk`: private Ed25519 OKP JWKs, kid
//!   `<party-id>:test-2026` (`registry:test-2026`), marked `"lading_test_key": true`. Created
//!   once at random by `lading-fixtures keys`, never overwritten.
//! - `parties.json`: `{"parties":[{"id","name","role","ports","keys":[<public JWK>]}]}`, derived
//!   from [`PARTIES`] and the key files.
//! - `tokens.json`: `{"<party-id>": "lading-test-<party-id>-<32 hex>"}`, random once, then kept.
//! - `documents/<reference>.json`, `samples.json`, `payloads/*.json`: built by [`build_samples`]
//!   from the committed keys with fixed times. Ed25519 signatures are deterministic, so the same
//!   keys give byte-identical files; a test regenerates them in memory and compares.
//!
//! # Generated ledgers
//!
//! [`LedgerGenerator`] emits `documents × (1 + transfers)` signed transitions. Each document is
//! a to-order bill of lading issued by a carrier to a shipper and then passed on between the
//! non-carrier parties, either by plain TRANSFERs (it stays blank endorsed) or by pairs of
//! ENDORSE_TO_ORDER and TRANSFER. Up to `in_flight` documents are open at once and the next
//! transition is taken from a document chosen by a SplitMix64 stream seeded with `seed`, so the
//! stream is interleaved, reproducible, and every prefix of it is valid in order.
//!
//! The key ids use `:` where the task notes wrote `#`: the domain's `KeyId` alphabet is
//! `[A-Za-z0-9._:-]`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use lading_domain::document::{
    CargoGrossWeight, CargoItem, ConsignmentItem, DocumentFields, DocumentTypeCode, Equipment,
    OuterPackaging, Seal, SealSource, UtilizedTransportEquipment, WeightUnit,
};
use lading_domain::{
    Action, Chain, ContainerNumber, Date, Digest, DocumentReference, DocumentView, EventCode,
    EventDraft, Jwk, NonEmptyText, Party, PartyId, PositiveDecimal, ReasonCode, Role,
    ShipmentEvent, SignedTransition, SigningKey, Timestamp, TransitionPayload, TransportDocument,
    UnLocode, VerifyingKey, TRANSITION_TYP,
};
use serde_json::{json, Value};

/// Suffix of every fixture key id: `<party-id>:test-2026`.
pub const KID_SUFFIX: &str = ":test-2026";

/// File stem of the registry's own key (`keys/registry.jwk`); it is no party.
pub const REGISTRY_KEY: &str = "registry";
/// The file name (and kid prefix) of the consortium operator's key, which signs party
/// statements.
pub const OPERATOR_KEY: &str = "operator";

/// First instant used by the samples and, by default, by generated ledgers.
pub const SAMPLE_EPOCH: &str = "2026-11-02T08:00:00.000Z";

/// One fixture party, as it appears in `parties.json` (minus its keys).
#[derive(Debug, Clone, Copy)]
pub struct PartySpec {
    pub id: &'static str,
    pub name: &'static str,
    pub role: Role,
    pub ports: &'static [&'static str],
}

/// Every fixture party, in `parties.json` order.
pub const PARTIES: &[PartySpec] = &[
    PartySpec {
        id: "carrier-oceanic",
        name: "Oceanic Container Lines",
        role: Role::Carrier,
        ports: &[],
    },
    PartySpec {
        id: "carrier-polaris",
        name: "Polaris Shipping Company",
        role: Role::Carrier,
        ports: &[],
    },
    PartySpec {
        id: "shipper-acme",
        name: "Acme Industrial Exports B.V.",
        role: Role::Shipper,
        ports: &[],
    },
    PartySpec {
        id: "shipper-borealis",
        name: "Borealis Trading Oy",
        role: Role::Shipper,
        ports: &[],
    },
    PartySpec {
        id: "forwarder-swift",
        name: "Swift Freight Forwarding GmbH",
        role: Role::FreightForwarder,
        ports: &[],
    },
    PartySpec {
        id: "bank-harbour",
        name: "Harbour Trade Bank",
        role: Role::Bank,
        ports: &[],
    },
    PartySpec {
        id: "consignee-delta",
        name: "Delta Imports Inc.",
        role: Role::Consignee,
        ports: &[],
    },
    PartySpec {
        id: "customs-nl",
        name: "Netherlands Customs Administration",
        role: Role::CustomsAuthority,
        ports: &["NLRTM", "NLAMS"],
    },
    PartySpec {
        id: "customs-sg",
        name: "Singapore Customs",
        role: Role::CustomsAuthority,
        ports: &["SGSIN"],
    },
    PartySpec {
        id: "customs-us",
        name: "U.S. Customs and Border Protection",
        role: Role::CustomsAuthority,
        ports: &["USNYC", "USLAX"],
    },
];

/// Why fixtures could not be loaded, built or written.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    InvalidFile { path: PathBuf, message: String },
    #[error("no fixture party or key {0:?}")]
    UnknownParty(String),
    /// A domain rule refused something the fixtures built: a bug in the fixtures.
    #[error("{code}: {message}")]
    Domain { code: &'static str, message: String },
    #[error("invalid generator configuration: {0}")]
    Config(String),
}

impl FixtureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "fixture_io",
            Self::InvalidFile { .. } => "invalid_fixture_file",
            Self::UnknownParty(_) => "unknown_fixture_party",
            Self::Domain { code, .. } => code,
            Self::Config(_) => "invalid_generator_config",
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn invalid(path: &Path, message: impl fmt::Display) -> Self {
        Self::InvalidFile {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

macro_rules! domain_error {
    ($($t:ty),*) => {$(
        impl From<$t> for FixtureError {
            fn from(e: $t) -> Self {
                Self::Domain { code: e.code(), message: e.to_string() }
            }
        }
    )*};
}

domain_error!(
    lading_domain::IdError,
    lading_domain::DocumentError,
    lading_domain::TransitionError,
    lading_domain::RuleViolation,
    lading_domain::EventError,
    lading_domain::JwkError
);

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
}

/// The key id of a fixture party's (or the registry's) key.
pub fn kid_for(name: &str) -> String {
    format!("{name}{KID_SUFFIX}")
}

fn read_text(path: &Path) -> Result<String, FixtureError> {
    std::fs::read_to_string(path).map_err(|e| FixtureError::io(path, e))
}

fn write_text(path: &Path, text: &str) -> Result<(), FixtureError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| FixtureError::io(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| FixtureError::io(path, e))
}

fn read_jwk(path: &Path) -> Result<Jwk, FixtureError> {
    serde_json::from_str(&read_text(path)?).map_err(|e| FixtureError::invalid(path, e))
}

/// Pretty JSON with a final newline: the form of every committed fixture file. Whole numbers
/// are written without a fraction (`24310`, not `24310.0`), as their canonical form has them.
pub fn pretty(v: &Value) -> String {
    // A Value always serialises.
    let mut s = serde_json::to_string_pretty(&whole_numbers(v)).unwrap_or_default();
    s.push('\n');
    s
}

fn whole_numbers(v: &Value) -> Value {
    /// Integers beyond 2^53 are not exact doubles; leave those alone.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < EXACT => {
                Value::from(f as i64)
            }
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), whole_numbers(v)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// A party's record and key.
#[derive(Debug, Clone)]
struct PartyKey {
    party: Party,
    jwk: Jwk,
    signer: SigningKey,
}

/// The fixture parties with their private TEST keys and bearer tokens.
#[derive(Debug, Clone)]
pub struct FixtureParties {
    parties: Vec<PartyKey>,
    registry: SigningKey,
    registry_jwk: Jwk,
    operator_jwk: Jwk,
    tokens: BTreeMap<String, String>,
}

impl FixtureParties {
    /// Loads from [`fixtures_dir`].
    pub fn load() -> Result<Self, FixtureError> {
        Self::load_from(&fixtures_dir())
    }

    /// Loads the key of every party of [`PARTIES`] and the registry from `dir/keys/`, and
    /// `dir/tokens.json`.
    pub fn load_from(dir: &Path) -> Result<Self, FixtureError> {
        let keys = dir.join("keys");
        let mut parties = Vec::with_capacity(PARTIES.len());
        for spec in PARTIES {
            let path = keys.join(format!("{}.jwk", spec.id));
            let jwk = read_jwk(&path)?;
            check_fixture_key(&path, &jwk, spec.id)?;
            parties.push(PartyKey {
                party: party_of(spec)?,
                signer: jwk.signing_key()?,
                jwk,
            });
        }
        let path = keys.join(format!("{REGISTRY_KEY}.jwk"));
        let registry_jwk = read_jwk(&path)?;
        check_fixture_key(&path, &registry_jwk, REGISTRY_KEY)?;
        let path = keys.join(format!("{OPERATOR_KEY}.jwk"));
        let operator_jwk = read_jwk(&path)?;
        check_fixture_key(&path, &operator_jwk, OPERATOR_KEY)?;
        let path = dir.join("tokens.json");
        let tokens: BTreeMap<String, String> = serde_json::from_str(&read_text(&path)?)
            .map_err(|e| FixtureError::invalid(&path, e))?;
        Ok(Self {
            parties,
            registry: registry_jwk.signing_key()?,
            registry_jwk,
            operator_jwk,
            tokens,
        })
    }

    /// Every party, in [`PARTIES`] order.
    pub fn parties(&self) -> impl Iterator<Item = &Party> {
        self.parties.iter().map(|p| &p.party)
    }

    pub fn party(&self, id: &str) -> Option<&Party> {
        self.entry(id).ok().map(|p| &p.party)
    }

    fn entry(&self, id: &str) -> Result<&PartyKey, FixtureError> {
        self.parties
            .iter()
            .find(|p| p.party.id.as_str() == id)
            .ok_or_else(|| FixtureError::UnknownParty(id.to_owned()))
    }

    /// The private key party `id` signs with.
    pub fn signer(&self, id: &str) -> Result<&SigningKey, FixtureError> {
        Ok(&self.entry(id)?.signer)
    }

    pub fn verifying_key(&self, id: &str) -> Result<VerifyingKey, FixtureError> {
        Ok(self.entry(id)?.signer.verifying_key())
    }

    /// The party's private JWK, as stored in `keys/<id>.jwk`.
    pub fn jwk(&self, id: &str) -> Result<&Jwk, FixtureError> {
        Ok(&self.entry(id)?.jwk)
    }

    /// The party owning the key `kid`, with that key: what a verifier looks up.
    pub fn key_by_kid(&self, kid: &str) -> Option<(&Party, VerifyingKey)> {
        self.parties
            .iter()
            .find(|p| p.signer.kid.as_str() == kid)
            .map(|p| (&p.party, p.signer.verifying_key()))
    }

    /// The registry's checkpoint signing key.
    pub fn registry_signer(&self) -> &SigningKey {
        &self.registry
    }

    pub fn registry_jwk(&self) -> &Jwk {
        &self.registry_jwk
    }

    /// The bearer token of party `id` (from `tokens.json`).
    pub fn token(&self, id: &str) -> Option<&str> {
        self.tokens.get(id).map(String::as_str)
    }

    pub fn tokens(&self) -> &BTreeMap<String, String> {
        &self.tokens
    }

    /// The content of `parties.json`: every party with its public key.
    pub fn parties_json(&self) -> Value {
        let parties: Vec<Value> = self
            .parties
            .iter()
            .map(|p| {
                json!({
                    "id": p.party.id,
                    "name": p.party.name,
                    "role": p.party.role,
                    "ports": p.party.ports,
                    "keys": [p.jwk.to_public()],
                })
            })
            .collect();
        json!({ "parties": parties, "operator_keys": [self.operator_jwk.to_public()] })
    }

    /// The consortium operator's TEST key: it signs the party statements.
    pub fn operator(&self) -> Result<SigningKey, FixtureError> {
        Ok(self.operator_jwk.signing_key()?)
    }
}

fn party_of(spec: &PartySpec) -> Result<Party, FixtureError> {
    Ok(Party {
        id: spec.id.parse()?,
        name: spec.name.parse()?,
        role: spec.role,
        ports: spec
            .ports
            .iter()
            .map(|p| p.parse())
            .collect::<Result<_, _>>()?,
    })
}

fn check_fixture_key(path: &Path, jwk: &Jwk, name: &str) -> Result<(), FixtureError> {
    if !jwk.is_test_key() {
        return Err(FixtureError::invalid(path, "not marked lading_test_key"));
    }
    if !jwk.is_private() {
        return Err(FixtureError::invalid(path, "has no private part"));
    }
    if jwk.kid().as_str() != kid_for(name) {
        return Err(FixtureError::invalid(
            path,
            format!("kid must be {:?}", kid_for(name)),
        ));
    }
    Ok(())
}

/// What `lading-fixtures keys` created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysReport {
    pub created_keys: Vec<String>,
    pub created_tokens: Vec<String>,
}

/// Creates every missing key file and token (at random) under `dir`, keeps existing ones, and
/// rewrites `parties.json` from [`PARTIES`] and the keys.
pub fn ensure_keys(dir: &Path) -> Result<KeysReport, FixtureError> {
    use rand_core::RngCore as _;

    let mut report = KeysReport::default();
    let keys = dir.join("keys");
    let names = PARTIES
        .iter()
        .map(|p| p.id)
        .chain([REGISTRY_KEY, OPERATOR_KEY]);
    for name in names {
        let path = keys.join(format!("{name}.jwk"));
        if path.exists() {
            continue;
        }
        let jwk = Jwk::generate(kid_for(name).parse()?, true);
        write_text(&path, &pretty(&json!(jwk)))?;
        report.created_keys.push(name.to_owned());
    }

    let path = dir.join("tokens.json");
    let mut tokens: BTreeMap<String, String> = if path.exists() {
        serde_json::from_str(&read_text(&path)?).map_err(|e| FixtureError::invalid(&path, e))?
    } else {
        BTreeMap::new()
    };
    for spec in PARTIES {
        if !tokens.contains_key(spec.id) {
            let mut secret = [0u8; 16];
            rand_core::OsRng.fill_bytes(&mut secret);
            tokens.insert(
                spec.id.to_owned(),
                format!("lading-test-{}-{}", spec.id, hex::encode(secret)),
            );
            report.created_tokens.push(spec.id.to_owned());
        }
    }
    write_text(&path, &pretty(&json!(tokens)))?;

    let parties = FixtureParties::load_from(dir)?;
    write_text(&dir.join("parties.json"), &pretty(&parties.parties_json()))?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness and sample data
// ---------------------------------------------------------------------------------------------

/// SplitMix64: tiny, fast and fully specified, so a seed gives the same stream everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// ISO 6346 letter values (A=10, counting up and skipping the multiples of 11), from the
/// standard's table rather than computed, so this check is independent of the domain's.
const ISO6346_LETTERS: [u64; 26] = [
    10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34, 35, 36,
    37, 38,
];

/// ISO 6346 check digit of the first 10 characters of a container number (owner code,
/// category letter, 6-digit serial); `None` if they are not of that shape.
pub fn iso6346_check_digit(first_ten: &str) -> Option<u32> {
    let b = first_ten.as_bytes();
    let shape = b.len() == 10
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && b[4..].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let value = if c.is_ascii_digit() {
                u64::from(c - b'0')
            } else {
                ISO6346_LETTERS[usize::from(c - b'A')]
            };
            value << i
        })
        .sum();
    Some((sum % 11 % 10) as u32)
}

/// A full ISO 6346 container number for `owner_and_category` (e.g. `OCLU`) and `serial`.
pub fn container_number(owner_and_category: &str, serial: u32) -> Option<String> {
    let first_ten = format!("{owner_and_category}{serial:06}");
    let digit = iso6346_check_digit(&first_ten)?;
    Some(format!("{first_ten}{digit}"))
}

/// A trade lane: ports of loading and discharge, and the vessel serving it.
#[derive(Debug, Clone, Copy)]
struct Lane {
    from: &'static str,
    to: &'static str,
    vessel: &'static str,
    bound: char,
}

const LANES: &[Lane] = &[
    Lane {
        from: "NLRTM",
        to: "SGSIN",
        vessel: "Oceanic Star",
        bound: 'E',
    },
    Lane {
        from: "SGSIN",
        to: "USLAX",
        vessel: "Pacific Meridian",
        bound: 'E',
    },
    Lane {
        from: "DEHAM",
        to: "USNYC",
        vessel: "Nordic Polaris",
        bound: 'W',
    },
    Lane {
        from: "CNSHA",
        to: "NLRTM",
        vessel: "Eastern Promise",
        bound: 'W',
    },
    Lane {
        from: "KRPUS",
        to: "USLAX",
        vessel: "Polaris Dawn",
        bound: 'E',
    },
    Lane {
        from: "BEANR",
        to: "USNYC",
        vessel: "Scheldt Voyager",
        bound: 'W',
    },
    Lane {
        from: "SGSIN",
        to: "NLRTM",
        vessel: "Straits Endeavour",
        bound: 'W',
    },
    Lane {
        from: "USLAX",
        to: "JPTYO",
        vessel: "Golden Gate Bridge",
        bound: 'W',
    },
];

/// A commodity: goods description, HS code, UN/ECE Rec. 21 package code and its name.
#[derive(Debug, Clone, Copy)]
struct Commodity {
    description: &'static str,
    hs_code: &'static str,
    package_code: &'static str,
    package: &'static str,
}

const COMMODITIES: &[Commodity] = &[
    Commodity {
        description: "Centrifugal pumps",
        hs_code: "841370",
        package_code: "CS",
        package: "Wooden cases",
    },
    Commodity {
        description: "Men's leather footwear",
        hs_code: "640399",
        package_code: "CT",
        package: "Cartons",
    },
    Commodity {
        description: "Polyethylene granules",
        hs_code: "390110",
        package_code: "BG",
        package: "Bags",
    },
    Commodity {
        description: "Green coffee beans",
        hs_code: "090111",
        package_code: "BG",
        package: "Jute bags",
    },
    Commodity {
        description: "Office chairs",
        hs_code: "940130",
        package_code: "CT",
        package: "Cartons",
    },
    Commodity {
        description: "Passenger car tyres",
        hs_code: "401110",
        package_code: "PX",
        package: "Pallets",
    },
    Commodity {
        description: "Red wine in bottles",
        hs_code: "220421",
        package_code: "CS",
        package: "Cases",
    },
    Commodity {
        description: "Cotton T-shirts",
        hs_code: "610910",
        package_code: "CT",
        package: "Cartons",
    },
    Commodity {
        description: "Cocoa powder, unsweetened",
        hs_code: "180500",
        package_code: "BG",
        package: "Paper bags",
    },
    Commodity {
        description: "Natural rubber sheets",
        hs_code: "400121",
        package_code: "BL",
        package: "Bales",
    },
];

/// ISO 6346 size/type codes: 20' and 40' general purpose, 40' high cube.
const EQUIPMENT_TYPES: &[&str] = &["22G1", "42G1", "45G1"];

/// The SCAC-like code of a carrier party and the owner prefix of its containers.
fn carrier_codes(carrier: &str) -> (String, String) {
    match carrier {
        "carrier-oceanic" => ("OCNL".into(), "OCLU".into()),
        "carrier-polaris" => ("PLRS".into(), "PLRU".into()),
        other => {
            let letters: String = other
                .rsplit('-')
                .next()
                .unwrap_or(other)
                .chars()
                .filter(char::is_ascii_alphabetic)
                .map(|c| c.to_ascii_uppercase())
                .chain("XXXX".chars())
                .take(4)
                .collect();
            let owner: String = letters.chars().take(3).chain(['U']).collect();
            (letters, owner)
        }
    }
}

fn text(s: &str) -> Result<NonEmptyText, FixtureError> {
    Ok(s.parse()?)
}

/// One container of a shipment: number, ISO size/type code, gross weight (kg), packages.
type Container = (String, &'static str, f64, u32);

/// What a document is made of, beyond its parties.
#[derive(Debug, Clone)]
struct Shipment {
    lane: Lane,
    voyage: String,
    issue_date: Date,
    items: Vec<(Commodity, Vec<Container>)>,
}

fn shipment_from_seed(carrier: &str, seed: u64) -> Result<Shipment, FixtureError> {
    let mut rng = SplitMix64(seed);
    let lane = LANES[rng.index(LANES.len())];
    let voyage = format!("{:03}{}", 1 + rng.below(999), lane.bound);
    let day = 2 + rng.below(27) as u32;
    let issue_date = chrono::NaiveDate::from_ymd_opt(2026, 11, day)
        .and_then(Date::from_naive)
        .ok_or_else(|| FixtureError::Config("issue date out of range".into()))?;
    let (_, owner) = carrier_codes(carrier);
    let item_count = 1 + rng.index(2);
    let mut serial = rng.below(999_000) as u32;
    let mut items = Vec::with_capacity(item_count);
    let first = rng.index(COMMODITIES.len());
    for i in 0..item_count {
        let commodity = COMMODITIES[(first + i) % COMMODITIES.len()];
        let containers = (0..1 + rng.index(2))
            .map(|_| {
                serial += 1 + rng.below(97) as u32;
                let number = container_number(&owner, serial % 1_000_000)
                    .ok_or_else(|| FixtureError::Config(format!("bad owner code {owner}")))?;
                let kind = EQUIPMENT_TYPES[rng.index(EQUIPMENT_TYPES.len())];
                let weight = (20_000 + rng.below(240_000)) as f64 / 10.0;
                let packages = 10 + rng.below(1990) as u32;
                Ok((number, kind, weight, packages))
            })
            .collect::<Result<Vec<_>, FixtureError>>()?;
        items.push((commodity, containers));
    }
    Ok(Shipment {
        lane,
        voyage,
        issue_date,
        items,
    })
}

/// Optional members of a sample document.
#[derive(Debug, Clone, Default)]
struct Extras {
    type_code: Option<DocumentTypeCode>,
    endorsee: Option<PartyId>,
    notify: Vec<PartyId>,
    shipped_on_board: bool,
    seal_source: Option<SealSource>,
}

fn build_document(
    reference: DocumentReference,
    carrier: PartyId,
    shipper: PartyId,
    consignee: Option<PartyId>,
    to_order: bool,
    shipment: &Shipment,
    extras: Extras,
) -> Result<TransportDocument, FixtureError> {
    let (carrier_code, _) = carrier_codes(carrier.as_str());
    let mut consignment_items = Vec::new();
    let mut utilized = Vec::new();
    for (commodity, containers) in &shipment.items {
        let mut cargo_items = Vec::new();
        for (number, kind, weight, packages) in containers {
            let number: ContainerNumber = number.parse()?;
            cargo_items.push(CargoItem {
                equipment_reference: number.clone(),
                cargo_gross_weight: CargoGrossWeight {
                    value: PositiveDecimal::new(*weight)?,
                    unit: WeightUnit::Kilogram,
                },
                outer_packaging: OuterPackaging {
                    number_of_packages: *packages,
                    package_code: Some(text(commodity.package_code)?),
                    description: text(commodity.package)?,
                },
            });
            // Seal numbers: carrier prefix and the container serial, as carriers print them.
            let seal = format!("{}{}", &carrier_code[..2], &number.as_str()[4..10]);
            utilized.push(UtilizedTransportEquipment {
                equipment: Equipment {
                    equipment_reference: number,
                    iso_equipment_code: text(kind)?,
                },
                is_shipper_owned: false,
                seals: vec![Seal {
                    number: text(&seal)?,
                    source: Some(extras.seal_source.unwrap_or(SealSource::Carrier)),
                }],
            });
        }
        consignment_items.push(ConsignmentItem {
            description_of_goods: vec![text(commodity.description)?],
            hs_codes: vec![commodity.hs_code.parse()?],
            cargo_items,
        });
    }
    let fields = DocumentFields {
        transport_document_reference: reference,
        transport_document_type_code: extras.type_code.unwrap_or(DocumentTypeCode::BillOfLading),
        is_to_order: to_order,
        carrier_code: text(&carrier_code)?,
        carrier,
        shipper,
        consignee,
        endorsee: extras.endorsee,
        notify_parties: extras.notify,
        vessel_name: text(shipment.lane.vessel)?,
        carrier_export_voyage_number: text(&shipment.voyage)?,
        port_of_loading: shipment.lane.from.parse()?,
        port_of_discharge: shipment.lane.to.parse()?,
        place_of_receipt: None,
        place_of_delivery: None,
        shipped_on_board_date: extras.shipped_on_board.then_some(shipment.issue_date),
        issue_date: shipment.issue_date,
        consignment_items,
        utilized_transport_equipments: utilized,
    };
    Ok(TransportDocument::new(fields)?)
}

/// A realistic document (lane, vessel, voyage, goods, HS codes, weights and ISO 6346
/// containers with computed check digits) chosen by `seed`; the same seed gives the same
/// document.
///
/// A straight document (`to_order` false) needs a `consignee`.
pub fn sample_document(
    reference: &str,
    carrier: &str,
    shipper: &str,
    consignee: Option<&str>,
    to_order: bool,
    seed: u64,
) -> Result<TransportDocument, FixtureError> {
    let shipment = shipment_from_seed(carrier, seed)?;
    build_document(
        reference.parse()?,
        carrier.parse()?,
        shipper.parse()?,
        consignee.map(str::parse).transpose()?,
        to_order,
        &shipment,
        Extras::default(),
    )
}

// ---------------------------------------------------------------------------------------------
// The committed samples
// ---------------------------------------------------------------------------------------------

/// One signed chain of `samples.json`.
#[derive(Debug, Clone)]
pub struct SampleChain {
    pub reference: String,
    pub transitions: Vec<String>,
}

/// Everything `lading-fixtures samples` writes.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Written to `documents/<reference>.json`.
    pub documents: Vec<TransportDocument>,
    pub chains: Vec<SampleChain>,
    pub events: Vec<String>,
    /// `payloads/issue.json`: the ISSUE of the document that no chain uses.
    pub issue: TransitionPayload,
    /// `payloads/transfer.json`: its TRANSFER, chained to `issue` signed by its actor.
    pub transfer: TransitionPayload,
    /// `payloads/event.json`.
    pub event: ShipmentEvent,
}

impl Samples {
    /// `(path relative to fixtures/, content)` of every file, byte for byte.
    pub fn files(&self) -> Vec<(PathBuf, String)> {
        let mut out: Vec<(PathBuf, String)> = self
            .documents
            .iter()
            .map(|d| {
                (
                    PathBuf::from("documents").join(format!("{}.json", d.reference())),
                    pretty(&d.to_json()),
                )
            })
            .collect();
        let chains: Vec<Value> = self
            .chains
            .iter()
            .map(|c| json!({"reference": c.reference, "transitions": c.transitions}))
            .collect();
        out.push((
            PathBuf::from("samples.json"),
            pretty(&json!({"chains": chains, "events": self.events})),
        ));
        out.push((
            PathBuf::from("payloads").join("issue.json"),
            pretty(&self.issue.to_json()),
        ));
        out.push((
            PathBuf::from("payloads").join("transfer.json"),
            pretty(&self.transfer.to_json()),
        ));
        out.push((
            PathBuf::from("payloads").join("event.json"),
            pretty(&self.event.to_json()),
        ));
        out
    }

    /// Writes [`Self::files`] under `dir`, removing documents that are no longer produced.
    pub fn write(&self, dir: &Path) -> Result<(), FixtureError> {
        let files = self.files();
        let documents = dir.join("documents");
        if documents.exists() {
            let listing =
                std::fs::read_dir(&documents).map_err(|e| FixtureError::io(&documents, e))?;
            for entry in listing {
                let path = entry.map_err(|e| FixtureError::io(&documents, e))?.path();
                let stale = path.extension().is_some_and(|x| x == "json")
                    && !files.iter().any(|(p, _)| dir.join(p) == path);
                if stale {
                    std::fs::remove_file(&path).map_err(|e| FixtureError::io(&path, e))?;
                }
            }
        }
        for (path, content) in files {
            write_text(&dir.join(path), &content)?;
        }
        Ok(())
    }
}

fn pid(s: &str) -> Result<PartyId, FixtureError> {
    Ok(s.parse()?)
}

/// Builds the samples while checking every step with the domain, so a sample that breaks a
/// rule fails here rather than in a reader's hands.
struct SampleBuilder<'a> {
    parties: &'a FixtureParties,
    clock: i64,
    documents: BTreeMap<String, TransportDocument>,
    chains: Vec<(SampleChain, Chain)>,
    events: Vec<String>,
}

/// Minutes between two consecutive sample items.
const SAMPLE_STEP_MINUTES: i64 = 7;

impl<'a> SampleBuilder<'a> {
    fn tick(&mut self) -> Result<Timestamp, FixtureError> {
        let epoch: Timestamp = SAMPLE_EPOCH.parse()?;
        let t = Timestamp::from_unix_millis(epoch.unix_millis() + self.clock * 60_000)
            .ok_or_else(|| FixtureError::Config("sample time out of range".into()))?;
        self.clock += SAMPLE_STEP_MINUTES;
        Ok(t)
    }

    fn chain_index(&self, reference: &str) -> Result<usize, FixtureError> {
        self.chains
            .iter()
            .position(|(c, _)| c.reference == reference)
            .ok_or_else(|| FixtureError::Config(format!("no sample chain {reference}")))
    }

    fn issue(&mut self, reference: &str, recipient: &str) -> Result<(), FixtureError> {
        let doc = self
            .documents
            .get(reference)
            .cloned()
            .ok_or_else(|| FixtureError::Config(format!("no sample document {reference}")))?;
        let carrier = doc.carrier().clone();
        let time = self.tick()?;
        let payload = TransitionPayload::issue(doc, carrier.clone(), pid(recipient)?, time)?;
        let compact = payload.sign(self.parties.signer(carrier.as_str())?);
        let signed = SignedTransition::parse(&compact)?;
        signed.verify(&self.parties.verifying_key(carrier.as_str())?)?;
        let chain = Chain::issue(signed.checksum(), signed.payload())?;
        self.chains.push((
            SampleChain {
                reference: reference.to_owned(),
                transitions: vec![compact],
            },
            chain,
        ));
        Ok(())
    }

    fn step(
        &mut self,
        reference: &str,
        action: Action,
        actor: &str,
        recipient: Option<&str>,
        reason: Option<ReasonCode>,
    ) -> Result<(), FixtureError> {
        let i = self.chain_index(reference)?;
        let time = self.tick()?;
        let mut draft = self.chains[i].1.state().draft(
            action,
            pid(actor)?,
            recipient.map(pid).transpose()?,
            time,
        );
        draft.reason_code = reason;
        let payload = TransitionPayload::new(draft)?;
        let compact = payload.sign(self.parties.signer(actor)?);
        let signed = SignedTransition::parse(&compact)?;
        signed.verify(&self.parties.verifying_key(actor)?)?;
        let (sample, chain) = &mut self.chains[i];
        chain.append(signed.checksum(), signed.payload())?;
        sample.transitions.push(compact);
        Ok(())
    }

    fn event(
        &mut self,
        code: EventCode,
        actor: &str,
        location: &str,
        reference: Option<&str>,
        container: Option<&str>,
        remarks: Option<&str>,
    ) -> Result<(), FixtureError> {
        let time = self.tick()?;
        let doc = reference.and_then(|r| self.documents.get(r));
        let with_vessel = matches!(
            code,
            EventCode::Load | EventCode::Disc | EventCode::Arri | EventCode::Depa
        );
        let (vessel_name, voyage_number) = match doc {
            Some(d) if with_vessel => {
                (Some(text(d.vessel_name())?), Some(text(d.voyage_number())?))
            }
            _ => (None, None),
        };
        let event = ShipmentEvent::new(EventDraft {
            event_id: format!("{actor}-{:04}", self.events.len() + 1).parse()?,
            event_code: code,
            actor: pid(actor)?,
            time,
            location: location.parse()?,
            document_reference: reference.map(str::parse).transpose()?,
            equipment_reference: container.map(str::parse).transpose()?,
            vessel_name,
            voyage_number,
            remarks: remarks.map(text).transpose()?,
        })?;
        let party = self
            .parties
            .party(actor)
            .ok_or_else(|| FixtureError::UnknownParty(actor.to_owned()))?;
        let chain_parties = match reference {
            Some(r) => self.chains[self.chain_index(r)?].1.parties(),
            None => Vec::new(),
        };
        let view = doc.map(|document| DocumentView {
            document,
            chain_parties: &chain_parties,
        });
        event.check_actor(party, view.as_ref())?;
        self.events.push(event.sign(self.parties.signer(actor)?));
        Ok(())
    }

    fn container(&self, reference: &str, i: usize) -> Result<String, FixtureError> {
        self.documents
            .get(reference)
            .and_then(|d| d.container_numbers().get(i).map(|c| c.to_string()))
            .ok_or_else(|| FixtureError::Config(format!("{reference} has no container {i}")))
    }
}

/// The six sample documents: (reference, carrier, shipper, consignee, to order, shipment, extras).
fn sample_documents() -> Result<Vec<TransportDocument>, FixtureError> {
    let date = |d: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 11, d)
            .and_then(Date::from_naive)
            .ok_or_else(|| FixtureError::Config("bad sample date".into()))
    };
    let c = |owner: &str, serial: u32| {
        container_number(owner, serial)
            .ok_or_else(|| FixtureError::Config(format!("bad owner code {owner}")))
    };
    let lane = |from, to, vessel| Lane {
        from,
        to,
        vessel,
        bound: 'E',
    };
    let ship = |lane: Lane, voyage: &str, day: u32, items| -> Result<Shipment, FixtureError> {
        Ok(Shipment {
            lane,
            voyage: voyage.to_owned(),
            issue_date: date(day)?,
            items,
        })
    };
    let goods = |i: usize| COMMODITIES[i];
    let docs = vec![
        // Straight BL: issued, transferred to the consignee, surrendered for delivery.
        build_document(
            "OCNL2026000101".parse()?,
            pid("carrier-oceanic")?,
            pid("shipper-acme")?,
            Some(pid("consignee-delta")?),
            false,
            &ship(
                lane("NLRTM", "SGSIN", "Oceanic Star"),
                "045E",
                2,
                vec![(
                    goods(0),
                    vec![
                        ("CSQU3054383".to_owned(), "22G1", 11_870.5, 24),
                        (c("OCLU", 412_775)?, "45G1", 18_240.0, 36),
                    ],
                )],
            )?,
            Extras {
                notify: vec![pid("forwarder-swift")?],
                shipped_on_board: true,
                ..Extras::default()
            },
        )?,
        // To order of the shipper: endorsed to the bank, then to the consignee.
        build_document(
            "OCNL2026000102".parse()?,
            pid("carrier-oceanic")?,
            pid("shipper-borealis")?,
            None,
            true,
            &ship(
                lane("SGSIN", "USLAX", "Pacific Meridian"),
                "112E",
                2,
                vec![
                    (
                        goods(9),
                        vec![
                            (c("OCLU", 208_113)?, "42G1", 24_310.0, 420),
                            (c("OCLU", 208_120)?, "42G1", 24_118.5, 416),
                        ],
                    ),
                    (goods(4), vec![(c("OCLU", 733_019)?, "45G1", 6_480.0, 540)]),
                ],
            )?,
            Extras {
                notify: vec![pid("consignee-delta")?, pid("bank-harbour")?],
                shipped_on_board: true,
                ..Extras::default()
            },
        )?,
        // Straight BL switched to paper: amendment surrender SWTP, accepted, voided.
        build_document(
            "PLRS2026000201".parse()?,
            pid("carrier-polaris")?,
            pid("shipper-acme")?,
            Some(pid("consignee-delta")?),
            false,
            &ship(
                lane("DEHAM", "USNYC", "Nordic Polaris"),
                "0261W",
                3,
                vec![(
                    goods(6),
                    vec![(c("PLRU", 100_542)?, "22G1", 21_600.0, 1_800)],
                )],
            )?,
            Extras {
                seal_source: Some(SealSource::Shipper),
                ..Extras::default()
            },
        )?,
        // To order of a named endorsee (the shipper): a surrender rejected, then blank endorsed.
        build_document(
            "PLRS2026000202".parse()?,
            pid("carrier-polaris")?,
            pid("shipper-borealis")?,
            None,
            true,
            &ship(
                lane("KRPUS", "USLAX", "Polaris Dawn"),
                "318E",
                4,
                vec![(
                    goods(5),
                    vec![
                        (c("PLRU", 310_007)?, "45G1", 9_850.0, 22),
                        (c("PLRU", 310_014)?, "45G1", 9_712.5, 22),
                    ],
                )],
            )?,
            Extras {
                endorsee: Some(pid("shipper-borealis")?),
                ..Extras::default()
            },
        )?,
        // Sea waybill, transferred to the consignee and left active.
        build_document(
            "OCNL2026000103".parse()?,
            pid("carrier-oceanic")?,
            pid("shipper-acme")?,
            Some(pid("consignee-delta")?),
            false,
            &ship(
                lane("NLRTM", "USNYC", "Atlantic Courier"),
                "207W",
                5,
                vec![(goods(8), vec![(c("OCLU", 556_301)?, "22G1", 19_200.0, 768)])],
            )?,
            Extras {
                type_code: Some(DocumentTypeCode::SeaWaybill),
                ..Extras::default()
            },
        )?,
        // Only in payloads/: a reader signs and submits its ISSUE and TRANSFER.
        build_document(
            "OCNL2026000104".parse()?,
            pid("carrier-oceanic")?,
            pid("shipper-acme")?,
            Some(pid("consignee-delta")?),
            false,
            &ship(
                lane("NLRTM", "SGSIN", "Oceanic Star"),
                "046E",
                9,
                vec![(goods(1), vec![(c("OCLU", 412_790)?, "45G1", 7_315.0, 610)])],
            )?,
            Extras::default(),
        )?,
    ];
    Ok(docs)
}

/// Builds every sample from the committed keys. Deterministic: same keys, same bytes.
pub fn build_samples(parties: &FixtureParties) -> Result<Samples, FixtureError> {
    use Action::*;
    use EventCode::*;

    let documents = sample_documents()?;
    let mut b = SampleBuilder {
        parties,
        clock: 0,
        documents: documents
            .iter()
            .map(|d| (d.reference().to_string(), d.clone()))
            .collect(),
        chains: Vec::new(),
        events: Vec::new(),
    };
    let (d1, d2, d3, d4, d5) = (
        "OCNL2026000101",
        "OCNL2026000102",
        "PLRS2026000201",
        "PLRS2026000202",
        "OCNL2026000103",
    );
    let (oceanic, polaris) = ("carrier-oceanic", "carrier-polaris");
    let (acme, borealis) = ("shipper-acme", "shipper-borealis");
    let (swift, bank, delta) = ("forwarder-swift", "bank-harbour", "consignee-delta");
    let (d1a, d1b) = (b.container(d1, 0)?, b.container(d1, 1)?);
    let d2a = b.container(d2, 0)?;
    let d3a = b.container(d3, 0)?;

    // Rotterdam, export of d1; d2 and d3 issued meanwhile. Every event about a document comes
    // after its ISSUE, so replaying the samples in time order works too.
    b.issue(d1, acme)?;
    b.event(Gtin, oceanic, "NLRTM", Some(d1), Some(&d1a), None)?;
    b.event(Gtin, oceanic, "NLRTM", Some(d1), Some(&d1b), None)?;
    b.event(
        Declared,
        acme,
        "NLRTM",
        Some(d1),
        None,
        Some("Export declaration MRN 26NL0000000000042"),
    )?;
    b.event(
        Hold,
        "customs-nl",
        "NLRTM",
        Some(d1),
        Some(&d1b),
        Some("Selected for X-ray scan"),
    )?;
    b.event(Release, "customs-nl", "NLRTM", Some(d1), Some(&d1b), None)?;
    b.event(Load, oceanic, "NLRTM", Some(d1), Some(&d1a), None)?;
    b.event(Load, oceanic, "NLRTM", Some(d1), Some(&d1b), None)?;
    b.event(Depa, oceanic, "NLRTM", Some(d1), None, None)?;

    b.issue(d2, borealis)?;
    b.event(Load, oceanic, "SGSIN", Some(d2), Some(&d2a), None)?;
    b.step(d2, EndorseToOrder, borealis, Some(bank), None)?;
    b.step(d2, Transfer, borealis, Some(bank), None)?;

    b.issue(d3, acme)?;
    b.event(Gtin, polaris, "DEHAM", Some(d3), Some(&d3a), None)?;
    b.event(
        Hold,
        "customs-us",
        "DEHAM",
        Some(d3),
        Some(&d3a),
        Some("Advance cargo screening before loading"),
    )?;
    b.step(
        d3,
        SurrenderForAmendment,
        acme,
        Some(polaris),
        Some(ReasonCode::SWTP),
    )?;
    b.event(Release, "customs-us", "DEHAM", Some(d3), Some(&d3a), None)?;
    b.step(d3, Sacc, polaris, Some(acme), None)?;
    b.step(d3, Void, polaris, None, None)?;

    b.issue(d4, borealis)?;
    b.step(d4, SurrenderForDelivery, borealis, Some(polaris), None)?;
    b.step(d4, Srej, polaris, Some(borealis), None)?;
    b.step(d4, BlankEndorse, borealis, None, None)?;
    b.step(d4, Transfer, borealis, Some(swift), None)?;
    b.step(d4, Sign, swift, None, None)?;

    b.issue(d5, acme)?;
    b.step(d5, Transfer, acme, Some(delta), None)?;

    // Singapore: d1 arrives; d1 goes to the consignee and is surrendered for delivery.
    b.event(Arri, oceanic, "SGSIN", Some(d1), None, None)?;
    b.event(Disc, oceanic, "SGSIN", Some(d1), Some(&d1a), None)?;
    b.event(Disc, oceanic, "SGSIN", Some(d1), Some(&d1b), None)?;
    b.step(d1, Transfer, acme, Some(delta), None)?;
    b.event(
        Declared,
        delta,
        "SGSIN",
        Some(d1),
        None,
        Some("Import declaration"),
    )?;
    b.event(Release, "customs-sg", "SGSIN", Some(d1), None, None)?;
    b.step(d1, SurrenderForDelivery, delta, Some(oceanic), None)?;
    b.step(d1, Sacc, oceanic, Some(delta), None)?;
    b.event(Gtot, oceanic, "SGSIN", None, Some(&d1a), None)?;

    // d2 is endorsed on to the consignee, who surrenders it in Los Angeles.
    b.step(d2, Endorse, bank, Some(delta), None)?;
    b.step(d2, Transfer, bank, Some(delta), None)?;
    b.event(Disc, oceanic, "USLAX", Some(d2), Some(&d2a), None)?;
    b.event(Hold, "customs-us", "USLAX", Some(d2), Some(&d2a), None)?;
    b.event(Release, "customs-us", "USLAX", Some(d2), Some(&d2a), None)?;
    b.step(d2, SurrenderForDelivery, delta, Some(oceanic), None)?;
    b.step(d2, Sacc, oceanic, Some(delta), None)?;

    // The payload examples: a fresh document, its ISSUE, the shipper's TRANSFER, and a gate-in.
    let d6: TransportDocument = b
        .documents
        .get("OCNL2026000104")
        .cloned()
        .ok_or_else(|| FixtureError::Config("missing OCNL2026000104".into()))?;
    let issue = TransitionPayload::issue(d6.clone(), pid(oceanic)?, pid(acme)?, b.tick()?)?;
    let issued = SignedTransition::parse(&issue.sign(parties.signer(oceanic)?))?;
    let chain = Chain::issue(issued.checksum(), issued.payload())?;
    let transfer = TransitionPayload::new(chain.state().draft(
        Transfer,
        pid(acme)?,
        Some(pid(delta)?),
        b.tick()?,
    ))?;
    let container = d6
        .container_numbers()
        .first()
        .map(|c| (*c).clone())
        .ok_or_else(|| FixtureError::Config("OCNL2026000104 has no container".into()))?;
    let event = ShipmentEvent::new(EventDraft {
        event_id: "carrier-oceanic-payload-0001".parse()?,
        event_code: Gtin,
        actor: pid(oceanic)?,
        time: b.tick()?,
        location: "NLRTM".parse::<UnLocode>()?,
        document_reference: Some(d6.reference().clone()),
        equipment_reference: Some(container),
        vessel_name: None,
        voyage_number: None,
        remarks: None,
    })?;

    Ok(Samples {
        documents,
        chains: b.chains.into_iter().map(|(s, _)| s).collect(),
        events: b.events,
        issue,
        transfer,
        event,
    })
}

// ---------------------------------------------------------------------------------------------
// The ledger generator
// ---------------------------------------------------------------------------------------------

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Number of documents, each issued once.
    pub documents: u64,
    /// Transitions after the ISSUE of each document.
    pub transfers: u32,
    pub seed: u64,
    /// Documents open at the same time (interleaving width), at least 1.
    pub in_flight: usize,
    /// Document references are this prefix and a 7-digit base-36 counter (at most 20 chars
    /// together). Change it to load two generated ledgers into one registry.
    pub reference_prefix: String,
    /// Time of the first transition.
    pub start: Timestamp,
    /// Milliseconds between consecutive transitions.
    pub step_millis: i64,
    /// Name this party as a notify party on one document in every `n` (the first, the
    /// `n+1`-th, …): a party entitled to a known share of the ledger, for benchmarks of what
    /// a party with part of the documents reads. `None`: no notify parties.
    pub notify: Option<(PartyId, u64)>,
}

impl GeneratorConfig {
    /// `documents` documents with `transfers` transitions each after the ISSUE, 64 in flight,
    /// prefix `GEN`, one transition per second from [`SAMPLE_EPOCH`].
    pub fn new(documents: u64, transfers: u32, seed: u64) -> Self {
        Self {
            documents,
            transfers,
            seed,
            in_flight: 64,
            reference_prefix: "GEN".into(),
            // SAMPLE_EPOCH is a valid timestamp; the fallback is never taken.
            start: SAMPLE_EPOCH.parse().unwrap_or_else(|_| {
                Timestamp::from_datetime_truncated(chrono::DateTime::UNIX_EPOCH)
            }),
            step_millis: 1000,
            notify: None,
        }
    }

    /// Total transitions the generator emits.
    pub fn total(&self) -> u64 {
        self.documents * (1 + u64::from(self.transfers))
    }
}

/// One generated transition with what a harness usually wants to know about it.
#[derive(Debug, Clone)]
pub struct GeneratedTransition {
    pub compact: String,
    /// SHA-256 of `compact`: the chain head after it.
    pub checksum: Digest,
    pub reference: DocumentReference,
    pub action: Action,
    pub actor: PartyId,
}

/// A signer of generated transitions, with its JWS header already encoded.
#[derive(Debug, Clone)]
struct Actor {
    id: PartyId,
    key: SigningKey,
    /// `BASE64URL` of the domain's header `{"alg":"EdDSA","kid":..,"typ":"lading-transition+jws"}`.
    header: String,
}

impl Actor {
    fn new(id: PartyId, key: SigningKey) -> Self {
        // Taken from a domain-signed object, so the header is the domain's byte for byte.
        let sample = key.sign_compact(b"{}", TRANSITION_TYP);
        let header = sample.split('.').next().unwrap_or_default().to_owned();
        Self { id, key, header }
    }

    /// The compact JWS of `payload` (canonical JSON bytes), exactly as
    /// `TransitionPayload::sign` writes it.
    fn sign(&self, payload: &[u8]) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;

        let mut out = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 92);
        out.push_str(&self.header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let signature = self.key.key.sign(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut out);
        out
    }
}

/// RFC 8785 bytes of a generated transition payload, written directly: every member is a
/// string from an alphabet JCS never escapes (party ids, references, hex, timestamps), and the
/// members are in JCS order (`action`, `actor`, `documentChecksum`, `documentReference`,
/// `previousTransitionChecksum`, `recipient`, `time`, `transportDocument`). A test re-signs
/// parsed output with the domain and compares bytes.
#[allow(clippy::too_many_arguments)]
fn payload_bytes(
    action: Action,
    actor: &PartyId,
    document_checksum: &Digest,
    reference: &DocumentReference,
    previous: Option<&Digest>,
    recipient: &PartyId,
    time: Timestamp,
    document: Option<&[u8]>,
) -> Vec<u8> {
    use std::io::Write as _;

    let mut out = Vec::with_capacity(400 + document.map_or(0, <[u8]>::len));
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"action":"{}","actor":"{}","documentChecksum":"{}","documentReference":"{}""#,
        action.as_str(),
        actor,
        document_checksum,
        reference
    );
    if let Some(previous) = previous {
        let _ = write!(out, r#","previousTransitionChecksum":"{previous}""#);
    }
    let _ = write!(out, r#","recipient":"{recipient}","time":"{time}""#);
    if let Some(document) = document {
        out.extend_from_slice(br#","transportDocument":"#);
        out.extend_from_slice(document);
    }
    out.push(b'}');
    out
}

/// A document in flight.
#[derive(Debug, Clone)]
struct Flight {
    reference: DocumentReference,
    document_checksum: Digest,
    head: Digest,
    /// Index into `holders`.
    possessor: usize,
    /// Endorsee named by the last ENDORSE_TO_ORDER, not yet in possession.
    pending_endorsee: Option<usize>,
    /// Pass the document on by ENDORSE_TO_ORDER + TRANSFER (else by TRANSFER alone).
    endorse: bool,
    remaining: u32,
}

/// A deterministic, interleaved stream of valid signed transitions; see the module docs.
#[derive(Debug)]
pub struct LedgerGenerator {
    config: GeneratorConfig,
    rng: SplitMix64,
    carriers: Vec<Actor>,
    /// Parties that may hold title; the first `shippers` of them are shippers.
    holders: Vec<Actor>,
    shippers: usize,
    active: Vec<Flight>,
    issued: u64,
    emitted: u64,
}

const REFERENCE_DIGITS: usize = 7;

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    out.into_iter().map(char::from).collect()
}

impl LedgerGenerator {
    pub fn new(parties: &FixtureParties, config: GeneratorConfig) -> Result<Self, FixtureError> {
        if config.in_flight == 0 {
            return Err(FixtureError::Config("in_flight must be at least 1".into()));
        }
        let capacity = 36u64.pow(REFERENCE_DIGITS as u32);
        if config.documents > capacity {
            return Err(FixtureError::Config(format!(
                "at most {capacity} documents per prefix"
            )));
        }
        let probe = format!("{}{}", config.reference_prefix, base36(0, REFERENCE_DIGITS));
        probe
            .parse::<DocumentReference>()
            .map_err(|e| FixtureError::Config(format!("reference prefix: {e}")))?;
        let actor = |id: &str| -> Result<Actor, FixtureError> {
            Ok(Actor::new(pid(id)?, parties.signer(id)?.clone()))
        };
        let carriers = vec![actor("carrier-oceanic")?, actor("carrier-polaris")?];
        let holders = vec![
            actor("shipper-acme")?,
            actor("shipper-borealis")?,
            actor("forwarder-swift")?,
            actor("bank-harbour")?,
            actor("consignee-delta")?,
        ];
        Ok(Self {
            rng: SplitMix64(config.seed),
            config,
            carriers,
            holders,
            shippers: 2,
            active: Vec::new(),
            issued: 0,
            emitted: 0,
        })
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// Transitions emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Transitions still to come.
    pub fn remaining(&self) -> u64 {
        self.config.total() - self.emitted
    }

    /// The next transition, or `None` when all are out.
    pub fn next_transition(&mut self) -> Result<Option<GeneratedTransition>, FixtureError> {
        if self.emitted >= self.config.total() {
            return Ok(None);
        }
        let can_issue =
            self.issued < self.config.documents && self.active.len() < self.config.in_flight;
        let choices = self.active.len() + usize::from(can_issue);
        if choices == 0 {
            return Ok(None);
        }
        let slot = self.rng.index(choices);
        let time = Timestamp::from_unix_millis(
            self.config.start.unix_millis() + self.emitted as i64 * self.config.step_millis,
        )
        .ok_or_else(|| FixtureError::Config("time out of range".into()))?;
        let out = if slot == self.active.len() {
            self.issue(time)?
        } else {
            self.advance(slot, time)?
        };
        self.emitted += 1;
        Ok(Some(out))
    }

    fn issue(&mut self, time: Timestamp) -> Result<GeneratedTransition, FixtureError> {
        let reference: DocumentReference = format!(
            "{}{}",
            self.config.reference_prefix,
            base36(self.issued, REFERENCE_DIGITS)
        )
        .parse()?;
        self.issued += 1;
        let carrier = self.rng.index(self.carriers.len());
        let shipper = self.rng.index(self.shippers);
        let endorse = self.rng.next_u64() & 1 == 1;
        let seed = self.rng.next_u64();
        let carrier_id = self.carriers[carrier].id.clone();
        let shipment = shipment_from_seed(carrier_id.as_str(), seed)?;
        let extras = match &self.config.notify {
            Some((party, every)) if *every > 0 && (self.issued - 1) % every == 0 => Extras {
                notify: vec![party.clone()],
                ..Extras::default()
            },
            _ => Extras::default(),
        };
        let document = build_document(
            reference.clone(),
            carrier_id.clone(),
            self.holders[shipper].id.clone(),
            None,
            true,
            &shipment,
            extras,
        )?;
        let document_bytes = document.canonical_bytes();
        let document_checksum = Digest::of(&document_bytes);
        let shipper_id = &self.holders[shipper].id;
        let payload = payload_bytes(
            Action::Issue,
            &carrier_id,
            &document_checksum,
            &reference,
            None,
            shipper_id,
            time,
            Some(&document_bytes),
        );
        let compact = self.carriers[carrier].sign(&payload);
        let checksum = Digest::of(compact.as_bytes());
        if self.config.transfers > 0 {
            self.active.push(Flight {
                reference: reference.clone(),
                document_checksum,
                head: checksum,
                possessor: shipper,
                pending_endorsee: None,
                endorse,
                remaining: self.config.transfers,
            });
        }
        Ok(GeneratedTransition {
            compact,
            checksum,
            reference,
            action: Action::Issue,
            actor: carrier_id,
        })
    }

    fn other_holder(&mut self, not: usize) -> usize {
        let r = self.rng.index(self.holders.len() - 1);
        if r >= not {
            r + 1
        } else {
            r
        }
    }

    fn advance(
        &mut self,
        slot: usize,
        time: Timestamp,
    ) -> Result<GeneratedTransition, FixtureError> {
        let (possessor, pending, endorse) = {
            let f = &self.active[slot];
            (f.possessor, f.pending_endorsee, f.endorse)
        };
        let (action, recipient) = match (endorse, pending) {
            (true, Some(endorsee)) => (Action::Transfer, endorsee),
            (true, None) => (Action::EndorseToOrder, self.other_holder(possessor)),
            (false, _) => (Action::Transfer, self.other_holder(possessor)),
        };
        let f = &mut self.active[slot];
        let actor = &self.holders[possessor];
        let payload = payload_bytes(
            action,
            &actor.id,
            &f.document_checksum,
            &f.reference,
            Some(&f.head),
            &self.holders[recipient].id,
            time,
            None,
        );
        let compact = actor.sign(&payload);
        let checksum = Digest::of(compact.as_bytes());
        f.head = checksum;
        f.remaining -= 1;
        if action == Action::Transfer {
            f.possessor = recipient;
            f.pending_endorsee = None;
        } else {
            f.pending_endorsee = Some(recipient);
        }
        let out = GeneratedTransition {
            compact,
            checksum,
            reference: f.reference.clone(),
            action,
            actor: actor.id.clone(),
        };
        if f.remaining == 0 {
            self.active.swap_remove(slot);
        }
        Ok(out)
    }

    /// The remaining transitions as compact JWS strings, in order.
    pub fn stream(&mut self) -> impl Iterator<Item = Result<String, FixtureError>> + '_ {
        std::iter::from_fn(move || self.next_transition().transpose()).map(|r| r.map(|t| t.compact))
    }

    /// Up to `max` next transitions (empty when done).
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<String>, FixtureError> {
        let mut out = Vec::with_capacity(max.min(self.remaining() as usize));
        while out.len() < max {
            match self.next_transition()? {
                Some(t) => out.push(t.compact),
                None => break,
            }
        }
        Ok(out)
    }

    /// The remaining transitions in batches of `size` (the last may be shorter); each batch is
    /// valid in order after the ones before it.
    pub fn batches(
        &mut self,
        size: usize,
    ) -> impl Iterator<Item = Result<Vec<String>, FixtureError>> + '_ {
        let size = size.max(1);
        std::iter::from_fn(move || match self.next_batch(size) {
            Ok(batch) if batch.is_empty() => None,
            other => Some(other),
        })
    }
}
