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
        Self::parse_as("RINNOVO_SMTP_URL", text, StartTls::Opportunistic)
    }

    /// The URL of a server that must only be reached over TLS (the PEC channel's): as
    /// [`Self::parse`], but STARTTLS is required unless the URL says otherwise, an
    /// opportunistic STARTTLS (which an attacker can strip) is refused, and plain SMTP
    /// (`?tls=none`) is allowed to a loopback address only (a local test server).
    /// `variable` names the setting in the errors.
    pub fn parse_tls_only(variable: &str, text: &str) -> anyhow::Result<Self> {
        let settings = Self::parse_as(variable, text, StartTls::Required)?;
        if settings.implicit_tls {
            return Ok(settings);
        }
        let host = settings.host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match settings.starttls {
            StartTls::Required => Ok(settings),
            StartTls::Never if loopback => Ok(settings),
            StartTls::Never => anyhow::bail!(
                "{variable}: plain SMTP (tls=none) is allowed only to a loopback address; \
                 use smtps:// or smtp:// with STARTTLS (tls=required, the default)"
            ),
            StartTls::Opportunistic => anyhow::bail!(
                "{variable}: tls=opportunistic could fall back to plain text; use smtps:// \
                 or smtp:// with tls=required (the default)"
            ),
        }
    }

    fn parse_as(variable: &str, text: &str, default_starttls: StartTls) -> anyhow::Result<Self> {
        let url = url::Url::parse(text).map_err(|e| anyhow::anyhow!("{variable}: {e}"))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => anyhow::bail!("{variable}: scheme {other} is neither smtp nor smtps"),
        };
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{variable} has no host"))?
            .to_owned();
        let port = url.port().unwrap_or(if implicit_tls { 465 } else { 25 });
        let starttls = match url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned())
        {
            None => default_starttls,
            Some(v) if v == "required" => StartTls::Required,
            Some(v) if v == "opportunistic" => StartTls::Opportunistic,
            Some(v) if v == "none" => StartTls::Never,
            Some(other) => {
                anyhow::bail!("{variable}: tls={other} is not required, opportunistic or none")
            }
        };
        let decode = |part: &str| -> anyhow::Result<String> {
            Ok(percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map_err(|_| anyhow::anyhow!("{variable}: user or password is not UTF-8"))?
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

    #[test]
    fn the_pec_server_is_reached_over_tls_except_on_loopback() {
        let pec = |url| SmtpSettings::parse_tls_only("RINNOVO_SDI_SMTP_URL", url);
        let starttls = pec("smtp://u:p@pec.example.it:587").unwrap();
        assert_eq!(starttls.starttls, StartTls::Required);
        assert!(pec("smtps://u:p@pec.example.it").unwrap().implicit_tls);
        assert!(pec("smtp://127.0.0.1:2525?tls=none").is_ok());
        assert!(pec("smtp://[::1]:2525?tls=none").is_ok());
        let plain = pec("smtp://pec.example.it?tls=none")
            .unwrap_err()
            .to_string();
        assert!(plain.contains("RINNOVO_SDI_SMTP_URL"), "{plain}");
        assert!(pec("smtp://pec.example.it?tls=opportunistic").is_err());
    }
}
