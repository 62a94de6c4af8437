//! Logging: human-readable lines by default, JSON lines with `RINNOVO_LOG_FORMAT=json`,
//! level and targets from `RINNOVO_LOG` (default `info`).
//!
//! One event is one line. Log fields carry what clients sent (product ids, emails, error
//! details quoting a body), so a newline in them would forge a second log line and a NUL
//! or a terminal escape would be written as it came. The text format therefore writes
//! every field, span fields and messages included, through [`escape_for_log`]: control
//! characters and bidirectional overrides become visible escapes (`\n`, `\0`,
//! `\u{202e}`). The JSON format is escaped by JSON itself (control characters are
//! `\n`, `\u0000` inside strings), so it needs nothing more.

use std::borrow::Cow;
use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, FmtSpan};
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
        LogFormat::Text => builder
            .fmt_fields(
                debug_fn(|writer, field, value| {
                    let text = format!("{value:?}");
                    let text = escape_for_log(&text);
                    if field.name() == "message" {
                        write!(writer, "{text}")
                    } else {
                        write!(writer, "{field}={text}")
                    }
                })
                .delimited(" "),
            )
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// `text` with every control character (newlines, NUL, escape...) and every
/// bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069) written as a visible
/// escape, so it stays on one line and reads as it is stored.
pub fn escape_for_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The request span, as tracing-actix-web's default but without the raw path and query
/// (`http.target`): paths carry codici fiscali and coupon codes, personal data and bearer
/// secrets that have no place in logs. The route pattern (`/api/v1/coupons/{code}/status`)
/// says what was called.
pub struct RedactedRootSpan;

impl tracing_actix_web::RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let method = request.method().as_str().to_owned();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::escape_for_log;

    #[test]
    fn control_characters_and_overrides_become_visible_escapes() {
        assert_eq!(escape_for_log("RIN-FIRMA"), "RIN-FIRMA");
        assert_eq!(
            escape_for_log("a\nb\r\0c\u{1b}[31m\u{202e}d\tè"),
            "a\\nb\\r\\0c\\u{1b}[31m\\u{202e}d\\tè"
        );
    }
}
