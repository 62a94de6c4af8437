//! The certificate signing request a desktop agent sends: made on the device, signed
//! with the new key (proof of possession), naming the same subject as the certificate it
//! renews. Everything here is about the CSR alone; the registry checks come after.

use base64::Engine;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// A CSR that passed every check that needs nothing but itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCsr {
    /// The CSR as sent, normalised to one PEM block.
    pub pem: String,
    /// DER SubjectPublicKeyInfo: what the CA certifies.
    pub public_key_der: Vec<u8>,
    /// SHA-256 of `public_key_der`, hex: to refuse a key the device already used.
    pub public_key_sha256: String,
    /// The subject's attributes as `SHORT=value` (C, SN, GN, serialNumber, CN...).
    pub subject: Vec<String>,
}

impl CheckedCsr {
    pub fn public_key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.public_key_der)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----): {0}")]
    Malformed(String),
    #[error("the CSR's signature does not verify with its own key (no proof of possession)")]
    Signature,
    #[error("the key must be RSA of 2048 bits or more, or EC on P-256 or P-384; this one is {0}")]
    WeakKey(String),
}

impl CsrError {
    /// The rule, for the problem response.
    pub fn rule(&self) -> &'static str {
        match self {
            CsrError::Malformed(_) => "pkcs10-pem",
            CsrError::Signature => "proof-of-possession",
            CsrError::WeakKey(_) => "key-strength",
        }
    }
}

/// The SHA-256 (hex) of a DER SubjectPublicKeyInfo, as stored in the registry.
pub fn key_fingerprint(public_key_der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, public_key_der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn check(pem_text: &str) -> Result<CheckedCsr, CsrError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.trim().as_bytes())
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrError::Malformed(format!(
            "the PEM block is a {}",
            pem.label
        )));
    }
    let (_, csr) = X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let info = &csr.certification_request_info;
    check_key(&info.subject_pki)?;
    csr.verify_signature().map_err(|_| CsrError::Signature)?;
    let subject = attributes(&info.subject)?;
    let public_key_der = info.subject_pki.raw.to_vec();
    Ok(CheckedCsr {
        pem: format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD
                .encode(&pem.contents)
                .as_bytes()
                .chunks(64)
                .map(|line| std::str::from_utf8(line).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        ),
        public_key_sha256: key_fingerprint(&public_key_der),
        public_key_der,
        subject,
    })
}

fn check_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), CsrError> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384};
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => Ok(()),
        Ok(PublicKey::RSA(rsa)) => Err(CsrError::WeakKey(format!("RSA {}", rsa.key_size()))),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 || c == OID_NIST_EC_P384 => Ok(()),
                Some(c) => Err(CsrError::WeakKey(format!("EC on curve {c}"))),
                None => Err(CsrError::WeakKey("EC without a named curve".into())),
            }
        }
        Ok(_) => Err(CsrError::WeakKey(spki.algorithm.algorithm.to_id_string())),
        Err(e) => Err(CsrError::Malformed(e.to_string())),
    }
}

/// The name's attributes as `SHORT=value`, in the CSR's order.
fn attributes(name: &X509Name<'_>) -> Result<Vec<String>, CsrError> {
    name.iter_attributes()
        .map(|attribute| {
            let oid = attribute.attr_type().to_id_string();
            let short = match oid.as_str() {
                "2.5.4.6" => "C",
                "2.5.4.4" => "SN",
                "2.5.4.42" => "GN",
                "2.5.4.5" => "serialNumber",
                "2.5.4.3" => "CN",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.97" => "organizationIdentifier",
                other => other,
            }
            .to_owned();
            let value = attribute
                .as_str()
                .map_err(|_| CsrError::Malformed(format!("the subject's {short} is not text")))?;
            Ok(format!("{short}={value}"))
        })
        .collect()
}

/// Whether the CSR names exactly the subject of the certificate it renews (stored as
/// `C=IT, SN=..., GN=..., serialNumber=TINIT-..., CN=...`), attribute order aside.
pub fn same_subject(csr_subject: &[String], certificate_subject: &str) -> bool {
    let mut ours: Vec<&str> = csr_subject.iter().map(String::as_str).collect();
    let mut theirs: Vec<&str> = certificate_subject.split(", ").collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    ours == theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_for(algorithm: &'static rcgen::SignatureAlgorithm, subject: &[(&str, &str)]) -> String {
        let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
        let mut params = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        for (oid, value) in subject {
            let oid: Vec<u64> = oid.split('.').map(|n| n.parse().unwrap()).collect();
            name.push(rcgen::DnType::CustomDnType(oid), *value);
        }
        params.distinguished_name = name;
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    const SUBJECT: &str =
        "C=IT, SN=ROSSI, GN=MARIO, serialNumber=TINIT-RSSMRA80A01H501U, CN=ROSSI MARIO";

    fn rossi() -> Vec<(&'static str, &'static str)> {
        vec![
            ("2.5.4.6", "IT"),
            ("2.5.4.4", "ROSSI"),
            ("2.5.4.42", "MARIO"),
            ("2.5.4.5", "TINIT-RSSMRA80A01H501U"),
            ("2.5.4.3", "ROSSI MARIO"),
        ]
    }

    #[test]
    fn a_good_csr_gives_its_key_and_subject() {
        let checked = check(&csr_for(&rcgen::PKCS_ECDSA_P256_SHA256, &rossi())).unwrap();
        assert!(same_subject(&checked.subject, SUBJECT));
        assert_eq!(checked.public_key_sha256.len(), 64);
        assert_eq!(
            checked.public_key_sha256,
            key_fingerprint(&checked.public_key_der)
        );
        // What we keep parses again.
        assert_eq!(check(&checked.pem).unwrap().subject, checked.subject);
    }

    #[test]
    fn p384_is_accepted_and_subjects_compare_whatever_the_order() {
        let mut reordered = rossi();
        reordered.reverse();
        let checked = check(&csr_for(&rcgen::PKCS_ECDSA_P384_SHA384, &reordered)).unwrap();
        assert!(same_subject(&checked.subject, SUBJECT));
    }

    #[test]
    fn another_subject_is_not_the_same() {
        let mut other = rossi();
        other[3] = ("2.5.4.5", "TINIT-BNCLRA85T52F205E");
        let checked = check(&csr_for(&rcgen::PKCS_ECDSA_P256_SHA256, &other)).unwrap();
        assert!(!same_subject(&checked.subject, SUBJECT));
        let mut extra = rossi();
        extra.push(("2.5.4.10", "ACME"));
        let checked = check(&csr_for(&rcgen::PKCS_ECDSA_P256_SHA256, &extra)).unwrap();
        assert!(!same_subject(&checked.subject, SUBJECT));
    }

    #[test]
    fn a_tampered_csr_has_no_proof_of_possession() {
        let pem = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256, &rossi());
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let mut der = parsed.contents.clone();
        // Flip a byte of the subject's CN, inside the signed part.
        let at = der.windows(5).position(|w| w == b"ROSSI").unwrap();
        der[at] = b'R' ^ 0x20;
        let tampered = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        assert_eq!(check(&tampered), Err(CsrError::Signature));
    }

    #[test]
    fn garbage_and_certificates_are_not_requests() {
        assert!(matches!(check("hello"), Err(CsrError::Malformed(_))));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::default()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(check(&cert.pem()), Err(CsrError::Malformed(_))));
    }
}
