//! Telemetry: how the process writes its logs. Part of the wiring, beside `app` and `config`:
//! the binary calls [`init`] once; the adapters and the service only emit `tracing` events and
//! spans, and never choose where they go.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber: `filter` in `RUST_LOG` syntax (already validated by
/// `Config`), lines as text or JSON. Each line carries the spans it was emitted in (the
/// request's route and id, the use case), so one request can be followed through the log.
/// A second call does nothing, so tests may call it freely.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    // Already installed (a test that started two apps): keep the first one.
    drop(installed);
}
