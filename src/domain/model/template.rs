//! Templates: the ordered steps an event asks for, and the commands that create or change one.

use super::values::{Approver, EntityType, EventName, TemplateId};

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStep {
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    /// How many distinct eligible users must approve the step.
    pub quorum: Quorum,
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
