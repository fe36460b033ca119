//! Driven adapter (outbound), in-memory store: templates and their versions. Ids come from a
//! counter that never falls below an existing id; at most one template per event is active, as
//! the unique index guarantees in PostgreSQL; and every version a write makes is kept as it
//! was, as `workflow_template_versions` keeps it there.

#[cfg(any(test, feature = "test-support"))]
use super::MemoryStore;
use super::State;
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    EventName, NewTemplate, Template, TemplateFilter, TemplateId, TemplateUpdate,
};

#[cfg(any(test, feature = "test-support"))]
impl MemoryStore {
    /// Adds a template as given (ids chosen by the caller), and records that version.
    pub fn put_template(&self, template: Template) {
        let mut state = self.lock();
        // Keeps `create_template` from handing out this id again.
        state.last_template_id = state.last_template_id.max(template.id.get());
        state.store_version(template);
    }
}

impl State {
    pub(super) fn active_template(&self, event: &EventName) -> Option<Template> {
        self.templates
            .values()
            .find(|t| t.is_active && &t.event == event)
            .cloned()
    }

    /// The templates `filter` asks for, by id.
    pub(super) fn list_templates(&self, filter: &TemplateFilter) -> Vec<Template> {
        self.templates
            .values()
            .filter(|t| filter.event.as_ref().is_none_or(|e| &t.event == e))
            .filter(|t| filter.is_active.is_none_or(|a| t.is_active == a))
            .cloned()
            .collect()
    }

    /// Template `id` as it was at `version`.
    pub(super) fn template_version(
        &self,
        id: TemplateId,
        version: i32,
    ) -> Result<Template, WorkflowError> {
        self.template_versions
            .get(&(id, version))
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("version {version} of template {id}")))
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
            return Err(WorkflowError::TemplateConflict {
                event: event.to_string(),
            });
        }
        Ok(())
    }

    /// Makes `template` the current one and keeps it as its version.
    fn store_version(&mut self, template: Template) {
        self.template_versions
            .insert((template.id, template.version), template.clone());
        self.templates.insert(template.id, template);
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
            forbid_self_approval: new.forbid_self_approval,
            steps: new.steps,
        };
        self.store_version(template.clone());
        Ok(template)
    }

    /// Applies `update` as the template's next version; with `refuse_in_use`, not while an
    /// active instance uses the template (`PUT`), else regardless (a new version).
    pub(super) fn change_template(
        &mut self,
        id: TemplateId,
        update: TemplateUpdate,
        refuse_in_use: bool,
    ) -> Result<Template, WorkflowError> {
        let mut next = self
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))?;
        let in_use = || {
            self.instances
                .values()
                .any(|i| i.template_id == id && i.status.is_active())
        };
        if refuse_in_use && in_use() {
            return Err(WorkflowError::TemplateInUse { template: id.get() });
        }
        if let Some(name) = update.name {
            next.name = name;
        }
        if let Some(is_active) = update.is_active {
            next.is_active = is_active;
        }
        if let Some(forbid) = update.forbid_self_approval {
            next.forbid_self_approval = forbid;
        }
        if let Some(steps) = update.steps {
            next.steps = steps;
        }
        if next.is_active {
            self.check_one_active(&next.event, Some(id))?;
        }
        next.version += 1;
        self.store_version(next.clone());
        Ok(next)
    }
}
