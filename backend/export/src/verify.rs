//! Checking a bundle with nothing but the file (and, for the series, the export before it).
//!
//! Every rule that fails is a [`Finding`] naming the file, the line where there is one, and
//! the rule; the verdict is clean only when there are none.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::event::SignedEvent;
use lading_domain::ids::Timestamp;
use lading_domain::jws::{verify_batch, CompactJws};
use lading_domain::merkle::{fold_block_path, leaf_hash, multiproof_root};
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::{Digest, DocumentState, Jwk, VerifyingKey};
use rayon::prelude::*;

use crate::follow::{ByReference, CompactState, Interner, RefKey};
use crate::format::{
    sha256_hex, EntryLine, Manifest, PartiesFile, ProofLine, BUNDLE_FORMAT, FILES,
};
use crate::report::Report;
use crate::tables::{DocumentRow, EventRow, TransitionRow};

/// A rule the bundle breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    /// The line (1 = the first; a CSV's header is line 1).
    pub line: Option<u64>,
    /// A stable name of the rule.
    pub rule: &'static str,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: [{}] {}", self.file, self.rule, self.message),
            None => write!(f, "{}: [{}] {}", self.file, self.rule, self.message),
        }
    }
}

/// What the verifier found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub manifest: Option<Manifest>,
    pub findings: Vec<Finding>,
    /// Entries whose signature and proof were checked.
    pub entries_checked: u64,
    /// Documents whose as-issued columns could be checked (their ISSUE is in the bundle).
    pub documents_checked: u64,
    /// Documents issued before the range: their as-issued columns are the exporter's word.
    pub documents_issued_before: u64,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn find(&mut self, file: &str, line: Option<u64>, rule: &'static str, message: String) {
        // A broken file would name every one of its lines: the first hundred say enough.
        if self.findings.len() < 100 {
            self.findings.push(Finding {
                file: file.to_owned(),
                line,
                rule,
                message,
            });
        }
    }
}

/// The bundle's files, read from its zip.
struct Bundle {
    archive: zip::ZipArchive<BufReader<File>>,
}

impl Bundle {
    fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| format!("{}: not a zip file ({e})", path.display()))?;
        Ok(Self { archive })
    }

    fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .map(|name| match name {
                Ok(name) => name.into_owned(),
                Err(e) => format!("(a name that does not read: {e})"),
            })
            .collect()
    }

    fn bytes(&mut self, name: &str) -> Option<Vec<u8>> {
        let mut file = self.archive.by_name(name).ok()?;
        let mut out = Vec::new();
        file.read_to_end(&mut out).ok()?;
        Some(out)
    }

    fn sha256(&mut self, name: &str) -> Option<String> {
        let file = self.archive.by_name(name).ok()?;
        crate::write::sha256_reader(file).ok()
    }
}

/// Verifies the bundle at `path`; `previous`, the export before it in its series, when given.
pub fn verify_bundle(path: &Path, previous: Option<&Path>) -> Verdict {
    verify_bundle_with_progress(path, previous, &mut |_, _| {})
}

