//! Tests of `WorkflowError` (domain core): an internal error keeps its cause, so that the log
//! line `chain()` renders shows what failed underneath, while the error's own text (the part a
//! client-facing mapping may use) stays the message alone.

use std::error::Error as StdError;
use std::io;

use crate::domain::error::WorkflowError;
use crate::domain::model::UserId;

/// A failure with a cause of its own, like a driver error wrapping an I/O error.
#[derive(Debug, thiserror::Error)]
#[error("query failed")]
struct QueryFailed(#[source] io::Error);

fn disk_full() -> io::Error {
    io::Error::other("disk full")
}

#[test]
fn internal_from_keeps_its_cause() {
    let err = WorkflowError::internal_from("saving template", disk_full());

    assert!(matches!(
        &err,
        WorkflowError::Internal { message, source: Some(_) } if message == "saving template"
    ));
    assert_eq!(err.to_string(), "internal error: saving template");
    let cause = err.source().expect("the cause is kept");
    assert_eq!(cause.to_string(), "disk full");
    assert_eq!(err.chain(), "internal error: saving template: disk full");
}

#[test]
fn chain_follows_every_cause_down() {
    let err = WorkflowError::internal_from("storing decision", QueryFailed(disk_full()));

    assert_eq!(
        err.chain(),
        "internal error: storing decision: query failed: disk full"
    );
    assert_eq!(err.to_string(), "internal error: storing decision");
}

#[test]
fn internal_without_a_cause_chains_to_its_message_alone() {
    let err = WorkflowError::internal("broken invariant");

    assert!(matches!(
        &err,
        WorkflowError::Internal { message, source: None } if message == "broken invariant"
    ));
    assert!(err.source().is_none());
    assert_eq!(err.chain(), "internal error: broken invariant");
    assert_eq!(err.chain(), err.to_string());
}

#[test]
fn chain_of_an_error_without_a_cause_is_its_text() {
    let cases = [
        WorkflowError::not_found("instance 7"),
        WorkflowError::validation("limit", "must be between 1 and 500"),
        WorkflowError::Unavailable("db down".to_owned()),
        WorkflowError::NotAnApprover {
            user: UserId::new(2).unwrap(),
            step: 101,
        },
    ];

    for err in cases {
        assert!(err.source().is_none());
        assert_eq!(err.chain(), err.to_string());
    }
}

#[test]
fn a_cloned_internal_error_keeps_its_cause_and_compares_by_text() {
    let err = WorkflowError::internal_from("saving template", disk_full());

    let copy = err.clone();

    assert_eq!(copy, err);
    assert_eq!(copy.chain(), err.chain());
    // Causes compare by what they say: another "disk full" is the same cause.
    assert_eq!(
        WorkflowError::internal_from("saving template", disk_full()),
        err
    );
    assert_ne!(
        WorkflowError::internal_from("saving template", io::Error::other("read-only")),
        err
    );
    assert_ne!(WorkflowError::internal("saving template"), err);
}
