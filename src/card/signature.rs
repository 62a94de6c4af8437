//! The `Stripe-Signature` check, as Stripe documents it: the header carries a timestamp
//! `t` and one or more `v1` signatures, each the hex HMAC-SHA256 of `"{t}.{raw body}"`
//! under the endpoint's signing secret. Several secrets are accepted while one is being
//! rotated; the comparison is constant-time (`Mac::verify_slice`); a timestamp outside
//! the tolerance window, in the past or the future, is refused so that a captured
//! notification cannot be replayed later.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::provider::NotificationError;

/// Checks `header` against `body` under any of `secrets`, at `now`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    tolerance: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(), NotificationError> {
    let header = header.ok_or(NotificationError::Unsigned)?;
    let (timestamp, signatures) = parse(header)?;
    let matches = signatures.iter().any(|signature| {
        secrets.iter().any(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(signature).is_ok()
        })
    });
    if !matches {
        return Err(NotificationError::BadSignature);
    }
    if (now.timestamp() - timestamp).abs() > tolerance.num_seconds() {
        return Err(NotificationError::Stale);
    }
    Ok(())
}

/// The timestamp and the `v1` signatures (other schemes are ignored, as Stripe's own
/// libraries do). Signatures are lower-case hex, as Stripe writes them.
fn parse(header: &str) -> Result<(i64, Vec<Vec<u8>>), NotificationError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(NotificationError::MalformedSignature)?;
        match key {
            "t" => {
                let t: i64 = value
                    .parse()
                    .map_err(|_| NotificationError::MalformedSignature)?;
                timestamp = Some(t);
            }
            "v1" => {
                let lower_hex = !value.is_empty()
                    && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if let (true, Ok(bytes)) = (lower_hex, hex::decode(value)) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(NotificationError::MalformedSignature)?;
    if signatures.is_empty() {
        return Err(NotificationError::BadSignature);
    }
    Ok((timestamp, signatures))
}

/// Signs `body` at `timestamp` as Stripe does: for tests and the local tools that post
/// notifications.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}
