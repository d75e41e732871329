//! `GET /bills`: the bills of lading the node holds, searched and filtered on the server and
//! paged by keyset (50 a page), from the node's list of documents
//! (`lading_store::node_documents`). A plain GET form: it works without JavaScript; with it,
//! htmx swaps the results in place and keeps the URL.
//!
//! Query parameters: `q` (free text: reference, parties, vessel, voyage, port, container),
//! `state` (a status code), `role` (what the party is on the document), `from`, `to` (the
//! issue date, `YYYY-MM-DD`, inclusive), `sort` (`updated`, `issued`, `reference`), `dir`
//! (`desc`, `asc`), and `after` or `before` (a position, from the page links).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDate, Utc};
use lading_store::node_documents::{self, Cursor, ListQuery, NodeDocumentRow, SearchWord, SortKey};
use serde::Deserialize;

use crate::error::PortalError;
use crate::session::{need, portal_of, Allowed};
use crate::view::{self, Layout, Names};

/// Rows a page shows.
pub const PAGE: i64 = 50;

/// Matches counted at most (past it the page says "More than 1,000 bills"): counting stops
/// there, so a broad search costs about as much as a narrow one.
const COUNT_CAP: i64 = 1_000;

#[derive(Debug, Default, Deserialize)]
pub struct BillsQuery {
    q: Option<String>,
    state: Option<String>,
    role: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// A position in the list as the page links carry it: `<microseconds>_<reference>`, or the
/// reference alone when sorting by reference.
fn encode_cursor(row: &NodeDocumentRow, sort: SortKey) -> String {
    match sort {
        SortKey::Updated => format!("{}_{}", row.updated_at.timestamp_micros(), row.reference),
        SortKey::Issued => format!("{}_{}", row.issued_at.timestamp_micros(), row.reference),
        SortKey::Reference => row.reference.clone(),
    }
}

fn decode_cursor(text: &str, sort: SortKey) -> Option<Cursor> {
    if sort == SortKey::Reference {
        return Some(Cursor {
            at: None,
            reference: text.to_owned(),
        });
    }
    let (micros, reference) = text.split_once('_')?;
    let at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
    Some(Cursor {
        at: Some(at),
        reference: reference.to_owned(),
    })
}

/// The filters as given, checked: what is not valid is left out, and said.
struct Filters {
    q: String,
    state: String,
    role: String,
    from: String,
    to: String,
    sort: &'static str,
    dir: &'static str,
    problems: Vec<String>,
    query: ListQuery,
}

fn filters(q: &BillsQuery, names: &Names) -> Filters {
    let mut problems = Vec::new();
    let text = q.q.as_deref().unwrap_or_default().trim().to_owned();
    let (words, left_out) = SearchWord::parse(&text);
    let words = words
        .into_iter()
        .map(|w| {
            let parties = names.parties_named(&w);
            w.or_parties(parties)
        })
        .collect();
    if !left_out.is_empty() {
        problems.push(format!(
            "A search word needs a letter or a digit: {} left out.",
            left_out
                .iter()
                .map(|w| format!("“{w}”"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let state = q
        .state
        .as_deref()
        .filter(|s| view::STATES.contains(s))
        .unwrap_or_default()
        .to_owned();
    let role = q
        .role
        .as_deref()
        .filter(|r| lading_replica::projection::ROLES.contains(r))
        .unwrap_or_default()
        .to_owned();
    let mut date = |name: &str, value: &Option<String>| -> Option<NaiveDate> {
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                problems.push(format!(
                    "The {name} date is not a date (YYYY-MM-DD); it was left out."
                ));
                None
            }
        }
    };
    let from = date("from", &q.from);
    let to = date("to", &q.to);
    let (sort, sort_key) = match q.sort.as_deref() {
        Some("issued") => ("issued", SortKey::Issued),
        Some("reference") => ("reference", SortKey::Reference),
        _ => ("updated", SortKey::Updated),
    };
    let descending = q.dir.as_deref() != Some("asc");
    let query = ListQuery {
        words,
        state: (!state.is_empty()).then(|| state.clone()),
        role: (!role.is_empty()).then(|| role.clone()),
        issued_from: from,
        issued_to: to,
        sort: sort_key,
        descending,
        after: q.after.as_deref().and_then(|c| decode_cursor(c, sort_key)),
        before: q.before.as_deref().and_then(|c| decode_cursor(c, sort_key)),
        limit: PAGE + 1,
    };
    Filters {
        q: text,
        state,
        role,
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        sort,
        dir: if descending { "desc" } else { "asc" },
        problems,
        query,
    }
}

impl Filters {
    /// The URL of this list with `extra` (a cursor) added.
    fn link(&self, extra: Option<(&str, &str)>) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (name, value) in [
            ("q", self.q.as_str()),
            ("state", self.state.as_str()),
            ("role", self.role.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ] {
            if !value.is_empty() {
                parts.push(format!("{name}={}", view::url_encode(value)));
            }
        }
        if self.sort != "updated" {
            parts.push(format!("sort={}", self.sort));
        }
        if self.dir != "desc" {
            parts.push(format!("dir={}", self.dir));
        }
        if let Some((name, value)) = extra {
            parts.push(format!("{name}={}", view::url_encode(value)));
        }
        if parts.is_empty() {
            "/bills".to_owned()
        } else {
            format!("/bills?{}", parts.join("&"))
        }
    }
}

struct Row {
    reference: String,
    state: &'static str,
    state_class: &'static str,
    shipper: String,
    consignee: String,
    vessel: String,
    route: String,
    containers: String,
    roles: String,
    issue_date: String,
    updated: String,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "bills.html")]
struct BillsPage {
    layout: Layout,
    q: String,
    from: String,
    to: String,
    states: Vec<Choice>,
    roles: Vec<Choice>,
    sorts: Vec<Choice>,
    dirs: Vec<Choice>,
    problems: Vec<String>,
    count: String,
    rows: Vec<Row>,
    previous: Option<String>,
    next: Option<String>,
    first: Option<String>,
}

fn choices(
    values: &[(&'static str, &'static str)],
    selected: &str,
    any: Option<&'static str>,
) -> Vec<Choice> {
    any.map(|label| Choice {
        value: "",
        label,
        selected: selected.is_empty(),
    })
    .into_iter()
    .chain(values.iter().map(|(value, label)| Choice {
        value,
        label,
        selected: *value == selected,
    }))
    .collect()
}

pub async fn list(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
    query: web::Query<BillsQuery>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let names = Names::of(portal.node());
    let f = filters(&query, &names);
    let list_query = f.query.clone();
    let (mut rows, count) = web::block(move || -> Result<_, PortalError> {
        let mut conn = portal.conn()?;
        let rows = node_documents::list(&mut conn, &list_query)?;
        let count = node_documents::count(&mut conn, &list_query, COUNT_CAP + 1)?;
        Ok((rows, count))
    })
    .await??;
    let page = PAGE as usize;
    let backwards = f.query.before.is_some();
    let more = rows.len() > page;
    if more {
        if backwards {
            rows.remove(0);
        } else {
            rows.truncate(page);
        }
    }
    let (has_previous, has_next) = if backwards {
        (more, true)
    } else {
        (f.query.after.is_some(), more)
    };
    let sort = f.query.sort;
    let previous = rows
        .first()
        .filter(|_| has_previous)
        .map(|r| f.link(Some(("before", &encode_cursor(r, sort)))));
    let next = rows
        .last()
        .filter(|_| has_next)
        .map(|r| f.link(Some(("after", &encode_cursor(r, sort)))));
    let first = (f.query.after.is_some() || f.query.before.is_some()).then(|| f.link(None));
    let state_choices: Vec<(&'static str, &'static str)> = view::STATES
        .iter()
        .map(|s| (*s, view::state_label(s)))
        .collect();
    let role_choices: Vec<(&'static str, &'static str)> = lading_replica::projection::ROLES
        .iter()
        .map(|r| (*r, view::role_label(r)))
        .collect();
    let page = BillsPage {
        layout: Layout::signed_in("Bills of lading", "bills", &user, &names),
        states: choices(&state_choices, &f.state, Some("Any state")),
        roles: choices(&role_choices, &f.role, Some("Any role")),
        sorts: choices(
            &[
                ("updated", "Last activity"),
                ("issued", "Issued"),
                ("reference", "Reference"),
            ],
            f.sort,
            None,
        ),
        dirs: choices(
            &[("desc", "Newest first"), ("asc", "Oldest first")],
            f.dir,
            None,
        ),
        count: if count > COUNT_CAP {
            "More than 1,000 bills".to_owned()
        } else if count == 1 {
            "1 bill".to_owned()
        } else {
            format!("{count} bills")
        },
        rows: rows
            .iter()
            .map(|r| Row {
                reference: r.reference.clone(),
                state: view::state_label(&r.state),
                state_class: view::state_class(&r.state),
                shipper: names.name(&r.shipper).to_owned(),
                consignee: r
                    .consignee
                    .as_deref()
                    .map_or_else(|| "To order".to_owned(), |c| names.name(c).to_owned()),
                vessel: format!("{} {}", r.vessel, r.voyage),
                route: format!("{} → {}", r.port_of_loading, r.port_of_discharge),
                containers: {
                    let all: Vec<&str> =
                        r.containers.iter().flatten().map(String::as_str).collect();
                    match all.len() {
                        0 => String::new(),
                        1 => all[0].to_owned(),
                        n => format!("{} +{}", all[0], n - 1),
                    }
                },
                roles: r
                    .party_roles
                    .iter()
                    .flatten()
                    .map(|role| view::role_label(role))
                    .collect::<Vec<_>>()
                    .join(", "),
                issue_date: r.issue_date.to_string(),
                updated: view::time(&r.updated_at),
            })
            .collect(),
        q: f.q,
        from: f.from,
        to: f.to,
        problems: f.problems,
        previous,
        next,
        first,
    };
    super::html(&page)
}
