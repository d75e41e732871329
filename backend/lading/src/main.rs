//! `lading`: the registry of electronic bills of lading.
//!
//! `lading demo` runs everything on one machine with no set-up; `lading serve` is the
//! production registry; the other commands are the reference client's tools.

// A command-line program: printing to stdout is its job.
#![allow(clippy::print_stdout)]

mod ca;
mod cli;
mod cluster;
mod config;
mod consistency;
mod crosscheck;
mod custody;
mod database;
mod demo;
mod export;
mod metrics;
mod parties;
mod party;
mod reconcile;
mod replica;
mod serve;
mod submitter;
mod tls;
mod token;
mod user;

use clap::Parser;

/// The registry allocates and frees many small buffers on several threads at once (request
/// bodies, parsed payloads, rows); mimalloc does this far faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Sockets handed over by the process that started us (LISTEN_FDS, as systemd's socket
    // activation passes them), read before any thread starts since it clears the variables.
    let mut fds = listenfd::ListenFd::from_env();
    let inherited = (0..fds.len())
        .filter_map(|i| fds.take_tcp_listener(i).ok().flatten())
        .collect();
    lading_api::inherit_listeners(inherited);
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
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{filter::filter_fn, fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let not_client_noise = filter_fn(|meta| !is_client_framing_noise(meta));
    // Colours only on a terminal: a log file or journald gets plain text.
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry();
    if std::env::var("LADING_LOG_FORMAT").as_deref() == Ok("json") {
        registry
            .with(
                layer
                    .json()
                    .with_filter(filter)
                    .with_filter(not_client_noise),
            )
            .init();
    } else {
        registry
            .with(layer.with_filter(filter).with_filter(not_client_noise))
            .init();
    }
}

/// A request that breaks HTTP/1 framing (a bad or repeated `Content-Length`, one beside
/// `Transfer-Encoding`, too many headers, a 100 KB URL) never reaches a handler: actix-http
/// answers it with a bare 400 or 431 and logs the parse error at TRACE, then logs the closed
/// connection again at ERROR. That is the client's mistake, not the server's, and a client
/// must not be able to fill the error log with it, so the HTTP/1 connection layer's ERROR
/// lines are dropped (its TRACE lines, `RUST_LOG=actix_http=trace`, still say what was
/// wrong). Every response body of ours is buffered, so none of those lines can be about a
/// failure of the registry's own.
fn is_client_framing_noise(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR
        && meta
            .module_path()
            .is_some_and(|m| m.starts_with("actix_http::h1"))
}
