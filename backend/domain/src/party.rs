//! Parties and who is entitled to see a document.
//!
//! A party is *entitled* to a transport document (may receive its full ledger entries, see
//! its events, find it in exports) when any of these holds:
//! - it is named by the document: `carrier`, `shipper`, `consignee`, `endorsee` or one of
//!   `notifyParties`;
//! - it appears in the document's chain as actor or recipient of any transition (every
//!   possessor and every endorsee is such a recipient);
//! - it is a customs authority whose `ports` include the document's `portOfLoading` or
//!   `portOfDischarge`.

use serde::{Deserialize, Serialize};

use crate::document::TransportDocument;
use crate::ids::{NonEmptyText, PartyId, UnLocode};

/// What a party is in the trade; it decides which events it may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Carrier,
    Shipper,
    FreightForwarder,
    Bank,
    Consignee,
    CustomsAuthority,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Carrier,
        Role::Shipper,
        Role::FreightForwarder,
        Role::Bank,
        Role::Consignee,
        Role::CustomsAuthority,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Carrier => "carrier",
            Role::Shipper => "shipper",
            Role::FreightForwarder => "freight_forwarder",
            Role::Bank => "bank",
            Role::Consignee => "consignee",
            Role::CustomsAuthority => "customs_authority",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    /// The names of [`Role::as_str`] (as stored and as in `parties.json`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| format!("unknown role {name:?}"))
    }
}

/// A participant of the ledger. `ports` is the jurisdiction of a customs authority (empty for
/// other roles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub id: PartyId,
    pub name: NonEmptyText,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<UnLocode>,
}

impl Party {
    /// A customs authority whose jurisdiction includes `port`.
    pub fn is_customs_for(&self, port: &UnLocode) -> bool {
        self.role == Role::CustomsAuthority && self.ports.contains(port)
    }
}

