//! Contract: the audit log only grows, each instance's log holds its own entries only, and
//! every entry is chained to the one before it, whichever store wrote it.

use std::sync::Arc;

use approvals::domain::audit_chain;
use approvals::domain::model::{
    AuditAction, AuditEntry, AuditVerification, CancelRequest, Comment, Done,
};
use approvals::domain::{WorkflowError, machine};
use chrono::{DateTime, Utc};

use super::{
    ContractStore, approve, assert_audit_well_formed, audit_summary, reject, start, step_ids,
};
use crate::fixtures::{CANCELLATION, COMMISSION, at, uid};

contract_tests! {
    case_audit_is_append_only => memory_audit_is_append_only, postgres_audit_is_append_only;
    case_every_trail_verifies => memory_every_trail_verifies, postgres_every_trail_verifies;
}

async fn case_audit_is_append_only<S: ContractStore>(store: Arc<S>) {
    let a = start(&*store, CANCELLATION, "booking", 2, 3, at(13, 0, 0))
        .await
        .unwrap();
    let b = start(&*store, COMMISSION, "commission", 2, 3, at(13, 0, 30))
        .await
        .unwrap();
    let (a1, a2) = step_ids(&a);
    let (b1, _) = step_ids(&b);
    let created: Vec<AuditEntry> = a.audit.clone();

    let after_first = approve(&*store, a1, 1, Some("first"), at(13, 1, 0))
        .await
        .unwrap();
    assert!(
        after_first.audit.starts_with(&created),
        "earlier entries unchanged: {:?} then {:?}",
        created,
        after_first.audit
    );
    assert_eq!(after_first.audit.len(), created.len() + 2);

    // Decisions on another instance don't reach this log.
    approve(&*store, b1, 2, None, at(13, 2, 0)).await.unwrap();

    let after_second = reject(&*store, a2, 2, "second thoughts", at(13, 3, 0))
        .await
        .unwrap();
    assert!(after_second.audit.starts_with(&after_first.audit));
    assert_eq!(after_second.audit.len(), after_first.audit.len() + 2);

    let stored = store.instance(a.id).await.unwrap();
    assert_eq!(stored.audit, after_second.audit);
    assert!(stored.audit.starts_with(&created));
    assert_audit_well_formed(&stored);
    assert_eq!(
        audit_summary(&stored),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(a1), None),
            (AuditAction::StepApproved, Some(a1), Some(uid(1))),
            (AuditAction::StepActivated, Some(a2), None),
            (AuditAction::StepRejected, Some(a2), Some(uid(2))),
            (AuditAction::InstanceRejected, None, Some(uid(2))),
        ]
    );
    let comments: Vec<Option<&str>> = stored.audit.iter().map(|e| e.comment.as_deref()).collect();
    assert_eq!(
        comments,
        vec![
            None,
            None,
            Some("first"),
            None,
            Some("second thoughts"),
            None
        ]
    );
    let times: Vec<DateTime<Utc>> = stored.audit.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        vec![
            at(13, 0, 0),
            at(13, 0, 0),
            at(13, 1, 0),
            at(13, 1, 0),
            at(13, 3, 0),
            at(13, 3, 0)
        ]
    );

    // The other instance's log holds its own entries only.
    let other = store.instance(b.id).await.unwrap();
    assert!(other.audit.starts_with(&b.audit));
    assert_eq!(other.audit.len(), 4);
    assert_audit_well_formed(&other);
}

/// Triggers, decisions and a cancellation, on two instances at once: each store hashes every
/// entry it appends so that the trail verifies, and hands back the hashes it stored.
async fn case_every_trail_verifies<S: ContractStore>(store: Arc<S>) {
    let a = start(&*store, CANCELLATION, "booking", 2, 3, at(14, 0, 0))
        .await
        .unwrap();
    let b = start(&*store, COMMISSION, "commission", 2, 3, at(14, 0, 30))
        .await
        .unwrap();
    let (a1, a2) = step_ids(&a);
    let (b1, _) = step_ids(&b);
    assert_eq!(
        audit_chain::verify(&a),
        AuditVerification::Valid { entries: 2 }
    );
    let approved = approve(&*store, a1, 1, Some("ok"), at(14, 1, 0))
        .await
        .unwrap();
    approve(&*store, b1, 2, None, at(14, 1, 30)).await.unwrap();
    let rejected = reject(&*store, a2, 2, "no", at(14, 2, 0)).await.unwrap();
    let cancel = CancelRequest {
        instance_id: b.id,
        acted_by: uid(3),
        reason: Some(Comment::new("withdrawn").unwrap()),
    };
    let cancelled = store
        .decide_instance(
            b.id,
            Box::new(move |locked| machine::cancel(locked, &cancel, at(14, 3, 0))),
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .map_err(|e: WorkflowError| e.to_string())
        .unwrap();

    // Each answer holds the hashes the store wrote, and its trail verifies as it then stood.
    for (answer, entries) in [(&approved, 4), (&rejected, 6), (&cancelled, 5)] {
        let stored = store.instance(answer.id).await.unwrap();
        assert!(
            stored.audit.starts_with(&answer.audit),
            "instance {}",
            answer.id
        );
        assert_eq!(
            audit_chain::verify(answer),
            AuditVerification::Valid { entries },
            "instance {}",
            answer.id
        );
    }
    for stored in [
        store.instance(a.id).await.unwrap(),
        store.instance(b.id).await.unwrap(),
    ] {
        let entries = stored.audit.len();
        assert_eq!(
            audit_chain::verify(&stored),
            AuditVerification::Valid { entries }
        );
        let mut hashes: Vec<_> = stored.audit.iter().map(|e| *e.hash.as_bytes()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), entries, "every hash differs");
    }
}
