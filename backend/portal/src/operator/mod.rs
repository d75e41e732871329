//! The registry's operator view (`lading serve` with `[portal] listen`): the consortium's
//! replicas as the registry's reconciliations left them, its latest checkpoints and the
//! ingest rate of the last hour, for the registry's operators. The same users, sessions,
//! CSRF tokens and security headers as a node's portal ([`crate::site`]); its users are in the
//! registry's database, of the party [`crate::site::OPERATOR_PARTY`], so no party's user
//! signs in here.

pub mod chart;
pub mod pages;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use lading_store::Store;

use crate::site::{Site, OPERATOR_PARTY};
use crate::{pages as shared, PortalSettings};

/// A replica the registry reconciles, as its `[reconcile]` section names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLink {
    pub party: String,
    pub url: String,
}

/// What the operator view's handlers reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Operator(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    site: Site,
    replicas: Vec<ReplicaLink>,
}

impl Operator {
    /// The operator view of the registry whose database `store` opens.
    pub fn new(store: Store, replicas: Vec<ReplicaLink>, settings: PortalSettings) -> Self {
        Self(Arc::new(Inner {
            site: Site::new(store, OPERATOR_PARTY, settings),
            replicas,
        }))
    }

    pub fn site(&self) -> &Site {
        &self.0.site
    }

    pub fn replicas(&self) -> &[ReplicaLink] {
        &self.0.replicas
    }
}

/// Mounts the operator view's routes: the sign-in pages and assets are the node portal's own.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(16 * 1024))
        .service(web::resource("/assets/{hash}/{file}").route(web::get().to(crate::assets::serve)))
        .service(
            web::resource("/login")
                .route(web::get().to(shared::login::form))
                .route(web::post().to(shared::login::submit)),
        )
        .service(web::resource("/logout").route(web::post().to(shared::login::logout)))
        .service(web::resource("/").route(web::get().to(pages::replicas)))
        .service(web::resource("/checkpoints").route(web::get().to(pages::checkpoints)))
        .service(web::resource("/ingest").route(web::get().to(pages::ingest)))
        .default_service(web::to(crate::error::not_found));
}

/// The operator view's HTTPS server (as [`crate::https_server`]: `tls` asks no client
/// certificate).
pub fn https_server(
    operator: Operator,
    bind: SocketAddr,
    listener: Option<TcpListener>,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(Server, SocketAddr)> {
    let workers = operator.site().settings().workers;
    let site = web::Data::new(operator.site().clone());
    let data = web::Data::new(operator);
    crate::serve_https(workers, bind, listener, tls, move |cfg| {
        cfg.app_data(data.clone())
            .app_data(site.clone())
            .configure(configure);
    })
}

pub(crate) fn operator_of(
    req: &actix_web::HttpRequest,
) -> Result<Operator, crate::error::PortalError> {
    req.app_data::<web::Data<Operator>>()
        .map(|o| o.get_ref().clone())
        .ok_or_else(|| crate::error::PortalError::Internal("the operator view is missing".into()))
}
