//! Customs batch exports: one zip per export, laid out as a Frictionless Data Package, that an
//! authority loads into its own systems and verifies years later with nothing but the file.
//!
//! The format is written down for strangers in `schemas/export/README.md` (with JSON Schemas
//! beside it); this crate writes it ([`write_bundle`]) and checks it ([`verify_bundle`]). It
//! writes and checks the format from what a source hands it — the entries, the block leaves a
//! proof needs, the chains of documents issued before the range — and has two sources: a
//! node's database (`node`) and the registry's (`registry`).
//!
//! What a bundle proves: every entry in it is on the ledger (its inclusion proof leads to the
//! registry's signed checkpoint), was signed by a key its party held at that index (the
//! membership in `parties.json`), and the CSV tables say exactly what the signed entries say.
//! What it cannot prove alone is that nothing was left out: the exporter claims completeness
//! for the range under its own signature (`manifest.jws`), so an entry of that range later
//! shown, with its inclusion proof, to fall under the authority is evidence of the omission.

mod container;
pub mod crosscheck;
mod follow;
mod format;
pub mod node;
mod paged;
pub mod registry;
mod report;
pub mod schedule;
mod tables;
mod verify;
pub mod window;
mod write;

pub use format::{
    Manifest, ManifestCounts, ManifestRange, PartiesFile, PreviousExport, ProofLine, BUNDLE_FORMAT,
    FILES,
};
pub use verify::{verify_bundle, verify_bundle_with_progress, Finding, Verdict};
pub use write::{
    write_bundle, write_bundle_with_progress, Checkpointed, ExportRequest, Source, Summary,
};

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("writing the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing a table: {0}")]
    Csv(#[from] csv::Error),
    #[error("the range {from}..{to} is not within the checkpoint of size {size}")]
    Range { from: u64, to: u64, size: u64 },
    #[error("entry {index} is out of order (after {after})")]
    Order { index: u64, after: u64 },
    #[error("entry {index} is outside the range {from}..{to}")]
    OutsideRange { index: u64, from: u64, to: u64 },
    #[error("entry {index} is neither a transition nor a shipment event: {why}")]
    Unreadable { index: u64, why: String },
    #[error("the leaves of block {block} do not make the checkpoint's block root: the source's rows are not what was verified")]
    BlockRoot { block: u64 },
    #[error("proving entry {index}: {why}")]
    Proof { index: u64, why: String },
    #[error("the document {reference} has no ISSUE before entry {index}")]
    NoIssue { reference: String, index: u64 },
    #[error("{0}")]
    Source(String),
    /// The export asked for is not one this exporter makes (another authority's, a party that
    /// is no customs authority, nothing verified yet); nothing was written.
    #[error("refused: {0}")]
    Refused(String),
}
