//! Driven adapter, in memory: idempotency keys and their kept answers. The store's one mutex
//! makes the check, the work and the keeping of its answer one atomic step, as PostgreSQL's
//! transaction does.

use chrono::{DateTime, Utc};

use super::{MemoryStore, State};
use crate::domain::error::WorkflowError;
use crate::domain::model::{Done, IdempotencyKey, KeptAnswer, Once};

impl State {
    /// Runs `work` unless `once` names a key already kept: then its answer is replayed. With a
    /// key, the answer is kept when `work` succeeds; a refusal keeps nothing.
    pub(super) fn once<T>(
        &mut self,
        once: Option<Once<T>>,
        work: impl FnOnce(&mut Self) -> Result<T, WorkflowError>,
    ) -> Result<Done<T>, WorkflowError> {
        let Some(once) = once else {
            return work(self).map(Done::Fresh);
        };
        if let Some(kept) = self.kept.get(&once.key) {
            return once.replay(kept.clone()).map(Done::Replayed);
        }
        let value = work(self)?;
        let answer = (once.render)(&value);
        self.kept.insert(
            once.key,
            KeptAnswer {
                request: once.request,
                answer,
                created_at: Utc::now(),
            },
        );
        Ok(Done::Fresh(value))
    }
}

impl MemoryStore {
    pub(super) fn kept_answer(&self, key: &IdempotencyKey) -> Option<KeptAnswer> {
        self.lock().kept.get(key).cloned()
    }

    pub(super) fn purge_kept_answers(&self, before: DateTime<Utc>) -> u64 {
        let mut state = self.lock();
        let count = state.kept.len();
        state.kept.retain(|_, kept| kept.created_at >= before);
        (count - state.kept.len()) as u64
    }
}
