//! Outbound adapter: the `ConditionEvaluator` port over the Common Expression Language (CEL),
//! with the `cel` crate (the CEL project's Rust implementation) parsing and running the
//! expressions. The core stores a step's `when` as text and never parses it itself.
//!
//! The trigger's context is bound to the name `context`; JSON numbers that are whole and fit a
//! signed 64-bit integer become CEL `int`s (so `context.discount_percent > 10` compares ints,
//! as its author means), other numbers `double`s.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::value::Val;
use cel::objects::Key;
use cel::{Context, ParseErrors, Program, Value};

use crate::domain::model::Condition;
use crate::domain::ports::ConditionEvaluator;

/// Step conditions written in CEL.
#[derive(Debug, Default, Clone, Copy)]
pub struct CelConditions;

impl ConditionEvaluator for CelConditions {
    fn check(&self, condition: &Condition) -> Result<(), String> {
        compile(condition).map(|_| ())
    }

    fn evaluate(&self, condition: &Condition, context: &serde_json::Value) -> Result<bool, String> {
        let program = compile(condition)?;
        // Every JSON value converts; the crate's own binding would panic on one that didn't.
        let bound: Box<dyn Val> = cel_value(context)
            .try_into()
            .map_err(|e: cel::ExecutionError| e.to_string())?;
        let mut variables = Context::default();
        variables.add_variable_as_val("context", bound);
        // The crate has paths that panic; a condition that runs into one is a condition that
        // can't be evaluated (its step is kept), not a failed trigger.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(&variables)))
                .map_err(|_| "the condition could not be evaluated".to_owned())?;
        match outcome {
            Ok(Value::Bool(holds)) => Ok(holds),
            Ok(other) => Err(format!(
                "the condition gave a value of type {}, not true or false",
                other.type_of()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn compile(condition: &Condition) -> Result<Program, String> {
    Program::compile(condition.as_str()).map_err(|e| describe(&e))
}

/// The parse errors as one line each, `line L, column C: message`, joined by "; ".
fn describe(errors: &ParseErrors) -> String {
    let lines: Vec<String> = errors
        .errors
        .iter()
        .map(|e| format!("line {}, column {}: {}", e.pos.0, e.pos.1 + 1, e.msg))
        .collect();
    if lines.is_empty() {
        "the expression does not parse".to_owned()
    } else {
        lines.join("; ")
    }
}

/// A JSON value as the CEL value a condition sees.
fn cel_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(cel_value).collect()))
        }
        serde_json::Value::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), cel_value(v)))
                .collect();
            Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn when(text: &str) -> Condition {
        Condition::new(text).unwrap()
    }

    #[test]
    fn a_well_formed_expression_passes_the_check() {
        assert_eq!(
            CelConditions.check(&when("context.discount_percent > 10")),
            Ok(())
        );
        assert_eq!(
            CelConditions.check(&when(
                "has(context.x) && context.tags.exists(t, t == 'vip')"
            )),
            Ok(())
        );
    }

    #[test]
    fn a_malformed_expression_is_refused_with_where_and_why() {
        let why = CelConditions
            .check(&when("context.discount_percent >"))
            .unwrap_err();
        assert!(why.starts_with("line 1, column "), "{why}");
        let why = CelConditions.check(&when("(a")).unwrap_err();
        assert!(why.contains("line 1"), "{why}");
    }

    #[test]
    fn a_condition_is_true_or_false_over_the_context() {
        let over = |n: serde_json::Value| {
            CelConditions.evaluate(
                &when("context.discount_percent > 10"),
                &json!({ "discount_percent": n }),
            )
        };
        assert_eq!(over(json!(5)), Ok(false));
        assert_eq!(over(json!(10)), Ok(false));
        assert_eq!(over(json!(20)), Ok(true));
        // A huge whole number is still a number that compares.
        assert_eq!(over(json!(u64::MAX)), Ok(true));
        let words = CelConditions.evaluate(
            &when("context.unit.kind == 'penthouse' && 'vip' in context.tags"),
            &json!({ "unit": { "kind": "penthouse" }, "tags": ["vip"] }),
        );
        assert_eq!(words, Ok(true));
    }

    #[test]
    fn a_condition_that_cannot_be_told_is_an_error() {
        let condition = when("context.discount_percent > 10");
        // The field is missing, the context is absent, or the value has the wrong type.
        for context in [
            json!({}),
            serde_json::Value::Null,
            json!({ "discount_percent": "twenty" }),
        ] {
            assert!(
                CelConditions.evaluate(&condition, &context).is_err(),
                "{context}"
            );
        }
        // Not a boolean.
        let why = CelConditions
            .evaluate(
                &when("context.discount_percent"),
                &json!({ "discount_percent": 3 }),
            )
            .unwrap_err();
        assert!(why.contains("not true or false"), "{why}");
    }
}
