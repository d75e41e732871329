//! Writing a bundle: one pass over the entries of the range, each table streamed to its own
//! temporary file, then the files put into the zip; the zip is written under a temporary name
//! and renamed when whole, so an interrupted export leaves no file that looks complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use lading_domain::event::SignedEvent;
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::membership::Membership;
use lading_domain::merkle::{leaf_hash, BlockTree, CheckpointTree};
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::{Digest, DocumentState, Jwk, SigningKey, TransportDocument};
use serde_json::json;

use crate::format::{
    hashed_files, sha256_hex, EntryLine, Manifest, ManifestCheckpoint, ManifestCounts,
    ManifestRange, PartiesFile, PreviousExport, ProofLine, BUNDLE_FORMAT,
};
use crate::report::Report;
use crate::tables::{self, DocumentRow, EventRow, TransitionRow};
use crate::ExportError;

/// The checkpoint an export proves against, with the tree of its block roots.
#[derive(Debug)]
pub struct Checkpointed {
    /// The registry's signed checkpoint (compact JWS), as it signed it.
    pub signed: String,
    pub size: u64,
    pub root: Digest,
    pub tree: CheckpointTree,
    /// The registry's public key, which signed it.
    pub registry_key: Jwk,
}

/// What is exported, for whom, signed by whom.
#[derive(Debug)]
pub struct ExportRequest<'a> {
    pub authority: PartyId,
    pub range: Range<u64>,
    /// The exporter's key (the authority's node's, or the registry's); it signs the manifest.
    pub signer: &'a SigningKey,
    pub previous: Option<PreviousExport>,
    pub created_at: DateTime<Utc>,
    /// The membership as of the checkpoint: who held which key when.
    pub membership: &'a Membership,
}

/// What the exporter reads besides the entries: the leaves of a block, and the transitions of a
/// document that came before the range (its ISSUE, and its state when the range starts).
pub trait Source {
    /// The leaf hashes of entries `range`, in order.
    fn leaves(&mut self, range: Range<u64>) -> Result<Vec<Digest>, ExportError>;
    /// The transitions of `reference` at indexes below `before`, in order, each with its index.
    fn earlier_transitions(
        &mut self,
        reference: &DocumentReference,
        before: u64,
    ) -> Result<Vec<(u64, SignedTransition)>, ExportError>;
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// SHA-256 of `manifest.json`: what the next export of the series names as its previous.
    pub manifest_sha256: String,
}

/// The document a row of `documents.csv` is made from, followed through the range.
struct Followed {
    document: TransportDocument,
    state: DocumentState,
    issued: (u64, String),
    last: (u64, String),
    in_export: u64,
}

/// The tables being written, each to its own temporary file.
struct Streams {
    dir: tempfile::TempDir,
    transitions: csv::Writer<BufWriter<File>>,
    events: csv::Writer<BufWriter<File>>,
    entries: BufWriter<File>,
    proofs: BufWriter<File>,
}

