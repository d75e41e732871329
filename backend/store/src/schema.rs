// @generated automatically by Diesel CLI.

diesel::table! {
    api_credentials (id) {
        id -> Text,
        party_id -> Text,
        secret_sha256 -> Bytea,
        scopes -> Array<Nullable<Text>>,
        label -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    blocks (block_no) {
        block_no -> Int8,
        block_size -> Int4,
        root -> Bytea,
        sealed_at -> Timestamptz,
        leaves -> Nullable<Bytea>,
    }
}

diesel::table! {
    checkpoints (size) {
        size -> Int8,
        root -> Bytea,
        block_size -> Int4,
        signed -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    document_access (document_ref, party_id) {
        document_ref -> Text,
        party_id -> Text,
        head_idx -> Int8,
    }
}

diesel::table! {
    document_search (reference) {
        reference -> Text,
        vessel -> Text,
        voyage -> Text,
        shipper -> Text,
        consignee -> Nullable<Text>,
        notify_parties -> Array<Nullable<Text>>,
        containers -> Array<Nullable<Text>>,
        search -> Text,
    }
}

diesel::table! {
    documents (reference) {
        reference -> Text,
        checksum -> Bytea,
        carrier -> Text,
        port_of_loading -> Text,
        port_of_discharge -> Text,
        status -> Text,
        possessor -> Text,
        head_checksum -> Bytea,
        head_idx -> Int8,
        issued_idx -> Int8,
        state -> Text,
    }
}

diesel::table! {
    events (idx) {
        idx -> Int8,
        actor -> Text,
        event_id -> Text,
        event_code -> Text,
        document_ref -> Nullable<Text>,
        equipment_ref -> Nullable<Text>,
        location -> Nullable<Text>,
    }
}

diesel::table! {
    export_series (seq) {
        seq -> Int8,
        authority -> Text,
        range_from -> Int8,
        range_to -> Int8,
        manifest_sha256 -> Text,
        entries -> Int8,
        path -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    incidents (id) {
        id -> Int8,
        code -> Text,
        detail -> Text,
        evidence -> Jsonb,
        opened_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        party -> Nullable<Text>,
    }
}

diesel::table! {
    ledger_entries (idx) {
        idx -> Int8,
        kind -> Text,
        signed -> Bytea,
        leaf_hash -> Bytea,
        document_ref -> Nullable<Text>,
        equipment_ref -> Nullable<Text>,
        actor -> Text,
        kid -> Text,
        received_at -> Timestamptz,
        submitted_by -> Nullable<Text>,
    }
}

diesel::table! {
    ledger_head (singleton) {
        singleton -> Bool,
        size -> Int8,
        block_size -> Nullable<Int4>,
    }
}

diesel::table! {
    node_documents (reference) {
        reference -> Text,
        state -> Text,
        type_code -> Text,
        is_to_order -> Bool,
        carrier -> Text,
        shipper -> Text,
        consignee -> Nullable<Text>,
        notify_parties -> Array<Nullable<Text>>,
        possessor -> Text,
        endorsee -> Nullable<Text>,
        vessel -> Text,
        voyage -> Text,
        port_of_loading -> Text,
        port_of_discharge -> Text,
        containers -> Array<Nullable<Text>>,
        party_roles -> Array<Nullable<Text>>,
        issue_date -> Date,
        issued_at -> Timestamptz,
        updated_at -> Timestamptz,
        issued_index -> Int8,
        last_index -> Int8,
        last_action -> Text,
        last_actor -> Text,
        length -> Int8,
        head -> Bytea,
        search -> Text,
    }
}

diesel::table! {
    operator_keys (kid) {
        kid -> Text,
        public_key -> Bytea,
        added_idx -> Nullable<Int8>,
        revoked_idx -> Nullable<Int8>,
    }
}

diesel::table! {
    parties (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        ports -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        added_idx -> Nullable<Int8>,
        removed_idx -> Nullable<Int8>,
    }
}

diesel::table! {
    party_keys (kid) {
        kid -> Text,
        party_id -> Text,
        public_key -> Bytea,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        added_idx -> Nullable<Int8>,
        revoked_idx -> Nullable<Int8>,
    }
}

diesel::table! {
    portal_audit (id) {
        id -> Int8,
        at -> Timestamptz,
        user_id -> Nullable<Int8>,
        username -> Text,
        action -> Text,
        document_ref -> Nullable<Text>,
        detail -> Jsonb,
    }
}

diesel::table! {
    portal_drafts (id) {
        id -> Int8,
        reference -> Text,
        document -> Jsonb,
        recipient -> Text,
        created_by -> Nullable<Int8>,
        created_by_name -> Text,
        created_at -> Timestamptz,
        state -> Text,
        outbox_seq -> Nullable<Int8>,
    }
}

diesel::table! {
    portal_sessions (token_sha256) {
        token_sha256 -> Bytea,
        user_id -> Int8,
        created_at -> Timestamptz,
        last_seen -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    portal_users (id) {
        id -> Int8,
        username -> Text,
        party -> Text,
        role -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> Timestamptz,
        password_changed_at -> Timestamptz,
    }
}

diesel::table! {
    reconciliations (id) {
        id -> Int8,
        party -> Text,
        started_at -> Timestamptz,
        finished_at -> Timestamptz,
        registry_size -> Int8,
        replica_size -> Nullable<Int8>,
        replica_root -> Nullable<Bytea>,
        outcome -> Text,
        differences -> Int8,
        hash_bytes -> Int8,
        round_trips -> Int4,
        report -> Jsonb,
    }
}

diesel::table! {
    replica_checkpoints (size) {
        size -> Int8,
        root -> Bytea,
        signed -> Text,
        verified -> Bool,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    replica_entries (idx) {
        idx -> Int8,
        leaf_hash -> Bytea,
        signed -> Nullable<Bytea>,
        document_ref -> Nullable<Text>,
        received_at -> Timestamptz,
        held_leaf -> Bytea,
    }
}

diesel::table! {
    replica_outbox (seq) {
        seq -> Int8,
        kind -> Text,
        signed -> Text,
        leaf_hash -> Bytea,
        taken_at -> Timestamptz,
        state -> Text,
        answer -> Nullable<Jsonb>,
        answered_at -> Nullable<Timestamptz>,
        document_ref -> Nullable<Text>,
        attempts -> Int4,
        failing_since -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    submitters (party_id, submitter_id) {
        party_id -> Text,
        submitter_id -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    subscription_deliveries (seq) {
        seq -> Int8,
        subscription_id -> Text,
        entry_index -> Int8,
        attempt -> Int4,
        at -> Timestamptz,
        status_code -> Nullable<Int4>,
        error -> Nullable<Text>,
        millis -> Int4,
        last_index -> Nullable<Int8>,
        events -> Nullable<Int4>,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        party_id -> Text,
        url -> Text,
        filter -> Text,
        secret -> Text,
        next_index -> Int8,
        status -> Text,
        failures -> Int4,
        failing_since -> Nullable<Timestamptz>,
        retry_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        batch_max -> Nullable<Int4>,
        batch_end -> Nullable<Int8>,
    }
}

diesel::table! {
    transitions (idx) {
        idx -> Int8,
        document_ref -> Text,
        checksum -> Bytea,
        previous_checksum -> Nullable<Bytea>,
        action -> Text,
        actor -> Text,
        recipient -> Nullable<Text>,
    }
}

diesel::joinable!(api_credentials -> parties (party_id));
diesel::joinable!(party_keys -> parties (party_id));
diesel::joinable!(portal_audit -> portal_users (user_id));
diesel::joinable!(portal_drafts -> portal_users (created_by));
diesel::joinable!(portal_sessions -> portal_users (user_id));
diesel::joinable!(subscription_deliveries -> subscriptions (subscription_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_credentials,
    blocks,
    checkpoints,
    document_access,
    document_search,
    documents,
    events,
    export_series,
    incidents,
    ledger_entries,
    ledger_head,
    node_documents,
    operator_keys,
    parties,
    party_keys,
    portal_audit,
    portal_drafts,
    portal_sessions,
    portal_users,
    reconciliations,
    replica_checkpoints,
    replica_entries,
    replica_outbox,
    submitters,
    subscription_deliveries,
    subscriptions,
    transitions,
);
