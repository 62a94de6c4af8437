//! Logging: human-readable lines by default, JSON lines with `RINNOVO_LOG_FORMAT=json`,
//! level and targets from `RINNOVO_LOG` (default `info`).

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RINNOVO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // The request span (method, route, status, request id) closes with one line
        // per request, with its duration.
        .with_span_events(FmtSpan::CLOSE);
    // try_init: tests may call this more than once.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
