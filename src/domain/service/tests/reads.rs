//! Tests of the read use cases (domain core, driving port): the inbox, one instance, and the
//! health check, which the service answers from the repository alone, and readiness (the
//! repository, then the event adapters).

use mockall::predicate::eq;

use super::fixtures::{assert_validation, clock, clock_time, repo, service, stored_instance, uid};
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    Approver, EntityId, EntityType, EventName, InboxCursor, InboxPage, InstanceId, PendingStep,
    StepId,
};
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};
use crate::domain::service::MAX_PENDING_LIMIT;

// ----- pending_steps -----

/// A directory where nobody delegates to anyone: the inbox is the store's plain one.
fn nobody_delegates() -> MockRoleResolver {
    let mut roles = MockRoleResolver::new();
    roles
        .expect_delegators_of()
        .returning(|_, _| Box::pin(async { Ok(Vec::new()) }));
    roles
}

#[tokio::test]
async fn a_delegates_inbox_merges_its_delegators_steps_at_the_clocks_time() {
    let mut roles = MockRoleResolver::new();
    roles
        .expect_delegators_of()
        .with(eq(uid(1)), eq(clock_time()))
        .times(1)
        .returning(|_, _| Box::pin(async { Ok(vec![uid(7), uid(8)]) }));
    let mut repo = repo();
    repo.expect_pending_steps().never();
    let mut delegated = pending(3, 60);
    delegated.on_behalf_of = Some(uid(7));
    let found = vec![pending(2, 30), delegated];
    let answer = found.clone();
    repo.expect_delegated_pending_steps()
        .with(eq(uid(1)), eq(vec![uid(7), uid(8)]), eq(11), eq(None))
        .times(1)
        .returning(move |_, _, _, _| {
            let answer = answer.clone();
            Box::pin(async move { Ok(answer) })
        });
    let (service, _signal) = service(repo, roles, clock(1));

    let page = service.pending_steps(uid(1), 10, None).await.unwrap();
    assert_eq!(page.items, found);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn pending_steps_refuses_a_limit_out_of_range_without_asking_the_store() {
    let mut repo = repo();
    repo.expect_pending_steps().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    for limit in [0, MAX_PENDING_LIMIT + 1] {
        let err = service
            .pending_steps(uid(1), limit, None)
            .await
            .unwrap_err();
        assert_validation(err, "limit");
    }
}

#[tokio::test]
async fn pending_steps_asks_the_store_for_one_more_than_the_page() {
    let mut repo = repo();
    for limit in [1, MAX_PENDING_LIMIT] {
        repo.expect_pending_steps()
            .with(eq(uid(1)), eq(limit + 1), eq(None))
            .times(1)
            .returning(|_, _, _| Box::pin(async { Ok(Vec::new()) }));
    }
    let (service, _signal) = service(repo, nobody_delegates(), clock(2));

    let empty = InboxPage {
        items: Vec::new(),
        next: None,
    };
    assert_eq!(
        service.pending_steps(uid(1), 1, None).await,
        Ok(empty.clone())
    );
    assert_eq!(
        service.pending_steps(uid(1), MAX_PENDING_LIMIT, None).await,
        Ok(empty)
    );
}

#[tokio::test]
async fn pending_steps_has_a_next_page_only_when_the_store_had_more() {
    let steps: Vec<PendingStep> = (1..=3).map(|n| pending(n, n * 60)).collect();
    let after = InboxCursor::after(&steps[0]);
    let mut repo = repo();
    let full = steps.clone();
    repo.expect_pending_steps()
        .with(eq(uid(1)), eq(3), eq(after))
        .times(1)
        .returning(move |_, _, _| {
            let full = full.clone();
            Box::pin(async move { Ok(full) })
        });
    let two = steps[..2].to_vec();
    repo.expect_pending_steps()
        .with(eq(uid(1)), eq(4), eq(None))
        .times(1)
        .returning(move |_, _, _| {
            let two = two.clone();
            Box::pin(async move { Ok(two) })
        });
    let (service, _signal) = service(repo, nobody_delegates(), clock(2));

    // Three found for a page of two: the page ends on the second, and says so.
    let page = service.pending_steps(uid(1), 2, after).await.unwrap();
    assert_eq!(page.items, steps[..2]);
    assert_eq!(page.next, InboxCursor::after(&steps[1]));
    assert!(page.next.is_some());
    // Two found for a page of three: the last page.
    let page = service.pending_steps(uid(1), 3, None).await.unwrap();
    assert_eq!(page.items, steps[..2]);
    assert_eq!(page.next, None);
}

#[test]
fn a_cursor_precedes_what_comes_after_it_in_inbox_order() {
    let cursor = InboxCursor::after(&pending(5, 60)).unwrap();
    assert!(!cursor.precedes(&pending(5, 60)), "not itself");
    assert!(cursor.precedes(&pending(6, 60)), "same time, later id");
    assert!(!cursor.precedes(&pending(4, 60)), "same time, earlier id");
    assert!(cursor.precedes(&pending(1, 61)), "later time, earlier id");
    assert!(!cursor.precedes(&pending(9, 59)), "earlier time");
    let mut never = pending(9, 99);
    never.activated_at = None;
    assert!(!cursor.precedes(&never));
    assert_eq!(InboxCursor::after(&never), None);
}

/// Step `id`, activated `secs` seconds after the epoch.
fn pending(id: i64, secs: i64) -> PendingStep {
    PendingStep {
        step_id: StepId::new(id).unwrap(),
        step_order: 1,
        name: "Review".to_owned(),
        approver: Approver::User { user_id: uid(2) },
        activated_at: chrono::DateTime::from_timestamp(secs, 0),
        instance_id: InstanceId::new(id).unwrap(),
        event: EventName::new("booking.cancellation_requested".to_owned()).unwrap(),
        entity_type: EntityType::new("booking".to_owned()).unwrap(),
        entity_id: EntityId::new(id).unwrap(),
        on_behalf_of: None,
    }
}

// ----- instance and health -----

#[tokio::test]
async fn instance_is_read_from_the_store_and_nothing_is_written() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    repo.expect_instance()
        .with(eq(InstanceId::new(10).unwrap()))
        .times(1)
        .returning(|_| Box::pin(async { Ok(stored_instance()) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let instance = service.instance(InstanceId::new(10).unwrap()).await;

    assert_eq!(instance, Ok(stored_instance()));
}

#[tokio::test]
async fn health_reports_whether_the_store_answers() {
    let mut repo = repo();
    let mut answers = vec![
        Err(WorkflowError::Unavailable("db down".to_owned())),
        Ok(()),
    ];
    repo.expect_health().times(2).returning(move || {
        let answer = answers.remove(0);
        Box::pin(async move { answer })
    });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(
        service.health().await,
        Err(WorkflowError::Unavailable("db down".to_owned()))
    );
    assert_eq!(service.health().await, Ok(()));
}

#[tokio::test]
async fn readiness_lists_the_store_then_each_event_adapters_checks() {
    use crate::domain::model::{Readiness, ReadinessCheck};
    use crate::domain::ports::MockCallbacks;
    use std::sync::Arc;

    let mut repo = repo();
    repo.expect_health()
        .times(1)
        .returning(|| Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) }));
    let mut callbacks = MockCallbacks::new();
    callbacks.expect_ready().times(1).returning(|| {
        Box::pin(async {
            vec![ReadinessCheck {
                name: "nats",
                outcome: Err("not connected".to_owned()),
            }]
        })
    });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));
    let service = service.with_callbacks(Arc::new(callbacks));

    let readiness = service.readiness().await;

    assert_eq!(readiness.checks.len(), 2);
    assert_eq!(readiness.checks[0].name, "database");
    assert!(
        readiness.checks[0]
            .outcome
            .as_ref()
            .is_err_and(|why| why.contains("db down"))
    );
    assert_eq!(
        readiness.checks[1],
        ReadinessCheck {
            name: "nats",
            outcome: Err("not connected".to_owned())
        }
    );
    assert!(!readiness.is_ready());
    assert!(
        Readiness {
            checks: vec![ReadinessCheck::ok("database")]
        }
        .is_ready()
    );
}
