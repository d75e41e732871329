//! `lading-fixtures`: creates the TEST keys and tokens, rewrites the sample files, and writes
//! large generated ledgers (one compact JWS per line).

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use lading_e2e::gen::{
    build_samples, ensure_keys, fixtures_dir, FixtureParties, GeneratorConfig, LedgerGenerator,
};

#[derive(Debug, Parser)]
#[command(
    name = "lading-fixtures",
    about = "Fixtures for Lading: TEST keys, samples, generated ledgers"
)]
struct Cli {
    /// The fixtures directory (default: the repository's fixtures/).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create missing TEST keys and tokens (existing ones are kept) and rewrite parties.json.
    Keys,
    /// Rewrite documents/, samples.json and payloads/ from the committed keys.
    Samples,
    /// Write a generated ledger: one signed transition (compact JWS) per line.
    Ledger {
        #[arg(long)]
        documents: u64,
        /// Transitions after each document's ISSUE.
        #[arg(long, default_value_t = 4)]
        transfers: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Documents open at the same time.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// Prefix of the generated document references.
        #[arg(long, default_value = "GEN")]
        prefix: String,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = cli.dir.unwrap_or_else(fixtures_dir);
    match cli.command {
        Command::Keys => {
            let report = ensure_keys(&dir)?;
            eprintln!(
                "keys created: {:?}; tokens created: {:?}; wrote {}",
                report.created_keys,
                report.created_tokens,
                dir.join("parties.json").display()
            );
        }
        Command::Samples => {
            let parties = FixtureParties::load_from(&dir)?;
            let samples = build_samples(&parties)?;
            samples.write(&dir)?;
            eprintln!(
                "wrote {} documents, {} chains, {} events, 3 payloads under {}",
                samples.documents.len(),
                samples.chains.len(),
                samples.events.len(),
                dir.display()
            );
        }
        Command::Ledger {
            documents,
            transfers,
            seed,
            in_flight,
            prefix,
            out,
        } => {
            let parties = FixtureParties::load_from(&dir)?;
            let mut config = GeneratorConfig::new(documents, transfers, seed);
            config.in_flight = in_flight;
            config.reference_prefix = prefix;
            let total = config.total();
            let mut generator = LedgerGenerator::new(&parties, config)?;
            let file = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut writer = BufWriter::with_capacity(1 << 20, file);
            let started = Instant::now();
            let mut last_report = started;
            let mut written = 0u64;
            for jws in generator.stream() {
                writer.write_all(jws?.as_bytes())?;
                writer.write_all(b"\n")?;
                written += 1;
                if last_report.elapsed() >= Duration::from_millis(500) {
                    last_report = Instant::now();
                    progress(written, total, started);
                }
            }
            writer.flush()?;
            progress(written, total, started);
            eprintln!("\nwrote {written} transitions to {}", out.display());
        }
    }
    Ok(())
}

fn progress(done: u64, total: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    eprint!(
        "\r{done}/{total} ({percent:5.1}%)  {:.0} transitions/s  ",
        done as f64 / secs
    );
}
