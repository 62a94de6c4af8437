//! The few DER shapes the agent writes itself: PKCS#11 hands out raw numbers, X.509 and
//! the service want them DER-encoded.

use base64::Engine;

fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn tagged(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian bytes: no superfluous leading zeros, and a zero
/// byte in front when the top bit is set (so it stays positive).
pub fn integer(big_endian: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = big_endian.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    tagged(0x02, &content)
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tagged(0x30, &parts.concat())
}

/// ECDSA-Sig-Value (RFC 3279) from PKCS#11's r||s.
pub fn ecdsa_signature(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    sequence(&[integer(r), integer(s)])
}

/// RSAPublicKey (RFC 8017): what an RSA certificate's subjectPublicKey holds.
pub fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    sequence(&[integer(modulus), integer(exponent)])
}

/// CKA_EC_POINT is the point wrapped in a DER OCTET STRING (most modules) or the bare
/// point (a few): the bare point either way.
pub fn unwrap_octet_string(point: &[u8]) -> Vec<u8> {
    match point {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && len & 0x80 == 0 => {
            rest.to_vec()
        }
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
        _ => point.to_vec(),
    }
}

/// A SubjectPublicKeyInfo (RFC 5280) from the subjectPublicKey bits: rsaEncryption with
/// NULL parameters, or id-ecPublicKey on prime256v1.
pub fn subject_public_key_info(algorithm: super::Algorithm, bits: &[u8]) -> Vec<u8> {
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    const EC_PUBLIC_KEY_P256: &[u8] = &[
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
        0x3d, 0x03, 0x01, 0x07,
    ];
    let identifier = match algorithm {
        super::Algorithm::Rsa2048 => RSA_ENCRYPTION,
        super::Algorithm::EcP256 => EC_PUBLIC_KEY_P256,
    };
    let mut bit_string = vec![0];
    bit_string.extend_from_slice(bits);
    sequence(&[tagged(0x30, identifier), tagged(0x03, &bit_string)])
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_positive_and_minimal() {
        assert_eq!(integer(&[0x00, 0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[0x00]), [0x02, 0x01, 0x00]);
    }

    #[test]
    fn an_ecdsa_signature_from_pkcs11_verifies_as_der() {
        use ring::rand::SystemRandom;
        use ring::signature::{self, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        // FIXED is r||s, what C_Sign with CKM_ECDSA returns.
        for _ in 0..20 {
            let raw = key.sign(&rng, b"nonce").unwrap();
            let der = ecdsa_signature(raw.as_ref());
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key.public_key())
                .verify(b"nonce", &der)
                .unwrap();
        }
    }

    #[test]
    fn a_subject_public_key_info_reads_back_as_the_key() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let bits = rcgen::PublicKeyData::der_bytes(&key);
        assert_eq!(
            subject_public_key_info(super::super::Algorithm::EcP256, bits),
            spki
        );
    }

    #[test]
    fn long_lengths_take_extra_bytes() {
        let der = rsa_public_key(&[0xc5; 256], &[1, 0, 1]);
        assert_eq!(&der[..4], [0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(unwrap_octet_string(&[0x04, 0x02, 0x04, 0x01]), [0x04, 0x01]);
    }
}
