//! The webhook routes end to end on an in-memory store whose guard refuses private networks:
//! every refusal of the subscription and delivery endpoints, and idempotent subscribing.

use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::{json_request, store};

const SUBSCRIPTIONS: &str = "/api/v1/workflow/subscriptions";

#[tokio::test]
async fn subscriptions_refuse_bad_urls_private_hosts_and_unknown_event_types() {
    let h = store().await;
    for (body, field, words) in [
        (
            json!({"url": "ftp://example.com/", "event_types": ["instance.approved"]}),
            "url",
            "http or https",
        ),
        (
            json!({"url": "not a url", "event_types": ["instance.approved"]}),
            "url",
            "not a URL",
        ),
        (
            json!({"url": "http://127.0.0.1:9/x", "event_types": ["instance.approved"]}),
            "url",
            "non-public",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "event_types": ["instance.approved"]}),
            "url",
            "non-public",
        ),
        (
            json!({"url": "http://[fd00:ec2::254]/", "event_types": ["instance.approved"]}),
            "url",
            "non-public",
        ),
        (
            json!({"url": "http://10.0.0.7/", "event_types": ["instance.approved"]}),
            "url",
            "non-public",
        ),
        (
            json!({"url": "https://93.184.216.34/", "event_types": []}),
            "event_types",
            "at least one",
        ),
        (
            json!({"url": "https://93.184.216.34/", "event_types": ["instance.exploded"]}),
            "event_types",
            "instance.exploded",
        ),
        (
            json!({"url": "https://93.184.216.34/"}),
            "event_types",
            "required",
        ),
    ] {
        let res = h.post(SUBSCRIPTIONS, &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.text
        );
        assert_eq!(res.body["error"]["code"], "validation_failed");
        let message = res.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("'{field}'")) && message.contains(words),
            "{body}: {message}"
        );
    }
    assert_eq!(h.get(SUBSCRIPTIONS).await.body, json!({"items": []}));
}

#[tokio::test]
async fn a_subscription_is_created_once_per_key_and_listed_without_its_secret() {
    let h = store().await;
    let body = json!({"url": "https://93.184.216.34/hook", "event_types": ["instance.approved", "step.overdue"]});
    let keyed = || json_request("POST", SUBSCRIPTIONS, &body).header("idempotency-key", "sub-1");
    let first = h.send(keyed()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(
        first.body["event_types"],
        json!(["instance.approved", "step.overdue"])
    );
    assert_eq!(first.body["url"], "https://93.184.216.34/hook");
    let secret = first.body["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 6 + 32,
        "{secret}"
    );
    let again = h.send(keyed()).await;
    assert!(again.replayed);
    assert_eq!(
        again.body, first.body,
        "the same subscription, secret included"
    );
    let listed = h.get(SUBSCRIPTIONS).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(listed.body["items"][0].get("secret").is_none());

    let path = format!("{SUBSCRIPTIONS}/{}", first.body["id"]);
    let deleted = h.send(request().method("DELETE").path(&path)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = h.send(request().method("DELETE").path(&path)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn delivery_routes_refuse_unknown_ids_and_statuses() {
    let h = store().await;
    let created = h
        .post(
            SUBSCRIPTIONS,
            &json!({"url": "https://93.184.216.34/", "event_types": ["instance.approved"]}),
        )
        .await;
    let id = &created.body["id"];
    let listed = h.get(&format!("{SUBSCRIPTIONS}/{id}/deliveries")).await;
    assert_eq!(
        (listed.status, listed.body.clone()),
        (StatusCode::OK, json!({"items": []}))
    );
    for (path, status, code) in [
        (
            format!("{SUBSCRIPTIONS}/{id}/deliveries?status=lost"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            format!("{SUBSCRIPTIONS}/{id}/deliveries?state=dead"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            format!("{SUBSCRIPTIONS}/999/deliveries"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("{SUBSCRIPTIONS}/x/deliveries"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let res = h.get(&path).await;
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    for path in [
        "/api/v1/workflow/deliveries/999/retry",
        "/api/v1/workflow/deliveries/0/retry",
    ] {
        let res = h.send(request().method("POST").path(path)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}: {}", res.text);
    }
}
