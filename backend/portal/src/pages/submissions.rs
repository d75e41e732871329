//! `GET /submissions` and `GET /submissions/{seq}`: the node's outbox — what was signed, by
//! whom (the portal's audit log), and whether the registry sequenced it or why it refused
//! (its problem+json, in words) — and `GET /audit`, the portal's audit log (signers and
//! administrators).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lading_domain::transition::SignedTransition;
use lading_store::outbox::OutboxRow;

use crate::auth::{Permission, Role};
use crate::error::PortalError;
use crate::session::{need, portal_of, Allowed};
use crate::view::{self, Layout, Names};

/// A submission as the pages show it.
#[derive(Debug)]
pub struct SubmissionLine {
    pub seq: i64,
    pub what: String,
    pub document: Option<String>,
    pub state: String,
    pub state_class: &'static str,
    pub taken_at: String,
    pub signed_by: String,
    pub kid: String,
    /// What came of it, in words.
    pub outcome: String,
}

/// A registry's answer in words a clerk understands.
fn outcome(row: &OutboxRow) -> String {
    let answer = row.answer.as_ref();
    let text = |k: &str| {
        answer
            .and_then(|a| a.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match row.state.as_str() {
        "pending" if row.attempts > 0 => format!(
            "Waiting: the registry could not take it yet ({} attempts); the node keeps trying.",
            row.attempts
        ),
        "pending" => "Waiting to be sent to the registry (the node sends it in order, also after the registry was away).".into(),
        "sequenced" => match answer.and_then(|a| a.get("index")).and_then(|v| v.as_u64()) {
            Some(index) => format!("On the ledger as entry {index}."),
            None => "On the ledger.".into(),
        },
        "refused" => {
            let why = text("detail")
                .or_else(|| text("title"))
                .unwrap_or_else(|| "no reason given".into());
            let code = text("code").unwrap_or_default();
            let plain = match code.as_str() {
                "rule_violation" | "transition_rejected" => {
                    "the rules of the bill of lading do not allow it in the document's state on the ledger"
                }
                "unknown_key" | "key_revoked" => "the key it was signed with is not (or no longer) your party's",
                "conflict" | "wrong_previous_checksum" => {
                    "another transition of this document was recorded first"
                }
                _ => "the registry refused it",
            };
            format!("Refused: {plain}. The registry said: {why}")
        }
        "parked" => format!(
            "Set aside: {}",
            text("detail").unwrap_or_else(|| "the registry kept refusing it as unavailable".into())
        ),
        other => other.to_owned(),
    }
}

fn line(row: &OutboxRow, signers: &[(i64, String)]) -> SubmissionLine {
    let parsed = SignedTransition::parse(&row.signed).ok();
    SubmissionLine {
        seq: row.seq,
        what: parsed.as_ref().map_or_else(
            || row.kind.clone(),
            |t| t.payload().action().as_str().to_owned(),
        ),
        document: row.document_ref.clone(),
        state: row.state.clone(),
        state_class: match row.state.as_str() {
            "sequenced" => "state-active",
            "pending" => "state-pending",
            _ => "state-closed",
        },
        taken_at: view::time(&row.taken_at),
        signed_by: signers
            .iter()
            .find(|(seq, _)| *seq == row.seq)
            .map_or_else(|| "(the node's API)".to_owned(), |(_, u)| u.clone()),
        kid: parsed.map(|t| t.kid().to_string()).unwrap_or_default(),
        outcome: outcome(row),
    }
}

#[derive(Template)]
#[template(path = "submissions.html")]
struct SubmissionsPage {
    layout: Layout,
    submissions: Vec<SubmissionLine>,
}

/// `GET /submissions`: the latest submissions, newest first.
pub async fn list(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let page = web::block(move || -> Result<_, PortalError> {
        let names = Names::of(portal.node());
        let rows = lading_store::portal::latest_submissions(&mut *portal.conn()?, 200)?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let signers = lading_store::portal::signatures(&mut *portal.conn()?, &seqs)?;
        Ok(SubmissionsPage {
            layout: Layout::signed_in("Submissions", "submissions", &user, &names),
            submissions: rows.iter().map(|r| line(r, &signers)).collect(),
        })
    })
    .await??;
    super::html(&page)
}

#[derive(Template)]
#[template(path = "submission.html")]
struct SubmissionPage {
    layout: Layout,
    s: SubmissionLine,
    pending: bool,
    /// Why a pending submission waits, when the registry is not answering.
    waiting: Option<String>,
}

/// `GET /submissions/{seq}`: one submission; a pending one refreshes itself (htmx) until the
/// registry answers.
pub async fn show(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
    path: web::Path<i64>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let seq = path.into_inner();
    let page = web::block(move || -> Result<_, PortalError> {
        let names = Names::of(portal.node());
        let row = portal
            .node()
            .submission(seq)?
            .ok_or(PortalError::NotFound)?;
        let signers = lading_store::portal::signatures(&mut *portal.conn()?, &[seq])?;
        let pending = row.state == "pending";
        let waiting = portal
            .node()
            .registry_contact()
            .unreachable_since
            .filter(|_| pending)
            .map(|since| {
                format!(
                    "The registry has not answered since {}: this submission is kept on this node and is sent as soon as it answers.",
                    view::time(&since)
                )
            });
        Ok(SubmissionPage {
            layout: Layout::signed_in(&format!("Submission {seq}"), "submissions", &user, &names),
            pending,
            waiting,
            s: line(&row, &signers),
        })
    })
    .await??;
    super::html(&page)
}

/// A line of the audit log.
#[derive(Debug)]
pub struct AuditLine {
    pub at: String,
    pub username: String,
    pub action: String,
    pub document: Option<String>,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    lines: Vec<AuditLine>,
}

/// `GET /audit`: who did what through the portal (signers and administrators).
pub async fn audit(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    if !matches!(user.role, Role::Signer | Role::Admin) {
        return Err(PortalError::Forbidden {
            role: user.role,
            needed: Permission::Sign,
        });
    }
    let portal = portal_of(&req)?;
    let page = web::block(move || -> Result<_, PortalError> {
        let names = Names::of(portal.node());
        let rows = lading_store::portal::audit_log(&mut *portal.conn()?, 500)?;
        Ok(AuditPage {
            layout: Layout::signed_in("Audit log", "audit", &user, &names),
            lines: rows
                .into_iter()
                .map(|r| AuditLine {
                    at: view::time(&r.at),
                    username: r.username,
                    action: r.action,
                    document: r.document_ref,
                    detail: if r.detail.as_object().is_some_and(|o| o.is_empty()) {
                        String::new()
                    } else {
                        r.detail.to_string()
                    },
                })
                .collect(),
        })
    })
    .await??;
    super::html(&page)
}
