//! The dispatcher: claims due emails from the outbox and hands them to the transport
//! (SMTP, or `.eml` files when no SMTP server is configured), with retries and backoff.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::{FileTransport, Message, Transport as _};

use super::outbox::{self, ClaimedEmail};
use super::smtp::{SmtpClient, SmtpSettings};
use super::templates;
use crate::db::{write_transaction, Pool};
use crate::workers::{keep_draining, with_conn, Drain};

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub max_attempts: i32,
    pub retry_base: Duration,
    pub batch: i64,
    /// How long a claimed email is ours before another dispatcher may take it.
    pub lease: Duration,
    pub idle_poll: StdDuration,
    /// Dispatch loops running side by side, each with its own SMTP session.
    pub concurrency: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base: Duration::seconds(30),
            batch: 20,
            lease: Duration::minutes(2),
            idle_poll: StdDuration::from_millis(500),
            concurrency: 8,
        }
    }
}

/// Where emails go: an SMTP server, or `.eml` files when none is configured.
#[derive(Clone)]
pub enum Transport {
    Smtp(SmtpSettings),
    Files(FileTransport),
}

impl Transport {
    /// `smtp://...` or `smtps://...` (see [`SmtpSettings`]); none: files in `dir`.
    pub fn new(smtp_url: Option<&str>, dir: PathBuf) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => Ok(Self::Smtp(SmtpSettings::parse(url)?)),
            None => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                // One `<message-id>.eml` file per email.
                Ok(Self::Files(FileTransport::new(dir)))
            }
        }
    }

    /// A sender for one dispatch loop: its own SMTP session.
    pub fn sender(&self) -> Sender {
        match self {
            Self::Smtp(settings) => Sender::Smtp(Box::new(SmtpClient::new(settings.clone()))),
            Self::Files(files) => Sender::Files(files.clone()),
        }
    }
}

pub enum Sender {
    Smtp(Box<SmtpClient>),
    Files(FileTransport),
}

impl Sender {
    async fn send(&mut self, message: &Message) -> Result<(), String> {
        match self {
            Self::Smtp(client) => client.send(message).await,
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
    // One Message-ID per outbox row, the same on every attempt: if a message was
    // delivered but the worker died before recording it, the copy sent again is
    // recognisably the same message.
    let message_id = format!("<{}@{}>", email.id, from.email.domain());
    let builder = Message::builder()
        .from(from)
        .to(to)
        .message_id(Some(message_id))
        .subject(&rendered.subject);
    let message = match &email.attachment {
        Some(attachment) => builder.multipart(MultiPart::mixed().multipart(bodies).singlepart(
            Attachment::new(attachment.file_name.clone()).body(
                attachment.content.clone(),
                ContentType::parse("text/csv; charset=utf-8").expect("valid"),
            ),
        )),
        None => builder.multipart(bodies),
    };
    message
        .map(|m| (m, rendered.subject))
        .map_err(|e| e.to_string())
}

/// Claims one batch, sends it through `sender`, then records every outcome in one
/// transaction: two pooled-connection checkouts per batch, none while talking SMTP.
/// Returns how many emails it handled.
pub async fn run_once(
    pool: &Pool,
    sender: &mut Sender,
    settings: &DispatchSettings,
) -> anyhow::Result<usize> {
    let (batch, lease) = (settings.batch, settings.lease);
    let claimed = with_conn(pool, move |conn| {
        outbox::claim_due(conn, batch, lease, Utc::now())
    })
    .await?;
    let handled = claimed.len();
    if handled == 0 {
        return Ok(0);
    }
    let mut outcomes = Vec::with_capacity(handled);
    for email in claimed {
        let result = match build_message(&email) {
            Ok((message, subject)) => sender.send(&message).await.map(|()| subject),
            Err(error) => Err(error),
        };
        match &result {
            Ok(_) => tracing::debug!(email = %email.id, "email sent"),
            Err(error) => {
                tracing::warn!(email = %email.id, attempt = email.attempts, %error, "email not sent")
            }
        }
        outcomes.push((email, result));
    }
    let (max_attempts, retry_base) = (settings.max_attempts, settings.retry_base);
    with_conn(pool, move |conn| {
        write_transaction(conn, |conn| {
            let now = Utc::now();
            for (email, result) in &outcomes {
                match result {
                    Ok(subject) => outbox::mark_sent(conn, &email.id, subject, now)?,
                    Err(error) => {
                        outbox::mark_failed(conn, email, error, max_attempts, retry_base, now)?
                    }
                }
            }
            Ok(())
        })
    })
    .await?;
    Ok(handled)
}

/// Runs `settings.concurrency` dispatch loops until the task is dropped.
pub async fn run(pool: Pool, transport: std::sync::Arc<Transport>, settings: DispatchSettings) {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..settings.concurrency.max(1) {
        let dispatch = DispatchLoop {
            pool: pool.clone(),
            sender: transport.sender(),
            settings: settings.clone(),
        };
        loops.spawn(keep_draining(
            dispatch,
            settings.idle_poll,
            "email dispatcher",
        ));
    }
    while loops.join_next().await.is_some() {}
}

/// One dispatch loop: a batch at a time through its own sender.
struct DispatchLoop {
    pool: Pool,
    sender: Sender,
    settings: DispatchSettings,
}

impl Drain for DispatchLoop {
    async fn drain_once(&mut self) -> anyhow::Result<usize> {
        run_once(&self.pool, &mut self.sender, &self.settings).await
    }
}
