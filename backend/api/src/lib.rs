//! The registry's HTTP face: actix-web over rustls.
//!
//! Where a request enters: [`routes`], one module per resource. Where its rules live: the
//! registry (`lading_registry`) for submissions, the store's entitlement query for reads. How
//! it fails: [`problem`], one error type answered as RFC 7807 problem+json.

pub mod auth;
pub mod body;
pub mod cache;
pub mod codes;
pub mod contract;
pub mod credentials;
mod limits;
pub mod node;
mod node_reads;
pub mod problem;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{error::InternalError, web, App, HttpRequest, HttpResponse, HttpServer};
use lading_domain::jws::{Jwk, SigningKey};
use lading_registry::Registry;

use crate::problem::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Registry,
    /// The registry's public key, published so checkpoints can be verified.
    pub registry_key: Jwk,
    /// The registry's private key, which signs the manifests of the exports it makes.
    pub registry_signer: SigningKey,
    /// The replicas this registry reconciles, when it reconciles any.
    pub replicas: Option<Replicas>,
    /// How many customs exports (`GET /v1/exports`) are made at once.
    pub exports: routes::exports::ExportSlots,
    /// Whether subscriptions may name callbacks on loopback or private addresses.
    pub allow_private_callbacks: bool,
    /// API credentials: whether writes need one, their last use, the rate limits.
    pub credentials: credentials::Credentials,
    /// How each party's pages of `GET /v1/documents` are found, remembered for a while.
    pub walks: std::sync::Arc<lading_store::search::WalkCache>,
}

impl AppState {
    /// The size of the latest checkpoint this registry published (0 before the first): what
    /// caps a read from a hot standby (`lading_store::standby`).
    pub fn published_size(&self) -> u64 {
        self.registry
            .latest_checkpoint()
            .map_or(0, |c| c.checkpoint.size)
    }
}

/// The replicas a registry reconciles, and how.
#[derive(Debug, Clone)]
pub struct Replicas {
    pub reconciler: lading_registry::reconcile::Reconciler,
    pub targets: Vec<lading_registry::reconcile::ReplicaTarget>,
}

