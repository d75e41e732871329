//! The operator view's pages: `/` the replicas, `/checkpoints`, `/ingest`. Each reads the
//! registry's own tables off the async workers and renders one template of
//! `templates/operator/`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use lading_store::{incidents, ledger, operator as queries, reconciliations};

use super::{chart, operator_of};
use crate::error::PortalError;
use crate::session::{need, Allowed, SignedIn};
use crate::view::{self, Layout, UserBar};

/// Checkpoints listed.
const CHECKPOINTS: i64 = 25;
/// Longest evidence shown in full; more is cut (the database keeps all of it).
const EVIDENCE_CHARS: usize = 4000;

/// The frame of an operator page.
fn layout(title: &str, section: &'static str, user: &SignedIn) -> Layout {
    Layout {
        user: Some(UserBar {
            username: user.username.clone(),
            role: user.role.as_str(),
            party: user.party.clone(),
            party_name: "Registry operator".to_owned(),
            csrf: user.csrf.clone(),
            is_admin: false,
        }),
        section,
        ..Layout::bare(title)
    }
}

struct IncidentView {
    id: i64,
    code: String,
    detail: String,
    opened: String,
    evidence: String,
}

impl IncidentView {
    fn of(row: &incidents::IncidentRow) -> Self {
        let mut evidence = serde_json::to_string_pretty(&row.evidence)
            .unwrap_or_else(|_| row.evidence.to_string());
        if evidence.chars().count() > EVIDENCE_CHARS {
            evidence = evidence.chars().take(EVIDENCE_CHARS).collect::<String>() + "\n…";
        }
        Self {
            id: row.id,
            code: row.code.clone(),
            detail: row.detail.clone(),
            opened: view::time(&row.opened_at),
            evidence,
        }
    }
}

struct ReplicaView {
    party: String,
    url: String,
    /// As the last reconciliation found it.
    size: Option<i64>,
    lag: Option<i64>,
    outcome: Option<String>,
    outcome_class: &'static str,
    at: Option<String>,
    differences: i64,
    incidents: Vec<IncidentView>,
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "agree" | "repaired" => "state-active",
        "behind" => "state-pending",
        _ => "state-closed",
    }
}

#[derive(Template)]
#[template(path = "operator/replicas.html")]
struct ReplicasPage {
    layout: Layout,
    registry_size: u64,
    replicas: Vec<ReplicaView>,
    /// Open incidents about no replica the registry reconciles.
    other_incidents: Vec<IncidentView>,
}

/// `GET /`: the replicas the registry reconciles, each with its last reconciliation and its
/// open incidents (with their evidence).
pub async fn replicas(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let operator = operator_of(&req)?;
    let page = web::block(move || -> Result<ReplicasPage, PortalError> {
        let mut conn = operator.site().conn()?;
        let registry_size = ledger::ledger_size(&mut conn)?;
        let mut open = incidents::open_incidents(&mut conn, None)?;
        let mut replicas = Vec::new();
        for link in operator.replicas() {
            let last = reconciliations::last(&mut conn, &link.party)?;
            let (mine, rest): (Vec<_>, Vec<_>) = open
                .into_iter()
                .partition(|i| i.party.as_deref() == Some(link.party.as_str()));
            open = rest;
            replicas.push(ReplicaView {
                party: link.party.clone(),
                url: link.url.clone(),
                size: last.as_ref().and_then(|r| r.replica_size),
                lag: last
                    .as_ref()
                    .and_then(|r| r.replica_size.map(|s| (r.registry_size - s).max(0))),
                outcome: last.as_ref().map(|r| r.outcome.clone()),
                outcome_class: last
                    .as_ref()
                    .map_or("state-closed", |r| outcome_class(&r.outcome)),
                at: last.as_ref().map(|r| view::time(&r.finished_at)),
                differences: last.as_ref().map_or(0, |r| r.differences),
                incidents: mine.iter().map(IncidentView::of).collect(),
            });
        }
        Ok(ReplicasPage {
            layout: layout("Replicas", "replicas", &user),
            registry_size,
            replicas,
            other_incidents: open.iter().map(IncidentView::of).collect(),
        })
    })
    .await??;
    crate::pages::html(&page)
}

struct CheckpointView {
    size: i64,
    root: String,
    block_size: i32,
    at: String,
}

#[derive(Template)]
#[template(path = "operator/checkpoints.html")]
struct CheckpointsPage {
    layout: Layout,
    checkpoints: Vec<CheckpointView>,
}

/// `GET /checkpoints`: the latest checkpoints the registry signed.
pub async fn checkpoints(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let operator = operator_of(&req)?;
    let rows = web::block(move || -> Result<_, PortalError> {
        let mut conn = operator.site().conn()?;
        Ok(queries::latest_checkpoints(&mut conn, CHECKPOINTS)?)
    })
    .await??;
    let page = CheckpointsPage {
        layout: layout("Checkpoints", "checkpoints", &user),
        checkpoints: rows
            .iter()
            .map(|c| CheckpointView {
                size: c.size,
                root: hex::encode(&c.root),
                block_size: c.block_size,
                at: c.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            })
            .collect(),
    };
    crate::pages::html(&page)
}

#[derive(Template)]
#[template(path = "operator/ingest.html")]
struct IngestPage {
    layout: Layout,
    chart: chart::Chart,
    since: String,
}

/// `GET /ingest`: entries added per minute over the last hour, as an SVG chart.
pub async fn ingest(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let operator = operator_of(&req)?;
    let since = Utc::now() - chrono::Duration::minutes(chart::MINUTES as i64);
    let (start, minutes) = web::block(move || -> Result<_, PortalError> {
        let mut conn = operator.site().conn()?;
        Ok(queries::growth_since(&mut conn, since)?)
    })
    .await??;
    let page = IngestPage {
        layout: layout("Ingest", "ingest", &user),
        chart: chart::draw(&chart::per_minute(start, &minutes)),
        since: view::time(&since),
    };
    crate::pages::html(&page)
}
