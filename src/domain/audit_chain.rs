//! The audit trail's hash chain: pure functions that give each entry its hash and check a
//! stored trail against it. Part of the domain core; both stores call them, under the
//! instance's lock, when they append entries.
//!
//! Each instance has its own chain. It starts from a seed that covers the instance's identity
//! (template and version, event, entity, initiator, creation time), so a trail moved to another
//! instance does not verify. Each entry's hash is SHA-256 over the previous entry's hash and
//! this entry's fields (the step it names by its order, action, actor, comment, time); a
//! decision's entry (`step_approved`, `step_rejected`) also covers the decided step's data
//! (status, who acted, comment, when, who was eligible, and the approvals recorded on it when
//! it has any), so rewriting a decided step breaks the chain as surely as rewriting the entry.
//! An `approval_recorded` entry (a partial approval of a quorum step) covers the step's record
//! of that approval (who, comment, when), so a partial approval removed from or rewritten on a
//! step still waiting breaks the chain too. A delegate's entry also covers whom it acted for
//! (`on_behalf_of`), and a delegate's approval who gave it (`acted_by`); both are hashed only
//! when present, as tagged fields, so the trails written before delegation verify unchanged.
//!
//! The bytes hashed are fields in a fixed order, each written `<byte length>:<text>;` (`-;` for
//! none), numbers in decimal and times in microseconds since the Unix epoch: simple enough to
//! be computed by SQL too (the migration that introduced the chain hashed the existing trails
//! that way), and unambiguous whatever the text holds.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::WorkflowError;
use super::model::{
    AuditAction, AuditHash, AuditVerification, Decided, EntityId, EntityType, EventName, Instance,
    InstanceStep, NewInstance, NewStep, StepApproval, StepId, StepStatus, TemplateId, UserId,
};

/// Names the chain's format: a different format would start from a different seed.
const VERSION: &str = "approvals.audit.v1";

/// The hashes of a new instance's entries, in order.
pub fn for_new_instance(new: &NewInstance) -> Result<Vec<AuditHash>, WorkflowError> {
    let mut previous = seed(&Identity {
        template_id: new.template_id,
        template_version: new.template_version,
        event: &new.event,
        entity_type: &new.entity_type,
        entity_id: new.entity_id,
        initiated_by: new.initiated_by,
        created_at: new.created_at,
    });
    let mut hashes = Vec::with_capacity(new.audit.len());
    for entry in &new.audit {
        let step = match entry.step_order {
            Some(order) => Some(
                new.steps
                    .iter()
                    .find(|s| s.step_order == order)
                    .ok_or_else(|| {
                        WorkflowError::internal(format!("audit names unknown step {order}"))
                    })?,
            ),
            None => None,
        };
        previous = link(
            &previous,
            &Link {
                step_order: entry.step_order,
                action: entry.action,
                actor: entry.actor_user_id,
                on_behalf_of: None,
                comment: entry.comment.as_deref(),
                at: entry.at,
                decided: step.map(facts_of_new),
            },
        );
        hashes.push(previous);
    }
    Ok(hashes)
}

/// The hashes of the entries a decision appends, in order, after the instance's last stored
/// entry `last` (`None` for a trail still empty). Called under the instance's lock.
pub fn for_decision(
    last: Option<AuditHash>,
    decided: &Decided,
) -> Result<Vec<AuditHash>, WorkflowError> {
    let instance = &decided.instance;
    let mut previous = last.unwrap_or_else(|| seed(&Identity::of(instance)));
    let mut hashes = Vec::with_capacity(decided.audit.len());
    for entry in &decided.audit {
        let step = match entry.step_id {
            Some(id) => Some(instance.steps.iter().find(|s| s.id == id).ok_or_else(|| {
                WorkflowError::internal(format!("audit names unknown step {id}"))
            })?),
            None => None,
        };
        previous = link(
            &previous,
            &Link::on_step(
                step,
                entry.action,
                entry.actor_user_id,
                entry.on_behalf_of,
                entry.comment.as_deref(),
                entry.at,
            ),
        );
        hashes.push(previous);
    }
    Ok(hashes)
}

