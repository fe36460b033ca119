//! Idempotent requests: a client's key for one state-changing request, and the answer kept with
//! it so that a retry gets the same answer instead of doing the work again.
//!
//! The core never looks inside an answer: the driving adapter renders it (a status and a body)
//! and the store keeps it in the transaction of the request's effect, so an answer exists exactly
//! when the effect committed.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::domain::error::WorkflowError;

/// How long a key and its answer are kept, at least.
pub const IDEMPOTENCY_KEY_LIFETIME: Duration = Duration::hours(24);

/// Longest key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A client's idempotency key: 1 to 255 printable ASCII characters (space included).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks `raw`; the error names the `Idempotency-Key` header.
    pub fn new(raw: &str) -> Result<Self, WorkflowError> {
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(WorkflowError::validation(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters long"),
            ));
        }
        if !raw.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(WorkflowError::validation(
                "Idempotency-Key",
                "must be printable ASCII",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The answer a driving adapter gave to a keyed request, kept for its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Renders the answer to a request from its result, inside the unit of work that stores it.
pub type Render<T> = Box<dyn FnOnce(&T) -> Answer + Send + Sync>;

/// What makes a state-changing request idempotent: its key, what identifies the request itself
/// (so that the key's reuse for another request is caught), and how its answer is rendered.
pub struct Once<T> {
    pub key: IdempotencyKey,
    /// An opaque digest of the request (the driving adapter's choice: e.g. method, path, body).
    pub request: String,
    pub render: Render<T>,
}

impl<T> fmt::Debug for Once<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("key", &self.key)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl<T> Once<T> {
    /// What a retry with this key gets, given what the store kept for it: the kept answer, or
    /// `IdempotencyKeyReused` if the key was first used for another request.
    pub fn replay(&self, kept: KeptAnswer) -> Result<Answer, WorkflowError> {
        if kept.request == self.request {
            Ok(kept.answer)
        } else {
            Err(WorkflowError::IdempotencyKeyReused {
                key: self.key.to_string(),
            })
        }
    }
}

/// A key's record in the store: the request it was first used for and the answer given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    pub request: String,
    pub answer: Answer,
    pub created_at: DateTime<Utc>,
}

/// The outcome of a use case that may be a retry: done now, or the kept answer of the first
/// request with the same key (nothing was done again).
#[derive(Debug)]
pub enum Done<T> {
    Fresh(T),
    Replayed(Answer),
}

impl<T> Done<T> {
    /// The result of work done now; `None` for a replay.
    pub fn fresh(self) -> Option<T> {
        match self {
            Self::Fresh(value) => Some(value),
            Self::Replayed(_) => None,
        }
    }

    /// The result of a call made without a key, which is never a replay.
    pub fn unkeyed(self) -> Result<T, WorkflowError> {
        self.fresh().ok_or_else(|| {
            WorkflowError::internal("a call without an idempotency key was replayed")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::new("a").is_ok());
        assert!(IdempotencyKey::new("order 7/retry #2 ~!").is_ok());
        assert!(IdempotencyKey::new(&"k".repeat(255)).is_ok());
        for bad in ["", "tab\there", "é", "line\n", "\u{7f}"] {
            let err = IdempotencyKey::new(bad).unwrap_err();
            assert!(
                matches!(&err, WorkflowError::Validation { field, .. } if field == "Idempotency-Key"),
                "{bad:?}: {err:?}"
            );
        }
        assert!(IdempotencyKey::new(&"k".repeat(256)).is_err());
    }

    fn once(request: &str) -> Once<()> {
        Once {
            key: IdempotencyKey::new("k1").unwrap(),
            request: request.to_owned(),
            render: Box::new(|_| Answer {
                status: 200,
                body: "{}".to_owned(),
            }),
        }
    }

    fn kept(request: &str) -> KeptAnswer {
        KeptAnswer {
            request: request.to_owned(),
            answer: Answer {
                status: 201,
                body: r#"{"id":1}"#.to_owned(),
            },
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_same_request_gets_the_kept_answer() {
        assert_eq!(once("r1").replay(kept("r1")), Ok(kept("r1").answer));
    }

    #[test]
    fn another_request_with_the_key_is_refused() {
        assert_eq!(
            once("r2").replay(kept("r1")),
            Err(WorkflowError::IdempotencyKeyReused {
                key: "k1".to_owned()
            })
        );
    }
}
