//! Route tests: input that is well-formed but means less than it seems, refused at every depth:
//! a key given twice, a field the object does not have, and text that shows nothing.

use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::*;

/// A body sent exactly as written (a `Value` can't hold a repeated key).
fn raw(method: &str, path: &str, body: &str) -> RequestBuilder {
    request()
        .method(method)
        .path(path)
        .header("content-type", "application/json")
        .body(body)
}

const TEMPLATES: &str = "/api/v1/workflow/templates";

#[tokio::test]
async fn a_repeated_key_is_422_naming_it_at_any_depth_and_reaches_nothing() {
    let h = unreached();
    let cases = [
        (
            "POST",
            "/api/v1/workflow/steps/1/approve",
            r#"{"acted_by_user_id": 1, "acted_by_user_id": 2}"#,
            "'acted_by_user_id'",
        ),
        (
            "POST",
            "/api/v1/workflow/steps/1/reject",
            r#"{"comment": "no", "acted_by_user_id": 1, "comment": "yes"}"#,
            "'comment'",
        ),
        (
            "POST",
            INSTANCES,
            r#"{"event": "booking.cancellation_requested", "entity_type": "booking",
                "entity_id": 9, "initiated_by": 3, "context": {"a": {"b": 1, "b": 2}}}"#,
            "'context.a.b'",
        ),
        (
            "POST",
            TEMPLATES,
            r#"{"name": "T", "event": "e.x", "entity_type": "unit", "steps": [
                {"name": "A", "approver": {"type": "user", "user_id": 1}},
                {"name": "B", "approver": {"type": "user", "type": "role", "role": "r"}}]}"#,
            "'steps[1].approver.type'",
        ),
        (
            "PUT",
            "/api/v1/workflow/users/7",
            r#"{"name": "Dana", "roles": [], "name": "Eve"}"#,
            "'name'",
        ),
    ];
    for (method, path, body, field) in cases {
        let res = h.send(raw(method, path, body)).await;
        let message = assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            message,
            format!("Field {field} is given more than once; give each field once."),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_body_that_repeats_a_key_and_is_malformed_is_400() {
    let h = unreached();
    let res = h
        .send(raw(
            "POST",
            "/api/v1/workflow/steps/1/approve",
            r#"{"acted_by_user_id": 1, "acted_by_user_id": 2"#,
        ))
        .await;
    assert_error(&res, StatusCode::BAD_REQUEST, "invalid_json");
}

#[tokio::test]
async fn an_approver_with_the_other_types_field_is_422_naming_it() {
    let h = unreached();
    let step = |approver: Value| {
        json!({"name": "T", "event": "e.x", "entity_type": "unit",
               "steps": [{"name": "A", "approver": approver}]})
    };
    let cases = [
        (
            json!({"type": "role", "role": "x", "user_id": 1}),
            "steps[0].approver.user_id",
        ),
        (
            json!({"type": "user", "user_id": 1, "role": "x"}),
            "steps[0].approver.role",
        ),
        (
            json!({"type": "user", "user_id": 1, "group": "x"}),
            "steps[0].approver.group",
        ),
    ];
    for (approver, field) in cases {
        let res = h.post(TEMPLATES, &step(approver.clone())).await;
        assert_validation(&res, field);
        let res = h
            .put(
                &format!("{TEMPLATES}/1"),
                &json!({"steps": [{"name": "A", "approver": approver}]}),
            )
            .await;
        assert_validation(&res, field);
    }
}

/// Text a reader sees nothing of: zero-width space, non-joiner and joiner, word joiner,
/// byte-order mark, between ordinary spaces.
const INVISIBLE: &str = " \u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF} ";

#[tokio::test]
async fn comments_and_reasons_of_invisible_characters_are_blank() {
    let h = unreached();
    let res = h
        .reject(1, &json!({"acted_by_user_id": 1, "comment": INVISIBLE}))
        .await;
    assert_eq!(
        assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "Field 'comment' must not be blank."
    );
    let res = h
        .approve(1, &json!({"acted_by_user_id": 1, "comment": "\u{200B}"}))
        .await;
    assert_validation(&res, "comment");
    let res = h
        .post(
            &format!("{INSTANCES}/1/cancel"),
            &json!({"acted_by_user_id": 3, "reason": INVISIBLE}),
        )
        .await;
    assert_eq!(
        assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "Field 'reason' must not be blank."
    );
}

#[tokio::test]
async fn names_of_invisible_characters_are_blank_and_change_nothing() {
    let h = store().await;
    let template = |name: &str, step: &str| {
        json!({"name": name, "event": "e.x", "entity_type": "unit",
               "steps": [{"name": step, "approver": {"type": "user", "user_id": 1}}]})
    };
    assert_validation(&h.post(TEMPLATES, &template(INVISIBLE, "A")).await, "name");
    assert_validation(
        &h.post(TEMPLATES, &template("T", INVISIBLE)).await,
        "steps[0].name",
    );
    assert_validation(
        &h.put(&format!("{TEMPLATES}/1"), &json!({"name": INVISIBLE}))
            .await,
        "name",
    );
    let res = h
        .put(
            "/api/v1/workflow/users/9",
            &json!({"name": "\u{FEFF}", "roles": []}),
        )
        .await;
    assert_validation(&res, "name");
    assert_error(
        &h.get("/api/v1/workflow/users/9").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let list = h.get(&format!("{TEMPLATES}?event=e.x")).await;
    assert_eq!(list.body, json!({"items": []}));
    // The same names with one visible character are fine.
    let res = h.post(TEMPLATES, &template("\u{200B}T", "A")).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}
