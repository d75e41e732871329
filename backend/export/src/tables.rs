//! The CSV tables: one row per document, per transition, per shipment event, each made from
//! the signed entries alone (so a verifier makes them again and compares).

use lading_domain::document::WeightUnit;
use lading_domain::event::SignedEvent;
use lading_domain::ids::KeyId;
use lading_domain::transition::{SignedTransition, TransitionPayload};
use lading_domain::{Digest, DocumentState, TransportDocument};
use serde::{Deserialize, Serialize};

/// Pounds to kilograms, for the documents' total gross weight.
const KG_PER_LB: f64 = 0.453_592_37;

/// A row of `transitions.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRow {
    pub ledger_index: u64,
    pub time: String,
    pub action: String,
    pub actor: String,
    pub recipient: String,
    pub document: String,
    pub reason_code: String,
    pub kid: String,
    pub leaf_hash: String,
}

impl TransitionRow {
    pub fn of(index: u64, t: &SignedTransition, leaf: &Digest) -> Self {
        let p = t.payload();
        Self {
            ledger_index: index,
            time: p.time().to_string(),
            action: p.action().as_str().to_owned(),
            actor: p.actor().to_string(),
            recipient: p.recipient().map(ToString::to_string).unwrap_or_default(),
            document: p.document_reference().to_string(),
            reason_code: p
                .reason_code()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            kid: t.kid().to_string(),
            leaf_hash: leaf.to_hex(),
        }
    }
}

/// What writing a row of `transitions.csv` reuses from row to row, so that the writer's
/// million rows allocate nothing.
#[derive(Default)]
pub(crate) struct RowScratch {
    time: String,
}

impl RowScratch {
    /// Writes the row of `transitions.csv` for the transition of payload `p`, signed by `kid`,
    /// at `index`: the bytes that [`TransitionRow::of`] serialises to, without making one.
    /// Gives the row's time.
    pub(crate) fn transition<W: std::io::Write>(
        &mut self,
        out: &mut csv::Writer<W>,
        index: u64,
        p: &TransitionPayload,
        kid: &KeyId,
        leaf: &Digest,
    ) -> csv::Result<&str> {
        use std::fmt::Write as _;
        self.time.clear();
        let _ = write!(self.time, "{}", p.time());
        let mut number = itoa::Buffer::new();
        let mut hex = [0u8; 64];
        // Lower-case hex of 32 bytes always fits 64 bytes.
        let _ = hex::encode_to_slice(leaf.0, &mut hex);
        out.write_record([
            number.format(index).as_bytes(),
            self.time.as_bytes(),
            p.action().as_str().as_bytes(),
            p.actor().as_str().as_bytes(),
            p.recipient().map_or(&b""[..], |r| r.as_str().as_bytes()),
            p.document_reference().as_str().as_bytes(),
            p.reason_code().map_or(&b""[..], |r| r.as_str().as_bytes()),
            kid.as_str().as_bytes(),
            &hex[..],
        ])?;
        Ok(&self.time)
    }
}

/// A row of `events.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub ledger_index: u64,
    pub time: String,
    pub event_code: String,
    pub event_kind: String,
    pub actor: String,
    pub document: String,
    pub container: String,
    pub location: String,
    pub vessel: String,
    pub voyage: String,
    pub remarks: String,
    pub kid: String,
    pub leaf_hash: String,
}

impl EventRow {
    pub fn of(index: u64, e: &SignedEvent, leaf: &Digest) -> Self {
        let p = e.event();
        Self {
            ledger_index: index,
            time: p.time().to_string(),
            event_code: p.event_code().as_str().to_owned(),
            event_kind: format!("{:?}", p.event_kind()).to_uppercase(),
            actor: p.actor().to_string(),
            document: p
                .document_reference()
                .map(ToString::to_string)
                .unwrap_or_default(),
            container: p
                .equipment_reference()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            location: p.location().to_string(),
            vessel: p.vessel_name().unwrap_or_default().to_owned(),
            voyage: p.voyage_number().unwrap_or_default().to_owned(),
            remarks: p.remarks().unwrap_or_default().to_owned(),
            kid: e.kid().to_string(),
            leaf_hash: leaf.to_hex(),
        }
    }
}

/// A row of `documents.csv`: the bill as issued and its state after the last transition at or
/// before the export's range end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRow {
    pub reference: String,
    pub type_code: String,
    pub to_order: bool,
    pub carrier: String,
    pub shipper: String,
    pub consignee: String,
    /// Party ids, `;` between them.
    pub notify_parties: String,
    pub vessel: String,
    pub voyage: String,
    pub port_of_loading: String,
    pub port_of_discharge: String,
    pub place_of_receipt: String,
    pub place_of_delivery: String,
    /// Every description of goods, ` | ` between them.
    pub goods: String,
    /// `;` between them.
    pub hs_codes: String,
    pub containers: String,
    pub packages: u64,
    /// The total gross weight in kilograms (pounds converted), to 0.001 kg.
    pub gross_weight_kg: String,
    pub state: String,
    pub possessor: String,
    pub issue_date: String,
    /// The ledger time and index of its ISSUE.
    pub issued_at: String,
    pub issued_index: u64,
    /// The ledger time and index of its last transition at or before the range end.
    pub last_change: String,
    pub last_index: u64,
    /// Its transitions within the export's range.
    pub transitions_in_export: u64,
}

