//! The dispatcher: claims due emails from the outbox and hands them to the transport
//! (SMTP, or `.eml` files when no SMTP server is configured), with retries and backoff.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{FileTransport, Message, SmtpTransport, Transport as _};

use super::outbox::{self, ClaimedEmail};
use super::templates;
use crate::db::Pool;

pub enum Transport {
    Smtp(Box<SmtpTransport>),
    Files(FileTransport),
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub max_attempts: i32,
    pub retry_base: Duration,
    pub batch: i64,
    /// How long a claimed email is ours before another dispatcher may take it.
    pub lease: Duration,
    pub idle_poll: StdDuration,
    /// Dispatch loops running side by side (each with its own SMTP connection). lettre
    /// 0.11 leaves Nagle's algorithm on, so each message waits ~40 ms for the server's
    /// delayed ACK; loops in parallel keep the throughput up meanwhile.
    pub concurrency: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base: Duration::seconds(30),
            batch: 10,
            lease: Duration::minutes(2),
            idle_poll: StdDuration::from_millis(500),
            concurrency: 16,
        }
    }
}

impl Transport {
    /// `smtp://host:port` (plain, for a local relay), `smtp://...?tls=required` or
    /// `smtps://user:pass@host:465` (TLS): lettre's URL format. None: files in `dir`.
    pub fn new(smtp_url: Option<&str>, dir: PathBuf, connections: u32) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)
                    .map_err(|e| anyhow::anyhow!("RINNOVO_SMTP_URL: {e}"))?
                    .timeout(Some(StdDuration::from_secs(10)))
                    .pool_config(PoolConfig::new().max_size(connections.max(1)))
                    .build();
                Ok(Self::Smtp(Box::new(transport)))
            }
            None => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                // One `<message-id>.eml` file per email.
                Ok(Self::Files(FileTransport::new(dir)))
            }
        }
    }

    fn send(&self, message: &Message) -> Result<(), String> {
        match self {
            Self::Smtp(smtp) => smtp.send(message).map(|_| ()).map_err(|e| e.to_string()),
            Self::Files(files) => files.send(message).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// The message and its subject, rendered from the email's template and context.
fn build_message(email: &ClaimedEmail) -> Result<(Message, String), String> {
    let from: Mailbox = email.sender.parse().map_err(|e| format!("sender: {e}"))?;
    let to: Mailbox = email
        .recipient
        .parse()
        .map_err(|e| format!("recipient: {e}"))?;
    let mut context: serde_json::Value =
        serde_json::from_str(&email.context).map_err(|e| format!("context: {e}"))?;
    if let (Some(number), Some(values)) = (&email.invoice_number, context.as_object_mut()) {
        values
            .entry("invoice_number")
            .or_insert_with(|| serde_json::Value::String(number.clone()));
    }
    let rendered =
        templates::render(&email.kind, &context).map_err(|e| format!("template: {e:#}"))?;
    let bodies = MultiPart::alternative_plain_html(rendered.text, rendered.html);
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(&rendered.subject);
    let message = match (&email.attachment_name, &email.attachment_content) {
        (Some(name), Some(content)) => {
            builder.multipart(MultiPart::mixed().multipart(bodies).singlepart(
                Attachment::new(name.clone()).body(
                    content.clone(),
                    ContentType::parse("text/csv; charset=utf-8").expect("valid"),
                ),
            ))
        }
        _ => builder.multipart(bodies),
    };
    message
        .map(|m| (m, rendered.subject))
        .map_err(|e| e.to_string())
}

/// Claims one batch and sends it. Returns how many emails it handled. No database
/// connection is held while talking to the mail server: the pool serves the API.
pub fn run_once(
    pool: &Pool,
    transport: &Transport,
    settings: &DispatchSettings,
) -> anyhow::Result<usize> {
    let claimed = outbox::claim_due(
        &mut *pool.get()?,
        settings.batch,
        settings.lease,
        Utc::now(),
    )?;
    for email in &claimed {
        let result = build_message(email)
            .and_then(|(message, subject)| transport.send(&message).map(|()| subject));
        let mut conn = pool.get()?;
        match result {
            Ok(subject) => {
                outbox::mark_sent(&mut conn, &email.id, &subject, Utc::now())?;
                tracing::debug!(email = %email.id, "email sent");
            }
            Err(error) => {
                tracing::warn!(email = %email.id, attempt = email.attempts, %error, "email not sent");
                outbox::mark_failed(
                    &mut conn,
                    email,
                    &error,
                    settings.max_attempts,
                    settings.retry_base,
                    Utc::now(),
                )?;
            }
        }
    }
    Ok(claimed.len())
}

/// Runs `settings.concurrency` dispatch loops until the task is dropped.
pub async fn run(pool: Pool, transport: std::sync::Arc<Transport>, settings: DispatchSettings) {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..settings.concurrency.max(1) {
        loops.spawn(run_loop(pool.clone(), transport.clone(), settings.clone()));
    }
    while loops.join_next().await.is_some() {}
}

/// One loop: a batch at a time on a blocking thread, a short sleep when there was nothing
/// to do or the database was unreachable.
async fn run_loop(pool: Pool, transport: std::sync::Arc<Transport>, settings: DispatchSettings) {
    loop {
        let (p, t, s) = (pool.clone(), transport.clone(), settings.clone());
        let handled = tokio::task::spawn_blocking(move || run_once(&p, &t, &s)).await;
        match handled {
            Ok(Ok(n)) if n > 0 => continue,
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "email dispatcher: will retry"),
            Err(error) => tracing::error!(error = %error, "email dispatcher task failed"),
        }
        tokio::time::sleep(settings.idle_poll).await;
    }
}
