//! Contract: finding instances (`search_instances`) by entity, event, status and initiator,
//! newest first, below a cursor, on both stores; and paging through the service until `next`
//! is `None`, which must visit every match exactly once.
//!
//! What should match is worked out here by comparing fields, independently of the domain's
//! `InstanceFilter::matches` (which the in-memory store itself uses).

use std::sync::Arc;

use approvals::app;
use approvals::domain::WorkflowError;
use approvals::domain::model::{
    EntityId, EntityType, EventName, Instance, InstanceFilter, InstanceId, InstanceStatus, UserId,
};
use approvals::domain::ports::WorkflowUseCases;
use approvals::domain::service::MAX_SEARCH_LIMIT;
use tokio::sync::Notify;

use super::{ContractStore, approve, reject, start};
use crate::fixtures::{CANCELLATION, COMMISSION, PRICE_UPDATE, at, entity_type, event, uid};

contract_tests! {
    case_search_filters_orders_and_pages =>
        memory_search_filters_orders_and_pages, postgres_search_filters_orders_and_pages;
}

/// The criteria of one search, as plain values.
#[derive(Debug, Clone, Copy)]
struct Criteria {
    entity: Option<(&'static str, Option<i64>)>,
    event: Option<&'static str>,
    status: Option<InstanceStatus>,
    initiated_by: Option<i64>,
}

impl Criteria {
    fn filter(self) -> InstanceFilter {
        InstanceFilter::new(
            self.entity.map(|(kind, _)| entity_type(kind)),
            self.entity
                .and_then(|(_, id)| id)
                .map(|id| EntityId::new(id).unwrap()),
            self.event.map(event),
            self.status,
            self.initiated_by.map(uid),
        )
        .unwrap()
    }

