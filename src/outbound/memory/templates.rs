//! Driven adapter (outbound), in-memory store: templates. Ids come from a counter that never
//! falls below an existing id, and at most one template per event is active, as the unique
//! index guarantees in PostgreSQL.

#[cfg(any(test, feature = "test-support"))]
use super::MemoryStore;
use super::State;
use crate::domain::error::WorkflowError;
use crate::domain::model::{EventName, NewTemplate, Template, TemplateId, TemplateUpdate};

#[cfg(any(test, feature = "test-support"))]
impl MemoryStore {
    /// Adds a template as given (ids chosen by the caller).
    pub fn put_template(&self, template: Template) {
        let mut state = self.lock();
        // Keeps `create_template` from handing out this id again.
        state.last_template_id = state.last_template_id.max(template.id.get());
        state.templates.insert(template.id, template);
    }
}

impl State {
    pub(super) fn active_template(&self, event: &EventName) -> Option<Template> {
        self.templates
            .values()
            .find(|t| t.is_active && &t.event == event)
            .cloned()
    }

    /// Refuses to let `event` have a second active template besides `except`.
    fn check_one_active(
        &self,
        event: &EventName,
        except: Option<TemplateId>,
    ) -> Result<(), WorkflowError> {
        let clash = self
            .templates
            .values()
            .any(|t| Some(t.id) != except && t.is_active && &t.event == event);
        if clash {
            return Err(WorkflowError::validation(
                "is_active",
                format!("another template is already active for event '{event}'"),
            ));
        }
        Ok(())
    }

    pub(super) fn create_template(&mut self, new: NewTemplate) -> Result<Template, WorkflowError> {
        if new.is_active {
            self.check_one_active(&new.event, None)?;
        }
        self.last_template_id += 1;
        let id = TemplateId::new(self.last_template_id).expect("ids count up from 1");
        let template = Template {
            id,
            name: new.name,
            event: new.event,
            entity_type: new.entity_type,
            version: 1,
            is_active: new.is_active,
            steps: new.steps,
        };
        self.templates.insert(id, template.clone());
        Ok(template)
    }

    pub(super) fn update_template(
        &mut self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        let mut next = self
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))?;
        let in_use = self
            .instances
            .values()
            .any(|i| i.template_id == id && i.status.is_active());
        if in_use {
            return Err(WorkflowError::TemplateInUse { template: id.get() });
        }
        if let Some(name) = update.name {
            next.name = name;
        }
        if let Some(is_active) = update.is_active {
            next.is_active = is_active;
        }
        if let Some(steps) = update.steps {
            next.steps = steps;
        }
        if next.is_active {
            self.check_one_active(&next.event, Some(id))?;
        }
        next.version += 1;
        self.templates.insert(id, next.clone());
        Ok(next)
    }
}