/// [`verify_bundle`], telling `progress` after each batch how many entries are checked of the
/// number the manifest counts.
pub fn verify_bundle_with_progress(
    path: &Path,
    previous: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut bundle = match Bundle::open(path) {
        Ok(b) => b,
        Err(e) => {
            verdict.find("(bundle)", None, "not_a_bundle", e);
            return verdict;
        }
    };

    // Exactly the files of the format.
    let names: BTreeSet<String> = bundle.names().into_iter().collect();
    for name in &names {
        if !FILES.contains(&name.as_str()) {
            verdict.find(name, None, "unexpected_file", "a file the format does not have: a bundle holds exactly the files its manifest accounts for".into());
        }
    }
    for name in FILES {
        if !names.contains(*name) {
            verdict.find(name, None, "missing_file", "missing from the bundle".into());
        }
    }

    // The manifest, and its signature.
    let Some(manifest_bytes) = bundle.bytes("manifest.json") else {
        return verdict;
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            verdict.find("manifest.json", None, "manifest_unreadable", e.to_string());
            return verdict;
        }
    };
    if manifest.format != BUNDLE_FORMAT {
        verdict.find(
            "manifest.json",
            None,
            "unknown_format",
            format!("format {:?}, not {BUNDLE_FORMAT}", manifest.format),
        );
    }
    let parties: Option<PartiesFile> = bundle
        .bytes("parties.json")
        .and_then(|b| serde_json::from_slice(&b).ok());
    let registry_jwk: Option<Jwk> = bundle
        .bytes("registry.jwk")
        .and_then(|b| serde_json::from_slice(&b).ok());
    let registry_key = registry_jwk.as_ref().and_then(|j| j.verifying_key().ok());
    if parties.is_none() {
        verdict.find(
            "parties.json",
            None,
            "parties_unreadable",
            "not the parties and keys of the format".into(),
        );
    }
    if registry_key.is_none() {
        verdict.find(
            "registry.jwk",
            None,
            "registry_key_unreadable",
            "not an Ed25519 public JWK".into(),
        );
    }
    check_manifest_signature(
        &mut verdict,
        &mut bundle,
        &manifest,
        &manifest_bytes,
        parties.as_ref(),
        registry_key.as_ref(),
    );

    // Every other file is the one the manifest hashed (the large ones as they are read below).
    for (name, want) in &manifest.files {
        if STREAMED.contains(&name.as_str()) {
            continue;
        }
        match bundle.sha256(name) {
            Some(got) if &got == want => {}
            Some(got) => verdict.find(
                name,
                None,
                "hash_mismatch",
                format!("SHA-256 {got}, the manifest says {want}: the file was changed after it was signed"),
            ),
            None => {}
        }
    }
    for name in crate::format::hashed_files() {
        if !manifest.files.contains_key(name) {
            verdict.find(
                "manifest.json",
                None,
                "file_not_hashed",
                format!("{name} has no hash in the manifest"),
            );
        }
    }

    // The checkpoint, signed by the registry.
    let checkpoint = check_checkpoint(&mut verdict, &mut bundle, &manifest, registry_key.as_ref());

    // The entries, their signatures and their proofs.
    let keys: HashMap<String, (VerifyingKey, crate::format::KeyLine)> = parties
        .iter()
        .flat_map(|p| p.keys.iter())
        .filter_map(|k| {
            Some((
                k.jwk.kid().to_string(),
                (k.jwk.verifying_key().ok()?, k.clone()),
            ))
        })
        .collect();
    let (streamed, report) =
        check_stream(&mut verdict, path, &manifest, &keys, checkpoint, progress);
    for name in STREAMED {
        match (streamed.get(name), manifest.files.get(*name)) {
            (Some(got), Some(want)) if got != want => verdict.find(
                name,
                None,
                "hash_mismatch",
                format!("SHA-256 {got}, the manifest says {want}: the file was changed after it was signed"),
            ),
            _ => {}
        }
    }
    check_report(&mut verdict, &mut bundle, &manifest, &report);

    if let Some(previous) = previous {
        check_previous(&mut verdict, &manifest, previous);
    }
    verdict.manifest = Some(manifest);
    verdict
}

fn check_manifest_signature(
    verdict: &mut Verdict,
    bundle: &mut Bundle,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    parties: Option<&PartiesFile>,
    registry_key: Option<&VerifyingKey>,
) {
    let Some(jws) = bundle
        .bytes("manifest.jws")
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return;
    };
    let jws = match CompactJws::parse(jws.trim()) {
        Ok(j) => j,
        Err(e) => {
            verdict.find(
                "manifest.jws",
                None,
                "manifest_signature_unreadable",
                e.to_string(),
            );
            return;
        }
    };
    if jws.payload_bytes() != manifest_bytes {
        verdict.find(
            "manifest.jws",
            None,
            "manifest_signature_other_payload",
            "it signs other bytes than manifest.json's".into(),
        );
    }
    if jws.kid().as_str() != manifest.exporter {
        verdict.find(
            "manifest.jws",
            None,
            "manifest_signer_mismatch",
            format!(
                "signed with {}, the manifest names {} as its exporter",
                jws.kid(),
                manifest.exporter
            ),
        );
    }
    // The exporter is the registry, or the authority itself with a key it held at the
    // checkpoint.
    let size = manifest.checkpoint.size;
    let key = if registry_key.is_some_and(|k| &k.kid == jws.kid()) {
        registry_key.cloned()
    } else {
        parties
            .and_then(|p| p.keys.iter().find(|k| k.jwk.kid() == jws.kid()))
            .filter(|k| k.owner == manifest.authority && k.valid_at(size))
            .and_then(|k| k.jwk.verifying_key().ok())
    };
    match key {
        None => verdict.find(
            "manifest.jws",
            None,
            "manifest_signer_not_allowed",
            format!("signed with {}, which is neither the registry's key nor a key {} held at the checkpoint", jws.kid(), manifest.authority),
        ),
        Some(key) => {
            if key.verify(&jws).is_err() {
                verdict.find("manifest.jws", None, "manifest_signature_invalid", format!("the signature does not verify with {}", key.kid));
            }
        }
    }
}

