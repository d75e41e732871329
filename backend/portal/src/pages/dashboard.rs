//! `GET /`: the dashboard — documents by state, what waits for the party (surrenders to
//! accept or reject and amendments to void as a carrier, bills just received), the latest
//! activity, and the node's health (in sync with the registry, lag, open incidents).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use lading_store::node_documents::{self, NodeDocumentRow};

use crate::error::PortalError;
use crate::session::{need, portal_of, Allowed};
use crate::view::{self, Layout, Names};

/// Bills received within this many days are "just received".
const RECEIVED_DAYS: i64 = 7;

/// One document in a short list.
pub(crate) struct Line {
    pub reference: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub what: String,
    pub when: String,
}

impl Line {
    pub(crate) fn of(row: &NodeDocumentRow, names: &Names) -> Self {
        Self {
            reference: row.reference.clone(),
            state: view::state_label(&row.state),
            state_class: view::state_class(&row.state),
            what: format!(
                "{} by {}",
                view::action_label(&row.last_action),
                names.name(&row.last_actor)
            ),
            when: view::time(&row.updated_at),
        }
    }
}

struct StateCount {
    code: &'static str,
    label: &'static str,
    class: &'static str,
    count: i64,
}

struct IncidentLine {
    code: String,
    detail: String,
    opened: String,
}

struct Health {
    /// Since when the registry has not answered (`None` while it does).
    unreachable_since: Option<String>,
    last_heard: Option<String>,
    in_sync: bool,
    size: u64,
    registry_size: u64,
    lag: u64,
    checkpoint: Option<u64>,
    last_reconciliation: Option<String>,
    incidents: Vec<IncidentLine>,
    pending: i64,
    refused: i64,
    parked: i64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    total: i64,
    states: Vec<StateCount>,
    surrenders: Vec<Line>,
    to_void: Vec<Line>,
    received: Vec<Line>,
    latest: Vec<Line>,
    health: Health,
}

pub async fn show(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let party = user.party.clone();
    let (status, counts, waiting, latest, names) = web::block(move || -> Result<_, PortalError> {
        let status = portal.node().status()?;
        let mut conn = portal.conn()?;
        let counts = node_documents::counts_by_state(&mut conn)?;
        let since = Utc::now() - chrono::Duration::days(RECEIVED_DAYS);
        let waiting = node_documents::waiting_for(&mut conn, &party, since, 10)?;
        let latest = node_documents::latest(&mut conn, 10)?;
        Ok((status, counts, waiting, latest, Names::of(portal.node())))
    })
    .await??;
    let lines = |rows: &[NodeDocumentRow]| rows.iter().map(|r| Line::of(r, &names)).collect();
    let states: Vec<StateCount> = view::STATES
        .iter()
        .map(|code| StateCount {
            code,
            label: view::state_label(code),
            class: view::state_class(code),
            count: counts
                .iter()
                .find(|(c, _)| c == code)
                .map_or(0, |(_, n)| *n),
        })
        .collect();
    let page = DashboardPage {
        layout: Layout::signed_in("Dashboard", "dashboard", &user, &names),
        total: states.iter().map(|s| s.count).sum(),
        states,
        surrenders: lines(&waiting.surrenders),
        to_void: lines(&waiting.to_void),
        received: lines(&waiting.received),
        latest: lines(&latest),
        health: Health {
            unreachable_since: status
                .registry_contact
                .unreachable_since
                .as_ref()
                .map(view::time),
            last_heard: status.registry_contact.last_heard.as_ref().map(view::time),
            in_sync: status.lag == 0,
            size: status.size,
            registry_size: status.registry_size,
            lag: status.lag,
            checkpoint: status.checkpoint.as_ref().map(|c| c.size),
            last_reconciliation: status
                .last_reconciliation
                .as_ref()
                .map(|r| format!("{} ({})", r.outcome, r.at)),
            incidents: status
                .open_incidents
                .iter()
                .map(|i| IncidentLine {
                    code: i.code.clone(),
                    detail: i.detail.clone(),
                    opened: i.opened_at.clone(),
                })
                .collect(),
            pending: status.submissions.pending,
            refused: status.submissions.refused,
            parked: status.submissions.parked,
        },
    };
    super::html(&page)
}
