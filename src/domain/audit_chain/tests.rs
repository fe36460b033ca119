//! Tests of the audit hash chain (domain core, pure): a trail built by the state machine
//! verifies; each kind of tampering is found at the right entry; the format is pinned.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::domain::machine;
use crate::domain::model::{
    Approver, AuditEntry, Comment, DecisionRequest, EntityId, InstanceId, InstanceStep, RoleName,
    StepId, Template, TemplateStep, TriggerRequest, Verdict,
};

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, minute, 0).unwrap() + chrono::TimeDelta::microseconds(7)
}

fn uid(n: i64) -> UserId {
    UserId::new(n).unwrap()
}

fn template() -> Template {
    Template {
        id: TemplateId::new(4).unwrap(),
        name: "Refund".to_owned(),
        event: EventName::new("booking.refund_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        version: 2,
        is_active: true,
        forbid_self_approval: false,
        steps: vec![
            TemplateStep {
                step_order: 1,
                name: "Sales".to_owned(),
                approver: Approver::Role {
                    role: RoleName::new("sales_manager").unwrap(),
                },
                quorum: Default::default(),
                when: None,
                due: None,
            },
            TemplateStep {
                step_order: 2,
                name: "Finance".to_owned(),
                approver: Approver::User { user_id: uid(2) },
                quorum: Default::default(),
                when: None,
                due: None,
            },
        ],
    }
}

/// What a store does with a new instance: ids assigned (steps from 11, entries from 1).
fn store(new: NewInstance) -> Instance {
    let hashes = for_new_instance(&new).unwrap();
    let id = InstanceId::new(5).unwrap();
    let steps: Vec<InstanceStep> = new
        .steps
        .iter()
        .map(|s| InstanceStep {
            id: StepId::new(10 + i64::from(s.step_order)).unwrap(),
            step_order: s.step_order,
            name: s.name.clone(),
            approver: s.approver.clone(),
            eligible_user_ids: s.eligible_user_ids.clone(),
            status: s.status,
            acted_by_user_id: None,
            comment: None,
            acted_at: None,
            activated_at: s.activated_at,
            due: None,
            due_at: None,
            overdue_at: None,
            quorum: s.quorum,
            approvals: Vec::new(),
        })
        .collect();
    let audit = new
        .audit
        .iter()
        .zip(hashes)
        .enumerate()
        .map(|(n, (entry, hash))| AuditEntry {
            id: n as i64 + 1,
            instance_id: id,
            step_id: entry
                .step_order
                .map(|order| StepId::new(10 + i64::from(order)).unwrap()),
            action: entry.action,
            actor_user_id: entry.actor_user_id,
            on_behalf_of: None,
            comment: entry.comment.clone(),
            at: entry.at,
            hash,
        })
        .collect();
    Instance {
        id,
        template_id: new.template_id,
        template_version: new.template_version,
        event: new.event,
        entity_type: new.entity_type,
        entity_id: new.entity_id,
        initiated_by: new.initiated_by,
        status: new.status,
        context: new.context,
        created_at: new.created_at,
        updated_at: new.created_at,
        completed_at: None,
        steps,
        audit,
    }
}

/// What a store does with a decision: the new entries appended, chained to the last one.
fn apply(before: &Instance, request: DecisionRequest, now: DateTime<Utc>) -> Instance {
    apply_as(before, request, &[], now)
}

/// As [`apply`], for an actor to whom `delegations` run.
fn apply_as(
    before: &Instance,
    request: DecisionRequest,
    delegations: &[crate::domain::model::Delegation],
    now: DateTime<Utc>,
) -> Instance {
    let decided = machine::decide_as(before, &request, Some(true), delegations, now).unwrap();
    let last = before.audit.last().map(|e| e.hash);
    let hashes = for_decision(last, &decided).unwrap();
    let mut after = decided.instance.clone();
    after.audit = before.audit.clone();
    for (entry, hash) in decided.audit.iter().zip(hashes) {
        after.audit.push(AuditEntry {
            id: after.audit.len() as i64 + 1,
            instance_id: after.id,
            step_id: entry.step_id,
            action: entry.action,
            actor_user_id: entry.actor_user_id,
            on_behalf_of: entry.on_behalf_of,
            comment: entry.comment.clone(),
            at: entry.at,
            hash,
        });
    }
    after
}

/// An instance taken through both steps: created, step 11 approved, step 12 rejected.
fn decided_instance() -> Instance {
    let request = TriggerRequest {
        event: template().event,
        entity_type: template().entity_type,
        entity_id: EntityId::new(9).unwrap(),
        initiated_by: uid(3),
        context: None,
    };
    let new = machine::trigger(
        &template(),
        request,
        vec![vec![uid(1), uid(4)], vec![uid(2)]],
        at(0),
    )
    .unwrap();
    let created = store(new);
    let approved = apply(
        &created,
        DecisionRequest {
            step_id: StepId::new(11).unwrap(),
            acted_by: uid(4),
            verdict: Verdict::Approve {
                comment: Some(Comment::new("fine").unwrap()),
            },
        },
        at(1),
    );
    apply(
        &approved,
        DecisionRequest {
            step_id: StepId::new(12).unwrap(),
            acted_by: uid(2),
            verdict: Verdict::Reject {
                comment: Comment::new("too late").unwrap(),
            },
        },
        at(2),
    )
}

fn entry_id(instance: &Instance, action: AuditAction) -> i64 {
    instance
        .audit
        .iter()
        .find(|e| e.action == action)
        .unwrap()
        .id
}

#[test]
fn a_trail_built_by_the_machine_verifies() {
    let instance = decided_instance();
    let n = instance.audit.len();
    assert!(n >= 6, "{n} entries");
    assert_eq!(verify(&instance), AuditVerification::Valid { entries: n });
    // The hashes are all different: each depends on everything before it.
    let mut hashes: Vec<_> = instance.audit.iter().map(|e| e.hash).collect();
    hashes.dedup();
    assert_eq!(hashes.len(), n);
}

#[test]
fn a_changed_entry_is_the_first_bad_one() {
    let mut instance = decided_instance();
    let target = entry_id(&instance, AuditAction::StepApproved);
    instance
        .audit
        .iter_mut()
        .find(|e| e.id == target)
        .unwrap()
        .comment = Some("fine!".to_owned());
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: target
        }
    );
}

