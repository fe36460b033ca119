//! Webhook types: validated at construction, so that the rest of the core can trust them.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use crate::domain::WorkflowError;
use crate::domain::model::{CallbackKind, Lease, id_type};

/// Longest subscription URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;

/// Random bytes in a new secret (the Standard Webhooks specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// The prefix of a webhook secret, as Standard Webhooks libraries expect it.
pub const SECRET_PREFIX: &str = "whsec_";

id_type!(
    /// A webhook subscription's id.
    SubscriptionId,
    "subscription_id"
);
id_type!(
    /// A webhook delivery's id.
    DeliveryId,
    "delivery_id"
);

/// Where a subscription's deliveries go: an absolute `http` or `https` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// Parses `text`; `Validation` (field `url`) if it is not an absolute http(s) URL with a
    /// host, carries credentials, or is longer than [`MAX_URL_LENGTH`].
    pub fn parse(text: &str) -> Result<Self, WorkflowError> {
        let refuse = |message: &str| WorkflowError::validation("url", message);
        if text.len() > MAX_URL_LENGTH {
            return Err(refuse("must be at most 2048 characters"));
        }
        let url = url::Url::parse(text).map_err(|e| refuse(&format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("must be an http or https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refuse("must name a host"));
        }
        // Credentials in a URL end up in logs and listings.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("must not carry a user name or password"));
        }
        Ok(Self(url))
    }

    /// The URL as parsed (normalised).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

/// A subscription's signing secret: `whsec_` and the base64 of random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never in a log line.
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A new secret from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, WorkflowError> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            WorkflowError::internal(format!("the operating system's CSPRNG failed: {e}"))
        })?;
        Ok(Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))))
    }

    /// A stored secret, as it was written.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The secret as shown to the subscriber.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the base64-decoded bytes after the prefix.
    pub fn key(&self) -> Result<Vec<u8>, String> {
        let encoded = self.0.strip_prefix(SECRET_PREFIX).unwrap_or(&self.0);
        STANDARD
            .decode(encoded)
            .map_err(|e| format!("the subscription's secret is not base64: {e}"))
    }
}

/// The event types a subscription asks for: one or more, each once, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(Vec<CallbackKind>);

impl EventTypes {
    /// From published type names; `Validation` (field `event_types`) if the list is empty or
    /// names an unknown type.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, WorkflowError> {
        let mut kinds = Vec::new();
        for name in names {
            let kind = CallbackKind::from_event_type(name).ok_or_else(|| {
                let known: Vec<&str> = CallbackKind::ALL.iter().map(|k| k.event_type()).collect();
                WorkflowError::validation(
                    "event_types",
                    format!(
                        "'{name}' is not an event type (one of: {})",
                        known.join(", ")
                    ),
                )
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err(WorkflowError::validation(
                "event_types",
                "must list at least one event type",
            ));
        }
        Ok(Self(kinds))
    }

    /// The kinds.
    pub fn kinds(&self) -> &[CallbackKind] {
        &self.0
    }

    /// Whether `kind` is asked for.
    pub fn contains(&self, kind: CallbackKind) -> bool {
        self.0.contains(&kind)
    }
}

/// What a client asks for when subscribing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub url: WebhookUrl,
    pub event_types: EventTypes,
}

/// A subscription to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub url: WebhookUrl,
    pub event_types: EventTypes,
    pub secret: WebhookSecret,
    pub created_at: DateTime<Utc>,
}

/// A stored subscription (its secret is shown once, when it is created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub url: WebhookUrl,
    pub event_types: EventTypes,
    pub secret: WebhookSecret,
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not tried yet, or re-queued (also while its first try runs).
    Pending,
    /// Tried and failed; it will be tried again at `next_attempt_at`.
    Failed,
    /// A 2xx answer came back.
    Delivered,
    /// Failed on every try of the retry schedule; only a manual retry sends it again.
    Dead,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Failed, Self::Delivered, Self::Dead];

    /// The stored and published spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses the spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a manual retry may re-queue it.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Failed | Self::Dead)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    /// The event's public id (the `webhook-id` header).
    pub event_id: String,
    pub event_type: CallbackKind,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub last_status_code: Option<u16>,
    /// When it is tried next (none once delivered or dead).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// An event handed to the webhooks: its id, kind and published body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutEvent {
    pub event_id: String,
    pub kind: CallbackKind,
    /// The envelope, exactly as every receiver gets it.
    pub body: String,
}

/// A delivery claimed for one try, with what sending it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The claim: the delivery's id and its attempts counting this one.
    pub lease: Lease,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    pub event_id: String,
    pub body: String,
}

/// What one try of a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The receiver answered 2xx in time.
    Delivered { status: u16 },
    /// Anything else: another status, a time-out, a refused or unreachable address.
    Failed { status: Option<u16>, error: String },
}

