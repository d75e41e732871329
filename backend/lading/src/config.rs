//! Configuration: a TOML file (`--config`, default `lading.toml` when present), then
//! environment overrides (`LADING_*`), then command-line flags.
//!
//! ```toml
//! data_dir = "lading-data"          # embedded PostgreSQL and generated TLS material
//!
//! [server]
//! bind = "127.0.0.1:8443"
//! tls_cert = "/etc/lading/registry.crt.pem"   # PEM chain
//! tls_key = "/etc/lading/registry.key.pem"    # PEM private key
//! client_ca = "/etc/lading/ca/ca.crt.pem"     # the consortium CA: replicas' client certificates
//! workers = 2
//! body_timeout_ms = 30000                    # a request body must arrive within this
//!
//! [database]
//! url = "postgres://lading_writer:...@db.example:5432/lading"   # absent: the embedded cluster
//! owner_url = "postgres://lading_owner:...@db.example:5432/lading"
//! pool_size = 16
//! read_url = "postgres://lading_writer:...@db-standby:5432/lading"   # a hot standby: bounded
//!                                            # reads (feed, entries, proofs, checkpoints,
//!                                            # documents' chains) are served from it
//! read_pool_size = 16                        # default: pool_size
//!
//! [registry]
//! signing_key = "/etc/lading/registry.jwk"   # private OKP JWK; fixture TEST keys are refused
//! block_size = 1024
//! checkpoint_interval_ms = 500
//! max_clock_skew_ms = 300000                 # a statement's time within 5 min of the clock
//! max_offline_ms = 604800000                 # a node forwards what it took up to 7 days ago
//! max_batch = 4096
//! max_queue = 32768                          # submissions held at once; past it 503 server_busy
//! max_exports = 2                            # customs exports (GET /v1/exports) made at once;
//!                                            # past it 503 too_many_exports (0: none)
//! allow_test_keys = false                    # only for test deployments
//! require_write_credential = true            # a write needs a bearer credential (scope
//!                                            # submit) or a consortium client certificate
//!                                            # (the default; false: the signature alone)
//! rate_limit_per_credential = 1200           # requests per period from one bearer
//!                                            # credential; past it 429 rate_limited (0: none)
//! rate_limit_per_address = 600               # requests per period from one client address
//!                                            # (0: none); neither limit applies to requests
//!                                            # with a consortium client certificate
//! rate_limit_period_ms = 60000               # the period the limits count over
//!
//! [replica]                                  # `lading replica`: a party's replica
//! registry = "https://registry.example:8443"
//! ca = "/etc/lading/party/ca.crt.pem"        # the consortium CA (`lading ca issue` copies it)
//! cert = "/etc/lading/party/shipper-acme.crt.pem"
//! key = "/etc/lading/party/shipper-acme.key.pem"
//! parties = "/etc/lading/parties.json"       # the consortium's party registry (public keys)
//! registry_key = "/etc/lading/registry.jwk.pub"
//! poll_interval_ms = 1000
//! page_size = 1000
//! park_after_ms = 600000                     # a submission the registry keeps answering
//!                                            # as unavailable is parked after this long
//! listen = "0.0.0.0:8444"                    # the replica's own HTTPS face (its party, peers,
//!                                            # the registry); its certificate needs --server-name
//! peers = ["https://replica.carrier.example:8444"]   # replicas to compare checkpoints with
//! peer_interval_ms = 5000
//! subscriptions_interval_ms = 60000          # how often the node asks the registry for its
//!                                            # party's webhook subscriptions, to show a
//!                                            # failing one in its status and portal (0: never)
//!
//! [portal]                                   # `lading replica`: the party's web portal;
//!                                            # `lading serve`: the registry's operator view
//! listen = "0.0.0.0:8450"                    # HTTPS with the node's server certificate
//!                                            # (replica.cert/key; the registry's:
//!                                            # server.tls_cert/key); no client certificate
//! session_ttl_ms = 28800000                  # a session unused this long ends (8 h)
//! session_max_ms = 86400000                  # a session ends this long after sign-in (24 h)
//! signing_key = "/etc/lading/party.jwk"      # the party's private OKP JWK (`lading keygen`),
//!                                            # mode 0600, a key of the node's party in the
//!                                            # membership; without it the portal signs nothing
//! allow_test_keys = false                    # accept a TEST key (fixtures) as signing_key:
//!                                            # demos and tests only
//!
//! [export]                                   # `lading replica` of a customs authority:
//! dir = "/var/lib/lading/exports"            # scheduled exports written here (none: off)
//! interval_ms = 86400000                     # one export of what is new, daily
//! retention = 30                             # bundles kept in dir (older ones deleted;
//!                                            # the series in the database keeps every one)
//!
//! [notifications]                            # the registry's webhooks (/v1/subscriptions)
//! enabled = true                             # deliver (LADING_NOTIFICATIONS_* for each)
//! allow_private_targets = false              # callbacks to loopback/private addresses (SSRF)
//! ca = "/etc/lading/callback-roots.pem"      # extra roots for callbacks' TLS (optional)
//! poll_interval_ms = 500                     # how often idle subscriptions look again
//! failing_after_ms = 86400000                # failing this long marks a subscription failing
//! first_retry_ms = 1000                      # retries double from here, with jitter,
//! max_retry_ms = 3600000                     # up to this
//! timeout_ms = 10000                         # how long a receiver has to answer
//! concurrency = 16                           # subscriptions delivered to at once
//! in_flight = 8                              # requests at once to one subscription (each
//!                                            # about another document; per document in order)
//!
//! [reconcile]                                # the registry reconciles these replicas
//! cert = "/etc/lading/registry.crt.pem"      # `lading ca issue --registry`
//! key = "/etc/lading/registry.key.pem"
//! ca = "/etc/lading/ca/ca.crt.pem"           # default: server.client_ca
//! interval_ms = 60000                        # 0: on demand only
//! replicas = [{ party = "shipper-acme", url = "https://replica.shipper.example:8444" }]
//!
//! [metrics]                                  # Prometheus metrics (`lading serve`, `lading
//!                                            # replica`): GET /metrics on a listener of its own
//! listen = "127.0.0.1:9443"                  # HTTPS with the process's own certificate;
//!                                            # unset: no metrics endpoint
//! token_file = "/etc/lading/metrics.token"   # the bearer token Prometheus sends
//!                                            # (bearer_token_file); required with listen
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub registry: RegistrySection,
    pub replica: ReplicaSection,
    pub reconcile: ReconcileSection,
    pub portal: PortalSection,
    pub export: ExportSection,
    pub notifications: NotificationsSection,
    pub metrics: MetricsSection,
}

