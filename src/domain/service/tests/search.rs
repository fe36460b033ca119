//! Tests of the search use case (domain core, driving port): the limit is the service's rule,
//! the filter reaches the store unchanged, and paging is decided here from one instance more
//! than the page holds, whatever the store.

use mockall::predicate::eq;

use super::fixtures::{assert_validation, clock, repo, service, stored_instance};
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    EntityId, EntityType, Instance, InstanceFilter, InstanceId, InstancePage, InstanceStatus,
};
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};
use crate::domain::service::MAX_SEARCH_LIMIT;

fn iid(n: i64) -> InstanceId {
    InstanceId::new(n).unwrap()
}

/// `stored_instance()` renumbered, without its audit, as a search returns it.
fn found(id: i64) -> Instance {
    Instance {
        id: iid(id),
        audit: Vec::new(),
        ..stored_instance()
    }
}

fn booking_42_in_progress() -> InstanceFilter {
    InstanceFilter::new(
        Some(EntityType::new("booking").unwrap()),
        Some(EntityId::new(42).unwrap()),
        None,
        Some(InstanceStatus::InProgress),
        None,
    )
    .unwrap()
}

#[test]
fn an_entity_id_needs_its_entity_type() {
    let error =
        InstanceFilter::new(None, Some(EntityId::new(42).unwrap()), None, None, None).unwrap_err();
    assert_validation(error, "entity_id");
}

#[tokio::test]
async fn search_refuses_a_limit_out_of_range_without_asking_the_store() {
    let mut repo = repo();
    repo.expect_search_instances().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    for limit in [0, MAX_SEARCH_LIMIT + 1] {
        let error = service
            .search_instances(InstanceFilter::default(), limit, None)
            .await
            .unwrap_err();
        assert_validation(error, "limit");
    }
}

#[tokio::test]
async fn a_full_page_asks_one_more_and_points_at_its_last_instance() {
    let mut repo = repo();
    repo.expect_search_instances()
        .with(eq(booking_42_in_progress()), eq(3), eq(Some(iid(90))))
        .times(1)
        .returning(|_, _, _| Box::pin(async { Ok(vec![found(80), found(70), found(60)]) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let page = service
        .search_instances(booking_42_in_progress(), 2, Some(iid(90)))
        .await;

    assert_eq!(
        page,
        Ok(InstancePage {
            items: vec![found(80), found(70)],
            next: Some(iid(70)),
        })
    );
}

#[tokio::test]
async fn the_last_page_has_no_next_even_when_it_is_exactly_full() {
    let mut repo = repo();
    let mut answers = vec![vec![found(5), found(4)], vec![found(3)], vec![]];
    repo.expect_search_instances()
        .with(eq(InstanceFilter::default()), eq(3), eq(None))
        .times(3)
        .returning(move |_, _, _| {
            let answer = answers.remove(0);
            Box::pin(async move { Ok(answer) })
        });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));
    let search = || service.search_instances(InstanceFilter::default(), 2, None);

    let exactly_full = search().await.unwrap();
    assert_eq!(exactly_full.items, vec![found(5), found(4)]);
    assert_eq!(exactly_full.next, None);
    let short = search().await.unwrap();
    assert_eq!((short.items, short.next), (vec![found(3)], None));
    let empty = search().await.unwrap();
    assert_eq!((empty.items, empty.next), (vec![], None));
}

#[tokio::test]
async fn the_largest_page_asks_the_store_for_one_more() {
    let mut repo = repo();
    repo.expect_search_instances()
        .with(
            eq(InstanceFilter::default()),
            eq(MAX_SEARCH_LIMIT + 1),
            eq(None),
        )
        .times(1)
        .returning(|_, _, _| Box::pin(async { Ok(Vec::new()) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let page = service
        .search_instances(InstanceFilter::default(), MAX_SEARCH_LIMIT, None)
        .await;

    assert_eq!(
        page,
        Ok(InstancePage {
            items: vec![],
            next: None
        })
    );
}

#[tokio::test]
async fn store_trouble_is_passed_on() {
    let mut repo = repo();
    repo.expect_search_instances()
        .times(1)
        .returning(|_, _, _| Box::pin(async { Err(WorkflowError::Unavailable("down".into())) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(
        service
            .search_instances(InstanceFilter::default(), 50, None)
            .await,
        Err(WorkflowError::Unavailable("down".into()))
    );
}