/// The record of one try, for the store: fenced by its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryMark {
    pub lease: Lease,
    pub outcome: MarkOutcome,
}

/// How a try is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkOutcome {
    /// Delivered, with the receiver's status.
    Delivered { status: u16 },
    /// Failed: tried again at `retry_at`, or `dead` when there is none.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Deliveries by status, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub failed: u64,
    pub delivered: u64,
    pub dead: u64,
}

impl DeliveryCounts {
    /// Each status with its count.
    pub fn by_status(&self) -> [(DeliveryStatus, u64); 4] {
        [
            (DeliveryStatus::Pending, self.pending),
            (DeliveryStatus::Failed, self.failed),
            (DeliveryStatus::Delivered, self.delivered),
            (DeliveryStatus::Dead, self.dead),
        ]
    }
}

/// The delays after each failed try: the `n`th failure waits the `n`th delay; a failure past
/// the last delay makes the delivery `dead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// `5s,5m,30m,2h,5h,10h,10h` (the Standard Webhooks reference schedule).
    fn default() -> Self {
        let hour = 3600;
        Self(
            [5, 300, 1800, 2 * hour, 5 * hour, 10 * hour, 10 * hour]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl RetrySchedule {
    /// These delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self(delays)
    }

    /// Parses `1s,500ms,5m,2h` (each a whole number with `ms`, `s`, `m` or `h`); an empty list
    /// means no retry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self(Vec::new()));
        }
        text.split(',')
            .map(|part| parse_delay(part.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// The delay after the try numbered `attempts` (from 1) failed; `None`: no more tries.
    pub fn delay_after(&self, attempts: i32) -> Option<Duration> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        self.0.get(index).copied()
    }

    /// The delays.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

fn parse_delay(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit (ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a whole number"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("'{text}' has an unknown unit (use ms, s, m or h)")),
    };
    n.checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_with_a_host_and_no_credentials() {
        assert_eq!(
            WebhookUrl::parse("https://example.com/hook")
                .unwrap()
                .as_str(),
            "https://example.com/hook"
        );
        assert!(WebhookUrl::parse("http://10.0.0.1:8080/x").is_ok());
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
            "http://",
            "mailto:someone@example.com",
        ] {
            let error = WebhookUrl::parse(bad).unwrap_err();
            assert!(
                matches!(&error, WorkflowError::Validation { field, .. } if field == "url"),
                "{bad}: {error:?}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(WebhookUrl::parse(&long).is_err());
    }

    #[test]
    fn secrets_are_prefixed_random_and_decode_to_their_bytes() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert!(a.as_str().starts_with("whsec_"));
        assert_ne!(a, b);
        assert_eq!(a.key().unwrap().len(), SECRET_BYTES);
        assert!(!format!("{a:?}").contains(a.as_str()));
        assert!(
            WebhookSecret::from_stored("whsec_not base64!".to_owned())
                .key()
                .is_err()
        );
    }

    #[test]
    fn event_types_are_known_non_empty_and_each_once() {
        let types =
            EventTypes::parse(["instance.approved", "step.overdue", "instance.approved"]).unwrap();
        assert_eq!(
            types.kinds(),
            [CallbackKind::OnApproved, CallbackKind::StepOverdue]
        );
        assert!(EventTypes::parse([]).is_err());
        let error = EventTypes::parse(["instance.exploded"]).unwrap_err();
        assert!(error.to_string().contains("instance.exploded"), "{error}");
    }

    #[test]
    fn schedules_parse_and_run_out() {
        let schedule = RetrySchedule::parse("1s, 500ms,2m,1h").unwrap();
        assert_eq!(
            schedule.delays(),
            [
                Duration::from_secs(1),
                Duration::from_millis(500),
                Duration::from_secs(120),
                Duration::from_secs(3600)
            ]
        );
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(schedule.delay_after(4), Some(Duration::from_secs(3600)));
        assert_eq!(schedule.delay_after(5), None);
        assert_eq!(schedule.delay_after(0), None);
        assert_eq!(RetrySchedule::default().delays().len(), 7);
        assert_eq!(
            RetrySchedule::default().delay_after(2),
            Some(Duration::from_secs(300))
        );
        for bad in ["1", "s", "1d", "1s,,2s", "-1s"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
        assert!(RetrySchedule::parse("").unwrap().delays().is_empty());
    }

    #[test]
    fn statuses_round_trip_and_only_failed_or_dead_retry() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
        assert!(DeliveryStatus::Dead.is_retryable());
        assert!(DeliveryStatus::Failed.is_retryable());
        assert!(!DeliveryStatus::Pending.is_retryable());
        assert!(!DeliveryStatus::Delivered.is_retryable());
    }
}
