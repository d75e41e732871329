//! Why the registry refused a submission. Every variant has a stable `code` that clients can
//! match on; the HTTP face turns it into problem+json with the matching status. Nothing refused
//! reaches the ledger.

/// A submission the registry will not sequence, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The bytes are not a well-formed compact JWS, or its header is not what Lading signs.
    #[error("{detail}")]
    Malformed { code: &'static str, detail: String },
    /// The payload broke a field rule; `pointer` is the JSON Pointer of the field.
    #[error("invalid field {pointer}: {detail}")]
    InvalidField {
        code: &'static str,
        pointer: String,
        detail: String,
    },
    #[error("no key with kid {kid} is registered")]
    UnknownKey { kid: String },
    #[error("key {kid} has been revoked")]
    RevokedKey { kid: String },
    #[error("the signature does not verify with key {kid}")]
    BadSignature { kid: String },
    #[error("key {kid} belongs to {owner}, but the payload's actor is {actor}")]
    KeyNotActor {
        kid: String,
        owner: String,
        actor: String,
    },
    /// The statement is signed by another party than the submitter's credential names, and
    /// that party has not authorised the submitter to submit for it.
    #[error("{signer} has not authorised {submitter} to submit statements it signed")]
    SubmitterNotAuthorised { submitter: String, signer: String },
    #[error("document {reference} is not on the ledger")]
    UnknownDocument { reference: String },
    #[error("document {reference} has already been issued")]
    DocumentExists { reference: String },
    #[error("transition {given} of {reference} already has a successor: this is a double spend")]
    DoubleSpend { reference: String, given: String },
    /// A rule of the bill-of-lading state machine or of shipment events.
    #[error("{detail}")]
    Rule { code: &'static str, detail: String },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The registry could not make the submission durable; nothing was acknowledged, and
    /// resubmitting the same bytes is safe.
    #[error("the ledger is unavailable: {detail}; resubmitting the same bytes is safe")]
    Unavailable { detail: String },
    /// The registry holds as many submissions as it takes (`max_queue`): nothing was done for
    /// this one; the same request may succeed shortly.
    #[error("{detail}")]
    Busy { detail: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { code, .. }
            | Self::InvalidField { code, .. }
            | Self::Rule { code, .. } => code,
            Self::UnknownKey { .. } => "unknown_key",
            Self::RevokedKey { .. } => "revoked_key",
            Self::BadSignature { .. } => "bad_signature",
            Self::KeyNotActor { .. } => "key_not_actor",
            Self::SubmitterNotAuthorised { .. } => "submitter_not_authorised",
            Self::UnknownDocument { .. } => "unknown_document",
            Self::DocumentExists { .. } => "document_exists",
            Self::DoubleSpend { .. } => "double_spend",
            Self::TooLarge { .. } => "body_too_large",
            Self::Unavailable { .. } => "ledger_unavailable",
            Self::Busy { .. } => "server_busy",
        }
    }

    /// The JSON Pointer of the offending field, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            Self::InvalidField { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    /// Whether the same submission may succeed later (the client should retry).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Busy { .. })
    }

    /// The registry holds too many submissions to take more now.
    pub(crate) fn busy() -> Self {
        Self::Busy {
            detail: "the registry holds as many submissions as it takes; nothing was done, \
                     retry shortly"
                .into(),
        }
    }

    /// This process stands by (another registry process sequences the ledger, or the
    /// database has no primary now): nothing was done; the active registry, or this one
    /// shortly, takes the same bytes. Not logged: a client retrying must not flood the log.
    pub(crate) fn standing_by() -> Self {
        Self::Unavailable {
            detail: "this registry process is not sequencing now (another one is, or the \
                     database is being failed over); nothing was acknowledged"
                .into(),
        }
    }

    /// The ledger could not take the submission now. The cause is logged here and never
    /// answered: it may be a database error whose text is nobody's business outside.
    pub(crate) fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "submission not sequenced: the ledger is unavailable");
        Self::Unavailable {
            detail: "the registry could not make the submission durable now; nothing was \
                     acknowledged"
                .into(),
        }
    }
}
