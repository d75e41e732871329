//! Prometheus metrics of a Lading process.
//!
//! One process-wide metric set ([`global`]): the write path and the HTTP faces record into it
//! where things happen (a submission answered, a batch made durable, a request answered), and
//! what is a state rather than an event — the sequencer's queue, the age of the latest
//! checkpoint, the database pool, the replicas' lag — is sampled when Prometheus scrapes, by
//! a [`Sampler`] the binary gives the endpoint, never on a request's path.
//!
//! The endpoint ([`https_server`]) is a listener of its own (`[metrics] listen`), not a route
//! of a public face: parties reach the API, the monitoring system reaches this. It serves
//! `GET /metrics` as OpenMetrics text over HTTPS with the process's own certificate, to
//! requests bearing the configured token (`Authorization: Bearer`, compared in constant time);
//! anything else is `401` problem+json. Every metric is named `lading_…`; the list is in the
//! README ("Metrics") and [`Metrics`].
//!
//! This crate depends on none of Lading's own: the registry, the faces and the binary depend
//! on it (it sits beside `lading-domain`, under everything that records).

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

/// The media type of the answer (OpenMetrics 1.0 text, which Prometheus asks for first).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmissionLabels {
    /// `accepted` (sequenced: a new entry), `duplicate` (these exact bytes were on the
    /// ledger already) or `refused`.
    pub outcome: &'static str,
    /// The problem code of a refusal (`urn:lading:problem:<code>`), `none` otherwise.
    pub code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StandbyLabels {
    /// `served` (on the hot standby) or `fell_back` (to the primary).
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartyLabels {
    pub party: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboxLabels {
    /// `pending` (to forward) or `parked` (waiting for an operator).
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `api` (the registry's API, or a node's face) or `portal`.
    pub face: &'static str,
    /// `1xx` … `5xx`.
    pub class: &'static str,
}

/// Which of the metrics a process has: the registry's, or a party's node's. Those of the
/// other kind are left out of its answer rather than shown as zeros that mean nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Registry,
    Node,
}

/// Every metric of a Lading process. Cheap handles (each an `Arc` inside); the names are
/// those of the text format, with the `lading_` prefix.
#[derive(Debug)]
pub struct Metrics {
    /// `lading_submissions_total{outcome, code}` (registry).
    pub submissions: Family<SubmissionLabels, Counter>,
    /// `lading_sequencer_batch_entries`: entries per batch made durable (registry).
    pub batch_entries: Histogram,
    /// `lading_sequencer_commit_seconds`: the batch's write transaction, from its first
    /// statement to its commit (registry).
    pub commit_seconds: Histogram,
    /// `lading_sequencer_queue_depth`: submissions held (admitted, not yet answered; what
    /// `registry.max_queue` bounds), sampled at scrape (registry).
    pub queue_depth: Gauge,
    /// `lading_registry_sequencing`: 1 while this registry process sequences (it holds the
    /// sequencer's lease and its database takes writes), 0 while it stands by (registry).
    pub sequencing: Gauge,
    /// `lading_standby_reads_total{outcome}`: reads offered to the hot standby
    /// (`database.read_url`), answered there (`served`) or by the primary (`fell_back`: beyond
    /// the bound, a failure, or the standby held down after one) (registry).
    pub standby_reads: Family<StandbyLabels, Counter>,
    /// `lading_sequencer_queue_waiting`: of those, the ones the sequencer has not taken yet.
    pub queue_waiting: Gauge,
    /// `lading_checkpoint_age_seconds`: now − the latest signed checkpoint's time (registry).
    pub checkpoint_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `lading_checkpoint_size_entries`: the size of the latest signed checkpoint (registry).
    pub checkpoint_size: Gauge,
    /// `lading_ledger_entries`: entries on the ledger (registry: its database; node: verified
    /// and held).
    pub ledger_entries: Gauge,
    /// `lading_replica_lag_entries{party}`: at the replica's last reconciliation, how many
    /// entries it was behind the registry (registry).
    pub replica_lag_entries: Family<PartyLabels, Gauge>,
    /// `lading_replica_reconciled_age_seconds{party}`: since the replica's last
    /// reconciliation finished (registry).
    pub replica_reconciled_age_seconds:
        Family<PartyLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// `lading_replica_open_incidents{party}`: incidents about the replica not closed
    /// (registry).
    pub replica_open_incidents: Family<PartyLabels, Gauge>,
    /// `lading_node_registry_entries`: the registry's size when the node last asked (node).
    pub node_registry_entries: Gauge,
    /// `lading_node_lag_entries`: how far the node is behind that (node).
    pub node_lag_entries: Gauge,
    /// `lading_node_last_followed_seconds`: since the registry last answered the follow loop
    /// (node; absent until it first has).
    pub node_last_followed_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `lading_node_open_incidents` (node).
    pub node_open_incidents: Gauge,
    /// `lading_node_outbox_depth{state}`: submissions the node took and has not had answered
    /// by the registry (node).
    pub outbox_depth: Family<OutboxLabels, Gauge>,
    /// `lading_db_pool_connections`, `…_idle_connections`, `…_max_connections`: the
    /// application's database pool (both).
    pub pool_connections: Gauge,
    pub pool_idle_connections: Gauge,
    pub pool_max_connections: Gauge,
    /// `lading_http_requests_total{face, class}`: requests answered by the HTTPS faces (both).
    pub http_requests: Family<HttpLabels, Counter>,
    /// `lading_metrics_sample_errors_total`: scrapes whose sampling failed (a gauge then keeps
    /// its last value).
    pub sample_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            submissions: Family::default(),
            // 1, 2, 4, … 8192: a batch holds at most registry.max_batch (default 4096).
            batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            // 0.5 ms … ~8 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            queue_depth: Gauge::default(),
            sequencing: Gauge::default(),
            standby_reads: Family::default(),
            queue_waiting: Gauge::default(),
            checkpoint_age_seconds: Gauge::default(),
            checkpoint_size: Gauge::default(),
            ledger_entries: Gauge::default(),
            replica_lag_entries: Family::default(),
            replica_reconciled_age_seconds: Family::default(),
            replica_open_incidents: Family::default(),
            node_registry_entries: Gauge::default(),
            node_lag_entries: Gauge::default(),
            node_last_followed_seconds: Gauge::default(),
            node_open_incidents: Gauge::default(),
            outbox_depth: Family::default(),
            pool_connections: Gauge::default(),
            pool_idle_connections: Gauge::default(),
            pool_max_connections: Gauge::default(),
            http_requests: Family::default(),
            sample_errors: Counter::default(),
        }
    }

    /// One submission answered by the API: `Ok(duplicate)`, or `Err(code)` of its refusal.
    pub fn submission(&self, outcome: Result<bool, &'static str>) {
        let labels = match outcome {
            Ok(false) => SubmissionLabels {
                outcome: "accepted",
                code: "none",
            },
            Ok(true) => SubmissionLabels {
                outcome: "duplicate",
                code: "none",
            },
            Err(code) => SubmissionLabels {
                outcome: "refused",
                code,
            },
        };
        self.submissions.get_or_create(&labels).inc();
    }

    /// A batch of `entries` made durable by a write transaction that took `took`.
    pub fn batch_written(&self, entries: usize, took: Duration) {
        self.batch_entries.observe(entries as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// A request answered by `face` (`api`, `portal`) with `status`.
    pub fn http_request(&self, face: &'static str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .get_or_create(&HttpLabels { face, class })
            .inc();
    }

    /// The state of an r2d2 pool: its connections, the idle ones, and its maximum.
    pub fn pool(&self, connections: u32, idle: u32, max: u32) {
        self.pool_connections.set(i64::from(connections));
        self.pool_idle_connections.set(i64::from(idle));
        self.pool_max_connections.set(i64::from(max));
    }

    /// Brings the standby's read counters up to the totals its store keeps (`served`,
    /// `fell_back`), sampled at scrape: only this moves them, so they only grow.
    pub fn standby_reads(&self, served: u64, fell_back: u64) {
        for (outcome, total) in [("served", served), ("fell_back", fell_back)] {
            let counter = self.standby_reads.get_or_create(&StandbyLabels { outcome });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The metrics of `role` as a prometheus-client registry (handles shared with `self`).
    fn registry(&self, role: Role) -> Registry {
        let mut r = Registry::with_prefix("lading");
        if role == Role::Registry {
            r.register(
                "submissions",
                "Submissions answered by the API, by outcome and problem code",
                self.submissions.clone(),
            );
            r.register(
                "sequencer_batch_entries",
                "Entries per batch the sequencer made durable",
                self.batch_entries.clone(),
            );
            r.register(
                "sequencer_commit_seconds",
                "Seconds of each batch's write transaction, to its commit",
                self.commit_seconds.clone(),
            );
            r.register(
                "sequencer_queue_depth",
                "Submissions held by the registry: admitted and not yet answered",
                self.queue_depth.clone(),
            );
            r.register(
                "standby_reads",
                "Reads offered to the hot standby (database.read_url), by where they were answered",
                self.standby_reads.clone(),
            );
            r.register(
                "registry_sequencing",
                "1 while this registry process sequences, 0 while it stands by",
                self.sequencing.clone(),
            );
            r.register(
                "sequencer_queue_waiting",
                "Submissions held that the sequencer has not taken yet",
                self.queue_waiting.clone(),
            );
            r.register(
                "checkpoint_age_seconds",
                "Seconds since the time of the latest signed checkpoint",
                self.checkpoint_age_seconds.clone(),
            );
            r.register(
                "checkpoint_size_entries",
                "Entries covered by the latest signed checkpoint",
                self.checkpoint_size.clone(),
            );
            r.register(
                "replica_lag_entries",
                "Entries a replica was behind the registry at its last reconciliation",
                self.replica_lag_entries.clone(),
            );
            r.register(
                "replica_reconciled_age_seconds",
                "Seconds since a replica's last reconciliation finished",
                self.replica_reconciled_age_seconds.clone(),
            );
            r.register(
                "replica_open_incidents",
                "Incidents about a replica that are not closed",
                self.replica_open_incidents.clone(),
            );
        }
        r.register(
            "ledger_entries",
            "Entries on the ledger (a node: verified and held)",
            self.ledger_entries.clone(),
        );
        if role == Role::Node {
            r.register(
                "node_registry_entries",
                "The registry's size when the node last asked",
                self.node_registry_entries.clone(),
            );
            r.register(
                "node_lag_entries",
                "Entries the node is behind the registry's size as last asked",
                self.node_lag_entries.clone(),
            );
            r.register(
                "node_last_followed_seconds",
                "Seconds since the registry last answered the node's follow loop",
                self.node_last_followed_seconds.clone(),
            );
            r.register(
                "node_open_incidents",
                "Incidents of the node that are not closed",
                self.node_open_incidents.clone(),
            );
            r.register(
                "node_outbox_depth",
                "Submissions in the node's outbox not answered by the registry, by state",
                self.outbox_depth.clone(),
            );
        }
        r.register(
            "db_pool_connections",
            "Connections of the database pool, busy or idle",
            self.pool_connections.clone(),
        );
        r.register(
            "db_pool_idle_connections",
            "Idle connections of the database pool",
            self.pool_idle_connections.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "The database pool's maximum size",
            self.pool_max_connections.clone(),
        );
        r.register(
            "http_requests",
            "Requests answered by the HTTPS faces, by face and status class",
            self.http_requests.clone(),
        );
        r.register(
            "metrics_sample_errors",
            "Scrapes whose sampling of the state failed (the gauges kept their last values)",
            self.sample_errors.clone(),
        );
        r
    }

    /// The metrics of `role` as OpenMetrics text.
    pub fn encode(&self, role: Role) -> String {
        let mut text = String::with_capacity(8 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry(role)) {
            // Writing to a String fails only if an encoder does; say so rather than half a text.
            tracing::error!(error = %e, "could not encode the metrics");
            text.clear();
        }
        text
    }
}

/// The process's metric set.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Sets the gauges of the state before an answer is encoded (on a blocking thread: it may
/// query the database). A failure is logged and counted; the answer is still given.
pub type Sampler = Arc<dyn Fn(&Metrics) -> Result<(), String> + Send + Sync>;

/// What the endpoint serves, and to whom.
#[derive(Clone)]
pub struct Endpoint {
    role: Role,
    /// SHA-256 of the token: compared digest to digest, in constant time.
    token: [u8; 32],
    sampler: Sampler,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("role", &self.role)
            .finish()
    }
}

/// Why a token cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct WeakToken;

impl std::fmt::Display for WeakToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the metrics token must be at least 16 printable characters (no spaces)")
    }
}

