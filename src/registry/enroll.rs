//! Enrolling a device for a holder: a new device with a signature and an authentication
//! certificate issued by the CA, registered as active. What `rinnovo device enroll` does,
//! so that anyone can play the desktop agent against a demo server: with openssl and key
//! files, or with `rinnovo-agent` and the keys made on a PKCS#11 token.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::csr::key_fingerprint;
use super::store::{self, NewCertificate, NewDevice};
use super::{CertificateKind, CertificateStatus, CodiceFiscale, DeviceKind};
use crate::ca::{CaError, CertificateAuthority, DeviceKey, Issued, Profile, Subject};
use crate::db::schema::brands;
use crate::db::{write_transaction, DbConnection};
use crate::secrets::random_bytes;

/// How long the embedded CA's certificates last, and so the longest `--expires-in`.
pub const VALIDITY_DAYS: i64 = 3 * 365;

/// A device's new key pair: made here (its secret handed over in a file), or made on a
/// token that keeps it (only the public key comes out).
pub enum NewKey {
    Here(DeviceKey),
    OnToken { public_der: Vec<u8> },
}

impl NewKey {
    pub fn public_der(&self) -> &[u8] {
        match self {
            NewKey::Here(key) => &key.public_der,
            NewKey::OnToken { public_der } => public_der,
        }
    }

    /// The secret, when it was made here.
    pub fn private_pem(&self) -> Option<&str> {
        match self {
            NewKey::Here(key) => Some(&key.private_pem),
            NewKey::OnToken { .. } => None,
        }
    }
}

pub struct EnrolledCertificate {
    pub kind: CertificateKind,
    pub key: NewKey,
    pub issued: Issued,
}

pub struct Enrolled {
    pub device_id: String,
    pub serial_number: String,
    pub certificates: Vec<EnrolledCertificate>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("no holder with codice fiscale {0} in the registry")]
    UnknownHolder(String),
    #[error("no brand {0}")]
    UnknownBrand(String),
    #[error("the certificates must expire within 1 to {VALIDITY_DAYS} days")]
    Expiry,
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Storage(#[from] diesel::result::Error),
}

/// Enrolls a device whose certificates expire at `expires_at` (issued `VALIDITY_DAYS`
/// before, so a certificate near its end looks like one issued three years ago).
pub fn enroll_device(
    conn: &mut DbConnection,
    ca: &dyn CertificateAuthority,
    codice_fiscale: &CodiceFiscale,
    brand_id: &str,
    kind: DeviceKind,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Enrolled, EnrollError> {
    let keys = [
        NewKey::Here(DeviceKey::generate()?),
        NewKey::Here(DeviceKey::generate()?),
    ];
    enroll_device_with_keys(
        conn,
        ca,
        codice_fiscale,
        brand_id,
        kind,
        keys,
        expires_at,
        now,
    )
}

/// Enrolls a device whose key pairs are already made: `keys` are the signature's, then
/// the authentication's.
#[allow(clippy::too_many_arguments)]
pub fn enroll_device_with_keys(
    conn: &mut DbConnection,
    ca: &dyn CertificateAuthority,
    codice_fiscale: &CodiceFiscale,
    brand_id: &str,
    kind: DeviceKind,
    keys: [NewKey; 2],
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Enrolled, EnrollError> {
    let days_left = (expires_at - now).num_days();
    if expires_at <= now || days_left > VALIDITY_DAYS {
        return Err(EnrollError::Expiry);
    }
    let not_before = expires_at - Duration::days(VALIDITY_DAYS);
    write_transaction(conn, |conn| {
        let holder = store::find_holder(conn, codice_fiscale)?
            .ok_or_else(|| EnrollError::UnknownHolder(codice_fiscale.as_str().to_owned()))?;
        let brand_known: i64 = brands::table
            .filter(brands::id.eq(brand_id))
            .count()
            .get_result(conn)?;
        if brand_known == 0 {
            return Err(EnrollError::UnknownBrand(brand_id.to_owned()));
        }
        let subject = Subject {
            codice_fiscale: codice_fiscale.as_str().to_owned(),
            given_name: holder.given_name,
            surname: holder.surname,
        };
        // 12 digits: random, so enrolled devices never collide with the demo's serials.
        let serial_number: String = random_bytes::<12>()
            .iter()
            .map(|b| char::from(b'0' + b % 10))
            .collect();
        let device_id = store::add_device(
            conn,
            &NewDevice {
                holder_id: &holder.id,
                brand_id,
                serial_number: &serial_number,
                kind,
                activated_at: not_before,
            },
            now,
        )?;
        let mut issued_certificates = Vec::new();
        for (key, (kind, profile)) in keys.iter().zip([
            (CertificateKind::Signature, Profile::Signature),
            (CertificateKind::Authentication, Profile::Authentication),
        ]) {
            let issued = ca.issue(&subject, key.public_der(), profile, not_before, expires_at)?;
            store::add_certificate(
                conn,
                &NewCertificate {
                    device_id: &device_id,
                    kind,
                    issuer: &issued.issuer,
                    serial_number: &issued.serial_number,
                    subject: &issued.subject,
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                    status: CertificateStatus::Active,
                    public_key_sha256: Some(&key_fingerprint(key.public_der())),
                },
                now,
            )?;
            issued_certificates.push((kind, issued));
        }
        Ok((device_id, serial_number, issued_certificates))
    })
    .map(|(device_id, serial_number, issued_certificates)| Enrolled {
        device_id,
        serial_number,
        certificates: keys
            .into_iter()
            .zip(issued_certificates)
            .map(|(key, (kind, issued))| EnrolledCertificate { kind, key, issued })
            .collect(),
    })
}

/// Writes the device's files into `dir`: `<kind>.key.pem` (mode 0600) for a key made
/// here, `<kind>.pem` and `chain.pem` (the issuing CA's certificate, then the root's).
pub fn write_files(
    enrolled: &Enrolled,
    chain_pem: &str,
    dir: &std::path::Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for certificate in &enrolled.certificates {
        let kind = certificate.kind.as_str();
        if let Some(secret) = certificate.key.private_pem() {
            write_secret(&dir.join(format!("{kind}.key.pem")), secret)?;
        }
        std::fs::write(dir.join(format!("{kind}.pem")), &certificate.issued.pem)?;
    }
    std::fs::write(dir.join("chain.pem"), chain_pem)
}

fn write_secret(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(content.as_bytes())
}