#[test]
fn every_field_of_an_entry_is_covered() {
    let changes: [fn(&mut AuditEntry); 6] = [
        |e| e.actor_user_id = Some(uid(99)),
        |e| e.at += chrono::TimeDelta::microseconds(1),
        |e| e.action = AuditAction::StepRejected,
        |e| e.step_id = Some(StepId::new(12).unwrap()),
        |e| e.comment = None,
        |e| e.hash = AuditHash::from_bytes([7; 32]),
    ];
    for (n, change) in changes.iter().enumerate() {
        let mut instance = decided_instance();
        let target = entry_id(&instance, AuditAction::StepApproved);
        change(instance.audit.iter_mut().find(|e| e.id == target).unwrap());
        assert_eq!(
            verify(&instance),
            AuditVerification::Invalid {
                first_bad_entry_id: target
            },
            "change {n}"
        );
    }
}

#[test]
fn a_rewritten_decided_step_breaks_its_decisions_entry() {
    let changes: [fn(&mut InstanceStep); 5] = [
        |s| s.acted_by_user_id = Some(uid(1)),
        |s| s.comment = Some("rewritten".to_owned()),
        |s| s.status = StepStatus::AwaitingAction,
        |s| s.acted_at = None,
        |s| s.eligible_user_ids.push(uid(8)),
    ];
    for (n, change) in changes.iter().enumerate() {
        let mut instance = decided_instance();
        change(
            instance
                .steps
                .iter_mut()
                .find(|s| s.step_order == 1)
                .unwrap(),
        );
        assert_eq!(
            verify(&instance),
            AuditVerification::Invalid {
                first_bad_entry_id: entry_id(&instance, AuditAction::StepApproved)
            },
            "change {n}"
        );
    }
}

#[test]
fn a_removed_or_reordered_entry_breaks_the_entry_after_it() {
    let mut instance = decided_instance();
    let removed = entry_id(&instance, AuditAction::StepApproved);
    instance.audit.retain(|e| e.id != removed);
    let next = instance.audit.iter().find(|e| e.id > removed).unwrap().id;
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: next
        }
    );

    let mut instance = decided_instance();
    let (a, b) = (instance.audit[1].id, instance.audit[2].id);
    instance.audit[1].id = b;
    instance.audit[2].id = a;
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: a
        }
    );
}

