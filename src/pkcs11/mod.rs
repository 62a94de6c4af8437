//! A signature token through PKCS#11: its certificates, its keys, signing on it, new key
//! pairs made on it, certificates written to it. Private keys never leave the token. The
//! reference agent (`rinnovo-agent`) renews with it; `rinnovo device enroll` puts a demo
//! device on a token with it.

pub mod der;

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use x509_parser::prelude::*;

/// DER of the named curve prime256v1 (P-256), as CKA_EC_PARAMS wants it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Where a key made for a renewal is recognised until its certificate is installed: the
/// label of its objects starts with this, followed by the kind it renews.
pub const PENDING_LABEL: &str = "rinnovo-new ";

/// Which token to open: by label, or by slot number.
pub enum Selector {
    Label(String),
    Slot(u64),
}

/// What the user did wrong or what is missing, said so that they can act on it.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot load the PKCS#11 module {module}: {detail}")]
    Module { module: String, detail: String },
    #[error("no token {0} found: is the card or key plugged in?")]
    Missing(String),
    #[error("wrong PIN{0}")]
    WrongPin(&'static str),
    #[error("the PIN is locked: unlock it with the PUK (the card's unblocking code) first")]
    PinLocked,
    #[error("the token refused: {0}")]
    Pkcs11(#[from] Pkcs11Error),
}

/// What a certificate is for, read from its keyUsage: nonRepudiation makes it the
/// qualified signature certificate, anything else the authentication (CNS) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signature,
    Authentication,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Signature => "signature",
            Kind::Authentication => "authentication",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rsa2048,
    EcP256,
}

/// Whether an EC public key is on the named curve prime256v1 (P-256).
fn is_p256(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> bool {
    spki.algorithm
        .parameters
        .as_ref()
        .is_some_and(|curve| curve.as_bytes() == &P256_PARAMS[2..])
}

/// A certificate object on the token.
#[derive(Debug, Clone)]
pub struct TokenCertificate {
    pub id: Vec<u8>,
    pub der: Vec<u8>,
    pub kind: Kind,
    pub algorithm: Algorithm,
    /// As the service writes it: uppercase hex, no leading zero bytes.
    pub serial: String,
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// The subjectPublicKey bits: the EC point, or the RSAPublicKey DER.
    pub public_key: Vec<u8>,
    /// The subject's attributes as (OID arcs, text).
    pub subject: Vec<(Vec<u64>, String)>,
}

impl TokenCertificate {
    /// A certificate as DER, with the CKA_ID it has (or will have) on the token. `None`
    /// for what this agent cannot use (not X.509, neither RSA nor EC).
    pub fn parse(id: Vec<u8>, der: Vec<u8>) -> Option<Self> {
        let (_, certificate) = X509Certificate::from_der(&der).ok()?;
        let kind = match certificate.key_usage() {
            Ok(Some(usage)) if usage.value.non_repudiation() => Kind::Signature,
            _ => Kind::Authentication,
        };
        let spki = certificate.public_key();
        let algorithm = match spki.parsed().ok()? {
            x509_parser::public_key::PublicKey::RSA(_) => Algorithm::Rsa2048,
            // Only P-256 among the curves: the key made for the renewal has the old key's
            // kind, and a P-384 certificate must not get a P-256 key by mistake.
            x509_parser::public_key::PublicKey::EC(_) if is_p256(spki) => Algorithm::EcP256,
            _ => return None,
        };
        let subject = certificate
            .subject()
            .iter_attributes()
            .filter_map(|attribute| {
                let arcs = attribute.attr_type().iter()?.collect();
                Some((arcs, attribute.as_str().ok()?.to_owned()))
            })
            .collect();
        let not_after =
            chrono::DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)?;
        Some(Self {
            serial: crate::ca::serial_hex(certificate.raw_serial()),
            public_key: spki.subject_public_key.data.to_vec(),
            id,
            kind,
            algorithm,
            not_after,
            subject,
            der,
        })
    }

    pub fn pem(&self) -> String {
        der::pem("CERTIFICATE", &self.der)
    }
}

/// A key pair made for a renewal, found by its label, whose certificate is not on the
/// token yet.
#[derive(Debug, Clone)]
pub struct PendingKey {
    pub id: Vec<u8>,
    pub kind: Kind,
    pub algorithm: Algorithm,
    pub private: ObjectHandle,
    pub public_key: Vec<u8>,
}

impl PendingKey {
    /// The DER SubjectPublicKeyInfo: what a CA certifies.
    pub fn subject_public_key_info(&self) -> Vec<u8> {
        der::subject_public_key_info(self.algorithm, &self.public_key)
    }
}

pub struct Token {
    session: Session,
    // The module stays loaded as long as the session lives.
    _context: Pkcs11,
}

