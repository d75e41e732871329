//! `lading`: the registry of electronic bills of lading.
//!
//! `lading demo` runs everything on one machine with no set-up; `lading serve` is the
//! production registry; the other commands are the reference client's tools.

// A command-line program: printing to stdout is its job.
#![allow(clippy::print_stdout)]

mod ca;
mod cli;
mod config;
mod consistency;
mod database;
mod demo;
mod parties;
mod reconcile;
mod replica;
mod serve;
mod tls;

use clap::Parser;

/// The registry allocates and frees many small buffers on several threads at once (request
/// bodies, parsed payloads, rows); mimalloc does this far faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    match cli.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lading: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Human-readable logs by default; `LADING_LOG_FORMAT=json` for one JSON object per line.
/// The level comes from `RUST_LOG` (default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LADING_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
