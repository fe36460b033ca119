//! Contract: templates are read, created and updated under the rules the README states: one
//! active template per event, no change while an instance uses it, a version bump on every
//! change, and instances built from an outdated version refused.

use approvals::domain::model::Done;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{NewTemplate, Template, TemplateUpdate};

use super::{ContractStore, new_instance, reject, start};
use crate::fixtures::{
    CANCELLATION, PRICE_UPDATE, at, by_role, by_user, demo_template, entity_type, event, request,
    step, stored, template, tid, uid,
};

contract_tests! {
    case_templates => memory_templates, postgres_templates;
    case_stale_template_version_is_refused =>
        memory_stale_template_version_is_refused, postgres_stale_template_version_is_refused;
    case_create_template => memory_create_template, postgres_create_template;
}

async fn case_templates<S: ContractStore>(store: Arc<S>) {
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(demo_template(0))
    );
    assert_eq!(
        store
            .active_template(&event("no.such_event"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.template(tid(3)).await.unwrap(), demo_template(2));
    assert!(matches!(
        store.template(tid(999)).await,
        Err(WorkflowError::NotFound { .. })
    ));

    let unit_template = tid(2);
    let update = TemplateUpdate {
        name: Some("Unit price change".to_owned()),
        is_active: None,
        forbid_self_approval: None,
        steps: Some(vec![step(1, "Finance only", by_role("finance_manager"))]),
    };
    assert!(matches!(
        store.update_template(tid(999), update.clone()).await,
        Err(WorkflowError::NotFound { .. })
    ));

    // In use: refused, nothing changed.
    let running = start(&*store, PRICE_UPDATE, "unit", 5, 3, at(17, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        store
            .update_template(unit_template, update.clone())
            .await
            .unwrap_err(),
        WorkflowError::TemplateInUse { template: 2 }
    );
    assert_eq!(
        store.template(unit_template).await.unwrap(),
        demo_template(1)
    );

    // Ended: the update applies and bumps the version.
    reject(&*store, running.steps[0].id, 1, "withdrawn", at(17, 1, 0))
        .await
        .unwrap();
    let updated = store
        .update_template(unit_template, update.clone())
        .await
        .unwrap();
    let expected = Template {
        name: "Unit price change".to_owned(),
        version: 2,
        steps: update.steps.clone().unwrap(),
        ..demo_template(1)
    };
    assert_eq!(updated, expected);
    assert_eq!(store.template(unit_template).await.unwrap(), expected);
    assert_eq!(
        store.active_template(&event(PRICE_UPDATE)).await.unwrap(),
        Some(expected.clone())
    );
    // New instances use the new version; the ended one keeps its copy of the old steps.
    let next = start(&*store, PRICE_UPDATE, "unit", 5, 3, at(17, 2, 0))
        .await
        .unwrap();
    assert_eq!(next.template_version, 2);
    assert_eq!(next.steps.len(), 1);
    assert_eq!(next.steps[0].eligible_user_ids, vec![uid(2)]);
    assert_eq!(store.instance(running.id).await.unwrap().steps.len(), 2);

    // A second template for an event may exist inactive, but not be activated beside another.
    let alternative = template(
        20,
        "Cancellation, finance only",
        CANCELLATION,
        "booking",
        false,
        vec![step(1, "Finance review", by_role("finance_manager"))],
    );
    store.put_template(alternative.clone()).await;
    assert_eq!(store.template(alternative.id).await.unwrap(), alternative);
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(demo_template(0))
    );
    let activate = TemplateUpdate {
        name: None,
        is_active: Some(true),
        forbid_self_approval: None,
        steps: None,
    };
    assert_eq!(
        store
            .update_template(alternative.id, activate.clone())
            .await
            .unwrap_err(),
        WorkflowError::TemplateConflict {
            event: CANCELLATION.to_owned()
        }
    );
    assert_eq!(store.template(alternative.id).await.unwrap(), alternative);
    assert_eq!(store.template(tid(1)).await.unwrap(), demo_template(0));

    // Deactivate the first, then the second may be activated.
    let deactivated = store
        .update_template(
            tid(1),
            TemplateUpdate {
                name: None,
                is_active: Some(false),
                forbid_self_approval: None,
                steps: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        deactivated,
        Template {
            is_active: false,
            version: 2,
            ..demo_template(0)
        }
    );
    let activated = store
        .update_template(alternative.id, activate)
        .await
        .unwrap();
    let expected = Template {
        is_active: true,
        version: 2,
        ..alternative
    };
    assert_eq!(activated, expected);
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(expected)
    );
}

/// An instance built from a template that has changed since is refused, and nothing is stored:
/// instances always copy the template as it is when they are stored.
async fn case_stale_template_version_is_refused<S: ContractStore>(store: Arc<S>) {
    let stale = new_instance(
        &*store,
        request(PRICE_UPDATE, "unit", 7, 1, None),
        at(9, 0, 0),
    )
    .await;
    let renamed = TemplateUpdate {
        name: Some("Unit price change, v2".to_owned()),
        is_active: None,
        forbid_self_approval: None,
        steps: None,
    };
    let template = store.update_template(tid(2), renamed).await.unwrap();
    assert_eq!(template.version, 2);
    assert!(matches!(
        store
            .create_instance(stale, None)
            .await
            .and_then(Done::unkeyed),
        Err(WorkflowError::Unavailable(_))
    ));
    assert!(
        store
            .pending_steps(uid(1), 50, None)
            .await
            .unwrap()
            .iter()
            .all(|p| p.entity_id.get() != 7)
    );
    let fresh = new_instance(
        &*store,
        request(PRICE_UPDATE, "unit", 7, 1, None),
        at(9, 0, 1),
    )
    .await;
    let stored = store
        .create_instance(fresh, None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(stored.template_version, 2);
}

/// Creating a template: the store numbers it after the others, at version 1, and refuses a
/// second active template for an event (with the error an update activating one gets), storing
/// nothing; an inactive one beside the active one is fine.
async fn case_create_template<S: ContractStore>(store: Arc<S>) {
    let refund = NewTemplate {
        name: "Booking refund".to_owned(),
        event: event("booking.refund_requested"),
        entity_type: entity_type("booking"),
        is_active: true,
        forbid_self_approval: false,
        steps: vec![
            step(1, "Finance review", by_role("finance_manager")),
            step(2, "Sales sign-off", by_user(1)),
        ],
    };
    let created = store
        .create_template(refund.clone(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(created, stored(5, refund));
    assert_eq!(store.template(created.id).await.unwrap(), created);
    assert_eq!(
        store
            .active_template(&event("booking.refund_requested"))
            .await
            .unwrap(),
        Some(created.clone())
    );
    let running = start(
        &*store,
        "booking.refund_requested",
        "booking",
        1,
        3,
        at(8, 0, 0),
    )
    .await
    .unwrap();
    assert_eq!(running.template_id, created.id);
    assert_eq!(running.template_version, 1);
    assert_eq!(running.steps[0].eligible_user_ids, vec![uid(2)]);
    assert_eq!(running.steps[1].eligible_user_ids, vec![uid(1)]);

    // A second active template for an event is refused; the first stays the active one.
    let finance_only = |is_active| NewTemplate {
        name: "Cancellation, finance only".to_owned(),
        event: event(CANCELLATION),
        entity_type: entity_type("booking"),
        is_active,
        forbid_self_approval: false,
        steps: vec![step(1, "Finance review", by_role("finance_manager"))],
    };
    let refused = store
        .create_template(finance_only(true), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();
    assert_eq!(
        refused,
        WorkflowError::TemplateConflict {
            event: CANCELLATION.to_owned()
        }
    );
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(demo_template(0))
    );

    // Inactive, it is stored; activating it is refused with the very same error.
    let inactive = store
        .create_template(finance_only(false), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert!(
        ![tid(1), tid(2), tid(3), tid(4)].contains(&inactive.id),
        "a new id: {inactive:?}"
    );
    assert_eq!(inactive, stored(inactive.id.get(), finance_only(false)));
    assert_eq!(store.template(inactive.id).await.unwrap(), inactive);
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(demo_template(0))
    );
    let activate = TemplateUpdate {
        name: None,
        is_active: Some(true),
        forbid_self_approval: None,
        steps: None,
    };
    assert_eq!(
        store
            .update_template(inactive.id, activate)
            .await
            .unwrap_err(),
        refused,
        "create and update refuse a second active template alike"
    );
    assert_eq!(store.template(inactive.id).await.unwrap(), inactive);
}
