//! Start-up configuration, read from the environment into a typed struct. A bad value is an
//! error that names the variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::domain::overdue::DEFAULT_OVERDUE_POLL_INTERVAL;
use crate::domain::webhooks::model::RetrySchedule;
use crate::outbound::nats::{DEFAULT_STREAM, DEFAULT_TIMEOUT, NatsConfig};

/// Everything the binary reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// PostgreSQL URL; `None` means the in-memory store.
    pub database_url: Option<String>,
    /// Where `serve` listens.
    pub bind_addr: SocketAddr,
    /// Most database connections held at once.
    pub pool_size: u32,
    /// The tracing filter (`RUST_LOG` syntax).
    pub log_filter: String,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Most HTTP connections open at once (`HTTP_MAX_CONNECTIONS`); `None`: derived from the
    /// open-file limit at start (see `open_files`).
    pub max_connections: Option<usize>,
    /// Time a client has to send a request's headers once it has begun them.
    pub header_read_timeout: Duration,
    /// Time a connection may sit without a request before it is closed.
    pub idle_timeout: Duration,
    /// Whether requests are counted for `/metrics` (`METRICS`, `on` or `off`).
    pub metrics: bool,
    /// How often `serve` looks for overdue steps (`OVERDUE_POLL_INTERVAL`, 100ms to 1h).
    pub overdue_poll_interval: Duration,
    /// Whether webhooks may reach loopback, private and link-local addresses
    /// (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`, `true` or `false`).
    pub webhook_allow_private_networks: bool,
    /// The delays after each failed webhook try (`WEBHOOK_RETRY_SCHEDULE`).
    pub webhook_retry_schedule: RetrySchedule,
    /// How long a webhook receiver has to answer (`WEBHOOK_TIMEOUT`).
    pub webhook_timeout: Duration,
    /// Where events are published besides the log: NATS JetStream when `NATS_URL` is set
    /// (`NATS_STREAM`, `NATS_TIMEOUT`).
    pub nats: Option<NatsConfig>,
}

/// Default of `HTTP_HEADER_READ_TIMEOUT`.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `HTTP_IDLE_TIMEOUT`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of `WEBHOOK_TIMEOUT`.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `HTTP_MAX_CONNECTIONS` accepted.
pub const MAX_CONNECTIONS_CEILING: usize = 1_000_000;

/// The shape of log lines (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A variable with a value that can't be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`; unset and empty are the same.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url = get("DATABASE_URL");
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError {
                variable: "DATABASE_URL",
                message: "must be a postgres:// or postgresql:// URL".to_owned(),
            });
        }
        let bind_addr = match get("BIND_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
                variable: "BIND_ADDR",
                message: format!("'{raw}' is not an address like 127.0.0.1:8080"),
            })?,
        };
        let pool_size = match get("DATABASE_POOL_SIZE") {
            None => 16,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError {
                    variable: "DATABASE_POOL_SIZE",
                    message: format!("'{raw}' is not a whole number from 1 to 1000"),
                })?,
        };
        let log_filter = get("RUST_LOG").unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            return Err(ConfigError {
                variable: "RUST_LOG",
                message: format!("'{log_filter}' is not a valid log filter"),
            });
        }
        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    variable: "LOG_FORMAT",
                    message: format!("'{other}' is neither 'text' nor 'json'"),
                });
            }
        };
        let max_connections = match get("HTTP_MAX_CONNECTIONS") {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_CONNECTIONS_CEILING).contains(n))
                    .ok_or_else(|| ConfigError {
                        variable: "HTTP_MAX_CONNECTIONS",
                        message: format!(
                            "'{raw}' is not a whole number from 1 to {MAX_CONNECTIONS_CEILING}"
                        ),
                    })?,
            ),
        };
        let timeout = |variable: &'static str, default: Duration| match get(variable) {
            None => Ok(default),
            Some(raw) => parse_timeout(&raw).ok_or_else(|| ConfigError {
                variable,
                message: format!(
                    "'{raw}' is not a time-out from 100ms to 1h, like 500ms, 10s or 2m"
                ),
            }),
        };
        let metrics = match get("METRICS").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError {
                    variable: "METRICS",
                    message: format!("'{other}' is neither 'on' nor 'off'"),
                });
            }
        };
        let webhook_allow_private_networks = match get("WEBHOOK_ALLOW_PRIVATE_NETWORKS")
            .as_deref()
            .map(str::trim)
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
                    message: format!("'{other}' is neither 'true' nor 'false'"),
                });
            }
        };
        let webhook_retry_schedule = match get("WEBHOOK_RETRY_SCHEDULE") {
            None => RetrySchedule::default(),
            Some(raw) => RetrySchedule::parse(&raw).map_err(|message| ConfigError {
                variable: "WEBHOOK_RETRY_SCHEDULE",
                message: format!("{message}; write delays like 5s,5m,30m,2h"),
            })?,
        };
        let nats = match get("NATS_URL") {
            None => None,
            Some(url) => Some(NatsConfig {
                url: parse_nats_url(&url)?,
                stream: match get("NATS_STREAM") {
                    None => DEFAULT_STREAM.to_owned(),
                    Some(raw) => parse_stream_name(&raw)?,
                },
                timeout: timeout("NATS_TIMEOUT", DEFAULT_TIMEOUT)?,
            }),
        };
        Ok(Self {
            webhook_allow_private_networks,
            webhook_retry_schedule,
            webhook_timeout: timeout("WEBHOOK_TIMEOUT", DEFAULT_WEBHOOK_TIMEOUT)?,
            database_url,
            bind_addr,
            pool_size,
            log_filter,
            log_format,
            max_connections,
            header_read_timeout: timeout("HTTP_HEADER_READ_TIMEOUT", DEFAULT_HEADER_READ_TIMEOUT)?,
            idle_timeout: timeout("HTTP_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)?,
            metrics,
            overdue_poll_interval: match get("OVERDUE_POLL_INTERVAL") {
                None => DEFAULT_OVERDUE_POLL_INTERVAL,
                Some(raw) => parse_timeout(&raw).ok_or_else(|| ConfigError {
                    variable: "OVERDUE_POLL_INTERVAL",
                    message: format!(
                        "'{raw}' is not an interval from 100ms to 1h, like 500ms, 1s or 2m"
                    ),
                })?,
            },
            nats,
        })
    }
}

