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
use lading_domain::jws::{verify_batch, CompactJws};
use lading_domain::merkle::{leaf_hash, verify_inclusion, InclusionProof};
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::{Digest, Jwk, VerifyingKey};

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

    fn lines(&mut self, name: &str) -> Option<Vec<String>> {
        let file = self.archive.by_name(name).ok()?;
        BufReader::new(file).lines().collect::<Result<_, _>>().ok()
    }
}

/// Verifies the bundle at `path`; `previous`, the export before it in its series, when given.
pub fn verify_bundle(path: &Path, previous: Option<&Path>) -> Verdict {
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

    // Every other file is the one the manifest hashed.
    for (name, want) in &manifest.files {
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
    let entries = check_entries(&mut verdict, &mut bundle, &manifest, &keys);
    if let Some(root) = checkpoint {
        check_proofs(&mut verdict, &mut bundle, &manifest, &entries, root);
    }
    check_tables(&mut verdict, &mut bundle, &manifest, &entries);

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

/// An entry as read from `entries.jsonl`.
struct Read_ {
    index: u64,
    leaf: Digest,
    signed: String,
}

fn check_entries(
    verdict: &mut Verdict,
    bundle: &mut Bundle,
    manifest: &Manifest,
    keys: &HashMap<String, (VerifyingKey, crate::format::KeyLine)>,
) -> Vec<Read_> {
    let Some(lines) = bundle.lines("entries.jsonl") else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(lines.len());
    let mut last: Option<u64> = None;
    // Signatures checked in batches.
    let mut batch: Vec<(u64, VerifyingKey, CompactJws)> = Vec::new();
    let flush = |verdict: &mut Verdict, batch: &mut Vec<(u64, VerifyingKey, CompactJws)>| {
        let items: Vec<(&VerifyingKey, &CompactJws)> =
            batch.iter().map(|(_, k, j)| (k, j)).collect();
        if !verify_batch(&items) {
            for (line, key, jws) in batch.iter() {
                if key.verify(jws).is_err() {
                    verdict.find(
                        "entries.jsonl",
                        Some(*line),
                        "entry_signature_invalid",
                        format!("the signature does not verify with {}", key.kid),
                    );
                }
            }
        }
        batch.clear();
    };
    for (n, text) in lines.iter().enumerate() {
        let line = n as u64 + 1;
        let entry: EntryLine = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                verdict.find(
                    "entries.jsonl",
                    Some(line),
                    "entry_unreadable",
                    e.to_string(),
                );
                continue;
            }
        };
        if leaf_hash(entry.signed.as_bytes()) != entry.leaf_hash {
            verdict.find(
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
            verdict.find(
                "entries.jsonl",
                Some(line),
                "entry_outside_range",
                format!(
                    "entry {} is outside the range {}..{}",
                    entry.index, manifest.range.from, manifest.range.to
                ),
            );
        }
        if last.is_some_and(|l| entry.index <= l) {
            verdict.find(
                "entries.jsonl",
                Some(line),
                "entry_out_of_order",
                format!("entry {} after {}", entry.index, last.unwrap_or_default()),
            );
        }
        last = Some(entry.index);
        // Who signed it, and could that key sign at this index?
        let (jws, actor) = match (
            SignedTransition::parse(&entry.signed),
            SignedEvent::parse(&entry.signed),
        ) {
            (Ok(t), _) => (t.jws().clone(), t.payload().actor().to_string()),
            (_, Ok(e)) => (e.jws().clone(), e.event().actor().to_string()),
            (Err(e), Err(_)) => {
                verdict.find(
                    "entries.jsonl",
                    Some(line),
                    "entry_not_a_transition_or_event",
                    format!("entry {}: {e}", entry.index),
                );
                continue;
            }
        };
        match keys.get(jws.kid().as_str()) {
            None => verdict.find(
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
                    verdict.find(
                        "entries.jsonl",
                        Some(line),
                        "entry_key_not_the_actors",
                        format!(
                            "entry {} names {actor} as its actor and is signed with a key of {}",
                            entry.index, record.owner
                        ),
                    );
                } else if !record.valid_at(entry.index) {
                    verdict.find(
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
                if batch.len() >= 256 {
                    flush(verdict, &mut batch);
                }
            }
        }
        verdict.entries_checked += 1;
        out.push(Read_ {
            index: entry.index,
            leaf: entry.leaf_hash,
            signed: entry.signed,
        });
    }
    flush(verdict, &mut batch);
    if manifest.counts.entries != out.len() as u64 {
        verdict.find(
            "manifest.json",
            None,
            "count_mismatch",
            format!(
                "the manifest counts {} entries, entries.jsonl holds {}",
                manifest.counts.entries,
                out.len()
            ),
        );
    }
    out
}

fn check_proofs(
    verdict: &mut Verdict,
    bundle: &mut Bundle,
    manifest: &Manifest,
    entries: &[Read_],
    root: Digest,
) {
    let Some(lines) = bundle.lines("proofs.jsonl") else {
        return;
    };
    let block_size = manifest.checkpoint.block_size;
    let Ok(block_size_u32) = u32::try_from(block_size) else {
        verdict.find(
            "manifest.json",
            None,
            "block_size_invalid",
            format!("block size {block_size}"),
        );
        return;
    };
    let mut block: Option<(u64, Vec<Digest>)> = None;
    let mut proved = 0usize;
    for (n, text) in lines.iter().enumerate() {
        let line = n as u64 + 1;
        let proof: ProofLine = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                verdict.find(
                    "proofs.jsonl",
                    Some(line),
                    "proof_unreadable",
                    e.to_string(),
                );
                continue;
            }
        };
        match proof {
            ProofLine::Block { block: b, path, .. } => block = Some((b, path)),
            ProofLine::Entry {
                index,
                leaf_hash,
                path,
            } => {
                let Some(entry) = entries.get(proved) else {
                    verdict.find(
                        "proofs.jsonl",
                        Some(line),
                        "proof_without_entry",
                        format!("a proof of entry {index}, which entries.jsonl does not hold"),
                    );
                    continue;
                };
                proved += 1;
                if entry.index != index || entry.leaf != leaf_hash {
                    verdict.find(
                        "proofs.jsonl",
                        Some(line),
                        "proof_of_another_entry",
                        format!(
                            "proves entry {index}, entries.jsonl's next is {}",
                            entry.index
                        ),
                    );
                    continue;
                }
                let Some((b, block_path)) =
                    block.as_ref().filter(|(b, _)| *b == index / block_size)
                else {
                    verdict.find(
                        "proofs.jsonl",
                        Some(line),
                        "proof_without_block",
                        format!("entry {index} comes before its block's line"),
                    );
                    continue;
                };
                let _ = b;
                let proof = InclusionProof {
                    index,
                    size: manifest.checkpoint.size,
                    block_size: block_size_u32,
                    leaf_path: path,
                    block_path: block_path.clone(),
                };
                if let Err(e) = verify_inclusion(&proof, entry.leaf, root) {
                    verdict.find(
                        "proofs.jsonl",
                        Some(line),
                        "proof_invalid",
                        format!("entry {index} is not proved on the ledger by its proof: {e}"),
                    );
                }
            }
        }
    }
    if proved < entries.len() {
        verdict.find(
            "proofs.jsonl",
            None,
            "entry_without_proof",
            format!("{} entries have no proof", entries.len() - proved),
        );
    }
}

