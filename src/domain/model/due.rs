//! Due dates of steps: how long a step may wait once activated (an ISO 8601 duration), and what
//! the engine does when it waits longer (notify, escalate to another approver, or reject).

use chrono::{DateTime, TimeDelta, Utc};

use super::values::Approver;

/// How long a step may await action once activated: an ISO 8601 duration of days, hours,
/// minutes and seconds (`P2D`, `PT48H`, `P1DT12H`, `PT2S`). Years, months and weeks are refused:
/// their length depends on the calendar, and a due date should not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueIn {
    text: String,
    seconds: i64,
}

/// Longest `due_in`: ten years of days, so that any activation time plus it stays a valid time.
pub const MAX_DUE_IN_SECONDS: i64 = 3650 * 86_400;

impl DueIn {
    /// Parses `PnDTnHnMnS` strictly: upper-case designators, in that order, whole numbers, at
    /// least one part, a `T` only before a time part; the total must be positive and at most
    /// [`MAX_DUE_IN_SECONDS`]. `Err` says what is wrong, for the template's author.
    pub fn parse(text: &str) -> Result<Self, String> {
        const FORM: &str = "must be an ISO 8601 duration of days, hours, minutes and seconds \
                            (PnDTnHnMnS, e.g. \"PT48H\", \"P2D\")";
        let rest = text.strip_prefix('P').ok_or(FORM)?;
        let (date, time) = match rest.split_once('T') {
            // A `T` announces a time part: it can't end the text.
            Some((_, "")) => return Err(FORM.to_owned()),
            Some((date, time)) => (date, Some(time)),
            None => (rest, None),
        };
        let mut total: i64 = 0;
        let mut parts = 0;
        let mut add = |digits: &str, unit: i64| -> Result<(), String> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12
            {
                return Err(FORM.to_owned());
            }
            let n: i64 = digits.parse().map_err(|_| FORM.to_owned())?;
            total = total.saturating_add(n.saturating_mul(unit));
            parts += 1;
            Ok(())
        };
        parse_designated(date, &[('D', 86_400)], &mut add).ok_or(FORM)??;
        if let Some(time) = time {
            parse_designated(time, &[('H', 3600), ('M', 60), ('S', 1)], &mut add).ok_or(FORM)??;
        }
        if parts == 0 {
            return Err(FORM.to_owned());
        }
        if total <= 0 || total > MAX_DUE_IN_SECONDS {
            return Err(format!(
                "must be longer than zero and at most {} days",
                MAX_DUE_IN_SECONDS / 86_400
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            seconds: total,
        })
    }

    /// The duration as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its length in seconds.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// When a step activated at `activated_at` becomes overdue.
    pub fn due_at(&self, activated_at: DateTime<Utc>) -> DateTime<Utc> {
        activated_at + TimeDelta::seconds(self.seconds)
    }
}

/// Splits `text` into `<digits><designator>` parts, the designators among `units` and in their
/// order, each at most once, calling `add` for each. `None` if anything else is in the text.
fn parse_designated(
    text: &str,
    units: &[(char, i64)],
    add: &mut impl FnMut(&str, i64) -> Result<(), String>,
) -> Option<Result<(), String>> {
    let mut rest = text;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !c.is_ascii_digit())?;
        let designator = rest[end..].chars().next()?;
        let position = units[next_unit..]
            .iter()
            .position(|(d, _)| *d == designator)?;
        let (_, unit) = units[next_unit + position];
        if let Err(e) = add(&rest[..end], unit) {
            return Some(Err(e));
        }
        next_unit += position + 1;
        rest = &rest[end + designator.len_utf8()..];
    }
    Some(Ok(()))
}

impl std::fmt::Display for DueIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the engine does when a step is overdue, after it emits `step.overdue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnOverdue {
    /// Nothing more (the event is the notification).
    Notify,
    /// The members of this approver are added to the step's eligible users.
    Escalate { to: Approver },
    /// The step and its instance are rejected by the system.
    Reject,
}

impl OnOverdue {
    /// The rule's name, as the API and the stores spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Escalate { .. } => "escalate",
            Self::Reject => "reject",
        }
    }

    /// Whom the rule escalates to, if it escalates.
    pub fn escalate_to(&self) -> Option<&Approver> {
        match self {
            Self::Escalate { to } => Some(to),
            _ => None,
        }
    }
}

/// A step's due date rule: how long it may wait, and what happens then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRule {
    pub due_in: DueIn,
    pub on_overdue: OnOverdue,
}

/// An awaiting step whose due date has passed and that nobody has handled yet, as the overdue
/// scheduler finds it (then locks its instance and checks again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueStep {
    pub instance_id: super::values::InstanceId,
    pub step_id: super::values::StepId,
    /// Whom to escalate to, when the step's rule escalates (resolved before the lock is taken).
    pub escalate_to: Option<Approver>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> Result<i64, String> {
        DueIn::parse(text).map(|d| d.seconds())
    }

    #[test]
    fn days_hours_minutes_and_seconds_are_read() {
        assert_eq!(seconds("PT48H"), Ok(48 * 3600));
        assert_eq!(seconds("P2D"), Ok(2 * 86_400));
        assert_eq!(seconds("PT2S"), Ok(2));
        assert_eq!(seconds("P1DT2H3M4S"), Ok(86_400 + 2 * 3600 + 3 * 60 + 4));
        assert_eq!(seconds("PT90M"), Ok(90 * 60));
        assert_eq!(DueIn::parse("P1DT12H").unwrap().as_str(), "P1DT12H");
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "P",
            "PT",
            "P1DT",
            "T2H",
            "2H",
            "pt2h",
            "PT2h",
            "P1Y",
            "P1M",
            "P1W",
            "PT1.5H",
            "PT-1H",
            "PT+1H",
            "PT2H3H",
            "PT3M2H",
            "P1H",
            "PT1D",
            "PT0S",
            "P0D",
            "P3651D",
            " PT2H",
            "PT2H ",
            "PT9999999999999H",
            "PTH",
            "P1D2D",
        ] {
            assert!(DueIn::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn the_due_time_is_the_activation_plus_the_duration() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let due = DueIn::parse("P1DT1S").unwrap().due_at(at);
        assert_eq!(due.to_rfc3339(), "2026-12-02T10:00:01+00:00");
    }
}
