//! The desktop agent's sign-in: it proves it holds the key of a certificate on the device.
//!
//! 1. `POST /agent/challenges` gives a random nonce, valid for [`CHALLENGE_TTL_SECS`] and
//!    usable once.
//! 2. The agent signs the nonce (its ASCII bytes) with the certificate's key: RSA PKCS#1
//!    v1.5 or PSS with SHA-256, or ECDSA P-256 with SHA-256 (DER signature, as
//!    `openssl dgst -sha256 -sign` makes it), and sends certificate, nonce and signature.
//! 3. [`authenticate`] burns the nonce first (a failed attempt uses it up too), then
//!    checks the certificate: issued by a CA the service trusts (its signature verifies
//!    with the issuing CA's key), an authentication certificate and not the qualified
//!    signature one, within its validity, in the registry and neither revoked nor
//!    superseded; and the signature over the nonce with the certificate's key.
//!
//! The signature certificate (keyUsage nonRepudiation) never signs in: its key makes the
//! holder's qualified signatures, legally binding, and must sign only what the holder
//! chose to sign, never a nonce a server picked. An agent that offered it would train
//! holders to type the signature PIN for anything.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use x509_parser::prelude::*;

use crate::ca::CertificateAuthority;
use crate::db::schema::{agent_challenges, certificates, devices, holders};
use crate::db::{write_transaction, DbConnection};
use crate::rate_limit::{self, Limit};
use crate::registry::CertificateStatus;
use crate::secrets::random_bytes;

pub const CHALLENGE_TTL_SECS: i64 = 120;

pub struct Challenge {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

/// Who the agent is, once authenticated: one certificate of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub certificate_id: String,
    pub device_id: String,
    pub brand_id: String,
    pub codice_fiscale: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentAuthError {
    #[error("the certificate is not a PEM or base64 DER X.509 certificate: {0}")]
    MalformedCertificate(String),
    #[error("the signature is not base64")]
    MalformedSignature,
    #[error("the challenge is unknown, expired or already used: ask for a new one")]
    Challenge,
    #[error("the certificate was not issued by a CA this service trusts")]
    Untrusted,
    #[error(
        "the certificate is the qualified signature certificate (keyUsage nonRepudiation): \
         sign in with the device's authentication certificate and its key"
    )]
    SignatureCertificate,
    #[error("the certificate is not valid now (valid from {not_before} to {not_after})")]
    OutsideValidity {
        not_before: String,
        not_after: String,
    },
    #[error("the certificate is not in the registry")]
    UnknownCertificate,
    #[error("the certificate is {0}")]
    NotActive(CertificateStatus),
    #[error("the signature over the challenge does not verify with the certificate's key")]
    Signature,
    #[error(transparent)]
    Storage(#[from] diesel::result::Error),
}

/// Challenges one client address may ask for. They cost a row each and are free to ask
/// for: a few per minute per address is plenty for agents behind one office's NAT.
pub const CHALLENGES: Limit = Limit {
    bucket: "agent_challenge",
    max_hits: 60,
    window: Duration::minutes(10),
};

/// A challenge refused.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("too many challenges; retry in {0} seconds")]
    TooMany(i64),
    #[error(transparent)]
    Storage(#[from] diesel::result::Error),
}

/// A nonce for an agent at address `client` to sign, counted against [`CHALLENGES`].
pub fn new_challenge(
    conn: &mut DbConnection,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Challenge, ChallengeError> {
    if let Err(retry_after) = rate_limit::hit(conn, CHALLENGES, client, now)? {
        return Err(ChallengeError::TooMany(retry_after));
    }
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let expires_at = now + Duration::seconds(CHALLENGE_TTL_SECS);
    write_transaction(conn, |conn| {
        // Old challenges are of no use to anyone: each new one sweeps them.
        diesel::delete(
            agent_challenges::table
                .filter(agent_challenges::expires_at.lt((now - Duration::hours(1)).naive_utc())),
        )
        .execute(conn)?;
        diesel::insert_into(agent_challenges::table)
            .values((
                agent_challenges::nonce.eq(&nonce),
                agent_challenges::expires_at.eq(expires_at.naive_utc()),
                agent_challenges::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)
    })?;
    Ok(Challenge { nonce, expires_at })
}

/// The registered certificate an agent presented, with its device and holder.
#[derive(Queryable)]
struct PresentedRow {
    certificate_id: String,
    status: CertificateStatus,
    device_id: String,
    brand_id: String,
    codice_fiscale: String,
}

/// The certificate as sent: PEM, or base64 of the DER.
fn certificate_der(text: &str) -> Result<Vec<u8>, AgentAuthError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return x509_parser::pem::parse_x509_pem(text.as_bytes())
            .map(|(_, pem)| pem.contents)
            .map_err(|e| AgentAuthError::MalformedCertificate(e.to_string()));
    }
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| AgentAuthError::MalformedCertificate("neither PEM nor base64".into()))
}