fn check_checkpoint(
    verdict: &mut Verdict,
    bundle: &mut Bundle,
    manifest: &Manifest,
    registry_key: Option<&VerifyingKey>,
) -> Option<Digest> {
    let text = bundle
        .bytes("checkpoint.jws")
        .and_then(|b| String::from_utf8(b).ok())?;
    let signed = match SignedCheckpoint::parse(text.trim()) {
        Ok(s) => s,
        Err(e) => {
            verdict.find(
                "checkpoint.jws",
                None,
                "checkpoint_unreadable",
                e.to_string(),
            );
            return None;
        }
    };
    let key = registry_key?;
    let checkpoint = match signed.verify(key) {
        Ok(c) => c,
        Err(e) => {
            verdict.find(
                "checkpoint.jws",
                None,
                "checkpoint_signature_invalid",
                format!("not signed by registry.jwk ({}): {e}", key.kid),
            );
            return None;
        }
    };
    if u64::from(checkpoint.block_size) != manifest.checkpoint.block_size {
        verdict.find(
            "manifest.json",
            None,
            "checkpoint_mismatch",
            format!(
                "the manifest's block size {} is not the checkpoint's {}",
                manifest.checkpoint.block_size, checkpoint.block_size
            ),
        );
    }
    if checkpoint.size != manifest.checkpoint.size
        || checkpoint.root.to_hex() != manifest.checkpoint.root
    {
        verdict.find("manifest.json", None, "checkpoint_mismatch", format!("the manifest names the checkpoint of size {} root {}, checkpoint.jws is of size {} root {}", manifest.checkpoint.size, manifest.checkpoint.root, checkpoint.size, checkpoint.root.to_hex()));
    }
    if manifest.range.from > manifest.range.to || manifest.range.to > checkpoint.size {
        verdict.find(
            "manifest.json",
            None,
            "range_beyond_checkpoint",
            format!(
                "the range {}..{} is not within the checkpoint of size {}",
                manifest.range.from, manifest.range.to, checkpoint.size
            ),
        );
    }
    Some(checkpoint.root)
}

/// The files read as streams, side by side, and hashed as they are read (rule 3 for them is
/// checked when they are through).
const STREAMED: &[&str] = &[
    "entries.jsonl",
    "proofs.jsonl",
    "transitions.csv",
    "events.csv",
    "documents.csv",
];

/// Entries read at once, checked in parallel, then taken in order.
const BATCH: usize = 4096;
/// Entries one parallel task checks (its signatures verified as one batch).
const CHUNK: usize = 256;

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        use sha2::Digest as _;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    /// Reads what is left and gives the SHA-256 of everything (hex).
    fn finish(mut self) -> Option<String> {
        use sha2::Digest as _;
        std::io::copy(&mut self, &mut std::io::sink()).ok()?;
        Some(hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

type ZipRead<'a> = Hashing<zip::read::ZipFile<'a, BufReader<File>>>;

/// Opens `name` of the bundle at `path` as a hashed stream of its own (each stream needs its
/// own handle on the zip).
fn archive(path: &Path) -> Option<zip::ZipArchive<BufReader<File>>> {
    let file = File::open(path).ok()?;
    zip::ZipArchive::new(BufReader::with_capacity(1 << 16, file)).ok()
}

/// An entry as checked in parallel: what the ordered part needs of it.
struct Checked {
    line: u64,
    index: u64,
    leaf: Digest,
    kind: CheckedKind,
}

enum CheckedKind {
    Transition(Box<SignedTransition>, TransitionRow),
    Event(EventRow),
    /// Unreadable: reported already.
    Neither,
}

/// The checks of one entry that need nothing but the entry and `parties.json`: its line, its
/// leaf hash, its kind, its key; the signatures of a chunk are verified as one batch.
fn check_chunk(
    lines: &[(u64, String)],
    manifest: &Manifest,
    keys: &HashMap<String, (VerifyingKey, crate::format::KeyLine)>,
) -> (Vec<Checked>, Vec<Finding>) {
    let mut found = Verdict::default();
    let mut out = Vec::with_capacity(lines.len());
    let mut batch: Vec<(u64, VerifyingKey, CompactJws)> = Vec::with_capacity(lines.len());
    for (line, text) in lines {
        let line = *line;
        let entry: EntryLine = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                found.find(
                    "entries.jsonl",
                    Some(line),
                    "entry_unreadable",
                    e.to_string(),
                );
                continue;
            }
        };
        if leaf_hash(entry.signed.as_bytes()) != entry.leaf_hash {
            found.find(
                "entries.jsonl",
                Some(line),
                "leaf_hash_mismatch",
                format!(
                    "entry {}: its leaf hash is not SHA-256(0x00 ‖ its signed bytes)",
                    entry.index
                ),
            );
        }
        if !(manifest.range.from..manifest.range.to).contains(&entry.index) {
            found.find(
                "entries.jsonl",
                Some(line),
                "entry_outside_range",
                format!(
                    "entry {} is outside the range {}..{}",
                    entry.index, manifest.range.from, manifest.range.to
                ),
            );
        }
        // Who signed it, and could that key sign at this index?
        let (jws, actor, kind) = if let Ok(t) = SignedTransition::parse(&entry.signed) {
            let row = TransitionRow::of(entry.index, &t, &entry.leaf_hash);
            (
                t.jws().clone(),
                t.payload().actor().to_string(),
                CheckedKind::Transition(Box::new(t), row),
            )
        } else {
            match SignedEvent::parse(&entry.signed) {
                Ok(e) => {
                    let row = EventRow::of(entry.index, &e, &entry.leaf_hash);
                    (
                        e.jws().clone(),
                        e.event().actor().to_string(),
                        CheckedKind::Event(row),
                    )
                }
                Err(e) => {
                    found.find(
                        "entries.jsonl",
                        Some(line),
                        "entry_not_a_transition_or_event",
                        format!("entry {}: {e}", entry.index),
                    );
                    out.push(Checked {
                        line,
                        index: entry.index,
                        leaf: entry.leaf_hash,
                        kind: CheckedKind::Neither,
                    });
                    continue;
                }
            }
        };
        match keys.get(jws.kid().as_str()) {
            None => found.find(
                "entries.jsonl",
                Some(line),
                "entry_key_unknown",
                format!(
                    "entry {} is signed with {}, which parties.json does not hold",
                    entry.index,
                    jws.kid()
                ),
            ),
            Some((key, record)) => {
                if record.owner != actor {
                    found.find(
                        "entries.jsonl",
                        Some(line),
                        "entry_key_not_the_actors",
                        format!(
                            "entry {} names {actor} as its actor and is signed with a key of {}",
                            entry.index, record.owner
                        ),
                    );
                } else if !record.valid_at(entry.index) {
                    found.find(
                        "entries.jsonl",
                        Some(line),
                        "entry_key_not_valid_then",
                        format!(
                            "entry {} is signed with {}, which could not sign at that index",
                            entry.index,
                            jws.kid()
                        ),
                    );
                }
                batch.push((line, key.clone(), jws));
            }
        }
        out.push(Checked {
            line,
            index: entry.index,
            leaf: entry.leaf_hash,
            kind,
        });
    }
    let items: Vec<(&VerifyingKey, &CompactJws)> = batch.iter().map(|(_, k, j)| (k, j)).collect();
    if !verify_batch(&items) {
        for (line, key, jws) in &batch {
            if key.verify(jws).is_err() {
                found.find(
                    "entries.jsonl",
                    Some(*line),
                    "entry_signature_invalid",
                    format!("the signature does not verify with {}", key.kid),
                );
            }
        }
    }
    (out, found.findings)
}

