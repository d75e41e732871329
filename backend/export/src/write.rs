//! Writing a bundle: one pass over the entries of the range (see [`write_bundle_with_progress`]);
//! the zip is written under a temporary name and renamed when whole, so an interrupted export
//! leaves no file that looks complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use lading_domain::event::SignedEvent;
use lading_domain::ids::{DocumentReference, PartyId, Timestamp};
use lading_domain::jws::CompactJws;
use lading_domain::membership::Membership;
use lading_domain::merkle::{leaf_hash, BlockTree, CheckpointTree};
use lading_domain::transition::{Action, SignedTransition, TransitionPayload, TRANSITION_TYP};
use lading_domain::{Digest, DocumentState, Jwk, SigningKey};
use rayon::prelude::*;
use serde_json::json;

use crate::container::{self, ZipOut};
use crate::follow::{ByReference, CompactState, Interner, RefKey};
use crate::format::{
    hashed_files, sha256_hex, Manifest, ManifestCheckpoint, ManifestCounts, ManifestRange,
    PartiesFile, PreviousExport, ProofLine, BUNDLE_FORMAT, FILES,
};
use crate::report::Report;
use crate::tables::{self, DocumentRow, EventRow};
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

/// The head of a document's state after a transition of the range: its checksum is not
/// computed (see [`Documents::follow`]); the next transition states it.
const UNHASHED: Digest = Digest([0; 32]);

/// Entries taken from the source at once, prepared in parallel, then written in order.
const BATCH: usize = 1024;
/// Entries one parallel task prepares.
const CHUNK: usize = 64;

/// Writes the bundle of `entries` (the range's entries the authority is entitled to, in index
/// order, as signed) to `out`, proving each against `checkpoint`.
pub fn write_bundle(
    out: &Path,
    request: &ExportRequest<'_>,
    checkpoint: &Checkpointed,
    entries: impl Iterator<Item = Result<(u64, String), ExportError>>,
    source: &mut dyn Source,
) -> Result<Summary, ExportError> {
    write_bundle_with_progress(out, request, checkpoint, entries, source, &mut |_, _| {})
}