impl Token {
    /// Loads the module, finds the token and logs in with the PIN. Nothing about the PIN
    /// is ever printed.
    pub fn open(module: &Path, selector: &Selector, pin: &str) -> Result<Self, TokenError> {
        let context = Pkcs11::new(module).map_err(|e| TokenError::Module {
            module: module.display().to_string(),
            detail: e.to_string(),
        })?;
        context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let slot = find_slot(&context, selector)?;
        let session = context.open_rw_session(slot).map_err(|e| match e {
            Pkcs11Error::Pkcs11(RvError::TokenNotPresent, _) => {
                TokenError::Missing(describe(selector))
            }
            other => other.into(),
        })?;
        let pin = AuthPin::from(pin.to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Pkcs11Error::Pkcs11(RvError::PinIncorrect, _)) => {
                // The flags are read after the failed try, so they count it.
                let info = context.get_token_info(slot)?;
                let tries = if info.user_pin_locked() {
                    return Err(TokenError::PinLocked);
                } else if info.user_pin_final_try() {
                    ": one try left before the PIN locks"
                } else if info.user_pin_count_low() {
                    ": the token counts the failed tries and locks the PIN after a few"
                } else {
                    ""
                };
                return Err(TokenError::WrongPin(tries));
            }
            Err(Pkcs11Error::Pkcs11(RvError::PinLocked, _)) => return Err(TokenError::PinLocked),
            Err(other) => return Err(other.into()),
        }
        Ok(Self {
            session,
            _context: context,
        })
    }

    /// The X.509 certificates on the token that this agent understands (RSA or EC).
    pub fn certificates(&self) -> Result<Vec<TokenCertificate>, TokenError> {
        let handles = self.session.find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
        ])?;
        let mut certificates = Vec::new();
        for handle in handles {
            let (mut id, mut value) = (Vec::new(), Vec::new());
            for attribute in self
                .session
                .get_attributes(handle, &[AttributeType::Id, AttributeType::Value])?
            {
                match attribute {
                    Attribute::Id(bytes) => id = bytes,
                    Attribute::Value(bytes) => value = bytes,
                    _ => {}
                }
            }
            certificates.extend(TokenCertificate::parse(id, value));
        }
        Ok(certificates)
    }

    fn objects(&self, class: ObjectClass, id: &[u8]) -> Result<Vec<ObjectHandle>, TokenError> {
        Ok(self
            .session
            .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?)
    }

    /// The private key next to a certificate (same CKA_ID).
    pub fn private_key(&self, id: &[u8]) -> Result<Option<ObjectHandle>, TokenError> {
        Ok(self
            .objects(ObjectClass::PRIVATE_KEY, id)?
            .into_iter()
            .next())
    }

    /// Signs `message` with the key: SHA-256 with RSA PKCS#1 v1.5, or ECDSA over the
    /// SHA-256 digest, returned as DER (PKCS#11 gives r||s; X.509 and the service want
    /// the DER SEQUENCE).
    pub fn sign(
        &self,
        key: ObjectHandle,
        algorithm: Algorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        Ok(match algorithm {
            Algorithm::Rsa2048 => self.session.sign(&Mechanism::Sha256RsaPkcs, key, message)?,
            Algorithm::EcP256 => {
                let digest = ring::digest::digest(&ring::digest::SHA256, message);
                let raw = self.session.sign(&Mechanism::Ecdsa, key, digest.as_ref())?;
                der::ecdsa_signature(&raw)
            }
        })
    }

    /// Makes a key pair on the token for renewing a `kind` certificate: the private key
    /// sensitive and never extractable, a fresh random CKA_ID, labelled as pending.
    pub fn generate_key_pair(
        &self,
        algorithm: Algorithm,
        kind: Kind,
    ) -> Result<PendingKey, TokenError> {
        let id = self.session.generate_random_vec(16)?;
        let label = format!("{PENDING_LABEL}{}", kind.as_str()).into_bytes();
        let common = [
            Attribute::Token(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label),
        ];
        // A signing key and nothing else: no decryption, wrapping or derivation.
        let mut public = common.to_vec();
        public.extend([
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ]);
        let mut private = common.to_vec();
        private.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ]);
        let mechanism = match algorithm {
            Algorithm::Rsa2048 => {
                public.extend([
                    Attribute::ModulusBits(2048.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ]);
                Mechanism::RsaPkcsKeyPairGen
            }
            Algorithm::EcP256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
        };
        let (public, private) = self
            .session
            .generate_key_pair(&mechanism, &public, &private)?;
        Ok(PendingKey {
            public_key: self.public_key_bits(public, algorithm)?,
            id,
            kind,
            algorithm,
            private,
        })
    }

    /// The subjectPublicKey bits of a public key object, as a certificate carries them.
    fn public_key_bits(
        &self,
        public: ObjectHandle,
        algorithm: Algorithm,
    ) -> Result<Vec<u8>, TokenError> {
        let wanted: &[AttributeType] = match algorithm {
            Algorithm::Rsa2048 => &[AttributeType::Modulus, AttributeType::PublicExponent],
            Algorithm::EcP256 => &[AttributeType::EcPoint],
        };
        let (mut modulus, mut exponent, mut point) = (Vec::new(), Vec::new(), Vec::new());
        for attribute in self.session.get_attributes(public, wanted)? {
            match attribute {
                Attribute::Modulus(bytes) => modulus = bytes,
                Attribute::PublicExponent(bytes) => exponent = bytes,
                Attribute::EcPoint(bytes) => point = bytes,
                _ => {}
            }
        }
        Ok(match algorithm {
            Algorithm::Rsa2048 => der::rsa_public_key(&modulus, &exponent),
            Algorithm::EcP256 => der::unwrap_octet_string(&point),
        })
    }

    /// The keys made for a renewal whose certificate is not installed yet.
    pub fn pending_keys(&self) -> Result<Vec<PendingKey>, TokenError> {
        let mut pending = Vec::new();
        for private in self
            .session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])?
        {
            let (mut id, mut label, mut key_type) = (Vec::new(), Vec::new(), None);
            for attribute in self.session.get_attributes(
                private,
                &[
                    AttributeType::Id,
                    AttributeType::Label,
                    AttributeType::KeyType,
                ],
            )? {
                match attribute {
                    Attribute::Id(bytes) => id = bytes,
                    Attribute::Label(bytes) => label = bytes,
                    Attribute::KeyType(found) => key_type = Some(found),
                    _ => {}
                }
            }
            let label = String::from_utf8_lossy(&label);
            let kind = match label.strip_prefix(PENDING_LABEL) {
                Some("signature") => Kind::Signature,
                Some("authentication") => Kind::Authentication,
                _ => continue,
            };
            let algorithm = match key_type {
                Some(KeyType::RSA) => Algorithm::Rsa2048,
                Some(KeyType::EC) => Algorithm::EcP256,
                _ => continue,
            };
            // Its certificate already written (by a run stopped before relabelling): not
            // pending any more, and never to be used for another request.
            if !self.objects(ObjectClass::CERTIFICATE, &id)?.is_empty() {
                continue;
            }
            let Some(public) = self
                .objects(ObjectClass::PUBLIC_KEY, &id)?
                .into_iter()
                .next()
            else {
                continue;
            };
            pending.push(PendingKey {
                public_key: self.public_key_bits(public, algorithm)?,
                id,
                kind,
                algorithm,
                private,
            });
        }
        Ok(pending)
    }

    /// Writes a certificate next to its key (the key's CKA_ID) and gives both a clear label.
    pub fn install_certificate(&self, key: &PendingKey, der: &[u8]) -> Result<(), TokenError> {
        let (_, certificate) = X509Certificate::from_der(der).map_err(|_| {
            Pkcs11Error::Pkcs11(
                RvError::DataInvalid,
                cryptoki::context::Function::CreateObject,
            )
        })?;
        let until =
            chrono::DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
        let label = format!("{} certificate until {until}", key.kind.as_str()).into_bytes();
        self.session.create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Id(key.id.clone()),
            Attribute::Label(label.clone()),
            Attribute::Subject(certificate.subject().as_raw().to_vec()),
            Attribute::Issuer(certificate.issuer().as_raw().to_vec()),
            Attribute::SerialNumber(der::integer(certificate.raw_serial())),
            Attribute::Value(der.to_vec()),
        ])?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            for handle in self.objects(class, &key.id)? {
                self.session
                    .update_attributes(handle, &[Attribute::Label(label.clone())])?;
            }
        }
        Ok(())
    }

    /// Removes every object with this CKA_ID: a replaced certificate, its keys.
    pub fn destroy(&self, id: &[u8]) -> Result<(), TokenError> {
        for class in [
            ObjectClass::CERTIFICATE,
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
        ] {
            for handle in self.objects(class, id)? {
                self.session.destroy_object(handle)?;
            }
        }
        Ok(())
    }
}