impl DocumentRow {
    pub fn of(
        doc: &TransportDocument,
        state: &DocumentState,
        issued: (u64, String),
        last: (u64, String),
        in_export: u64,
    ) -> Self {
        let fields = doc.fields();
        let mut packages = 0u64;
        let mut kg = 0.0f64;
        let mut goods = Vec::new();
        for item in &fields.consignment_items {
            goods.extend(
                item.description_of_goods
                    .iter()
                    .map(|d| d.as_str().to_owned()),
            );
            for cargo in &item.cargo_items {
                packages += u64::from(cargo.outer_packaging.number_of_packages);
                let w = cargo.cargo_gross_weight.value.get();
                kg += match cargo.cargo_gross_weight.unit {
                    WeightUnit::Kilogram => w,
                    WeightUnit::Pound => w * KG_PER_LB,
                };
            }
        }
        let join = |items: Vec<String>, sep: &str| items.join(sep);
        Self {
            reference: doc.reference().to_string(),
            type_code: match doc.type_code() {
                lading_domain::document::DocumentTypeCode::BillOfLading => "BOL",
                lading_domain::document::DocumentTypeCode::SeaWaybill => "SWB",
            }
            .to_owned(),
            to_order: doc.is_to_order(),
            carrier: doc.carrier().to_string(),
            shipper: doc.shipper().to_string(),
            consignee: doc.consignee().map(ToString::to_string).unwrap_or_default(),
            notify_parties: join(
                doc.notify_parties()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                ";",
            ),
            vessel: doc.vessel_name().to_owned(),
            voyage: doc.voyage_number().to_owned(),
            port_of_loading: doc.port_of_loading().to_string(),
            port_of_discharge: doc.port_of_discharge().to_string(),
            place_of_receipt: doc
                .place_of_receipt()
                .map(ToString::to_string)
                .unwrap_or_default(),
            place_of_delivery: doc
                .place_of_delivery()
                .map(ToString::to_string)
                .unwrap_or_default(),
            goods: join(goods, " | "),
            hs_codes: join(
                doc.hs_codes()
                    .iter()
                    .map(|h| h.as_str().to_owned())
                    .collect(),
                ";",
            ),
            containers: join(
                doc.container_numbers()
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                ";",
            ),
            packages,
            gross_weight_kg: format!("{kg:.3}"),
            state: state.status.as_str().to_owned(),
            possessor: state.possessor.to_string(),
            issue_date: doc.issue_date().as_naive().to_string(),
            issued_at: issued.1,
            issued_index: issued.0,
            last_change: last.1,
            last_index: last.0,
            transitions_in_export: in_export,
        }
    }
}

