//! Route tests: a user's inbox (`GET /steps/pending`).

use serde_json::json;
use warp::http::StatusCode;

use super::fixtures::{self, INBOX_JSON};
use super::*;
use crate::domain::model::InboxPage;

const PENDING: &str = "/api/v1/workflow/steps/pending";

// ----- against the port -----

#[tokio::test]
async fn pending_steps_hand_the_port_the_user_and_limit_and_render_the_page() {
    let h = mock(|port| {
        let mut sequence = mockall::Sequence::new();
        // The default page size, then the one asked for.
        for limit in [50, 7] {
            port.expect_pending_steps()
                .times(1)
                .in_sequence(&mut sequence)
                .withf(move |user, l, after| {
                    *user == fixtures::user(2) && *l == limit && after.is_none()
                })
                .returning(|_, _, _| {
                    answer(InboxPage {
                        items: vec![fixtures::pending_step()],
                        next: None,
                    })
                });
        }
    });
    for query in ["?user_id=2", "?limit=7&user_id=2"] {
        let res = h.get(&format!("{PENDING}{query}")).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
        assert_json(&res);
        assert_eq!(res.text, INBOX_JSON);
    }
}

#[tokio::test]
async fn pending_steps_with_bad_query_are_422() {
    let h = unreached();
    let cases = [
        ("", "user_id"),
        ("?limit=5", "user_id"),
        ("?user_id=abc", "user_id"),
        ("?user_id=0", "user_id"),
        ("?user_id=-1", "user_id"),
        ("?user_id=", "user_id"),
        ("?user_id=1&limit=-1", "limit"),
        ("?user_id=1&limit=ten", "limit"),
        ("?user_id=1&page=2", "page"),
        ("?user_id=1&after=", "after"),
        ("?user_id=1&after=bm9wZQ", "after"),
    ];
    for (query, field) in cases {
        let res = h.get(&format!("{PENDING}{query}")).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query {query:?}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn pending_steps_list_the_users_inbox() {
    let h = store().await;
    let res = h.get(&format!("{PENDING}?user_id=1")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let items = array(&res.body["items"]);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["step_id"], json!(1));
    assert_eq!(item["step_order"], json!(1));
    assert_eq!(item["instance_id"], json!(1));
    assert_eq!(item["event"], json!("booking.cancellation_requested"));
    assert_eq!(item["entity_type"], json!("booking"));
    assert_eq!(item["entity_id"], json!(1));
    assert_eq!(
        item["approver"],
        json!({"type": "role", "role": "sales_manager"})
    );
    assert_time(&item["activated_at"], "activated_at");

    // Step 2 is not reached yet, so user 2 has nothing; user 3 approves nothing.
    for user in [2, 3, 99] {
        let res = h.get(&format!("{PENDING}?user_id={user}")).await;
        assert_eq!(res.status, StatusCode::OK, "user {user}: {}", res.body);
        assert_eq!(res.body, json!({"items": [], "next": null}), "user {user}");
    }
}

#[tokio::test]
async fn pending_steps_honour_the_limit() {
    let h = store().await;
    assert_eq!(
        h.trigger(&booking_trigger(2)).await.status,
        StatusCode::CREATED
    );
    let all = h.get(&format!("{PENDING}?user_id=1")).await;
    let ids: Vec<_> = array(&all.body["items"])
        .iter()
        .map(|i| (i["step_id"].clone(), i["instance_id"].clone()))
        .collect();
    assert_eq!(ids, [(json!(1), json!(1)), (json!(3), json!(2))]);

    let one = h.get(&format!("{PENDING}?user_id=1&limit=1")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let items = array(&one.body["items"]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["step_id"], json!(1));

    let most = h.get(&format!("{PENDING}?limit=500&user_id=1")).await;
    assert_eq!(most.status, StatusCode::OK, "{}", most.body);
    assert_eq!(array(&most.body["items"]).len(), 2);
    assert_eq!(most.body["next"], json!(null), "the last page has no next");
}

#[tokio::test]
async fn pending_steps_page_on_with_the_cursor_to_the_end() {
    let h = store().await;
    for booking in 2..=5 {
        assert_eq!(
            h.trigger(&booking_trigger(booking)).await.status,
            StatusCode::CREATED
        );
    }
    // Five steps awaiting user 1, two a page: 2, 2, 1, each page starting where the last ended.
    let mut seen = Vec::new();
    let mut query = format!("{PENDING}?user_id=1&limit=2");
    let mut pages = 0;
    loop {
        let res = h.get(&query).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
        pages += 1;
        seen.extend(
            array(&res.body["items"])
                .iter()
                .map(|i| i["step_id"].clone()),
        );
        match res.body["next"].as_str() {
            Some(next) => query = format!("{PENDING}?user_id=1&limit=2&after={next}"),
            None => break,
        }
        assert!(pages < 5, "the pages never end: {seen:?}");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [json!(1), json!(3), json!(5), json!(7), json!(9)]);
}

#[tokio::test]
async fn pending_steps_with_a_limit_out_of_range_are_422() {
    // The range is the service's rule.
    let h = store().await;
    for query in ["?user_id=1&limit=0", "?user_id=1&limit=501"] {
        let res = h.get(&format!("{PENDING}{query}")).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query {query:?}: {}",
            res.body
        );
        assert_validation(&res, "limit");
    }
}
