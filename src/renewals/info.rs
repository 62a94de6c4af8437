//! Renewal information in the ACME Renewal Information format (RFC 9773): a client that
//! knows a certificate asks when to renew it. The certificate is named by its CertID:
//! base64url of the issuer's key identifier (the certificate's Authority Key
//! Identifier), a dot, base64url of the serial number's DER content octets.
//!
//! The suggested window runs from the day the renewal window opens (90 days before
//! expiry) to 7 days before expiry: the last reminder, and time enough for a batch to
//! issue the new certificate. A revoked certificate gets a window that is already open
//! and closing now: it must be replaced, not waited on.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use x509_parser::prelude::*;

use crate::ca::CertificateAuthority;
use crate::db::schema::certificates;
use crate::db::DbConnection;
use crate::lookup::renewal_window_opens_at;
use crate::registry::CertificateStatus;

/// How long a client should wait before asking again (RFC 9773 §4.3: Retry-After).
pub const RETRY_AFTER_SECS: i64 = 6 * 3600;
/// The suggested window closes this long before expiry.
pub const CLOSE_BEFORE_EXPIRY_DAYS: i64 = 7;

/// A parsed CertID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    pub key_identifier: Vec<u8>,
    /// Uppercase hex without leading zero bytes, as the registry stores serials.
    pub serial_number: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertIdError {
    #[error("a CertID is base64url(key identifier) '.' base64url(serial number)")]
    Shape,
    #[error("the key identifier or the serial number is not base64url without padding")]
    Base64,
    #[error("the key identifier or the serial number is empty")]
    Empty,
}

impl CertId {
    pub fn parse(text: &str) -> Result<Self, CertIdError> {
        let (key, serial) = text.split_once('.').ok_or(CertIdError::Shape)?;
        if serial.contains('.') {
            return Err(CertIdError::Shape);
        }
        let key_identifier = URL_SAFE_NO_PAD
            .decode(key)
            .map_err(|_| CertIdError::Base64)?;
        let serial = URL_SAFE_NO_PAD
            .decode(serial)
            .map_err(|_| CertIdError::Base64)?;
        if key_identifier.is_empty() || serial.iter().all(|b| *b == 0) {
            return Err(CertIdError::Empty);
        }
        Ok(Self {
            key_identifier,
            serial_number: crate::ca::serial_hex(&serial),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalInfo {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The suggested window for a certificate that expires at `not_after`.
pub fn suggested_window(
    not_after: DateTime<Utc>,
    status: CertificateStatus,
    now: DateTime<Utc>,
) -> RenewalInfo {
    match status {
        CertificateStatus::Revoked => RenewalInfo {
            start: now - Duration::hours(1),
            end: now,
        },
        _ => RenewalInfo {
            start: renewal_window_opens_at(not_after),
            end: not_after - Duration::days(CLOSE_BEFORE_EXPIRY_DAYS),
        },
    }
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum InfoError {
        /// Not a certificate of this service's CA, or not in the registry.
        #[error("no certificate of this service's CA has this CertID")]
        UnknownCertificate,
    }
    storage from diesel::result::Error
}

/// The suggested renewal window of the certificate `id` names.
pub fn renewal_info(
    conn: &mut DbConnection,
    ca: &dyn CertificateAuthority,
    id: &CertId,
    now: DateTime<Utc>,
) -> Result<RenewalInfo, InfoError> {
    let issuing_der = ca.issuing_certificate_der();
    let ours = X509Certificate::from_der(&issuing_der)
        .ok()
        .and_then(|(_, issuing)| {
            issuing
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(key) => Some(key.0.to_vec()),
                    _ => None,
                })
        });
    if ours.as_deref() != Some(id.key_identifier.as_slice()) {
        return Err(InfoError::UnknownCertificate);
    }
    // A status no variant has fails the read (a damaged row), as everywhere else.
    let (not_after, status): (chrono::NaiveDateTime, CertificateStatus) = certificates::table
        .filter(certificates::issuer.eq(ca.issuer_name()))
        .filter(certificates::serial_number.eq(&id.serial_number))
        .select((certificates::not_after, certificates::status))
        .first(conn)
        .optional()?
        .ok_or(InfoError::UnknownCertificate)?;
    Ok(suggested_window(not_after.and_utc(), status, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_ids_parse_as_rfc_9773_writes_them() {
        // RFC 9773 §4.1 example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
        // serial 00:87:65:43:21.
        let id = CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(
            id.key_identifier,
            [
                0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
                0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4
            ]
        );
        assert_eq!(id.serial_number, "87654321");
        assert_eq!(CertId::parse("nodot"), Err(CertIdError::Shape));
        assert_eq!(CertId::parse("a.b.c"), Err(CertIdError::Shape));
        assert_eq!(CertId::parse("aYhb=.AIdlQyE"), Err(CertIdError::Base64));
        assert_eq!(CertId::parse(".AIdlQyE"), Err(CertIdError::Empty));
        assert_eq!(CertId::parse("aYhb.AA"), Err(CertIdError::Empty));
    }

    #[test]
    fn the_window_opens_90_days_before_expiry_and_closes_7_days_before() {
        let now = Utc::now();
        let not_after = now + Duration::days(200);
        let window = suggested_window(not_after, CertificateStatus::Active, now);
        assert_eq!(window.start, not_after - Duration::days(90));
        assert_eq!(window.end, not_after - Duration::days(7));
        let revoked = suggested_window(not_after, CertificateStatus::Revoked, now);
        assert!(revoked.end <= now && revoked.start < revoked.end);
    }
}
