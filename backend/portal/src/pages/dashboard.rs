//! `GET /`: the dashboard — documents by state, what waits for the party (surrenders to
//! accept or reject and amendments to void as a carrier, bills just received), the latest
//! activity, the node's health (in sync with the registry, lag, open incidents), and a notice
//! when the registry says one of the party's webhook subscriptions is failing (as the node
//! last heard it: the page never asks the registry itself).

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

/// A subscription the registry marked failing, for the notice.
struct FailingLine {
    id: String,
    url: String,
    since: Option<String>,
    failures: i64,
    error: Option<String>,
    next_index: u64,
}

/// What the node last heard of the party's subscriptions: the notice, and a line of the
/// node's health that dates it.
struct Subscriptions {
    /// When the registry last answered (`None`: not since the node started).
    checked_at: Option<String>,
    failing: Vec<FailingLine>,
    /// Since when the registry has not answered the node's question (`None` while it does).
    unanswered_since: Option<String>,
}

impl Subscriptions {
    fn of(status: &lading_replica::node::SubscriptionsStatus) -> Self {
        Self {
            checked_at: status.checked_at.as_ref().map(view::time_seconds),
            failing: status
                .failing
                .iter()
                .map(|f| FailingLine {
                    id: f.id.clone(),
                    url: f.url.clone(),
                    since: f.failing_since.as_ref().map(view::time_seconds),
                    failures: f.failures,
                    error: f.last_error.clone(),
                    next_index: f.next_index,
                })
                .collect(),
            unanswered_since: status.unanswered_since.as_ref().map(view::time_seconds),
        }
    }
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
    subscriptions: Subscriptions,
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
    let subscriptions = Subscriptions::of(&status.subscriptions);
    let page = DashboardPage {
        subscriptions,
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