/// A block line of `proofs.jsonl` with the bundle's entries of its block gathered so far.
struct PendingBlock {
    line: u64,
    proof: ProofLine,
    leaves: Vec<(u64, Digest)>,
}

/// `proofs.jsonl`, read one block line ahead of the entries.
struct Proofs<'a> {
    lines: Option<BufReader<ZipRead<'a>>>,
    line: u64,
    ahead: Option<(u64, ProofLine)>,
    pending: Option<PendingBlock>,
    size: u64,
    block_size: u64,
    root: Option<Digest>,
    blocks: u64,
}

impl Proofs<'_> {
    fn next_line(&mut self, verdict: &mut Verdict) -> Option<(u64, ProofLine)> {
        if let Some(ahead) = self.ahead.take() {
            return Some(ahead);
        }
        loop {
            let mut text = String::new();
            match self.lines.as_mut()?.read_line(&mut text) {
                Ok(0) => return None,
                Ok(_) => {
                    if text.ends_with('\n') {
                        text.pop();
                    }
                }
                Err(e) => {
                    verdict.find(
                        "proofs.jsonl",
                        Some(self.line + 1),
                        "proof_unreadable",
                        e.to_string(),
                    );
                    self.lines = None;
                    return None;
                }
            }
            self.line += 1;
            match serde_json::from_str::<ProofLine>(&text) {
                Ok(p) => return Some((self.line, p)),
                Err(e) => verdict.find(
                    "proofs.jsonl",
                    Some(self.line),
                    "proof_unreadable",
                    e.to_string(),
                ),
            }
        }
    }

    /// Takes entry `index` (leaf hash `leaf`) into its block's proof.
    fn entry(&mut self, verdict: &mut Verdict, line: u64, index: u64, leaf: Digest) {
        let block = index / self.block_size;
        if let Some(p) = self.pending.as_mut().filter(|p| p.proof.block == block) {
            p.leaves.push((index, leaf));
            return;
        }
        self.close(verdict);
        loop {
            match self.next_line(verdict) {
                Some((l, proof)) if proof.block < block => verdict.find(
                    "proofs.jsonl",
                    Some(l),
                    "proof_without_entry",
                    format!(
                        "a proof of block {}, of which entries.jsonl holds no entry here",
                        proof.block
                    ),
                ),
                Some((l, proof)) if proof.block == block => {
                    self.pending = Some(PendingBlock {
                        line: l,
                        proof,
                        leaves: vec![(index, leaf)],
                    });
                    return;
                }
                other => {
                    self.ahead = other;
                    verdict.find(
                        "entries.jsonl",
                        Some(line),
                        "entry_without_proof",
                        format!("entry {index}: proofs.jsonl has no line for its block {block}"),
                    );
                    return;
                }
            }
        }
    }

    /// Checks the pending block's proof: its bounds, its multiproof, its path.
    fn close(&mut self, verdict: &mut Verdict) {
        let Some(PendingBlock {
            line,
            proof,
            leaves,
        }) = self.pending.take()
        else {
            return;
        };
        self.blocks += 1;
        let Some(root) = self.root else {
            return;
        };
        let first = proof.block.saturating_mul(self.block_size);
        let end = first.saturating_add(self.block_size).min(self.size);
        if (proof.first, proof.end) != (first, end) {
            verdict.find(
                "proofs.jsonl",
                Some(line),
                "proof_invalid",
                format!(
                    "block {} holds entries {first}..{end} at the checkpoint's size, the line says {}..{}",
                    proof.block, proof.first, proof.end
                ),
            );
            return;
        }
        let positions: Vec<(u64, Digest)> = leaves
            .iter()
            .map(|(index, leaf)| (index - first, *leaf))
            .collect();
        let proved = multiproof_root(end - first, &positions, &proof.lemmas)
            .map_err(|e| e.to_string())
            .and_then(|block_root| {
                if block_root != proof.root {
                    return Err("its entries and lemmas make another block root".into());
                }
                match fold_block_path(
                    self.size,
                    self.block_size,
                    proof.block,
                    block_root,
                    &proof.path,
                ) {
                    Some(r) if r == root => Ok(()),
                    Some(_) => Err("its path leads to another root than the checkpoint's".into()),
                    None => Err("its path is not the length of the block's place".into()),
                }
            });
        if let Err(why) = proved {
            verdict.find(
                "proofs.jsonl",
                Some(line),
                "proof_invalid",
                format!(
                    "the {} entries of block {} are not proved on the ledger: {why}",
                    leaves.len(),
                    proof.block
                ),
            );
        }
    }

    /// After the last entry: the pending block, and lines left over.
    fn end(&mut self, verdict: &mut Verdict) {
        self.close(verdict);
        while let Some((l, proof)) = self.next_line(verdict) {
            verdict.find(
                "proofs.jsonl",
                Some(l),
                "proof_without_entry",
                format!(
                    "a proof of block {}, of which entries.jsonl holds no entry",
                    proof.block
                ),
            );
        }
    }
}