impl std::error::Error for WeakToken {}

impl Endpoint {
    /// An endpoint of `role`'s metrics for requests bearing `token` (as read from the token
    /// file: surrounding whitespace, such as the file's last newline, is not part of it).
    pub fn new(role: Role, token: &str, sampler: Sampler) -> Result<Self, WeakToken> {
        let token = token.trim();
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WeakToken);
        }
        Ok(Self {
            role,
            token: Sha256::digest(token.as_bytes()).into(),
            sampler,
        })
    }

    /// Whether the request bears the token.
    fn admits(&self, req: &HttpRequest) -> bool {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        constant_time_eq(&digest, &self.token)
    }

    /// Samples the state and encodes every metric of the role (blocking).
    pub fn scrape(&self) -> String {
        let metrics = global();
        if let Err(e) = (self.sampler)(metrics) {
            metrics.sample_errors.inc();
            tracing::warn!(error = %e, "could not sample the metrics");
        }
        metrics.encode(self.role)
    }
}

/// Equal, looking at every byte whatever the first difference.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn problem(status: actix_web::http::StatusCode, code: &str, detail: &str) -> HttpResponse {
    let body = serde_json::json!({
        "type": format!("urn:lading:problem:{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let mut answer = HttpResponse::build(status);
    answer.content_type("application/problem+json");
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        answer.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"lading-metrics\""));
    }
    answer.body(body.to_string())
}