/// [`write_bundle`], telling `progress` after each batch how many entries are written and the
/// ledger index the pass has reached (one past the last entry taken).
///
/// The pass over the entries: each batch is prepared in parallel (leaf hash, parsing, the table
/// rows and the `entries.jsonl` lines — most of the work), then taken in order (the proofs of
/// each block, the documents followed through their transitions). `entries.jsonl` goes
/// straight into the zip while the pass goes on: hashed on a thread of its own, deflated in
/// pieces on the pool (see [`crate::container`]); the other tables go to temporary files and
/// join the zip when the pass ends. Memory stays bounded by a
/// batch, a block, and a small state per document (its as-issued row waits on disk).
pub fn write_bundle_with_progress(
    out: &Path,
    request: &ExportRequest<'_>,
    checkpoint: &Checkpointed,
    entries: impl Iterator<Item = Result<(u64, String), ExportError>>,
    source: &mut dyn Source,
    progress: &mut dyn FnMut(u64, u64),
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
    let partial = tempfile::Builder::new()
        .prefix(".lading-export-")
        .suffix(".zip.partial")
        .tempfile_in(near)?;
    let zipper = Zipper::start(
        partial.as_file().try_clone()?,
        request.created_at.naive_utc(),
    )?;
    let mut pass = Pass {
        checkpoint,
        counts: ManifestCounts::default(),
        report: Report::default(),
        documents: Documents::new(&streams)?,
        block: None,
        reached: from,
    };
    // Batches are prepared on a thread of their own (which spreads each over the cores) while
    // this one reads the next batch from the source and takes the one before in order.
    let written = std::thread::scope(|scope| -> Result<(), ExportError> {
        let (to_prepare, batches) = std::sync::mpsc::sync_channel::<Vec<Vec<(u64, String)>>>(1);
        let (prepared_tx, prepared) =
            std::sync::mpsc::sync_channel::<Result<Vec<Prepared>, ExportError>>(1);
        scope.spawn(move || {
            for batch in batches {
                let result = batch
                    .into_par_iter()
                    .map(prepare)
                    .collect::<Result<Vec<_>, _>>();
                if prepared_tx.send(result).is_err() {
                    break;
                }
            }
        });
        let mut last_index: Option<u64> = None;
        let mut entries = entries.peekable();
        let mut in_flight = 0usize;
        loop {
            if entries.peek().is_some() {
                let mut batch: Vec<Vec<(u64, String)>> = Vec::with_capacity(BATCH / CHUNK);
                for entry in entries.by_ref().take(BATCH) {
                    let (index, signed) = entry?;
                    if let Some(after) = last_index.filter(|after| index <= *after) {
                        return Err(ExportError::Order { index, after });
                    }
                    if !(from..to).contains(&index) {
                        return Err(ExportError::OutsideRange { index, from, to });
                    }
                    last_index = Some(index);
                    match batch.last_mut() {
                        Some(chunk) if chunk.len() < CHUNK => chunk.push((index, signed)),
                        _ => {
                            let mut chunk = Vec::with_capacity(CHUNK);
                            chunk.push((index, signed));
                            batch.push(chunk);
                        }
                    }
                }
                if to_prepare.send(batch).is_err() {
                    break;
                }
                in_flight += 1;
                // Keep one batch being prepared while the one before is taken.
                if in_flight < 2 {
                    continue;
                }
            }
            if in_flight == 0 {
                break;
            }
            let chunks = prepared.recv().map_err(|_| {
                ExportError::Io(std::io::Error::other("the preparing thread stopped"))
            })??;
            in_flight -= 1;
            for chunk in chunks {
                pass.take(chunk, &mut streams, source, &zipper)?;
            }
            progress(pass.counts.entries, pass.reached);
        }
        drop(to_prepare);
        pass.close_block(&mut streams)?;
        Ok(())
    });
    if let Err(e) = written {
        // The zip thread's own failure (a full disk) says more than the closed channel.
        return Err(zipper.finish().err().unwrap_or(e));
    }
    let Pass {
        mut counts,
        mut report,
        documents,
        ..
    } = pass;

    // The tables that are whole already go to the zip first, deflated on the pool while this
    // thread writes documents.csv; and the bytes written so far start on their way to disk.
    zipper.end_data();
    streams.transitions.flush()?;
    streams.events.flush()?;
    streams.proofs.flush()?;
    for name in ["transitions.csv", "events.csv", "proofs.jsonl"] {
        zipper.file(name, streams.path(name))?;
    }
    let early_sync = partial.as_file().try_clone().map(|file| {
        std::thread::spawn(move || {
            let _ = file.sync_data();
        })
    });
    // documents.csv, in reference order.
    documents.write(&streams.path("documents.csv"), &mut report, &mut counts)?;
    zipper.file("documents.csv", streams.path("documents.csv"))?;

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

    let block_size = checkpoint.tree.block_size();
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
        // Hashed as the zip thread writes them, once index.html (made from the rest of the
        // manifest) is written.
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
    for name in FILES {
        let queued = matches!(
            *name,
            "entries.jsonl" | "transitions.csv" | "events.csv" | "proofs.jsonl" | "documents.csv"
        );
        if !queued && !name.starts_with("manifest.") {
            zipper.file(name, streams.path(name))?;
        }
    }
    manifest.files = zipper.hashes(hashed_files().count())?;
    let manifest_json = to_pretty(&manifest)?;
    std::fs::write(streams.path("manifest.json"), &manifest_json)?;
    let signed = request
        .signer
        .sign_compact(manifest_json.as_bytes(), "lading-export-manifest+jws");
    std::fs::write(streams.path("manifest.jws"), signed)?;
    zipper.file("manifest.json", streams.path("manifest.json"))?;
    zipper.file("manifest.jws", streams.path("manifest.jws"))?;
    zipper.finish()?;

    // Whole: on disk, then under its name.
    if let Ok(early) = early_sync {
        let _ = early.join();
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

/// One parallel task's share of a batch, ready to be written in order.
struct Prepared {
    entries: Vec<u8>,
    transitions: Vec<u8>,
    events: Vec<u8>,
    items: Vec<Item>,
}

struct Item {
    index: u64,
    leaf: Digest,
    kind: ItemKind,
}

enum ItemKind {
    /// A transition's payload, with the day it was signed (`YYYY-MM-DD`, for the summary
    /// page).
    Transition(Box<TransitionPayload>, [u8; 10]),
    Event(Box<EventRow>),
}

/// Leaf hashes, parsing and rows of a run of entries: the part of the pass that needs no
/// order. Each entry is read as the ledger took it ([`TransitionPayload::from_accepted`]): its
/// payload was proved canonical then, and `verify-bundle` proves it again from the bundle.
fn prepare(chunk: Vec<(u64, String)>) -> Result<Prepared, ExportError> {
    let mut transitions = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(chunk.len() * 200));
    let mut events = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let mut entries = Vec::with_capacity(chunk.iter().map(|(_, s)| s.len() + 120).sum());
    let mut items = Vec::with_capacity(chunk.len());
    let mut scratch = tables::RowScratch::default();
    for (index, signed) in chunk {
        let leaf = leaf_hash(signed.as_bytes());
        let unreadable = |why: String| ExportError::Unreadable { index, why };
        // A compact JWS that parses is base64url and two dots: JSON takes it as it is.
        let jws = CompactJws::parse_owned(signed).map_err(|e| unreadable(e.to_string()))?;
        let kind = if jws.typ() == Some(TRANSITION_TYP) {
            let p =
                TransitionPayload::from_accepted(&jws).map_err(|e| unreadable(e.to_string()))?;
            entry_line(&mut entries, index, &leaf, jws.as_str());
            let time = scratch.transition(&mut transitions, index, &p, jws.kid(), &leaf)?;
            let mut day = [0u8; 10];
            day.copy_from_slice(&time.as_bytes()[..10]);
            ItemKind::Transition(Box::new(p), day)
        } else if let Ok(e) = SignedEvent::parse(jws.as_str()) {
            entry_line(&mut entries, index, &leaf, jws.as_str());
            let row = EventRow::of(index, &e, &leaf);
            events.serialize(&row)?;
            ItemKind::Event(Box::new(row))
        } else {
            return Err(unreadable("not a transition or an event".into()));
        };
        items.push(Item { index, leaf, kind });
    }
    let inner = |w: csv::Writer<Vec<u8>>| {
        w.into_inner()
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))
    };
    Ok(Prepared {
        entries,
        transitions: inner(transitions)?,
        events: inner(events)?,
        items,
    })
}