/// A table compared, row by row, with the rows the signed entries make.
struct Table<'a, T> {
    name: &'static str,
    rows: Option<csv::DeserializeRecordsIntoIter<ZipRead<'a>, T>>,
    read: u64,
    want: u64,
}

impl<'a, T: serde::de::DeserializeOwned + PartialEq> Table<'a, T> {
    fn new(name: &'static str, file: Option<ZipRead<'a>>) -> Self {
        Self {
            name,
            rows: file.map(|f| csv::Reader::from_reader(f).into_deserialize()),
            read: 0,
            want: 0,
        }
    }

    fn compare(&mut self, verdict: &mut Verdict, want: &T) {
        self.want += 1;
        let Some(rows) = self.rows.as_mut() else {
            return;
        };
        let Some(row) = rows.next() else {
            return;
        };
        self.read += 1;
        let line = self.read + 1;
        match row {
            Ok(row) if &row == want => {}
            Ok(_) => verdict.find(
                self.name,
                Some(line),
                "row_differs_from_entries",
                "the row is not what the signed entry says".into(),
            ),
            Err(e) => verdict.find(self.name, Some(line), "row_unreadable", e.to_string()),
        }
    }

    /// Rows left over, the count, and the file's hash.
    fn end(self, verdict: &mut Verdict) -> Option<String> {
        let mut rows = self.rows?;
        let mut read = self.read;
        for row in rows.by_ref() {
            read += 1;
            if let Err(e) = row {
                verdict.find(self.name, Some(read + 1), "row_unreadable", e.to_string());
            }
        }
        if read != self.want {
            verdict.find(
                self.name,
                None,
                "row_count_mismatch",
                format!("{read} rows for {} signed entries", self.want),
            );
        }
        rows.into_reader().into_inner().finish()
    }
}

/// A document as the bundle's transitions show it. Issued in the bundle: its state followed
/// and a digest of its as-issued row; issued before the range: only what the range says.
struct Seen {
    issued: Option<(CompactState, [u8; 32])>,
    last_index: u64,
    last_time: Timestamp,
    count: u32,
}

