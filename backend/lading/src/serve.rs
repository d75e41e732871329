//! `lading serve`: the production registry.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use lading_api::AppState;
use lading_domain::jws::{Jwk, SigningKey};
use lading_registry::Registry;

use crate::config::Config;
use crate::database::Database;

/// Loads the registry's private signing key, refusing fixture TEST keys unless allowed.
pub fn load_signing_key(config: &Config) -> Result<(SigningKey, Jwk)> {
    let path = config
        .registry
        .signing_key
        .as_ref()
        .context("registry.signing_key (or LADING_SIGNING_KEY) must name the registry's private JWK; make one with `lading keygen`")?;
    let jwk: Jwk = crate::cli::read_json(path)?;
    if jwk.is_test_key() && !config.registry.allow_test_keys {
        bail!(
            "{} is a TEST key (lading_test_key); a registry outside the demo refuses it",
            path.display()
        );
    }
    let signer = jwk
        .signing_key()
        .context("the registry signing key must be a private OKP JWK")?;
    Ok((signer, jwk.to_public()))
}

pub fn serve(config: Config) -> Result<()> {
    let (signer, public) = load_signing_key(&config)?;
    let (Some(cert), Some(key)) = (&config.server.tls_cert, &config.server.tls_key) else {
        bail!("server.tls_cert and server.tls_key (or LADING_TLS_CERT/LADING_TLS_KEY) are required: Lading serves HTTPS only");
    };
    let tls = crate::tls::server_config(cert, key, config.server.client_ca.as_deref())?;
    // The operator view asks browsers for no client certificate.
    let portal_tls = match config.portal.listen {
        Some(_) => Some(crate::tls::server_config(cert, key, None)?),
        None => None,
    };
    let db = Database::open(&config)?;
    let result = run(
        &config,
        &db,
        signer,
        public,
        Tls {
            api: tls,
            portal: portal_tls,
        },
        |base| {
            tracing::info!(%base, "registry listening");
            // One machine-readable line on stdout, for supervisors and tests.
            println!("listening on {base}");
            Ok(Vec::new())
        },
        None,
    );
    let closed = db.close();
    result.and(closed)
}

/// Work done on the started registry before it serves (the demo loads its samples).
pub type Preload = dyn Fn(&Registry) -> Result<()> + Sync;

/// The registry's TLS: the API's (which may ask a client certificate), and, with
/// `[portal] listen`, the operator view's (which asks none).
pub struct Tls {
    pub api: Arc<rustls::ServerConfig>,
    pub portal: Option<Arc<rustls::ServerConfig>>,
}

