//! The transport document: a flattened subset of the DCSA eBL 3.0 `TransportDocument`.
//!
//! Field names are DCSA's (`transportDocumentReference`, `HSCodes`, `ISOEquipmentCode`, ...).
//! Lading departs from DCSA's shape in two ways: parties are Lading [`PartyId`]s placed at the
//! top level (`carrier`, `shipper`, `consignee`, `endorsee`, `notifyParties`) instead of DCSA's
//! `documentParties` objects, and the vessel, voyage and locations of DCSA's `transports`
//! object sit at the top level, with locations as bare UN/LOCODEs.
//!
//! ```json
//! {
//!   "transportDocumentReference": "OCNL2026000001",
//!   "transportDocumentTypeCode": "BOL",
//!   "isToOrder": false,
//!   "carrierCode": "OCNL",
//!   "carrier": "carrier-oceanic",
//!   "shipper": "shipper-acme",
//!   "consignee": "consignee-globex",
//!   "notifyParties": ["bank-north"],
//!   "vesselName": "Oceanic Star",
//!   "carrierExportVoyageNumber": "2026W",
//!   "portOfLoading": "NLRTM",
//!   "portOfDischarge": "SGSIN",
//!   "issueDate": "2026-11-23",
//!   "consignmentItems": [{
//!     "descriptionOfGoods": ["Blue shoes"],
//!     "HSCodes": ["640411"],
//!     "cargoItems": [{
//!       "equipmentReference": "CSQU3054383",
//!       "cargoGrossWeight": {"value": 2400.5, "unit": "KGM"},
//!       "outerPackaging": {"numberOfPackages": 18, "packageCode": "BX", "description": "Boxes"}
//!     }]
//!   }],
//!   "utilizedTransportEquipments": [{
//!     "equipment": {"equipmentReference": "CSQU3054383", "ISOEquipmentCode": "22G1"},
//!     "isShipperOwned": false,
//!     "seals": [{"number": "SEAL123", "source": "CAR"}]
//!   }]
//! }
//! ```
//!
//! Rules (each failure reports the JSON Pointer of the offending field, code
//! `invalid_document_field`):
//! - members not listed here are refused; `null` is refused (omit an optional member instead);
//!   an empty `notifyParties` must be omitted;
//! - `transportDocumentTypeCode` is `BOL` or `SWB`; a `SWB` has `isToOrder: false`;
//! - `consignee` is required when `isToOrder` is false; optional when true ("to order of the
//!   consignee" when present, "to order of the shipper" otherwise);
//! - `endorsee` may only appear when `isToOrder` is true. A to-order document without an
//!   endorsee is blank endorsed (as DCSA PINT states);
//! - `notifyParties` has no duplicates;
//! - `carrierCode`: 1 to 4 non-whitespace chars (SCAC or SMDG code); `vesselName`,
//!   `carrierExportVoyageNumber`: 1 to 50 chars; `ISOEquipmentCode`: 1 to 4 chars; a seal
//!   `number`: 1 to 15 chars, `source` one of `CAR`, `SHI`, `VET`, `CUS`; all text trimmed;
//! - `issueDate` is required, `shippedOnBoardDate` optional, both `YYYY-MM-DD`;
//! - `consignmentItems`, each item's `descriptionOfGoods` (at most 150 lines of at most 35
//!   chars), `HSCodes` and `cargoItems`, `utilizedTransportEquipments` and each one's `seals`
//!   are non-empty;
//! - `cargoGrossWeight.value` is a number > 0 and `unit` `KGM` or `LBR`;
//!   `outerPackaging.numberOfPackages` is 1 to 99999999, `packageCode` (optional) is
//!   `[A-Z0-9]{2}`, `description` 1 to 100 chars;
//! - equipment references are ISO 6346 container numbers; no container appears twice in
//!   `utilizedTransportEquipments`, and every cargo item's `equipmentReference` appears there.
//!
//! The document checksum is SHA-256 over the RFC 8785 canonical JSON of the document. Parsing
//! refuses any input whose canonical form differs from the canonical form of the parsed
//! document, so the checksum of the bytes a party signed and of the value Lading keeps agree.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::canonical::{canonical_bytes_of, canonicalize};
use crate::digest::Digest;
use crate::ids::{
    ContainerNumber, Date, DocumentReference, HsCode, NonEmptyText, PartyId, PositiveDecimal,
    UnLocode,
};