/// The row's columns that do not change after its ISSUE, as one digest.
fn as_issued_digest(row: &DocumentRow) -> [u8; 32] {
    use sha2::Digest as _;
    let mut fixed = row.clone();
    fixed.state.clear();
    fixed.possessor.clear();
    fixed.last_change.clear();
    fixed.last_index = 0;
    fixed.transitions_in_export = 0;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let _ = w.serialize(&fixed);
    let bytes = w.into_inner().unwrap_or_default();
    sha2::Sha256::digest(&bytes).into()
}

/// Documents followed through the bundle's own transitions.
#[derive(Default)]
struct Followed {
    documents: ByReference<Seen>,
    parties: Interner,
}

impl Followed {
    fn follow(&mut self, index: u64, t: &SignedTransition) {
        let p = t.payload();
        let Ok(key) = RefKey::of(p.document_reference()) else {
            return;
        };
        let time = p.time();
        match self.documents.get_mut(&key) {
            Some(doc) => {
                doc.count += 1;
                doc.last_index = index;
                doc.last_time = time;
                if let Some((state, _)) = doc.issued.as_mut() {
                    let next = state
                        .state(p.document_reference().clone(), &self.parties)
                        .ok()
                        .and_then(|s| s.apply(p, t.checksum()).ok());
                    if let Some(next) = next {
                        *state = CompactState::of(&next, &mut self.parties);
                    }
                }
            }
            None => {
                let issued = if p.action() == Action::Issue {
                    match (
                        p.transport_document(),
                        DocumentState::issue(p, t.checksum()),
                    ) {
                        (Some(d), Ok(state)) => {
                            let row = DocumentRow::of(
                                d,
                                &state,
                                (index, time.to_string()),
                                (index, time.to_string()),
                                0,
                            );
                            Some((
                                CompactState::of(&state, &mut self.parties),
                                as_issued_digest(&row),
                            ))
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                self.documents.insert(
                    key,
                    Seen {
                        issued,
                        last_index: index,
                        last_time: time,
                        count: 1,
                    },
                );
            }
        }
    }
}

/// Rules 5 to 8 in one pass: `entries.jsonl` read in batches checked in parallel, and beside
/// it `proofs.jsonl`, `transitions.csv` and `events.csv`; then `documents.csv` against the
/// documents followed, and `index.html`. Gives the hashes of the files it streamed.
fn check_stream(
    verdict: &mut Verdict,
    path: &Path,
    manifest: &Manifest,
    keys: &HashMap<String, (VerifyingKey, crate::format::KeyLine)>,
    root: Option<Digest>,
    progress: &mut dyn FnMut(u64, u64),
) -> (BTreeMap<&'static str, String>, Report) {
    let mut hashes = BTreeMap::new();
    let mut archives: Vec<_> = (0..5).filter_map(|_| archive(path)).collect();
    if archives.len() < 5 {
        return (hashes, Report::default());
    }
    let mut it = archives.iter_mut();
    let mut open = |name: &str| {
        it.next()
            .and_then(|a| a.by_name(name).ok())
            .map(Hashing::new)
    };
    let entries_file = open("entries.jsonl");
    let proofs_file = open("proofs.jsonl");
    let transitions_file = open("transitions.csv");
    let events_file = open("events.csv");
    let documents_file = open("documents.csv");

    let block_size = manifest.checkpoint.block_size.max(1);
    let mut proofs = Proofs {
        lines: proofs_file.map(|f| BufReader::with_capacity(1 << 16, f)),
        line: 0,
        ahead: None,
        pending: None,
        size: manifest.checkpoint.size,
        block_size,
        root,
        blocks: 0,
    };
    let mut transitions = Table::<TransitionRow>::new("transitions.csv", transitions_file);
    let mut events = Table::<EventRow>::new("events.csv", events_file);
    let mut seen = Followed::default();
    let mut report = Report::default();
    let mut last: Option<u64> = None;
    let mut count = 0u64;

    let mut entries = entries_file.map(|f| BufReader::with_capacity(1 << 16, f));
    if let Some(reader) = entries.as_mut() {
        // Batches are checked on a thread of their own (spread over the cores) while this one
        // reads the next batch and takes the one before in order.
        std::thread::scope(|scope| {
            let (to_check, batches) = std::sync::mpsc::sync_channel::<Vec<(u64, String)>>(1);
            let (checked_tx, checked_rx) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || {
                for batch in batches {
                    let checked: Vec<(Vec<Checked>, Vec<Finding>)> = batch
                        .par_chunks(CHUNK)
                        .map(|chunk| check_chunk(chunk, manifest, keys))
                        .collect();
                    if checked_tx.send(checked).is_err() {
                        break;
                    }
                }
            });
            let mut line = 0u64;
            let mut in_flight = 0usize;
            let mut more = true;
            loop {
                if more {
                    let mut batch: Vec<(u64, String)> = Vec::with_capacity(BATCH);
                    while batch.len() < BATCH {
                        let mut text = String::new();
                        match reader.read_line(&mut text) {
                            Ok(0) => {
                                more = false;
                                break;
                            }
                            Ok(_) => {
                                line += 1;
                                if text.ends_with('\n') {
                                    text.pop();
                                }
                                batch.push((line, text));
                            }
                            Err(e) => {
                                verdict.find(
                                    "entries.jsonl",
                                    Some(line + 1),
                                    "entry_unreadable",
                                    e.to_string(),
                                );
                                more = false;
                                break;
                            }
                        }
                    }
                    if !batch.is_empty() && to_check.send(batch).is_ok() {
                        in_flight += 1;
                        if in_flight < 2 && more {
                            continue;
                        }
                    }
                }
                if in_flight == 0 {
                    break;
                }
                let Ok(checked) = checked_rx.recv() else {
                    break;
                };
                in_flight -= 1;
                for (items, findings) in checked {
                    for f in findings {
                        verdict.find(&f.file, f.line, f.rule, f.message);
                    }
                    for item in items {
                        count += 1;
                        if last.is_some_and(|l| item.index <= l) {
                            verdict.find(
                                "entries.jsonl",
                                Some(item.line),
                                "entry_out_of_order",
                                format!("entry {} after {}", item.index, last.unwrap_or_default()),
                            );
                        } else {
                            proofs.entry(verdict, item.line, item.index, item.leaf);
                        }
                        last = Some(item.index);
                        if !matches!(item.kind, CheckedKind::Neither) {
                            verdict.entries_checked += 1;
                        }
                        match item.kind {
                            CheckedKind::Transition(t, row) => {
                                report.transition(&row);
                                transitions.compare(verdict, &row);
                                seen.follow(item.index, &t);
                            }
                            CheckedKind::Event(row) => {
                                report.event(&row);
                                events.compare(verdict, &row);
                            }
                            CheckedKind::Neither => {}
                        }
                    }
                }
                progress(count, manifest.counts.entries);
            }
            drop(to_check);
        });
    }
    proofs.end(verdict);
    if let Some(reader) = entries {
        if let Some(h) = reader.into_inner().finish() {
            hashes.insert("entries.jsonl", h);
        }
    }
    if let Some(h) = proofs
        .lines
        .take()
        .and_then(|lines| lines.into_inner().finish())
    {
        hashes.insert("proofs.jsonl", h);
    }
    let (t_rows, e_rows) = (transitions.want, events.want);
    if let Some(h) = transitions.end(verdict) {
        hashes.insert("transitions.csv", h);
    }
    if let Some(h) = events.end(verdict) {
        hashes.insert("events.csv", h);
    }
    if manifest.counts.entries != count {
        verdict.find(
            "manifest.json",
            None,
            "count_mismatch",
            format!(
                "the manifest counts {} entries, entries.jsonl holds {count}",
                manifest.counts.entries
            ),
        );
    }
    if manifest.counts.blocks != proofs.blocks {
        verdict.find(
            "manifest.json",
            None,
            "count_mismatch",
            format!(
                "the manifest counts {} blocks, proofs.jsonl proves {}",
                manifest.counts.blocks, proofs.blocks
            ),
        );
    }

    // documents.csv: one row per document with a transition in the range; all of a row checked
    // where the document's ISSUE is in the bundle, its range columns otherwise.
    let mut rows_seen = 0u64;
    if let Some(file) = documents_file {
        let mut reader = csv::Reader::from_reader(file);
        let mut previous: Option<String> = None;
        let mut found = BTreeSet::new();
        for (n, row) in reader.deserialize::<DocumentRow>().enumerate() {
            let line = n as u64 + 2;
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    verdict.find("documents.csv", Some(line), "row_unreadable", e.to_string());
                    continue;
                }
            };
            rows_seen += 1;
            report.document(&row);
            let doc = row
                .reference
                .parse()
                .ok()
                .and_then(|r| RefKey::of(&r).ok())
                .and_then(|key| seen.documents.get(&key).map(|doc| (key, doc)));
            let Some((key, doc)) = doc else {
                verdict.find(
                    "documents.csv",
                    Some(line),
                    "document_not_in_entries",
                    format!("{} has no transition in entries.jsonl", row.reference),
                );
                continue;
            };
            if previous
                .as_deref()
                .is_some_and(|p| p >= row.reference.as_str())
                || !found.insert(key)
            {
                verdict.find(
                    "documents.csv",
                    Some(line),
                    "row_out_of_order",
                    format!(
                        "{}: rows are one per document, in reference order",
                        row.reference
                    ),
                );
            }
            previous = Some(row.reference.clone());
            let range_columns = (
                row.last_index,
                row.last_change.as_str(),
                row.transitions_in_export,
            ) == (
                doc.last_index,
                doc.last_time.to_string().as_str(),
                u64::from(doc.count),
            );
            match &doc.issued {
                Some((state, digest)) => {
                    let possessor = seen.parties.id(state.possessor).map(|p| p.to_string());
                    if !range_columns
                        || as_issued_digest(&row) != *digest
                        || row.state != state.status.as_str()
                        || possessor.as_deref() != Some(row.possessor.as_str())
                    {
                        verdict.find(
                            "documents.csv",
                            Some(line),
                            "row_differs_from_entries",
                            format!(
                                "{}: the row is not what the signed entries say",
                                row.reference
                            ),
                        );
                    }
                    verdict.documents_checked += 1;
                }
                None => {
                    if !range_columns {
                        verdict.find(
                            "documents.csv",
                            Some(line),
                            "row_differs_from_entries",
                            format!(
                                "{}: its last change or count is not what the signed entries say",
                                row.reference
                            ),
                        );
                    }
                    verdict.documents_issued_before += 1;
                }
            }
        }
        for key in seen.documents.keys() {
            if !found.contains(key) {
                verdict.find(
                    "documents.csv",
                    None,
                    "document_missing",
                    format!(
                        "{} has transitions in entries.jsonl and no row",
                        key.as_str()
                    ),
                );
            }
        }
        if let Some(h) = reader.into_inner().finish() {
            hashes.insert("documents.csv", h);
        }
    }
    let counts = &manifest.counts;
    if counts.transitions != t_rows || counts.events != e_rows || counts.documents != rows_seen {
        verdict.find("manifest.json", None, "count_mismatch", format!("the manifest counts {} transitions, {} events, {} documents; the bundle holds {t_rows}, {e_rows}, {rows_seen}", counts.transitions, counts.events, counts.documents));
    }
    (hashes, report)
}

