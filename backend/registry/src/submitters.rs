//! The submitter rule: a party's credential hands in the party's own statements, and another
//! party's only where that party has authorised it (`lading_store::submitters`).
//!
//! Judged right after the signatures, before the sequencer looks at the ledger: a refused item
//! is refused for the same reason whether or not its document exists, and an exact
//! resubmission by an unauthorised party is refused too rather than answered as a duplicate
//! (which would tell it the entry is there). A request whose items are all its own party's
//! costs nothing here: the database is asked only about other signers, once per request.

use lading_domain::membership::Principal;
use lading_store::Store;

use crate::verify::Verified;
use crate::Refusal;

/// Refuses each verified item of `items` signed by a party that has not authorised
/// `submitter`. Statements signed by the consortium's operator are not a party's: their
/// signature is their whole authority, whoever hands them in.
pub(crate) fn check(store: &Store, submitter: &str, items: &mut [Result<Verified, Refusal>]) {
    let mut others: Vec<&str> = items
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .map(|v| v.body.signer())
        .filter(|signer| *signer != submitter && *signer != Principal::OPERATOR)
        .collect();
    if others.is_empty() {
        return;
    }
    others.sort_unstable();
    others.dedup();
    let authorising = store
        .conn()
        .and_then(|mut conn| lading_store::submitters::authorising(&mut conn, submitter, &others));
    let authorising = match authorising {
        Ok(found) => Ok(found),
        Err(e) => Err(Refusal::unavailable(e)),
    };
    for item in items.iter_mut() {
        let Ok(v) = item else { continue };
        let signer = v.body.signer();
        if signer == submitter || signer == Principal::OPERATOR {
            continue;
        }
        let refusal = match &authorising {
            Ok(found) if found.iter().any(|p| p == signer) => continue,
            Ok(_) => Refusal::SubmitterNotAuthorised {
                submitter: submitter.to_owned(),
                signer: signer.to_owned(),
            },
            Err(unavailable) => unavailable.clone(),
        };
        *item = Err(refusal);
    }
}
