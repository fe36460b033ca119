//! The `approvals` binary: reads configuration, sets up logging, wires adapters and runs one of
//! `serve` (default), `migrate` or `seed`.

// warp's route tree is one deeply nested type, and laying out its server future for the
// PostgreSQL store takes more than the default 128 levels.
#![recursion_limit = "256"]

use std::process::ExitCode;
use std::sync::Arc;

use approvals::config::Config;
use approvals::demo::{self, demo_data};
use approvals::domain::WorkflowError;
use approvals::domain::dispatcher::DispatchConfig;
use approvals::inbound::http::ConnectionLimits;
use approvals::inbound::http::metrics::Metrics;
use approvals::outbound::callbacks::Adapters;
use approvals::outbound::memory::MemoryStore;
use approvals::outbound::nats::NatsCallbacks;
use approvals::outbound::postgres::{self, PgConfig, PgStore};
use approvals::outbound::webhooks::WebhookSettings;
use approvals::{app, open_files, telemetry};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const USAGE: &str = "usage: approvals [serve|migrate|seed]
  serve    run the HTTP API (default); applies pending migrations first
  migrate  apply pending database migrations and exit
  seed     load the demo data (safe to run twice) and exit
environment: DATABASE_URL (none: in-memory demo store), BIND_ADDR (127.0.0.1:8080),
             DATABASE_POOL_SIZE (16), RUST_LOG (info), LOG_FORMAT (text|json),
             HTTP_MAX_CONNECTIONS (what fits under the open-file limit, at most 10000),
             HTTP_HEADER_READ_TIMEOUT (10s), HTTP_IDLE_TIMEOUT (60s),
             WEBHOOK_ALLOW_PRIVATE_NETWORKS (false), WEBHOOK_RETRY_SCHEDULE (5s,5m,30m,2h,5h,10h,10h),
             WEBHOOK_TIMEOUT (10s), NATS_URL (none: events go to the log only),
             NATS_STREAM (APPROVALS), NATS_TIMEOUT (5s)";

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_filter, config.log_format);

    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    let result = match command.as_str() {
        "serve" => serve(&config).await,
        "migrate" => migrate(&config).await,
        "seed" => seed(&config).await,
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("unknown command '{other}'\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "command failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn require_database(config: &Config, command: &str) -> Result<String, String> {
    config
        .database_url
        .clone()
        .ok_or_else(|| format!("DATABASE_URL must be set for '{command}'"))
}

fn domain_error(context: &str) -> impl Fn(WorkflowError) -> String + '_ {
    move |e| format!("{context}: {}", e.chain())
}

async fn migrate(config: &Config) -> Result<(), String> {
    let url = require_database(config, "migrate")?;
    let applied = postgres::run_migrations(&url)
        .await
        .map_err(domain_error("migration failed"))?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(?applied, "applied migrations");
    }
    Ok(())
}

async fn connect(config: &Config, url: &str) -> Result<Arc<PgStore>, String> {
    let pg = PgConfig {
        pool_size: config.pool_size,
        ..PgConfig::default()
    };
    Ok(Arc::new(PgStore::connect(url, &pg).await.map_err(
        domain_error("can't set up the connection pool"),
    )?))
}

async fn seed(config: &Config) -> Result<(), String> {
    let url = require_database(config, "seed")?;
    postgres::run_migrations(&url)
        .await
        .map_err(domain_error("migration failed"))?;
    let store = connect(config, &url).await?;
    let demo = demo_data();
    let service = app::service(Arc::clone(&store), Arc::new(Notify::new()));
    let fresh = demo::load(&service, &demo)
        .await
        .map_err(domain_error("seeding failed"))?;
    // After the users: commissions refer to their agent.
    store
        .load_property_records(&demo.properties)
        .await
        .map_err(domain_error("seeding the property records failed"))?;
    if fresh {
        tracing::info!("demo data loaded");
    } else {
        tracing::info!("demo data was already loaded; nothing changed");
    }
    Ok(())
}

/// The connection limits to serve with, after raising the open-file limit as far as allowed.
fn connection_limits(config: &Config) -> Result<ConnectionLimits, String> {
    let open_files = open_files::raise_limit();
    let max_connections =
        open_files::connection_cap(config.max_connections, open_files, config.pool_size)?;
    tracing::info!(open_files, max_connections, "connection cap");
    Ok(ConnectionLimits {
        max_connections,
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
    })
}

async fn serve(config: &Config) -> Result<(), String> {
    let limits = connection_limits(config)?;
    let listener = TcpListener::bind(config.bind_addr)
        .await
        .map_err(|e| format!("BIND_ADDR: can't listen on {}: {e}", config.bind_addr))?;
    let mut adapters = Adapters::new();
    if let Some(nats) = &config.nats {
        tracing::info!(url = %nats.url, stream = %nats.stream, "publishing events to NATS JetStream");
        adapters = adapters.with_nats(NatsCallbacks::connect(nats.clone()).await?);
    }
    let callbacks = Arc::new(adapters);
    let metrics = Arc::new(if config.metrics {
        Metrics::new()
    } else {
        Metrics::disabled()
    });
    let app = match &config.database_url {
        Some(url) => {
            migrate(config).await?;
            let store = connect(config, url).await?;
            app::start_with_metrics(
                store,
                callbacks,
                listener,
                DispatchConfig {
                    overdue_poll_interval: config.overdue_poll_interval,
                    ..DispatchConfig::default()
                },
                limits,
                metrics,
                webhook_settings(config),
            )
        }
        None => {
            tracing::warn!(
                "DATABASE_URL is not set: using the in-memory store with demo data; nothing is persisted"
            );
            let store = Arc::new(MemoryStore::new());
            let service = app::service(Arc::clone(&store), Arc::new(Notify::new()));
            demo::load(&service, &demo_data())
                .await
                .map_err(domain_error("loading the demo data failed"))?;
            app::start_with_metrics(
                store,
                callbacks,
                listener,
                DispatchConfig {
                    overdue_poll_interval: config.overdue_poll_interval,
                    ..DispatchConfig::default()
                },
                limits,
                metrics,
                webhook_settings(config),
            )
        }
    };
    tracing::info!(addr = %app.addr, "listening");
    shutdown_signal().await;
    tracing::info!("shutting down");
    app.stop().await;
    Ok(())
}

/// How webhooks are sent, from the configuration.
fn webhook_settings(config: &Config) -> WebhookSettings {
    WebhookSettings {
        allow_private_networks: config.webhook_allow_private_networks,
        timeout: config.webhook_timeout,
        schedule: config.webhook_retry_schedule.clone(),
        ..WebhookSettings::default()
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
