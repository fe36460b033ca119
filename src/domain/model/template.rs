//! Templates: the ordered steps an event asks for, and the commands that create or change one.

use super::blank::is_blank;
use super::values::{Approver, EntityType, EventName, TemplateId};
use crate::domain::error::WorkflowError;

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStep {
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    /// How many distinct eligible users must approve the step.
    pub quorum: Quorum,
    /// The step applies only when this holds over the trigger's context; none: always.
    pub when: Option<Condition>,
    /// How long the step may await action, and what happens then; none: it may wait for ever.
    pub due: Option<super::due::DueRule>,
}

/// A step's condition: an expression over the trigger's `context` (CEL, e.g.
/// `context.discount_percent > 10`). The core keeps its text; whether it parses, and what it
/// says about a context, is asked of the [`ConditionEvaluator`](crate::domain::ports::ConditionEvaluator) port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition(String);

/// Longest condition, in characters.
pub const MAX_CONDITION_CHARS: usize = 1000;

impl Condition {
    /// A condition with this text, if it is not blank and at most [`MAX_CONDITION_CHARS`] long
    /// (its syntax is the evaluator's to judge).
    pub fn new(text: impl Into<String>) -> Result<Self, WorkflowError> {
        let text = text.into();
        if is_blank(&text) || text.chars().count() > MAX_CONDITION_CHARS {
            return Err(WorkflowError::validation(
                "when",
                format!("must be 1 to {MAX_CONDITION_CHARS} characters, not blank"),
            ));
        }
        Ok(Self(text))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many distinct approvals a step needs before it is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quorum {
    /// This many (at least 1; 1 is one approver decides, the default).
    Count(u32),
    /// Every user of the step's eligible-user snapshot.
    All,
}

impl Default for Quorum {
    fn default() -> Self {
        Self::Count(1)
    }
}

/// Largest numeric quorum a template step may ask for.
pub const MAX_QUORUM: u32 = 1000;

impl Quorum {
    /// How many approvals a step whose snapshot holds `eligible` users needs; more than
    /// `eligible` means the step can never be approved.
    pub fn required(self, eligible: usize) -> usize {
        match self {
            Self::Count(n) => n as usize,
            Self::All => eligible,
        }
    }
}

/// A workflow template: what to ask, in which order, for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub name: String,
    pub event: EventName,
    pub entity_type: EntityType,
    pub version: i32,
    pub is_active: bool,
    /// The initiator of an instance is never eligible on its steps (segregation of duties).
    pub forbid_self_approval: bool,
    pub steps: Vec<TemplateStep>,
}

/// A template to create (the store assigns its id; it starts at version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTemplate {
    pub name: String,
    pub event: EventName,
    pub entity_type: EntityType,
    pub is_active: bool,
    pub forbid_self_approval: bool,
    pub steps: Vec<TemplateStep>,
}

/// New contents for a template; applying it bumps the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUpdate {
    pub name: Option<String>,
    pub is_active: Option<bool>,
    pub forbid_self_approval: Option<bool>,
    pub steps: Option<Vec<TemplateStep>>,
}