/// `GET /metrics`.
async fn metrics(endpoint: web::Data<Endpoint>, req: HttpRequest) -> HttpResponse {
    if !endpoint.admits(&req) {
        return problem(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the metrics need the bearer token of [metrics] token_file",
        );
    }
    let endpoint = endpoint.into_inner();
    match web::block(move || endpoint.scrape()).await {
        Ok(text) => HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "the metrics could not be sampled");
            problem(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the metrics could not be sampled",
            )
        }
    }
}

async fn not_found() -> HttpResponse {
    problem(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        "this listener serves GET /metrics only",
    )
}

/// The routes of the metrics listener: `GET /metrics`, and `404` for anything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .default_service(web::to(not_found));
}

/// The metrics listener on `bind` (or on `inherited`, a socket handed to the process already
/// bound to it), HTTPS with `tls`, one worker. Returns the server (run it) and its address.
pub fn https_server(
    endpoint: Endpoint,
    bind: SocketAddr,
    inherited: Option<std::net::TcpListener>,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let endpoint = web::Data::new(endpoint);
    let server =
        HttpServer::new(move || App::new().app_data(endpoint.clone()).configure(configure))
            .workers(1)
            .shutdown_timeout(5);
    let server = match inherited {
        Some(listener) => {
            // Handed over bound, perhaps not yet listening (as the other faces take theirs).
            let socket = socket2::Socket::from(listener);
            socket.set_reuse_address(true)?;
            socket.listen(128)?;
            socket.set_nonblocking(true)?;
            server.listen_rustls_0_23(socket.into(), (*tls).clone())?
        }
        None => server.bind_rustls_0_23(bind, (*tls).clone())?,
    };
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the metrics server bound no address"))?;
    Ok((server.run(), addr))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use actix_web::test as web_test;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn the_registry_text_names_every_metric_with_its_labels() {
        let m = Metrics::new();
        m.submission(Ok(false));
        m.submission(Ok(false));
        m.submission(Ok(true));
        m.submission(Err("chain_fork"));
        m.batch_written(3, Duration::from_millis(2));
        m.batch_written(1, Duration::from_millis(1));
        m.queue_depth.set(7);
        m.checkpoint_age_seconds.set(1.5);
        m.replica_open_incidents
            .get_or_create(&PartyLabels {
                party: "shipper-acme".into(),
            })
            .set(2);
        m.pool(5, 3, 16);
        m.http_request("api", 201);
        m.http_request("api", 404);
        m.standby_reads(3, 1);
        m.standby_reads(5, 1);
        let text = m.encode(Role::Registry);
        assert_eq!(
            value(&text, "lading_standby_reads_total{outcome=\"served\"}"),
            Some(5.0)
        );
        assert_eq!(
            value(&text, "lading_standby_reads_total{outcome=\"fell_back\"}"),
            Some(1.0)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE lading_submissions counter"), "{text}");
        assert_eq!(
            value(
                &text,
                "lading_submissions_total{outcome=\"accepted\",code=\"none\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "lading_submissions_total{outcome=\"duplicate\",code=\"none\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "lading_submissions_total{outcome=\"refused\",code=\"chain_fork\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "lading_sequencer_batch_entries_count"),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "lading_sequencer_batch_entries_sum"),
            Some(4.0)
        );
        assert_eq!(
            value(&text, "lading_sequencer_batch_entries_bucket{le=\"2.0\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "lading_sequencer_commit_seconds_count"),
            Some(2.0)
        );
        assert_eq!(value(&text, "lading_sequencer_queue_depth"), Some(7.0));
        assert_eq!(value(&text, "lading_checkpoint_age_seconds"), Some(1.5));
        assert_eq!(
            value(
                &text,
                "lading_replica_open_incidents{party=\"shipper-acme\"}"
            ),
            Some(2.0)
        );
        assert_eq!(value(&text, "lading_db_pool_connections"), Some(5.0));
        assert_eq!(value(&text, "lading_db_pool_idle_connections"), Some(3.0));
        assert_eq!(
            value(
                &text,
                "lading_http_requests_total{face=\"api\",class=\"4xx\"}"
            ),
            Some(1.0)
        );
        // A node's metrics are not the registry's.
        assert!(!text.contains("lading_node_"), "{text}");
    }

    #[test]
    fn a_node_shows_its_own_metrics_and_not_the_sequencers() {
        let m = Metrics::new();
        m.outbox_depth
            .get_or_create(&OutboxLabels { state: "pending" })
            .set(4);
        m.node_lag_entries.set(12);
        let text = m.encode(Role::Node);
        assert_eq!(
            value(&text, "lading_node_outbox_depth{state=\"pending\"}"),
            Some(4.0)
        );
        assert_eq!(value(&text, "lading_node_lag_entries"), Some(12.0));
        assert!(!text.contains("lading_sequencer_"), "{text}");
        assert!(!text.contains("lading_submissions"), "{text}");
    }

    /// The Grafana dashboard in deploy/ asks only for metrics that exist.
    #[test]
    fn the_dashboard_names_only_metrics_that_are_served() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana/lading-dashboard.json"
        );
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let m = Metrics::new();
        // A family is written once it has a series.
        m.submission(Ok(false));
        m.http_request("api", 200);
        let party = PartyLabels {
            party: "shipper-acme".into(),
        };
        m.replica_lag_entries.get_or_create(&party).set(0);
        m.replica_open_incidents.get_or_create(&party).set(0);
        m.replica_reconciled_age_seconds
            .get_or_create(&party)
            .set(0.0);
        m.outbox_depth
            .get_or_create(&OutboxLabels { state: "pending" })
            .set(0);
        let served = m.encode(Role::Registry) + &m.encode(Role::Node);
        let mut asked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                for (at, _) in expr.match_indices("lading_") {
                    let name: String = expr[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    let family = ["_total", "_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(&name);
                    assert!(
                        served.contains(&format!("# TYPE {family} ")),
                        "the dashboard asks for {name}, which is not served"
                    );
                    asked += 1;
                }
            }
        }
        assert!(asked > 20, "{asked}");
    }

    #[test]
    fn a_short_or_spaced_token_is_refused() {
        let sampler: Sampler = Arc::new(|_| Ok(()));
        assert!(Endpoint::new(Role::Node, "short", sampler.clone()).is_err());
        assert!(Endpoint::new(Role::Node, "sixteen chars here", sampler.clone()).is_err());
        assert!(Endpoint::new(Role::Node, "0123456789abcdef\n", sampler).is_ok());
    }

    #[actix_web::test]
    async fn the_token_is_required_and_the_answer_is_openmetrics() {
        let sampled = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = sampled.clone();
        let sampler: Sampler = Arc::new(move |m: &Metrics| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            m.ledger_entries.set(42);
            Ok(())
        });
        let endpoint = Endpoint::new(Role::Registry, "0123456789abcdef", sampler).unwrap();
        let app = web_test::init_service(
            App::new()
                .app_data(web::Data::new(endpoint))
                .configure(configure),
        )
        .await;
        for auth in [
            None,
            Some("Bearer 0123456789abcdeX"),
            Some("Basic 0123456789abcdef"),
        ] {
            let mut req = web_test::TestRequest::get().uri("/metrics");
            if let Some(auth) = auth {
                req = req.insert_header((header::AUTHORIZATION, auth));
            }
            let res = web_test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), 401, "{auth:?}");
            assert_eq!(
                res.headers().get(header::CONTENT_TYPE).unwrap(),
                "application/problem+json"
            );
        }
        assert_eq!(sampled.load(std::sync::atomic::Ordering::SeqCst), 0);
        let req = web_test::TestRequest::get()
            .uri("/metrics")
            .insert_header((header::AUTHORIZATION, "Bearer 0123456789abcdef"))
            .to_request();
        let res = web_test::call_service(&app, req).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            CONTENT_TYPE
        );
        let text = String::from_utf8(web_test::read_body(res).await.to_vec()).unwrap();
        assert_eq!(value(&text, "lading_ledger_entries"), Some(42.0));
        assert_eq!(sampled.load(std::sync::atomic::Ordering::SeqCst), 1);
        let res = web_test::call_service(
            &app,
            web_test::TestRequest::get().uri("/other").to_request(),
        )
        .await;
        assert_eq!(res.status(), 404);
    }
}
