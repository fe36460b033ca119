//! Route tests against the port: creating and listing templates (`POST` and `GET /templates`),
//! publishing a version and reading one (`POST /templates/{id}/versions`,
//! `GET /templates/{id}/versions/{version}`): what reaches the port, what is refused before it,
//! and how answers and refusals are rendered.

use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures::{self, TEMPLATE_JSON};
use super::*;
use crate::domain::model::{
    EntityType, EventName, NewTemplate, TemplateFilter, TemplateId, TemplateStep, TemplateUpdate,
};

const TEMPLATES: &str = "/api/v1/workflow/templates";

/// A creation body with two steps, and the new template it stands for.
fn refund() -> (Value, NewTemplate) {
    let body = json!({
        "name": "Booking refund",
        "event": "booking.refund_requested",
        "entity_type": "booking",
        "steps": [
            {"name": "Finance review", "approver": {"type": "role", "role": "finance_manager"}},
            {"name": "Sales sign-off", "approver": {"type": "user", "user_id": 1}}
        ],
        "forbid_self_approval": true
    });
    let new = NewTemplate {
        name: "Booking refund".to_owned(),
        event: EventName::new("booking.refund_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        is_active: true,
        forbid_self_approval: true,
        steps: vec![
            TemplateStep {
                step_order: 1,
                name: "Finance review".to_owned(),
                approver: fixtures::role("finance_manager"),
                quorum: Default::default(),
                when: None,
                due: None,
            },
            TemplateStep {
                step_order: 2,
                name: "Sales sign-off".to_owned(),
                approver: fixtures::by_user(1),
                quorum: Default::default(),
                when: None,
                due: None,
            },
        ],
    };
    (body, new)
}

// ----- POST /templates -----

#[tokio::test]
async fn create_template_hands_the_port_the_new_template_and_answers_201() {
    let (body, expected) = refund();
    let h = mock(move |port| {
        port.expect_create_template()
            .times(1)
            .withf(move |new, _| *new == expected)
            .returning(|_, _| fresh(fixtures::template()));
    });
    let res = h.post(TEMPLATES, &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, TEMPLATE_JSON);
}

#[tokio::test]
async fn create_template_with_invalid_body_is_422_naming_the_field() {
    let h = unreached();
    let (valid, _) = refund();
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (without("name"), "name"),
        (without("event"), "event"),
        (without("entity_type"), "entity_type"),
        (without("steps"), "steps"),
        (with("name", json!(null)), "name"),
        (with("event", json!(7)), "event"),
        (with("entity_type", json!("Booking")), "entity_type"),
        (with("steps", json!("none")), "steps"),
        (with("steps", json!([1])), "steps[0]"),
        (
            with(
                "steps",
                json!([{"name": "A", "approver": {"type": "wizard"}}]),
            ),
            "steps[0].approver.type",
        ),
        (with("is_active", json!("yes")), "is_active"),
        (
            with("forbid_self_approval", json!("no")),
            "forbid_self_approval",
        ),
        (with("version", json!(1)), "version"),
    ];
    for (body, field) in cases {
        let res = h.post(TEMPLATES, &body).await;
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
async fn a_second_active_template_is_409_template_conflict() {
    let h = mock(|port| {
        port.expect_create_template().times(1).returning(|_, _| {
            refuse(WorkflowError::TemplateConflict {
                event: "booking.refund_requested".to_owned(),
            })
        });
    });
    let res = h.post(TEMPLATES, &refund().0).await;
    let message = assert_error(&res, StatusCode::CONFLICT, "template_conflict");
    assert_eq!(
        message,
        "Another template is already active for event 'booking.refund_requested'; deactivate it \
         first, or save this one with is_active false."
    );
}

// ----- GET /templates -----

#[tokio::test]
async fn list_hands_the_port_the_filter_and_renders_the_items() {
    let h = mock(|port| {
        let mut sequence = mockall::Sequence::new();
        let filters = [
            TemplateFilter::default(),
            TemplateFilter {
                event: Some(EventName::new("unit.price_update_requested").unwrap()),
                is_active: Some(false),
            },
        ];
        for filter in filters {
            port.expect_templates()
                .times(1)
                .in_sequence(&mut sequence)
                .withf(move |f| *f == filter)
                .returning(|_| answer(vec![fixtures::template()]));
        }
    });
    for query in ["", "?event=unit.price_update_requested&is_active=false"] {
        let res = h.get(&format!("{TEMPLATES}{query}")).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
        assert_json(&res);
        assert_eq!(res.text, format!(r#"{{"items":[{TEMPLATE_JSON}]}}"#));
    }
}

#[tokio::test]
async fn list_with_bad_query_is_422_naming_the_parameter() {
    let h = unreached();
    for (query, field) in [
        ("?is_active=yes", "is_active"),
        ("?is_active=", "is_active"),
        ("?event=Booking", "event"),
        ("?event=", "event"),
        ("?page=2", "page"),
        ("?event=unit.price_update_requested&limit=5", "limit"),
    ] {
        let res = h.get(&format!("{TEMPLATES}{query}")).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
}

// ----- POST /templates/{id}/versions, GET /templates/{id}/versions/{version} -----

#[tokio::test]
async fn publish_version_hands_the_port_the_update_and_answers_201() {
    let expected = TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: Some(true),
        steps: Some(vec![TemplateStep {
            step_order: 1,
            name: "Finance only".to_owned(),
            approver: fixtures::by_user(2),
            quorum: Default::default(),
            when: None,
            due: None,
        }]),
    };
    let h = mock(move |port| {
        port.expect_publish_version()
            .times(1)
            .withf(move |id, update, _| *id == TemplateId::new(2).unwrap() && *update == expected)
            .returning(|_, _, _| fresh(fixtures::template()));
    });
    let res = h
        .post(
            &format!("{TEMPLATES}/2/versions"),
            &json!({
                "forbid_self_approval": true,
                "steps": [{"name": "Finance only", "approver": {"type": "user", "user_id": 2}}]
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, TEMPLATE_JSON);
}

#[tokio::test]
async fn publish_version_with_invalid_body_is_422_naming_the_field() {
    let h = unreached();
    let path = format!("{TEMPLATES}/2/versions");
    for (body, field) in [
        (json!({}), "body"),
        (json!({"version": 4}), "version"),
        (json!({"name": 4}), "name"),
        (json!({"is_active": "true"}), "is_active"),
        (json!({"forbid_self_approval": null, "steps": 1}), "steps"),
        (
            json!({"steps": [{"name": "A", "approver": {"type": "user"}}]}),
            "steps[0].approver.user_id",
        ),
    ] {
        let res = h.post(&path, &body).await;
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
async fn template_version_hands_the_port_id_and_version() {
    let h = mock(|port| {
        port.expect_template_version()
            .times(1)
            .withf(|id, version| *id == TemplateId::new(2).unwrap() && *version == 3)
            .returning(|_, _| answer(fixtures::template()));
    });
    let res = h.get(&format!("{TEMPLATES}/2/versions/3")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, TEMPLATE_JSON);
}

#[tokio::test]
async fn malformed_template_ids_and_versions_are_404_without_asking_the_port() {
    let h = unreached();
    for id in ["abc", "0", "-1", "01", "9223372036854775808"] {
        for res in [
            h.post(&format!("{TEMPLATES}/{id}/versions"), &json!({"name": "X"}))
                .await,
            h.get(&format!("{TEMPLATES}/{id}/versions/1")).await,
        ] {
            assert_error(&res, StatusCode::NOT_FOUND, "not_found");
        }
    }
    for version in ["abc", "0", "-1", "01", "2147483648"] {
        let res = h.get(&format!("{TEMPLATES}/2/versions/{version}")).await;
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

// ----- bodies and routing -----

#[tokio::test]
async fn the_new_json_routes_refuse_bad_bodies_before_the_port() {
    let h = unreached();
    let versions = format!("{TEMPLATES}/2/versions");
    for path in [TEMPLATES, versions.as_str()] {
        let not_json = h
            .send(
                request()
                    .method("POST")
                    .path(path)
                    .header("content-type", "text/plain")
                    .body(r#"{"name":"X"}"#),
            )
            .await;
        assert_error(
            &not_json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        let broken = h
            .send(
                request()
                    .method("POST")
                    .path(path)
                    .header("content-type", "application/json")
                    .body(r#"{"name":"#),
            )
            .await;
        assert_error(&broken, StatusCode::BAD_REQUEST, "invalid_json");
    }
}

#[tokio::test]
async fn wrong_methods_on_the_new_paths_are_405() {
    let h = unreached();
    for (method, path) in [
        ("PUT", TEMPLATES.to_owned()),
        ("DELETE", TEMPLATES.to_owned()),
        ("GET", format!("{TEMPLATES}/1/versions")),
        ("PUT", format!("{TEMPLATES}/1/versions/1")),
        ("POST", format!("{TEMPLATES}/1/versions/1")),
    ] {
        let res = h.send(request().method(method).path(&path)).await;
        assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}