/// Path, query and JSON body errors answered as problem+json, on both faces.
fn error_handlers(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|err, _| {
        let detail = err.to_string();
        InternalError::from_response(
            err,
            actix_web::ResponseError::error_response(&ApiError::BadRequest {
                code: "bad_path",
                detail,
            }),
        )
        .into()
    }))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        let detail = err.to_string();
        InternalError::from_response(
            err,
            actix_web::ResponseError::error_response(&ApiError::BadRequest {
                code: "bad_query",
                detail,
            }),
        )
        .into()
    }))
    .app_data(web::JsonConfig::default().error_handler(|err, _| {
        let detail = err.to_string();
        InternalError::from_response(
            err,
            actix_web::ResponseError::error_response(&ApiError::BadRequest {
                code: "bad_json",
                detail,
            }),
        )
        .into()
    }));
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    error_handlers(cfg);
    cfg.service(get("/healthz", routes::health::healthz))
        .service(get("/readyz", routes::health::readyz))
        .service(get("/v1/openapi.json", openapi_json))
        .service(get("/v1/reference", reference_page))
        .service(
            web::scope("/v1")
                .wrap(actix_web::middleware::from_fn(limits::limit))
                .service(
                    web::resource("/tokens")
                        .route(web::post().to(routes::tokens::issue))
                        .route(web::get().to(routes::tokens::list))
                        .default_service(web::to(|| method_not_allowed("GET, POST"))),
                )
                .service(
                    web::resource("/tokens/{id}")
                        .route(web::delete().to(routes::tokens::revoke))
                        .default_service(web::to(|| method_not_allowed("DELETE"))),
                )
                .service(
                    web::resource("/submitters")
                        .route(web::post().to(routes::submitters::authorise))
                        .route(web::get().to(routes::submitters::list))
                        .default_service(web::to(|| method_not_allowed("GET, POST"))),
                )
                .service(
                    web::resource("/submitters/{party}")
                        .route(web::delete().to(routes::submitters::remove))
                        .default_service(web::to(|| method_not_allowed("DELETE"))),
                )
                .service(post("/transitions", routes::transitions::submit))
                .service(post(
                    "/transitions/batch",
                    routes::transitions::submit_batch,
                ))
                .service(
                    web::resource("/events")
                        .route(web::post().to(routes::events::submit))
                        .route(web::get().to(routes::search::events))
                        .default_service(web::to(|| method_not_allowed("GET, POST"))),
                )
                .service(post("/party-statements", routes::parties::submit))
                .service(get("/parties", routes::parties::list))
                .service(get("/documents", routes::search::documents))
                .service(get("/submissions", routes::search::submissions))
                .service(get("/documents/{reference}", routes::documents::get))
                .service(get(
                    "/documents/{reference}/transitions",
                    routes::documents::transitions,
                ))
                .service(get(
                    "/documents/{reference}/events",
                    routes::documents::events,
                ))
                .service(get("/checkpoint", routes::checkpoints::latest))
                .service(get("/checkpoints", routes::checkpoints::after))
                .service(get(
                    "/checkpoints/consistency",
                    routes::checkpoints::consistency,
                ))
                .service(get("/checkpoints/{size}", routes::checkpoints::at_size))
                .service(get("/entries/{index}", routes::entries::get))
                .service(get("/entries/{index}/proof", routes::checkpoints::proof))
                .service(get("/exports", routes::exports::export))
                .service(
                    web::resource("/subscriptions")
                        .route(web::get().to(routes::subscriptions::list))
                        .route(web::post().to(routes::subscriptions::create))
                        .default_service(web::to(|| method_not_allowed("GET, POST"))),
                )
                .service(
                    web::resource("/subscriptions/{id}")
                        .route(web::get().to(routes::subscriptions::get))
                        .route(web::delete().to(routes::subscriptions::delete))
                        .default_service(web::to(|| method_not_allowed("GET, DELETE"))),
                )
                .service(get("/notifications", routes::notifications::poll))
                .service(get("/notifications/stream", routes::notifications::stream))
                .service(get(
                    "/subscriptions/{id}/deliveries",
                    routes::subscriptions::deliveries,
                ))
                .service(post(
                    "/subscriptions/{id}/redeliver",
                    routes::subscriptions::redeliver,
                ))
                .service(get("/registry/key", registry_key))
                .service(get("/replication/entries", routes::replication::entries))
                .service(get(
                    "/replication/documents/{reference}",
                    routes::replication::document,
                ))
                .service(get("/replicas", routes::replicas::list))
                .service(post(
                    "/replicas/{party}/reconcile",
                    routes::replicas::reconcile,
                )),
        )
        .default_service(web::to(unknown_route));
}

/// A resource answering GET with `handler` and any other method with 405.
fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(|| method_not_allowed("GET")))
}

/// A resource answering POST with `handler` and any other method with 405.
fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(|| method_not_allowed("POST")))
}

/// This document (OpenAPI 3.1), as `schemas/openapi.json` holds it.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "contract", responses((status = 200, description = "The OpenAPI 3.1 document of this face", body = Object)))]
async fn openapi_json() -> HttpResponse {
    contract::serve(contract::Face::Registry)
}

/// This document as a page to read.
#[utoipa::path(get, path = "/v1/reference", tag = "contract", responses((status = 200, description = "The document rendered as HTML", content_type = "text/html", body = String)))]
async fn reference_page() -> HttpResponse {
    contract::reference::page(contract::Face::Registry)
}

async fn method_not_allowed(allowed: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allowed })
}

