//! Driving adapter, HTTP: the OpenAPI schemas of the request field types (`requests`), written
//! by hand because those types read raw JSON values (`try_from = "Value"`), which a derive can't
//! see through. Each schema states the rule the field type (or the domain constructor it calls)
//! enforces, so that a client generated from the document, or a fuzzer reading it, sends what
//! the server takes; the non-blank rule is computed from the domain's own `is_blank`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

use utoipa::openapi::Ref;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::handlers::templates::StepBody;
use super::handlers::trigger::MAX_CONTEXT_KEYS;
use super::requests::{CommentText, DomainName, Flag, Id, Name, PositiveId, Text, Timestamp};

use crate::domain::model::{
    AuditAction, EntityId, EntityType, EventName, InstanceStatus, MAX_COMMENT_CHARS,
    MAX_CONDITION_CHARS, MAX_IDEMPOTENCY_KEY_LEN, MAX_QUORUM, RoleName, StepStatus, UserId,
    is_blank,
};
use crate::domain::service::MAX_SEARCH_LIMIT;

/// Longest template, step or user name (the domain's rule), in characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// A string schema.
fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A regular expression (ECMA 262 and Python alike) for "no NUL, and at least one character
/// that is not blank": the blank characters listed as the domain's `is_blank` finds them.
pub fn visible_text_pattern() -> &'static str {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut ranges: Vec<(char, char)> = vec![('\0', '\0')];
        let mut buf = [0u8; 4];
        for c in (1..=0x10FFFFu32).filter_map(char::from_u32) {
            if !is_blank(c.encode_utf8(&mut buf)) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if u32::from(*end) + 1 == u32::from(c) => *end = c,
                _ => ranges.push((c, c)),
            }
        }
        let mut class = String::new();
        for (start, end) in ranges {
            escape(&mut class, start);
            if end != start {
                class.push('-');
                escape(&mut class, end);
            }
        }
        format!("^[^\\u0000]*[^{class}][^\\u0000]*$")
    })
}

/// `c` inside a character class: `\uXXXX` in the basic plane, the character itself beyond
/// (none of them is special in a class).
fn escape(out: &mut String, c: char) {
    if u32::from(c) <= 0xFFFF {
        let _ = write!(out, "\\u{:04x}", u32::from(c));
    } else {
        out.push(c);
    }
}

impl<T: PositiveId> PartialSchema for Id<T> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(i64::MAX))
            .description(Some("A positive integer id."))
            .into()
    }
}

impl<T: PositiveId> ToSchema for Id<T> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PositiveId")
    }
}

impl PartialSchema for Text {
    fn schema() -> RefOr<Schema> {
        string()
            .pattern(Some("^[^\\u0000]*$"))
            .description(Some("Text without NUL characters."))
            .into()
    }
}

impl ToSchema for Text {}

/// A template, step or user name: 1 to 200 characters, not blank, no NUL. Documents the
/// fields that are read as [`Text`] and then checked by the domain.
pub struct Label;

impl PartialSchema for Label {
    fn schema() -> RefOr<Schema> {
        string()
            .min_length(Some(1))
            .max_length(Some(MAX_LABEL_CHARS))
            .pattern(Some(visible_text_pattern()))
            .description(Some(
                "1 to 200 characters, not blank (white space and format characters alone are \
                 blank), no NUL.",
            ))
            .into()
    }
}

impl ToSchema for Label {}

/// A step's condition (`when`): a CEL expression over the trigger's `context`.
pub struct ConditionSchema;

impl PartialSchema for ConditionSchema {
    fn schema() -> RefOr<Schema> {
        string()
            .min_length(Some(1))
            .max_length(Some(MAX_CONDITION_CHARS))
            .pattern(Some(visible_text_pattern()))
            .description(Some(
                "A Common Expression Language (CEL) expression over the trigger's `context`, \
                 e.g. `context.discount_percent > 10`; 1 to 1,000 characters, not blank, no \
                 NUL. The step applies only when it is true at trigger time; when it is false \
                 the step is `skipped`; when it can't be evaluated on the context (a missing \
                 field, a wrong type) the step is kept. Checked when the template is saved.",
            ))
            .examples(["context.discount_percent > 10"])
            .into()
    }
}

impl ToSchema for ConditionSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Condition")
    }
}

impl PartialSchema for CommentText {
    fn schema() -> RefOr<Schema> {
        string()
            .min_length(Some(1))
            .max_length(Some(MAX_COMMENT_CHARS))
            .pattern(Some(visible_text_pattern()))
            .description(Some(
                "1 to 2,000 characters, not blank (white space and format characters alone are \
                 blank), no NUL.",
            ))
            .into()
    }
}

impl ToSchema for CommentText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Comment")
    }
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "An RFC 3339 time with its offset, e.g. 2026-12-01T00:00:00Z (kept to the microsecond).",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

impl PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Boolean).into()
    }
}

impl ToSchema for Flag {}

