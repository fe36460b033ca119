//! Route tests: what every route shares. Bodies (415, 413, 400), routing (404, 405), health,
//! and how each domain error is answered.

use std::collections::BTreeSet;

use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures;
use super::*;
use crate::domain::model::{StepStatus, UserId};
use crate::inbound::http::MAX_BODY_BYTES;

/// The routes that read a JSON body.
const JSON_ROUTES: [(&str, &str); 4] = [
    ("POST", INSTANCES),
    ("PUT", "/api/v1/workflow/templates/2"),
    ("POST", "/api/v1/workflow/steps/1/approve"),
    ("POST", "/api/v1/workflow/steps/1/reject"),
];

// ----- bodies -----

#[tokio::test]
async fn body_that_is_not_a_json_object_is_400_invalid_json() {
    let h = unreached();
    let bodies = [
        "{\"event\":",
        "[1, 2]",
        "",
        "\"text\"",
        "null",
        "42",
        "{} {}",
    ];
    for body in bodies {
        let res = h
            .send(
                request()
                    .method("POST")
                    .path(INSTANCES)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "body {body:?}: {}",
            res.body
        );
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_json");
    }
}

#[tokio::test]
async fn body_on_every_json_route_must_be_well_formed() {
    let h = unreached();
    for (method, path) in JSON_ROUTES {
        let res = h
            .send(
                request()
                    .method(method)
                    .path(path)
                    .header("content-type", "application/json")
                    .body("[]"),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_json");
    }
}

#[tokio::test]
async fn body_without_json_content_type_is_415() {
    let h = unreached();
    let body = booking_trigger(2).to_string();
    for (method, path) in JSON_ROUTES {
        let missing = h
            .send(request().method(method).path(path).body(&body))
            .await;
        assert_eq!(
            missing.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert_error(
            &missing,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );

        let text = h
            .send(
                request()
                    .method(method)
                    .path(path)
                    .header("content-type", "text/plain")
                    .body(&body),
            )
            .await;
        assert_eq!(
            text.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert_error(
            &text,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
}

/// A valid trigger body of exactly `size` bytes (padded inside `context`).
fn trigger_body_of_size(size: usize) -> String {
    let mut body = booking_trigger(2);
    body["context"] = json!({"pad": ""});
    let base = body.to_string().len();
    body["context"]["pad"] = json!("x".repeat(size - base));
    let text = body.to_string();
    assert_eq!(text.len(), size);
    text
}

#[tokio::test]
async fn body_at_the_limit_is_accepted() {
    let body = trigger_body_of_size(MAX_BODY_BYTES);
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    let h = mock(move |port| {
        // The whole body reaches the port.
        port.expect_trigger()
            .times(1)
            .withf(move |request, _| request.context.as_ref() == Some(&sent["context"]))
            .returning(|_, _| fresh(fixtures::instance()));
    });
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body["error"]);
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let h = unreached();
    assert_eq!(MAX_BODY_BYTES, 64 * 1024);
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(trigger_body_of_size(MAX_BODY_BYTES + 1)),
        )
        .await;
    assert_error(&res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn body_over_64_kib_with_understated_length_is_413() {
    let h = unreached();
    // `body()` sets the true content-length; overwrite it with a small, wrong one so the limit
    // has to be enforced while reading.
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(trigger_body_of_size(MAX_BODY_BYTES * 2))
                .header("content-length", "100"),
        )
        .await;
    assert_error(&res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

// ----- routing -----

#[tokio::test]
async fn wrong_method_on_known_path_is_405() {
    let h = unreached();
    for (method, path) in [
        ("DELETE", "/api/v1/workflow/instances/1"),
        ("GET", "/api/v1/workflow/steps/1/approve"),
        ("GET", "/api/v1/workflow/steps/1/reject"),
        ("POST", "/healthz"),
        ("POST", "/readyz"),
        ("PUT", INSTANCES),
        ("DELETE", "/api/v1/workflow/templates/1"),
        ("POST", "/api/v1/workflow/steps/pending?user_id=1"),
    ] {
        let res = h.send(request().method(method).path(path)).await;
        assert_eq!(
            res.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            res.body
        );
        assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}

#[tokio::test]
async fn unknown_route_is_404() {
    let h = unreached();
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/"),
        ("GET", "/api/v1/workflow/unknown"),
        ("GET", "/api/v1/workflow"),
        ("GET", "/api/v2/workflow/instances/1"),
        ("GET", "/api/v1/workflow/instances/1/steps"),
        ("POST", "/api/v1/workflow/steps/1/escalate"),
        ("DELETE", "/nope"),
    ] {
        let res = h.send(request().method(method).path(path)).await;
        assert_eq!(
            res.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            res.body
        );
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn healthz_is_200() {
    let h = mock(|port| {
        port.expect_health().times(1).returning(|| answer(()));
    });
    let res = h.get("/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_json(&res);
    assert_eq!(res.text, r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn readyz_is_200_with_every_check() {
    use crate::domain::model::{Readiness, ReadinessCheck};
    let h = mock(|port| {
        port.expect_readiness().times(1).returning(|| {
            Box::pin(async {
                Readiness {
                    checks: vec![ReadinessCheck::ok("database"), ReadinessCheck::ok("nats")],
                }
            })
        });
    });
    let res = h.get("/readyz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_json(&res);
    assert_eq!(
        res.body,
        json!({"status": "ready", "checks": {"database": "ok", "nats": "ok"}})
    );
}

#[tokio::test]
async fn readyz_is_503_naming_the_failed_check_without_its_details() {
    use crate::domain::model::{Readiness, ReadinessCheck};
    let h = mock(|port| {
        port.expect_readiness().times(1).returning(|| {
            Box::pin(async {
                Readiness {
                    checks: vec![
                        ReadinessCheck::ok("database"),
                        ReadinessCheck {
                            name: "nats",
                            outcome: Err("nats://secret-host:4222 refused".to_owned()),
                        },
                    ],
                }
            })
        });
    });
    let res = h.get("/readyz").await;
    let message = assert_error(&res, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(
        message,
        "The service is not ready: nats does not answer; retry later. \
         Checks: database: ok, nats: unavailable."
    );
    assert!(!res.text.contains("secret-host"), "{}", res.text);
}

#[tokio::test]
async fn readyz_is_200_on_the_store() {
    let h = store().await;
    let res = h.get("/readyz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.body,
        json!({"status": "ready", "checks": {"database": "ok"}})
    );
}

// ----- domain errors -----

#[tokio::test]
async fn every_domain_error_has_its_status_code_and_message() {
    use crate::domain::WorkflowError as E;
    let user = UserId::new(9).unwrap();
    let cases = [
        (
            E::not_found("instance 7"),
            StatusCode::NOT_FOUND,
            "not_found",
            "Instance 7 was not found.",
        ),
        (
            E::NotAnApprover { user, step: 4 },
            StatusCode::FORBIDDEN,
            "not_an_approver",
            "User 9 is not an approver of step 4.",
        ),
        (
            E::StepNotActionable {
                step: 4,
                status: StepStatus::Approved,
            },
            StatusCode::CONFLICT,
            "step_not_actionable",
            "Step 4 is approved; only a step that is awaiting_action can be decided.",
        ),
        (
            E::InstanceAlreadyActive { existing: 1 },
            StatusCode::CONFLICT,
            "instance_already_active",
            "Instance 1 is already active for this event and entity; decide or end it first.",
        ),
        (
            E::TemplateInUse { template: 1 },
            StatusCode::CONFLICT,
            "template_in_use",
            "Template 1 has active instances; it can be changed once they have ended.",
        ),
        (
            E::TemplateConflict {
                event: "booking.cancellation_requested".to_owned(),
            },
            StatusCode::CONFLICT,
            "template_conflict",
            "Another template is already active for event 'booking.cancellation_requested'; \
             deactivate it first, or save this one with is_active false.",
        ),
        (
            E::NoActiveTemplate {
                event: "lease.renewal_requested".to_owned(),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_active_template",
            "No active template handles event 'lease.renewal_requested'.",
        ),
        (
            E::UnknownUser {
                user,
                field: "initiated_by",
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_user",
            "Field 'initiated_by': user 9 does not exist.",
        ),
        (
            E::NoEligibleApprover {
                approver: "role 'finance_manager'".to_owned(),
                step_order: 1,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_eligible_approver",
            "Step 1 (role 'finance_manager') has nobody who could approve it; assign the role \
             or reactivate the user first.",
        ),
        (
            E::QuorumOutOfReach {
                approver: "role 'board'".to_owned(),
                step_order: 2,
                required: 3,
                eligible: 2,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_eligible_approver",
            "Step 2 (role 'board') needs 3 approvals but only 2 users can approve it; assign \
             the role to more users or lower the step's quorum.",
        ),
        (
            E::DelegationCycle {
                user: UserId::new(2).unwrap(),
                to_user: UserId::new(3).unwrap(),
            },
            StatusCode::CONFLICT,
            "delegation_cycle",
            "User 3 already delegates to user 2; end that delegation first, as delegations may \
             not form a cycle.",
        ),
        (
            E::DeliveryNotRetryable {
                delivery: 5,
                reason: "was delivered".to_owned(),
            },
            StatusCode::CONFLICT,
            "delivery_not_retryable",
            "Delivery 5 was delivered; only a failed or dead delivery can be retried.",
        ),
        (
            E::UserInactive {
                user: UserId::new(4).unwrap(),
            },
            StatusCode::FORBIDDEN,
            "user_inactive",
            "User 4 is inactive; reactivate the user to let it act.",
        ),
        (
            E::validation("entity_type", "must be the template's entity type"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Field 'entity_type' must be the template's entity type.",
        ),
        (
            E::Unavailable("pool timed out".to_owned()),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The database can't be reached right now; retry later.",
        ),
        (
            E::internal_from("reading instance 2", std::io::Error::other("disk on fire")),
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An internal error occurred; it has been logged.",
        ),
        (
            E::internal("a broken invariant"),
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An internal error occurred; it has been logged.",
        ),
    ];
    for (error, status, code, message) in cases {
        let refusal = error.clone();
        let h = mock(move |port| {
            port.expect_instance()
                .times(1)
                .returning(move |_| refuse(refusal.clone()));
        });
        let res = h.get(&format!("{INSTANCES}/2")).await;
        assert_eq!(assert_error(&res, status, code), message, "{error:?}");
    }
}

#[tokio::test]
async fn store_trouble_on_health_is_503() {
    let h = mock(|port| {
        port.expect_health()
            .times(1)
            .returning(|| refuse(crate::domain::WorkflowError::Unavailable("down".to_owned())));
    });
    assert_error(
        &h.get("/healthz").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

/// What the "refused at the edge" tests rely on: a request that reaches an unprepared port fails.
#[tokio::test]
#[should_panic(expected = "No matching expectation found")]
async fn a_port_without_expectations_fails_the_test_when_reached() {
    unreached().trigger(&booking_trigger(2)).await;
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn unknown_ids_are_404() {
    let h = store().await;
    let mut answers = vec![h.get(&format!("{INSTANCES}/999")).await];
    for id in [4, 999] {
        answers.push(h.get(&format!("/api/v1/workflow/templates/{id}")).await);
    }
    answers.push(
        h.put("/api/v1/workflow/templates/99", &json!({"name": "X"}))
            .await,
    );
    answers.push(h.approve(999, &json!({"acted_by_user_id": 1})).await);
    answers.push(
        h.reject(999, &json!({"acted_by_user_id": 1, "comment": "No."}))
            .await,
    );
    for res in answers {
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let h = store().await;
    let body = booking_trigger(2).to_string();
    // Wrong content type, oversized body, and a refused method: nothing is stored.
    let refused = [
        h.send(request().method("POST").path(INSTANCES).body(&body))
            .await,
        h.send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(trigger_body_of_size(MAX_BODY_BYTES * 2))
                .header("content-length", "100"),
        )
        .await,
        h.send(request().method("DELETE").path(&format!("{INSTANCES}/1")))
            .await,
    ];
    for res in refused {
        assert!(res.status.is_client_error(), "{}", res.body);
    }
    assert_eq!(
        h.get(&format!("{INSTANCES}/2")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get(&format!("{INSTANCES}/1")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn healthz_is_200_on_the_store() {
    let h = store().await;
    let res = h.get("/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, json!({"status": "ok"}));
}

// ----- logs -----

/// A log sink for one test.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_internal_error_is_logged_with_its_cause_in_the_requests_span() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = mock(|port| {
        port.expect_instance().times(1).returning(|_| {
            refuse(crate::domain::WorkflowError::internal_from(
                "reading instance 2",
                std::io::Error::other("disk on fire"),
            ))
        });
    });

    let res = h.get(&format!("{INSTANCES}/2")).await;

    assert_error(&res, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(!res.text.contains("disk"), "{}", res.text);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let error = text
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error line in {text}"));
    assert!(
        error.contains(r#"request{method="GET" route="/api/v1/workflow/instances/{id}"}"#),
        "{error}"
    );
    assert!(
        error.contains("internal error: reading instance 2: disk on fire"),
        "{error}"
    );
    let closed = text
        .lines()
        .find(|l| l.contains("close"))
        .unwrap_or_else(|| panic!("no span close line in {text}"));
    assert!(closed.contains("status=500"), "{closed}");
}

// ----- the list of routes (metrics::ROUTES, which the OpenAPI document is checked against) -----

/// `template` with each `{id}` as `1`.
fn concrete(template: &str) -> String {
    template.replace("{id}", "1")
}

#[tokio::test]
async fn every_listed_route_is_routed() {
    let h = store().await;
    for (method, template) in crate::inbound::http::metrics::ROUTES {
        let res = h
            .send(
                request()
                    .method(method)
                    .path(&concrete(template))
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await;
        assert_ne!(
            res.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {template}"
        );
        assert_ne!(
            res.body["error"]["message"], "No such resource; check the path.",
            "{method} {template} is listed in ROUTES but no route answers it"
        );
    }
}

/// Every `warp::path!(..)` of the HTTP adapter's sources with the method filter that follows
/// it, as `(METHOD, template)`: a `String` segment is `{id}`.
fn routes_in_sources() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/inbound/http");
    let mut found = BTreeSet::new();
    let mut pending = vec![dir];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("the sources are readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                // Tests name routes in their own ways (this one among them).
                if path.file_name().is_none_or(|name| name != "tests") {
                    pending.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            let mut rest = text.as_str();
            while let Some(start) = rest.find("warp::path!(") {
                rest = &rest[start + "warp::path!(".len()..];
                let Some(end) = rest.find(')') else { break };
                let template: String = rest[..end]
                    .split('/')
                    .map(|segment| {
                        let segment = segment.trim();
                        match segment.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                            Some(literal) => literal.to_owned(),
                            None => "{id}".to_owned(),
                        }
                    })
                    .fold(String::new(), |path, segment| path + "/" + &segment);
                let after = &rest[end..];
                let method = ["get", "post", "put", "delete", "patch"]
                    .into_iter()
                    .filter_map(|m| after.find(&format!("warp::{m}()")).map(|at| (at, m)))
                    .min()
                    .map(|(_, m)| m.to_uppercase())
                    .expect("every route names its method");
                found.insert((method, template));
            }
        }
    }
    found
}

#[test]
fn every_route_of_the_router_is_listed() {
    let listed: BTreeSet<(String, String)> = crate::inbound::http::metrics::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let routed = routes_in_sources();
    assert!(routed.len() >= 10, "{routed:?}");
    let unlisted: Vec<_> = routed.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "routes missing from metrics::ROUTES (and so from the OpenAPI check): {unlisted:?}"
    );
    let unrouted: Vec<_> = listed.difference(&routed).collect();
    assert!(unrouted.is_empty(), "listed but not routed: {unrouted:?}");
}