/// The registry's public key, which signs checkpoints and the exports it makes.
#[utoipa::path(get, path = "/v1/registry/key", tag = "checkpoints", responses((status = 200, description = "The registry's public key (an OKP JWK)", body = contract::files::Jwk)))]
async fn registry_key(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(&state.registry_key)
}

/// Keeps the client certificate (when the TLS config asks for one and the client sent one
/// that verified) with the connection, for the handlers that need to know who calls.
fn keep_peer_certificate(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(leaf) = conn
        .downcast_ref::<Tls>()
        .and_then(|tls| tls.get_ref().1.peer_certificates())
        .and_then(|chain| chain.first())
    {
        data.insert(auth::PeerCertificate(leaf.to_vec()));
    }
}

async fn unknown_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        what: format!("{} {}", req.method(), req.path()),
    })
}

/// Binds the HTTPS server (TLS only: there is no plain-HTTP listener). Port 0 picks a free
/// port; [`Server`] runs until stopped.
pub fn https_server(
    state: AppState,
    bind: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    settings: HttpSettings,
) -> std::io::Result<(Server, SocketAddr)> {
    serve_https(
        web::Data::new(state),
        configure,
        contract::Face::Registry,
        bind,
        tls,
        settings,
    )
}

/// Listening sockets handed to the process by whoever started it (systemd socket activation,
/// or a test harness), by the address each is bound to: a face whose address is among them
/// serves on that socket instead of binding its own, so the port is never free in between.
static INHERITED: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());

/// Keeps `listeners` for the faces that will bind their addresses.
pub fn inherit_listeners(listeners: Vec<std::net::TcpListener>) {
    INHERITED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(listeners);
}

/// The inherited socket bound to `addr`, if any (each is used once): for a face served by
/// another crate (the portal) that binds its own listener.
pub fn take_inherited(addr: SocketAddr) -> Option<std::net::TcpListener> {
    inherited(addr)
}

/// The inherited socket bound to `addr`, if any (each is used once).
fn inherited(addr: SocketAddr) -> Option<std::net::TcpListener> {
    let mut inherited = INHERITED.lock().unwrap_or_else(|e| e.into_inner());
    let at = inherited
        .iter()
        .position(|l| l.local_addr().is_ok_and(|a| a == addr))?;
    Some(inherited.swap_remove(at))
}

/// How an HTTPS face serves: its worker threads, and how long a client may take to send a
/// request's body.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub workers: usize,
    pub body_timeout: std::time::Duration,
}

/// An HTTPS server (TLS only) of `configure`'s routes with `data`, keeping each client's
/// certificate with its connection. Port 0 picks a free port; [`Server`] runs until stopped.
pub(crate) fn serve_https<T: Send + Sync + 'static>(
    data: web::Data<T>,
    configure: fn(&mut web::ServiceConfig),
    face: contract::Face,
    bind: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    settings: HttpSettings,
) -> std::io::Result<(Server, SocketAddr)> {
    let body_timeout = body::BodyTimeout(settings.body_timeout);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(body_timeout)
            .app_data(face)
            .wrap(actix_web::middleware::from_fn(contract::check::answers))
            .wrap(actix_web::middleware::from_fn(lading_weblog::api))
            .configure(configure)
    })
    .on_connect(keep_peer_certificate)
    .workers(settings.workers.max(1))
    // Small answers must leave at once: with Nagle's algorithm on, HTTP/2 answers wait for the
    // client's delayed ACK (~40-50 ms each).
    .tcp_nodelay(true)
    .shutdown_timeout(10);
    let server = match inherited(bind) {
        Some(listener) => {
            // Handed over bound, perhaps not yet listening (so that, until now, a client was
            // refused rather than left waiting).
            let socket = socket2::Socket::from(listener);
            // As when actix binds: the connections it leaves in TIME_WAIT must not keep the
            // next process (a restart) from binding the port.
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
        .ok_or_else(|| std::io::Error::other("the server bound no address"))?;
    Ok((server.run(), addr))
}
