//! Route tests: finding instances (`GET /instances` with filters and a cursor).

use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures::{self, INSTANCE_JSON};
use super::*;
use crate::domain::model::{
    EntityFilter, EntityId, EntityType, EventName, InstanceFilter, InstanceId, InstancePage,
    InstanceStatus,
};
use crate::inbound::http::handlers::search::encode_cursor;

fn iid(n: i64) -> InstanceId {
    InstanceId::new(n).unwrap()
}

/// [`fixtures::instance`] as a search lists it: byte for byte the instance, without `audit`.
fn item_json() -> String {
    let (before_audit, _) = INSTANCE_JSON
        .split_once(r#","audit":["#)
        .expect("the instance has an audit key");
    format!("{before_audit}}}")
}

// ----- against the port -----

#[tokio::test]
async fn search_hands_the_port_the_typed_query_and_renders_the_page_without_audit() {
    let h = mock(|port| {
        port.expect_search_instances()
            .times(1)
            .withf(|filter, limit, after| {
                *filter
                    == InstanceFilter {
                        entity: Some(EntityFilter {
                            entity_type: EntityType::new("booking").unwrap(),
                            entity_id: Some(EntityId::new(2).unwrap()),
                        }),
                        event: Some(EventName::new("booking.cancellation_requested").unwrap()),
                        status: Some(InstanceStatus::InProgress),
                        initiated_by: Some(fixtures::user(3)),
                    }
                    && *limit == 20
                    && *after == Some(iid(120))
            })
            .returning(|_, _, _| {
                answer(InstancePage {
                    items: vec![fixtures::instance()],
                    next: Some(iid(2)),
                })
            });
    });
    let query = format!(
        "?entity_type=booking&entity_id=2&event=booking.cancellation_requested&status=in_progress\
         &initiated_by=3&limit=20&after={}",
        encode_cursor(iid(120))
    );

    let res = h.get(&format!("{INSTANCES}{query}")).await;

    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let expected = format!(
        r#"{{"items":[{}],"next":"{}"}}"#,
        item_json(),
        encode_cursor(iid(2))
    );
    assert_eq!(res.text, expected);
}

#[tokio::test]
async fn without_parameters_the_port_gets_every_instance_from_the_newest_50() {
    let h = mock(|port| {
        port.expect_search_instances()
            .times(1)
            .withf(|filter, limit, after| {
                *filter == InstanceFilter::default() && *limit == 50 && after.is_none()
            })
            .returning(|_, _, _| {
                answer(InstancePage {
                    items: vec![],
                    next: None,
                })
            });
    });
    let res = h.get(INSTANCES).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.text, r#"{"items":[],"next":null}"#);
}

#[tokio::test]
async fn search_with_a_bad_query_is_422_naming_the_parameter() {
    let h = unreached();
    let cases = [
        ("?limit=-1", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=1.5", "limit"),
        ("?status=open", "status"),
        ("?status=IN_PROGRESS", "status"),
        ("?entity_id=2", "entity_id"),
        ("?entity_type=booking&entity_id=abc", "entity_id"),
        ("?entity_type=booking&entity_id=0", "entity_id"),
        ("?entity_type=Booking%20Request", "entity_type"),
        ("?entity_type=", "entity_type"),
        ("?event=x%00y", "event"),
        ("?initiated_by=-3", "initiated_by"),
        ("?initiated_by=three", "initiated_by"),
        ("?after=", "after"),
        ("?after=not-a-cursor", "after"),
        ("?after=MTIw", "after"),
        ("?user_id=1", "user_id"),
        ("?entity_type=booking&sort=asc", "sort"),
    ];
    for (query, parameter) in cases {
        let res = h.get(&format!("{INSTANCES}{query}")).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query {query:?}: {}",
            res.body
        );
        assert_validation(&res, parameter);
    }
}

#[tokio::test]
async fn the_ports_refusals_keep_their_status() {
    let h = mock(|port| {
        port.expect_search_instances()
            .times(2)
            .returning(|_, limit, _| {
                if limit == 0 {
                    refuse(WorkflowError::validation(
                        "limit",
                        "must be between 1 and 500",
                    ))
                } else {
                    refuse(WorkflowError::Unavailable("database down".to_owned()))
                }
            });
    });
    let res = h.get(&format!("{INSTANCES}?limit=0")).await;
    assert_validation(&res, "limit");
    let res = h.get(&format!("{INSTANCES}?limit=5")).await;
    assert_error(&res, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

#[tokio::test]
async fn the_search_route_shadows_neither_the_trigger_nor_one_instance() {
    let h = mock(|port| {
        port.expect_instance()
            .times(1)
            .withf(|id| *id == iid(2))
            .returning(|_| answer(fixtures::instance()));
        port.expect_trigger()
            .times(1)
            .returning(|_, _| fresh(fixtures::instance()));
        port.expect_search_instances().never();
    });
    let one = h.get(&format!("{INSTANCES}/2")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.text, INSTANCE_JSON);
    let created = h.trigger(&booking_trigger(2)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for method in ["PUT", "DELETE", "PATCH"] {
        let res = h.send(request().method(method).path(INSTANCES)).await;
        assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    let res = h.get(&format!("{INSTANCES}/2/steps")).await;
    assert_error(&res, StatusCode::NOT_FOUND, "not_found");
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn an_entitys_instances_are_found_and_paged_newest_first() {
    let h = store().await;
    // Instance 1 is booking 1's (the fixture); 2 to 4 are booking 2's to 4's.
    for booking in 2..=4 {
        assert_eq!(
            h.trigger(&booking_trigger(booking)).await.status,
            StatusCode::CREATED
        );
    }

    let res = h
        .get(&format!("{INSTANCES}?entity_type=booking&entity_id=3"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let items = array(&res.body["items"]);
    assert_eq!(items.len(), 1, "{}", res.body);
    assert_eq!(items[0]["id"], json!(3));
    assert_eq!(items[0]["entity_id"], json!(3));
    assert_eq!(step_statuses(&items[0]), ["awaiting_action", "pending"]);
    assert!(items[0].get("audit").is_none(), "{}", items[0]);
    assert_time(&items[0]["created_at"], "created_at");
    assert_time(
        &items[0]["steps"][0]["activated_at"],
        "steps[0].activated_at",
    );
    assert_eq!(res.body["next"], json!(null));

    // Two at a time: 4 and 3, then 2 and 1, the last page without a next.
    let first = h
        .get(&format!("{INSTANCES}?entity_type=booking&limit=2"))
        .await;
    let ids = |res: &Res| -> Vec<i64> {
        array(&res.body["items"])
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&first), [4, 3]);
    let next = first.body["next"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let second = h
        .get(&format!(
            "{INSTANCES}?entity_type=booking&limit=2&after={next}"
        ))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(ids(&second), [2, 1]);
    assert_eq!(second.body["next"], json!(null));

    let none = h
        .get(&format!("{INSTANCES}?entity_type=unit&status=in_progress"))
        .await;
    assert_eq!(none.body, json!({"items": [], "next": null}));
}

#[tokio::test]
async fn a_limit_out_of_range_is_422_from_the_service() {
    let h = store().await;
    for query in ["?limit=0", "?limit=501"] {
        let res = h.get(&format!("{INSTANCES}{query}")).await;
        assert_validation(&res, "limit");
    }
    let res = h.get(&format!("{INSTANCES}?limit=500")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}
