//! Route tests: `GET /instances/{id}/audit/verify`, the audit trail checked against its chain.

use serde_json::json;
use warp::http::StatusCode;

use super::*;
use crate::domain::model::{AuditVerification, InstanceId};

#[tokio::test]
async fn verify_answers_the_ports_verdict() {
    let h = mock(|port| {
        port.expect_verify_audit()
            .withf(|id| *id == InstanceId::new(7).unwrap())
            .times(1)
            .returning(|_| answer(AuditVerification::Valid { entries: 6 }));
        port.expect_verify_audit()
            .withf(|id| *id == InstanceId::new(8).unwrap())
            .times(1)
            .returning(|_| {
                answer(AuditVerification::Invalid {
                    first_bad_entry_id: 41,
                })
            });
    });
    let valid = h.get(&format!("{INSTANCES}/7/audit/verify")).await;
    assert_eq!(valid.status, StatusCode::OK);
    assert_json(&valid);
    assert_eq!(valid.text, r#"{"valid":true,"entries":6}"#);
    let invalid = h.get(&format!("{INSTANCES}/8/audit/verify")).await;
    assert_eq!(invalid.status, StatusCode::OK);
    assert_eq!(invalid.text, r#"{"valid":false,"first_bad_entry_id":41}"#);
}

#[tokio::test]
async fn verify_of_a_bad_or_unknown_id_is_404() {
    let h = mock(|port| {
        port.expect_verify_audit()
            .times(1)
            .returning(|id| refuse(WorkflowError::not_found(format!("instance {id}"))));
    });
    for raw in ["0", "x", "01"] {
        let res = h.get(&format!("{INSTANCES}/{raw}/audit/verify")).await;
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
    let res = h.get(&format!("{INSTANCES}/99/audit/verify")).await;
    assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    let res = h
        .post(&format!("{INSTANCES}/99/audit/verify"), &json!({}))
        .await;
    assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn a_trail_written_by_the_store_verifies_and_its_hashes_are_shown() {
    let h = store().await;
    let res = h.trigger(&booking_trigger(9)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let id = res.body["id"].as_i64().unwrap();
    for entry in array(&res.body["audit"]) {
        let hash = entry["hash"].as_str().unwrap();
        assert!(
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{hash}"
        );
    }
    let res = h.get(&format!("{INSTANCES}/{id}/audit/verify")).await;
    assert_eq!(res.body, json!({"valid": true, "entries": 2}));
}