pub fn authenticate(
    conn: &mut DbConnection,
    ca: &dyn CertificateAuthority,
    certificate: &str,
    nonce: &str,
    signature: &str,
    now: DateTime<Utc>,
) -> Result<AgentIdentity, AgentAuthError> {
    let der = certificate_der(certificate)?;
    let (_, presented) = X509Certificate::from_der(&der)
        .map_err(|e| AgentAuthError::MalformedCertificate(e.to_string()))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| AgentAuthError::MalformedSignature)?;

    // Single use, whatever happens next.
    let burnt = write_transaction(conn, |conn| {
        diesel::update(
            agent_challenges::table
                .filter(agent_challenges::nonce.eq(nonce))
                .filter(agent_challenges::used_at.is_null())
                .filter(agent_challenges::expires_at.gt(now.naive_utc())),
        )
        .set(agent_challenges::used_at.eq(now.naive_utc()))
        .execute(conn)
    })?;
    if burnt != 1 {
        return Err(AgentAuthError::Challenge);
    }

    let issuing_der = ca.issuing_certificate_der();
    let (_, issuing) =
        X509Certificate::from_der(&issuing_der).map_err(|_| AgentAuthError::Untrusted)?;
    if presented.issuer() != issuing.subject()
        || presented
            .verify_signature(Some(issuing.public_key()))
            .is_err()
    {
        return Err(AgentAuthError::Untrusted);
    }
    if is_signature_certificate(&presented) {
        return Err(AgentAuthError::SignatureCertificate);
    }
    let validity = presented.validity();
    let at = ASN1Time::from_timestamp(now.timestamp()).map_err(|_| AgentAuthError::Untrusted)?;
    if at < validity.not_before || at > validity.not_after {
        return Err(AgentAuthError::OutsideValidity {
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }

    let serial = crate::ca::serial_hex(presented.raw_serial());
    let row: Option<PresentedRow> = certificates::table
        .inner_join(devices::table.inner_join(holders::table))
        .filter(certificates::issuer.eq(ca.issuer_name()))
        .filter(certificates::serial_number.eq(&serial))
        .select((
            certificates::id,
            certificates::status,
            devices::id,
            devices::brand_id,
            holders::codice_fiscale,
        ))
        .first(conn)
        .optional()?;
    let Some(PresentedRow {
        certificate_id,
        status,
        device_id,
        brand_id,
        codice_fiscale,
    }) = row
    else {
        return Err(AgentAuthError::UnknownCertificate);
    };
    if status != CertificateStatus::Active {
        return Err(AgentAuthError::NotActive(status));
    }

    verify_signature(&presented, nonce.as_bytes(), &signature)?;
    Ok(AgentIdentity {
        certificate_id,
        device_id,
        brand_id,
        codice_fiscale,
    })
}

/// Whether the certificate is meant for qualified signatures: its keyUsage has
/// nonRepudiation (contentCommitment). A certificate whose keyUsage cannot be read is
/// treated as one, so a malformed extension never opens the door.
fn is_signature_certificate(certificate: &X509Certificate<'_>) -> bool {
    match certificate.key_usage() {
        Ok(Some(usage)) => usage.value.non_repudiation(),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// RSA (PKCS#1 v1.5 or PSS, SHA-256, 2048 bits or more) or ECDSA P-256 with SHA-256.
fn verify_signature(
    certificate: &X509Certificate<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), AgentAuthError> {
    use ring::signature::{self as sig, UnparsedPublicKey};
    let spki = certificate.public_key();
    let key = spki.subject_public_key.data.as_ref();
    let algorithms: &[&dyn sig::VerificationAlgorithm] = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => &[
            &sig::RSA_PKCS1_2048_8192_SHA256,
            &sig::RSA_PSS_2048_8192_SHA256,
        ],
        Ok(x509_parser::public_key::PublicKey::EC(_))
            if spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .is_some_and(|curve| curve == x509_parser::oid_registry::OID_EC_P256) =>
        {
            &[&sig::ECDSA_P256_SHA256_ASN1]
        }
        _ => &[],
    };
    algorithms
        .iter()
        .any(|algorithm| {
            UnparsedPublicKey::new(*algorithm, key)
                .verify(message, signature)
                .is_ok()
        })
        .then_some(())
        .ok_or(AgentAuthError::Signature)
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum DeviceError {
        /// The device the agent's token names is no longer in the registry (as the brand's).
        #[error("the device is no longer in the registry")]
        Gone,
    }
    storage from diesel::result::Error
}

/// The agent's own device, as the lookup shows it: the device the token names, of the
/// token's brand.
pub fn own_device(
    conn: &mut DbConnection,
    policy: &crate::lookup::RenewalPolicy,
    device_id: &str,
    brand_id: &str,
    now: DateTime<Utc>,
) -> Result<crate::lookup::DeviceView, DeviceError> {
    let codice_fiscale: Option<String> = devices::table
        .inner_join(holders::table)
        .filter(devices::id.eq(device_id))
        .filter(devices::brand_id.eq(brand_id))
        .select(holders::codice_fiscale)
        .first(conn)
        .optional()?;
    let Some(codice_fiscale) = codice_fiscale else {
        return Err(DeviceError::Gone);
    };
    let codice_fiscale = crate::registry::CodiceFiscale::parse(&codice_fiscale)
        .map_err(|e| anyhow::anyhow!("registry holds an invalid codice fiscale: {e}"))?;
    let found = match crate::lookup::lookup(conn, policy, &codice_fiscale, brand_id, now) {
        Ok(found) => found,
        Err(crate::lookup::LookupError::UnknownHolder) => return Err(DeviceError::Gone),
        Err(crate::lookup::LookupError::Storage(e)) => return Err(e.into()),
        // Not counted here: the agent reads the device it signed in with.
        Err(
            other @ (crate::lookup::LookupError::TooManyLookups { .. }
            | crate::lookup::LookupError::ListOverAllowance { .. }),
        ) => return Err(anyhow::Error::from(other).into()),
    };
    (found.devices.into_iter())
        .find(|d| d.device.id == device_id)
        .ok_or(DeviceError::Gone)
}
