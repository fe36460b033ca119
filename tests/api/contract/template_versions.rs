//! Contract: template versions, listing, one active template per event, and segregation of
//! duties, on both stores. Every write stores the version it makes, and a past version reads
//! back exactly as it was; a new version is allowed while instances run, which keep their
//! copied steps and version; a second active template for an event is `TemplateConflict`
//! whichever write would make it; a template that forbids self-approval leaves the initiator
//! out of every snapshot.

use approvals::domain::model::Done;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::machine;
use approvals::domain::model::{
    Approver, InstanceStatus, NewTemplate, Template, TemplateFilter, TemplateUpdate,
};

use super::{ContractStore, approve, start};
use crate::fixtures::{
    CANCELLATION, COMMISSION, PRICE_UPDATE, at, by_role, by_user, demo_template, entity_type,
    event, request, role, step, template, tid, uid,
};

contract_tests! {
    case_running_instances_keep_their_version =>
        memory_running_instances_keep_their_version,
        postgres_running_instances_keep_their_version;
    case_past_versions_read_back_as_they_were =>
        memory_past_versions_read_back_as_they_were,
        postgres_past_versions_read_back_as_they_were;
    case_second_active_template_is_a_conflict =>
        memory_second_active_template_is_a_conflict,
        postgres_second_active_template_is_a_conflict;
    case_templates_are_listed_by_filter =>
        memory_templates_are_listed_by_filter, postgres_templates_are_listed_by_filter;
    case_forbidden_self_approval_leaves_the_initiator_out =>
        memory_forbidden_self_approval_leaves_the_initiator_out,
        postgres_forbidden_self_approval_leaves_the_initiator_out;
    case_demo_templates_behave_as_before =>
        memory_demo_templates_behave_as_before, postgres_demo_templates_behave_as_before;
}

fn change() -> TemplateUpdate {
    TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: None,
        steps: None,
    }
}

fn activate() -> TemplateUpdate {
    TemplateUpdate {
        is_active: Some(true),
        ..change()
    }
}