/// `index.html` must be exactly the page the bundle's own entries, `documents.csv` and
/// manifest make, so the human summary says nothing the signed data does not.
fn check_report(verdict: &mut Verdict, bundle: &mut Bundle, manifest: &Manifest, report: &Report) {
    let Some(page) = bundle.bytes("index.html") else {
        return;
    };
    let want = report.render(manifest);
    if page != want.as_bytes() {
        let line = String::from_utf8_lossy(&page)
            .lines()
            .zip(want.lines())
            .position(|(got, want)| got != want)
            .map_or_else(
                || {
                    page.iter()
                        .filter(|b| **b == b'\n')
                        .count()
                        .min(want.lines().count()) as u64
                        + 1
                },
                |n| n as u64 + 1,
            );
        verdict.find(
            "index.html",
            Some(line),
            "report_differs_from_entries",
            "the summary page is not the one the signed entries and documents.csv make".into(),
        );
    }
}

fn check_previous(verdict: &mut Verdict, manifest: &Manifest, previous: &Path) {
    let mut bundle = match Bundle::open(previous) {
        Ok(b) => b,
        Err(e) => {
            verdict.find("(previous)", None, "previous_unreadable", e);
            return;
        }
    };
    let Some(bytes) = bundle.bytes("manifest.json") else {
        verdict.find(
            "(previous)",
            None,
            "previous_unreadable",
            "it has no manifest.json".into(),
        );
        return;
    };
    let Ok(before) = serde_json::from_slice::<Manifest>(&bytes) else {
        verdict.find(
            "(previous)",
            None,
            "previous_unreadable",
            "its manifest.json is not a manifest".into(),
        );
        return;
    };
    match &manifest.previous {
        None => verdict.find(
            "manifest.json",
            None,
            "series_broken",
            "it names no previous export".into(),
        ),
        Some(p) => {
            if p.manifest_sha256 != sha256_hex(&bytes) {
                verdict.find(
                    "manifest.json",
                    None,
                    "series_broken",
                    "the previous export it names is not the one given".into(),
                );
            }
            if before.authority != manifest.authority {
                verdict.find(
                    "manifest.json",
                    None,
                    "series_broken",
                    format!("the previous export is {}'s", before.authority),
                );
            }
            if before.range.to < manifest.range.from {
                verdict.find(
                    "manifest.json",
                    None,
                    "series_gap",
                    format!(
                        "entries {}..{} are in neither export",
                        before.range.to, manifest.range.from
                    ),
                );
            } else if before.range.to > manifest.range.from {
                verdict.find(
                    "manifest.json",
                    None,
                    "series_overlap",
                    format!(
                        "entries {}..{} are in both exports",
                        manifest.range.from, before.range.to
                    ),
                );
            }
        }
    }
}
