//! `lading reconcile`: reconcile replicas now, through the running registry
//! (`POST /v1/replicas/{party}/reconcile`), as its operator — with the registry's own consortium
//! certificate (`[reconcile] cert`/`key`), which may reconcile every replica.

use anyhow::{bail, Context, Result};
use lading_registry::reconcile::{Outcome, Report};

use crate::config::Config;

pub fn run(config: &Config, registry: Option<&str>, party: Option<&str>) -> Result<()> {
    let (ca, cert, key) = config.reconcile_material()?;
    // Only the registry itself may answer: its certificate names `urn:lading:registry`.
    let tls =
        lading_pki::client_config_for(&ca, &cert, &key, lading_pki::ServerIdentity::Registry)?;
    let http = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(std::sync::Arc::unwrap_or_clone(tls))
        .timeout(std::time::Duration::from_secs(600))
        .build()?;
    // A registry bound to every address is reached on loopback.
    let bind = config.server.bind;
    let host = if bind.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bind.port())
    } else {
        bind
    };
    let base = registry
        .map(str::to_owned)
        .unwrap_or_else(|| format!("https://{host}"));
    let base = base.trim_end_matches('/');
    let parties: Vec<String> = match party {
        Some(party) => vec![party.to_owned()],
        None => {
            let listed: serde_json::Value = http
                .get(format!("{base}/v1/replicas"))
                .send()
                .and_then(reqwest::blocking::Response::error_for_status)
                .with_context(|| format!("cannot list the replicas of {base}"))?
                .json()?;
            listed["replicas"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["party"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    if parties.is_empty() {
        bail!("{base} reconciles no replicas (see [reconcile] replicas)");
    }
    let mut troubled = 0;
    for party in parties {
        let response = http
            .post(format!("{base}/v1/replicas/{party}/reconcile"))
            .send()
            .with_context(|| format!("cannot reach {base}"))?;
        if !response.status().is_success() {
            bail!(
                "{base} refused to reconcile {party}: {} {}",
                response.status(),
                response.text().unwrap_or_default()
            );
        }
        let report: Report = response.json()?;
        println!(
            "{party}: {} (registry {} entries, replica {}; {} lost, {} altered, {} unsigned, {} ahead; {} round trips, {} bytes of hashes, {} ms)",
            report.outcome.as_str(),
            report.registry_size,
            report.replica_size.map_or("?".into(), |s| s.to_string()),
            report.lost.len(),
            report.altered.len(),
            report.unsigned,
            report.ahead,
            report.round_trips,
            report.hash_bytes,
            report.millis,
        );
        if let Some(error) = &report.error {
            println!("  {error}");
        }
        if matches!(report.outcome, Outcome::Unreachable | Outcome::Failed) {
            troubled += 1;
        }
    }
    if troubled > 0 {
        bail!("{troubled} replica(s) could not be reconciled");
    }
    Ok(())
}