/// The columns of each table, in order, with their Frictionless types (for
/// `datapackage.json`) and what they hold.
pub fn columns(table: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match table {
        "transitions" => &[
            (
                "ledger_index",
                "integer",
                "The entry's index on the ledger.",
            ),
            ("time", "datetime", "The time the actor signed (UTC)."),
            (
                "action",
                "string",
                "ISSUE, TRANSFER, ENDORSE, … (DCSA eBL).",
            ),
            ("actor", "string", "The party that signed the transition."),
            (
                "recipient",
                "string",
                "The party it names as recipient, if any.",
            ),
            ("document", "string", "The transport document's reference."),
            (
                "reason_code",
                "string",
                "The reason code (e.g. SWTP), if any.",
            ),
            ("kid", "string", "The key that signed it."),
            ("leaf_hash", "string", "SHA-256(0x00 ‖ signed bytes), hex."),
        ],
        "events" => &[
            (
                "ledger_index",
                "integer",
                "The entry's index on the ledger.",
            ),
            ("time", "datetime", "When the event happened (UTC)."),
            (
                "event_code",
                "string",
                "DCSA Track & Trace code, or a customs code.",
            ),
            ("event_kind", "string", "TRANSPORT, EQUIPMENT or CUSTOMS."),
            ("actor", "string", "The party that signed the event."),
            (
                "document",
                "string",
                "The transport document it is about, if any.",
            ),
            ("container", "string", "The container it is about, if any."),
            ("location", "string", "UN/LOCODE."),
            ("vessel", "string", "Vessel name, if given."),
            ("voyage", "string", "Voyage number, if given."),
            ("remarks", "string", "Free text, if given."),
            ("kid", "string", "The key that signed it."),
            ("leaf_hash", "string", "SHA-256(0x00 ‖ signed bytes), hex."),
        ],
        _ => &[
            ("reference", "string", "The transport document's reference."),
            (
                "type_code",
                "string",
                "BOL (bill of lading) or SWB (sea waybill).",
            ),
            (
                "to_order",
                "boolean",
                "Whether it is negotiable (to order).",
            ),
            ("carrier", "string", "Carrier (party id)."),
            ("shipper", "string", "Shipper (party id)."),
            ("consignee", "string", "Consignee (party id), if any."),
            (
                "notify_parties",
                "string",
                "Notify parties (party ids, ';' between).",
            ),
            ("vessel", "string", "Vessel name."),
            ("voyage", "string", "Carrier's export voyage number."),
            ("port_of_loading", "string", "UN/LOCODE."),
            ("port_of_discharge", "string", "UN/LOCODE."),
            ("place_of_receipt", "string", "UN/LOCODE, if any."),
            ("place_of_delivery", "string", "UN/LOCODE, if any."),
            ("goods", "string", "Descriptions of goods (' | ' between)."),
            ("hs_codes", "string", "HS codes (';' between)."),
            (
                "containers",
                "string",
                "Container numbers, ISO 6346 (';' between).",
            ),
            ("packages", "integer", "Total number of packages."),
            (
                "gross_weight_kg",
                "number",
                "Total gross weight in kg (lb converted).",
            ),
            (
                "state",
                "string",
                "Its state after its last transition in the range.",
            ),
            ("possessor", "string", "Who held it then (party id)."),
            ("issue_date", "date", "The document's issue date."),
            ("issued_at", "datetime", "When its ISSUE was signed (UTC)."),
            ("issued_index", "integer", "Its ISSUE's ledger index."),
            (
                "last_change",
                "datetime",
                "When its last transition in the range was signed.",
            ),
            ("last_index", "integer", "That transition's ledger index."),
            (
                "transitions_in_export",
                "integer",
                "Its transitions within the range.",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use lading_domain::document::sample_json;
    use lading_domain::transition::{Action, ReasonCode, TransitionDraft};
    use lading_domain::{Jwk, TransportDocument};

    /// An ISSUE, a TRANSFER (a recipient), a SIGN (none) and a surrender with its reason code,
    /// one with a name that CSV must quote.
    fn samples() -> Vec<SignedTransition> {
        let document = TransportDocument::from_json(&sample_json()).expect("document");
        let key = Jwk::generate("carrier-oceanic:1".parse().expect("kid"), true)
            .signing_key()
            .expect("key");
        let time = |s: &str| s.parse().expect("time");
        let party = |s: &str| s.parse().expect("party");
        let issue = TransitionPayload::issue(
            document.clone(),
            party("carrier-oceanic"),
            party("shipper-acme"),
            time("2026-11-23T12:00:00.000Z"),
        )
        .expect("issue");
        let next = |action, recipient: Option<&str>, reason: Option<&str>| {
            TransitionPayload::new(TransitionDraft {
                document_reference: document.reference().clone(),
                document_checksum: document.checksum(),
                previous_transition_checksum: Some(Digest::of(b"previous")),
                action,
                actor: party("shipper-acme"),
                recipient: recipient.map(party),
                time: time("2026-11-24T01:02:03.456Z"),
                reason_code: reason.map(|r| r.parse::<ReasonCode>().expect("reason")),
                transport_document: None,
            })
            .expect("transition")
        };
        [
            issue,
            next(Action::Transfer, Some("consignee-globex"), None),
            next(Action::Sign, None, None),
            next(
                Action::SurrenderForAmendment,
                Some("carrier-oceanic"),
                Some("SWTP"),
            ),
        ]
        .iter()
        .map(|p| SignedTransition::parse(&p.sign(&key)).expect("signed"))
        .collect()
    }

    #[test]
    fn a_transition_row_written_in_place_is_the_row_serialised() {
        let signed = samples();
        let mut scratch = RowScratch::default();
        let mut direct = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let mut serialised = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for (i, t) in signed.iter().enumerate() {
            let leaf = lading_domain::merkle::leaf_hash(t.as_str().as_bytes());
            let index = 1_000_000_007 * i as u64;
            let time = scratch
                .transition(&mut direct, index, t.payload(), t.kid(), &leaf)
                .expect("row")
                .to_owned();
            let row = TransitionRow::of(index, t, &leaf);
            assert_eq!(time, row.time);
            serialised.serialize(&row).expect("row");
        }
        let direct = String::from_utf8(direct.into_inner().expect("bytes")).expect("UTF-8");
        let serialised = String::from_utf8(serialised.into_inner().expect("bytes")).expect("UTF-8");
        assert_eq!(direct, serialised);
        assert!(
            direct.contains(",,"),
            "an empty recipient or reason code is written too"
        );
    }
}