/// How a machine name is documented: its schema name and longest length.
pub trait NameRule {
    const SCHEMA: &'static str;
    const MAX: usize;
}

impl NameRule for EventName {
    const SCHEMA: &'static str = "EventName";
    const MAX: usize = 128;
}

impl NameRule for EntityType {
    const SCHEMA: &'static str = "EntityType";
    const MAX: usize = 64;
}

impl NameRule for RoleName {
    const SCHEMA: &'static str = "RoleName";
    const MAX: usize = 64;
}

impl<T: DomainName + NameRule> PartialSchema for Name<T> {
    fn schema() -> RefOr<Schema> {
        string()
            .min_length(Some(1))
            .max_length(Some(T::MAX))
            .pattern(Some("^[a-z][a-z0-9_.-]*$"))
            .description(Some(format!(
                "A machine name: 1 to {} characters of a-z, 0-9, '_', '.' or '-', starting with \
                 a letter.",
                T::MAX
            )))
            .into()
    }
}

impl<T: DomainName + NameRule> ToSchema for Name<T> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(T::SCHEMA)
    }
}

/// The list of a user's roles (documents a field read as an array of names).
pub struct RoleList;

impl PartialSchema for RoleList {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Name::<RoleName>::schema())
            .max_items(Some(crate::domain::machine::MAX_USER_ROLES))
            .into()
    }
}

impl ToSchema for RoleList {}

/// A closed set of strings, documented with the domain's spellings.
fn one_of(values: impl IntoIterator<Item = &'static str>, description: &str) -> RefOr<Schema> {
    string()
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

macro_rules! closed_set {
    ($(#[$doc:meta])* $schema:ident, $domain:ty, $name:literal, $description:literal) => {
        $(#[$doc])*
        pub struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                one_of(<$domain>::ALL.iter().map(|v| v.as_str()), $description)
            }
        }

        impl ToSchema for $schema {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

closed_set!(
    /// An instance's status.
    InstanceStatusSchema,
    InstanceStatus,
    "InstanceStatus",
    "An instance's status."
);
closed_set!(
    /// A webhook delivery's status.
    DeliveryStatusSchema,
    crate::domain::webhooks::model::DeliveryStatus,
    "DeliveryStatus",
    "A webhook delivery's status."
);
closed_set!(
    /// A step's status.
    StepStatusSchema,
    StepStatus,
    "StepStatus",
    "A step's status."
);
closed_set!(
    /// What an audit entry records.
    AuditActionSchema,
    AuditAction,
    "AuditAction",
    "What an audit entry records."
);

/// An approver, in requests and answers: `{"type":"user","user_id":N}` or
/// `{"type":"role","role":"name"}`. Written by hand: any other key is refused, except the other
/// type's field as `null` (which counts as absent, as for every optional field).
pub struct ApproverSchema;

impl PartialSchema for ApproverSchema {
    fn schema() -> RefOr<Schema> {
        let variant = |kind: &str, field: &str, value: RefOr<Schema>, other: &str, doc: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(doc))
                .property("type", string().enum_values(Some([kind])))
                .property(field, value)
                .property(other, ObjectBuilder::new().schema_type(Type::Null))
                .required("type")
                .required(field)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .description(Some(
                "An approver: one user, or everyone active holding a role (at trigger time).",
            ))
            .item(variant(
                "user",
                "user_id",
                RefOr::Ref(Ref::from_schema_name(UserIdField::name())),
                "role",
                "One user.",
            ))
            .item(variant(
                "role",
                "role",
                RefOr::Ref(Ref::from_schema_name(RoleNameField::name())),
                "user_id",
                "Everyone active holding the role.",
            ))
            .into()
    }
}

impl ToSchema for ApproverSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Approver")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((UserIdField::name().into_owned(), UserIdField::schema()));
        schemas.push((RoleNameField::name().into_owned(), RoleNameField::schema()));
    }
}

/// A positive integer id in a path or a query (anything else names no resource).
pub struct PathId;

impl PartialSchema for PathId {
    fn schema() -> RefOr<Schema> {
        Id::<UserId>::schema()
    }
}

impl ToSchema for PathId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PositiveId")
    }
}

/// A page size: 1 to 500 (the service's rule).
pub struct SearchLimit;

impl PartialSchema for SearchLimit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_SEARCH_LIMIT))
            .into()
    }
}

impl ToSchema for SearchLimit {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PageSize")
    }
}

/// An `Idempotency-Key`: 1 to 255 printable ASCII characters. HTTP drops white space around
/// a header value, so the key begins and ends with a visible character.
pub struct IdempotencyKeySchema;

impl PartialSchema for IdempotencyKeySchema {
    fn schema() -> RefOr<Schema> {
        string()
            .min_length(Some(1))
            .max_length(Some(MAX_IDEMPOTENCY_KEY_LEN))
            .pattern(Some("^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"))
            .into()
    }
}

impl ToSchema for IdempotencyKeySchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("IdempotencyKey")
    }
}