/// A line of `entries.jsonl` for a compact JWS that parsed: base64url and dots, which JSON
/// takes as they are (what `EntryLine` would write, without its escaping pass).
fn entry_line(out: &mut Vec<u8>, index: u64, leaf: &Digest, signed: &str) {
    out.extend_from_slice(b"{\"index\":");
    out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
    out.extend_from_slice(b",\"leafHash\":\"");
    let mut hex = [0u8; 64];
    // Lower-case hex of 32 bytes always fits 64 bytes.
    let _ = hex::encode_to_slice(leaf.0, &mut hex);
    out.extend_from_slice(&hex);
    out.extend_from_slice(b"\",\"signed\":\"");
    out.extend_from_slice(signed.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The state of the pass that must be taken in order.
struct Pass<'a> {
    checkpoint: &'a Checkpointed,
    counts: ManifestCounts,
    report: Report,
    documents: Documents,
    block: Option<OpenBlock>,
    /// One past the index of the last entry taken.
    reached: u64,
}

impl Pass<'_> {
    fn take(
        &mut self,
        chunk: Prepared,
        streams: &mut Streams,
        source: &mut dyn Source,
        zipper: &Zipper,
    ) -> Result<(), ExportError> {
        zipper.data(chunk.entries)?;
        streams.transitions.write_all(&chunk.transitions)?;
        streams.events.write_all(&chunk.events)?;
        for item in chunk.items {
            self.prove(item.index, item.leaf, streams, source)?;
            self.counts.entries += 1;
            self.reached = item.index + 1;
            match item.kind {
                ItemKind::Transition(p, day) => {
                    self.report
                        .transition_on(std::str::from_utf8(&day).unwrap_or(""));
                    self.counts.transitions += 1;
                    self.documents.follow(source, item.index, &p)?;
                }
                ItemKind::Event(row) => {
                    self.report.event(&row);
                    self.counts.events += 1;
                }
            }
        }
        Ok(())
    }

    /// Adds the entry to its block's proof, opening the block (and closing the one before)
    /// when it is the first of its block.
    fn prove(
        &mut self,
        index: u64,
        leaf: Digest,
        streams: &mut Streams,
        source: &mut dyn Source,
    ) -> Result<(), ExportError> {
        let tree_of = &self.checkpoint.tree;
        let block = index / tree_of.block_size();
        if self.block.as_ref().is_none_or(|o| o.block != block) {
            self.close_block(streams)?;
            let range = tree_of.block_entries(index).ok_or(ExportError::Proof {
                index,
                why: "beyond the checkpoint".into(),
            })?;
            let leaves = source.leaves(range.clone())?;
            let tree = BlockTree::build(&leaves).map_err(|e| ExportError::Proof {
                index,
                why: e.to_string(),
            })?;
            if Some(tree.root()) != tree_of.block_root(block) {
                return Err(ExportError::BlockRoot { block });
            }
            let path = tree_of
                .prove(index, &tree)
                .map_err(|e| ExportError::Proof {
                    index,
                    why: e.to_string(),
                })?
                .block_path;
            self.block = Some(OpenBlock {
                block,
                tree,
                first: range.start,
                end: range.end,
                path,
                positions: Vec::new(),
            });
        }
        let Some(open) = self.block.as_mut() else {
            unreachable!("a block is open");
        };
        let position = index - open.first;
        if open.tree.leaf(position) != Some(leaf) {
            return Err(ExportError::BlockRoot { block });
        }
        open.positions.push(position);
        Ok(())
    }

    /// Writes the proof line of the open block, if any.
    fn close_block(&mut self, streams: &mut Streams) -> Result<(), ExportError> {
        let Some(open) = self.block.take() else {
            return Ok(());
        };
        let lemmas = open
            .tree
            .multiproof(&open.positions)
            .ok_or_else(|| ExportError::Proof {
                index: open.first,
                why: "no multiproof for the block's entries".into(),
            })?;
        write_line(
            &mut streams.proofs,
            &ProofLine {
                block: open.block,
                first: open.first,
                end: open.end,
                root: open.tree.root(),
                path: open.path,
                lemmas,
            },
        )?;
        self.counts.blocks += 1;
        Ok(())
    }
}

