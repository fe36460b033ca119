//! Readiness: whether the service can do its work now, check by check (the store, each event
//! adapter that depends on a broker).

/// One dependency's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessCheck {
    /// What was checked (`database`, `nats`), as the operations endpoint names it.
    pub name: &'static str,
    /// `Err` with why not (for the log; it may hold details of the dependency).
    pub outcome: Result<(), String>,
}

impl ReadinessCheck {
    /// A check that passed.
    pub fn ok(name: &'static str) -> Self {
        Self {
            name,
            outcome: Ok(()),
        }
    }
}

/// Every check, the store's first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub checks: Vec<ReadinessCheck>,
}

impl Readiness {
    /// Ready when every check passed.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|c| c.outcome.is_ok())
    }
}
