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
    /// The pause after a batch when there may be more (see [`keep_draining`]).
    pub batch_pause: StdDuration,
    /// Dispatch loops running side by side, each with its own SMTP session.
    pub concurrency: usize,
    /// Where users reach rinnovo (`RINNOVO_PUBLIC_URL`): every email's `public_url`, so
    /// any template can link the pages a person uses, whoever queued the email and
    /// whenever (rows queued before a template gained a link render too).
    pub public_url: String,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base: Duration::seconds(30),
            batch: 20,
            lease: Duration::minutes(2),
            idle_poll: StdDuration::from_millis(500),
            batch_pause: crate::workers::DEFAULT_BATCH_PAUSE,
            concurrency: 8,
            public_url: "http://127.0.0.1:8080".to_owned(),
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
fn build_message(email: &ClaimedEmail, public_url: &str) -> Result<(Message, String), String> {
    let from: Mailbox = email.sender.parse().map_err(|e| format!("sender: {e}"))?;
    let to: Mailbox = email
        .recipient
        .parse()
        .map_err(|e| format!("recipient: {e}"))?;
    let mut context: serde_json::Value =
        serde_json::from_str(&email.context).map_err(|e| format!("context: {e}"))?;
    if let Some(values) = context.as_object_mut() {
        if let Some(number) = &email.invoice_number {
            values
                .entry("invoice_number")
                .or_insert_with(|| serde_json::Value::String(number.clone()));
        }
        values
            .entry("public_url")
            .or_insert_with(|| serde_json::Value::String(public_url.to_owned()));
    }
    // A stored kind this build does not know (a row from another version) fails this one
    // email, not the batch.
    let kind = templates::EmailKind::parse(&email.kind)
        .ok_or_else(|| format!("template: no email template '{}'", email.kind))?;
    let rendered = templates::render(kind, &context).map_err(|e| format!("template: {e:#}"))?;
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
        let result = match build_message(&email, &settings.public_url) {
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
    let wake = super::wake::register_dispatcher();
    for _ in 0..settings.concurrency.max(1) {
        let dispatch = DispatchLoop {
            pool: pool.clone(),
            sender: transport.sender(),
            settings: settings.clone(),
            wake: wake.clone(),
        };
        loops.spawn(keep_draining(
            dispatch,
            settings.idle_poll,
            settings.batch_pause,
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
    /// Shared by the dispatcher's loops: a new email wakes one of them.
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Drain for DispatchLoop {
    async fn drain_once(&mut self) -> anyhow::Result<usize> {
        run_once(&self.pool, &mut self.sender, &self.settings).await
    }

    /// New emails wake the loop at once (see [`super::wake`]); the poll stays for what
    /// no signal announces (a retry coming due, a lease running out).
    fn rest(&self, idle: StdDuration) -> impl std::future::Future<Output = ()> + Send {
        let wake = self.wake.clone();
        async move {
            let _ = tokio::time::timeout(idle, wake.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An email queued without `public_url` (by code that does not know the site's
    /// address, or before its template linked a page) links the pages all the same.
    #[test]
    fn every_email_gets_the_sites_address() {
        let context = serde_json::json!({
            "name": "Mario Rossi", "brand": "Visura", "device": "1205100000",
            "kind": "firma", "coupon": "****-****-****-ABCD-E",
            "reason": "la CA non risponde", "coupon_released": true,
        });
        let email = ClaimedEmail {
            id: "0193".into(),
            kind: "renewal_failed".into(),
            sender: "rinnovi@visura.example".into(),
            recipient: "mario@example.com".into(),
            context: context.to_string(),
            attachment: None,
            attempts: 1,
            invoice_number: None,
        };
        let (message, _) = build_message(&email, "https://rinnovo.example").unwrap();
        let text = String::from_utf8(message.formatted())
            .unwrap()
            .replace("=\r\n", "");
        for page in ["/negozio/come-rinnovare", "/negozio/verifica-coupon"] {
            let link = format!("https://rinnovo.example{page}");
            assert!(text.contains(&link), "{link}: {text}");
        }
    }
}