/// The block whose leaves are at hand, with the positions of the bundle's entries in it.
struct OpenBlock {
    block: u64,
    tree: BlockTree,
    first: u64,
    end: u64,
    /// Its root's path to the checkpoint's root.
    path: Vec<Digest>,
    positions: Vec<u64>,
}

/// The tables being written, each to its own temporary file (`entries.jsonl` goes straight
/// into the zip).
struct Streams {
    dir: tempfile::TempDir,
    transitions: BufWriter<File>,
    events: BufWriter<File>,
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
        let mut transitions = open("transitions.csv")?;
        let mut events = open("events.csv")?;
        header_line(&mut transitions, "transitions")?;
        header_line(&mut events, "events")?;
        Ok(Self {
            transitions,
            events,
            proofs: open("proofs.jsonl")?,
            dir,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A table's header line (the rows come from writers that write none).
fn header_line(out: &mut impl Write, table: &str) -> Result<(), ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(tables::columns(table).iter().map(|(name, ..)| *name))?;
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))?;
    out.write_all(&bytes)?;
    Ok(())
}

/// What the zip thread is asked to do.
enum ZipJob {
    /// More bytes of `entries.jsonl`, the first file of the zip.
    Data(Vec<u8>),
    /// `entries.jsonl` is whole.
    EndData,
    /// A file to add whole.
    File(&'static str, PathBuf),
}

/// The thread that writes the zip: it hashes every file as it comes and hands its pieces to
/// the pool to deflate (see [`crate::container`]), so compression overlaps the pass over the
/// entries and spreads over the cores.
struct Zipper {
    jobs: Option<std::sync::mpsc::SyncSender<ZipJob>>,
    hashes: std::sync::mpsc::Receiver<(String, String)>,
    thread: Option<std::thread::JoinHandle<Result<(), ExportError>>>,
}

impl Zipper {
    fn start(file: File, at: chrono::NaiveDateTime) -> Result<Self, ExportError> {
        let (jobs, incoming) = std::sync::mpsc::sync_channel::<ZipJob>(2);
        let (hashed, hashes) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lading-export-zip".into())
            .spawn(move || -> Result<(), ExportError> {
                let mut zip = ZipOut::new(BufWriter::with_capacity(1 << 16, file), at);
                let mut entries = Some(zip.start("entries.jsonl")?);
                for job in incoming {
                    match job {
                        ZipJob::Data(bytes) => {
                            if let Some(entries) = entries.as_mut() {
                                entries.write(&mut zip, &bytes)?;
                            }
                        }
                        ZipJob::EndData => {
                            if let Some(entries) = entries.take() {
                                let digest = entries.finish(&mut zip)?;
                                let _ = hashed.send(("entries.jsonl".to_owned(), digest));
                            }
                        }
                        ZipJob::File(name, path) => {
                            let mut deflating = zip.start(name)?;
                            let mut file = File::open(&path)?;
                            let mut buffer = vec![0u8; container::PIECE];
                            loop {
                                let n = file.read(&mut buffer)?;
                                if n == 0 {
                                    break;
                                }
                                deflating.write(&mut zip, &buffer[..n])?;
                            }
                            let digest = deflating.finish(&mut zip)?;
                            let _ = hashed.send((name.to_owned(), digest));
                        }
                    }
                }
                zip.finish()?
                    .into_inner()
                    .map_err(|e| ExportError::Io(e.into_error()))?;
                Ok(())
            })?;
        Ok(Self {
            jobs: Some(jobs),
            hashes,
            thread: Some(thread),
        })
    }