impl Streams {
    fn new(near: &Path) -> Result<Self, ExportError> {
        let dir = tempfile::Builder::new()
            .prefix(".lading-export-")
            .tempdir_in(near)?;
        let open = |name: &str| -> Result<BufWriter<File>, ExportError> {
            Ok(BufWriter::with_capacity(
                1 << 16,
                File::create(dir.path().join(name))?,
            ))
        };
        Ok(Self {
            transitions: csv::Writer::from_writer(open("transitions.csv")?),
            events: csv::Writer::from_writer(open("events.csv")?),
            entries: open("entries.jsonl")?,
            proofs: open("proofs.jsonl")?,
            dir,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The block whose leaves are at hand, to prove the entries within it.
struct OpenBlock {
    block: u64,
    tree: BlockTree,
    first: u64,
}

/// Writes the bundle of `entries` (the range's entries the authority is entitled to, in index
/// order, as signed) to `out`, proving each against `checkpoint`.
pub fn write_bundle(
    out: &Path,
    request: &ExportRequest<'_>,
    checkpoint: &Checkpointed,
    entries: impl Iterator<Item = Result<(u64, String), ExportError>>,
    source: &mut dyn Source,
) -> Result<Summary, ExportError> {
    let Range {
        start: from,
        end: to,
    } = request.range.clone();
    if from > to || to > checkpoint.size {
        return Err(ExportError::Range {
            from,
            to,
            size: checkpoint.size,
        });
    }
    let near = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut streams = Streams::new(near)?;
    let mut counts = ManifestCounts::default();
    let mut report = Report::default();
    let mut documents: BTreeMap<String, Followed> = BTreeMap::new();
    let mut open: Option<OpenBlock> = None;
    let mut last_index: Option<u64> = None;
    let block_size = checkpoint.tree.block_size();

    for entry in entries {
        let (index, signed) = entry?;
        if let Some(after) = last_index.filter(|after| index <= *after) {
            return Err(ExportError::Order { index, after });
        }
        if !(from..to).contains(&index) {
            return Err(ExportError::OutsideRange { index, from, to });
        }
        last_index = Some(index);
        let leaf = leaf_hash(signed.as_bytes());

        // The block's line, once, before its first entry.
        let block = index / block_size;
        if open.as_ref().is_none_or(|o| o.block != block) {
            let range = checkpoint
                .tree
                .block_entries(index)
                .ok_or(ExportError::Proof {
                    index,
                    why: "beyond the checkpoint".into(),
                })?;
            let leaves = source.leaves(range.clone())?;
            let tree = BlockTree::build(&leaves).map_err(|e| ExportError::Proof {
                index,
                why: e.to_string(),
            })?;
            if Some(tree.root()) != checkpoint.tree.block_root(block) {
                return Err(ExportError::BlockRoot { block });
            }
            let proof = checkpoint
                .tree
                .prove(index, &tree)
                .map_err(|e| ExportError::Proof {
                    index,
                    why: e.to_string(),
                })?;
            write_line(
                &mut streams.proofs,
                &ProofLine::Block {
                    block,
                    first: range.start,
                    end: range.end,
                    root: tree.root(),
                    path: proof.block_path,
                },
            )?;
            counts.blocks += 1;
            open = Some(OpenBlock {
                block,
                tree,
                first: range.start,
            });
        }
        let Some(current) = open.as_ref() else {
            unreachable!("a block is open");
        };
        if current.tree.leaf(index - current.first) != Some(leaf) {
            return Err(ExportError::BlockRoot { block });
        }
        let path = current
            .tree
            .path(index - current.first)
            .ok_or(ExportError::Proof {
                index,
                why: "no path in its block".into(),
            })?;
        write_line(
            &mut streams.proofs,
            &ProofLine::Entry {
                index,
                leaf_hash: leaf,
                path,
            },
        )?;
        write_line(
            &mut streams.entries,
            &EntryLine {
                index,
                leaf_hash: leaf,
                signed: signed.clone(),
            },
        )?;
        counts.entries += 1;

        if let Ok(t) = SignedTransition::parse(&signed) {
            let row = TransitionRow::of(index, &t, &leaf);
            report.transition(&row);
            streams.transitions.serialize(row)?;
            counts.transitions += 1;
            follow(&mut documents, source, index, &t)?;
        } else if let Ok(e) = SignedEvent::parse(&signed) {
            let row = EventRow::of(index, &e, &leaf);
            report.event(&row);
            streams.events.serialize(row)?;
            counts.events += 1;
        } else {
            return Err(ExportError::Unreadable {
                index,
                why: "not a transition or an event".into(),
            });
        }
    }

    // documents.csv, in reference order.
    let mut docs =
        csv::Writer::from_writer(BufWriter::new(File::create(streams.path("documents.csv"))?));
    for followed in documents.values() {
        let row = DocumentRow::of(
            &followed.document,
            &followed.state,
            followed.issued.clone(),
            followed.last.clone(),
            followed.in_export,
        );
        report.document(&row);
        docs.serialize(row)?;
        counts.documents += 1;
    }
    // A table with no rows still has its header (the csv crate writes it with the first row).
    if counts.documents == 0 {
        write_header(&mut docs, "documents")?;
    }
    if counts.transitions == 0 {
        write_header(&mut streams.transitions, "transitions")?;
    }
    if counts.events == 0 {
        write_header(&mut streams.events, "events")?;
    }
    docs.flush()?;
    drop(docs);
    streams.transitions.flush()?;
    streams.events.flush()?;
    streams.entries.flush()?;
    streams.proofs.flush()?;

    // The small files.
    std::fs::write(streams.path("checkpoint.jws"), &checkpoint.signed)?;
    std::fs::write(
        streams.path("registry.jwk"),
        to_pretty(&checkpoint.registry_key.to_public())?,
    )?;
    std::fs::write(
        streams.path("parties.json"),
        to_pretty(&PartiesFile::of(request.membership))?,
    )?;
    std::fs::write(streams.path("datapackage.json"), datapackage(request)?)?;

    let mut manifest = Manifest {
        format: BUNDLE_FORMAT.to_owned(),
        authority: request.authority.to_string(),
        exporter: request.signer.verifying_key().kid.to_string(),
        created_at: request
            .created_at
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        range: ManifestRange { from, to },
        checkpoint: ManifestCheckpoint {
            size: checkpoint.size,
            block_size,
            root: checkpoint.root.to_hex(),
            sha256: sha256_hex(checkpoint.signed.as_bytes()),
        },
        counts,
        // Hashed below, once index.html (made from the rest of the manifest) is written.
        files: BTreeMap::new(),
        previous: request.previous.clone(),
        completeness: format!(
            "The exporter states that this bundle holds every ledger entry with an index from {from} to {} that {} is entitled to see. Each entry it holds is proved on the ledger by its inclusion proof; an entry of that range not in it, shown later with its inclusion proof to fall under {}, is evidence of an omission signed here.",
            to.saturating_sub(1),
            request.authority,
            request.authority
        ),
    };
    std::fs::write(streams.path("index.html"), report.render(&manifest))?;
    for name in hashed_files() {
        manifest
            .files
            .insert(name.to_owned(), sha256_file(&streams.path(name))?);
    }
    let manifest_json = to_pretty(&manifest)?;
    std::fs::write(streams.path("manifest.json"), &manifest_json)?;
    let signed = request
        .signer
        .sign_compact(manifest_json.as_bytes(), "lading-export-manifest+jws");
    std::fs::write(streams.path("manifest.jws"), signed)?;

    // The zip, under a temporary name, renamed when whole.
    let partial = tempfile::Builder::new()
        .prefix(".lading-export-")
        .suffix(".zip.partial")
        .tempfile_in(near)?;
    {
        let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 16, partial.as_file()));
        let at = request.created_at.naive_utc();
        let mut options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        // The files are dated as the export (zip keeps local time to 2 s, no zone: UTC here).
        if let Ok(time) = zip::DateTime::from_date_and_time(
            u16::try_from(at.year()).unwrap_or(1980),
            at.month() as u8,
            at.day() as u8,
            at.hour() as u8,
            at.minute() as u8,
            at.second() as u8,
        ) {
            options = options.last_modified_time(time);
        }
        for name in crate::format::FILES {
            zip.start_file(*name, options)?;
            let mut file = File::open(streams.path(name))?;
            std::io::copy(&mut file, &mut zip)?;
        }
        let mut inner = zip.finish()?;
        inner.flush()?;
    }
    partial.as_file().sync_all()?;
    partial.persist(out).map_err(|e| ExportError::Io(e.error))?;
    if let Ok(dir) = File::open(near) {
        let _ = dir.sync_all();
    }
    Ok(Summary {
        path: out.to_owned(),
        manifest_sha256: sha256_hex(manifest_json.as_bytes()),
        manifest,
    })
}

/// Follows a document through the transitions of the range; a document whose ISSUE came
/// before the range is first brought to its state at the range's start.
fn follow(
    documents: &mut BTreeMap<String, Followed>,
    source: &mut dyn Source,
    index: u64,
    t: &SignedTransition,
) -> Result<(), ExportError> {
    let p = t.payload();
    let reference = p.document_reference().to_string();
    let time = p.time().to_string();
    let Some(current) = documents.remove(&reference) else {
        let mut followed: Option<Followed> = None;
        let earlier = if p.action() == Action::Issue {
            Vec::new()
        } else {
            source.earlier_transitions(p.document_reference(), index)?
        };
        for (i, earlier) in earlier.iter().chain(std::iter::once(&(index, t.clone()))) {
            followed = Some(step(followed, *i, earlier, &reference)?);
        }
        let mut followed = followed.ok_or_else(|| ExportError::NoIssue {
            reference: reference.clone(),
            index,
        })?;
        followed.in_export = 1;
        documents.insert(reference, followed);
        return Ok(());
    };
    let in_export = current.in_export + 1;
    let mut next = step(Some(current), index, t, &reference)?;
    next.in_export = in_export;
    next.last = (index, time);
    documents.insert(reference, next);
    Ok(())
}

/// The document after transition `t` at `index`.
fn step(
    before: Option<Followed>,
    index: u64,
    t: &SignedTransition,
    reference: &str,
) -> Result<Followed, ExportError> {
    let p = t.payload();
    let time = p.time().to_string();
    match before {
        None => {
            let document = p
                .transport_document()
                .cloned()
                .ok_or_else(|| ExportError::NoIssue {
                    reference: reference.to_owned(),
                    index,
                })?;
            let state = DocumentState::issue(p, t.checksum()).map_err(|e| {
                ExportError::Source(format!("the ISSUE of {reference} at {index}: {e}"))
            })?;
            Ok(Followed {
                document,
                state,
                issued: (index, time.clone()),
                last: (index, time),
                in_export: 0,
            })
        }
        Some(mut f) => {
            f.state = f.state.apply(p, t.checksum()).map_err(|e| {
                ExportError::Source(format!(
                    "{reference} at {index}: {e} (the chain is not one the ledger accepted)"
                ))
            })?;
            f.last = (index, time);
            Ok(f)
        }
    }
}

fn write_line(out: &mut impl Write, value: &impl serde::Serialize) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn write_header<W: Write>(w: &mut csv::Writer<W>, table: &str) -> Result<(), ExportError> {
    w.write_record(tables::columns(table).iter().map(|(name, ..)| *name))?;
    Ok(())
}

fn to_pretty(value: &impl serde::Serialize) -> Result<String, ExportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::from)?;
    text.push('\n');
    Ok(text)
}

