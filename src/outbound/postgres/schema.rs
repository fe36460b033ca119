//! Outbound adapter, PostgreSQL: the diesel table definitions, kept in step with `migrations/`
//! by hand.

diesel::table! {
    users (id) {
        id -> Int8,
        name -> Text,
        active -> Bool,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
    }
}

diesel::table! {
    user_roles (role, user_id) {
        role -> Text,
        user_id -> Int8,
    }
}

diesel::table! {
    workflow_templates (id) {
        id -> Int8,
        name -> Text,
        event -> Text,
        entity_type -> Text,
        version -> Int4,
        is_active -> Bool,
        forbid_self_approval -> Bool,
    }
}

diesel::table! {
    workflow_template_versions (template_id, version) {
        template_id -> Int8,
        version -> Int4,
        name -> Text,
        event -> Text,
        entity_type -> Text,
        is_active -> Bool,
        forbid_self_approval -> Bool,
        steps -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_template_steps (template_id, step_order) {
        template_id -> Int8,
        step_order -> Int4,
        name -> Text,
        approver_user_id -> Nullable<Int8>,
        approver_role -> Nullable<Text>,
        quorum -> Nullable<Int4>,
        when_condition -> Nullable<Text>,
        due_in -> Nullable<Text>,
        on_overdue -> Nullable<Text>,
        escalate_to_user_id -> Nullable<Int8>,
        escalate_to_role -> Nullable<Text>,
    }
}

diesel::table! {
    workflow_instances (id) {
        id -> Int8,
        template_id -> Int8,
        template_version -> Int4,
        event -> Text,
        entity_type -> Text,
        entity_id -> Int8,
        initiated_by -> Int8,
        status -> Text,
        context -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        last_event_sequence -> Int8,
    }
}

diesel::table! {
    workflow_instance_steps (id) {
        id -> Int8,
        instance_id -> Int8,
        step_order -> Int4,
        name -> Text,
        approver_user_id -> Nullable<Int8>,
        approver_role -> Nullable<Text>,
        eligible_user_ids -> Array<Int8>,
        status -> Text,
        acted_by_user_id -> Nullable<Int8>,
        comment -> Nullable<Text>,
        acted_at -> Nullable<Timestamptz>,
        activated_at -> Nullable<Timestamptz>,
        quorum -> Int4,
        approvals -> Jsonb,
        due_in -> Nullable<Text>,
        on_overdue -> Nullable<Text>,
        escalate_to_user_id -> Nullable<Int8>,
        escalate_to_role -> Nullable<Text>,
        due_at -> Nullable<Timestamptz>,
        overdue_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workflow_audit_log (id) {
        id -> Int8,
        instance_id -> Int8,
        step_id -> Nullable<Int8>,
        action -> Text,
        actor_user_id -> Nullable<Int8>,
        comment -> Nullable<Text>,
        at -> Timestamptz,
        hash -> Bytea,
        on_behalf_of -> Nullable<Int8>,
    }
}

diesel::table! {
    workflow_delegations (user_id) {
        user_id -> Int8,
        to_user_id -> Int8,
        until -> Timestamptz,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_inbox (user_id, activated_at, step_id) {
        user_id -> Int8,
        activated_at -> Timestamptz,
        step_id -> Int8,
    }
}

diesel::table! {
    workflow_callback_outbox (id) {
        id -> Int8,
        instance_id -> Int8,
        kind -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        attempts -> Int4,
        due_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        event_id -> Text,
        sequence -> Int8,
    }
}

diesel::table! {
    projects (id) {
        id -> Int8,
        name -> Text,
    }
}

diesel::table! {
    units (id) {
        id -> Int8,
        project_id -> Int8,
        code -> Text,
        price_cents -> Int8,
    }
}

diesel::table! {
    bookings (id) {
        id -> Int8,
        unit_id -> Int8,
        customer_name -> Text,
        status -> Text,
    }
}

diesel::table! {
    commissions (id) {
        id -> Int8,
        booking_id -> Int8,
        agent_user_id -> Int8,
        amount_cents -> Int8,
        status -> Text,
    }
}

diesel::joinable!(workflow_instance_steps -> workflow_instances (instance_id));
diesel::joinable!(workflow_inbox -> workflow_instance_steps (step_id));
diesel::joinable!(workflow_template_steps -> workflow_templates (template_id));
diesel::joinable!(user_roles -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    workflow_delegations,
    roles,
    user_roles,
    workflow_templates,
    workflow_template_steps,
    workflow_template_versions,
    workflow_instances,
    workflow_instance_steps,
    workflow_audit_log,
    workflow_inbox,
    workflow_callback_outbox,
    projects,
    units,
    bookings,
    commissions,
);

diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        request -> Text,
        status -> Nullable<Int4>,
        body -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}
