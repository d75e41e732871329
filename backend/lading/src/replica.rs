//! `lading replica`: a party's replica node (`lading_replica::node`). It follows the registry's
//! feed over mutual TLS, checks every entry and checkpoint, and keeps what it checked in its own
//! PostgreSQL database (the embedded default, or `database.url`). With `replica.listen` it also
//! serves its party (reads, and submissions kept and forwarded while the registry is away), its
//! peers (checkpoints to compare) and the registry (reconciliation), over mutual TLS.
//!
//! On start it judges again everything its database holds — it trusts its own rows no more
//! than the feed. A refused entry or checkpoint becomes an incident row with its evidence, and
//! nothing after it is taken until the registry sends something that checks.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lading_domain::follow::Follower;
use lading_domain::jws::Jwk;
use lading_replica::node::{Node, NodeSettings};
use lading_replica::FeedClient;

use crate::config::Config;
use crate::database::Database;

/// What a node is made of, read from the configuration: who it is, how it reaches the
/// registry, and what it checks entries and checkpoints with.
pub struct NodeInputs {
    pub party: lading_domain::ids::PartyId,
    pub registry: String,
    pub client: FeedClient,
    /// The membership at the genesis (parties.json).
    pub genesis: lading_domain::membership::Membership,
    /// The registry's public key, as configured.
    pub registry_jwk: Jwk,
    pub registry_key: lading_domain::jws::VerifyingKey,
    pub block_size: u64,
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl NodeInputs {
    pub fn load(config: &Config) -> Result<Self> {
        let section = &config.replica;
        let need = |what: &str, value: &Option<std::path::PathBuf>| {
            value
                .clone()
                .with_context(|| format!("replica.{what} is required for a node"))
        };
        let registry = section.registry.clone().context(
            "replica.registry (or LADING_REPLICA_REGISTRY) must name the registry's https:// URL",
        )?;
        let read = |path: &std::path::Path| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let (ca, cert, key) = (
            need("ca", &section.ca)?,
            need("cert", &section.cert)?,
            need("key", &section.key)?,
        );
        let (ca_pem, cert_pem, key_pem) = (read(&ca)?, read(&cert)?, read(&key)?);
        let party = lading_pki::party_of(
            lading_pki::parse_certs(&cert_pem)?
                .first()
                .context("replica.cert holds no certificate")?,
        )
        .context("replica.cert must be a party's certificate (`lading ca issue --party`)")?;
        let client = FeedClient::new(&registry, &ca_pem, &cert_pem, &key_pem)?;
        let parties = String::from_utf8(read(&need("parties", &section.parties)?)?)
            .context("the party registry is not UTF-8")?;
        let keys = lading_replica::genesis(&parties)?;
        let registry_jwk: Jwk =
            crate::cli::read_json(&need("registry_key", &section.registry_key)?)?;
        if registry_jwk.is_private() {
            bail!("replica.registry_key must be the registry's public JWK, not its private key");
        }
        let registry_key = registry_jwk.verifying_key()?;
        let block_size = config.registry.block_size;
        // Checked once here, so the node can build followers without failing.
        Follower::new(block_size, registry_key.clone(), keys.clone())
            .context("the follower's block size")?;
        Ok(Self {
            party,
            registry,
            client,
            genesis: keys,
            registry_jwk,
            registry_key,
            block_size,
            ca,
            cert,
            key,
            ca_pem,
            cert_pem,
            key_pem,
        })
    }

    /// The node on `db`, restored from its rows (its loops not started).
    pub fn start(&self, config: &Config, db: &Database) -> Result<Node> {
        let section = &config.replica;
        db.urls.migrate()?;
        let store = lading_replica::node::open_store(&db.urls.url, 8)
            .context("cannot connect to the database")?
            .with_owner_url(db.urls.owner_url.clone());
        let (registry_key, keys, block_size) = (
            self.registry_key.clone(),
            self.genesis.clone(),
            self.block_size,
        );
        let node = Node::start(
            NodeSettings {
                party: self.party.clone(),
                registry: self.registry.clone(),
                page_size: section.page_size,
                poll_interval: Duration::from_millis(section.poll_interval_ms),
                park_after: Duration::from_millis(section.park_after_ms),
                subscriptions_interval: Duration::from_millis(section.subscriptions_interval_ms),
            },
            store,
            self.client.clone(),
            move || {
                Follower::new(block_size, registry_key.clone(), keys.clone())
                    .unwrap_or_else(|_| unreachable!("the block size was checked"))
            },
        )?;
        tracing::info!(
            size = node.follower().size(),
            "replica restored from its database"
        );
        Ok(node)
    }
}

pub fn replica(config: Config) -> Result<()> {
    let inputs = NodeInputs::load(&config)?;
    let section = &config.replica;
    let peers = section
        .peers
        .iter()
        .map(|peer| FeedClient::peer(peer, &inputs.ca_pem, &inputs.cert_pem, &inputs.key_pem))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = section
        .listen
        .map(|_| crate::tls::server_config(&inputs.cert, &inputs.key, Some(&inputs.ca)))
        .transpose()?;
    // The party's signing key: refused before anything starts when it is not in custody as
    // it must be (see `crate::custody`).
    let signing_key = config
        .portal
        .signing_key
        .as_deref()
        .map(|path| crate::custody::load(path, config.portal.allow_test_keys))
        .transpose()?;
    // The portal serves people's browsers with the node's own server certificate, and asks
    // them for none.
    let portal = config
        .portal
        .listen
        .map(|bind| {
            crate::tls::server_config(&inputs.cert, &inputs.key, None).map(|tls| PortalFace {
                bind,
                tls,
                registry_key: inputs.registry_key.clone(),
                signing_key: signing_key.clone(),
            })
        })
        .transpose()?;
    // The metrics listener serves with the node's own certificate too, and asks for none.
    let metrics_tls = config
        .metrics
        .listen
        .map(|_| crate::tls::server_config(&inputs.cert, &inputs.key, None))
        .transpose()?;

    let db = Database::open(&config)?;
    let result = (|| {
        let node = inputs.start(&config, &db)?;
        if let Some(key) = &signing_key {
            crate::custody::check_owner(key, node.party(), node.follower().membership())?;
            tracing::info!(kid = %key.kid, "the portal signs with the party's key");
        }
        if let Some(dir) = &config.export.dir {
            schedule_exports(&node, &inputs, signing_key.clone(), &config, dir)?;
        }
        run(
            node,
            &config,
            &inputs.registry,
            peers,
            tls,
            portal,
            metrics_tls,
        )
    })();
    let closed = db.close();
    result.and(closed)
}

/// Starts the scheduled customs exports (`[export] dir`): only on a customs authority's node,
/// and only with the party's key to sign them.
fn schedule_exports(
    node: &Node,
    inputs: &NodeInputs,
    signing_key: Option<lading_domain::jws::SigningKey>,
    config: &Config,
    dir: &std::path::Path,
) -> Result<()> {
    let role = node
        .follower()
        .membership()
        .member(node.party())
        .map(|m| m.party.role);
    if role != Some(lading_domain::Role::CustomsAuthority) {
        bail!(
            "export.dir is set, but {} is not a customs authority: scheduled exports are for customs authorities",
            node.party()
        );
    }
    let signer = signing_key.context(
        "export.dir is set: the exports are signed with the party's key, [portal] signing_key (LADING_PORTAL_SIGNING_KEY)",
    )?;
    lading_export::schedule::spawn(
        node.clone(),
        inputs.registry_jwk.clone(),
        signer,
        lading_export::schedule::Schedule {
            dir: dir.to_owned(),
            interval: Duration::from_millis(config.export.interval_ms),
            retention: config.export.retention,
        },
    )?;
    tracing::info!(dir = %dir.display(), interval_ms = config.export.interval_ms, "scheduled customs exports");
    Ok(())
}

/// The portal's listener, its TLS configuration and the registry's key (its pages check
/// checkpoints with it).
struct PortalFace {
    bind: std::net::SocketAddr,
    tls: std::sync::Arc<rustls::ServerConfig>,
    registry_key: lading_domain::jws::VerifyingKey,
    signing_key: Option<lading_domain::jws::SigningKey>,
}

/// Runs the node's loops on a runtime of their own and, with `replica.listen`, its HTTPS face,
/// with `portal.listen` its web portal, and with `metrics.listen` its metrics; until SIGINT or
/// SIGTERM.
fn run(
    node: Node,
    config: &Config,
    registry: &str,
    peers: Vec<FeedClient>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    portal: Option<PortalFace>,
    metrics_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    node.spawn_loops(
        runtime.handle(),
        peers,
        Duration::from_millis(config.replica.peer_interval_ms),
    );
    // One machine-readable line on stdout, for supervisors and tests.
    println!("following {registry}");
    let face = config.replica.listen.zip(tls);
    let result = match (face, portal) {
        (None, None) if metrics_tls.is_none() => runtime.block_on(async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            Ok(())
        }),
        (face, portal) => {
            let system = actix_web::rt::System::new();
            system.block_on(async {
                let mut servers = Vec::new();
                // `[metrics] listen`: bound first, so it is up when the others say they are.
                if let Some(tls) = metrics_tls {
                    servers.extend(crate::metrics::node(config, &node, tls)?);
                }
                // The portal first: a supervisor that waits for `serving` finds both up.
                if let Some(portal) = portal {
                    let bind = portal.bind;
                    let settings = config.portal_settings();
                    let mut app =
                        lading_portal::Portal::new(node.clone(), portal.registry_key, settings);
                    if let Some(key) = portal.signing_key {
                        app = app.with_signing_key(key);
                    }
                    let (server, addr) = lading_portal::https_server(
                        app,
                        bind,
                        lading_api::take_inherited(bind),
                        portal.tls,
                    )
                    .with_context(|| format!("cannot listen on {bind} (portal)"))?;
                    println!("portal https://{addr}");
                    servers.push(server);
                }
                if let Some((bind, tls)) = face {
                    let (server, addr) = lading_api::node::https_server(
                        node.clone(),
                        bind,
                        tls,
                        config.http_settings(),
                    )
                    .with_context(|| format!("cannot listen on {bind}"))?;
                    println!("serving https://{addr}");
                    servers.push(server);
                }
                // The servers stop on SIGINT or SIGTERM.
                futures::future::try_join_all(servers)
                    .await
                    .context("the HTTP server failed")
                    .map(|_| ())
            })
        }
    };
    runtime.shutdown_timeout(Duration::from_secs(5));
    tracing::info!(size = node.follower().size(), "replica stopped");
    result
}
