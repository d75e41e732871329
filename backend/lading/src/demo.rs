//! `lading demo`: a complete registry on this machine with nothing configured.
//!
//! It starts a private PostgreSQL in `<data_dir>/postgres`, makes a self-signed certificate in
//! `<data_dir>/tls`, loads the fixture parties (TEST keys) and sample bills of lading, and
//! serves on loopback. Everything it loads is idempotent, so a second run keeps the data.

use anyhow::{Context, Result};
use lading_domain::jws::Jwk;
use lading_registry::{Expect, Registry};
use serde::Deserialize;

use crate::config::Config;
use crate::database::Database;

/// The fixtures, compiled in so the demo runs from any directory.
const PARTIES: &str = include_str!("../../../fixtures/parties.json");
const TOKENS: &str = include_str!("../../../fixtures/tokens.json");
const REGISTRY_KEY: &str = include_str!("../../../fixtures/keys/registry.jwk");
const SAMPLES: &str = include_str!("../../../fixtures/samples.json");

/// Sample chains: each a list of compact JWS in chain order, plus shipment events.
#[derive(Debug, Deserialize)]
struct Samples {
    chains: Vec<SampleChain>,
    #[serde(default)]
    events: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SampleChain {
    reference: String,
    transitions: Vec<String>,
}

pub fn run(mut config: Config) -> Result<()> {
    // The demo is the one configuration that uses the fixtures' TEST keys.
    config.registry.allow_test_keys = true;
    config.database.url = None;
    let data_dir = crate::database::absolute(&config.data_dir)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let (cert, key) = crate::tls::ensure_self_signed(&data_dir.join("tls"))?;
    let tls = crate::tls::server_config(&cert, &key, None)?;
    let db = Database::embedded(&config, crate::database::EMBEDDED_DATABASE)?;

    let jwk: Jwk = serde_json::from_str(REGISTRY_KEY).context("fixtures/keys/registry.jwk")?;
    let signer = jwk.signing_key().context("fixtures/keys/registry.jwk")?;
    let public = jwk.to_public();
    std::fs::write(
        data_dir.join("registry.pub.jwk"),
        serde_json::to_string_pretty(&public)?,
    )?;

    let store = lading_store::Store::connect(&db.url, 2)?;
    store.migrate()?;
    let parties: crate::parties::PartyFile =
        serde_json::from_str(PARTIES).context("fixtures/parties.json")?;
    let tokens: crate::parties::Tokens =
        serde_json::from_str(TOKENS).context("fixtures/tokens.json")?;
    crate::parties::import(&store, &parties, &tokens, true)?;
    drop(store);

    let samples: Samples = serde_json::from_str(SAMPLES).context("fixtures/samples.json")?;
    let first_reference = samples.chains.first().map(|c| c.reference.clone());
    let loader = samples_loader(samples);
    let result = crate::serve::run(
        &config,
        &db,
        signer,
        public,
        tls,
        |base| {
            println!("Lading demo registry: {base}");
            println!("  data:            {}", data_dir.display());
            println!("  TLS certificate: {}", cert.display());
            println!(
                "  registry key:    {}",
                data_dir.join("registry.pub.jwk").display()
            );
            println!();
            println!("Try it (tokens are the TEST tokens in fixtures/tokens.json):");
            println!("  curl --cacert {} {base}/v1/checkpoint", cert.display());
            // The carrier issued every sample, so its token reads them all.
            let carrier = tokens
                .get_key_value("carrier-oceanic")
                .or_else(|| tokens.iter().next());
            if let (Some(reference), Some((party, token))) = (&first_reference, carrier) {
                println!(
                "  curl --cacert {} -H 'Authorization: Bearer {token}' {base}/v1/documents/{}   # as {party}",
                cert.display(),
                reference
            );
                println!(
                "  curl --cacert {} -H 'Authorization: Bearer {token}' {base}/v1/documents/{}/transitions",
                cert.display(),
                reference
            );
            }
            println!(
                "  curl --cacert {} '{base}/v1/entries/0/proof'",
                cert.display()
            );
            println!();
            println!(
                "Press Ctrl-C to stop; the data stays in {} for the next run.",
                data_dir.display()
            );
            Ok(())
        },
        Some(&*loader),
    );
    let closed = db.close();
    result.and(closed)
}

fn samples_loader(samples: Samples) -> Box<crate::serve::Preload> {
    Box::new(move |registry: &Registry| {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let mut added = 0;
        for chain in &samples.chains {
            for outcome in
                rt.block_on(registry.submit(chain.transitions.clone(), Expect::Transition))
            {
                match outcome {
                    Ok(r) if !r.duplicate => added += 1,
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("sample chain {} refused: {e}", chain.reference),
                }
            }
        }
        for outcome in rt.block_on(registry.submit(samples.events.clone(), Expect::Event)) {
            match outcome {
                Ok(r) if !r.duplicate => added += 1,
                Ok(_) => {}
                Err(e) => anyhow::bail!("sample event refused: {e}"),
            }
        }
        tracing::info!(added, "sample bills of lading loaded");
        Ok(())
    })
}
