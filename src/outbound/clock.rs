//! The system clock adapter for the `Clock` port.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::domain::ports::Clock;

/// Wall-clock time, truncated to microseconds so that what is returned equals what is stored.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now.duration_trunc(TimeDelta::microseconds(1))
            .unwrap_or(now)
    }
}
