//! `lading demo`: a complete registry on this machine with nothing configured.
//!
//! It starts a private PostgreSQL in `<data_dir>/postgres`, makes a self-signed certificate in
//! `<data_dir>/tls`, loads the fixture parties (TEST keys) and sample bills of lading, and
//! serves on loopback. Everything it loads is idempotent, so a second run keeps the data.
//!
//! Beside the registry (port P) and its three replicas (P+1..P+3) it serves the registry's
//! operator view (P+4) and each replica's web portal (P+5..P+7), with a user of each role on
//! every portal whose password is new at every run (printed, never stored but as a hash).

use anyhow::{Context, Result};
use lading_domain::jws::Jwk;
use lading_registry::{Expect, Origin, Registry};
use serde::Deserialize;

use crate::config::Config;
use crate::database::Database;

/// The fixtures, compiled in so the demo runs from any directory.
const PARTIES: &str = include_str!("../../../fixtures/parties.json");
const TOKENS: &str = include_str!("../../../fixtures/tokens.json");
const REGISTRY_KEY: &str = include_str!("../../../fixtures/keys/registry.jwk");
const SAMPLES: &str = include_str!("../../../fixtures/samples.json");
/// The TEST signing keys of the demo's nodes' parties: their portals sign with them.
const NODE_KEYS: [(&str, &str); 3] = [
    (
        "shipper-acme",
        include_str!("../../../fixtures/keys/shipper-acme.jwk"),
    ),
    (
        "carrier-oceanic",
        include_str!("../../../fixtures/keys/carrier-oceanic.jwk"),
    ),
    (
        "customs-nl",
        include_str!("../../../fixtures/keys/customs-nl.jwk"),
    ),
];

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

/// The demo's replicas: a shipper's, a carrier's and a customs authority's.
const REPLICAS: [&str; 3] = ["shipper-acme", "carrier-oceanic", "customs-nl"];

/// The consortium's TEST material in `<data_dir>/consortium`, made once: a CA, the registry's
/// certificate and each replica's party certificate, all for 127.0.0.1 and localhost.
struct Consortium {
    dir: std::path::PathBuf,
}

