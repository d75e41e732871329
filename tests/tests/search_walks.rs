//! The two ways a page of `GET /v1/documents` is found — backwards through the ledger, or
//! through the party's own rows ordered by their documents' heads — give the same pages, page
//! after page, for every filter, over chains that moved after they were issued (so each access
//! row must have followed its document's head); and each party gets the one meant for it (its
//! own rows, or the ledger for a customs authority, entitled by its ports).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Result;
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use lading_store::search::{documents_by, walk_for, DocumentQuery, Role, Walk};
use reqwest::StatusCode;

const PARTIES: &[&str] = &[
    "carrier-oceanic",
    "carrier-polaris",
    "shipper-acme",
    "shipper-borealis",
    "forwarder-swift",
    "bank-harbour",
    "consignee-delta",
];
const CUSTOMS: &[&str] = &["customs-nl", "customs-sg", "customs-us"];

/// Every page of `query` for `party` by `walk`, three documents a page, as references.
fn all_pages(
    conn: &mut lading_store::PgConnection,
    party: &str,
    query: &DocumentQuery,
    walk: Walk,
) -> Result<Vec<Vec<String>>> {
    let mut pages = Vec::new();
    let mut query = DocumentQuery {
        limit: 3,
        ..query.clone()
    };
    loop {
        let page = documents_by(conn, party, &query, walk)?;
        if page.is_empty() {
            return Ok(pages);
        }
        let last = page.last().unwrap();
        query.after = Some((last.head_idx, last.reference.clone()));
        pages.push(page.into_iter().map(|d| d.reference).collect());
        // A walk that does not move forward (a cursor taken from the document's head while
        // the walk orders by something else) would page forever: the samples hold a few
        // dozen documents.
        assert!(pages.len() < 100, "{party} {walk:?}: the pages do not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_walks_give_the_same_pages_and_each_party_gets_the_cheap_one() -> Result<()> {
    let (db, tls, server) = tokio::task::spawn_blocking(|| -> Result<_> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(&db, &tls, ServerOptions::default())?;
        Ok((db, tls, server))
    })
    .await??;
    let client = tls.client()?;
    let samples = Samples::load()?;
    // Round robin over the chains, so the order of the documents' last changes (the chain
    // of two ends early, the chain of seven last) differs from the order they were issued in:
    // a page read from access rows left at the ISSUE would come out in the wrong order. One
    // transition a request, so that most land in a batch of their own and move the rows of a
    // document issued in an earlier batch (a batch that issues a document writes its rows at
    // the batch's final head).
    let longest = samples
        .chains
        .iter()
        .map(|c| c.transitions.len())
        .max()
        .unwrap();
    let round_robin = (0..longest).flat_map(|step| {
        samples
            .chains
            .iter()
            .filter_map(move |chain| chain.transitions.get(step))
    });
    for jws in round_robin {
        let answer = client
            .post(server.url("/v1/transitions"))
            .header("Content-Type", "application/jose")
            .body(jws.clone())
            .send()
            .await?;
        assert_eq!(answer.status(), StatusCode::CREATED);
    }

    let url = db.env()[0].1.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let store = lading_store::Store::connect(&url, 1)?;
        let mut conn = store.conn()?;
        let queries = [
            DocumentQuery::default(),
            DocumentQuery {
                role: Some(Role::Shipper),
                ..DocumentQuery::default()
            },
            DocumentQuery {
                status: Some("ACTIVE".into()),
                ..DocumentQuery::default()
            },
            DocumentQuery {
                words: vec!["nl".into()],
                ..DocumentQuery::default()
            },
            DocumentQuery {
                port_of_loading: Some("NLRTM".into()),
                ..DocumentQuery::default()
            },
        ];
        let mut seen = 0;
        for party in PARTIES {
            assert_eq!(walk_for(&mut conn, party)?, Walk::OwnDocuments, "{party}");
            for query in &queries {
                let by_ledger = all_pages(&mut conn, party, query, Walk::Ledger)?;
                let by_rows = all_pages(&mut conn, party, query, Walk::OwnDocuments)?;
                assert_eq!(by_ledger, by_rows, "{party} {query:?}");
                seen += by_ledger.iter().map(Vec::len).sum::<usize>();
            }
        }
        // The samples' parties hold documents: the comparison compared something.
        assert!(seen > 10, "{seen}");
        for party in CUSTOMS {
            assert_eq!(walk_for(&mut conn, party)?, Walk::Ledger, "{party}");
            // Its own rows are never its entitlement: that walk finds nothing for it.
            assert!(documents_by(
                &mut conn,
                party,
                &DocumentQuery {
                    limit: 50,
                    ..DocumentQuery::default()
                },
                Walk::OwnDocuments
            )?
            .is_empty());
        }
        Ok(())
    })
    .await??;
    drop(server);
    Ok(())
}
