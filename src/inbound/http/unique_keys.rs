//! Driving adapter, HTTP transport: JSON text parsed into a `serde_json::Value` that refuses an
//! object naming the same key twice, at any depth. `serde_json` keeps the last of the repeated
//! keys without a word, so `{"acted_by_user_id": 1, "acted_by_user_id": 2}` would act as user 2
//! while a proxy or a log that keeps the first sees user 1; the API refuses such a body instead.
//!
//! The refusal names the repeated key by its path in the body (`steps[0].approver.type`), the
//! way field errors name fields; the first repeat in the text is the one named. A body that is
//! also malformed further on is malformed (400): only well-formed JSON is looked into.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not a JSON value.
#[derive(Debug)]
pub enum JsonFault {
    /// Not well-formed JSON (or nested deeper than the parser allows).
    Malformed(serde_json::Error),
    /// Well-formed, but an object names this key (given by its path) more than once.
    RepeatedKey(String),
}

/// Parses `bytes` as one JSON value whose objects each name a key at most once.
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonFault> {
    let state = RefCell::new(State::default());
    let mut parser = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { state: &state }
        .deserialize(&mut parser)
        .and_then(|value| parser.end().map(|()| value))
        .map_err(JsonFault::Malformed)?;
    match state.into_inner().first_repeat {
        Some(path) => Err(JsonFault::RepeatedKey(path)),
        None => Ok(value),
    }
}

/// One step of the path from the body to a value.
enum Segment {
    Key(String),
    Index(usize),
}

/// Where the parser is, and the first repeated key seen.
#[derive(Default)]
struct State {
    path: Vec<Segment>,
    first_repeat: Option<String>,
}

impl State {
    /// Notes the current path (ending with the repeated key) unless a repeat came before.
    fn note_repeat(&mut self) {
        if self.first_repeat.is_some() {
            return;
        }
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        self.first_repeat = Some(path);
    }
}

/// Builds a `Value` as serde_json's own does, keeping the path to the value being read (keys
/// are moved onto it and back, not copied) so that a repeat can be named where it is seen.
#[derive(Clone, Copy)]
struct Strict<'a> {
    state: &'a RefCell<State>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        loop {
            let index = Segment::Index(values.len());
            self.state.borrow_mut().path.push(index);
            let item = items.next_element_seed(self)?;
            self.state.borrow_mut().path.pop();
            match item {
                Some(value) => values.push(value),
                None => return Ok(Value::Array(values)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let repeated = map.contains_key(&key);
            {
                let mut state = self.state.borrow_mut();
                state.path.push(Segment::Key(key));
                if repeated {
                    state.note_repeat();
                }
            }
            // Read on even after a repeat: a body malformed further on is malformed.
            let value = entries.next_value_seed(self)?;
            let popped = self.state.borrow_mut().path.pop();
            if let (Some(Segment::Key(key)), false) = (popped, repeated) {
                map.insert(key, value);
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn repeated(text: &str) -> Option<String> {
        match from_slice(text.as_bytes()) {
            Err(JsonFault::RepeatedKey(path)) => Some(path),
            _ => None,
        }
    }

    #[test]
    fn values_without_repeats_parse_as_serde_json_parses_them() {
        for text in [
            r#"{"a": 1, "b": [true, null, -2, 1.5, "x", {"a": {}}], "c": {"a": 1, "b": 18446744073709551615}}"#,
            r#"[{"k": 1}, {"k": 2}]"#,
            r#""\u0041""#,
            "  7  ",
        ] {
            let strict = from_slice(text.as_bytes()).unwrap();
            let plain: Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, plain, "{text}");
        }
    }

    #[test]
    fn a_repeated_key_is_named_by_its_path() {
        let cases = [
            (r#"{"a": 1, "a": 2}"#, "a"),
            (r#"{"a": 1, "\u0061": 2}"#, "a"),
            (r#"{"x": {"y": 1, "y": 1}}"#, "x.y"),
            (
                r#"{"steps": [{}, {"approver": {"type": "user", "type": "role"}}]}"#,
                "steps[1].approver.type",
            ),
            (r#"{"m": [[{"k": 1, "k": 1}]]}"#, "m[0][0].k"),
            (r#"{"b": {"c": 1, "c": 2}, "a": 1, "a": 2}"#, "b.c"),
            (r#"[{"k": 1, "k": 1}]"#, "[0].k"),
        ];
        for (text, path) in cases {
            assert_eq!(repeated(text).as_deref(), Some(path), "{text}");
        }
    }

    #[test]
    fn the_same_key_in_different_objects_is_no_repeat() {
        let value = from_slice(br#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#).unwrap();
        assert_eq!(value, json!({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}));
    }

    #[test]
    fn malformed_text_is_malformed_not_repeated() {
        // The last two repeat a key before they go wrong: still malformed.
        for text in [
            r#"{"a": 1,"#,
            r#"{"a": 1} x"#,
            "",
            r#"{"a": 1, "a"#,
            r#"{"a": 1, "a": 2"#,
        ] {
            assert!(
                matches!(from_slice(text.as_bytes()), Err(JsonFault::Malformed(_))),
                "{text}"
            );
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(
            from_slice(deep.as_bytes()),
            Err(JsonFault::Malformed(_))
        ));
    }
}