/// Whether `party` may see `doc`, given every actor and recipient of its chain.
pub fn entitled(party: &Party, doc: &TransportDocument, chain_parties: &[PartyId]) -> bool {
    doc.named_parties().contains(&&party.id)
        || chain_parties.contains(&party.id)
        || party.is_customs_for(doc.port_of_loading())
        || party.is_customs_for(doc.port_of_discharge())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_party_registry_gives_every_public_key_and_refuses_private_ones() {
        let fixtures = include_str!("../../../fixtures/parties.json");
        let file = PartyRegistryFile::parse(fixtures).unwrap();
        let keys = file.party_keys().unwrap();
        let expected: usize = file.parties.iter().map(|p| p.keys.len()).sum();
        assert_eq!(keys.len(), expected);
        assert!(keys.iter().any(|k| k.party.as_str() == "customs-nl"));

        let private = crate::jws::Jwk::generate("shipper-x#1".parse().unwrap(), true);
        let with_private = serde_json::json!({"parties": [{
            "id": "shipper-x", "name": "X", "role": "shipper", "keys": [private]
        }]});
        let file = PartyRegistryFile::parse(&with_private.to_string()).unwrap();
        assert!(matches!(
            file.party_keys(),
            Err(PartyRegistryError::PrivateKey { .. })
        ));
        assert!(matches!(
            PartyRegistryFile::parse(r#"{"parties": [], "extra": 1}"#),
            Err(PartyRegistryError::Malformed(_))
        ));
    }
    use crate::document::sample_json;
    use serde_json::json;

    fn party(id: &str, role: Role, ports: &[&str]) -> Party {
        Party {
            id: id.parse().unwrap(),
            name: "Some Party".parse().unwrap(),
            role,
            ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    fn doc() -> TransportDocument {
        TransportDocument::from_json(&sample_json()).unwrap()
    }

    #[test]
    fn named_parties_are_entitled() {
        let d = doc();
        for (id, role) in [
            ("carrier-oceanic", Role::Carrier),
            ("shipper-acme", Role::Shipper),
            ("consignee-globex", Role::Consignee),
            ("bank-north", Role::Bank),
        ] {
            assert!(entitled(&party(id, role, &[]), &d, &[]), "{id}");
        }
        assert!(!entitled(&party("bank-south", Role::Bank, &[]), &d, &[]));
    }

    #[test]
    fn chain_parties_are_entitled() {
        let bank = party("bank-south", Role::Bank, &[]);
        assert!(entitled(&bank, &doc(), &["bank-south".parse().unwrap()]));
    }

    #[test]
    fn customs_only_for_their_ports() {
        let d = doc();
        assert!(entitled(
            &party("customs-nl", Role::CustomsAuthority, &["NLRTM", "NLAMS"]),
            &d,
            &[]
        ));
        assert!(entitled(
            &party("customs-sg", Role::CustomsAuthority, &["SGSIN"]),
            &d,
            &[]
        ));
        assert!(!entitled(
            &party("customs-de", Role::CustomsAuthority, &["DEHAM"]),
            &d,
            &[]
        ));
        // Ports on a non-customs party grant nothing.
        assert!(!entitled(
            &party("forwarder-x", Role::FreightForwarder, &["NLRTM"]),
            &d,
            &[]
        ));
    }

    #[test]
    fn party_serde() {
        let v = json!({"id": "customs-nl", "name": "Douane", "role": "customs_authority", "ports": ["NLRTM"]});
        let p: Party = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.role, Role::CustomsAuthority);
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
        assert!(
            serde_json::from_value::<Party>(json!({"id": "x", "name": "X", "role": "bank"}))
                .is_err()
        );
        assert!(serde_json::from_value::<Party>(
            json!({"id": "xy", "name": "X", "role": "pirate"})
        )
        .is_err());
        assert_eq!(Role::FreightForwarder.as_str(), "freight_forwarder");
    }
}

/// `parties.json`, the consortium's party registry as it is published: each party with its
/// role, its customs ports and its public keys (OKP JWKs), and the operator's keys. It is the
/// genesis of the ledger's membership: the registry imports it (`lading import-parties`), every
/// replica starts from it, and party statements on the ledger change it from there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRegistryFile {
    pub parties: Vec<PartyRegistryEntry>,
    /// The consortium operator's public keys: they sign the party statements that add and
    /// remove parties (see [`crate::membership`]).
    #[serde(default)]
    pub operator_keys: Vec<crate::jws::Jwk>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRegistryEntry {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub ports: Vec<String>,
    pub keys: Vec<crate::jws::Jwk>,
}

/// Why a published party registry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyRegistryError {
    #[error("parties.json: {0}")]
    Malformed(String),
    #[error("party {party}: key {kid} carries private material; a party registry publishes public keys only")]
    PrivateKey { party: String, kid: String },
    #[error("party {party}: {detail}")]
    Invalid { party: String, detail: String },
}

impl PartyRegistryFile {
    pub fn parse(json: &str) -> Result<Self, PartyRegistryError> {
        serde_json::from_str(json).map_err(|e| PartyRegistryError::Malformed(e.to_string()))
    }

    /// Every public key, with the party it belongs to: what signatures are checked against.
    pub fn party_keys(&self) -> Result<Vec<crate::follow::PartyKey>, PartyRegistryError> {
        let mut keys = Vec::new();
        for entry in &self.parties {
            let invalid = |detail: String| PartyRegistryError::Invalid {
                party: entry.id.clone(),
                detail,
            };
            let party: PartyId = entry
                .id
                .parse()
                .map_err(|e: crate::IdError| invalid(e.to_string()))?;
            for jwk in &entry.keys {
                if jwk.is_private() {
                    return Err(PartyRegistryError::PrivateKey {
                        party: entry.id.clone(),
                        kid: jwk.kid().to_string(),
                    });
                }
                keys.push(crate::follow::PartyKey {
                    party: party.clone(),
                    key: jwk.verifying_key().map_err(|e| invalid(e.to_string()))?,
                });
            }
        }
        Ok(keys)
    }
}