fn describe(selector: &Selector) -> String {
    match selector {
        Selector::Label(label) => format!("labelled \"{label}\""),
        Selector::Slot(slot) => format!("in slot {slot}"),
    }
}

fn find_slot(context: &Pkcs11, selector: &Selector) -> Result<Slot, TokenError> {
    for slot in context.get_slots_with_token()? {
        let found = match selector {
            Selector::Slot(number) => slot.id() == *number,
            Selector::Label(label) => context.get_token_info(slot)?.label().trim() == label,
        };
        if found {
            return Ok(slot);
        }
    }
    Err(TokenError::Missing(describe(selector)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate on a fresh key of `algorithm`, as DER.
    fn certificate(algorithm: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
        let params = rcgen::CertificateParams::new(vec!["token.example".to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn an_ec_certificate_is_usable_on_p256_only() {
        let p256 = TokenCertificate::parse(vec![1], certificate(&rcgen::PKCS_ECDSA_P256_SHA256));
        assert_eq!(p256.map(|c| c.algorithm), Some(Algorithm::EcP256));
        let p384 = TokenCertificate::parse(vec![2], certificate(&rcgen::PKCS_ECDSA_P384_SHA384));
        assert!(p384.is_none(), "a P-384 key must not be taken for P-256");
    }
}
