//! `GET /v1/exports?from=&to=` (or `?since=&until=`, a time window): a customs authority's
//! batch export, made by the registry for an authority that runs no node — the same bundle
//! `lading export` writes on a node, holding the range's entries the authority may read (the
//! rule of document reads), proved against the registry's latest checkpoint and signed with
//! the registry's key.
//!
//! The authority is the party of the bearer token, or of the consortium client certificate
//! (mutual TLS) when no token is sent. At most `registry.max_exports` are made at once (each
//! holds a database connection and a core while it writes): past it `503 too_many_exports`
//! with `Retry-After`, before anything is written.
//!
//! The bundle is written to a temporary file (the writer needs one), which is unlinked as soon
//! as it is opened and then streamed: memory stays bounded however long the range, and nothing
//! is left behind, however the answer ends.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use lading_domain::Role;
use lading_export::registry::{export_from_registry, RegistryExporter};
use lading_export::ExportError;
use serde::Deserialize;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;

/// Bytes of the bundle sent at once.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The first ledger index (default 0).
    pub from: Option<u64>,
    /// One past the last index (default: the latest checkpoint's size).
    pub to: Option<u64>,
    /// A time window instead (RFC 3339, half-open): entries the registry sequenced at or
    /// after `since`…
    pub since: Option<String>,
    /// …and before `until`.
    pub until: Option<String>,
}

/// How many exports may be made at once, and how many are.
#[derive(Debug, Clone)]
pub struct ExportSlots {
    max: usize,
    busy: Arc<AtomicUsize>,
}

/// One export being made; its slot is free again when this is dropped (the answer's stream
/// ends, however it ends).
#[derive(Debug)]
pub struct ExportSlot(Arc<AtomicUsize>);

impl Drop for ExportSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ExportSlots {
    /// At most `max` exports at once (0: the registry makes none).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            busy: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A slot, unless `max` are taken.
    pub fn take(&self) -> Option<ExportSlot> {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| ExportSlot(self.busy.clone()))
    }
}

/// Seconds a client refused for load is told to wait: an export takes a while.
pub const EXPORT_RETRY_AFTER_SECONDS: u32 = 10;

/// The authority asking: its bearer token's party, or its client certificate's when it sends
/// no token (the registry's certificate names no party, and is refused).
async fn authority(req: &HttpRequest) -> Result<lading_domain::party::Party, ApiError> {
    Ok(Caller::extract(req).await?.0)
}

/// A time of the window, RFC 3339.
fn instant(
    name: &str,
    raw: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| ApiError::BadRequest {
                code: "bad_query",
                detail: format!("{name}={raw:?} is not an RFC 3339 time: {e}"),
            })
    })
    .transpose()
}

/// The refusal of a range: its own code for each way it can be wrong.
fn bad_range(from: u64, to: u64, size: u64) -> ApiError {
    if from > to {
        ApiError::BadRequest {
            code: "export_from_after_to",
            detail: format!("from ({from}) is after to ({to})"),
        }
    } else {
        ApiError::BadRequest {
            code: "export_beyond_checkpoint",
            detail: format!(
                "to ({to}) is beyond the registry's latest checkpoint, of size {size}: an export \
                 holds only entries it can prove"
            ),
        }
    }
}