/// Runs the registry until SIGINT/SIGTERM, then stops it in order: the HTTP server (no new
/// requests), the sequencer (finishes its batch and signs a last checkpoint), the pool. With
/// `[portal] listen` (and `tls.portal`) the operator view serves beside it.
pub fn run(
    config: &Config,
    db: &Database,
    signer: SigningKey,
    public: Jwk,
    tls: Tls,
    on_start: impl FnOnce(&str) -> Result<Vec<actix_web::dev::Server>>,
    preload: Option<&Preload>,
) -> Result<()> {
    let pool_size = config.database.pool_size();
    let applied = db.urls.migrate()?;
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    let store = db.urls.store(pool_size)?.with_standby(
        config.database.read_url.as_deref(),
        config.database.read_pool_size(),
    )?;
    if store.standby().is_some() {
        tracing::info!("bounded reads are served from the hot standby (database.read_url)");
    }
    let registry = Registry::start(store, signer.clone(), config.registry_config())?;
    on_start_registry(&registry);
    if let Some(preload) = preload {
        if let Err(e) = preload(&registry) {
            registry.shutdown();
            return Err(e);
        }
    }
    let replicas = match replicas(config, &registry) {
        Ok(replicas) => replicas,
        Err(e) => {
            registry.shutdown();
            return Err(e);
        }
    };
    let operator = config
        .portal
        .listen
        .zip(tls.portal)
        .map(|(bind, portal_tls)| {
            let links = config
                .reconcile
                .replicas
                .iter()
                .map(|t| lading_portal::operator::ReplicaLink {
                    party: t.party.to_string(),
                    url: t.url.clone(),
                })
                .collect();
            let operator = lading_portal::operator::Operator::new(
                registry.store().clone(),
                links,
                config.portal_settings(),
            );
            (operator, bind, portal_tls)
        });
    let state = AppState {
        registry: registry.clone(),
        registry_key: public,
        registry_signer: signer,
        replicas: replicas.clone(),
        exports: lading_api::routes::exports::ExportSlots::new(config.registry.max_exports),
        allow_private_callbacks: config.notifications.allow_private_targets,
        credentials: lading_api::credentials::Credentials::new(
            config.registry.require_write_credential,
            config.registry.rate_limits(),
        ),
        walks: std::sync::Arc::default(),
    };
    // Webhook deliveries run beside the server and stop before the sequencer does.
    let deliverer = if config.notifications.enabled {
        let settings = match config.notifications.settings() {
            Ok(settings) => settings,
            Err(e) => {
                registry.shutdown();
                return Err(e);
            }
        };
        match lading_notify::Deliverer::start(registry.store().clone(), settings) {
            Ok(d) => Some(d),
            Err(e) => {
                registry.shutdown();
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let system = actix_web::rt::System::new();
    let result = system.block_on(async {
        if let Some(replicas) = replicas.filter(|_| config.reconcile.interval_ms > 0) {
            let every = std::time::Duration::from_millis(config.reconcile.interval_ms);
            actix_web::rt::spawn(async move {
                loop {
                    actix_web::rt::time::sleep(every).await;
                    for target in &replicas.targets {
                        replicas.reconciler.reconcile(target).await;
                    }
                }
            });
        }
        // The operator view binds first: when the registry says it listens, both do.
        let mut beside = Vec::new();
        if let Some((operator, bind, portal_tls)) = operator {
            let (server, addr) = lading_portal::operator::https_server(
                operator,
                bind,
                lading_api::take_inherited(bind),
                portal_tls,
            )
            .with_context(|| format!("cannot listen on {bind} (operator view)"))?;
            tracing::info!(%addr, "operator view listening");
            // One machine-readable line on stdout, for supervisors and tests.
            println!("operator portal https://{addr}");
            beside.push(server);
        }
        // `[metrics] listen`: its own listener, with the API's certificate.
        beside.extend(crate::metrics::registry(
            config,
            &registry,
            tls.api.clone(),
        )?);
        let (server, addr) =
            lading_api::https_server(state, config.server.bind, tls.api, config.http_settings())
                .with_context(|| format!("cannot listen on {}", config.server.bind))?;
        // Servers started beside the registry's (the demo's replicas) stop with it.
        beside.extend(on_start(&format!("https://{addr}"))?);
        let handles: Vec<_> = beside.iter().map(actix_web::dev::Server::handle).collect();
        for other in beside {
            actix_web::rt::spawn(other);
        }
        let served = server.await.context("the HTTP server failed");
        for handle in handles {
            handle.stop(true).await;
        }
        served
    });
    if let Some(deliverer) = deliverer {
        deliverer.stop();
    }
    registry.shutdown();
    result
}

/// The replicas to reconcile (`[reconcile]`), with the registry's consortium certificate.
fn replicas(config: &Config, registry: &Registry) -> Result<Option<lading_api::Replicas>> {
    if config.reconcile.replicas.is_empty() {
        return Ok(None);
    }
    let (ca, cert, key) = config.reconcile_material()?;
    let reconciler = lading_registry::reconcile::Reconciler::new(
        registry.store().clone(),
        config.registry.block_size,
        &ca,
        &cert,
        &key,
    )?;
    Ok(Some(lading_api::Replicas {
        reconciler,
        targets: config.reconcile.replicas.clone(),
    }))
}

fn on_start_registry(registry: &Registry) {
    if let Some(c) = registry.latest_checkpoint() {
        tracing::info!(size = c.checkpoint.size, root = %c.checkpoint.root, "resuming from checkpoint");
    }
}
