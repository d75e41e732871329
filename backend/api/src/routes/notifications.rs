//! Notifications for clients that cannot take callbacks: the same CloudEvents a subscription
//! would be sent, for everything the caller may read, by long-poll
//! (`GET /v1/notifications?after=`) or as a Server-Sent Events stream that resumes from
//! `Last-Event-ID` (`GET /v1/notifications/stream`). An event's id is its ledger index.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use lading_domain::Digest;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Subscriber;
use crate::problem::ApiError;
use crate::AppState;

/// Entries read from the ledger at once.
const PAGE: u64 = 500;
/// The longest a long-poll waits.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often an idle long-poll or stream looks at the ledger again.
const LOOK_AGAIN: Duration = Duration::from_millis(200);
/// A comment line on an idle stream, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the caller may read from `from` on (at most a page of the ledger), as CloudEvents,
/// and the index to read from next.
async fn read_from(
    state: &AppState,
    party: &str,
    from: u64,
) -> Result<(Vec<(u64, Value)>, u64), ApiError> {
    let store = state.registry.store().clone();
    let party = party.to_owned();
    web::block(move || -> Result<(Vec<(u64, Value)>, u64), ApiError> {
        let mut conn = store.conn().map_err(ApiError::unexpected)?;
        let page = lading_store::reads::feed_for_party(&mut conn, &party, from, PAGE)
            .map_err(ApiError::unexpected)?;
        let next = page
            .last()
            .map_or(from, |e| u64::try_from(e.idx).unwrap_or(0) + 1);
        let events = page
            .iter()
            .filter_map(|e| {
                let index = u64::try_from(e.idx).ok()?;
                let signed = std::str::from_utf8(e.signed.as_deref()?).ok()?;
                let leaf = Digest::from_slice(&e.leaf_hash).ok()?;
                lading_notify::cloud_event(index, &leaf, signed).map(|n| (index, n.event))
            })
            .collect();
        Ok((events, next))
    })
    .await
    .map_err(ApiError::unexpected)?
}

/// The ledger's size now: where a client that names no place starts.
async fn ledger_size(state: &AppState) -> Result<u64, ApiError> {
    let store = state.registry.store().clone();
    web::block(move || {
        let mut conn = store.conn().map_err(ApiError::unexpected)?;
        lading_store::ledger::ledger_size(&mut conn).map_err(ApiError::unexpected)
    })
    .await
    .map_err(ApiError::unexpected)?
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// The last index the client has seen; absent: only what comes from now on.
    pub after: Option<u64>,
    /// Seconds to wait for something new (at most 30; 0 answers at once).
    pub wait: Option<u64>,
}

/// `GET /v1/notifications?after=N&wait=S` → `{notifications: [CloudEvent…], after: M}`: what
/// the caller may read after index `N`, waiting up to `S` seconds when there is nothing yet;
/// ask again with `after=M`.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", security(("bearer" = ["subscribe"])), params(PollQuery), responses((status = 200, description = "What the caller may read after index after, oldest first", body = crate::contract::files::NotificationPage)))]
pub async fn poll(
    state: web::Data<AppState>,
    caller: Subscriber,
    query: web::Query<PollQuery>,
) -> Result<HttpResponse, ApiError> {
    let party = caller.0.id.to_string();
    let mut from = match query.after {
        Some(after) => after.saturating_add(1),
        None => ledger_size(&state).await?,
    };
    let wait = Duration::from_secs(query.wait.unwrap_or(20)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    loop {
        let (events, next) = read_from(&state, &party, from).await?;
        // Entries it may not read are passed over: its place moves past them all the same.
        from = next;
        if !events.is_empty() || Instant::now() >= deadline {
            let after = from.checked_sub(1);
            let notifications: Vec<Value> = events.into_iter().map(|(_, e)| e).collect();
            return Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "private, no-store"))
                .json(serde_json::json!({ "notifications": notifications, "after": after })));
        }
        actix_web::rt::time::sleep(LOOK_AGAIN).await;
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    pub after: Option<u64>,
}

/// `GET /v1/notifications/stream`: `text/event-stream`, one event per entry the caller may
/// read (`id:` its index, `event:` the CloudEvent's type, `data:` the CloudEvent), resuming
/// after `Last-Event-ID` (or `?after=`) when given, else from now on.
#[utoipa::path(get, path = "/v1/notifications/stream", tag = "notifications", security(("bearer" = ["subscribe"])), params(StreamQuery, ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this ledger index")), responses((status = 200, description = "Server-Sent Events: id the ledger index, event the CloudEvent type, data the CloudEvent (schemas/cloud-event.json)", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Subscriber,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let resume = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(query.after);
    let from = match resume {
        Some(after) => after.saturating_add(1),
        None => ledger_size(&state).await?,
    };
    let party = caller.0.id.to_string();
    let events = futures::stream::unfold(
        (state, party, from, Instant::now()),
        |(state, party, from, quiet_since)| async move {
            let mut from = from;
            let mut quiet_since = quiet_since;
            loop {
                let (events, next) = match read_from(&state, &party, from).await {
                    Ok(read) => read,
                    // The stream ends; the client resumes from its Last-Event-ID.
                    Err(_) => return None,
                };
                from = next;
                if !events.is_empty() {
                    let mut chunk = String::new();
                    for (index, event) in events {
                        let kind = event["type"].as_str().unwrap_or("message").to_owned();
                        chunk.push_str(&format!("id: {index}\nevent: {kind}\ndata: {event}\n\n"));
                    }
                    return Some((
                        Ok::<_, actix_web::Error>(web::Bytes::from(chunk)),
                        (state, party, from, Instant::now()),
                    ));
                }
                if quiet_since.elapsed() >= KEEP_ALIVE {
                    quiet_since = Instant::now();
                    return Some((
                        Ok(web::Bytes::from_static(b": keep-alive\n\n")),
                        (state, party, from, quiet_since),
                    ));
                }
                actix_web::rt::time::sleep(LOOK_AGAIN).await;
            }
        },
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "text/event-stream"))
        .insert_header(("Cache-Control", "private, no-store"))
        .streaming(events))
}