/// Prometheus metrics (`lading_metrics`): served only when `listen` is set, on that address
/// alone (never on a public face), over HTTPS with the process's own certificate, to requests
/// bearing the token in `token_file` (`Authorization: Bearer`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub listen: Option<SocketAddr>,
    /// A file holding the token (at least 16 printable characters; a last newline is not part
    /// of it). Required with `listen`.
    pub token_file: Option<PathBuf>,
}

impl MetricsSection {
    /// The listener and the token, when metrics are on.
    pub fn endpoint(&self) -> Result<Option<(SocketAddr, String)>> {
        let Some(listen) = self.listen else {
            return Ok(None);
        };
        let path = self.token_file.as_ref().context(
            "metrics.listen is set: metrics.token_file (LADING_METRICS_TOKEN_FILE) must name the bearer token's file",
        )?;
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read metrics.token_file {}", path.display()))?;
        Ok(Some((listen, token)))
    }
}

/// The registry's webhook deliveries (`/v1/subscriptions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsSection {
    /// Deliver at all (subscriptions can be made either way).
    pub enabled: bool,
    /// Let callbacks name loopback and private addresses: off, because a party could otherwise
    /// make the registry call into the operator's own network (server-side request forgery).
    pub allow_private_targets: bool,
    /// A PEM file of roots trusted for callbacks besides the public ones.
    pub ca: Option<PathBuf>,
    pub poll_interval_ms: u64,
    /// Failing this long marks a subscription `failing` (it is still retried).
    pub failing_after_ms: u64,
    pub first_retry_ms: u64,
    pub max_retry_ms: u64,
    /// How long a receiver has to answer a delivery (then it counts as failed).
    pub timeout_ms: u64,
    /// Subscriptions delivered to at the same time: a slow receiver holds back only its own.
    pub concurrency: usize,
    /// Requests in flight at once to one subscription, each about another document (one
    /// document's entries go one after the other, in ledger order).
    pub in_flight: usize,
}

impl Default for NotificationsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_private_targets: false,
            ca: None,
            poll_interval_ms: 500,
            failing_after_ms: 24 * 3_600_000,
            first_retry_ms: 1_000,
            max_retry_ms: 3_600_000,
            timeout_ms: 10_000,
            concurrency: 16,
            in_flight: 8,
        }
    }
}

impl NotificationsSection {
    /// The deliverer's settings, with the roots read.
    pub fn settings(&self) -> Result<lading_notify::Settings> {
        let extra_roots = match &self.ca {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("notifications.ca {}", path.display()))?,
            ),
            None => None,
        };
        Ok(lading_notify::Settings {
            poll: std::time::Duration::from_millis(self.poll_interval_ms.max(10)),
            allow_private_targets: self.allow_private_targets,
            extra_roots,
            failing_after: std::time::Duration::from_millis(self.failing_after_ms),
            first_retry: std::time::Duration::from_millis(self.first_retry_ms.max(1)),
            max_retry: std::time::Duration::from_millis(self.max_retry_ms.max(1)),
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
            concurrency: self.concurrency.max(1),
            in_flight: self.in_flight.max(1),
            ..lading_notify::Settings::default()
        })
    }
}

