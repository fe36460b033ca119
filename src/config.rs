//! Start-up configuration, read from the environment into a typed struct. A bad value is an
//! error that names the variable.

use std::net::SocketAddr;

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
}

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
        Ok(Self {
            database_url,
            bind_addr,
            pool_size,
            log_filter,
            log_format,
        })
    }
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
    }

    #[test]
    fn set_values_are_used() {
        let c = config(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("BIND_ADDR", "0.0.0.0:9000"),
            ("DATABASE_POOL_SIZE", "4"),
            ("LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.database_url.as_deref(), Some("postgres://u@h/db"));
        assert_eq!(c.bind_addr.port(), 9000);
        assert_eq!(c.pool_size, 4);
    }
}
