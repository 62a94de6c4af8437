//! The certificate authority that signs renewed certificates. Issuance goes through the
//! [`CertificateAuthority`] trait; a production deployment puts the qualified CA behind
//! it. The embedded default ([`EmbeddedCa`]) is a root and an issuing CA created on first
//! start in the data directory: enough to run, test and demonstrate the whole renewal
//! with real certificates that `openssl verify` accepts.

mod embedded;

pub use embedded::EmbeddedCa;

use chrono::{DateTime, Utc};

/// A certificate serial number as the registry stores it and openssl prints it:
/// uppercase hexadecimal, no separators, no leading zero bytes (DER adds one to keep a
/// serial with its top bit set positive).
pub fn serial_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// What a certificate is for on the device; each has its own profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Qualified signature: keyUsage nonRepudiation (contentCommitment) only.
    Signature,
    /// Authentication (CNS): keyUsage digitalSignature, extendedKeyUsage clientAuth.
    Authentication,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Signature => "signature",
            Profile::Authentication => "authentication",
        }
    }
}

/// The natural person a certificate names (ETSI EN 319 412-2): the codice fiscale goes
/// in `serialNumber` as `TINIT-<CF>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub codice_fiscale: String,
    pub given_name: String,
    pub surname: String,
}

impl Subject {
    /// The subject as the registry stores and shows it.
    pub fn display(&self) -> String {
        format!(
            "C=IT, SN={surname}, GN={given}, serialNumber=TINIT-{cf}, CN={surname} {given}",
            surname = self.surname.to_uppercase(),
            given = self.given_name.to_uppercase(),
            cf = self.codice_fiscale,
        )
    }
}

/// A certificate just signed.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    /// Hexadecimal, uppercase, no separators: as openssl prints it.
    pub serial_number: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("the public key is not usable: {0}")]
    PublicKey(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the CA in {path} is incomplete or unreadable: {detail}")]
    Store { path: String, detail: String },
}

/// Signs certificates. `public_key` is a DER SubjectPublicKeyInfo (from the CSR).
pub trait CertificateAuthority: Send + Sync {
    fn issue(
        &self,
        subject: &Subject,
        public_key: &[u8],
        profile: Profile,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<Issued, CaError>;

    /// The issuing CA's certificate, then the root's, as PEM: what a client needs with
    /// the certificate.
    fn chain_pem(&self) -> String;

    /// The issuer's name, as the registry stores it.
    fn issuer_name(&self) -> String;

    /// The issuing CA's certificate (DER): what certificates it issued chain to.
    fn issuing_certificate_der(&self) -> Vec<u8>;
}

/// A key pair made here for a device that is enrolled from the command line (demo and
/// test devices; real devices make their keys on the card). ECDSA P-256.
pub struct DeviceKey {
    /// PKCS#8 PEM: the secret, for the files handed to whoever plays the agent.
    pub private_pem: String,
    /// DER SubjectPublicKeyInfo, what [`CertificateAuthority::issue`] certifies.
    pub public_der: Vec<u8>,
}

impl DeviceKey {
    pub fn generate() -> Result<Self, CaError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Signing(e.to_string()))?;
        Ok(Self {
            private_pem: key.serialize_pem(),
            public_der: rcgen::PublicKeyData::subject_public_key_info(&key),
        })
    }
}
