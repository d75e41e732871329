//! A ledger made in memory from the signed samples of `fixtures/` (the registry's and the
//! parties' TEST keys), and customs exports of it written with `lading-export`: for the tests
//! of the bundle's files (its summary page, its data package) without a database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Result;
use lading_domain::checkpoint::Checkpoint;
use lading_domain::event::SignedEvent;
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::membership::Membership;
use lading_domain::merkle::{leaf_hash, merkle_root, CheckpointTree};
use lading_domain::party::PartyRegistryFile;
use lading_domain::transition::SignedTransition;
use lading_domain::{entitled, Digest, Jwk, SigningKey, Timestamp};
use lading_export::{
    write_bundle, Checkpointed, ExportError, ExportRequest, PreviousExport, Source, Verdict,
};

use crate::gen::fixtures_dir;
use crate::samples::Samples;

pub const AUTHORITY: &str = "customs-nl";
/// Small blocks, so that the samples span several.
pub const BLOCK_SIZE: u64 = 8;

/// The samples sequenced as a registry would: every chain, then the events.
#[derive(Debug)]
pub struct Ledger {
    pub entries: Vec<String>,
    pub leaves: Vec<Digest>,
    pub membership: Membership,
}

impl Ledger {
    pub fn new() -> Result<Self> {
        let samples = Samples::load()?;
        let mut entries: Vec<String> = samples
            .chains
            .iter()
            .flat_map(|c| c.transitions.iter().cloned())
            .collect();
        entries.extend(samples.events.iter().cloned());
        let leaves = entries.iter().map(|e| leaf_hash(e.as_bytes())).collect();
        let file = PartyRegistryFile::parse(&std::fs::read_to_string(
            fixtures_dir().join("parties.json"),
        )?)?;
        Ok(Self {
            entries,
            leaves,
            membership: Membership::genesis(&file)?,
        })
    }

    pub fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The registry's checkpoint of the whole ledger, signed.
    pub fn checkpoint(&self) -> Result<Checkpointed> {
        let registry = key("registry")?;
        let size = self.size();
        let roots: Vec<Digest> = self
            .leaves
            .chunks(BLOCK_SIZE as usize)
            .map(merkle_root)
            .collect();
        let tree = CheckpointTree::from_block_roots(BLOCK_SIZE, size, &roots)?;
        let checkpoint = Checkpoint {
            size,
            root: tree.root(),
            time: Timestamp::from_datetime_truncated(chrono::Utc::now()),
            block_size: BLOCK_SIZE as u32,
        };
        Ok(Checkpointed {
            signed: checkpoint.sign(&registry),
            size,
            root: tree.root(),
            tree,
            registry_key: Jwk::from_verifying_key(&registry.verifying_key(), true),
        })
    }

    /// The entries of `range` that `party` is entitled to, as the entitlement rule gives them.
    pub fn entitled(&self, party: &str, range: Range<u64>) -> Vec<(u64, String)> {
        let party = self
            .membership
            .member(&party.parse::<PartyId>().unwrap())
            .unwrap()
            .party
            .clone();
        // Every document's ISSUE and the parties of its chain.
        let mut docs: BTreeMap<String, (lading_domain::TransportDocument, Vec<PartyId>)> =
            BTreeMap::new();
        for e in &self.entries {
            if let Ok(t) = SignedTransition::parse(e) {
                let p = t.payload();
                let entry = docs
                    .entry(p.document_reference().to_string())
                    .or_insert_with(|| (p.transport_document().cloned().unwrap(), Vec::new()));
                entry.1.push(p.actor().clone());
                entry.1.extend(p.recipient().cloned());
            }
        }
        let seen: HashSet<String> = docs
            .iter()
            .filter(|(_, (doc, chain))| entitled(&party, doc, chain))
            .map(|(r, _)| r.clone())
            .collect();
        let containers: HashSet<String> = docs
            .iter()
            .filter(|(r, _)| seen.contains(*r))
            .flat_map(|(_, (doc, _))| {
                doc.container_numbers()
                    .into_iter()
                    .map(|c| c.as_str().to_owned())
            })
            .collect();
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64, e))
            .filter(|(i, _)| range.contains(i))
            .filter(|(_, e)| {
                if let Ok(t) = SignedTransition::parse(e) {
                    seen.contains(t.payload().document_reference().as_str())
                } else if let Ok(ev) = SignedEvent::parse(e) {
                    let ev = ev.event();
                    ev.document_reference()
                        .is_some_and(|r| seen.contains(r.as_str()))
                        || ev
                            .equipment_reference()
                            .is_some_and(|c| containers.contains(c.as_str()))
                } else {
                    false
                }
            })
            .map(|(i, e)| (i, e.clone()))
            .collect()
    }
}

impl Source for &Ledger {
    fn leaves(&mut self, range: Range<u64>) -> Result<Vec<Digest>, ExportError> {
        Ok(self.leaves[range.start as usize..range.end as usize].to_vec())
    }

    fn earlier_transitions(
        &mut self,
        reference: &DocumentReference,
        before: u64,
    ) -> Result<Vec<(u64, SignedTransition)>, ExportError> {
        Ok(self.entries[..before as usize]
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i as u64, SignedTransition::parse(e).ok()?)))
            .filter(|(_, t)| t.payload().document_reference() == reference)
            .collect())
    }
}

pub fn key(who: &str) -> Result<SigningKey> {
    let jwk: Jwk = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join(format!("keys/{who}.jwk")),
    )?)?;
    Ok(jwk.signing_key()?)
}

/// Writes the export of `range` to `dir/name`.
pub fn export(
    ledger: &Ledger,
    dir: &Path,
    name: &str,
    range: Range<u64>,
    previous: Option<PreviousExport>,
) -> Result<(PathBuf, lading_export::Summary)> {
    let signer = key(AUTHORITY)?;
    let checkpoint = ledger.checkpoint()?;
    let request = ExportRequest {
        authority: AUTHORITY.parse()?,
        range: range.clone(),
        signer: &signer,
        previous,
        created_at: chrono::Utc::now(),
        membership: &ledger.membership,
    };
    let path = dir.join(name);
    let entries = ledger.entitled(AUTHORITY, range).into_iter().map(Ok);
    let mut source = ledger;
    let summary = write_bundle(&path, &request, &checkpoint, entries, &mut source)?;
    Ok((path, summary))
}

/// The bundle's files.
pub fn unzip(path: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        out.insert(file.name()?.into_owned(), bytes);
    }
    Ok(out)
}

/// A bundle of `files`, written to `path`.
pub fn rezip(path: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())?;
        zip.write_all(bytes)?;
    }
    zip.finish()?;
    Ok(())
}

pub fn rules(verdict: &Verdict) -> Vec<&'static str> {
    let mut rules: Vec<&'static str> = verdict.findings.iter().map(|f| f.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}

/// The manifest, re-hashed for the files given and signed with `signer`, as an insider would.
pub fn resign(files: &mut BTreeMap<String, Vec<u8>>, signer: &SigningKey) -> Result<()> {
    let mut manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"])?;
    for (name, bytes) in files.iter() {
        if manifest["files"].get(name).is_some() {
            manifest["files"][name] = serde_json::json!(sha256_hex(bytes));
        }
    }
    manifest["exporter"] = serde_json::json!(signer.verifying_key().kid.to_string());
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    files.insert(
        "manifest.jws".into(),
        signer
            .sign_compact(text.as_bytes(), "lading-export-manifest+jws")
            .into_bytes(),
    );
    files.insert("manifest.json".into(), text.into_bytes());
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    lading_domain::Digest::of(bytes).to_hex()
}
