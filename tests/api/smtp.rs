//! A real SMTP server on loopback for the tests: it speaks enough of RFC 5321 for lettre
//! (greeting, EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) and keeps
//! every message it accepts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
pub struct SmtpSink {
    messages: Arc<Mutex<Vec<String>>>,
}

/// Every sink started in this test process, so that a helper that signs a user up can
/// read the confirmation email from whichever sink the app sends to.
static SINKS: Mutex<Vec<SmtpSink>> = Mutex::new(Vec::new());

/// Takes the message that contains `needle` out of whichever sink received it, as a user
/// reads and deletes a message: the tests that count their messages count their own.
pub fn take_message_containing(needle: &str) -> Option<String> {
    for sink in SINKS.lock().unwrap().iter() {
        let mut messages = sink.messages.lock().unwrap();
        if let Some(at) = messages.iter().position(|m| m.contains(needle)) {
            return Some(messages.remove(at));
        }
    }
    None
}

impl SmtpSink {
    /// Listens on `port` (0: any free port); returns the sink and the port.
    pub async fn start(port: u16) -> (Self, u16) {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink::default();
        SINKS.lock().unwrap().push(sink.clone());
        let messages = sink.messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let messages = messages.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let command = line.to_ascii_uppercase();
                        let reply: &[u8] = if command.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if command.starts_with("DATA") {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut message = String::new();
                            while let Ok(Some(data)) = lines.next_line().await {
                                if data == "." {
                                    break;
                                }
                                let unstuffed = data
                                    .strip_prefix('.')
                                    .filter(|_| data.starts_with(".."))
                                    .unwrap_or(&data);
                                message.push_str(unstuffed);
                                message.push('\n');
                            }
                            messages.lock().unwrap().push(message);
                            b"250 accepted\r\n"
                        } else if command.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (sink, port)
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (panics after `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < timeout,
                "expected {count} emails, got {} after {timeout:?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A port with nothing listening on it (for "the mail server is down").
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The message with quoted-printable soft breaks and escapes undone, for reading.
pub fn decoded(message: &str) -> String {
    let joined = message.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(value) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every coupon code (XXXX-XXXX-XXXX-XXXX-X) in a text, in order, without repeats.
pub fn coupon_codes(text: &str) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        let groups: Vec<&str> = token.split('-').collect();
        let shape = groups.len() == 5
            && groups[..4].iter().all(|g| g.len() == 4)
            && groups[4].len() == 1
            && token
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase());
        if shape
            && rinnovo::coupons::CouponCode::parse(token).is_ok()
            && !codes.iter().any(|c| c == token)
        {
            codes.push(token.to_owned());
        }
    }
    codes
}

/// The plain-text part of a decoded message: what a mail client shows a reader who does
/// not read HTML. Panics if the message has none.
fn plain_text(message: &str) -> String {
    let start = message
        .find("Content-Type: text/plain")
        .unwrap_or_else(|| panic!("no text/plain part in {message}"));
    let part = &message[start..];
    let body = &part[part.find("\n\n").expect("the part's headers end") + 2..];
    let end = body.find("\n--").unwrap_or(body.len());
    body[..end].replace("\r\n", "\n").trim_end().to_owned()
}

/// Pins the plain text of a decoded email, every word its reader sees, in the reviewed
/// snapshot `snapshots/api__smtp__<name>.snap`. What changes from run to run (coupon
/// codes, RF codes, ids, tokens, serial numbers, dates, the year in invoice numbers, the
/// test server's port, addresses) is masked, so the snapshot holds what the templates and the domain
/// wrote.
pub fn assert_email_snapshot(name: &str, message: &str) {
    assert_email_text_snapshot(name, &plain_text(message));
}

/// As [`assert_email_snapshot`], for an email's plain text rendered without sending it.
pub fn assert_email_text_snapshot(name: &str, text: &str) {
    masked_snapshots().bind(|| insta::assert_snapshot!(name, text.trim_end()));
}

/// Snapshot settings that mask what changes from run to run, for emails and for problem
/// details that quote ids, codes or dates.
pub fn masked_snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]\b",
        "[coupon code]",
    );
    settings.add_filter(
        r"\*{4}-\*{4}-\*{4}-[0-9A-Z]{4}-[0-9A-Z]\b",
        "[masked coupon code]",
    );
    // Devices of the test registry are numbered at random; serials of issued
    // certificates are random by RFC 5280.
    settings.add_filter(r"\b\d{12}\b", "[device serial]");
    settings.add_filter(r"\b[0-9A-F]{16,40}\b", "[certificate serial]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[id]",
    );
    settings.add_filter(r"\b\d{2}/\d{2}/\d{4}\b", "[date]");
    settings.add_filter(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[instant]");
    settings.add_filter(r"\bRF\d{2}(?: [0-9A-Z]{1,4})+", "[RF code]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[token]");
    settings.add_filter(r"\b([VN])\d{4}-(\d{6})\b", "$1[year]-$2");
    settings.add_filter(r"http://127\.0\.0\.1:\d+", "[public url]");
    settings.add_filter(r"[\w.+-]+@example\.it", "[email]");
    settings
}
