//! Route tests: reading and changing templates (`GET` and `PUT /templates/{id}`).

use serde_json::json;
use warp::http::StatusCode;

use super::fixtures::{self, TEMPLATE_JSON};
use super::*;
use crate::domain::model::{TemplateId, TemplateStep, TemplateUpdate};

const TEMPLATES: &str = "/api/v1/workflow/templates";

// ----- against the port -----

#[tokio::test]
async fn get_template_renders_the_template() {
    let h = mock(|port| {
        port.expect_template()
            .times(1)
            .withf(|id| *id == TemplateId::new(2).unwrap())
            .returning(|_| answer(fixtures::template()));
    });
    let res = h.get(&format!("{TEMPLATES}/2")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, TEMPLATE_JSON);
}

#[tokio::test]
async fn put_template_hands_the_port_the_update_with_steps_numbered() {
    let expected = TemplateUpdate {
        name: Some("Strict".to_owned()),
        is_active: Some(false),
        forbid_self_approval: None,
        steps: Some(vec![
            TemplateStep {
                step_order: 1,
                name: "Finance first".to_owned(),
                approver: fixtures::by_user(2),
                quorum: Default::default(),
                when: None,
                due: None,
            },
            TemplateStep {
                step_order: 2,
                name: "Sales sign-off".to_owned(),
                approver: fixtures::role("sales_manager"),
                quorum: Default::default(),
                when: None,
                due: None,
            },
        ]),
    };
    let h = mock(move |port| {
        port.expect_update_template()
            .times(1)
            .withf(move |id, update| *id == TemplateId::new(2).unwrap() && *update == expected)
            .returning(|_, _| answer(fixtures::template()));
    });
    let res = h
        .put(
            &format!("{TEMPLATES}/2"),
            &json!({
                "name": "Strict",
                "is_active": false,
                "steps": [
                    {"name": "Finance first", "approver": {"type": "user", "user_id": 2}},
                    {"name": "Sales sign-off", "approver": {"type": "role", "role": "sales_manager"}}
                ]
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, TEMPLATE_JSON);
}

#[tokio::test]
async fn put_template_with_invalid_body_is_422() {
    let h = unreached();
    let path = format!("{TEMPLATES}/2");
    assert_validation(&h.put(&path, &json!({})).await, "body");
    let cases = [
        (
            json!({"steps": [{"name": "A", "approver": {"type": "group", "group": "x"}}]}),
            "steps[0].approver",
        ),
        (
            json!({"steps": [
                {"name": "A", "approver": {"type": "user", "user_id": 1}},
                {"name": "B", "approver": {"type": "wizard"}}
            ]}),
            "steps[1].approver.type",
        ),
        (
            json!({"steps": [{"name": "A", "approver": {"type": "user", "user_id": "2"}}]}),
            "steps[0].approver.user_id",
        ),
        (
            json!({"steps": [{"name": "A", "approver": {"type": "role"}}]}),
            "steps[0].approver.role",
        ),
        (
            json!({"steps": [{"approver": {"type": "user", "user_id": 1}}]}),
            "steps[0].name",
        ),
        (json!({"steps": "none"}), "steps"),
        (json!({"is_active": "yes"}), "is_active"),
        (json!({"version": 7}), "version"),
    ];
    for (body, field) in cases {
        let res = h.put(&path, &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
}

#[tokio::test]
async fn template_malformed_id_is_404_without_asking_the_port() {
    let h = unreached();
    for id in ["abc", "0", "-1", "-3", "9223372036854775808"] {
        let path = format!("{TEMPLATES}/{id}");
        for res in [
            h.get(&path).await,
            h.put(&path, &json!({"name": "X"})).await,
        ] {
            assert_eq!(res.status, StatusCode::NOT_FOUND, "id {id}: {}", res.body);
            assert_error(&res, StatusCode::NOT_FOUND, "not_found");
        }
    }
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn get_templates_return_steps_and_approvers() {
    let h = store().await;
    let expected = [
        (
            1,
            "booking.cancellation_requested",
            "booking",
            json!({"type": "role", "role": "sales_manager"}),
            json!({"type": "role", "role": "finance_manager"}),
        ),
        (
            2,
            "unit.price_update_requested",
            "unit",
            json!({"type": "role", "role": "sales_manager"}),
            json!({"type": "user", "user_id": 2}),
        ),
        (
            3,
            "commission.approval_requested",
            "commission",
            json!({"type": "role", "role": "finance_manager"}),
            json!({"type": "user", "user_id": 1}),
        ),
    ];
    for (id, event, entity_type, first, second) in expected {
        let res = h.get(&format!("{TEMPLATES}/{id}")).await;
        assert_eq!(res.status, StatusCode::OK, "template {id}: {}", res.body);
        assert_json(&res);
        let t = &res.body;
        assert_eq!(t["id"], json!(id));
        assert_eq!(t["event"], json!(event));
        assert_eq!(t["entity_type"], json!(entity_type));
        assert_eq!(t["version"], json!(1));
        assert_eq!(t["is_active"], json!(true));
        assert!(t["name"].as_str().is_some_and(|n| !n.is_empty()), "{t}");
        let steps = array(&t["steps"]);
        assert_eq!(steps.len(), 2, "template {id}");
        assert_eq!(steps[0]["step_order"], json!(1));
        assert_eq!(steps[0]["approver"], first);
        assert_eq!(steps[1]["step_order"], json!(2));
        assert_eq!(steps[1]["approver"], second);
    }
}

#[tokio::test]
async fn put_template_in_use_is_409_template_in_use() {
    let h = store().await;
    let res = h
        .put(&format!("{TEMPLATES}/1"), &json!({"name": "Renamed"}))
        .await;
    assert_error(&res, StatusCode::CONFLICT, "template_in_use");
    let unchanged = h.get(&format!("{TEMPLATES}/1")).await;
    assert_eq!(unchanged.body["name"], json!("Booking cancellation"));
    assert_eq!(unchanged.body["version"], json!(1));
}

#[tokio::test]
async fn put_template_updates_and_bumps_the_version() {
    let h = store().await;
    let res = h
        .put(
            &format!("{TEMPLATES}/2"),
            &json!({
                "name": "Unit price update (strict)",
                "steps": [
                    {"name": "Finance first", "approver": {"type": "user", "user_id": 2}},
                    {"name": "Sales sign-off", "approver": {"type": "role", "role": "sales_manager"}},
                    {"name": "Coordinator note", "approver": {"type": "role", "role": "sales_coordinator"}}
                ]
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let t = &res.body;
    assert_eq!(t["id"], json!(2));
    assert_eq!(t["version"], json!(2));
    assert_eq!(t["name"], json!("Unit price update (strict)"));
    assert_eq!(t["event"], json!("unit.price_update_requested"));
    assert_eq!(t["is_active"], json!(true));
    let steps = array(&t["steps"]);
    assert_eq!(steps.len(), 3);
    for (index, step) in steps.iter().enumerate() {
        assert_eq!(step["step_order"], json!(index + 1));
    }
    assert_eq!(steps[0]["approver"], json!({"type": "user", "user_id": 2}));
    assert_eq!(
        steps[2]["approver"],
        json!({"type": "role", "role": "sales_coordinator"})
    );

    let fetched = h.get(&format!("{TEMPLATES}/2")).await;
    assert_eq!(fetched.body, res.body);

    // New instances use the new version.
    let triggered = h
        .trigger(&json!({
            "event": "unit.price_update_requested",
            "entity_type": "unit",
            "entity_id": 1,
            "initiated_by": 1
        }))
        .await;
    assert_eq!(triggered.status, StatusCode::CREATED, "{}", triggered.body);
    assert_eq!(triggered.body["template_version"], json!(2));
    assert_eq!(array(&triggered.body["steps"]).len(), 3);
    assert_eq!(triggered.body["steps"][0]["eligible_user_ids"], json!([2]));
}

#[tokio::test]
async fn put_template_breaking_a_domain_rule_is_422() {
    let h = store().await;
    let path = format!("{TEMPLATES}/2");
    for (body, field) in [
        (json!({"steps": []}), "steps"),
        (json!({"name": ""}), "name"),
        (json!({}), "body"),
        (json!({"version": 7}), "version"),
    ] {
        let res = h.put(&path, &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
    let unchanged = h.get(&path).await;
    assert_eq!(unchanged.body["version"], json!(1));
}
