//! Contract: idempotency keys. A keyed unit of work keeps its answer with the key in the same
//! atomic step as its effect; the same request with the key again gets that answer and runs
//! nothing; another request with the key is refused; a refusal keeps nothing; one key used by
//! many at once has one effect; purged keys are forgotten.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use approvals::domain::WorkflowError;
use approvals::domain::machine;
use approvals::domain::model::{
    Answer, AuditAction, DecisionRequest, Done, IdempotencyKey, Instance, InstanceFilter, Once,
    StepId, Verdict,
};
use approvals::domain::ports::ActFn;
use chrono::{DateTime, TimeDelta, Utc};

use super::{ContractStore, new_instance, start, step_ids};
use crate::fixtures::{CANCELLATION, at, far_future, request, uid};

contract_tests! {
    case_a_kept_answer_is_replayed_and_nothing_runs_again =>
        memory_a_kept_answer_is_replayed_and_nothing_runs_again,
        postgres_a_kept_answer_is_replayed_and_nothing_runs_again;
    case_another_request_with_a_kept_key_is_refused =>
        memory_another_request_with_a_kept_key_is_refused,
        postgres_another_request_with_a_kept_key_is_refused;
    case_a_refusal_keeps_nothing =>
        memory_a_refusal_keeps_nothing,
        postgres_a_refusal_keeps_nothing;
    case_one_key_used_at_once_by_many_has_one_effect =>
        memory_one_key_used_at_once_by_many_has_one_effect,
        postgres_one_key_used_at_once_by_many_has_one_effect;
    case_purged_keys_are_forgotten =>
        memory_purged_keys_are_forgotten,
        postgres_purged_keys_are_forgotten;
}

/// A keyed request: the answer names the instance and how long its audit was.
fn once(key: &str, request: &str) -> Option<Once<Instance>> {
    Some(Once {
        key: IdempotencyKey::new(key).unwrap(),
        request: request.to_owned(),
        render: Box::new(|instance: &Instance| Answer {
            status: 200,
            body: format!("instance {} audit {}", instance.id, instance.audit.len()),
        }),
    })
}

/// The machine's approval by `by`, counting its runs in `runs`.
fn counted_approval(step: StepId, by: i64, now: DateTime<Utc>, runs: &Arc<AtomicUsize>) -> ActFn {
    let request = DecisionRequest {
        step_id: step,
        acted_by: uid(by),
        verdict: Verdict::Approve { comment: None },
    };
    let runs = Arc::clone(runs);
    Box::new(move |instance: &Instance, _active, _| {
        runs.fetch_add(1, Ordering::SeqCst);
        machine::decide(instance, &request, now)
    })
}

async fn approve_once<S: ContractStore>(
    store: &S,
    step: StepId,
    by: i64,
    key: &str,
    request: &str,
    runs: &Arc<AtomicUsize>,
) -> Result<Done<Instance>, WorkflowError> {
    let act = counted_approval(step, by, at(10, 5, 0), runs);
    store.decide(step, uid(by), act, once(key, request)).await
}

fn approvals(instance: &Instance) -> usize {
    instance
        .audit
        .iter()
        .filter(|a| a.action == AuditAction::StepApproved)
        .count()
}

async fn case_a_kept_answer_is_replayed_and_nothing_runs_again<S: ContractStore>(store: Arc<S>) {
    let instance = start(&*store, CANCELLATION, "booking", 2, 3, at(10, 0, 0))
        .await
        .unwrap();
    let (step, _) = step_ids(&instance);
    let runs = Arc::new(AtomicUsize::new(0));

    let first = approve_once(&*store, step, 1, "approve-1", "r1", &runs)
        .await
        .unwrap();
    let Done::Fresh(decided) = first else {
        panic!("the first request with a key runs: {first:?}");
    };
    let expected = Answer {
        status: 200,
        body: format!("instance {} audit {}", decided.id, decided.audit.len()),
    };
    for _ in 0..2 {
        match approve_once(&*store, step, 1, "approve-1", "r1", &runs).await {
            Ok(Done::Replayed(answer)) => assert_eq!(answer, expected),
            other => panic!("a retry is answered from the key: {other:?}"),
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the decision ran once");
    let stored = store.instance(decided.id).await.unwrap();
    assert_eq!(stored.audit, decided.audit, "the retries wrote nothing");
    assert_eq!(approvals(&stored), 1);
    let kept = store
        .kept_answer(&IdempotencyKey::new("approve-1").unwrap())
        .await
        .unwrap()
        .expect("the key is kept");
    assert_eq!((kept.request.as_str(), kept.answer), ("r1", expected));

    // A trigger's key works the same way, with its own answer.
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 4, 3, None),
        at(11, 0, 0),
    )
    .await;
    let created = store
        .create_instance(new.clone(), once("trigger-4", "t4"))
        .await
        .unwrap()
        .fresh()
        .expect("the first trigger runs");
    match store.create_instance(new, once("trigger-4", "t4")).await {
        Ok(Done::Replayed(answer)) => {
            assert_eq!(answer.body, format!("instance {} audit 2", created.id))
        }
        other => panic!("a retried trigger is answered from the key: {other:?}"),
    }
}

