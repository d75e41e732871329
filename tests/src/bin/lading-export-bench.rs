//! `lading-export-bench`: the customs export writer on a synthetic ledger, for BENCHMARKS.md.
//!
//! `generate --entries N --dir D` signs N transitions with the fixture parties' TEST keys (the
//! load generator's documents, interleaved) into `D/ledger.txt` (one compact JWS a line) and
//! their leaf hashes into `D/leaves.bin`. `export --dir D` then writes the bundle of every
//! entry, proved against a checkpoint of the whole ledger signed with the registry's TEST key,
//! reading both files as it goes, and prints the time and the entries per second; run it under
//! `/usr/bin/time -f '%e s, %M KB'` for its peak resident memory. `lading verify-bundle
//! D/bundle.zip` is the verifier's side.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lading_domain::checkpoint::Checkpoint;
use lading_domain::ids::DocumentReference;
use lading_domain::membership::Membership;
use lading_domain::merkle::{leaf_hash, merkle_root, CheckpointTree};
use lading_domain::party::PartyRegistryFile;
use lading_domain::transition::SignedTransition;
use lading_domain::{Digest, Jwk, Timestamp};
use lading_e2e::gen::{fixtures_dir, FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_export::{write_bundle, Checkpointed, ExportError, ExportRequest, Source};

/// The allocator of the `lading` binary, so the writer runs here as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signs the synthetic ledger.
    Generate {
        #[arg(long)]
        entries: u64,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Writes the bundle of every entry of the ledger in `dir`.
    Export {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1024)]
        block_size: u64,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate { entries, dir } => generate(entries, &dir),
        Command::Export { dir, block_size } => export(&dir, block_size),
    }
}

fn generate(entries: u64, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let parties = FixtureParties::load()?;
    // Four transitions per document: its ISSUE and three after it.
    let mut generator =
        LedgerGenerator::new(&parties, GeneratorConfig::new(entries.div_ceil(4), 3, 7))?;
    let mut ledger = BufWriter::new(File::create(dir.join("ledger.txt"))?);
    let mut leaves = BufWriter::new(File::create(dir.join("leaves.bin"))?);
    let started = Instant::now();
    let mut n = 0u64;
    while n < entries {
        let Some(t) = generator.next_transition()? else {
            break;
        };
        ledger.write_all(t.compact.as_bytes())?;
        ledger.write_all(b"\n")?;
        leaves.write_all(&leaf_hash(t.compact.as_bytes()).0)?;
        n += 1;
    }
    ledger.flush()?;
    leaves.flush()?;
    eprintln!(
        "lading-export-bench: signed {n} transitions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Leaves read from `leaves.bin`; earlier transitions never asked (the export starts at 0).
struct Files {
    leaves: File,
}

impl Source for Files {
    fn leaves(&mut self, range: Range<u64>) -> Result<Vec<Digest>, ExportError> {
        self.leaves.seek(SeekFrom::Start(range.start * 32))?;
        let mut bytes = vec![0u8; usize::try_from((range.end - range.start) * 32).unwrap_or(0)];
        self.leaves.read_exact(&mut bytes)?;
        Ok(bytes
            .chunks_exact(32)
            .map(|c| {
                let mut d = [0u8; 32];
                d.copy_from_slice(c);
                Digest(d)
            })
            .collect())
    }

    fn earlier_transitions(
        &mut self,
        _: &DocumentReference,
        _: u64,
    ) -> Result<Vec<(u64, SignedTransition)>, ExportError> {
        Ok(Vec::new())
    }
}

fn export(dir: &std::path::Path, block_size: u64) -> Result<()> {
    let parties = FixtureParties::load()?;
    let registry = parties.registry_signer();
    // The block roots, a block at a time.
    let mut leaves = BufReader::new(File::open(dir.join("leaves.bin"))?);
    let mut roots = Vec::new();
    let mut size = 0u64;
    loop {
        let mut block = vec![0u8; usize::try_from(block_size * 32)?];
        let mut got = 0;
        while got < block.len() {
            let n = leaves.read(&mut block[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 {
            break;
        }
        let digests: Vec<Digest> = block[..got]
            .chunks_exact(32)
            .map(|c| Digest(c.try_into().unwrap_or([0; 32])))
            .collect();
        size += digests.len() as u64;
        roots.push(merkle_root(&digests));
        if got < block.len() {
            break;
        }
    }
    let tree = CheckpointTree::from_block_roots(block_size, size, &roots)?;
    let checkpoint = Checkpoint {
        size,
        root: tree.root(),
        time: Timestamp::from_datetime_truncated(chrono::Utc::now()),
        block_size: u32::try_from(block_size)?,
    };
    let checkpointed = Checkpointed {
        signed: checkpoint.sign(registry),
        size,
        root: tree.root(),
        tree,
        registry_key: Jwk::from_verifying_key(&registry.verifying_key(), true),
    };
    let file = PartyRegistryFile::parse(&std::fs::read_to_string(
        fixtures_dir().join("parties.json"),
    )?)?;
    let membership = Membership::genesis(&file)?;
    let signer = parties.signer("customs-nl")?;
    let request = ExportRequest {
        authority: "customs-nl".parse()?,
        range: 0..size,
        signer,
        previous: None,
        created_at: chrono::Utc::now(),
        membership: &membership,
    };
    let ledger = BufReader::with_capacity(1 << 20, File::open(dir.join("ledger.txt"))?);
    let entries = ledger
        .lines()
        .enumerate()
        .map(|(i, line)| Ok((i as u64, line?)));
    let mut source = Files {
        leaves: File::open(dir.join("leaves.bin"))?,
    };
    let out = dir.join("bundle.zip");
    let _ = std::fs::remove_file(&out);
    let started = Instant::now();
    let summary = write_bundle(&out, &request, &checkpointed, entries, &mut source)
        .context("writing the bundle")?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&out)?.len();
    eprintln!(
        "lading-export-bench: {} entries ({} documents) exported with proofs in {seconds:.2} s = {:.0} entries/s; bundle {:.1} MB",
        summary.manifest.counts.entries,
        summary.manifest.counts.documents,
        summary.manifest.counts.entries as f64 / seconds,
        bytes as f64 / 1e6
    );
    Ok(())
}