/// Scheduled customs exports of a node whose party is a customs authority, on when `dir` is
/// set: every `interval_ms` the entries since the last export, signed with the party's key
/// (`portal.signing_key`), written to `dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSection {
    pub dir: Option<PathBuf>,
    pub interval_ms: u64,
    /// Bundles kept in `dir`; older ones are deleted (0: keep every one).
    pub retention: usize,
}

impl Default for ExportSection {
    fn default() -> Self {
        Self {
            dir: None,
            interval_ms: 24 * 3_600_000,
            retention: 30,
        }
    }
}

/// The web portal of a party's node (`lading replica`), or the registry's operator view
/// (`lading serve`), served only when `listen` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSection {
    /// Where the portal listens (HTTPS with the node's certificate, `replica.cert`/`key`).
    pub listen: Option<SocketAddr>,
    /// A session unused for this long ends.
    pub session_ttl_ms: u64,
    /// A session ends this long after sign-in, however much it is used.
    pub session_max_ms: u64,
    /// The party's private signing key (an OKP JWK file, mode 0600): what the portal signs
    /// with. Without it the portal drafts but signs nothing.
    pub signing_key: Option<PathBuf>,
    /// Accept a key marked as a TEST key (`lading_test_key`) as `signing_key`: never in
    /// production.
    pub allow_test_keys: bool,
}

impl Default for PortalSection {
    fn default() -> Self {
        Self {
            listen: None,
            session_ttl_ms: 8 * 3_600_000,
            session_max_ms: 24 * 3_600_000,
            signing_key: None,
            allow_test_keys: false,
        }
    }
}

/// The replicas a registry reconciles, and the registry's certificate to ask them with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSection {
    pub replicas: Vec<lading_registry::reconcile::ReplicaTarget>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The consortium CA the replicas' certificates chain to (default: `server.client_ca`).
    pub ca: Option<PathBuf>,
    /// How often every replica is reconciled; 0 for on demand only.
    pub interval_ms: u64,
}

impl Default for ReconcileSection {
    fn default() -> Self {
        Self {
            replicas: Vec::new(),
            cert: None,
            key: None,
            ca: None,
            interval_ms: 60_000,
        }
    }
}

/// `lading replica`: whom it follows and with what.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicaSection {
    /// The registry's base URL (`https://host:port`).
    pub registry: Option<String>,
    /// The consortium CA, the party's certificate and its key (`lading ca issue`).
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The consortium's party registry (`parties.json`): whose keys sign what.
    pub parties: Option<PathBuf>,
    /// The registry's public JWK: whose signature makes a checkpoint.
    pub registry_key: Option<PathBuf>,
    pub poll_interval_ms: u64,
    pub page_size: u64,
    /// How long the registry may answer one submission as unavailable before it is parked.
    pub park_after_ms: u64,
    /// Where the replica serves its party, its peers and the registry (HTTPS, mutual TLS).
    pub listen: Option<SocketAddr>,
    /// Other replicas' base URLs: signed checkpoints are compared with theirs.
    pub peers: Vec<String>,
    pub peer_interval_ms: u64,
    /// How often the node asks the registry for its party's webhook subscriptions (with its
    /// client certificate), so its status and portal tell when one is failing; 0: never.
    pub subscriptions_interval_ms: u64,
}

impl Default for ReplicaSection {
    fn default() -> Self {
        Self {
            registry: None,
            ca: None,
            cert: None,
            key: None,
            parties: None,
            registry_key: None,
            poll_interval_ms: 1000,
            page_size: 1000,
            park_after_ms: 600_000,
            listen: None,
            peers: Vec::new(),
            peer_interval_ms: 5000,
            subscriptions_interval_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The consortium CA (`lading ca init`): client certificates that chain to it name the
    /// party whose replica is calling. Without it, the replication endpoints refuse everyone.
    pub client_ca: Option<PathBuf>,
    pub workers: usize,
    /// How long a client may take to send a request's body.
    pub body_timeout_ms: u64,
}

/// Where the database is. Two roles keep the ledger append-only against the application
/// itself (`lading_store::roles`): `url` is what the application connects with — a role that
/// owns nothing — and `owner_url` what migrations run as, the role that owns every table and
/// grants the first what it needs. With `url` alone (deployments of one role) migrations run
/// as it, and a WARN at start says when it owns the ledger. Neither: the embedded cluster, which
/// makes both roles itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Option<String>,
    pub owner_url: Option<String>,
    pub pool_size: Option<u32>,
    /// A hot standby of the same database (PostgreSQL streaming replication): reads that can
    /// be bounded by the latest checkpoint stored on it are served from it, the rest from
    /// `url` (`lading_store::standby`). Only with `url`.
    pub read_url: Option<String>,
    /// The standby's pool; default `pool_size`.
    pub read_pool_size: Option<u32>,
}

impl DatabaseConfig {
    /// The size of the application's pool.
    pub fn pool_size(&self) -> u32 {
        self.pool_size.unwrap_or(16)
    }