#[test]
fn a_trail_moved_to_another_instance_does_not_verify() {
    let mut instance = decided_instance();
    instance.entity_id = EntityId::new(10).unwrap();
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: instance.audit[0].id
        }
    );
}

#[test]
fn an_entry_naming_a_step_of_another_instance_is_bad() {
    let mut instance = decided_instance();
    instance.audit[1].step_id = Some(StepId::new(77).unwrap());
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: instance.audit[1].id
        }
    );
}

#[test]
fn an_empty_trail_is_valid_with_no_entries() {
    let mut instance = decided_instance();
    instance.audit.clear();
    assert_eq!(verify(&instance), AuditVerification::Valid { entries: 0 });
}

/// The format, pinned: these bytes and hashes were computed outside this code (SHA-256 of the
/// documented encoding), so a change to the encoding can't pass unnoticed; the migration that
/// hashed the trails stored before the chain uses the same encoding in SQL.
#[test]
fn the_encoding_is_the_documented_one() {
    let identity = Identity {
        template_id: TemplateId::new(4).unwrap(),
        template_version: 2,
        event: &EventName::new("booking.refund_requested").unwrap(),
        entity_type: &EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(9).unwrap(),
        initiated_by: uid(3),
        created_at: at(0),
    };
    let seed = seed(&identity);
    assert_eq!(seed.to_hex(), SEED_HEX);
    let entry = link(
        &seed,
        &Link {
            step_order: Some(1),
            action: AuditAction::StepApproved,
            actor: Some(uid(4)),
            on_behalf_of: None,
            comment: Some("ça va"),
            at: at(1),
            decided: Some(StepFacts {
                status: StepStatus::Approved,
                acted_by: Some(uid(4)),
                comment: Some("ça va"),
                acted_at: Some(at(1)),
                eligible: &[uid(1), uid(4)],
                approvals: &[],
            }),
        },
    );
    assert_eq!(entry.to_hex(), ENTRY_HEX);
    let plain = link(
        &entry,
        &Link {
            step_order: None,
            action: AuditAction::InstanceApproved,
            actor: None,
            on_behalf_of: None,
            comment: None,
            at: at(2),
            decided: None,
        },
    );
    assert_eq!(plain.to_hex(), PLAIN_HEX);
}

const SEED_HEX: &str = "6332d04ade609b0347d24687d227702306a3f49d679ad6bbb9d8189c3a10d2e5";
const ENTRY_HEX: &str = "60a6733830c2da075d399c6fadfbd3b28eb47696b4396db9e04f86767f2736a0";
const PLAIN_HEX: &str = "4c3da7f124cf174f2fdcf02269f5533cdb2039ba7a9a539d02ccbcf00db27251";

/// Created with step 11 needing both of users 1 and 4, then approved by user 4 alone: the
/// step still waits, with one partial approval on it.
fn partly_approved_instance() -> Instance {
    let mut template = template();
    template.steps[0].quorum = crate::domain::model::Quorum::All;
    let request = TriggerRequest {
        event: template.event.clone(),
        entity_type: template.entity_type.clone(),
        entity_id: EntityId::new(9).unwrap(),
        initiated_by: uid(3),
        context: None,
    };
    let new = machine::trigger(
        &template,
        request,
        vec![vec![uid(1), uid(4)], vec![uid(2)]],
        at(0),
    )
    .unwrap();
    let approve = |by: i64, text: &str| DecisionRequest {
        step_id: StepId::new(11).unwrap(),
        acted_by: uid(by),
        verdict: Verdict::Approve {
            comment: Some(Comment::new(text).unwrap()),
        },
    };
    apply(&store(new), approve(4, "first"), at(1))
}

#[test]
fn a_partial_approval_is_chained_and_verifies_through_the_quorum() {
    let partly = partly_approved_instance();
    assert_eq!(partly.steps[0].status, StepStatus::AwaitingAction);
    assert_eq!(partly.steps[0].approvals.len(), 1);
    let n = partly.audit.len();
    assert_eq!(verify(&partly), AuditVerification::Valid { entries: n });

    let decided = apply(
        &partly,
        DecisionRequest {
            step_id: StepId::new(11).unwrap(),
            acted_by: uid(1),
            verdict: Verdict::Approve { comment: None },
        },
        at(2),
    );
    assert_eq!(decided.steps[0].status, StepStatus::Approved);
    let n = decided.audit.len();
    assert_eq!(verify(&decided), AuditVerification::Valid { entries: n });
}