/// Checks the instance's stored trail (by id) against the chain recomputed from its fields and
/// its steps as they are now.
pub fn verify(instance: &Instance) -> AuditVerification {
    let mut audit: Vec<_> = instance.audit.iter().collect();
    audit.sort_by_key(|entry| entry.id);
    let steps: HashMap<StepId, &InstanceStep> = instance.steps.iter().map(|s| (s.id, s)).collect();
    let mut previous = seed(&Identity::of(instance));
    for entry in &audit {
        let step = match entry.step_id {
            Some(id) => match steps.get(&id).copied() {
                Some(step) => Some(step),
                // Names a step this instance does not have.
                None => {
                    return AuditVerification::Invalid {
                        first_bad_entry_id: entry.id,
                    };
                }
            },
            None => None,
        };
        let expected = link(
            &previous,
            &Link::on_step(
                step,
                entry.action,
                entry.actor_user_id,
                entry.on_behalf_of,
                entry.comment.as_deref(),
                entry.at,
            ),
        );
        if expected != entry.hash {
            return AuditVerification::Invalid {
                first_bad_entry_id: entry.id,
            };
        }
        previous = expected;
    }
    AuditVerification::Valid {
        entries: audit.len(),
    }
}

/// What the seed covers.
struct Identity<'a> {
    template_id: TemplateId,
    template_version: i32,
    event: &'a EventName,
    entity_type: &'a EntityType,
    entity_id: EntityId,
    initiated_by: UserId,
    created_at: DateTime<Utc>,
}

impl<'a> Identity<'a> {
    fn of(instance: &'a Instance) -> Self {
        Self {
            template_id: instance.template_id,
            template_version: instance.template_version,
            event: &instance.event,
            entity_type: &instance.entity_type,
            entity_id: instance.entity_id,
            initiated_by: instance.initiated_by,
            created_at: instance.created_at,
        }
    }
}

/// One entry's fields, as hashed.
struct Link<'a> {
    step_order: Option<i32>,
    action: AuditAction,
    actor: Option<UserId>,
    /// The delegator the actor acted for; hashed only when there is one.
    on_behalf_of: Option<UserId>,
    comment: Option<&'a str>,
    at: DateTime<Utc>,
    /// The step the entry names; its data is hashed only for a decision's entry.
    decided: Option<StepFacts<'a>>,
}

impl<'a> Link<'a> {
    /// An entry of a stored instance, naming `step` (one of its steps) or none.
    fn on_step(
        step: Option<&'a InstanceStep>,
        action: AuditAction,
        actor: Option<UserId>,
        on_behalf_of: Option<UserId>,
        comment: Option<&'a str>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            step_order: step.map(|s| s.step_order),
            action,
            actor,
            on_behalf_of,
            comment,
            at,
            decided: step.map(facts_of),
        }
    }
}

/// A step's data that a decision's entry covers.
struct StepFacts<'a> {
    status: StepStatus,
    acted_by: Option<UserId>,
    comment: Option<&'a str>,
    acted_at: Option<DateTime<Utc>>,
    eligible: &'a [UserId],
    approvals: &'a [StepApproval],
}

fn facts_of(step: &InstanceStep) -> StepFacts<'_> {
    StepFacts {
        status: step.status,
        acted_by: step.acted_by_user_id,
        comment: step.comment.as_deref(),
        acted_at: step.acted_at,
        eligible: &step.eligible_user_ids,
        approvals: &step.approvals,
    }
}

fn facts_of_new(step: &NewStep) -> StepFacts<'_> {
    StepFacts {
        status: step.status,
        acted_by: None,
        comment: None,
        acted_at: None,
        eligible: &step.eligible_user_ids,
        approvals: &[],
    }
}