/// SHA-256 of a file's bytes, as hex, read in chunks.
pub(crate) fn sha256_file(path: &Path) -> Result<String, ExportError> {
    sha256_reader(File::open(path)?)
}

pub(crate) fn sha256_reader(mut reader: impl Read) -> Result<String, ExportError> {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `datapackage.json`: the Frictionless descriptor of the bundle's tables and files.
fn datapackage(request: &ExportRequest<'_>) -> Result<String, ExportError> {
    let table = |name: &str, title: &str, key: &str| {
        json!({
            "name": name,
            "path": format!("{name}.csv"),
            "title": title,
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": {
                "fields": tables::columns(name).iter().map(|(field, kind, description)| {
                    let mut f = json!({"name": field, "type": kind, "description": description});
                    if *kind == "datetime" {
                        f["format"] = json!("%Y-%m-%dT%H:%M:%S.%fZ");
                    }
                    f
                }).collect::<Vec<_>>(),
                "primaryKey": [key],
            },
        })
    };
    // The other files are plain data resources. JSON Lines would be read as a table by
    // Frictionless tools (and proofs.jsonl mixes two kinds of line): `"type": "file"` says
    // they are files to hash and read with their own schema, not tables.
    let file = |name: &str, format: &str, mediatype: &str, description: &str| {
        let mut resource = json!({"name": name.replace('.', "-"), "path": name, "profile": "data-resource", "format": format, "mediatype": mediatype, "description": description});
        if format == "jsonl" {
            resource["type"] = json!("file");
        }
        resource
    };
    let package = json!({
        "profile": "data-package",
        "name": format!("lading-customs-export-{}-{}-{}", request.authority, request.range.start, request.range.end),
        "title": format!("Ledger entries for {} (indexes {}..{})", request.authority, request.range.start, request.range.end),
        "created": request.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "resources": [
            table("documents", "Bills of lading", "reference"),
            table("transitions", "Transitions of title (signed)", "ledger_index"),
            table("events", "Shipment events (signed)", "ledger_index"),
            file("entries.jsonl", "jsonl", "application/jsonl", "Every entry as signed: index, leaf hash, compact JWS."),
            file("proofs.jsonl", "jsonl", "application/jsonl", "Inclusion proofs against checkpoint.jws: block lines, then entry lines."),
            file("checkpoint.jws", "jws", "application/jose", "The registry's signed checkpoint."),
            file("registry.jwk", "json", "application/jwk+json", "The registry's public key."),
            file("parties.json", "json", "application/json", "Parties and their keys, with when each key could sign."),
            file("index.html", "html", "text/html", "A human summary (counts per port, day and state; customs holds and releases), made from the entries and documents.csv; it opens offline in a browser."),
        ],
    });
    to_pretty(&package)
}
