//! The registry's notifications: a party subscribes a callback URL with a filter, and every
//! ledger entry it is entitled to and the filter takes is delivered there as a CloudEvent
//! (structured JSON mode), signed as the Standard Webhooks specification says. A subscription
//! may ask for batches instead (CloudEvents batched JSON mode): a JSON array of up to
//! `maxEvents` of the same events a request, one batch in flight, a failed batch retried as it
//! was — for receivers that one request per event would not keep up with.
//!
//! Nothing is lost: the ledger is the outbox (written in the transaction that sequences each
//! entry), and a subscription's place in it moves only after its receiver acknowledged. A
//! failing receiver is retried with exponential backoff and jitter; after
//! [`Settings::failing_after`] of failures the subscription is marked `failing` (and still
//! retried). Deliveries to one subscription go in ledger order, so every document's order is
//! kept.

mod deliver;
mod event;
mod filter;
mod signature;
mod target;

pub use deliver::{Deliverer, Settings};
pub use event::cloud_event;
pub use filter::Filter;
pub use signature::{new_secret, sign, SIGNATURE_VERSION};
pub use target::{check_target, TargetError};

/// Why a notification could not be made or sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] lading_store::StoreError),
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("the callback answered {0}")]
    Status(u16),
    #[error("the callback could not be reached: {0}")]
    Http(String),
    #[error("{0}")]
    Entry(String),
}