fn seed(identity: &Identity<'_>) -> AuditHash {
    let mut bytes = Fields::default();
    bytes.text(Some(VERSION));
    bytes.number(Some(identity.template_id.get()));
    bytes.number(Some(i64::from(identity.template_version)));
    bytes.text(Some(identity.event.as_str()));
    bytes.text(Some(identity.entity_type.as_str()));
    bytes.number(Some(identity.entity_id.get()));
    bytes.number(Some(identity.initiated_by.get()));
    bytes.time(Some(identity.created_at));
    bytes.digest(None)
}

fn link(previous: &AuditHash, entry: &Link<'_>) -> AuditHash {
    let mut bytes = Fields::default();
    bytes.number(entry.step_order.map(i64::from));
    bytes.text(Some(entry.action.as_str()));
    bytes.number(entry.actor.map(UserId::get));
    bytes.text(entry.comment);
    bytes.time(Some(entry.at));
    let decision = matches!(
        entry.action,
        AuditAction::StepApproved | AuditAction::StepRejected
    );
    if let (true, Some(step)) = (decision, &entry.decided) {
        bytes.text(Some(step.status.as_str()));
        bytes.number(step.acted_by.map(UserId::get));
        bytes.text(step.comment);
        bytes.time(step.acted_at);
        let eligible: Vec<String> = step.eligible.iter().map(|u| u.get().to_string()).collect();
        bytes.text(Some(&eligible.join(",")));
        // Absent (not even a count) when there are none: the trails stored before steps
        // recorded approvals keep their hashes.
        if !step.approvals.is_empty() {
            bytes.number(i64::try_from(step.approvals.len()).ok());
            for approval in step.approvals {
                bytes.approval(Some(approval));
            }
        }
    }
    if let (AuditAction::ApprovalRecorded, Some(step)) = (entry.action, &entry.decided) {
        // A delegate's approval is recorded as its delegator's.
        let whose = entry.on_behalf_of.or(entry.actor);
        let recorded = step.approvals.iter().find(|a| Some(a.user_id) == whose);
        bytes.approval(recorded);
    }
    // Absent when the actor acted for themself: the trails stored before delegation keep
    // their hashes. Tagged, so it can't read as any other field.
    if let Some(delegator) = entry.on_behalf_of {
        bytes.text(Some("on_behalf_of"));
        bytes.number(Some(delegator.get()));
    }
    bytes.digest(Some(previous))
}

/// The hashed bytes, field by field.
#[derive(Default)]
struct Fields(Vec<u8>);

impl Fields {
    fn text(&mut self, value: Option<&str>) {
        match value {
            Some(text) => {
                self.0.extend_from_slice(text.len().to_string().as_bytes());
                self.0.push(b':');
                self.0.extend_from_slice(text.as_bytes());
                self.0.push(b';');
            }
            None => self.0.extend_from_slice(b"-;"),
        }
    }

    /// An approval as three fields (who, comment, when), or one `-;` for none.
    fn approval(&mut self, value: Option<&StepApproval>) {
        match value {
            Some(approval) => {
                self.number(Some(approval.user_id.get()));
                self.text(approval.comment.as_deref());
                self.time(Some(approval.at));
                // Only for a delegate's approval, tagged: the others hash as before.
                if let Some(delegate) = approval.acted_by {
                    self.text(Some("acted_by"));
                    self.number(Some(delegate.get()));
                }
            }
            None => self.text(None),
        }
    }

    fn number(&mut self, value: Option<i64>) {
        self.text(value.map(|n| n.to_string()).as_deref());
    }

    fn time(&mut self, value: Option<DateTime<Utc>>) {
        self.number(value.map(|t| t.timestamp_micros()));
    }

    /// SHA-256 of `previous` (when chained) followed by the fields.
    fn digest(self, previous: Option<&AuditHash>) -> AuditHash {
        let mut hasher = Sha256::new();
        if let Some(previous) = previous {
            hasher.update(previous.as_bytes());
        }
        hasher.update(&self.0);
        AuditHash::from_bytes(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests;
