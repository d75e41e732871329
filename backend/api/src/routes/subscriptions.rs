//! `/v1/subscriptions`: a party's webhooks. Each names an HTTPS callback and a filter; the
//! registry delivers there every entry the party is entitled to and the filter takes, from the
//! ledger's size when it was made (`lading-notify`). The secret that signs deliveries is shown
//! once, in the answer that creates it. Another party's subscription answers exactly as a
//! missing one. With `batch` a subscription is sent CloudEvents batches (many events a
//! request) instead of one event a request, for receivers that could not keep up otherwise.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use lading_notify::{check_target, new_secret, Filter};
use lading_store::subscriptions::{self, DeliveryRow, NewSubscription, SubscriptionRow};
use serde::{Deserialize, Serialize};

use crate::auth::{Subscriber, SubscriptionReader};
use crate::problem::ApiError;
use crate::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscriptionBody {
    pub url: String,
    #[serde(default)]
    pub filter: Filter,
    /// Deliver in CloudEvents batched mode: POSTs of `application/cloudevents-batch+json`, a
    /// JSON array of up to `maxEvents` events in ledger order. Absent: one event a request
    /// (`application/cloudevents+json`).
    #[serde(default)]
    pub batch: Option<BatchBody>,
}

/// A subscription's batched delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchBody {
    /// The most events in one request (1 to 1000); a request holds fewer when fewer wait.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_events: i64,
}

/// The largest `batch.maxEvents`.
const MAX_BATCH: i64 = 1000;

/// The body of `POST /v1/subscriptions`, read so that a bad `batch` has a code of its own.
fn parse_new(body: &[u8]) -> Result<NewSubscriptionBody, ApiError> {
    let invalid = |e: serde_json::Error| ApiError::BadRequest {
        code: "subscription_invalid",
        detail: format!("the body is not a subscription ({{url, filter, batch}}): {e}"),
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    let batch_invalid = |detail: String| ApiError::BadRequest {
        code: "subscription_batch_invalid",
        detail,
    };
    if let Some(batch) = value.get("batch").filter(|b| !b.is_null()) {
        let batch = BatchBody::deserialize(batch).map_err(|e| {
            batch_invalid(format!(
                "batch is not {{\"maxEvents\": 1..{MAX_BATCH}}}: {e}"
            ))
        })?;
        if !(1..=MAX_BATCH).contains(&batch.max_events) {
            return Err(batch_invalid(format!(
                "batch.maxEvents is {}: it is from 1 to {MAX_BATCH}",
                batch.max_events
            )));
        }
    }
    serde_json::from_value(value).map_err(invalid)
}

/// A subscription as the API shows it (the secret only when it is made).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionAnswer {
    pub id: String,
    pub url: String,
    pub filter: Filter,
    /// `active`, or `failing` once deliveries have failed for longer than
    /// `notifications.failing_after_ms` (they are still retried).
    pub status: String,
    /// The first ledger index not yet delivered (or passed over).
    pub next_index: i64,
    pub failures: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
    /// Present when deliveries are batched (CloudEvents batched mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAnswer {
    /// The entry delivered; for a batch, its first.
    pub entry_index: i64,
    /// For a batch: its last entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_entry_index: Option<i64>,
    /// For a batch: how many events it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<i32>,
    pub attempt: i32,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub millis: i32,
}

/// `GET /v1/subscriptions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionAnswer>,
}

/// `GET /v1/subscriptions/{id}/deliveries`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryAnswer>,
}

/// `POST /v1/subscriptions/{id}/redeliver`: where deliveries start again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redelivery {
    pub next_index: u64,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn answer(row: SubscriptionRow, secret: bool) -> SubscriptionAnswer {
    SubscriptionAnswer {
        filter: serde_json::from_str(&row.filter).unwrap_or_default(),
        status: row.status,
        next_index: row.next_index,
        failures: row.failures,
        failing_since: row.failing_since.map(time),
        retry_at: row.retry_at.map(time),
        last_error: row.last_error,
        created_at: time(row.created_at),
        batch: row.batch_max.map(|m| BatchBody {
            max_events: i64::from(m),
        }),
        secret: secret.then_some(row.secret),
        id: row.id,
        url: row.url,
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        what: format!("subscription {id}"),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(ApiError::unexpected)?
}

/// Runs `op` for the caller's party on a connection, off the async workers.
async fn for_caller<T: Send + 'static>(
    state: &AppState,
    caller: &lading_domain::party::Party,
    op: impl FnOnce(&mut lading_store::PgConnection, &str) -> Result<T, lading_store::StoreError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let store = state.registry.store().clone();
    let party = caller.id.to_string();
    blocking(move || {
        let mut conn = store.conn().map_err(ApiError::unexpected)?;
        op(&mut conn, &party).map_err(ApiError::unexpected)
    })
    .await
}

