//! The key janitor: a background use case that forgets idempotency keys once they have been
//! kept for their lifetime (at least [`IDEMPOTENCY_KEY_LIFETIME`]), so that the table of kept
//! answers does not grow for ever. Time comes from the `Clock` port.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::error::WorkflowError;
use super::model::IDEMPOTENCY_KEY_LIFETIME;
use super::ports::{Clock, WorkflowRepository};

/// How often the janitor purges.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Purges expired idempotency keys through the repository.
pub struct KeyJanitor<R, C> {
    repo: Arc<R>,
    clock: Arc<C>,
}

impl<R: WorkflowRepository, C: Clock> KeyJanitor<R, C> {
    pub fn new(repo: Arc<R>, clock: Arc<C>) -> Self {
        Self { repo, clock }
    }

    /// Forgets every key kept for longer than its lifetime; returns how many went.
    pub async fn run_once(&self) -> Result<u64, WorkflowError> {
        let before = self.clock.now() - IDEMPOTENCY_KEY_LIFETIME;
        self.repo.purge_kept_answers(before).await
    }

    /// Purges at start and then every `every`, until `shutdown` turns true. A failed round is
    /// logged and retried at the next one.
    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::domain::ports::{MockClock, MockWorkflowRepository};

    #[tokio::test]
    async fn keys_older_than_their_lifetime_are_purged() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_purge_kept_answers()
            .with(eq(Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()))
            .times(1)
            .returning(|_| Box::pin(async { Ok(3) }));
        let janitor = KeyJanitor::new(Arc::new(repo), Arc::new(clock));
        assert_eq!(janitor.run_once().await, Ok(3));
    }

    #[tokio::test]
    async fn the_loop_purges_at_start_and_stops_when_asked() {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_purge_kept_answers()
            .times(1)
            .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("down".to_owned())) }));
        let (stop, watcher) = watch::channel(false);
        let janitor = KeyJanitor::new(Arc::new(repo), Arc::new(clock));
        let running = tokio::spawn(janitor.run(Duration::from_secs(3600), watcher));
        tokio::task::yield_now().await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("the janitor stops when asked")
            .unwrap();
    }
}
