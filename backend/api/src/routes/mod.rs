//! One module per resource; the URL tells you the file.

pub mod checkpoints;
pub mod documents;
pub mod entries;
pub mod events;
pub mod exports;
pub mod health;
pub mod notifications;
pub mod parties;
pub mod replicas;
pub mod replication;
pub mod search;
pub mod submitters;
pub mod subscriptions;
pub mod tokens;
pub mod transitions;

use lading_registry::Receipt;
use serde::Serialize;

/// The answer for an accepted (or already accepted) ledger entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryAnswer {
    pub index: u64,
    pub leaf_hash: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_reference: Option<String>,
    /// The document's state right after this transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Box<serde_json::value::RawValue>>,
    /// The party whose credential handed the entry in, when it was a party's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    pub duplicate: bool,
}

impl From<Receipt> for EntryAnswer {
    fn from(r: Receipt) -> Self {
        Self {
            index: r.index,
            leaf_hash: r.leaf_hash.to_hex(),
            kind: r.kind.as_str(),
            document_reference: r.document_reference,
            state: r.state.map(lading_store::json::JsonText::into_raw),
            submitted_by: r.submitted_by,
            duplicate: r.duplicate,
        }
    }
}