#[test]
fn a_partial_approval_removed_or_rewritten_on_a_waiting_step_breaks_its_entry() {
    let changes: [fn(&mut InstanceStep); 4] = [
        |s| s.approvals.clear(),
        |s| s.approvals[0].comment = Some("rewritten".to_owned()),
        |s| s.approvals[0].at += chrono::TimeDelta::microseconds(1),
        |s| s.approvals[0].user_id = uid(1),
    ];
    for (n, change) in changes.iter().enumerate() {
        let mut instance = partly_approved_instance();
        change(&mut instance.steps[0]);
        assert_eq!(
            verify(&instance),
            AuditVerification::Invalid {
                first_bad_entry_id: entry_id(&instance, AuditAction::ApprovalRecorded)
            },
            "change {n}"
        );
    }
}

#[test]
fn an_approval_added_to_a_decided_step_breaks_its_decisions_entry() {
    let mut instance = decided_instance();
    let step = instance
        .steps
        .iter_mut()
        .find(|s| s.step_order == 1)
        .unwrap();
    step.approvals.push(crate::domain::model::StepApproval {
        user_id: uid(1),
        comment: None,
        at: at(1),
        acted_by: None,
    });
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: entry_id(&instance, AuditAction::StepApproved)
        }
    );
}

/// Quorum "all" step 11 (users 1 and 4): user 9 approves for user 1 as its delegate, then
/// user 4 approves, which approves the step.
fn delegated_instance() -> Instance {
    let mut template = template();
    template.steps[0].quorum = crate::domain::model::Quorum::All;
    let request = TriggerRequest {
        event: template.event.clone(),
        entity_type: template.entity_type.clone(),
        entity_id: EntityId::new(9).unwrap(),
        initiated_by: uid(3),
        context: None,
    };
    let new = machine::trigger(
        &template,
        request,
        vec![vec![uid(1), uid(4)], vec![uid(2)]],
        at(0),
    )
    .unwrap();
    let approve = |by: i64| DecisionRequest {
        step_id: StepId::new(11).unwrap(),
        acted_by: uid(by),
        verdict: Verdict::Approve { comment: None },
    };
    let delegation = crate::domain::model::Delegation {
        user_id: uid(1),
        to_user_id: uid(9),
        until: at(30),
        reason: None,
        created_at: at(0),
    };
    let partly = apply_as(&store(new), approve(9), &[delegation], at(1));
    apply(&partly, approve(4), at(2))
}

#[test]
fn a_delegates_entries_are_chained_and_verify() {
    let instance = delegated_instance();
    assert_eq!(instance.steps[0].status, StepStatus::Approved);
    let recorded = instance
        .audit
        .iter()
        .find(|e| e.action == AuditAction::ApprovalRecorded)
        .unwrap();
    assert_eq!(recorded.actor_user_id, Some(uid(9)));
    assert_eq!(recorded.on_behalf_of, Some(uid(1)));
    let n = instance.audit.len();
    assert_eq!(verify(&instance), AuditVerification::Valid { entries: n });
}

#[test]
fn whom_a_delegate_acted_for_is_covered_by_the_chain() {
    let recorded_entry = |instance: &Instance| entry_id(instance, AuditAction::ApprovalRecorded);
    // The entry's `on_behalf_of` dropped or changed.
    for changed in [None, Some(uid(4))] {
        let mut instance = delegated_instance();
        let target = recorded_entry(&instance);
        instance
            .audit
            .iter_mut()
            .find(|e| e.id == target)
            .unwrap()
            .on_behalf_of = changed;
        assert_eq!(
            verify(&instance),
            AuditVerification::Invalid {
                first_bad_entry_id: target
            },
            "{changed:?}"
        );
    }
    // The step's record of who gave the approval dropped: the entry that recorded it (the
    // first to cover it) is the first bad one.
    let mut instance = delegated_instance();
    instance.steps[0].approvals[0].acted_by = None;
    assert_eq!(
        verify(&instance),
        AuditVerification::Invalid {
            first_bad_entry_id: recorded_entry(&instance)
        }
    );
}