/// `NATS_URL`: one or more server addresses, comma-separated, each as the NATS client takes it
/// (`nats://host:4222`, `tls://...`, or `host:port`).
fn parse_nats_url(raw: &str) -> Result<String, ConfigError> {
    let url = raw.trim();
    for server in url.split(',') {
        if let Err(e) = async_nats::ServerAddr::from_str(server.trim()) {
            return Err(ConfigError {
                variable: "NATS_URL",
                message: format!("'{}' is not a NATS server address: {e}", server.trim()),
            });
        }
    }
    Ok(url.to_owned())
}

/// `NATS_STREAM`: a JetStream stream name (letters, digits, `-` and `_`, at most 255).
fn parse_stream_name(raw: &str) -> Result<String, ConfigError> {
    let name = raw.trim();
    if name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(name.to_owned())
    } else {
        Err(ConfigError {
            variable: "NATS_STREAM",
            message: format!(
                "'{name}' is not a stream name (letters, digits, '-' and '_', at most 255)"
            ),
        })
    }
}

/// A time-out written as a whole number with a unit (`ms`, `s` or `m`), from 100 ms to 1 h.
fn parse_timeout(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let digits = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.checked_mul(60)?),
        _ => return None,
    };
    (Duration::from_millis(100)..=Duration::from_secs(3600))
        .contains(&duration)
        .then_some(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database_url, None);
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.pool_size, 16);
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.max_connections, None);
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert!(c.metrics);
        assert_eq!(c.nats, None);
        assert!(!config(&[("METRICS", "off")]).unwrap().metrics);
        assert_eq!(c.overdue_poll_interval, Duration::from_secs(1));
        assert_eq!(
            config(&[("OVERDUE_POLL_INTERVAL", "250ms")])
                .unwrap()
                .overdue_poll_interval,
            Duration::from_millis(250)
        );
        assert_eq!(
            config(&[("OVERDUE_POLL_INTERVAL", "0s")]).map(|c| c.overdue_poll_interval),
            Err(ConfigError {
                variable: "OVERDUE_POLL_INTERVAL",
                message: "'0s' is not an interval from 100ms to 1h, like 500ms, 1s or 2m"
                    .to_owned(),
            })
        );
        assert!(!c.webhook_allow_private_networks);
        assert_eq!(c.webhook_retry_schedule, RetrySchedule::default());
        assert_eq!(c.webhook_timeout, Duration::from_secs(10));
        assert_eq!(
            config(&[("METRICS", "no")]).unwrap_err().variable,
            "METRICS"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            config(&[("BIND_ADDR", "nope")]).unwrap_err().variable,
            "BIND_ADDR"
        );
        assert_eq!(
            config(&[("DATABASE_POOL_SIZE", "0")]).unwrap_err().variable,
            "DATABASE_POOL_SIZE"
        );
        assert_eq!(
            config(&[("DATABASE_URL", "mysql://x")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        assert_eq!(
            config(&[("RUST_LOG", "[[[")]).unwrap_err().variable,
            "RUST_LOG"
        );
        assert_eq!(
            config(&[("LOG_FORMAT", "xml")]).unwrap_err().variable,
            "LOG_FORMAT"
        );
        for bad in ["0", "-1", "many", "1000001"] {
            assert_eq!(
                config(&[("HTTP_MAX_CONNECTIONS", bad)])
                    .unwrap_err()
                    .variable,
                "HTTP_MAX_CONNECTIONS",
                "{bad}"
            );
        }
        for bad in [
            "10",
            "10x",
            "s",
            "99ms",
            "61m",
            "1.5s",
            "-1s",
            "99999999999999999999m",
        ] {
            for variable in ["HTTP_HEADER_READ_TIMEOUT", "HTTP_IDLE_TIMEOUT"] {
                assert_eq!(
                    config(&[(variable, bad)]).unwrap_err().variable,
                    variable,
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn nats_is_configured_by_its_url() {
        let c = config(&[("NATS_URL", "nats://127.0.0.1:4222")]).unwrap();
        assert_eq!(
            c.nats,
            Some(NatsConfig {
                url: "nats://127.0.0.1:4222".to_owned(),
                stream: "APPROVALS".to_owned(),
                timeout: Duration::from_secs(5),
            })
        );
        let c = config(&[
            ("NATS_URL", "nats://a:4222, nats://b:4222"),
            ("NATS_STREAM", "EVENTS_1"),
            ("NATS_TIMEOUT", "500ms"),
        ])
        .unwrap()
        .nats
        .unwrap();
        assert_eq!(c.stream, "EVENTS_1");
        assert_eq!(c.timeout, Duration::from_millis(500));
        for (variable, bad) in [
            ("NATS_URL", "http://x:4222"),
            ("NATS_URL", "nats://a:4222,nats://b:port"),
            ("NATS_STREAM", "approvals.events"),
            ("NATS_STREAM", "a b"),
            ("NATS_STREAM", "EVENTS>"),
            ("NATS_TIMEOUT", "5"),
        ] {
            let vars = [("NATS_URL", "nats://127.0.0.1:4222"), (variable, bad)];
            assert_eq!(config(&vars).unwrap_err().variable, variable, "{bad}");
        }
        // Without a URL the other NATS variables are not used.
        assert_eq!(config(&[("NATS_STREAM", "EVENTS")]).unwrap().nats, None);
    }

    #[test]
    fn time_outs_take_a_unit() {
        assert_eq!(parse_timeout("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout(" 15s "), Some(Duration::from_secs(15)));
        assert_eq!(parse_timeout("60m"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn set_values_are_used() {
        let c = config(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("BIND_ADDR", "0.0.0.0:9000"),
            ("DATABASE_POOL_SIZE", "4"),
            ("LOG_FORMAT", "json"),
            ("HTTP_MAX_CONNECTIONS", "300"),
            ("HTTP_HEADER_READ_TIMEOUT", "2s"),
            ("HTTP_IDLE_TIMEOUT", "1500ms"),
        ])
        .unwrap();
        assert_eq!(c.max_connections, Some(300));
        assert_eq!(c.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.idle_timeout, Duration::from_millis(1500));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.database_url.as_deref(), Some("postgres://u@h/db"));
        assert_eq!(c.bind_addr.port(), 9000);
        assert_eq!(c.pool_size, 4);
    }

    #[test]
    fn webhook_settings_are_read_and_checked() {
        let c = config(&[
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WEBHOOK_RETRY_SCHEDULE", "1s,1s,2s"),
            ("WEBHOOK_TIMEOUT", "2s"),
        ])
        .unwrap();
        assert!(c.webhook_allow_private_networks);
        assert_eq!(
            c.webhook_retry_schedule,
            RetrySchedule::parse("1s,1s,2s").unwrap()
        );
        assert_eq!(c.webhook_timeout, Duration::from_secs(2));
        for (variable, value) in [
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "yes"),
            ("WEBHOOK_RETRY_SCHEDULE", "1s,soon"),
            ("WEBHOOK_TIMEOUT", "2d"),
        ] {
            assert_eq!(config(&[(variable, value)]).unwrap_err().variable, variable);
        }
    }
}
