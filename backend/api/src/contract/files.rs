//! The JSON Schemas of `schemas/`, compiled into the binary, each standing in the OpenAPI
//! document as a component of its own (one source of truth: the handlers name the component,
//! the file says what it holds).

use std::borrow::Cow;

use utoipa::openapi::{ObjectBuilder, RefOr, Schema};

/// Declares a marker type per schema file: `body = DocumentAnswer` in a handler's
/// `#[utoipa::path]` becomes `$ref: #/components/schemas/DocumentAnswer`, and the component's
/// content is the file's (see [`super::document`]), put in when the document is built.
macro_rules! schema_files {
    ($($ty:ident = $file:literal;)*) => {
        $(
            #[doc = concat!("`schemas/", $file, "` as an OpenAPI component.")]
            #[derive(Debug)]
            pub struct $ty;

            impl utoipa::PartialSchema for $ty {
                fn schema() -> RefOr<Schema> {
                    // A placeholder: the document takes the file's content instead.
                    ObjectBuilder::new().into()
                }
            }

            impl utoipa::ToSchema for $ty {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($ty))
                }
            }
        )*

        /// Every schema file: its component name, its file name and its content.
        pub const SCHEMA_FILES: &[(&str, &str, &str)] = &[
            $((stringify!($ty), $file, include_str!(concat!("../../../../schemas/", $file))),)*
        ];
    };
}

schema_files! {
    Defs = "defs.json";
    Jwk = "jwk.json";
    Problem = "problem.json";
    TransportDocument = "transport-document.json";
    TransitionPayload = "transition-payload.json";
    ShipmentEvent = "shipment-event.json";
    PartyStatement = "party-statement.json";
    Checkpoint = "checkpoint.json";
    CheckpointList = "checkpoint-list.json";
    InclusionProof = "inclusion-proof.json";
    ProofAnswer = "proof-answer.json";
    PublishedCheckpoint = "published-checkpoint.json";
    ConsistencyProof = "consistency-proof.json";
    ConsistencyAnswer = "consistency-answer.json";
    EntryAnswer = "entry-answer.json";
    EntryRead = "entry-read.json";
    BatchAnswer = "batch-answer.json";
    ChainAnswer = "chain-answer.json";
    EventsAnswer = "events-answer.json";
    DocumentAnswer = "document-answer.json";
    DocumentList = "document-list.json";
    EventList = "event-list.json";
    SubmissionPage = "submission-page.json";
    FeedPage = "feed-page.json";
    PartiesAnswer = "parties-answer.json";
    CloudEvent = "cloud-event.json";
    CloudEventBatch = "cloud-event-batch.json";
    NotificationPage = "notification-page.json";
    ExportManifest = "export-manifest.json";
    ExportEntryLine = "export-entry-line.json";
    ExportProofLine = "export-proof-line.json";
    ExportParties = "export-parties.json";
}

/// The component name of schema file `file` (`defs.json` → `Defs`).
pub fn component_of(file: &str) -> Option<&'static str> {
    SCHEMA_FILES
        .iter()
        .find(|(_, f, _)| *f == file)
        .map(|(name, _, _)| *name)
}