impl Consortium {
    fn ensure(dir: &std::path::Path) -> Result<Self> {
        let (ca, _) = lading_pki::Ca::load_or_create(
            &dir.join("ca"),
            "Lading demo consortium CA (TEST, not for production)",
        )?;
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let subjects = std::iter::once(lading_pki::Subject::Registry).chain(
            REPLICAS
                .iter()
                .map(|p| p.parse().map(lading_pki::Subject::Party))
                .collect::<Result<Vec<_>, _>>()?,
        );
        for subject in subjects {
            let cert = dir.join(format!("{}.crt.pem", subject.file_stem()));
            if !cert.exists() {
                ca.issue(&subject, &names)?.write(dir)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn ca(&self) -> std::path::PathBuf {
        self.dir.join("ca").join(lading_pki::CA_CERT_FILE)
    }
    fn cert(&self, who: &str) -> std::path::PathBuf {
        self.dir.join(format!("{who}.crt.pem"))
    }
    fn key(&self, who: &str) -> std::path::PathBuf {
        self.dir.join(format!("{who}.key.pem"))
    }
    fn read(path: &std::path::Path) -> Result<Vec<u8>> {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// A replica of the demo: its node, where it serves, and its TLS; where its portal serves,
/// with the portal's TLS (no client certificate) and users.
struct DemoReplica {
    node: lading_replica::node::Node,
    bind: std::net::SocketAddr,
    tls: std::sync::Arc<rustls::ServerConfig>,
    portal_bind: std::net::SocketAddr,
    portal_tls: std::sync::Arc<rustls::ServerConfig>,
    users: Vec<DemoUser>,
}

/// A portal user the demo made, with the password it printed.
struct DemoUser {
    username: String,
    role: lading_portal::auth::Role,
    password: String,
}

/// Adds each of `users` (name, role) for `party`, or gives it a new password when a run
/// before added it: every run prints passwords that work.
fn seed_users(
    store: &lading_store::Store,
    party: &str,
    users: &[(String, lading_portal::auth::Role)],
) -> Result<Vec<DemoUser>> {
    let mut conn = store.conn()?;
    users
        .iter()
        .map(|(username, role)| {
            // 96 random bits, base64url: the session token's alphabet.
            let password: String = lading_portal::auth::new_token().chars().take(16).collect();
            match lading_portal::users::add(&mut conn, username, party, *role, &password) {
                Ok(_) => {}
                Err(lading_portal::users::UserError::Exists(_)) => {
                    lading_portal::users::set_password(&mut conn, username, &password)?;
                }
                Err(e) => return Err(e.into()),
            }
            Ok(DemoUser {
                username: username.clone(),
                role: *role,
                password,
            })
        })
        .collect()
}

pub fn run(mut config: Config) -> Result<()> {
    // The demo is the one configuration that uses the fixtures' TEST keys.
    config.registry.allow_test_keys = true;
    config.database.url = None;
    let data_dir = crate::database::absolute(&config.data_dir)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let consortium = Consortium::ensure(&data_dir.join("consortium"))?;
    let ca = consortium.ca();
    let tls = crate::tls::server_config(
        &consortium.cert("registry"),
        &consortium.key("registry"),
        Some(&ca),
    )?;
    let bind = config.server.bind;
    let replica_bind = |i: u16| std::net::SocketAddr::new(bind.ip(), bind.port() + 1 + i);
    let operator_bind = std::net::SocketAddr::new(bind.ip(), bind.port() + 4);
    let portal_bind = |i: u16| std::net::SocketAddr::new(bind.ip(), bind.port() + 5 + i);
    let loopback = |addr: std::net::SocketAddr| format!("https://127.0.0.1:{}", addr.port());
    config.server.client_ca = Some(ca.clone());
    config.reconcile = crate::config::ReconcileSection {
        replicas: REPLICAS
            .iter()
            .zip(0u16..)
            .map(|(party, i)| {
                Ok(lading_registry::reconcile::ReplicaTarget {
                    party: party.parse()?,
                    url: loopback(replica_bind(i)),
                })
            })
            .collect::<Result<_>>()?,
        cert: Some(consortium.cert("registry")),
        key: Some(consortium.key("registry")),
        ca: Some(ca.clone()),
        interval_ms: 30_000,
    };
    // Hold the demo's listening ports while the private PostgreSQL picks a free one, so it
    // cannot take a port a replica is about to serve on. They are let go just before the
    // servers bind.
    let count = REPLICAS.len() as u16;
    let reserved = reserve_ports(
        [bind, operator_bind]
            .into_iter()
            .chain((0..count).map(replica_bind))
            .chain((0..count).map(portal_bind)),
    )?;
    // The registry's operator view, with the registry's certificate and no client one.
    config.portal.listen = Some(operator_bind);
    let operator_tls = crate::tls::server_config(
        &consortium.cert("registry"),
        &consortium.key("registry"),
        None,
    )?;
    let db = Database::embedded(&config, crate::database::EMBEDDED_DATABASE)?;

    let jwk: Jwk = serde_json::from_str(REGISTRY_KEY).context("fixtures/keys/registry.jwk")?;
    let signer = jwk.signing_key().context("fixtures/keys/registry.jwk")?;
    let public = jwk.to_public();
    std::fs::write(
        data_dir.join("registry.pub.jwk"),
        serde_json::to_string_pretty(&public)?,
    )?;

    db.urls.migrate()?;
    let store = db.urls.store(2)?;
    let parties: crate::parties::PartyFile =
        serde_json::from_str(PARTIES).context("fixtures/parties.json")?;
    let tokens: crate::parties::Tokens =
        serde_json::from_str(TOKENS).context("fixtures/tokens.json")?;
    crate::parties::import(&store, &parties, &tokens, true)?;
    let operator_users = seed_users(
        &store,
        lading_portal::site::OPERATOR_PARTY,
        &[("operator".to_owned(), lading_portal::auth::Role::Viewer)],
    )?;
    drop(store);

    // The replicas, each with its own database in the private cluster.
    let keys = lading_replica::genesis(PARTIES)?;
    let registry_key = public.verifying_key()?;
    let block_size = config.registry.block_size;
    lading_domain::follow::Follower::new(block_size, registry_key.clone(), keys.clone())?;
    let ca_pem = Consortium::read(&ca)?;
    let registry_url = loopback(bind);
    let mut replicas = Vec::new();
    for (party, i) in REPLICAS.iter().zip(0u16..) {
        let urls = db.sibling(&format!("replica_{}", party.replace('-', "_")))?;
        urls.migrate()?;
        let store = lading_replica::node::open_store(&urls.url, 4)?.with_owner_url(urls.owner_url);
        let (cert, key) = (consortium.cert(party), consortium.key(party));
        let client = lading_replica::FeedClient::new(
            &registry_url,
            &ca_pem,
            &Consortium::read(&cert)?,
            &Consortium::read(&key)?,
        )?;
        let (registry_key, keys) = (registry_key.clone(), keys.clone());
        let node = lading_replica::node::Node::start(
            lading_replica::node::NodeSettings {
                party: party.parse()?,
                registry: registry_url.clone(),
                page_size: 1000,
                poll_interval: std::time::Duration::from_millis(500),
                park_after: std::time::Duration::from_secs(600),
                subscriptions_interval: std::time::Duration::from_secs(60),
            },
            store,
            client,
            move || {
                lading_domain::follow::Follower::new(block_size, registry_key.clone(), keys.clone())
                    .unwrap_or_else(|_| unreachable!("the block size was checked"))
            },
        )?;
        let peers = REPLICAS
            .iter()
            .zip(0u16..)
            .filter(|(other, _)| other != &party)
            .map(|(_, j)| {
                lading_replica::FeedClient::peer(
                    &loopback(replica_bind(j)),
                    &ca_pem,
                    &Consortium::read(&cert)?,
                    &Consortium::read(&key)?,
                )
                .map_err(anyhow::Error::from)
            })
            .collect::<Result<Vec<_>>>()?;
        let users = seed_users(
            node.store(),
            party,
            &lading_portal::auth::Role::ALL.map(|role| (format!("{role}@{party}"), role)),
        )?;
        replicas.push((
            DemoReplica {
                node,
                bind: replica_bind(i),
                tls: crate::tls::server_config(&cert, &key, Some(&ca))?,
                portal_bind: portal_bind(i),
                portal_tls: crate::tls::server_config(&cert, &key, None)?,
                users,
            },
            peers,
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let samples: Samples = serde_json::from_str(SAMPLES).context("fixtures/samples.json")?;
    let first_reference = samples.chains.first().map(|c| c.reference.clone());
    let loader = samples_loader(samples);
    drop(reserved);
    let result = crate::serve::run(
        &config,
        &db,
        signer,
        public,
        crate::serve::Tls {
            api: tls,
            portal: Some(operator_tls),
        },
        |base| {
            let mut servers = Vec::new();
            let mut faces = Vec::new();
            let mut portals = vec![Portal {
                title: "operator view".to_owned(),
                url: loopback(operator_bind),
                users: operator_users,
            }];
            for (replica, peers) in replicas {
                let node = replica.node.clone();
                node.spawn_loops(runtime.handle(), peers, std::time::Duration::from_secs(2));
                let (server, addr) = lading_api::node::https_server(
                    node.clone(),
                    replica.bind,
                    replica.tls,
                    lading_api::HttpSettings {
                        workers: 1,
                        ..config.http_settings()
                    },
                )
                .with_context(|| format!("cannot listen on {}", replica.bind))?;
                servers.push(server);
                faces.push((
                    node.party().to_string(),
                    format!("https://127.0.0.1:{}", addr.port()),
                ));
                let portal = lading_portal::Portal::new(
                    node.clone(),
                    registry_key.clone(),
                    lading_portal::PortalSettings {
                        workers: 1,
                        ..config.portal_settings()
                    },
                );
                // The demo's portals sign with their party's TEST key from the fixtures (the
                // demo is the one configuration that may): a signer of the demo can issue and
                // act as in production, through the node's outbox.
                let portal = match demo_signing_key(&node) {
                    Ok(key) => portal.with_signing_key(key),
                    Err(e) => {
                        tracing::warn!(party = %node.party(), error = %e, "this demo portal signs nothing");
                        portal
                    }
                };
                let (server, addr) = lading_portal::https_server(
                    portal,
                    replica.portal_bind,
                    None,
                    replica.portal_tls,
                )
                .with_context(|| format!("cannot listen on {} (portal)", replica.portal_bind))?;
                servers.push(server);
                portals.push(Portal {
                    title: format!("portal of {}", node.party()),
                    url: format!("https://127.0.0.1:{}", addr.port()),
                    users: replica.users,
                });
            }
            print_welcome(
                &data_dir,
                &consortium,
                base,
                &faces,
                &portals,
                &tokens,
                first_reference.as_deref(),
            );
            Ok(servers)
        },
        Some(&*loader),
    );
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let closed = db.close();
    result.and(closed)
}

/// Binds each fixed address (port 0 needs no reservation), failing with the address that is
/// taken.
fn reserve_ports(
    addrs: impl Iterator<Item = std::net::SocketAddr>,
) -> Result<Vec<std::net::TcpListener>> {
    addrs
        .filter(|addr| addr.port() != 0)
        .map(|addr| {
            std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))
        })
        .collect()
}

/// A web portal of the demo: what it is, where, and who signs in to it.
struct Portal {
    title: String,
    url: String,
    users: Vec<DemoUser>,
}

/// What the demo is and where, with commands to try.
fn print_welcome(
    data_dir: &std::path::Path,
    consortium: &Consortium,
    base: &str,
    replicas: &[(String, String)],
    portals: &[Portal],
    tokens: &crate::parties::Tokens,
    first_reference: Option<&str>,
) {
    let ca = consortium.ca();
    let ca = ca.display();
    println!("Lading demo registry: {base}");
    for (party, url) in replicas {
        println!("Lading demo replica of {party}: {url}");
    }
    println!();
    println!("Web portals, with passwords new at every run. Their certificates are the TEST");
    println!("consortium's: import its CA into the browser as an authority, or accept the");
    println!("certificate warning once per portal. The CA: {ca}");
    for portal in portals {
        println!("Lading demo {}: {}", portal.title, portal.url);
        for user in &portal.users {
            println!(
                "    sign in as {:<26} password {}   ({})",
                user.username, user.password, user.role
            );
        }
    }
    println!();
    println!(
        "  data (PostgreSQL, one database each): {}",
        data_dir.display()
    );
    println!("  consortium CA (TEST):  {ca}");
    println!("  certificates and keys: {}", consortium.dir.display());
    println!(
        "  registry key:          {}",
        data_dir.join("registry.pub.jwk").display()
    );
    println!(
        "  The registry reconciles the replicas every 30 s; they compare checkpoints every 2 s."
    );
    println!();
    println!("Try it (tokens are the TEST tokens in fixtures/tokens.json):");
    println!("  curl --cacert {ca} {base}/v1/checkpoint");
    let carrier = tokens
        .get_key_value("carrier-oceanic")
        .or_else(|| tokens.iter().next());
    if let (Some(reference), Some((party, token))) = (first_reference, carrier) {
        println!(
            "  curl --cacert {ca} -H 'Authorization: Bearer {token}' {base}/v1/documents/{reference}   # as {party}"
        );
        println!(
            "  curl --cacert {ca} -H 'Authorization: Bearer {token}' {base}/v1/documents/{reference}/transitions"
        );
    }
    println!("  curl --cacert {ca} '{base}/v1/entries/0/proof'");
    let registry = (consortium.cert("registry"), consortium.key("registry"));
    println!(
        "  curl --cacert {ca} --cert {} --key {} {base}/v1/replicas   # as the registry's operator",
        registry.0.display(),
        registry.1.display()
    );
    if let Some((party, url)) = replicas.first() {
        println!(
            "  curl --cacert {ca} --cert {} --key {} {url}/v1/status   # {party}'s own replica",
            consortium.cert(party).display(),
            consortium.key(party).display()
        );
    }
    println!();
    println!(
        "Press Ctrl-C to stop; the data stays in {} for the next run.",
        data_dir.display()
    );
}

fn samples_loader(samples: Samples) -> Box<crate::serve::Preload> {
    Box::new(move |registry: &Registry| {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let mut added = 0;
        for chain in &samples.chains {
            for outcome in rt.block_on(registry.submit_from(
                chain.transitions.clone(),
                Expect::Transition,
                Origin::Import,
            )) {
                match outcome {
                    Ok(r) if !r.duplicate => added += 1,
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("sample chain {} refused: {e}", chain.reference),
                }
            }
        }
        // The samples were signed on 2026-11-02: an import of past statements, to which the
        // time rule (within minutes of now) does not apply; the chain rule does.
        for outcome in
            rt.block_on(registry.submit_from(samples.events.clone(), Expect::Event, Origin::Import))
        {
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

/// The fixtures' TEST key of `node`'s party, checked to be a live key of that party.
fn demo_signing_key(node: &lading_replica::node::Node) -> Result<lading_domain::jws::SigningKey> {
    let (_, text) = NODE_KEYS
        .iter()
        .find(|(party, _)| *party == node.party().as_str())
        .with_context(|| format!("no TEST key in the fixtures for {}", node.party()))?;
    let jwk: Jwk = serde_json::from_str(text).context("a fixture key")?;
    let key = jwk.signing_key()?;
    crate::custody::check_owner(&key, node.party(), node.follower().membership())?;
    Ok(key)
}
