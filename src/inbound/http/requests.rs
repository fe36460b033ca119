//! Driving adapter, HTTP requests: the field types that request bodies are made of, and
//! [`parse`], which turns a JSON object into a body type with the contract's 422 messages.
//!
//! Body types are plain serde structs (`#[serde(deny_unknown_fields)]`, one field type per kind
//! of value). Each field type is a `#[serde(try_from = "Value")]` newtype whose refusal is the
//! end of the contract's sentence ("must be a positive integer"); `parse` adds the field's name.
//! They convert from `Value` rather than `String` or `i64` because serde's own type errors
//! ("invalid type: string \"7\", expected i64") are not the contract's messages.
//!
//! Two things are done by hand in `parse`, where serde's derive can't give the contract's answer:
//! unknown fields are refused first, with the contract's "is not a known field (expected: ...)"
//! message (serde's is worded differently; `deny_unknown_fields` stays on every body type as
//! the backstop for any other way of deserializing it); and every declared field is fed to the
//! derive, in declaration order, as `null` when absent, so that a missing field gets the
//! contract's "is required" (not serde's "missing field") and a body with several faults is
//! refused for the first one in declaration order, as it always was.

use std::cell::Cell;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::value::MapDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

use super::body::JsonObject;
use super::errors::ApiError;
use crate::domain::WorkflowError;
use crate::domain::model::{Comment, Condition, EntityId, EntityType, EventName, RoleName, UserId};

/// Parses `object` as the body type `T`; `prefix` is put before field names in errors (for
/// objects nested in a body, like `steps[0].`).
pub fn parse<T: DeserializeOwned>(mut object: JsonObject, prefix: &str) -> Result<T, ApiError> {
    let fields = field_names::<T>();
    if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::validation(
            &format!("{prefix}{unknown}"),
            &format!("is not a known field (expected: {})", fields.join(", ")),
        ));
    }
    // The derive takes the entries one by one and stops at the first refusal, so the field
    // taken last is the one refused.
    let current = Cell::new("");
    let entries = fields.iter().map(|&field| {
        current.set(field);
        (field, object.remove(field).unwrap_or(Value::Null))
    });
    T::deserialize(MapDeserializer::<_, serde_json::Error>::new(entries)).map_err(|refusal| {
        ApiError::validation(&format!("{prefix}{}", current.get()), &refusal.to_string())
    })
}

/// The field names a derived struct declares, in order: what its derive passes to
/// `deserialize_struct`, caught by a deserializer that does nothing else.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("request bodies are structs"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Why a value is refused: the end of "Field 'x' ...".
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(String);

impl Refusal {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The domain's own message for a value it refused.
    fn from_domain(error: WorkflowError) -> Self {
        match error {
            WorkflowError::Validation { message, .. } => Self(message),
            // Value constructors only ever refuse with `Validation`.
            other => Self(other.to_string()),
        }
    }

    /// The refusal as the 422 for `field`.
    pub fn for_field(self, field: &str) -> ApiError {
        ApiError::validation(field, &self.0)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field that must be present: `null` counts as absent (optional fields are `Option<_>`,
/// which serde fills with `None` for `null` before the field type sees it).
fn required(value: Value) -> Result<Value, Refusal> {
    match value {
        Value::Null => Err(Refusal::new("is required")),
        value => Ok(value),
    }
}

/// A string without NUL (PostgreSQL can't store NUL in text; refused here for every store).
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct Text(pub String);

impl TryFrom<Value> for Text {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        match required(value)? {
            Value::String(s) if s.contains('\0') => {
                Err(Refusal::new("must not contain NUL characters"))
            }
            Value::String(s) => Ok(Self(s)),
            _ => Err(Refusal::new("must be a string")),
        }
    }
}

/// Domain ids that are positive integers.
pub trait PositiveId: Sized {
    fn new(value: i64) -> Result<Self, WorkflowError>;
}

/// Domain names checked by their own constructor.
pub trait DomainName: Sized {
    fn new(value: String) -> Result<Self, WorkflowError>;
}

macro_rules! domain_values {
    (ids: $($id:ty),*; names: $($name:ty),*) => {
        $(impl PositiveId for $id {
            fn new(value: i64) -> Result<Self, WorkflowError> {
                <$id>::new(value)
            }
        })*
        $(impl DomainName for $name {
            fn new(value: String) -> Result<Self, WorkflowError> {
                <$name>::new(value)
            }
        })*
    };
}

domain_values!(ids: UserId, EntityId; names: EventName, EntityType, RoleName, Condition);

/// A JSON number that is a positive whole number. JSON has one number type: `3.0` is the
/// integer 3 (JSON Schema says so too, and some encoders write whole numbers that way); `3.5`
/// is not an integer.
pub fn positive_whole_number(value: &Value) -> Option<i64> {
    value.as_i64().filter(|n| *n > 0).or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (1.0..9_223_372_036_854_775_808.0).contains(f))
            .map(|f| f as i64)
    })
}