/// `POST /v1/subscriptions` `{url, filter, batch?}` → 201 with the subscription and its secret.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "notifications", security(("bearer" = ["subscribe"])), request_body(content = NewSubscriptionBody, content_type = "application/json"), responses((status = 201, description = "Made; the secret that signs deliveries is shown only here", body = SubscriptionAnswer, headers(("Location" = String)))))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Subscriber,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body = parse_new(&body)?;
    let allow_private = state.allow_private_callbacks;
    let store = state.registry.store().clone();
    let party = caller.0.id.to_string();
    let row = blocking(move || {
        // Resolving the host blocks: off the async workers.
        check_target(&body.url, allow_private).map_err(|e| ApiError::BadRequest {
            code: e.code(),
            detail: e.to_string(),
        })?;
        let mut conn = store.conn().map_err(ApiError::unexpected)?;
        let next_index =
            lading_store::ledger::ledger_size(&mut conn).map_err(ApiError::unexpected)?;
        let new = NewSubscription {
            id: uuid::Uuid::new_v4().to_string(),
            party_id: party.clone(),
            url: body.url,
            filter: serde_json::to_string(&body.filter).map_err(ApiError::unexpected)?,
            secret: new_secret(),
            next_index: lading_store::ledger::to_i64(next_index),
            batch_max: body.batch.map(|b| i32::try_from(b.max_events).unwrap_or(1)),
        };
        subscriptions::create(&mut conn, &new).map_err(ApiError::unexpected)?;
        subscriptions::get(&mut conn, &party, &new.id)
            .map_err(ApiError::unexpected)?
            .ok_or_else(|| ApiError::unexpected("the subscription just made is missing"))
    })
    .await?;
    tracing::info!(subscription = %row.id, party = %row.party_id, url = %row.url, "subscription made");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/subscriptions/{}", row.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(answer(row, true)))
}

/// `GET /v1/subscriptions`: the caller's subscriptions — to a bearer credential with the
/// `subscribe` scope, or to the party's node's client certificate, which asks so the node can
/// tell its users when one is failing ([`SubscriptionReader`]).
#[utoipa::path(get, path = "/v1/subscriptions", tag = "notifications", security(("bearer" = ["subscribe"]), ("mutualTLS" = [])), responses((status = 200, description = "The party's subscriptions (also to its node's client certificate, for reading only)", body = SubscriptionList)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: SubscriptionReader,
) -> Result<HttpResponse, ApiError> {
    let rows = for_caller(&state, &caller.0, |conn, party| {
        subscriptions::list(conn, party)
    })
    .await?;
    let subscriptions: Vec<SubscriptionAnswer> =
        rows.into_iter().map(|r| answer(r, false)).collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(SubscriptionList { subscriptions }))
}

/// `GET /v1/subscriptions/{id}`.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "notifications", security(("bearer" = ["subscribe"]), ("mutualTLS" = [])), params(("id" = String, Path)), responses((status = 200, description = "The subscription", body = SubscriptionAnswer)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: SubscriptionReader,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let missing = not_found(&id);
    let row = for_caller(&state, &caller.0, move |conn, party| {
        subscriptions::get(conn, party, &id)
    })
    .await?
    .ok_or(missing)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(answer(row, false)))
}

/// `DELETE /v1/subscriptions/{id}` → 204; nothing more is delivered to it.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "notifications", security(("bearer" = ["subscribe"])), params(("id" = String, Path)), responses((status = 204, description = "Deleted")))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Subscriber,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let missing = not_found(&id);
    let deleted = for_caller(&state, &caller.0, move |conn, party| {
        subscriptions::delete(conn, party, &id)
    })
    .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(missing)
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    pub limit: Option<i64>,
}

/// `GET /v1/subscriptions/{id}/deliveries?limit=`: its latest delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/deliveries", tag = "notifications", security(("bearer" = ["subscribe"]), ("mutualTLS" = [])), params(("id" = String, Path), DeliveriesQuery), responses((status = 200, description = "Its latest delivery attempts, newest first", body = DeliveryList)))]
pub async fn deliveries(
    state: web::Data<AppState>,
    caller: SubscriptionReader,
    id: web::Path<String>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let missing = not_found(&id);
    let rows: Option<Vec<DeliveryRow>> = for_caller(&state, &caller.0, move |conn, party| {
        if subscriptions::get(conn, party, &id)?.is_none() {
            return Ok(None);
        }
        subscriptions::deliveries(conn, party, &id, limit).map(Some)
    })
    .await?;
    let deliveries: Vec<DeliveryAnswer> = rows
        .ok_or(missing)?
        .into_iter()
        .map(|d| DeliveryAnswer {
            entry_index: d.entry_index,
            last_entry_index: d.last_index,
            events: d.events,
            attempt: d.attempt,
            at: time(d.at),
            status_code: d.status_code,
            error: d.error,
            millis: d.millis,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(DeliveryList { deliveries }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RedeliverQuery {
    pub from: u64,
}

/// `POST /v1/subscriptions/{id}/redeliver?from=N` → 202: delivers again from ledger index `N`
/// (what the party may read and the filter takes), in order.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/redeliver", tag = "notifications", security(("bearer" = ["subscribe"])), params(("id" = String, Path), RedeliverQuery), responses((status = 202, description = "Deliveries start again from ledger index from", body = Redelivery)))]
pub async fn redeliver(
    state: web::Data<AppState>,
    caller: Subscriber,
    id: web::Path<String>,
    query: web::Query<RedeliverQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let from = query.from;
    let missing = not_found(&id);
    let done = for_caller(&state, &caller.0, move |conn, party| {
        subscriptions::redeliver(conn, party, &id, from)
    })
    .await?;
    if done {
        Ok(HttpResponse::Accepted().json(Redelivery { next_index: from }))
    } else {
        Err(missing)
    }
}