    /// The size of the standby's pool.
    pub fn read_pool_size(&self) -> u32 {
        self.read_pool_size.unwrap_or_else(|| self.pool_size())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySection {
    pub signing_key: Option<PathBuf>,
    pub block_size: u64,
    pub checkpoint_interval_ms: u64,
    pub max_batch: usize,
    /// Most submissions held at once; past it a request is refused as `server_busy`.
    pub max_queue: usize,
    /// Most customs exports (`GET /v1/exports`) made at once; past it `too_many_exports`.
    pub max_exports: usize,
    pub allow_test_keys: bool,
    /// How far a statement's `time` may be from the registry's clock.
    pub max_clock_skew_ms: u64,
    /// How long ago a party's node may have taken a statement it forwards.
    pub max_offline_ms: u64,
    /// Whether a write needs a credential (a bearer credential with the `submit` scope, or a
    /// client certificate from the consortium's CA). On by default: the signature proves who
    /// signed, the credential says who submits (a party other than the signer only where the
    /// signer authorised it, `/v1/submitters`) and whom to rate-limit. `false` takes
    /// anonymous writes with the signature as their only authority (recorded without a
    /// submitter); a credential that is presented is still checked.
    pub require_write_credential: bool,
    /// Requests per `rate_limit_period_ms` one bearer credential may make (0: no limit).
    pub rate_limit_per_credential: u32,
    /// Requests per `rate_limit_period_ms` one client address may make (0: no limit).
    pub rate_limit_per_address: u32,
    pub rate_limit_period_ms: u64,
}

impl RegistrySection {
    /// The rate limits of the HTTP face.
    pub fn rate_limits(&self) -> lading_api::credentials::RateLimits {
        lading_api::credentials::RateLimits {
            per_credential: self.rate_limit_per_credential,
            per_address: self.rate_limit_per_address,
            period: std::time::Duration::from_millis(self.rate_limit_period_ms.max(1)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("lading-data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            registry: RegistrySection::default(),
            replica: ReplicaSection::default(),
            reconcile: ReconcileSection::default(),
            portal: PortalSection::default(),
            export: ExportSection::default(),
            notifications: NotificationsSection::default(),
            metrics: MetricsSection::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            body_timeout_ms: 30_000,
        }
    }
}

impl Default for RegistrySection {
    fn default() -> Self {
        Self {
            signing_key: None,
            block_size: lading_domain::merkle::BLOCK_SIZE,
            checkpoint_interval_ms: 500,
            max_batch: 4096,
            max_queue: 32_768,
            max_exports: 2,
            allow_test_keys: false,
            max_clock_skew_ms: 300_000,
            max_offline_ms: 7 * 24 * 3_600_000,
            require_write_credential: true,
            rate_limit_per_credential: 0,
            rate_limit_per_address: 0,
            rate_limit_period_ms: 60_000,
        }
    }
}

impl Config {
    /// Reads `path` (or `lading.toml` if it exists), then applies `LADING_*` overrides.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None if Path::new("lading.toml").exists() => Self::from_file(Path::new("lading.toml"))?,
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Environment overrides, one variable per setting.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn parse<T: std::str::FromStr>(name: &str, value: String) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={value:?} is not valid: {e}"))
        }
        if let Some(v) = var("LADING_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = var("LADING_BIND") {
            self.server.bind = parse("LADING_BIND", v)?;
        }
        if let Some(v) = var("LADING_TLS_CERT") {
            self.server.tls_cert = Some(v.into());
        }
        if let Some(v) = var("LADING_TLS_KEY") {
            self.server.tls_key = Some(v.into());
        }
        if let Some(v) = var("LADING_CLIENT_CA") {
            self.server.client_ca = Some(PathBuf::from(v));
        }
        if let Some(v) = var("LADING_WORKERS") {
            self.server.workers = parse("LADING_WORKERS", v)?;
        }
        if let Some(v) = var("LADING_BODY_TIMEOUT_MS") {
            self.server.body_timeout_ms = parse("LADING_BODY_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("LADING_DATABASE_URL") {
            self.database.url = Some(v);
        }
        if let Some(v) = var("LADING_DATABASE_OWNER_URL") {
            self.database.owner_url = Some(v);
        }
        if let Some(v) = var("LADING_POOL_SIZE") {
            self.database.pool_size = Some(parse("LADING_POOL_SIZE", v)?);
        }
        if let Some(v) = var("LADING_DATABASE_READ_URL") {
            self.database.read_url = Some(v);
        }
        if let Some(v) = var("LADING_READ_POOL_SIZE") {
            self.database.read_pool_size = Some(parse("LADING_READ_POOL_SIZE", v)?);
        }
        if let Some(v) = var("LADING_SIGNING_KEY") {
            self.registry.signing_key = Some(v.into());
        }
        if let Some(v) = var("LADING_CHECKPOINT_INTERVAL_MS") {
            self.registry.checkpoint_interval_ms = parse("LADING_CHECKPOINT_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("LADING_MAX_CLOCK_SKEW_MS") {
            self.registry.max_clock_skew_ms = parse("LADING_MAX_CLOCK_SKEW_MS", v)?;
        }
        if let Some(v) = var("LADING_MAX_OFFLINE_MS") {
            self.registry.max_offline_ms = parse("LADING_MAX_OFFLINE_MS", v)?;
        }
        if let Some(v) = var("LADING_BLOCK_SIZE") {
            self.registry.block_size = parse("LADING_BLOCK_SIZE", v)?;
        }
        if let Some(v) = var("LADING_MAX_BATCH") {
            self.registry.max_batch = parse("LADING_MAX_BATCH", v)?;
        }
        if let Some(v) = var("LADING_MAX_QUEUE") {
            self.registry.max_queue = parse("LADING_MAX_QUEUE", v)?;
        }
        if let Some(v) = var("LADING_MAX_EXPORTS") {
            self.registry.max_exports = parse("LADING_MAX_EXPORTS", v)?;
        }
        if let Some(v) = var("LADING_ALLOW_TEST_KEYS") {
            self.registry.allow_test_keys = parse("LADING_ALLOW_TEST_KEYS", v)?;
        }
        if let Some(v) = var("LADING_REQUIRE_WRITE_CREDENTIAL") {
            self.registry.require_write_credential = parse("LADING_REQUIRE_WRITE_CREDENTIAL", v)?;
        }
        if let Some(v) = var("LADING_RATE_LIMIT_PER_CREDENTIAL") {
            self.registry.rate_limit_per_credential = parse("LADING_RATE_LIMIT_PER_CREDENTIAL", v)?;
        }
        if let Some(v) = var("LADING_RATE_LIMIT_PER_ADDRESS") {
            self.registry.rate_limit_per_address = parse("LADING_RATE_LIMIT_PER_ADDRESS", v)?;
        }
        if let Some(v) = var("LADING_RATE_LIMIT_PERIOD_MS") {
            self.registry.rate_limit_period_ms = parse("LADING_RATE_LIMIT_PERIOD_MS", v)?;
        }
        for (name, slot) in [
            ("LADING_REPLICA_CA", &mut self.replica.ca),
            ("LADING_REPLICA_CERT", &mut self.replica.cert),
            ("LADING_REPLICA_KEY", &mut self.replica.key),
            ("LADING_REPLICA_PARTIES", &mut self.replica.parties),
            (
                "LADING_REPLICA_REGISTRY_KEY",
                &mut self.replica.registry_key,
            ),
        ] {
            if let Some(v) = var(name) {
                *slot = Some(PathBuf::from(v));
            }
        }
        if let Some(v) = var("LADING_REPLICA_REGISTRY") {
            self.replica.registry = Some(v);
        }
        if let Some(v) = var("LADING_REPLICA_POLL_INTERVAL_MS") {
            self.replica.poll_interval_ms = parse("LADING_REPLICA_POLL_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("LADING_REPLICA_PARK_AFTER_MS") {
            self.replica.park_after_ms = parse("LADING_REPLICA_PARK_AFTER_MS", v)?;
        }
        if let Some(v) = var("LADING_REPLICA_PAGE_SIZE") {
            self.replica.page_size = parse("LADING_REPLICA_PAGE_SIZE", v)?;
        }
        if let Some(v) = var("LADING_REPLICA_LISTEN") {
            self.replica.listen = Some(parse("LADING_REPLICA_LISTEN", v)?);
        }
        if let Some(v) = var("LADING_REPLICA_PEERS") {
            self.replica.peers = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = var("LADING_REPLICA_PEER_INTERVAL_MS") {
            self.replica.peer_interval_ms = parse("LADING_REPLICA_PEER_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("LADING_REPLICA_SUBSCRIPTIONS_INTERVAL_MS") {
            self.replica.subscriptions_interval_ms =
                parse("LADING_REPLICA_SUBSCRIPTIONS_INTERVAL_MS", v)?;
        }
        for (name, slot) in [
            ("LADING_RECONCILE_CERT", &mut self.reconcile.cert),
            ("LADING_RECONCILE_KEY", &mut self.reconcile.key),
            ("LADING_RECONCILE_CA", &mut self.reconcile.ca),
        ] {
            if let Some(v) = var(name) {
                *slot = Some(PathBuf::from(v));
            }
        }
        if let Some(v) = var("LADING_RECONCILE_INTERVAL_MS") {
            self.reconcile.interval_ms = parse("LADING_RECONCILE_INTERVAL_MS", v)?;
        }
        // `party=https://host:port,party=https://...`
        if let Some(v) = var("LADING_RECONCILE_REPLICAS") {
            self.reconcile.replicas = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (party, url) = pair.split_once('=').with_context(|| {
                        format!("LADING_RECONCILE_REPLICAS: {pair:?} is not party=url")
                    })?;
                    Ok(lading_registry::reconcile::ReplicaTarget {
                        party: parse("LADING_RECONCILE_REPLICAS", party.to_owned())?,
                        url: url.to_owned(),
                    })
                })
                .collect::<Result<_>>()?;
        }
        if let Some(v) = var("LADING_PORTAL_LISTEN") {
            self.portal.listen = Some(parse("LADING_PORTAL_LISTEN", v)?);
        }
        if let Some(v) = var("LADING_PORTAL_SIGNING_KEY") {
            self.portal.signing_key = Some(PathBuf::from(v));
        }
        if let Some(v) = var("LADING_PORTAL_ALLOW_TEST_KEYS") {
            self.portal.allow_test_keys = parse("LADING_PORTAL_ALLOW_TEST_KEYS", v)?;
        }
        if let Some(v) = var("LADING_EXPORT_DIR") {
            self.export.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = var("LADING_EXPORT_INTERVAL_MS") {
            self.export.interval_ms = parse("LADING_EXPORT_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("LADING_EXPORT_RETENTION") {
            self.export.retention = parse("LADING_EXPORT_RETENTION", v)?;
        }
        if self.export.interval_ms == 0 {
            bail!("export.interval_ms must be positive");
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_ENABLED") {
            self.notifications.enabled = parse("LADING_NOTIFICATIONS_ENABLED", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS") {
            self.notifications.allow_private_targets =
                parse("LADING_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_CA") {
            self.notifications.ca = Some(PathBuf::from(v));
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_POLL_INTERVAL_MS") {
            self.notifications.poll_interval_ms =
                parse("LADING_NOTIFICATIONS_POLL_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_FAILING_AFTER_MS") {
            self.notifications.failing_after_ms =
                parse("LADING_NOTIFICATIONS_FAILING_AFTER_MS", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_FIRST_RETRY_MS") {
            self.notifications.first_retry_ms = parse("LADING_NOTIFICATIONS_FIRST_RETRY_MS", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_MAX_RETRY_MS") {
            self.notifications.max_retry_ms = parse("LADING_NOTIFICATIONS_MAX_RETRY_MS", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_TIMEOUT_MS") {
            self.notifications.timeout_ms = parse("LADING_NOTIFICATIONS_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_CONCURRENCY") {
            self.notifications.concurrency = parse("LADING_NOTIFICATIONS_CONCURRENCY", v)?;
        }
        if let Some(v) = var("LADING_NOTIFICATIONS_IN_FLIGHT") {
            self.notifications.in_flight = parse("LADING_NOTIFICATIONS_IN_FLIGHT", v)?;
        }
        if let Some(v) = var("LADING_METRICS_LISTEN") {
            self.metrics.listen = Some(parse("LADING_METRICS_LISTEN", v)?);
        }
        if let Some(v) = var("LADING_METRICS_TOKEN_FILE") {
            self.metrics.token_file = Some(PathBuf::from(v));
        }
        if self.metrics.listen.is_some() && self.metrics.token_file.is_none() {
            bail!("metrics.listen needs metrics.token_file (LADING_METRICS_TOKEN_FILE): the metrics are served to the token's bearer only");
        }
        if let Some(v) = var("LADING_PORTAL_SESSION_TTL_MS") {
            self.portal.session_ttl_ms = parse("LADING_PORTAL_SESSION_TTL_MS", v)?;
        }
        if let Some(v) = var("LADING_PORTAL_SESSION_MAX_MS") {
            self.portal.session_max_ms = parse("LADING_PORTAL_SESSION_MAX_MS", v)?;
        }
        if self.portal.session_ttl_ms == 0 || self.portal.session_max_ms == 0 {
            bail!("portal.session_ttl_ms and portal.session_max_ms must be positive");
        }
        if !(1..=10_000).contains(&self.replica.page_size) {
            bail!("replica.page_size must be 1 to 10000");
        }
        if self.registry.block_size == 0
            || self.registry.max_batch == 0
            || self.registry.max_queue == 0
        {
            bail!(
                "registry.block_size, registry.max_batch and registry.max_queue must be positive"
            );
        }
        Ok(())
    }

    /// The consortium CA, and the registry's own certificate and key, as `[reconcile]` names
    /// them (the CA defaults to `server.client_ca`): what the registry asks replicas with.
    pub fn reconcile_material(&self) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let section = &self.reconcile;
        let read = |what: &str, path: Option<&PathBuf>| {
            let path = path
                .with_context(|| format!("reconcile.{what} is required to reconcile replicas"))?;
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        Ok((
            read(
                "ca (or server.client_ca)",
                section.ca.as_ref().or(self.server.client_ca.as_ref()),
            )?,
            read("cert", section.cert.as_ref())?,
            read("key", section.key.as_ref())?,
        ))
    }

    /// How the HTTPS faces serve.
    /// The settings of a portal: a node's, or the registry's operator view.
    pub fn portal_settings(&self) -> lading_portal::PortalSettings {
        lading_portal::PortalSettings {
            session_idle: std::time::Duration::from_millis(self.portal.session_ttl_ms),
            session_max: std::time::Duration::from_millis(self.portal.session_max_ms),
            workers: self.server.workers.clamp(1, 4),
        }
    }

    pub fn http_settings(&self) -> lading_api::HttpSettings {
        lading_api::HttpSettings {
            workers: self.server.workers,
            body_timeout: std::time::Duration::from_millis(self.server.body_timeout_ms),
        }
    }

    pub fn registry_config(&self) -> lading_registry::RegistryConfig {
        lading_registry::RegistryConfig {
            block_size: self.registry.block_size,
            max_batch: self.registry.max_batch,
            max_queue: self.registry.max_queue,
            checkpoint_interval: std::time::Duration::from_millis(
                self.registry.checkpoint_interval_ms,
            ),
            max_clock_skew: std::time::Duration::from_millis(self.registry.max_clock_skew_ms),
            max_offline: std::time::Duration::from_millis(self.registry.max_offline_ms),
            allow_test_keys: self.registry.allow_test_keys,
            ..lading_registry::RegistryConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples in deploy/ are what operators copy: they must parse, and mean what they say.
    #[test]
    fn the_deploy_examples_parse() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let registry = Config::from_file(&deploy.join("lading.example.toml")).unwrap();
        assert!(registry.server.client_ca.is_some());
        assert!(registry.database.url.is_some() && registry.database.owner_url.is_some());
        assert_eq!(registry.registry.max_exports, 2);
        assert!(registry.registry.require_write_credential);
        let limits = registry.registry.rate_limits();
        assert_eq!((limits.per_credential, limits.per_address), (1200, 600));
        assert_eq!(limits.period, std::time::Duration::from_secs(60));
        let replica = Config::from_file(&deploy.join("replica.example.toml")).unwrap();
        assert_eq!(
            replica.replica.registry.as_deref(),
            Some("https://registry.example.org:8443")
        );
        assert!(replica.replica.cert.is_some() && replica.replica.registry_key.is_some());
        assert_eq!(replica.database.url, None);
        assert_eq!(replica.replica.subscriptions_interval_ms, 60_000);

        // The consortium of deploy/consortium: a registry reconciling three replicas, each
        // serving and comparing checkpoints with the other two.
        let consortium = deploy.join("consortium");
        let registry = Config::from_file(&consortium.join("registry.toml")).unwrap();
        assert_eq!(registry.reconcile.replicas.len(), 3);
        assert!(registry.reconcile.cert.is_some() && registry.reconcile.key.is_some());
        for party in ["shipper", "carrier", "customs"] {
            let replica =
                Config::from_file(&consortium.join(format!("replica-{party}.toml"))).unwrap();
            assert!(replica.replica.listen.is_some(), "{party}");
            assert_eq!(replica.replica.peers.len(), 2, "{party}");
            let url = registry
                .reconcile
                .replicas
                .iter()
                .find(|t| t.url.contains(&format!("replica-{party}")))
                .map(|t| t.url.clone());
            assert!(url.is_some(), "the registry reconciles {party}'s replica");
        }
    }

    /// A write needs a credential unless the configuration says otherwise.
    #[test]
    fn writes_need_a_credential_by_default() {
        let config: Config = toml::from_str("[registry]\nmax_batch = 10\n").unwrap();
        assert!(config.registry.require_write_credential);
        assert!(RegistrySection::default().require_write_credential);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut config: Config = toml::from_str(
            "data_dir = \"/srv/lading\"\n[server]\nbind = \"127.0.0.1:9000\"\n[registry]\nmax_batch = 10\n",
        )
        .unwrap();
        config
            .apply_env(|name| match name {
                "LADING_BIND" => Some("127.0.0.1:9443".into()),
                "LADING_DATABASE_URL" => Some("postgres://x@h/db".into()),
                "LADING_DATABASE_OWNER_URL" => Some("postgres://o@h/db".into()),
                "LADING_MAX_EXPORTS" => Some("0".into()),
                "LADING_REQUIRE_WRITE_CREDENTIAL" => Some("false".into()),
                "LADING_RATE_LIMIT_PER_CREDENTIAL" => Some("1".into()),
                "LADING_RATE_LIMIT_PERIOD_MS" => Some("3600000".into()),
                _ => None,
            })
            .unwrap();
        // 0 is a setting (the registry makes no exports), not "unset".
        assert_eq!(config.registry.max_exports, 0);
        assert!(!config.registry.require_write_credential);
        assert_eq!(config.registry.rate_limits().per_credential, 1);
        assert_eq!(config.registry.rate_limits().per_address, 0);
        assert_eq!(config.registry.rate_limit_period_ms, 3_600_000);
        assert_eq!(
            config.database.owner_url.as_deref(),
            Some("postgres://o@h/db")
        );
        assert_eq!(config.server.bind.port(), 9443);
        assert_eq!(config.database.url.as_deref(), Some("postgres://x@h/db"));
        assert_eq!(config.data_dir, PathBuf::from("/srv/lading"));
        assert_eq!(config.registry.max_batch, 10);
    }

    /// A hot standby for reads: off unless named; its pool as large as the primary's unless
    /// told otherwise.
    #[test]
    fn the_read_url_has_a_file_setting_and_variables() {
        let config = Config::default();
        assert_eq!(config.database.read_url, None);
        assert_eq!(config.database.read_pool_size(), 16);
        let mut config: Config = toml::from_str(
            "[database]\nurl = \"postgres://w@a/db\"\nread_url = \"postgres://w@b/db\"\npool_size = 8\n",
        )
        .unwrap();
        assert_eq!(
            config.database.read_url.as_deref(),
            Some("postgres://w@b/db")
        );
        assert_eq!(config.database.read_pool_size(), 8);
        config
            .apply_env(|name| match name {
                "LADING_DATABASE_READ_URL" => Some("postgres://w@c/db".into()),
                "LADING_READ_POOL_SIZE" => Some("32".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            config.database.read_url.as_deref(),
            Some("postgres://w@c/db")
        );
        assert_eq!(config.database.read_pool_size(), 32);
        assert_eq!(config.database.pool_size(), 8);
        let err = Config::default()
            .apply_env(|name| (name == "LADING_READ_POOL_SIZE").then(|| "x".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("LADING_READ_POOL_SIZE"), "{err}");
    }

    #[test]
    fn the_portal_section_reads_its_file_and_environment() {
        let mut config: Config = toml::from_str(
            "[portal]\nlisten = \"127.0.0.1:8450\"\nsession_ttl_ms = 60000\nsigning_key = \"/k.jwk\"\n",
        )
        .unwrap();
        assert_eq!(config.portal.listen.map(|a| a.port()), Some(8450));
        assert_eq!(config.portal.signing_key, Some(PathBuf::from("/k.jwk")));
        assert!(!config.portal.allow_test_keys);
        assert_eq!(config.portal.session_ttl_ms, 60_000);
        assert_eq!(config.portal.session_max_ms, 24 * 3_600_000);
        config
            .apply_env(|name| match name {
                "LADING_PORTAL_LISTEN" => Some("127.0.0.1:9450".into()),
                "LADING_PORTAL_SESSION_TTL_MS" => Some("1000".into()),
                "LADING_PORTAL_SIGNING_KEY" => Some("/etc/lading/party.jwk".into()),
                "LADING_PORTAL_ALLOW_TEST_KEYS" => Some("true".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            config.portal.signing_key,
            Some(PathBuf::from("/etc/lading/party.jwk"))
        );
        assert!(config.portal.allow_test_keys);
        assert_eq!(config.portal.listen.map(|a| a.port()), Some(9450));
        assert_eq!(config.portal.session_ttl_ms, 1000);
        assert!(toml::from_str::<Config>("[portal]\nlisten_on = \"x\"\n").is_err());
    }

    /// Metrics are off unless `listen` is set, and then only with a token.
    #[test]
    fn the_metrics_section_reads_its_file_and_environment() {
        let config = Config::default();
        assert!(config.metrics.listen.is_none());
        assert!(config.metrics.endpoint().unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("metrics.token");
        std::fs::write(&token, "0123456789abcdef\n").unwrap();
        let mut config: Config = toml::from_str(&format!(
            "[metrics]\nlisten = \"127.0.0.1:9443\"\ntoken_file = {:?}\n",
            token.display().to_string()
        ))
        .unwrap();
        assert_eq!(config.metrics.listen.map(|a| a.port()), Some(9443));
        let (listen, read) = config.metrics.endpoint().unwrap().unwrap();
        assert_eq!((listen.port(), read.trim()), (9443, "0123456789abcdef"));
        config
            .apply_env(|name| match name {
                "LADING_METRICS_LISTEN" => Some("127.0.0.1:9543".into()),
                "LADING_METRICS_TOKEN_FILE" => Some("/etc/lading/metrics.token".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.metrics.listen.map(|a| a.port()), Some(9543));
        assert_eq!(
            config.metrics.token_file,
            Some(PathBuf::from("/etc/lading/metrics.token"))
        );
        // A listener without a token is refused, from the file or the environment.
        let mut config: Config =
            toml::from_str("[metrics]\nlisten = \"127.0.0.1:9443\"\n").unwrap();
        assert!(config.apply_env(|_| None).is_err());
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "LADING_METRICS_LISTEN").then(|| "127.0.0.1:1".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("token_file"), "{err}");
        assert!(toml::from_str::<Config>("[metrics]\nport = 1\n").is_err());
    }

    /// The node asks for its party's subscriptions every minute unless told otherwise.
    #[test]
    fn the_subscriptions_check_has_a_default_a_file_setting_and_a_variable() {
        assert_eq!(Config::default().replica.subscriptions_interval_ms, 60_000);
        let mut config: Config =
            toml::from_str("[replica]\nsubscriptions_interval_ms = 0\n").unwrap();
        assert_eq!(config.replica.subscriptions_interval_ms, 0);
        config
            .apply_env(|name| {
                (name == "LADING_REPLICA_SUBSCRIPTIONS_INTERVAL_MS").then(|| "250".to_owned())
            })
            .unwrap();
        assert_eq!(config.replica.subscriptions_interval_ms, 250);
    }

    #[test]
    fn unknown_settings_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("[server]\nbnid = \"x\"\n").is_err());
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "LADING_WORKERS").then(|| "many".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("LADING_WORKERS"));
    }
}
