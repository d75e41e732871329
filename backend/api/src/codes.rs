//! Every code a refusal can carry, in one place: its HTTP status and what it means.
//!
//! A problem document's `code` (and `type`, `urn:lading:problem:<code>`) is always one of
//! these, and its status is the one written here — for the registry and a replica's face alike.
//! The README's table of codes is generated from [`Code::markdown_table`]; a test fails when
//! the two drift apart (`LADING_BLESS=1 cargo test -p lading-api --test codes` rewrites it).
//!
//! When a request breaks several rules, the first in this order is the answer: the request
//! itself (media type, size, read time), the JWS and its header, the payload's form, the key and
//! signature, who submits it (`submitter_not_authorised`), the time rule, the document
//! (`unknown_document` also for a document the signer may not read), then the ledger
//! (duplicates, double spends, the chain) and the state machine.

/// Declares [`Code`]: variant, wire name, HTTP status, one sentence.
macro_rules! codes {
    ($($variant:ident = $code:literal, $status:literal, $sentence:literal;)*) => {
        /// A stable refusal code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as it appears in `code` and in the problem's `type`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// The HTTP status every refusal with this code has.
            pub fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)*
                }
            }

            /// What the code means, in one sentence.
            pub fn sentence(self) -> &'static str {
                match self {
                    $(Code::$variant => $sentence,)*
                }
            }

            /// The code named `code`, if there is one.
            pub fn parse(code: &str) -> Option<Code> {
                match code {
                    $($code => Some(Code::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    // The request
    MalformedJws = "malformed_jws", 400, "The body is not a compact JWS as Lading takes it (three base64url parts, a JSON object header with alg and kid, a 64-byte signature).";
    HeaderTooLarge = "header_too_large", 400, "The JWS protected header is larger than 512 bytes.";
    UnsupportedAlgorithm = "unsupported_algorithm", 400, "The JWS alg is not EdDSA.";
    WrongType = "wrong_type", 400, "The JWS typ is not the one this endpoint takes (a transition sent as an event, or the other way round).";
    NonCanonicalHeader = "non_canonical_header", 400, "The protected header is not exactly {\"alg\":\"EdDSA\",\"kid\":..,\"typ\":..} in RFC 8785 form: one signed statement has one byte form.";
    NonCanonicalPayload = "non_canonical_payload", 400, "The payload bytes are not RFC 8785 canonical JSON.";
    InvalidPayload = "invalid_payload", 400, "A member of the payload breaks its rule; pointer names it.";
    PrivateKey = "private_key", 400, "A party statement carries a private key; it publishes public keys only.";
    InvalidDocumentField = "invalid_document_field", 400, "A field of the transport document breaks its rule (UN/LOCODE, ISO 6346 check digit, ...); pointer names it.";
    InvalidEvent = "invalid_event", 400, "A member of the shipment event breaks its rule; pointer names it.";
    DocumentChecksumMismatch = "document_checksum_mismatch", 400, "documentChecksum is not the checksum of the document (pointer /documentChecksum); only a signer who may read the document is told.";
    InvalidDocumentReference = "invalid_document_reference", 400, "A document reference in the URL path cannot be one (1 to 20 of A-Z a-z 0-9 - _ . /).";
    MalformedBatch = "malformed_batch", 400, "A batch body is not a JSON array of compact JWS strings.";
    BatchTooLarge = "batch_too_large", 400, "A batch holds more than 10,000 items.";
    BadPath = "bad_path", 400, "A URL path parameter does not parse.";
    BadQuery = "bad_query", 400, "A query parameter does not parse or is out of range.";
    BadFilter = "bad_filter", 400, "A search filter (GET /v1/documents, GET /v1/events, GET /v1/submissions) cannot match by its form: an unknown state, role, kind, action or event code, a malformed port, container, party, reference or time, a limit outside 1..=200, or too long a q.";
    BadCursor = "bad_cursor", 400, "A search cursor is not one the endpoint handed out as next (or was handed out by another endpoint).";
    BadBody = "bad_body", 400, "The request body could not be read.";
    BadJson = "bad_json", 400, "A JSON request body does not parse or has the wrong shape.";
    BadHeader = "bad_header", 400, "A request header Lading reads (lading-received-at) does not parse.";
    ExportFromAfterTo = "export_from_after_to", 400, "An export (GET /v1/exports) was asked with from after to (or since after until).";
    ExportWindowAndRange = "export_window_and_range", 400, "An export (GET /v1/exports) was asked both by ledger indexes (from, to) and by a time window (since, until): it takes one or the other.";
    ExportBeyondCheckpoint = "export_beyond_checkpoint", 400, "An export (GET /v1/exports) was asked beyond the registry's latest checkpoint: it holds only entries it can prove.";
    CallbackUrlInvalid = "callback_url_invalid", 400, "A subscription's callback is not an HTTPS URL the registry can resolve (no user name or password in it).";
    CallbackAddressRefused = "callback_address_refused", 400, "A subscription's callback resolves to a loopback, private or reserved address, which the registry does not call (server-side request forgery) unless notifications.allow_private_targets is set.";
    SubscriptionInvalid = "subscription_invalid", 400, "A subscription's body is not {url, filter} as the API describes it (filter: documents, actions, eventCodes).";
    SubscriptionBatchInvalid = "subscription_batch_invalid", 400, "A subscription's batch is not {maxEvents} with maxEvents a whole number from 1 to 1000; absent, deliveries are one event a request.";
    ConsistencyFromAfterTo = "consistency_from_after_to", 400, "A consistency proof was asked from a larger checkpoint to a smaller one.";
    WrongKind = "wrong_kind", 400, "At a replica: a transition sent to /v1/events or an event to /v1/transitions; nothing was kept.";
    Reconciliation = "reconciliation", 400, "At a replica: a reconciliation request that does not fit the open session.";
    MalformedEntry = "malformed_entry", 400, "At a replica: what was sent is not a signed statement the replica can read.";
    OutOfOrder = "out_of_order", 400, "At a replica: an entry arrived where another index was due.";
    LeafMismatch = "leaf_mismatch", 400, "At a replica: an entry's bytes do not hash to the leaf it came with.";
    BrokenChain = "broken_chain", 400, "At a replica: an entry does not follow its document's chain.";
    BadPartyStatement = "bad_party_statement", 400, "At a replica: a party statement on the feed breaks the membership's rules.";
    BadCheckpoint = "bad_checkpoint", 400, "At a replica: a checkpoint does not parse or its signature does not verify.";
    CheckpointRootMismatch = "checkpoint_root_mismatch", 400, "At a replica: a checkpoint's root is not the root of the entries it covers.";
    ConflictingCheckpoints = "conflicting_checkpoints", 400, "At a replica: the registry signed two checkpoints of one size with different roots.";
    UnacknowledgedCheckpoint = "unacknowledged_checkpoint", 400, "At a replica: a peer holds a checkpoint signed with the registry's key that the registry does not acknowledge (a split view).";
    InconsistentCheckpoints = "inconsistent_checkpoints", 400, "At a replica: the registry's consistency proof from the checkpoint the replica verified to a later one does not hold.";
    // Who calls
    Unauthenticated = "unauthenticated", 401, "No bearer token, or one that is unknown (answered with WWW-Authenticate: Bearer); also a write without any credential (registry.require_write_credential, on by default).";
    TokenExpired = "token_expired", 401, "The bearer credential has expired (answered with WWW-Authenticate: Bearer error=\"invalid_token\").";
    TokenRevoked = "token_revoked", 401, "The bearer credential was revoked (answered with WWW-Authenticate: Bearer error=\"invalid_token\").";
    ClientCertificateRequired = "client_certificate_required", 401, "This resource needs a client certificate from the consortium's CA (mutual TLS).";
    InsufficientScope = "insufficient_scope", 403, "The bearer credential lacks the scope this route needs (read for reads, submit for writes, admin for /v1/tokens).";
    UnregisteredParty = "unregistered_party", 403, "The client certificate names a party that is not registered.";
    CertificateNamesNoParty = "certificate_names_no_party", 403, "The client certificate names no party, or more than one subject.";
    NotACustomsAuthority = "not_a_customs_authority", 403, "An export was asked by a party that is no customs authority; nothing was written.";
    SubmitterNotAuthorised = "submitter_not_authorised", 403, "A statement signed by another party than the submitting credential's, which has not authorised that party to submit for it (POST /v1/submitters); said the same whether or not the document exists, duplicates included.";
    NotThisReplicasParty = "not_this_replicas_party", 403, "At a replica: the caller is not the replica's own party (or, for reconciliation, not the registry).";
    // What is asked for
    NotFound = "not_found", 404, "No such resource — or one the caller may not see: the two answers are the same.";
    UnknownCheckpoint = "unknown_checkpoint", 404, "The registry signed no checkpoint of that size.";
    EntryNotInCheckpoint = "entry_not_in_checkpoint", 404, "The entry is not covered by the checkpoint asked for.";
    EntryNotYetProvable = "entry_not_yet_provable", 404, "No checkpoint covers the entry yet (within the wait asked for); one is signed every checkpoint interval.";
    MethodNotAllowed = "method_not_allowed", 405, "The resource does not answer this method (Allow lists those it does).";
    BodyTimeout = "body_timeout", 408, "The request body did not arrive in time (server.body_timeout_ms, 30 seconds by default).";
    // The ledger's history
    DocumentExists = "document_exists", 409, "An ISSUE of a reference that is already issued.";
    WrongPreviousChecksum = "wrong_previous_checksum", 409, "previousTransitionChecksum does not name the document's last transition.";
    DoubleSpend = "double_spend", 409, "previousTransitionChecksum names a transition that already has a successor.";
    DuplicateEventId = "duplicate_event_id", 409, "The actor already reported an event with this eventId.";
    PartyExists = "party_exists", 409, "ADD_PARTY of a party id that is (or was) taken: party ids are never reused.";
    KeyExists = "key_exists", 409, "A key statement adds a kid that is (or was) taken: kids are never reused.";
    KeyAlreadyRevoked = "key_already_revoked", 409, "REVOKE_KEY of a key that is already revoked.";
    NotParked = "not_parked", 409, "At a replica: a retry of a submission that is not parked.";
    BodyTooLarge = "body_too_large", 413, "The body is larger than the endpoint takes (1 MiB a statement, 32 MiB a batch).";
    UnsupportedMediaType = "unsupported_media_type", 415, "The Content-Type is not the one the endpoint takes.";
    // Keys, signatures, time, and the rules
    UnknownKey = "unknown_key", 422, "No registered key has this kid.";
    RevokedKey = "revoked_key", 422, "The key named by kid is revoked.";
    BadSignature = "bad_signature", 422, "The signature does not verify with the key named by kid.";
    KeyNotActor = "key_not_actor", 422, "The key belongs to another party than the payload's actor.";
    NotAMember = "not_a_member", 422, "The signer, or the party a key statement is about, is not (or no longer) a member of the consortium.";
    OperatorOnly = "operator_only", 422, "ADD_PARTY, REMOVE_PARTY and changes to the operator's keys must be signed by the operator.";
    NotOwnerOrOperator = "not_owner_or_operator", 422, "A key statement about a party must be signed by that party or by the operator.";
    KidNotOfOwner = "kid_not_of_owner", 422, "A key added by a statement must have a kid written <partyId>:<label> (operator:<label> for the operator).";
    KeyNotOfOwner = "key_not_of_owner", 422, "REVOKE_KEY names a kid that is not a key of partyId.";
    LastOperatorKey = "last_operator_key", 422, "REVOKE_KEY of the operator's last valid key (add another first).";
    InvalidParty = "invalid_party", 422, "The party of ADD_PARTY, or a key it adds, is not valid (ports on a party that is not a customs authority, a key that is no Ed25519 point).";
    TestKey = "test_key", 422, "A party statement adds a TEST key (lading_test_key) to a registry that takes none.";
    TimeSkew = "time_skew", 422, "The statement's time is further from the registry's clock (or from when the party's own node took it) than the allowed skew.";
    UnknownDocument = "unknown_document", 422, "No such document — or one the signer may not read: the two answers are the same.";
    TimeBeforePrevious = "time_before_previous", 422, "The transition is dated before the transition it follows.";
    EventNotAllowed = "event_not_allowed", 422, "The actor may not report this event (a milestone by another than the document's carrier, a hold outside the authority's ports, ...).";
    NotCarrier = "not_carrier", 422, "Only the document's carrier may take this action.";
    NotPossessor = "not_possessor", 422, "Only the document's possessor may take this action.";
    NotHolder = "not_holder", 422, "Only the holder (possessor and endorsee or consignee) may take this action.";
    NotNegotiable = "not_negotiable", 422, "The action needs a to-order (negotiable) document.";
    EndorsementRestricted = "endorsement_restricted", 422, "The endorsee was named by a plain ENDORSE and may not endorse further.";
    WrongRecipient = "wrong_recipient", 422, "The recipient is not one the action may go to.";
    SurrenderNotToCarrier = "surrender_not_to_carrier", 422, "A surrender goes to the document's carrier.";
    NoPendingSurrender = "no_pending_surrender", 422, "SACC or SREJ without a pending surrender.";
    SurrenderPending = "surrender_pending", 422, "A surrender is pending: only the carrier's SACC or SREJ may follow.";
    DocumentClosed = "document_closed", 422, "The document was surrendered or voided: nothing may follow.";
    VoidWithoutAcceptedAmendment = "void_without_accepted_amendment", 422, "VOID needs an accepted surrender for amendment.";
    SelfTransfer = "self_transfer", 422, "The recipient is the actor.";
    AlreadyIssued = "already_issued", 422, "ISSUE of a document that has a chain.";
    WrongDocument = "wrong_document", 422, "The transition names another document than the chain it was applied to.";
    NotIssue = "not_issue", 422, "The first transition of a document must be its ISSUE.";
    DuplicateTransition = "duplicate_transition", 422, "The transition is already in the document's chain.";
    // Load
    RateLimited = "rate_limited", 429, "Too many requests from this credential or this address (registry.rate_limit_*); nothing was done: retry after Retry-After seconds. Never applied to requests with a consortium client certificate.";
    // The server
    InternalError = "internal_error", 500, "The server hit an unexpected error; it is logged, and the answer says nothing more.";
    ContractViolation = "contract_violation", 500, "The answer would have contradicted the published OpenAPI document (a bug); said only where answers are checked (LADING_CONTRACT_CHECK=1, as in the tests).";
    LedgerUnavailable = "ledger_unavailable", 503, "Nothing was written; resubmitting the same bytes is safe.";
    NotReady = "not_ready", 503, "The server cannot answer this now (its database, its sequencer, or damage a reconciliation repairs).";
    ChainDamaged = "chain_damaged", 503, "At a replica: the rows held of the document are not the chain the replica verified (a row altered, deleted or moved to another document); an incident is open, and the document is not served until they are repaired.";
    ChainUnverified = "chain_unverified", 503, "At a replica: the document's earlier entries have not come in full (being fetched, or withheld by the registry: an incident), so its chain is not verified and it is not served.";
    TooManyExports = "too_many_exports", 503, "The registry is making as many exports as it makes at once (registry.max_exports); nothing was written: retry after Retry-After seconds.";
    ServerBusy = "server_busy", 503, "The registry holds as many submissions as it takes (registry.max_queue), or too many large bodies are being received; nothing was done: retry after Retry-After seconds.";
}

impl Code {
    /// The README's table: one row per code, in declaration order.
    pub fn markdown_table() -> String {
        let mut table = String::from("| code | status | meaning |\n|---|---|---|\n");
        for code in Self::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status(),
                code.sentence().replace('|', "\\|")
            ));
        }
        table
    }
}
