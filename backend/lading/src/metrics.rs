//! `[metrics]`: the Prometheus endpoint of `lading serve` and `lading replica` (crate
//! `lading-metrics`), on a listener of its own, and what each samples when it is scraped: the
//! registry its queue, latest checkpoint, ledger size, pool and replicas; a node its lag behind
//! the registry, incidents, outbox and pool. Sampling runs on a blocking thread (it asks the
//! database), once a scrape, never on a request's path.

use std::sync::Arc;

use anyhow::{Context, Result};
use lading_metrics::{Endpoint, Metrics, OutboxLabels, PartyLabels, Role, Sampler};
use lading_registry::Registry;
use lading_replica::node::Node;

use crate::config::Config;

/// The registry's metrics listener, when `[metrics] listen` is set, serving HTTPS with `tls`
/// (the API's: the registry's own certificate; a client certificate is not asked for).
pub fn registry(
    config: &Config,
    registry: &Registry,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Option<actix_web::dev::Server>> {
    let registry = registry.clone();
    let parties: Vec<String> = config
        .reconcile
        .replicas
        .iter()
        .map(|t| t.party.to_string())
        .collect();
    let sampler: Sampler = Arc::new(move |m: &Metrics| sample_registry(m, &registry, &parties));
    serve(config, Role::Registry, sampler, tls)
}

/// A node's metrics listener, when `[metrics] listen` is set (HTTPS with the node's own
/// certificate).
pub fn node(
    config: &Config,
    node: &Node,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Option<actix_web::dev::Server>> {
    let node = node.clone();
    let sampler: Sampler = Arc::new(move |m: &Metrics| sample_node(m, &node));
    serve(config, Role::Node, sampler, tls)
}

fn serve(
    config: &Config,
    role: Role,
    sampler: Sampler,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Option<actix_web::dev::Server>> {
    let Some((bind, token)) = config.metrics.endpoint()? else {
        return Ok(None);
    };
    let endpoint = Endpoint::new(role, &token, sampler).context("metrics.token_file")?;
    let (server, addr) =
        lading_metrics::https_server(endpoint, bind, lading_api::take_inherited(bind), tls)
            .with_context(|| format!("cannot listen on {bind} (metrics)"))?;
    tracing::info!(%addr, "metrics listening");
    // One machine-readable line on stdout, for supervisors and tests.
    println!("metrics https://{addr}/metrics");
    Ok(Some(server))
}

fn seconds_since(t: chrono::DateTime<chrono::Utc>) -> f64 {
    (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0
}

fn as_gauge(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn sample_registry(m: &Metrics, registry: &Registry, parties: &[String]) -> Result<(), String> {
    let queue = registry.queue();
    m.queue_depth.set(as_gauge(queue.held));
    m.queue_waiting.set(as_gauge(queue.waiting));
    m.sequencing.set(i64::from(!registry.is_standing_by()));
    if let Some(standby) = registry.store().standby() {
        let counts = standby.counts();
        m.standby_reads(counts.served, counts.fell_back);
    }
    if let Some(latest) = registry.latest_checkpoint() {
        m.checkpoint_age_seconds
            .set(seconds_since(latest.checkpoint.time.as_datetime()));
        m.checkpoint_size.set(as_gauge(latest.checkpoint.size));
    }
    // Before this scrape takes a connection of its own.
    let (connections, idle, max) = registry.store().pool_state();
    m.pool(connections, idle, max);
    let mut conn = registry.store().conn().map_err(|e| e.to_string())?;
    let size = lading_store::ledger::ledger_size(&mut conn).map_err(|e| e.to_string())?;
    m.ledger_entries.set(as_gauge(size));
    if parties.is_empty() {
        return Ok(());
    }
    let open =
        lading_store::incidents::count_open_by_party(&mut conn).map_err(|e| e.to_string())?;
    for party in parties {
        let labels = PartyLabels {
            party: party.clone(),
        };
        let incidents = open
            .iter()
            .find(|(p, _)| p.as_deref() == Some(party.as_str()))
            .map_or(0, |(_, n)| *n);
        m.replica_open_incidents
            .get_or_create(&labels)
            .set(incidents);
        let last =
            lading_store::reconciliations::last(&mut conn, party).map_err(|e| e.to_string())?;
        if let Some(last) = last {
            m.replica_reconciled_age_seconds
                .get_or_create(&labels)
                .set(seconds_since(last.finished_at));
            // Unknown when the replica did not answer: the series keeps its last value.
            if let Some(replica_size) = last.replica_size {
                m.replica_lag_entries
                    .get_or_create(&labels)
                    .set((last.registry_size - replica_size).max(0));
            }
        }
    }
    Ok(())
}

fn sample_node(m: &Metrics, node: &Node) -> Result<(), String> {
    let (connections, idle, max) = node.store().pool_state();
    m.pool(connections, idle, max);
    let status = node.status().map_err(|e| e.to_string())?;
    m.ledger_entries.set(as_gauge(status.size));
    m.node_registry_entries.set(as_gauge(status.registry_size));
    m.node_lag_entries.set(as_gauge(status.lag));
    if let Some(heard) = status.registry_contact.last_heard {
        m.node_last_followed_seconds.set(seconds_since(heard));
    }
    m.node_open_incidents
        .set(as_gauge(status.open_incidents.len()));
    for (state, n) in [
        ("pending", status.submissions.pending),
        ("parked", status.submissions.parked),
    ] {
        m.outbox_depth.get_or_create(&OutboxLabels { state }).set(n);
    }
    Ok(())
}
