//! The web portal of a party's node (`lading replica` with `[portal] listen`): server-rendered
//! HTML over HTTPS for the people of the node's party, read from the node's own verified data.
//!
//! Where things are:
//! - [`auth`]: roles and what each may do, argon2id password hashes, session tokens and the
//!   CSRF token derived from them; [`users`]: adding and changing users (`lading user`);
//! - [`session`]: the session cookie, the extractors that require a signed-in user with a
//!   permission ([`session::Allowed`]) and a form with its CSRF token ([`session::CsrfForm`]);
//! - [`limiter`]: the bounded in-memory counters that rate-limit sign-ins;
//! - [`security`]: the headers every answer carries, and the Origin check of every POST;
//! - [`assets`]: the stylesheet and htmx, compiled into the binary and served by content hash;
//! - [`pages`]: one module per page (sign-in, dashboard, bills of lading, a bill, users), and
//!   [`error`]: the error pages (404 for what does not exist *or* is not the party's);
//! - [`view`]: formatting shared by the templates (`templates/`, askama);
//! - [`site`]: where a portal's users live and which party they act for, shared by the node's
//!   portal and [`operator`], the registry's operator view on the same machinery.
//!
//! Every database call blocks (diesel): handlers run them with `web::block`.

pub mod assets;
pub mod auth;
pub mod custody;
pub mod error;
pub mod limiter;
pub mod operator;
pub mod pages;
pub mod security;
pub mod session;
pub mod site;
pub mod users;
pub mod view;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use lading_domain::jws::VerifyingKey;
use lading_replica::node::Node;

/// How a portal runs.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// A session unused for this long ends (idle timeout).
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however much it is used.
    pub session_max: Duration,
    /// HTTP worker threads.
    pub workers: usize,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(8 * 3600),
            session_max: Duration::from_secs(24 * 3600),
            workers: 2,
        }
    }
}

/// What every handler reaches: the node, the registry's key (to check checkpoints on the
/// pages that show them), the settings and the sign-in counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Portal(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    node: Node,
    registry_key: VerifyingKey,
    site: site::Site,
    custody: Option<custody::Custody>,
}

impl Portal {
    pub fn new(node: Node, registry_key: VerifyingKey, settings: PortalSettings) -> Self {
        let site = site::Site::new(node.store().clone(), node.party().as_str(), settings);
        Self(Arc::new(Inner {
            node,
            registry_key,
            site,
            custody: None,
        }))
    }

    /// The portal, signing with the party's `key` (see [`custody`]); call before serving.
    pub fn with_signing_key(self, key: lading_domain::jws::SigningKey) -> Self {
        let inner = Arc::try_unwrap(self.0).unwrap_or_else(|arc| Inner {
            node: arc.node.clone(),
            registry_key: arc.registry_key.clone(),
            site: arc.site.clone(),
            custody: arc.custody.clone(),
        });
        Self(Arc::new(Inner {
            custody: Some(custody::Custody::new(key)),
            ..inner
        }))
    }

    /// The party's signing key, when the node has one.
    pub fn custody(&self) -> Option<&custody::Custody> {
        self.0.custody.as_ref()
    }

    /// The node's users and their party.
    pub fn site(&self) -> &site::Site {
        &self.0.site
    }

    pub fn node(&self) -> &Node {
        &self.0.node
    }

    pub fn registry_key(&self) -> &VerifyingKey {
        &self.0.registry_key
    }

    pub fn settings(&self) -> &PortalSettings {
        self.0.site.settings()
    }

    pub fn limiter(&self) -> &limiter::LoginLimiter {
        self.0.site.limiter()
    }

    pub(crate) fn conn(&self) -> Result<lading_store::PgPooled, error::PortalError> {
        Ok(self.0.node.store().conn()?)
    }
}

/// Mounts the portal's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(16 * 1024))
        .service(web::resource("/assets/{hash}/{file}").route(web::get().to(assets::serve)))
        .service(
            web::resource("/login")
                .route(web::get().to(pages::login::form))
                .route(web::post().to(pages::login::submit)),
        )
        .service(web::resource("/logout").route(web::post().to(pages::login::logout)))
        .service(web::resource("/").route(web::get().to(pages::dashboard::show)))
        .service(web::resource("/bills").route(web::get().to(pages::bills::list)))
        .service(
            web::resource("/bills/new")
                .route(web::get().to(pages::issue::form))
                .route(web::post().to(pages::issue::submit)),
        )
        .service(web::resource("/bills/{reference}/act").route(web::post().to(pages::act::act)))
        .service(web::resource("/bills/{reference}/event").route(web::post().to(pages::act::event)))
        .service(web::resource("/drafts").route(web::get().to(pages::issue::list)))
        .service(web::resource("/drafts/{id}").route(web::get().to(pages::issue::show)))
        .service(web::resource("/drafts/{id}/sign").route(web::post().to(pages::issue::sign)))
        .service(web::resource("/drafts/{id}/discard").route(web::post().to(pages::issue::discard)))
        .service(web::resource("/submissions").route(web::get().to(pages::submissions::list)))
        .service(web::resource("/submissions/{seq}").route(web::get().to(pages::submissions::show)))
        .service(web::resource("/audit").route(web::get().to(pages::submissions::audit)))
        .service(web::resource("/bills/{reference}").route(web::get().to(pages::bill::show)))
        .service(web::resource("/users").route(web::get().to(pages::users::list)))
        .default_service(web::to(error::not_found));
}

/// The portal's HTTPS server on `bind`, or on `listener` when one was handed over already
/// bound to it (socket activation, a test harness). `tls` asks no client certificate.
pub fn https_server(
    portal: Portal,
    bind: SocketAddr,
    listener: Option<TcpListener>,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(Server, SocketAddr)> {
    let workers = portal.settings().workers;
    let site = web::Data::new(portal.site().clone());
    let data = web::Data::new(portal);
    serve_https(workers, bind, listener, tls, move |cfg| {
        cfg.app_data(data.clone())
            .app_data(site.clone())
            .configure(configure);
    })
}

/// An HTTPS server of the portal's pages that `routes` mounts (with their app data), behind
/// the headers and the Origin check every portal answer has.
pub(crate) fn serve_https(
    workers: usize,
    bind: SocketAddr,
    listener: Option<TcpListener>,
    tls: Arc<rustls::ServerConfig>,
    routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<(Server, SocketAddr)> {
    let server = HttpServer::new(move || {
        App::new()
            // The last wrapped is the outermost: the headers go on every answer, the
            // cross-origin refusal included.
            .wrap(actix_web::middleware::from_fn(security::same_origin_posts))
            .wrap(security::headers())
            .wrap(actix_web::middleware::from_fn(lading_weblog::portal))
            .configure(routes.clone())
    })
    .workers(workers.max(1))
    .tcp_nodelay(true)
    .shutdown_timeout(10);
    let server = match listener {
        Some(listener) => {
            let socket = socket2::Socket::from(listener);
            socket.set_reuse_address(true)?;
            socket.listen(1024)?;
            socket.set_nonblocking(true)?;
            server.listen_rustls_0_23(socket.into(), (*tls).clone())?
        }
        None => server.bind_rustls_0_23(bind, (*tls).clone())?,
    };
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the portal bound no address"))?;
    Ok((server.run(), addr))
}