/// An instance started on version 1 finishes on version 1's steps after version 2 is
/// published; new triggers use version 2.
async fn case_running_instances_keep_their_version<S: ContractStore>(store: Arc<S>) {
    let running = start(&*store, CANCELLATION, "booking", 2, 3, at(10, 0, 0))
        .await
        .unwrap();
    assert_eq!((running.template_version, running.steps.len()), (1, 2));

    // A change in place is refused while it runs; a new version is not.
    let finance_only = TemplateUpdate {
        name: Some("Booking cancellation, finance only".to_owned()),
        steps: Some(vec![step(1, "Finance review", by_role("finance_manager"))]),
        ..change()
    };
    assert_eq!(
        store
            .update_template(tid(1), finance_only.clone())
            .await
            .unwrap_err(),
        WorkflowError::TemplateInUse { template: 1 }
    );
    let v2 = store
        .publish_version(tid(1), finance_only.clone(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    let expected = Template {
        name: "Booking cancellation, finance only".to_owned(),
        version: 2,
        steps: finance_only.steps.clone().unwrap(),
        ..demo_template(0)
    };
    assert_eq!(v2, expected);
    assert_eq!(store.template(tid(1)).await.unwrap(), expected);
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(expected)
    );

    // The running instance still has its two steps and finishes on them.
    let stored_running = store.instance(running.id).await.unwrap();
    assert_eq!(stored_running.steps, running.steps);
    assert_eq!(stored_running.template_version, 1);
    let after_first = approve(&*store, running.steps[0].id, 1, None, at(10, 1, 0))
        .await
        .unwrap();
    assert_eq!(after_first.status, InstanceStatus::InProgress);
    let done = approve(&*store, running.steps[1].id, 2, None, at(10, 2, 0))
        .await
        .unwrap();
    assert_eq!(done.status, InstanceStatus::Approved);
    assert_eq!(done.template_version, 1);

    // New triggers copy version 2.
    let next = start(&*store, CANCELLATION, "booking", 3, 3, at(10, 3, 0))
        .await
        .unwrap();
    assert_eq!(next.template_version, 2);
    assert_eq!(next.steps.len(), 1);
    assert_eq!(next.steps[0].eligible_user_ids, vec![uid(2)]);
}

/// Create, `PUT` and new versions each store the version they make; a past version reads back
/// exactly as it was once later ones exist; unknown versions and templates are `NotFound`.
async fn case_past_versions_read_back_as_they_were<S: ContractStore>(store: Arc<S>) {
    for index in 0..4 {
        let id = tid(index as i64 + 1);
        assert_eq!(
            store.template_version(id, 1).await.unwrap(),
            demo_template(index),
            "the demo's template {id} at version 1"
        );
    }

    // Version 2 by PUT, version 3 as a new version: every field changes.
    let put = TemplateUpdate {
        name: Some("Unit price update, renamed".to_owned()),
        ..change()
    };
    let v2 = store.update_template(tid(2), put).await.unwrap();
    let v3_change = TemplateUpdate {
        name: Some("Unit price update, strict".to_owned()),
        is_active: Some(false),
        forbid_self_approval: Some(true),
        steps: Some(vec![
            step(1, "Finance first", by_user(2)),
            step(2, "Sales second", by_role("sales_manager")),
            step(3, "Coordinator last", by_role("sales_coordinator")),
        ]),
    };
    let v3 = store
        .publish_version(tid(2), v3_change.clone(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(
        v3,
        Template {
            name: "Unit price update, strict".to_owned(),
            version: 3,
            is_active: false,
            forbid_self_approval: true,
            steps: v3_change.steps.unwrap(),
            ..demo_template(1)
        }
    );

    assert_eq!(
        store.template_version(tid(2), 1).await.unwrap(),
        demo_template(1)
    );
    assert_eq!(store.template_version(tid(2), 2).await.unwrap(), v2);
    assert_eq!(store.template_version(tid(2), 3).await.unwrap(), v3);
    assert_eq!(store.template(tid(2)).await.unwrap(), v3);
    for (id, version) in [(2, 4), (2, 0), (999, 1)] {
        assert!(
            matches!(
                store.template_version(tid(id), version).await,
                Err(WorkflowError::NotFound { .. })
            ),
            "template {id} version {version}"
        );
    }

    // A template stored as given (id and version chosen) is a version too.
    let chosen = Template {
        version: 5,
        ..template(
            30,
            "Commission, finance only",
            COMMISSION,
            "commission",
            false,
            vec![step(1, "Finance", by_role("finance_manager"))],
        )
    };
    store.put_template(chosen.clone()).await;
    assert_eq!(store.template_version(tid(30), 5).await.unwrap(), chosen);
}

/// A second active template for an event is `TemplateConflict` on create, `PUT` and a new
/// version alike, and nothing is stored: no template, no change, no version.
async fn case_second_active_template_is_a_conflict<S: ContractStore>(store: Arc<S>) {
    let conflict = WorkflowError::TemplateConflict {
        event: PRICE_UPDATE.to_owned(),
    };
    let second = |is_active| NewTemplate {
        name: "Price update, finance only".to_owned(),
        event: event(PRICE_UPDATE),
        entity_type: entity_type("unit"),
        is_active,
        forbid_self_approval: false,
        steps: vec![step(1, "Finance", by_user(2))],
    };
    assert_eq!(
        store
            .create_template(second(true), None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err(),
        conflict
    );
    let all = store.templates(TemplateFilter::default()).await.unwrap();
    assert_eq!(all.len(), 4, "nothing was created: {all:?}");

    let inactive = store
        .create_template(second(false), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(
        store
            .update_template(inactive.id, activate())
            .await
            .unwrap_err(),
        conflict
    );
    assert_eq!(
        store
            .publish_version(inactive.id, activate(), None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err(),
        conflict
    );
    assert_eq!(store.template(inactive.id).await.unwrap(), inactive);
    assert!(matches!(
        store.template_version(inactive.id, 2).await,
        Err(WorkflowError::NotFound { .. })
    ));
    assert_eq!(
        store.active_template(&event(PRICE_UPDATE)).await.unwrap(),
        Some(demo_template(1))
    );

    // Once the first is deactivated (by a new version, too), the second may be activated.
    let deactivate = TemplateUpdate {
        is_active: Some(false),
        ..change()
    };
    store
        .publish_version(tid(2), deactivate, None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    let active = store
        .publish_version(inactive.id, activate(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(
        store.active_template(&event(PRICE_UPDATE)).await.unwrap(),
        Some(active)
    );
}

/// The list: by id, each template with its steps, filtered by event and activity.
async fn case_templates_are_listed_by_filter<S: ContractStore>(store: Arc<S>) {
    let demo: Vec<Template> = (0..4).map(demo_template).collect();
    assert_eq!(
        store.templates(TemplateFilter::default()).await.unwrap(),
        demo
    );
    let inactive = store
        .create_template(
            NewTemplate {
                name: "Cancellation, finance only".to_owned(),
                event: event(CANCELLATION),
                entity_type: entity_type("booking"),
                is_active: false,
                forbid_self_approval: true,
                steps: vec![step(1, "Finance review", by_role("finance_manager"))],
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    let filter = |name: Option<&str>, is_active| TemplateFilter {
        event: name.map(event),
        is_active,
    };
    let cases = [
        (
            filter(None, None),
            [demo.clone(), vec![inactive.clone()]].concat(),
        ),
        (
            filter(Some(CANCELLATION), None),
            vec![demo[0].clone(), inactive.clone()],
        ),
        (
            filter(Some(CANCELLATION), Some(true)),
            vec![demo[0].clone()],
        ),
        (filter(None, Some(false)), vec![inactive.clone()]),
        (filter(None, Some(true)), demo.clone()),
        (filter(Some(COMMISSION), Some(false)), vec![]),
        (filter(Some("no.such_event"), None), vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            store.templates(filter.clone()).await.unwrap(),
            expected,
            "{filter:?}"
        );
    }
}

/// A template that forbids self-approval: the initiator is in no step's snapshot (and so may
/// not decide), and a step left with nobody refuses the trigger.
async fn case_forbidden_self_approval_leaves_the_initiator_out<S: ContractStore>(store: Arc<S>) {
    // User 1 is a sales manager and now a finance manager too; user 2 a finance manager.
    store
        .set_user_roles(uid(1), &[role("sales_manager"), role("finance_manager")])
        .await;
    let strict = store
        .create_template(
            NewTemplate {
                name: "Booking refund".to_owned(),
                event: event("booking.refund_requested"),
                entity_type: entity_type("booking"),
                is_active: true,
                forbid_self_approval: true,
                steps: vec![
                    step(1, "Finance review", by_role("finance_manager")),
                    step(2, "Sales sign-off", by_role("sales_manager")),
                ],
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert!(strict.forbid_self_approval);
    assert_eq!(store.template(strict.id).await.unwrap(), strict);
    assert_eq!(store.template_version(strict.id, 1).await.unwrap(), strict);

    // User 2 starts one: it is left out of step 1 (user 1 remains).
    let refund = start(
        &*store,
        "booking.refund_requested",
        "booking",
        1,
        2,
        at(11, 0, 0),
    )
    .await
    .unwrap();
    assert_eq!(refund.steps[0].eligible_user_ids, vec![uid(1)]);
    assert_eq!(refund.steps[1].eligible_user_ids, vec![uid(1)]);
    assert!(matches!(
        approve(&*store, refund.steps[0].id, 2, None, at(11, 1, 0)).await,
        Err(WorkflowError::NotAnApprover { .. })
    ));

    // User 1 starts one: step 2 (sales managers: user 1 alone) is left with nobody.
    let template = store
        .active_template(&event("booking.refund_requested"))
        .await
        .unwrap()
        .unwrap();
    let approvers: Vec<Approver> = template.steps.iter().map(|s| s.approver.clone()).collect();
    let snapshots = store.eligible_users(&approvers).await.unwrap();
    let refused = machine::trigger(
        &template,
        request("booking.refund_requested", "booking", 2, 1, None),
        snapshots,
        at(11, 2, 0),
    )
    .unwrap_err();
    assert_eq!(
        refused,
        WorkflowError::NoEligibleApprover {
            approver: "role 'sales_manager' without the initiator, as self-approval is forbidden"
                .to_owned(),
            step_order: 2,
        }
    );

    // Allowing it again (a new version) lets user 1 stay on its own steps.
    let relaxed = TemplateUpdate {
        forbid_self_approval: Some(false),
        ..change()
    };
    store
        .publish_version(strict.id, relaxed, None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    let own = start(
        &*store,
        "booking.refund_requested",
        "booking",
        2,
        1,
        at(11, 3, 0),
    )
    .await
    .unwrap();
    assert_eq!(own.template_version, 2);
    assert_eq!(own.steps[0].eligible_user_ids, vec![uid(1), uid(2)]);
}

/// The demo's templates 1 to 3 allow self-approval, as they always did: an initiator who holds
/// a step's role stays eligible on it.
async fn case_demo_templates_behave_as_before<S: ContractStore>(store: Arc<S>) {
    for index in 0..3 {
        let id = tid(index as i64 + 1);
        let current = store.template(id).await.unwrap();
        assert!(!current.forbid_self_approval, "template {id}");
        assert_eq!(current, demo_template(index));
    }
    // User 1 (sales manager) starts a price update and approves its first step itself.
    let own = start(&*store, PRICE_UPDATE, "unit", 6, 1, at(12, 0, 0))
        .await
        .unwrap();
    assert_eq!(own.steps[0].eligible_user_ids, vec![uid(1)]);
    let approved = approve(&*store, own.steps[0].id, 1, None, at(12, 1, 0))
        .await
        .unwrap();
    assert_eq!(approved.status, InstanceStatus::InProgress);
    // User 2 (finance manager) starts a commission and is the approver of its step 1.
    let commission = start(&*store, COMMISSION, "commission", 3, 2, at(12, 2, 0))
        .await
        .unwrap();
    assert_eq!(commission.steps[0].eligible_user_ids, vec![uid(2)]);
}