/// The free-form context of a trigger: a JSON object of at most 256 keys.
pub struct ContextSchema;

impl PartialSchema for ContextSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(MAX_CONTEXT_KEYS))
            .description(Some(
                "Any JSON object of at most 256 keys, with no NUL character in any key or string.",
            ))
            .into()
    }
}

impl ToSchema for ContextSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Context")
    }
}

/// A template's steps in a request: at least one.
pub struct StepList;

impl PartialSchema for StepList {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                StepBody::name(),
            )))
            .min_items(Some(1))
            .into()
    }
}

impl ToSchema for StepList {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((StepBody::name().into_owned(), StepBody::schema()));
        StepBody::schemas(schemas);
    }
}

/// A step's quorum: how many distinct approvals it needs, 1 to `MAX_QUORUM`, or `"all"` (every
/// user of its snapshot).
pub struct QuorumSchema;

impl PartialSchema for QuorumSchema {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_QUORUM)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["all"])),
            )
            .description(Some(
                "How many distinct approvals the step needs: 1 to 1000, or \"all\" (every user of its snapshot).",
            ))
            .into()
    }
}

impl ToSchema for QuorumSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Quorum")
    }
}

/// A step's `due_in`: an ISO 8601 duration of days, hours, minutes and seconds.
pub struct DueInSchema;

impl PartialSchema for DueInSchema {
    fn schema() -> RefOr<Schema> {
        string()
            .pattern(Some(
                "^P([0-9]+D|([0-9]+D)?T([0-9]+H([0-9]+M)?([0-9]+S)?|[0-9]+M([0-9]+S)?|[0-9]+S))$",
            ))
            .description(Some(
                "How long the step may await action once activated: an ISO 8601 duration of                  days, hours, minutes and seconds (PnDTnHnMnS; no years, months or weeks),                  longer than zero and at most 3650 days. The step's `due_at` is its activation                  time plus this.",
            ))
            .examples(["PT48H", "P2D"])
            .into()
    }
}

impl ToSchema for DueInSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DueIn")
    }
}

/// A step's `on_overdue` rule.
pub struct OnOverdueSchema;

impl PartialSchema for OnOverdueSchema {
    fn schema() -> RefOr<Schema> {
        string()
            .enum_values(Some(["notify", "escalate", "reject"]))
            .description(Some(
                "What happens when the step is overdue, after the `step.overdue` event:                  `notify` (nothing more; the default), `escalate` (the members of                  `escalate_to` join the step's eligible users) or `reject` (the system rejects                  the step and the instance, comment `overdue`). Only with `due_in`.",
            ))
            .into()
    }
}

impl ToSchema for OnOverdueSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OnOverdue")
    }
}

/// A step's `escalate_to`: an approver, its `type` optional.
pub struct EscalateToSchema;

impl PartialSchema for EscalateToSchema {
    fn schema() -> RefOr<Schema> {
        let variant = |kind: &str, field: &str, value: RefOr<Schema>, other: &str, doc: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(doc))
                .property("type", string().enum_values(Some([kind])))
                .property(field, value)
                .property(other, ObjectBuilder::new().schema_type(Type::Null))
                .required(field)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .description(Some(
                "Whom an `escalate` rule adds to the step's eligible users when it is overdue                  (resolved then, active users only): one user, or everyone active holding a                  role. Required with `on_overdue: escalate`, refused otherwise.",
            ))
            .item(variant(
                "user",
                "user_id",
                RefOr::Ref(Ref::from_schema_name(UserIdField::name())),
                "role",
                "One user.",
            ))
            .item(variant(
                "role",
                "role",
                RefOr::Ref(Ref::from_schema_name(RoleNameField::name())),
                "user_id",
                "Everyone active holding the role.",
            ))
            .into()
    }
}

impl ToSchema for EscalateToSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EscalateTo")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((UserIdField::name().into_owned(), UserIdField::schema()));
        schemas.push((RoleNameField::name().into_owned(), RoleNameField::schema()));
    }
}

/// The field types by the value they hold, under names that utoipa's derive takes as plain
/// schema types (it can't document a generic field type whose parameter is a domain type).
pub type UserIdField = Id<UserId>;
pub type EntityIdField = Id<EntityId>;
pub type EventNameField = Name<EventName>;
pub type EntityTypeField = Name<EntityType>;
pub type RoleNameField = Name<RoleName>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visible_text_pattern_lists_the_domains_blank_characters() {
        let pattern = visible_text_pattern();
        // NUL, white space and format characters are listed; letters are not.
        for listed in [
            "\\u0000",
            "\\u0009-\\u000d",
            "\\u0020",
            "\\u2000-\\u200f",
            "\\ufeff",
            "\\u3000",
        ] {
            assert!(pattern.contains(listed), "{listed} missing from {pattern}");
        }
        assert!(!pattern.contains("\\u0041"), "{pattern}");
        assert!(pattern.starts_with("^[^\\u0000]*[^\\u0000"), "{pattern}");
    }
}