    fn send(&self, job: ZipJob) -> Result<(), ExportError> {
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            _ => Err(ExportError::Io(std::io::Error::other(
                "the zip writer stopped",
            ))),
        }
    }

    fn data(&self, bytes: Vec<u8>) -> Result<(), ExportError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.send(ZipJob::Data(bytes))
    }

    fn end_data(&self) {
        let _ = self.send(ZipJob::EndData);
    }

    fn file(&self, name: &'static str, path: PathBuf) -> Result<(), ExportError> {
        self.send(ZipJob::File(name, path))
    }

    /// The SHA-256 of the first `count` files written, by name, once they are.
    fn hashes(&self, count: usize) -> Result<BTreeMap<String, String>, ExportError> {
        let mut out = BTreeMap::new();
        while out.len() < count {
            let Ok((name, hash)) = self.hashes.recv() else {
                return Err(ExportError::Io(std::io::Error::other(
                    "the zip writer stopped",
                )));
            };
            out.insert(name, hash);
        }
        Ok(out)
    }

    /// Waits for the zip to be whole (or for the thread's error).
    fn finish(mut self) -> Result<(), ExportError> {
        drop(self.jobs.take());
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ExportError::Io(std::io::Error::other(
                "the zip writer panicked",
            ))),
            None => Ok(()),
        }
    }
}

/// A document followed through the range: its state, small, and where its as-issued row
/// waits in the spill file.
struct Tracked {
    state: CompactState,
    last_time: Timestamp,
    last_index: u64,
    spill_at: u64,
    in_export: u32,
}

/// The documents with a transition in the range, followed through them. A document's row is
/// made, as issued, when its ISSUE is met and waits in a spill file; what changes after (its
/// state, possessor, last change, count) is kept small in memory and patched in at the end.
struct Documents {
    tracked: ByReference<Tracked>,
    parties: Interner,
    /// The as-issued rows, counting the bytes written so each row's place is known.
    spill: csv::Writer<Counted<BufWriter<File>>>,
    spill_path: PathBuf,
}

