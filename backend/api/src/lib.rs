//! The registry's HTTP face: actix-web over rustls.
//!
//! Where a request enters: [`routes`], one module per resource. Where its rules live: the
//! registry (`lading_registry`) for submissions, the store's entitlement query for reads. How
//! it fails: [`problem`], one error type answered as RFC 7807 problem+json.

pub mod auth;
pub mod body;
pub mod problem;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{error::InternalError, web, App, HttpRequest, HttpResponse, HttpServer};
use lading_domain::jws::Jwk;
use lading_registry::Registry;

use crate::problem::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Registry,
    /// The registry's public key, published so checkpoints can be verified.
    pub registry_key: Jwk,
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
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
    .route("/healthz", web::get().to(routes::health::healthz))
    .route("/readyz", web::get().to(routes::health::readyz))
    .service(
        web::scope("/v1")
            .route("/transitions", web::post().to(routes::transitions::submit))
            .route(
                "/transitions/batch",
                web::post().to(routes::transitions::submit_batch),
            )
            .route("/events", web::post().to(routes::events::submit))
            .route(
                "/documents/{reference}",
                web::get().to(routes::documents::get),
            )
            .route(
                "/documents/{reference}/transitions",
                web::get().to(routes::documents::transitions),
            )
            .route(
                "/documents/{reference}/events",
                web::get().to(routes::documents::events),
            )
            .route("/checkpoint", web::get().to(routes::checkpoints::latest))
            .route(
                "/checkpoints/{size}",
                web::get().to(routes::checkpoints::at_size),
            )
            .route(
                "/entries/{index}/proof",
                web::get().to(routes::checkpoints::proof),
            )
            .route("/registry/key", web::get().to(registry_key)),
    )
    .default_service(web::to(unknown_route));
}

async fn registry_key(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(&state.registry_key)
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
    workers: usize,
) -> std::io::Result<(Server, SocketAddr)> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("lading::http"))
            .configure(configure)
    })
    .workers(workers.max(1))
    // Small answers must leave at once: with Nagle's algorithm on, HTTP/2 answers wait for the
    // client's delayed ACK (~40-50 ms each).
    .tcp_nodelay(true)
    .shutdown_timeout(10)
    .bind_rustls_0_23(bind, (*tls).clone())?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the server bound no address"))?;
    Ok((server.run(), addr))
}