    /// Whether `instance` should match, field by field.
    fn expects(self, instance: &Instance) -> bool {
        let entity = match self.entity {
            None => true,
            Some((kind, id)) => {
                instance.entity_type.as_str() == kind
                    && id.is_none_or(|id| instance.entity_id.get() == id)
            }
        };
        entity
            && self.event.is_none_or(|e| instance.event.as_str() == e)
            && self.status.is_none_or(|s| instance.status == s)
            && self
                .initiated_by
                .is_none_or(|u| instance.initiated_by.get() == u)
    }
}

/// Every combination of the criteria the stored instances can tell apart, including some that
/// match nothing.
fn every_combination() -> Vec<Criteria> {
    let entities = [
        None,
        Some(("booking", None)),
        Some(("booking", Some(1))),
        Some(("unit", Some(1))),
        Some(("commission", None)),
        Some(("commission", Some(9))),
    ];
    let events = [None, Some(CANCELLATION), Some(PRICE_UPDATE)];
    let statuses = [
        None,
        Some(InstanceStatus::InProgress),
        Some(InstanceStatus::Approved),
        Some(InstanceStatus::Rejected),
        Some(InstanceStatus::Cancelled),
    ];
    let initiators = [None, Some(1), Some(3)];
    let mut all = Vec::new();
    for entity in entities {
        for event in events {
            for status in statuses {
                for initiated_by in initiators {
                    all.push(Criteria {
                        entity,
                        event,
                        status,
                        initiated_by,
                    });
                }
            }
        }
    }
    all
}

/// `instance` as a search returns it: its steps, no audit.
fn listed(instance: &Instance) -> Instance {
    Instance {
        audit: Vec::new(),
        ..instance.clone()
    }
}

fn ids(instances: &[Instance]) -> Vec<i64> {
    instances.iter().map(|i| i.id.get()).collect()
}

/// Nine instances over three events, two entity kinds sharing entity ids, three initiators and
/// three statuses; returns them as stored at the end, oldest first.
async fn nine_instances<S: ContractStore>(store: &S) -> Vec<Instance> {
    let mut created = Vec::new();
    let specs: [(&str, &str, i64, i64); 9] = [
        (CANCELLATION, "booking", 1, 3),
        (PRICE_UPDATE, "unit", 1, 1),
        (COMMISSION, "commission", 1, 3),
        (CANCELLATION, "booking", 2, 1),
        (PRICE_UPDATE, "unit", 2, 3),
        (CANCELLATION, "booking", 3, 2),
        (COMMISSION, "commission", 2, 1),
        (PRICE_UPDATE, "unit", 3, 3),
        (CANCELLATION, "booking", 4, 3),
    ];
    for (n, (event_name, kind, entity, by)) in specs.into_iter().enumerate() {
        let instance = start(store, event_name, kind, entity, by, at(9, n as u32, 0))
            .await
            .unwrap();
        created.push(instance);
    }
    // Booking 1 rejected at step 1, unit 1 approved by both steps, booking 3 approved at step 1
    // only (still in progress).
    reject(store, created[0].steps[0].id, 1, "No.", at(10, 0, 0))
        .await
        .unwrap();
    approve(store, created[1].steps[0].id, 1, None, at(10, 1, 0))
        .await
        .unwrap();
    approve(store, created[1].steps[1].id, 2, None, at(10, 2, 0))
        .await
        .unwrap();
    approve(store, created[5].steps[0].id, 1, None, at(10, 3, 0))
        .await
        .unwrap();
    // A second instance for booking 1 now that the first has ended: the newest of all.
    created.push(
        start(store, CANCELLATION, "booking", 1, 1, at(10, 4, 0))
            .await
            .unwrap(),
    );
    let mut stored = Vec::new();
    for instance in &created {
        stored.push(store.instance(instance.id).await.unwrap());
    }
    stored
}

async fn case_search_filters_orders_and_pages<S: ContractStore>(store: Arc<S>) {
    let all = nine_instances(&*store).await;
    let statuses: Vec<_> = all.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == InstanceStatus::Rejected)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == InstanceStatus::Approved)
            .count(),
        1
    );
    let newest_first: Vec<Instance> = all.iter().rev().map(listed).collect();

    // No criterion: everything, newest first, each with its steps and no audit.
    let everything = store
        .search_instances(InstanceFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(everything, newest_first);
    assert!(ids(&everything).is_sorted_by(|a, b| a > b));

    // Each criterion alone, spelled out.
    let booking_1 = Criteria {
        entity: Some(("booking", Some(1))),
        event: None,
        status: None,
        initiated_by: None,
    };
    let found = store
        .search_instances(booking_1.filter(), 100, None)
        .await
        .unwrap();
    assert_eq!(ids(&found), [all[9].id.get(), all[0].id.get()]);
    assert_eq!(found[1].status, InstanceStatus::Rejected);
    assert_eq!(
        found[1].steps, all[0].steps,
        "steps come with each instance"
    );
    let unit_1 = Criteria {
        entity: Some(("unit", Some(1))),
        ..booking_1
    };
    let found = store
        .search_instances(unit_1.filter(), 100, None)
        .await
        .unwrap();
    assert_eq!(ids(&found), [all[1].id.get()], "entity ids are per type");

    // Every combination against the expectation, the whole result and then in pages.
    let service = app::service(Arc::clone(&store), Arc::new(Notify::new()));
    for criteria in every_combination() {
        let expected: Vec<Instance> = newest_first
            .iter()
            .filter(|i| criteria.expects(i))
            .cloned()
            .collect();
        let found = store
            .search_instances(criteria.filter(), 100, None)
            .await
            .unwrap();
        assert_eq!(found, expected, "{criteria:?}");

        // Below a cursor: only older instances.
        if let Some(first) = expected.first() {
            let below = store
                .search_instances(criteria.filter(), 100, Some(first.id))
                .await
                .unwrap();
            assert_eq!(below, expected[1..], "{criteria:?} below {}", first.id);
        }

        // Two at a time through the service until `next` is None: every match once, in order.
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = service
                .search_instances(criteria.filter(), 2, after)
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= 2, "{criteria:?}");
            seen.extend(page.items);
            match page.next {
                Some(next) => {
                    assert_eq!(Some(next), seen.last().map(|i| i.id), "{criteria:?}");
                    after = Some(next);
                }
                None => break,
            }
            assert!(pages <= all.len(), "{criteria:?}: paging does not end");
        }
        assert_eq!(seen, expected, "{criteria:?} in pages");
        // No empty last page: exactly as many pages as needed (one when nothing matches).
        assert_eq!(pages, expected.len().div_ceil(2).max(1), "{criteria:?}");
    }

    // The limit: the store returns at most that many, newest first.
    for limit in [1, 3] {
        let found = store
            .search_instances(InstanceFilter::default(), limit, None)
            .await
            .unwrap();
        assert_eq!(found, newest_first[..limit as usize]);
    }
    // A cursor past the newest id, and the oldest id: everything, then nothing.
    let beyond = InstanceId::new(all[9].id.get() + 1_000).unwrap();
    assert_eq!(
        store
            .search_instances(InstanceFilter::default(), 100, Some(beyond))
            .await
            .unwrap(),
        newest_first
    );
    assert_eq!(
        store
            .search_instances(InstanceFilter::default(), 100, Some(all[0].id))
            .await
            .unwrap(),
        vec![]
    );
    // The service's bounds.
    for limit in [0, MAX_SEARCH_LIMIT + 1] {
        assert!(
            matches!(
                service
                    .search_instances(InstanceFilter::default(), limit, None)
                    .await,
                Err(WorkflowError::Validation { ref field, .. }) if field == "limit"
            ),
            "limit {limit}"
        );
    }
    let page = service
        .search_instances(InstanceFilter::default(), MAX_SEARCH_LIMIT, None)
        .await
        .unwrap();
    assert_eq!((page.items, page.next), (newest_first.clone(), None));
    let page = service
        .search_instances(InstanceFilter::default(), 1, None)
        .await
        .unwrap();
    assert_eq!(page.items, newest_first[..1]);
    assert_eq!(page.next, Some(all[9].id));

    // Unknown values are no error, just no match.
    let nobody = InstanceFilter::new(
        Some(EntityType::new("parking_space").unwrap()),
        None,
        Some(EventName::new("nothing.happened").unwrap()),
        None,
        Some(UserId::new(999).unwrap()),
    )
    .unwrap();
    assert_eq!(
        store.search_instances(nobody, 100, None).await.unwrap(),
        vec![]
    );
}
