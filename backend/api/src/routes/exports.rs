//! `GET /v1/exports?from=&to=`: a customs authority's batch export, made by the registry for
//! an authority that runs no node — the same bundle `lading export` writes on a node, holding
//! the range's entries the authority may read (the rule of document reads), proved against the
//! registry's latest checkpoint and signed with the registry's key.
//!
//! The bundle is written to a temporary file (the writer needs one), which is unlinked as soon
//! as it is opened and then streamed: memory stays bounded however long the range, and nothing
//! is left behind, however the answer ends.

use std::io::Read;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use lading_domain::Role;
use lading_export::registry::{export_from_registry, RegistryExporter};
use lading_export::ExportError;
use serde::Deserialize;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;

/// Bytes of the bundle sent at once.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// The first ledger index (default 0).
    pub from: Option<u64>,
    /// One past the last index (default: the latest checkpoint's size).
    pub to: Option<u64>,
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

pub async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let party = caller.0;
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
    let size = checkpoint.checkpoint.size;
    let (from, to) = (query.from.unwrap_or(0), query.to.unwrap_or(size));
    if from > to || to > size {
        return Err(bad_range(from, to, size));
    }
    let state = state.into_inner();
    let authority = party.id.clone();
    let (summary, file) = web::block(move || -> Result<_, ExportError> {
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
        Ok((summary, file))
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
        .streaming(chunks(file)))
}

/// The file's bytes, a chunk at a time, each read off the async workers.
fn chunks(
    file: std::fs::File,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    futures::stream::try_unfold(file, |mut file| async move {
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
        Ok(Some((web::Bytes::from(chunk), file)))
    })
}
