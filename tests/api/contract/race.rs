//! Contract: racing writers have exactly one winner, for creations on one entity and for
//! decisions on one step; the losers get the refusal a late caller would, and write nothing.

use approvals::domain::model::Done;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{AuditAction, InstanceStatus, StepId, StepStatus, UserId};
use serde_json::json;
use tokio::sync::Barrier;

use super::{
    ContractStore, approve, assert_audit_well_formed, assert_no_callbacks, new_instance,
    pending_line, start, step_ids,
};
use crate::fixtures::{CANCELLATION, at, request, role, uid};

contract_tests! {
    case_concurrent_creates_have_one_winner =>
        memory_concurrent_creates_have_one_winner, postgres_concurrent_creates_have_one_winner;
    case_racing_decisions_have_one_winner =>
        memory_racing_decisions_have_one_winner, postgres_racing_decisions_have_one_winner;
}

async fn case_concurrent_creates_have_one_winner<S: ContractStore>(store: Arc<S>) {
    const RACERS: usize = 10;
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 5, 3, Some(json!({"n": 1}))),
        at(10, 0, 0),
    )
    .await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let new = new.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .create_instance(new, None)
                    .await
                    .and_then(Done::unkeyed)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.expect("task completes") {
            Ok(instance) => winners.push(instance),
            Err(e) => losers.push(e),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one creation wins; losers: {losers:?}"
    );
    let winner = &winners[0];
    assert_eq!(losers.len(), RACERS - 1);
    for e in &losers {
        assert_eq!(
            e,
            &WorkflowError::InstanceAlreadyActive {
                existing: winner.id.get()
            }
        );
    }
    assert_eq!(&store.instance(winner.id).await.unwrap(), winner);
    assert_eq!(
        store.pending_steps(uid(1), 50, None).await.unwrap(),
        vec![pending_line(winner, 1)],
        "only the winner's steps were stored"
    );
}

async fn case_racing_decisions_have_one_winner<S: ContractStore>(store: Arc<S>) {
    const RACERS: i64 = 20;
    // Several rounds, one fresh instance each: a lost race is timing-dependent, so one round
    // alone could let a missing lock slip through.
    const ROUNDS: i64 = 4;
    let racers: Vec<i64> = (100..100 + RACERS).collect();
    for &id in &racers {
        store.add_user(uid(id), &format!("Deputy {id}")).await;
        store
            .set_user_roles(uid(id), &[role("sales_manager")])
            .await;
    }
    let mut expected_eligible: Vec<UserId> = racers.iter().map(|&id| uid(id)).collect();
    expected_eligible.insert(0, uid(1));

    for round in 1..=ROUNDS {
        let created = start(&*store, CANCELLATION, "booking", round, 3, at(12, 0, 0))
            .await
            .unwrap();
        let (s1, s2) = step_ids(&created);
        assert_eq!(created.steps[0].eligible_user_ids, expected_eligible);

        let barrier = Arc::new(Barrier::new(racers.len()));
        let tasks: Vec<_> = racers
            .iter()
            .map(|&by| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    (by, approve(&*store, s1, by, None, at(12, 1, 0)).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for task in tasks {
            match task.await.expect("task completes") {
                (by, Ok(instance)) => winners.push((by, instance)),
                (_, Err(e)) => losers.push(e),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one decision wins; losers: {losers:?}"
        );
        assert_eq!(losers.len(), racers.len() - 1);
        for e in &losers {
            assert_eq!(
                e,
                &WorkflowError::StepNotActionable {
                    step: s1.get(),
                    status: StepStatus::Approved
                },
                "round {round}"
            );
        }
        let (winner, returned) = &winners[0];
        assert_eq!(returned.steps[0].acted_by_user_id, Some(uid(*winner)));

        let stored = store.instance(created.id).await.unwrap();
        assert_eq!(&stored, returned);
        assert_eq!(stored.status, InstanceStatus::InProgress);
        assert_eq!(stored.steps[0].status, StepStatus::Approved);
        assert_eq!(stored.steps[1].status, StepStatus::AwaitingAction);
        let count = |action: AuditAction, step: StepId| {
            stored
                .audit
                .iter()
                .filter(|a| a.action == action && a.step_id == Some(step))
                .count()
        };
        assert_eq!(count(AuditAction::StepApproved, s1), 1, "round {round}");
        assert_eq!(count(AuditAction::StepActivated, s2), 1, "round {round}");
        assert_eq!(stored.audit.len(), 4, "round {round}: {:?}", stored.audit);
        assert_audit_well_formed(&stored);
    }
    assert_no_callbacks(&*store).await;
}