#[utoipa::path(get, path = "/v1/exports", tag = "exports", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(ExportQuery), responses((status = 200, description = "A customs export bundle, streamed (schemas/export.md): the entries of the range the customs authority is entitled to, with proofs, signed", content_type = "application/zip", body = Vec<u8>, headers(("Content-Disposition" = String)))))]
pub async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let party = authority(&req).await?;
    if party.role != Role::CustomsAuthority {
        return Err(ApiError::Forbidden {
            code: "not_a_customs_authority",
            detail: format!(
                "{} is a {}, not a customs authority: exports are for customs authorities",
                party.id,
                party.role.as_str()
            ),
        });
    }
    let checkpoint = state
        .registry
        .latest_checkpoint()
        .ok_or_else(|| ApiError::Unavailable {
            code: "unknown_checkpoint",
            detail: "the registry has signed no checkpoint yet: nothing can be proved".into(),
        })?;
    let window = query.since.is_some() || query.until.is_some();
    if window && (query.from.is_some() || query.to.is_some()) {
        return Err(ApiError::BadRequest {
            code: "export_window_and_range",
            detail: "an export is asked either by ledger indexes (from, to) or by a time window \
                     (since, until), not both"
                .into(),
        });
    }
    let since = instant("since", query.since.as_deref())?;
    let until = instant("until", query.until.as_deref())?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::BadRequest {
                code: "export_from_after_to",
                detail: format!(
                    "since ({}) is after until ({})",
                    s.to_rfc3339(),
                    u.to_rfc3339()
                ),
            });
        }
    }
    let size = checkpoint.checkpoint.size;
    let (from, to) = (query.from.unwrap_or(0), query.to.unwrap_or(size));
    if from > to || to > size {
        return Err(bad_range(from, to, size));
    }
    // Taken before any work, held until the answer's last byte is sent.
    let slot = state.exports.take().ok_or_else(|| ApiError::Unavailable {
        code: "too_many_exports",
        detail: format!(
            "the registry is making as many exports as it makes at once \
             (registry.max_exports = {}); nothing was written: retry after {EXPORT_RETRY_AFTER_SECONDS} seconds",
            state.exports.max
        ),
    })?;
    let state = state.into_inner();
    let authority = party.id.clone();
    let (summary, file, from, to) = web::block(move || -> Result<_, ExportError> {
        let (from, to) = if window {
            let range =
                lading_export::window::registry_range(state.registry.store(), since, until, size)?;
            (range.start, range.end)
        } else {
            (from, to)
        };
        let dir = tempfile::Builder::new()
            .prefix("lading-registry-export-")
            .tempdir()?;
        let out = dir.path().join("export.zip");
        let membership = state.registry.parties().snapshot();
        let exporter = RegistryExporter {
            store: state.registry.store(),
            checkpoint: &checkpoint,
            signer: &state.registry_signer,
            registry_key: &state.registry_key,
            membership: &membership,
        };
        let summary = export_from_registry(&exporter, &authority, from..to, &out)?;
        // Opened, then unlinked with its directory: the open file is all that is left.
        let file = std::fs::File::open(&out)?;
        dir.close()?;
        Ok((summary, file, from, to))
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(|e| match e {
        ExportError::Range { from, to, size } => bad_range(from, to, size),
        ExportError::Refused(detail) => ApiError::Forbidden {
            code: "not_a_customs_authority",
            detail,
        },
        other => ApiError::unexpected(other),
    })?;
    let length = file.metadata().map_err(ApiError::unexpected)?.len();
    let filename = format!("lading-export-{}-{from}-{to}.zip", party.id);
    tracing::info!(
        authority = %party.id,
        from,
        to,
        entries = summary.manifest.counts.entries,
        bytes = length,
        "export from the registry"
    );
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .no_chunking(length)
        .streaming(chunks(file, slot)))
}

/// The file's bytes, a chunk at a time, each read off the async workers; the export's slot is
/// held until the stream is dropped.
fn chunks(
    file: std::fs::File,
    slot: ExportSlot,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    futures::stream::try_unfold((file, slot), |(mut file, slot)| async move {
        let (file, chunk) = web::block(move || -> std::io::Result<_> {
            let mut chunk = vec![0; CHUNK];
            let n = file.read(&mut chunk)?;
            chunk.truncate(n);
            Ok((file, chunk))
        })
        .await
        .map_err(actix_web::error::ErrorInternalServerError)?
        .map_err(actix_web::error::ErrorInternalServerError)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        Ok(Some((web::Bytes::from(chunk), (file, slot))))
    })
}

#[cfg(test)]
mod tests {
    use super::ExportSlots;

    #[test]
    fn no_more_exports_than_the_limit_are_made_at_once_and_a_finished_one_frees_its_slot() {
        let slots = ExportSlots::new(2);
        let first = slots.take().expect("a first slot");
        let second = slots.take().expect("a second slot");
        assert!(slots.take().is_none(), "a third while two are made");
        drop(first);
        let third = slots.take().expect("a slot once one export ended");
        assert!(slots.take().is_none());
        drop((second, third));
        assert!(slots.take().is_some());
        assert!(ExportSlots::new(0).take().is_none(), "0: no exports at all");
    }
}