/// Counts the bytes written through it. Its `flush` only hands bytes on (the csv writer
/// flushes after every row to make the count exact; the file is flushed once, at the end).
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Documents {
    fn new(streams: &Streams) -> Result<Self, ExportError> {
        let spill_path = streams.path("documents.spill");
        Ok(Self {
            tracked: ByReference::default(),
            parties: Interner::default(),
            spill: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Counted {
                    inner: BufWriter::with_capacity(1 << 16, File::create(&spill_path)?),
                    written: 0,
                }),
            spill_path,
        })
    }

    /// Follows a document through the transition of payload `p` at `index`; a document whose
    /// ISSUE came before the range is first brought to its state at the range's start.
    ///
    /// Within the range, a transition's place in its document's chain is taken as it states it
    /// (its `previousTransitionChecksum` is the head it follows): the ledger checked the chain
    /// when it took each entry, and `verify-bundle` checks it again from the bundle, so the
    /// writer spares itself a SHA-256 of every entry. The state machine's other rules (who may
    /// do what, in which state) still run, as they give each document's state and possessor.
    /// The link from a chain before the range to its first transition in it is checked, as the
    /// verifier cannot.
    fn follow(
        &mut self,
        source: &mut dyn Source,
        index: u64,
        p: &TransitionPayload,
    ) -> Result<(), ExportError> {
        let reference = p.document_reference();
        let key = RefKey::of(reference).map_err(ExportError::Source)?;
        let broken = |e: lading_domain::state::RuleViolation| {
            ExportError::Source(format!(
                "{reference} at {index}: {e} (the chain is not one the ledger accepted)"
            ))
        };
        if let Some(tracked) = self.tracked.get_mut(&key) {
            let mut state = tracked
                .state
                .state(reference.clone(), &self.parties)
                .map_err(ExportError::Source)?;
            if let Some(previous) = p.previous_transition_checksum() {
                state.head = *previous;
            }
            let next = state.apply(p, UNHASHED).map_err(broken)?;
            tracked.state = CompactState::of(&next, &mut self.parties);
            tracked.last_index = index;
            tracked.last_time = p.time();
            tracked.in_export += 1;
            return Ok(());
        }
        let no_issue = || ExportError::NoIssue {
            reference: reference.to_string(),
            index,
        };
        let issued_before = p.action() != Action::Issue;
        let earlier = if issued_before {
            source.earlier_transitions(reference, index)?
        } else {
            Vec::new()
        };
        let (issued_index, ip, issue_checksum) = match earlier.first() {
            Some((i, t)) => (*i, t.payload(), t.checksum()),
            None if issued_before => return Err(no_issue()),
            None => (index, p, UNHASHED),
        };
        let document = ip.transport_document().ok_or_else(no_issue)?;
        let mut state = DocumentState::issue(ip, issue_checksum).map_err(|e| {
            ExportError::Source(format!("the ISSUE of {reference} at {issued_index}: {e}"))
        })?;
        let issued_time = ip.time();
        let row = DocumentRow::of(
            document,
            &state,
            (issued_index, issued_time.to_string()),
            (issued_index, issued_time.to_string()),
            0,
        );
        self.spill.flush()?;
        let spill_at = self.spill.get_ref().written;
        self.spill.serialize(&row)?;
        let (mut last_index, mut last_time) = (issued_index, issued_time);
        if issued_before {
            // The chain before the range, each link checked, then this transition's link to it.
            for (i, t) in earlier.iter().skip(1) {
                state = state.apply(t.payload(), t.checksum()).map_err(|e| {
                    ExportError::Source(format!(
                        "{reference} at {i}: {e} (the chain is not one the ledger accepted)"
                    ))
                })?;
            }
            state = state.apply(p, UNHASHED).map_err(broken)?;
            (last_index, last_time) = (index, p.time());
        }
        let tracked = Tracked {
            state: CompactState::of(&state, &mut self.parties),
            last_time,
            last_index,
            spill_at,
            in_export: 1,
        };
        self.tracked.insert(key, tracked);
        Ok(())
    }

    /// `documents.csv`, in reference order: each row as issued, read back from the spill
    /// file, with what changed since patched in.
    fn write(
        self,
        path: &Path,
        report: &mut Report,
        counts: &mut ManifestCounts,
    ) -> Result<(), ExportError> {
        let mut spill = self
            .spill
            .into_inner()
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))?;
        spill.inner.flush()?;
        // One reader over the spill file, moved to each row in turn (a reader is costly to
        // build, a seek is not).
        let mut spilled = csv::ReaderBuilder::new()
            .has_headers(false)
            .buffer_capacity(4096)
            .from_reader(File::open(&self.spill_path)?);
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        header_line(&mut out, "documents")?;
        let mut rows = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        let mut at = csv::Position::new();
        for (key, tracked) in self.tracked.sorted() {
            at.set_byte(tracked.spill_at);
            spilled.seek(at.clone())?;
            let mut row: DocumentRow = spilled
                .deserialize()
                .next()
                .ok_or_else(|| ExportError::Source("a spilled row is missing".into()))??;
            let possessor = self
                .parties
                .id(tracked.state.possessor)
                .ok_or_else(|| ExportError::Source(format!("{}: no possessor", key.as_str())))?;
            row.state = tracked.state.status.as_str().to_owned();
            row.possessor = possessor.to_string();
            row.last_change = tracked.last_time.to_string();
            row.last_index = tracked.last_index;
            row.transitions_in_export = u64::from(tracked.in_export);
            report.document(&row);
            rows.serialize(&row)?;
            counts.documents += 1;
        }
        rows.flush()?;
        Ok(())
    }
}

fn write_line(out: &mut impl Write, value: &impl serde::Serialize) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn to_pretty(value: &impl serde::Serialize) -> Result<String, ExportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::from)?;
    text.push('\n');
    Ok(text)
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
