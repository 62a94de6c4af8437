//! The embedded CA: `<data dir>/ca/` holds a root (`root.pem`, `root.key.pem`) and an
//! issuing CA (`issuing.pem`, `issuing.key.pem`) signed by it. Made on first start: the
//! four files are written into a fresh directory that is then renamed into place, so two
//! processes starting at once end with one CA (the loser of the rename reads the
//! winner's). Keys are PKCS#8 PEM with permissions 0600 and are never logged.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, SubjectPublicKeyInfo,
};

use super::{CaError, CertificateAuthority, Issued, Profile, Subject};
use crate::secrets::random_bytes;

const ROOT_NAME: (&str, &str) = ("Rinnovo Embedded Root CA", "Rinnovo");
const ISSUING_NAME: (&str, &str) = ("Rinnovo Embedded Issuing CA", "Rinnovo");
const FILES: [&str; 4] = ["root.pem", "root.key.pem", "issuing.pem", "issuing.key.pem"];

pub struct EmbeddedCa {
    issuer: Issuer<'static, KeyPair>,
    issuing_pem: String,
    root_pem: String,
}

impl EmbeddedCa {
    /// Opens `<data_dir>/ca`, creating the CA on first use.
    pub fn open_or_create(data_dir: &Path) -> Result<Self, CaError> {
        let dir = data_dir.join("ca");
        if !dir.exists() {
            create(data_dir, &dir)?;
        }
        open(&dir)
    }
}

fn store_error(path: &Path, detail: impl std::fmt::Display) -> CaError {
    CaError::Store {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn open(dir: &Path) -> Result<EmbeddedCa, CaError> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|e| store_error(&path, e))
    };
    let [root_pem, _, issuing_pem, issuing_key] = FILES.map(read);
    let (root_pem, issuing_pem) = (root_pem?, issuing_pem?);
    let key = KeyPair::from_pem(&issuing_key?).map_err(|e| store_error(dir, e))?;
    let issuer = Issuer::from_ca_cert_pem(&issuing_pem, key).map_err(|e| store_error(dir, e))?;
    Ok(EmbeddedCa {
        issuer,
        issuing_pem,
        root_pem,
    })
}

fn name((common_name, organization): (&str, &str)) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "IT");
    name.push(DnType::OrganizationName, organization);
    name.push(DnType::CommonName, common_name);
    name
}

fn display_name((common_name, organization): (&str, &str)) -> String {
    format!("CN={common_name}, O={organization}, C=IT")
}

/// At least 64 random bits, positive (RFC 5280 §4.1.2.2 and the CA/B rules): 16 bytes
/// with the top bit cleared.
fn random_serial() -> SerialNumber {
    let mut bytes = random_bytes::<16>();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // no leading zero byte, so the serial keeps its 16 bytes
    SerialNumber::from_slice(&bytes)
}

fn ca_params(
    subject: (&str, &str),
    path_length: u8,
    now: DateTime<Utc>,
    years: i64,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(subject);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_length));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(random_serial());
    params.not_before = offset(now)?;
    params.not_after = offset(now + Duration::days(365 * years))?;
    Ok(params)
}

fn offset(time: DateTime<Utc>) -> Result<time::OffsetDateTime, CaError> {
    time::OffsetDateTime::from_unix_timestamp(time.timestamp())
        .map_err(|e| CaError::Signing(e.to_string()))
}

fn create(data_dir: &Path, dir: &Path) -> Result<(), CaError> {
    let signing = |e: rcgen::Error| CaError::Signing(e.to_string());
    let now = Utc::now();
    let algorithm = &rcgen::PKCS_ECDSA_P384_SHA384;
    let root_key = KeyPair::generate_for(algorithm).map_err(signing)?;
    let root_params = ca_params(ROOT_NAME, 1, now, 20)?;
    let root = root_params.self_signed(&root_key).map_err(signing)?;
    let issuing_key = KeyPair::generate_for(algorithm).map_err(signing)?;
    let root_issuer = Issuer::new(root_params, &root_key);
    let mut issuing_params = ca_params(ISSUING_NAME, 0, now, 10)?;
    issuing_params.use_authority_key_identifier_extension = true;
    let issuing = issuing_params
        .signed_by(&issuing_key, &root_issuer)
        .map_err(signing)?;

    let staging: PathBuf = data_dir.join(format!("ca.new-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&staging).map_err(|e| store_error(&staging, e))?;
    let contents = [
        root.pem(),
        root_key.serialize_pem(),
        issuing.pem(),
        issuing_key.serialize_pem(),
    ];
    for (file, content) in FILES.iter().zip(contents) {
        write_file(&staging.join(file), &content, file.ends_with(".key.pem"))?;
    }
    match std::fs::rename(&staging, dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "created the embedded CA");
            Ok(())
        }
        // Another process made it first: keep theirs.
        Err(_) if dir.exists() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(e) => Err(store_error(dir, e)),
    }
}

fn write_file(path: &Path, content: &str, secret: bool) -> Result<(), CaError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| store_error(path, e))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| store_error(path, e))
}

impl CertificateAuthority for EmbeddedCa {
    fn issue(
        &self,
        subject: &Subject,
        public_key: &[u8],
        profile: Profile,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        let public_key = SubjectPublicKeyInfo::from_der(public_key)
            .map_err(|e| CaError::PublicKey(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        let (surname, given) = (
            subject.surname.to_uppercase(),
            subject.given_name.to_uppercase(),
        );
        dn.push(DnType::CountryName, "IT");
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 4]), surname.as_str());
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 42]), given.as_str());
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            format!("TINIT-{}", subject.codice_fiscale),
        );
        dn.push(DnType::CommonName, format!("{surname} {given}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        match profile {
            Profile::Signature => {
                params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
            }
            Profile::Authentication => {
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        params.not_before = offset(not_before)?;
        params.not_after = offset(not_after)?;
        let certificate = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|e| CaError::Signing(e.to_string()))?;
        Ok(Issued {
            pem: certificate.pem(),
            serial_number: super::serial_hex(serial.as_ref()),
            subject: subject.display(),
            issuer: self.issuer_name(),
            // Certificates carry whole seconds.
            not_before: DateTime::from_timestamp(not_before.timestamp(), 0).unwrap_or(not_before),
            not_after: DateTime::from_timestamp(not_after.timestamp(), 0).unwrap_or(not_after),
        })
    }

    fn chain_pem(&self) -> String {
        format!("{}{}", self.issuing_pem, self.root_pem)
    }

    fn issuer_name(&self) -> String {
        display_name(ISSUING_NAME)
    }

    fn issuing_certificate_der(&self) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(self.issuing_pem.as_bytes())
            .map(|(_, pem)| pem.contents)
            .unwrap_or_default()
    }
}