async fn case_another_request_with_a_kept_key_is_refused<S: ContractStore>(store: Arc<S>) {
    let instance = start(&*store, CANCELLATION, "booking", 2, 3, at(10, 0, 0))
        .await
        .unwrap();
    let (step, _) = step_ids(&instance);
    let runs = Arc::new(AtomicUsize::new(0));
    approve_once(&*store, step, 1, "k", "r1", &runs)
        .await
        .unwrap();

    let refused = approve_once(&*store, step, 1, "k", "r2", &runs).await;
    assert_eq!(
        refused.unwrap_err(),
        WorkflowError::IdempotencyKeyReused {
            key: "k".to_owned()
        }
    );
    // Keys are one namespace: another use case can't take a kept key either.
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 4, 3, None),
        at(11, 0, 0),
    )
    .await;
    assert!(matches!(
        store.create_instance(new, once("k", "t4")).await,
        Err(WorkflowError::IdempotencyKeyReused { .. })
    ));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let found = store
        .search_instances(InstanceFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the refused trigger created nothing");
}

async fn case_a_refusal_keeps_nothing<S: ContractStore>(store: Arc<S>) {
    let instance = start(&*store, CANCELLATION, "booking", 2, 3, at(10, 0, 0))
        .await
        .unwrap();
    let (step, _) = step_ids(&instance);
    let runs = Arc::new(AtomicUsize::new(0));
    // User 2 holds no role of step 1: refused, and the key stays free.
    let refused = approve_once(&*store, step, 2, "k", "r1", &runs).await;
    assert!(
        matches!(refused, Err(WorkflowError::NotAnApprover { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store
            .kept_answer(&IdempotencyKey::new("k").unwrap())
            .await
            .unwrap(),
        None
    );
    let retried = approve_once(&*store, step, 1, "k", "r1", &runs)
        .await
        .unwrap();
    assert!(matches!(retried, Done::Fresh(_)), "{retried:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

async fn case_one_key_used_at_once_by_many_has_one_effect<S: ContractStore>(store: Arc<S>) {
    const RACERS: usize = 8;
    // Triggers: without the key, all but one would be refused as a second active instance.
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 4, 3, None),
        at(11, 0, 0),
    )
    .await;
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, new) = (Arc::clone(&store), new.clone());
            tokio::spawn(async move { store.create_instance(new, once("t", "t4")).await })
        })
        .collect();
    let mut answers = Vec::new();
    let mut fresh = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(Done::Fresh(instance)) => {
                fresh += 1;
                answers.push(format!("instance {} audit 2", instance.id));
            }
            Ok(Done::Replayed(answer)) => answers.push(answer.body),
            Err(e) => panic!("every request with the key gets the one answer: {e:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request ran");
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "every request got the same answer: {answers:?}"
    );

    // Decisions: without the key, all but one would be refused as not actionable.
    let instance = start(&*store, CANCELLATION, "booking", 2, 3, at(10, 0, 0))
        .await
        .unwrap();
    let (step, _) = step_ids(&instance);
    let runs = Arc::new(AtomicUsize::new(0));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, runs) = (Arc::clone(&store), Arc::clone(&runs));
            tokio::spawn(async move { approve_once(&*store, step, 1, "a", "r1", &runs).await })
        })
        .collect();
    let mut fresh = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(Done::Fresh(_)) => fresh += 1,
            Ok(Done::Replayed(_)) => {}
            Err(e) => panic!("every request with the key gets the one answer: {e:?}"),
        }
    }
    assert_eq!((fresh, runs.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(approvals(&store.instance(instance.id).await.unwrap()), 1);
}

async fn case_purged_keys_are_forgotten<S: ContractStore>(store: Arc<S>) {
    let instance = start(&*store, CANCELLATION, "booking", 2, 3, at(10, 0, 0))
        .await
        .unwrap();
    let (first, second) = step_ids(&instance);
    let runs = Arc::new(AtomicUsize::new(0));
    approve_once(&*store, first, 1, "k", "r1", &runs)
        .await
        .unwrap();
    let key = IdempotencyKey::new("k").unwrap();
    let kept_at = store.kept_answer(&key).await.unwrap().unwrap().created_at;

    // Only keys kept before the cut-off go.
    let before = kept_at - TimeDelta::seconds(1);
    assert_eq!(store.purge_kept_answers(before).await.unwrap(), 0);
    assert!(store.kept_answer(&key).await.unwrap().is_some());
    assert_eq!(store.purge_kept_answers(far_future()).await.unwrap(), 1);
    assert_eq!(store.kept_answer(&key).await.unwrap(), None);

    // The key is free again: the same key runs new work.
    let again = approve_once(&*store, second, 2, "k", "r1", &runs)
        .await
        .unwrap();
    assert!(matches!(again, Done::Fresh(_)), "{again:?}");
}
