//! SMTP delivery with lettre's connection API on a socket we open ourselves.
//!
//! Why not lettre's `SmtpTransport`: lettre 0.11.23 leaves Nagle's algorithm on and sends
//! the message body and the closing `.` in two writes, so every message waits ~40 ms for
//! the server's delayed ACK (lettre pull request #1159 fixes it upstream, unreleased).
//! `AsyncSmtpConnection::connect_with_transport` takes a stream we opened, with
//! `TCP_NODELAY` set; lettre still speaks the protocol (EHLO, STARTTLS, AUTH, DATA).
//! With implicit TLS (`smtps://`) lettre must open the socket itself, so that mode keeps
//! the stall until lettre is upgraded.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    Never,
    /// When the server offers it.
    Opportunistic,
    Required,
}

/// Where and how to deliver, from `RINNOVO_SMTP_URL`:
/// `smtp://[user:password@]host[:port][?tls=required|opportunistic|none]` (default port 25,
/// STARTTLS opportunistic) or `smtps://[user:password@]host[:port]` (implicit TLS, 465).
#[derive(Clone)]
pub struct SmtpSettings {
    host: String,
    port: u16,
    implicit_tls: bool,
    starttls: StartTls,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field("starttls", &self.starttls)
            .field("authenticated", &self.credentials.is_some())
            .finish()
    }
}

impl SmtpSettings {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(text).map_err(|e| anyhow::anyhow!("RINNOVO_SMTP_URL: {e}"))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => anyhow::bail!("RINNOVO_SMTP_URL: scheme {other} is neither smtp nor smtps"),
        };
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("RINNOVO_SMTP_URL has no host"))?
            .to_owned();
        let port = url.port().unwrap_or(if implicit_tls { 465 } else { 25 });
        let starttls = match url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned())
        {
            None => StartTls::Opportunistic,
            Some(v) if v == "required" => StartTls::Required,
            Some(v) if v == "opportunistic" => StartTls::Opportunistic,
            Some(v) if v == "none" => StartTls::Never,
            Some(other) => anyhow::bail!(
                "RINNOVO_SMTP_URL: tls={other} is not required, opportunistic or none"
            ),
        };
        let decode = |part: &str| -> anyhow::Result<String> {
            Ok(percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map_err(|_| anyhow::anyhow!("RINNOVO_SMTP_URL: user or password is not UTF-8"))?
                .into_owned())
        };
        let credentials = match (url.username(), url.password()) {
            ("", _) => None,
            (user, password) => Some(Credentials::new(
                decode(user)?,
                decode(password.unwrap_or(""))?,
            )),
        };
        Ok(Self {
            host,
            port,
            implicit_tls,
            starttls,
            credentials,
            timeout: Duration::from_secs(10),
        })
    }
}

/// One SMTP session, reused across messages and reopened after any error.
pub struct SmtpClient {
    settings: SmtpSettings,
    hello: ClientId,
    connection: Option<AsyncSmtpConnection>,
}

impl SmtpClient {
    pub fn new(settings: SmtpSettings) -> Self {
        Self {
            settings,
            hello: ClientId::default(),
            connection: None,
        }
    }

    pub async fn send(&mut self, message: &Message) -> Result<(), String> {
        let timeout = self.settings.timeout;
        let result = tokio::time::timeout(timeout, self.try_send(message))
            .await
            .unwrap_or_else(|_| Err(format!("no answer from the mail server within {timeout:?}")));
        if result.is_err() {
            // Whatever state the session is in, start the next message on a fresh one.
            self.connection = None;
        }
        result
    }

    async fn try_send(&mut self, message: &Message) -> Result<(), String> {
        let reusable = self.connection.as_ref().is_some_and(|c| !c.has_broken());
        if !reusable {
            self.connection = Some(self.connect().await?);
        }
        let connection = self.connection.as_mut().expect("connected above");
        connection
            .send(message.envelope(), &message.formatted())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let s = &self.settings;
        let tls = || TlsParameters::new(s.host.clone()).map_err(|e| e.to_string());
        let mut connection = if s.implicit_tls {
            AsyncSmtpConnection::connect_tokio1(
                (s.host.as_str(), s.port),
                Some(s.timeout),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| e.to_string())?
        } else {
            let stream = tokio::net::TcpStream::connect((s.host.as_str(), s.port))
                .await
                .map_err(|e| format!("cannot connect to {}:{}: {e}", s.host, s.port))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(|e| e.to_string())?
        };
        if !s.implicit_tls {
            let upgrade = match s.starttls {
                StartTls::Required => true,
                StartTls::Opportunistic => connection.can_starttls(),
                StartTls::Never => false,
            };
            if upgrade {
                connection
                    .starttls(tls()?, &self.hello)
                    .await
                    .map_err(|e| format!("STARTTLS: {e}"))?;
            }
        }
        if let Some(credentials) = &s.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| format!("AUTH: {e}"))?;
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let plain = SmtpSettings::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (plain.port, plain.implicit_tls, plain.starttls),
            (2525, false, StartTls::Opportunistic)
        );
        assert!(plain.credentials.is_none());
        let submission =
            SmtpSettings::parse("smtp://user%40example.it:p%40ss@mail.example.it:587?tls=required")
                .unwrap();
        assert_eq!(
            (submission.port, submission.starttls),
            (587, StartTls::Required)
        );
        assert!(submission.credentials.is_some());
        assert!(!format!("{submission:?}").contains("p@ss"));
        let implicit = SmtpSettings::parse("smtps://mail.example.it").unwrap();
        assert_eq!((implicit.port, implicit.implicit_tls), (465, true));
        assert!(SmtpSettings::parse("http://x").is_err());
        assert!(SmtpSettings::parse("smtp://x?tls=maybe").is_err());
    }
}
