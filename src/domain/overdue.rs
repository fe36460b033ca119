//! The overdue scheduler: a background use case that finds awaiting steps whose due date has
//! passed and handles each once (the `step.overdue` event, then the step's `on_overdue` rule,
//! decided by [`machine::overdue`]). Time comes from the `Clock` port. Several processes may run
//! it on one database: the repository locks each step's instance and skips one another process
//! holds, and the machine re-checks the step under the lock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::error::WorkflowError;
use super::machine;
use super::ports::{Clock, RoleResolver, WorkflowRepository};

/// Default time between two looks for overdue steps (`OVERDUE_POLL_INTERVAL`).
pub const DEFAULT_OVERDUE_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Overdue steps handled per round at most; a round that finds this many runs again at once.
pub const OVERDUE_BATCH: u32 = 100;

/// Handles overdue steps through the repository, resolving escalations in the directory.
pub struct OverdueScheduler<R, U, C> {
    repo: Arc<R>,
    roles: Arc<U>,
    clock: Arc<C>,
    /// Woken when a round wrote events, so the dispatcher sends them at once.
    outbox: Arc<Notify>,
}

impl<R: WorkflowRepository, U: RoleResolver, C: Clock> OverdueScheduler<R, U, C> {
    pub fn new(repo: Arc<R>, roles: Arc<U>, clock: Arc<C>, outbox: Arc<Notify>) -> Self {
        Self {
            repo,
            roles,
            clock,
            outbox,
        }
    }

    /// One round: handles up to [`OVERDUE_BATCH`] steps overdue now, each in its own unit of
    /// work; returns how many this process handled (a step another process holds, or one that
    /// was decided meanwhile, is not counted). A step that fails is logged and left for the
    /// next round.
    pub async fn run_once(&self) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let found = self.repo.overdue_steps(now, OVERDUE_BATCH).await?;
        let mut handled = 0;
        for step in found {
            // Resolved now, outside the lock: who holds the role at the time it escalates.
            let members = match &step.escalate_to {
                Some(approver) => self
                    .roles
                    .eligible_users(std::slice::from_ref(approver))
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let step_id = step.step_id;
            let decide =
                Box::new(move |instance: &_| machine::overdue(instance, step_id, &members, now));
            match self.repo.handle_overdue(step.clone(), decide).await {
                Ok(Some(_)) => handled += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(step = %step.step_id, error = %e, "handling an overdue step failed")
                }
            }
        }
        if handled > 0 {
            self.outbox.notify_one();
        }
        Ok(handled)
    }

    /// Runs a round at start and then every `every` (at once again after a full round), until
    /// `shutdown` turns true. A failed round is logged and retried at the next one.
    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let full = match self.run_once().await {
                Ok(0) => false,
                Ok(handled) => {
                    tracing::info!(handled, "overdue steps handled");
                    handled >= OVERDUE_BATCH as usize
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking for overdue steps failed");
                    false
                }
            };
            if full {
                continue;
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
    use chrono::{TimeDelta, TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::domain::model::{
        Approver, DueIn, DueRule, EntityId, EntityType, EventName, Instance, InstanceId,
        InstanceStatus, InstanceStep, OnOverdue, OverdueStep, RoleName, StepId, StepStatus,
        TemplateId, UserId,
    };
    use crate::domain::ports::{MockClock, MockRoleResolver, MockWorkflowRepository};

    fn uid(n: i64) -> UserId {
        UserId::new(n).unwrap()
    }

    fn director() -> Approver {
        Approver::Role {
            role: RoleName::new("director").unwrap(),
        }
    }

    /// Instance 1 whose step 11 (users 1, 2) was activated at `activated` with `PT2S` to
    /// escalate to the directors.
    fn instance(activated: chrono::DateTime<Utc>) -> Instance {
        let due_in = DueIn::parse("PT2S").unwrap();
        Instance {
            id: InstanceId::new(1).unwrap(),
            template_id: TemplateId::new(1).unwrap(),
            template_version: 1,
            event: EventName::new("unit.discount_requested").unwrap(),
            entity_type: EntityType::new("unit").unwrap(),
            entity_id: EntityId::new(9).unwrap(),
            initiated_by: uid(3),
            status: InstanceStatus::InProgress,
            context: None,
            created_at: activated,
            updated_at: activated,
            completed_at: None,
            steps: vec![InstanceStep {
                id: StepId::new(11).unwrap(),
                step_order: 1,
                name: "Review".to_owned(),
                approver: director(),
                eligible_user_ids: vec![uid(1), uid(2)],
                quorum: 1,
                approvals: Vec::new(),
                status: StepStatus::AwaitingAction,
                acted_by_user_id: None,
                comment: None,
                acted_at: None,
                activated_at: Some(activated),
                due_at: Some(due_in.due_at(activated)),
                due: Some(DueRule {
                    due_in,
                    on_overdue: OnOverdue::Escalate { to: director() },
                }),
                overdue_at: None,
            }],
            audit: Vec::new(),
        }
    }

    /// A scheduler whose clock reads `now`, whose repository lists step 11 and runs the
    /// machine on [`instance`], and whose directory says the directors are users 5 and 6.
    async fn round_at(now: chrono::DateTime<Utc>) -> (usize, Option<Instance>) {
        let activated = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_overdue_steps()
            .with(eq(now), eq(OVERDUE_BATCH))
            .returning(|_, _| {
                Box::pin(async {
                    Ok(vec![OverdueStep {
                        instance_id: InstanceId::new(1).unwrap(),
                        step_id: StepId::new(11).unwrap(),
                        escalate_to: Some(director()),
                    }])
                })
            });
        let stored = std::sync::Arc::new(std::sync::Mutex::new(None));
        let keep = Arc::clone(&stored);
        repo.expect_handle_overdue().returning(move |_, decide| {
            let result = decide(&instance(activated)).map(|d| d.map(|d| d.instance));
            *keep.lock().unwrap() = result.clone().ok().flatten();
            Box::pin(async move { result })
        });
        let mut roles = MockRoleResolver::new();
        roles
            .expect_eligible_users()
            .with(eq(vec![director()]))
            .returning(|_| Box::pin(async { Ok(vec![vec![uid(5), uid(6)]]) }));
        let scheduler = OverdueScheduler::new(
            Arc::new(repo),
            Arc::new(roles),
            Arc::new(clock),
            Arc::new(Notify::new()),
        );
        let handled = scheduler.run_once().await.unwrap();
        let after = stored.lock().unwrap().clone();
        (handled, after)
    }

    #[tokio::test]
    async fn a_round_before_the_due_time_changes_nothing() {
        let activated = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let (handled, after) = round_at(activated + TimeDelta::milliseconds(1999)).await;
        assert_eq!((handled, after), (0, None));
    }

    #[tokio::test]
    async fn a_round_at_or_after_the_due_time_escalates_with_the_clocks_time() {
        let activated = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        for late in [0, 5000] {
            let now = activated + TimeDelta::seconds(2) + TimeDelta::milliseconds(late);
            let (handled, after) = round_at(now).await;
            assert_eq!(handled, 1);
            let step = &after.unwrap().steps[0];
            assert_eq!(step.overdue_at, Some(now));
            assert_eq!(step.eligible_user_ids, vec![uid(1), uid(2), uid(5), uid(6)]);
        }
    }
}