/// A field of a transport document was missing, malformed or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DocumentError {
    /// JSON Pointer (RFC 6901) to the offending member, e.g.
    /// `/utilizedTransportEquipments/0/equipment/equipmentReference`; empty for the root.
    pub path: String,
    pub message: String,
}

impl DocumentError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        "invalid_document_field"
    }

    /// The same error seen from a containing object, `prefix` being a JSON Pointer.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.path = format!("{prefix}{}", self.path);
        self
    }
}

/// `BOL` (bill of lading, a document of title) or `SWB` (sea waybill).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentTypeCode {
    #[serde(rename = "BOL")]
    BillOfLading,
    #[serde(rename = "SWB")]
    SeaWaybill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WeightUnit {
    #[serde(rename = "KGM")]
    Kilogram,
    #[serde(rename = "LBR")]
    Pound,
}

/// Who affixed a seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SealSource {
    #[serde(rename = "CAR")]
    Carrier,
    #[serde(rename = "SHI")]
    Shipper,
    #[serde(rename = "VET")]
    Veterinary,
    #[serde(rename = "CUS")]
    Customs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoGrossWeight {
    pub value: PositiveDecimal,
    pub unit: WeightUnit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OuterPackaging {
    pub number_of_packages: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_code: Option<NonEmptyText>,
    pub description: NonEmptyText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CargoItem {
    pub equipment_reference: ContainerNumber,
    pub cargo_gross_weight: CargoGrossWeight,
    pub outer_packaging: OuterPackaging,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsignmentItem {
    pub description_of_goods: Vec<NonEmptyText>,
    #[serde(rename = "HSCodes")]
    pub hs_codes: Vec<HsCode>,
    pub cargo_items: Vec<CargoItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Equipment {
    pub equipment_reference: ContainerNumber,
    #[serde(rename = "ISOEquipmentCode")]
    pub iso_equipment_code: NonEmptyText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub number: NonEmptyText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SealSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UtilizedTransportEquipment {
    pub equipment: Equipment,
    pub is_shipper_owned: bool,
    pub seals: Vec<Seal>,
}

/// The members of a transport document, before the cross-field rules are checked.
///
/// Build one in code and pass it to [`TransportDocument::new`]; the fields of a parsed
/// document are readable through [`TransportDocument::fields`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentFields {
    pub transport_document_reference: DocumentReference,
    pub transport_document_type_code: DocumentTypeCode,
    pub is_to_order: bool,
    pub carrier_code: NonEmptyText,
    pub carrier: PartyId,
    pub shipper: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignee: Option<PartyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsee: Option<PartyId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_parties: Vec<PartyId>,
    pub vessel_name: NonEmptyText,
    pub carrier_export_voyage_number: NonEmptyText,
    pub port_of_loading: UnLocode,
    pub port_of_discharge: UnLocode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_receipt: Option<UnLocode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_delivery: Option<UnLocode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_on_board_date: Option<Date>,
    pub issue_date: Date,
    pub consignment_items: Vec<ConsignmentItem>,
    pub utilized_transport_equipments: Vec<UtilizedTransportEquipment>,
}

/// A transport document that satisfies every rule of this module.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportDocument {
    fields: DocumentFields,
}

impl TransportDocument {
    /// Checks the cross-field rules on fields built in code.
    pub fn new(fields: DocumentFields) -> Result<Self, DocumentError> {
        validate(&fields)?;
        Ok(Self { fields })
    }

    /// Parses a document from JSON, reporting the first offending field.
    pub fn from_json(v: &Value) -> Result<Self, DocumentError> {
        let fields: DocumentFields =
            serde_path_to_error::deserialize(v).map_err(|e| from_serde_error(&e))?;
        let doc = Self::new(fields)?;
        if let Some(path) = normal_form_difference(v, &doc.to_json()) {
            return Err(DocumentError::at(
                path,
                "not in normal form (null member, empty notifyParties, or a value that does \
                 not serialise back to itself)",
            ));
        }
        Ok(doc)
    }

    /// The document as a JSON value (DCSA member names).
    pub fn to_json(&self) -> Value {
        // Serialising plain data with string keys into a Value cannot fail.
        serde_json::to_value(&self.fields).unwrap_or(Value::Null)
    }

    /// RFC 8785 canonical bytes of the document.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes_of(&self.fields)
    }

    /// SHA-256 of the canonical bytes: the `documentChecksum` of every transition.
    pub fn checksum(&self) -> Digest {
        Digest::of(&self.canonical_bytes())
    }

    pub fn fields(&self) -> &DocumentFields {
        &self.fields
    }

    pub fn into_fields(self) -> DocumentFields {
        self.fields
    }

    pub fn reference(&self) -> &DocumentReference {
        &self.fields.transport_document_reference
    }

    pub fn type_code(&self) -> DocumentTypeCode {
        self.fields.transport_document_type_code
    }

    pub fn is_to_order(&self) -> bool {
        self.fields.is_to_order
    }

    pub fn carrier_code(&self) -> &str {
        self.fields.carrier_code.as_str()
    }

    pub fn carrier(&self) -> &PartyId {
        &self.fields.carrier
    }

    pub fn shipper(&self) -> &PartyId {
        &self.fields.shipper
    }

    pub fn consignee(&self) -> Option<&PartyId> {
        self.fields.consignee.as_ref()
    }

    /// The endorsee named at issue; `None` on a to-order document means blank endorsed.
    pub fn endorsee(&self) -> Option<&PartyId> {
        self.fields.endorsee.as_ref()
    }

    pub fn notify_parties(&self) -> &[PartyId] {
        &self.fields.notify_parties
    }

    pub fn vessel_name(&self) -> &str {
        self.fields.vessel_name.as_str()
    }

    pub fn voyage_number(&self) -> &str {
        self.fields.carrier_export_voyage_number.as_str()
    }

    pub fn port_of_loading(&self) -> &UnLocode {
        &self.fields.port_of_loading
    }

    pub fn port_of_discharge(&self) -> &UnLocode {
        &self.fields.port_of_discharge
    }

    pub fn place_of_receipt(&self) -> Option<&UnLocode> {
        self.fields.place_of_receipt.as_ref()
    }

    pub fn place_of_delivery(&self) -> Option<&UnLocode> {
        self.fields.place_of_delivery.as_ref()
    }

    pub fn issue_date(&self) -> Date {
        self.fields.issue_date
    }

    pub fn shipped_on_board_date(&self) -> Option<Date> {
        self.fields.shipped_on_board_date
    }

    /// The containers of `utilizedTransportEquipments`, in document order.
    pub fn container_numbers(&self) -> Vec<&ContainerNumber> {
        self.fields
            .utilized_transport_equipments
            .iter()
            .map(|u| &u.equipment.equipment_reference)
            .collect()
    }

    /// Every HS code of every consignment item, in document order.
    pub fn hs_codes(&self) -> Vec<&HsCode> {
        self.fields
            .consignment_items
            .iter()
            .flat_map(|c| c.hs_codes.iter())
            .collect()
    }

    /// Every party the document itself names: carrier, shipper, consignee, endorsee and
    /// notify parties (no duplicates, in that order).
    pub fn named_parties(&self) -> Vec<&PartyId> {
        let f = &self.fields;
        let mut out: Vec<&PartyId> = Vec::new();
        let candidates = [
            Some(&f.carrier),
            Some(&f.shipper),
            f.consignee.as_ref(),
            f.endorsee.as_ref(),
        ];
        for p in candidates
            .into_iter()
            .flatten()
            .chain(f.notify_parties.iter())
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

impl Serialize for TransportDocument {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TransportDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Self::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// Escapes one JSON Pointer reference token (RFC 6901 §3).
pub(crate) fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Turns a serde error with its path into a JSON Pointer error.
pub(crate) fn from_serde_error(e: &serde_path_to_error::Error<serde_json::Error>) -> DocumentError {
    let mut path = String::new();
    for segment in e.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("/{index}")),
            serde_path_to_error::Segment::Map { key } => {
                path.push('/');
                path.push_str(&pointer_token(key));
            }
            serde_path_to_error::Segment::Enum { variant } => {
                path.push('/');
                path.push_str(&pointer_token(variant));
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let message = e.inner().to_string();
    // The path of an unknown member already ends at the member itself.
    if message.starts_with("unknown field `") {
        return DocumentError::at(path, "unknown member");
    }
    // Drop serde_json's " at line x column y" (meaningless for a Value).
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    DocumentError::at(path, message)
}

/// JSON Pointer of the first place where `a` and `b` differ (numbers compared canonically).
/// Where `given` (as received) differs from `ours` (the parsed value written back), when their
/// canonical forms differ: input that is valid but not in normal form (a `null` member, a
/// number that does not survive the round trip) must be refused, or two byte forms would carry
/// one meaning.
pub(crate) fn normal_form_difference(given: &Value, ours: &Value) -> Option<String> {
    (canonicalize(ours) != canonicalize(given))
        .then(|| first_difference(given, ours, String::new()))
}

fn first_difference(a: &Value, b: &Value, path: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let child = format!("{path}/{}", pointer_token(k));
                match y.get(k) {
                    Some(vb) if canonicalize(va) == canonicalize(vb) => {}
                    Some(vb) => return first_difference(va, vb, child),
                    None => return child,
                }
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(k) => format!("{path}/{}", pointer_token(k)),
                None => path,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if canonicalize(va) != canonicalize(vb) {
                    return first_difference(va, vb, format!("{path}/{i}"));
                }
            }
            format!("{path}/{}", x.len().min(y.len()))
        }
        _ => path,
    }
}

fn check_len(path: &str, text: &NonEmptyText, max: usize) -> Result<(), DocumentError> {
    check_len_at(|| path.to_owned(), text, max)
}

fn check_len_at(
    path: impl FnOnce() -> String,
    text: &NonEmptyText,
    max: usize,
) -> Result<(), DocumentError> {
    if text.char_len() > max {
        return Err(DocumentError::at(
            path(),
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn non_empty<T>(path: &str, items: &[T]) -> Result<(), DocumentError> {
    non_empty_at(|| path.to_owned(), items)
}

fn non_empty_at<T>(path: impl FnOnce() -> String, items: &[T]) -> Result<(), DocumentError> {
    if items.is_empty() {
        return Err(DocumentError::at(path(), "must not be empty"));
    }
    Ok(())
}

fn validate(f: &DocumentFields) -> Result<(), DocumentError> {
    if f.transport_document_type_code == DocumentTypeCode::SeaWaybill && f.is_to_order {
        return Err(DocumentError::at(
            "/isToOrder",
            "a sea waybill (SWB) cannot be to order",
        ));
    }
    if !f.is_to_order && f.consignee.is_none() {
        return Err(DocumentError::at(
            "/consignee",
            "required on a straight (not to order) document",
        ));
    }
    if !f.is_to_order && f.endorsee.is_some() {
        return Err(DocumentError::at(
            "/endorsee",
            "only a to-order document has an endorsee",
        ));
    }
    let mut seen = HashSet::new();
    for (i, p) in f.notify_parties.iter().enumerate() {
        if !seen.insert(p) {
            return Err(DocumentError::at(
                format!("/notifyParties/{i}"),
                "duplicate notify party",
            ));
        }
    }
    let code = f.carrier_code.as_str();
    if code.chars().count() > 4 || code.chars().any(char::is_whitespace) {
        return Err(DocumentError::at(
            "/carrierCode",
            "must be 1 to 4 non-whitespace characters",
        ));
    }
    check_len("/vesselName", &f.vessel_name, 50)?;
    check_len(
        "/carrierExportVoyageNumber",
        &f.carrier_export_voyage_number,
        50,
    )?;

    non_empty(
        "/utilizedTransportEquipments",
        &f.utilized_transport_equipments,
    )?;
    // Paths of repeated members are written only when a check fails: every ISSUE runs these.
    let mut containers = HashSet::new();
    for (i, ute) in f.utilized_transport_equipments.iter().enumerate() {
        let at = |rest: &str| format!("/utilizedTransportEquipments/{i}/{rest}");
        if !containers.insert(&ute.equipment.equipment_reference) {
            return Err(DocumentError::at(
                at("equipment/equipmentReference"),
                "container listed twice",
            ));
        }
        check_len_at(
            || at("equipment/ISOEquipmentCode"),
            &ute.equipment.iso_equipment_code,
            4,
        )?;
        non_empty_at(|| at("seals"), &ute.seals)?;
        for (j, seal) in ute.seals.iter().enumerate() {
            check_len_at(|| at(&format!("seals/{j}/number")), &seal.number, 15)?;
        }
    }

    non_empty("/consignmentItems", &f.consignment_items)?;
    for (i, item) in f.consignment_items.iter().enumerate() {
        let at = |rest: &str| format!("/consignmentItems/{i}/{rest}");
        non_empty_at(|| at("descriptionOfGoods"), &item.description_of_goods)?;
        if item.description_of_goods.len() > 150 {
            return Err(DocumentError::at(
                at("descriptionOfGoods"),
                "at most 150 lines",
            ));
        }
        for (j, line) in item.description_of_goods.iter().enumerate() {
            check_len_at(|| at(&format!("descriptionOfGoods/{j}")), line, 35)?;
        }
        non_empty_at(|| at("HSCodes"), &item.hs_codes)?;
        non_empty_at(|| at("cargoItems"), &item.cargo_items)?;
        for (j, cargo) in item.cargo_items.iter().enumerate() {
            let cargo_at = |rest: &str| at(&format!("cargoItems/{j}/{rest}"));
            if !containers.contains(&cargo.equipment_reference) {
                return Err(DocumentError::at(
                    cargo_at("equipmentReference"),
                    "container not listed in utilizedTransportEquipments",
                ));
            }
            let pkg = &cargo.outer_packaging;
            if !(1..=99_999_999).contains(&pkg.number_of_packages) {
                return Err(DocumentError::at(
                    cargo_at("outerPackaging/numberOfPackages"),
                    "must be 1 to 99999999",
                ));
            }
            if let Some(code) = &pkg.package_code {
                let b = code.as_str().as_bytes();
                if b.len() != 2
                    || !b
                        .iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                {
                    return Err(DocumentError::at(
                        cargo_at("outerPackaging/packageCode"),
                        "must be 2 of A-Z, 0-9 (UN/ECE Recommendation 21)",
                    ));
                }
            }
            check_len_at(
                || cargo_at("outerPackaging/description"),
                &pkg.description,
                100,
            )?;
        }
    }
    Ok(())
}

/// A valid sample document, for tests in this crate and in others.
#[doc(hidden)]
pub fn sample_json() -> Value {
    serde_json::json!({
        "transportDocumentReference": "OCNL2026000001",
        "transportDocumentTypeCode": "BOL",
        "isToOrder": false,
        "carrierCode": "OCNL",
        "carrier": "carrier-oceanic",
        "shipper": "shipper-acme",
        "consignee": "consignee-globex",
        "notifyParties": ["bank-north"],
        "vesselName": "Oceanic Star",
        "carrierExportVoyageNumber": "2026W",
        "portOfLoading": "NLRTM",
        "portOfDischarge": "SGSIN",
        "issueDate": "2026-11-23",
        "consignmentItems": [{
            "descriptionOfGoods": ["Blue shoes"],
            "HSCodes": ["640411"],
            "cargoItems": [{
                "equipmentReference": "CSQU3054383",
                "cargoGrossWeight": {"value": 2400.5, "unit": "KGM"},
                "outerPackaging": {"numberOfPackages": 18, "packageCode": "BX", "description": "Boxes"}
            }]
        }],
        "utilizedTransportEquipments": [{
            "equipment": {"equipmentReference": "CSQU3054383", "ISOEquipmentCode": "22G1"},
            "isShipperOwned": false,
            "seals": [{"number": "SEAL123", "source": "CAR"}]
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        sample_json()
    }

    fn err_of(v: Value) -> DocumentError {
        TransportDocument::from_json(&v).unwrap_err()
    }

    #[test]
    fn sample_parses_and_exposes_its_fields() {
        let doc = TransportDocument::from_json(&sample()).unwrap();
        assert_eq!(doc.reference().as_str(), "OCNL2026000001");
        assert_eq!(doc.carrier().as_str(), "carrier-oceanic");
        assert_eq!(doc.shipper().as_str(), "shipper-acme");
        assert_eq!(
            doc.consignee().map(PartyId::as_str),
            Some("consignee-globex")
        );
        assert_eq!(doc.notify_parties().len(), 1);
        assert_eq!(doc.port_of_loading().as_str(), "NLRTM");
        assert_eq!(doc.port_of_discharge().as_str(), "SGSIN");
        assert_eq!(doc.container_numbers()[0].as_str(), "CSQU3054383");
        assert!(!doc.is_to_order());
        assert_eq!(doc.type_code(), DocumentTypeCode::BillOfLading);
        assert_eq!(doc.named_parties().len(), 4);
    }

    #[test]
    fn checksum_is_sha256_of_canonical_json_and_ignores_member_order() {
        let doc = TransportDocument::from_json(&sample()).unwrap();
        let expected = Digest::of(&canonicalize(&sample()));
        assert_eq!(doc.checksum(), expected);
        // Same content, members written in another order: same document, same checksum.
        let text = serde_json::to_string(&sample()).unwrap();
        let mut reordered: serde_json::Map<String, Value> = serde_json::Map::new();
        let original: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        for (k, v) in original.into_iter().rev() {
            reordered.insert(k, v);
        }
        let again = TransportDocument::from_json(&Value::Object(reordered)).unwrap();
        assert_eq!(again.checksum(), doc.checksum());
        // Any content change changes the checksum.
        let mut changed = sample();
        changed["vesselName"] = json!("Oceanic Moon");
        assert_ne!(
            TransportDocument::from_json(&changed).unwrap().checksum(),
            doc.checksum()
        );
    }

    #[test]
    fn serde_round_trip() {
        let doc = TransportDocument::from_json(&sample()).unwrap();
        let text = serde_json::to_string(&doc).unwrap();
        let back: TransportDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert!(serde_json::from_str::<TransportDocument>("{\"x\":1}").is_err());
    }

    #[test]
    fn invalid_container_points_at_the_field() {
        let mut v = sample();
        v["utilizedTransportEquipments"][0]["equipment"]["equipmentReference"] =
            json!("CSQU3054384");
        let e = err_of(v);
        assert_eq!(
            e.path,
            "/utilizedTransportEquipments/0/equipment/equipmentReference"
        );
        assert_eq!(e.code(), "invalid_document_field");
        assert!(e.message.contains("check digit"), "{}", e.message);
    }

    #[test]
    fn unknown_members_are_refused_with_their_path() {
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["colour"] = json!("blue");
        let e = err_of(v);
        assert_eq!(e.path, "/consignmentItems/0/cargoItems/0/colour");
        let mut v = sample();
        v["transportDocumentStatus"] = json!("ISSUED");
        assert_eq!(err_of(v).path, "/transportDocumentStatus");
    }

    #[test]
    fn missing_members_are_reported() {
        let mut v = sample();
        v.as_object_mut().unwrap().remove("portOfLoading");
        let e = err_of(v);
        assert!(e.message.contains("portOfLoading"), "{e}");
    }

    #[test]
    fn wrong_types_and_values_point_at_the_field() {
        let mut v = sample();
        v["consignmentItems"][0]["HSCodes"][0] = json!("64041");
        assert_eq!(err_of(v).path, "/consignmentItems/0/HSCodes/0");
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["cargoGrossWeight"]["value"] = json!(0);
        assert_eq!(
            err_of(v).path,
            "/consignmentItems/0/cargoItems/0/cargoGrossWeight/value"
        );
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["cargoGrossWeight"]["unit"] = json!("TON");
        assert_eq!(
            err_of(v).path,
            "/consignmentItems/0/cargoItems/0/cargoGrossWeight/unit"
        );
        let mut v = sample();
        v["isToOrder"] = json!("no");
        assert_eq!(err_of(v).path, "/isToOrder");
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["outerPackaging"]["numberOfPackages"] = json!(0);
        assert_eq!(
            err_of(v).path,
            "/consignmentItems/0/cargoItems/0/outerPackaging/numberOfPackages"
        );
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["outerPackaging"]["packageCode"] = json!("box");
        assert_eq!(
            err_of(v).path,
            "/consignmentItems/0/cargoItems/0/outerPackaging/packageCode"
        );
        let mut v = sample();
        v["vesselName"] = json!("x".repeat(51));
        assert_eq!(err_of(v).path, "/vesselName");
        let mut v = sample();
        v["issueDate"] = json!("23/11/2026");
        assert_eq!(err_of(v).path, "/issueDate");
    }

    #[test]
    fn party_rules() {
        let mut v = sample();
        v.as_object_mut().unwrap().remove("consignee");
        assert_eq!(err_of(v).path, "/consignee");

        let mut v = sample();
        v["endorsee"] = json!("bank-north");
        assert_eq!(err_of(v).path, "/endorsee");

        let mut v = sample();
        v["isToOrder"] = json!(true);
        v.as_object_mut().unwrap().remove("consignee");
        v["endorsee"] = json!("bank-north");
        let doc = TransportDocument::from_json(&v).unwrap();
        assert_eq!(doc.endorsee().map(PartyId::as_str), Some("bank-north"));

        let mut v = sample();
        v["isToOrder"] = json!(true);
        v["transportDocumentTypeCode"] = json!("SWB");
        assert_eq!(err_of(v).path, "/isToOrder");

        let mut v = sample();
        v["notifyParties"] = json!(["bank-north", "bank-north"]);
        assert_eq!(err_of(v).path, "/notifyParties/1");
    }

    #[test]
    fn cargo_must_sit_in_listed_equipment() {
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["equipmentReference"] = json!("MSKU9070323");
        assert_eq!(
            err_of(v).path,
            "/consignmentItems/0/cargoItems/0/equipmentReference"
        );

        let mut v = sample();
        let ute = v["utilizedTransportEquipments"][0].clone();
        v["utilizedTransportEquipments"]
            .as_array_mut()
            .unwrap()
            .push(ute);
        assert_eq!(
            err_of(v).path,
            "/utilizedTransportEquipments/1/equipment/equipmentReference"
        );
    }

    #[test]
    fn empty_lists_are_refused() {
        for (pointer, path) in [
            ("consignmentItems", "/consignmentItems"),
            (
                "utilizedTransportEquipments",
                "/utilizedTransportEquipments",
            ),
        ] {
            let mut v = sample();
            v[pointer] = json!([]);
            assert_eq!(err_of(v).path, path);
        }
        let mut v = sample();
        v["consignmentItems"][0]["HSCodes"] = json!([]);
        assert_eq!(err_of(v).path, "/consignmentItems/0/HSCodes");
        let mut v = sample();
        v["utilizedTransportEquipments"][0]["seals"] = json!([]);
        assert_eq!(err_of(v).path, "/utilizedTransportEquipments/0/seals");
    }

    #[test]
    fn non_normal_forms_are_refused() {
        let mut v = sample();
        v["placeOfReceipt"] = Value::Null;
        assert_eq!(err_of(v).path, "/placeOfReceipt");
        let mut v = sample();
        v["notifyParties"] = json!([]);
        assert_eq!(err_of(v).path, "/notifyParties");
        // A number written differently but equal as a double is the same canonical value.
        let mut v = sample();
        v["consignmentItems"][0]["cargoItems"][0]["cargoGrossWeight"]["value"] = json!(2400.50);
        assert!(TransportDocument::from_json(&v).is_ok());
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let mut v = sample();
        v["a/b~c"] = json!(1);
        assert_eq!(err_of(v).path, "/a~1b~0c");
    }
}
