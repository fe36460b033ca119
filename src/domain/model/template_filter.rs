//! Template listing: which templates a list asks for (domain model, no I/O).

use super::values::EventName;

/// Which templates to list; every criterion given must hold (none given: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateFilter {
    /// Only the templates of this event.
    pub event: Option<EventName>,
    /// Only active (`true`) or inactive (`false`) templates.
    pub is_active: Option<bool>,
}