/// A domain id given as a JSON integer.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value", bound = "T: PositiveId")]
pub struct Id<T>(pub T);

impl<T: PositiveId> TryFrom<Value> for Id<T> {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        let value = required(value)?;
        positive_whole_number(&value)
            .and_then(|n| T::new(n).ok())
            .map(Self)
            .ok_or_else(|| Refusal::new("must be a positive integer"))
    }
}

/// A domain name (event, entity type, role) given as a JSON string.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value", bound = "T: DomainName")]
pub struct Name<T>(pub T);

impl<T: DomainName> TryFrom<Value> for Name<T> {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        let Text(text) = Text::try_from(value)?;
        T::new(text).map(Self).map_err(Refusal::from_domain)
    }
}

/// A decision comment: non-blank and bounded, by the domain's rule.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct CommentText(pub Comment);

impl TryFrom<Value> for CommentText {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        let Text(text) = Text::try_from(value)?;
        Comment::new(text).map(Self).map_err(Refusal::from_domain)
    }
}

/// A time: an RFC 3339 string with its offset (`2026-12-01T00:00:00Z`), kept to the
/// microsecond (the stores' precision).
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct Timestamp(pub DateTime<Utc>);

impl TryFrom<Value> for Timestamp {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        let refusal = || Refusal::new("must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z");
        let Value::String(text) = required(value)? else {
            return Err(refusal());
        };
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .and_then(|t| {
                let t = t.with_timezone(&Utc);
                DateTime::from_timestamp_micros(t.timestamp_micros())
            })
            .map(Self)
            .ok_or_else(refusal)
    }
}

/// `true` or `false`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct Flag(pub bool);

impl TryFrom<Value> for Flag {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        match required(value)? {
            Value::Bool(b) => Ok(Self(b)),
            _ => Err(Refusal::new("must be true or false")),
        }
    }
}

/// A JSON object, looked into later (by [`parse`] with a prefix, or as free-form context).
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct Object(pub JsonObject);

impl TryFrom<Value> for Object {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        match required(value)? {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(Refusal::new("must be a JSON object")),
        }
    }
}

/// A JSON array, whose items are looked into later.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct Array(pub Vec<Value>);

impl TryFrom<Value> for Array {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        match required(value)? {
            Value::Array(items) => Ok(Self(items)),
            _ => Err(Refusal::new("must be a JSON array")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Text,
        id: Id<UserId>,
        note: Option<Text>,
    }

    fn sample(body: Value) -> Result<Sample, String> {
        let Value::Object(map) = body else {
            panic!("not an object")
        };
        parse::<Sample>(map, "p.").map_err(|e| e.message)
    }

    #[test]
    fn field_names_are_the_declared_ones_in_order() {
        assert_eq!(field_names::<Sample>(), ["name", "id", "note"]);
    }

    #[test]
    fn a_valid_object_parses() {
        let s = sample(json!({"id": 3, "name": "x", "note": null})).unwrap();
        assert_eq!((s.name.0.as_str(), s.id.0.get()), ("x", 3));
        assert!(s.note.is_none());
        // A whole number written with a fraction is that integer.
        let s = sample(json!({"id": 368.0, "name": "x"})).unwrap();
        assert_eq!(s.id.0.get(), 368);
    }

    #[test]
    fn refusals_name_the_field_with_its_prefix() {
        let cases = [
            (json!({"name": "x"}), "Field 'p.id' is required."),
            (
                json!({"name": "x", "id": null}),
                "Field 'p.id' is required.",
            ),
            (
                json!({"name": "x", "id": "3"}),
                "Field 'p.id' must be a positive integer.",
            ),
            (
                json!({"name": 1, "id": 1}),
                "Field 'p.name' must be a string.",
            ),
            (
                json!({"name": "x", "id": 1.5}),
                "Field 'p.id' must be a positive integer.",
            ),
            (
                json!({"name": "x", "id": 1e19}),
                "Field 'p.id' must be a positive integer.",
            ),
            (
                json!({"name": "a\u{0}b", "id": 1}),
                "Field 'p.name' must not contain NUL characters.",
            ),
            (
                json!({"name": "x", "id": 1, "extra": 1}),
                "Field 'p.extra' is not a known field (expected: name, id, note).",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(
                sample(body.clone()).err(),
                Some(message.to_owned()),
                "{body}"
            );
        }
    }

    #[test]
    fn the_first_fault_in_declaration_order_is_reported() {
        // Alphabetically "id" comes first; the declaration puts "name" first.
        assert_eq!(
            sample(json!({"id": 0, "note": 5})).err(),
            Some("Field 'p.name' is required.".to_owned())
        );
        // Unknown fields are refused before anything else.
        assert_eq!(
            sample(json!({"id": 0, "zzz": 1})).err(),
            Some("Field 'p.zzz' is not a known field (expected: name, id, note).".to_owned())
        );
    }
}