/// A document as the bundle's transitions show it: as issued (when its ISSUE is in the
/// bundle) with its state since, its last transition, and how many it has in the bundle.
struct Seen {
    issued: Option<(
        lading_domain::TransportDocument,
        lading_domain::DocumentState,
        (u64, String),
    )>,
    last: (u64, String),
    count: u64,
}

fn check_tables(
    verdict: &mut Verdict,
    bundle: &mut Bundle,
    manifest: &Manifest,
    entries: &[Read_],
) {
    let mut transitions = Vec::new();
    let mut events = Vec::new();
    // index.html, made again from the signed entries and documents.csv.
    let mut report = Report::default();
    // Documents followed through the bundle's own transitions.
    let mut documents: BTreeMap<String, Seen> = BTreeMap::new();
    for entry in entries {
        if let Ok(t) = SignedTransition::parse(&entry.signed) {
            let row = TransitionRow::of(entry.index, &t, &entry.leaf);
            report.transition(&row);
            transitions.push(row);
            let p = t.payload();
            let reference = p.document_reference().to_string();
            let time = p.time().to_string();
            let doc = documents.entry(reference).or_insert(Seen {
                issued: None,
                last: (entry.index, time.clone()),
                count: 0,
            });
            doc.count += 1;
            doc.last = (entry.index, time.clone());
            if p.action() == Action::Issue {
                if let (Some(d), Ok(state)) = (
                    p.transport_document(),
                    lading_domain::DocumentState::issue(p, t.checksum()),
                ) {
                    doc.issued = Some((d.clone(), state, (entry.index, time)));
                }
            } else if let Some((_, state, _)) = doc.issued.as_mut() {
                if let Ok(next) = state.apply(p, t.checksum()) {
                    *state = next;
                }
            }
        } else if let Ok(e) = SignedEvent::parse(&entry.signed) {
            let row = EventRow::of(entry.index, &e, &entry.leaf);
            report.event(&row);
            events.push(row);
        }
    }
    compare_rows(verdict, bundle, "transitions.csv", &transitions);
    compare_rows(verdict, bundle, "events.csv", &events);

    // documents.csv: one row per document with a transition in the range; all of a row checked
    // where the document's ISSUE is in the bundle, its range columns otherwise.
    let Some(file) = bundle.archive.by_name("documents.csv").ok() else {
        return;
    };
    let mut reader = csv::Reader::from_reader(file);
    let mut seen = BTreeSet::new();
    for (n, row) in reader.deserialize::<DocumentRow>().enumerate() {
        let line = n as u64 + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                verdict.find("documents.csv", Some(line), "row_unreadable", e.to_string());
                continue;
            }
        };
        seen.insert(row.reference.clone());
        report.document(&row);
        let Some(Seen {
            issued,
            last,
            count,
        }) = documents.get(&row.reference)
        else {
            verdict.find(
                "documents.csv",
                Some(line),
                "document_not_in_entries",
                format!("{} has no transition in entries.jsonl", row.reference),
            );
            continue;
        };
        match issued {
            Some((doc, state, issued_at)) => {
                let want = DocumentRow::of(doc, state, issued_at.clone(), last.clone(), *count);
                if want != row {
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
                if (
                    row.last_index,
                    row.last_change.clone(),
                    row.transitions_in_export,
                ) != (last.0, last.1.clone(), *count)
                {
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
    for reference in documents.keys() {
        if !seen.contains(reference) {
            verdict.find(
                "documents.csv",
                None,
                "document_missing",
                format!("{reference} has transitions in entries.jsonl and no row"),
            );
        }
    }
    drop(reader);
    check_report(verdict, bundle, manifest, &report);
    let counts = &manifest.counts;
    if counts.transitions != transitions.len() as u64
        || counts.events != events.len() as u64
        || counts.documents != seen.len() as u64
    {
        verdict.find("manifest.json", None, "count_mismatch", format!("the manifest counts {} transitions, {} events, {} documents; the bundle holds {}, {}, {}", counts.transitions, counts.events, counts.documents, transitions.len(), events.len(), seen.len()));
    }
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

/// Compares a table with the rows the signed entries make, line by line.
fn compare_rows<T: serde::de::DeserializeOwned + PartialEq>(
    verdict: &mut Verdict,
    bundle: &mut Bundle,
    name: &str,
    want: &[T],
) {
    let Some(file) = bundle.archive.by_name(name).ok() else {
        return;
    };
    let mut reader = csv::Reader::from_reader(file);
    let mut count = 0usize;
    for (n, row) in reader.deserialize::<T>().enumerate() {
        let line = n as u64 + 2;
        count += 1;
        match row {
            Ok(row) => {
                if want.get(n) != Some(&row) {
                    verdict.find(
                        name,
                        Some(line),
                        "row_differs_from_entries",
                        "the row is not what the signed entry says".into(),
                    );
                }
            }
            Err(e) => verdict.find(name, Some(line), "row_unreadable", e.to_string()),
        }
    }
    if count != want.len() {
        verdict.find(
            name,
            None,
            "row_count_mismatch",
            format!("{count} rows for {} signed entries", want.len()),
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
