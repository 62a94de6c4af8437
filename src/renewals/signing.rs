//! The CPU half of an issuance batch: signing the claimed renewals through the CA, on
//! several threads, with no database in sight.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};

use crate::ca::{CertificateAuthority, Issued, Profile, Subject};
use crate::registry::{CertificateKind, CertificateStatus};

/// A renewal this worker holds the lease on.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub id: String,
    pub kind: CertificateKind,
    pub public_key: String,
    pub attempts: i32,
    /// The renewed certificate's status now: anything but active rejects the renewal.
    pub certificate_status: CertificateStatus,
    pub subject: Subject,
}

/// What signing one renewal came to.
pub(super) enum Outcome {
    Issued(Issued),
    /// The certificate to renew is no longer active: never sign. The reason, in Italian,
    /// goes to the holder.
    Rejected(String),
    /// The CA failed (or the stored request is unusable): retried, then given up.
    Error(String),
}

/// Signs a certificate valid `validity` from `now`.
fn sign_one(
    ca: &dyn CertificateAuthority,
    renewal: &Claimed,
    validity: Duration,
    now: DateTime<Utc>,
) -> Outcome {
    // Revoked (or superseded by another path) since the request: never sign.
    let why_not = match renewal.certificate_status {
        CertificateStatus::Active => None,
        CertificateStatus::Revoked => Some("il certificato da rinnovare è stato revocato"),
        CertificateStatus::Superseded => Some("il certificato da rinnovare non è più in uso"),
    };
    if let Some(reason) = why_not {
        return Outcome::Rejected(reason.to_owned());
    }
    let profile = match renewal.kind {
        CertificateKind::Signature => Profile::Signature,
        CertificateKind::Authentication => Profile::Authentication,
    };
    let public_key = match base64::engine::general_purpose::STANDARD.decode(&renewal.public_key) {
        Ok(der) => der,
        Err(e) => return Outcome::Error(format!("stored public key: {e}")),
    };
    let not_after = now + validity;
    match ca.issue(&renewal.subject, &public_key, profile, now, not_after) {
        Ok(issued) => Outcome::Issued(issued),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// Signs on `signers` threads: signing is the CPU work of the batch. One outcome per
/// claimed renewal, in order.
pub(super) fn sign_all(
    ca: &dyn CertificateAuthority,
    claimed: &[Claimed],
    signers: usize,
    validity: Duration,
    now: DateTime<Utc>,
) -> Vec<Outcome> {
    let per_thread = claimed.len().div_ceil(signers.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = claimed
            .chunks(per_thread.max(1))
            .map(|chunk| {
                let handle = scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|renewal| sign_one(ca, renewal, validity, now))
                        .collect::<Vec<_>>()
                });
                (chunk.len(), handle)
            })
            .collect();
        // One outcome per renewal, in order, whatever happens to a thread.
        handles
            .into_iter()
            .flat_map(|(len, handle)| {
                handle.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| Outcome::Error("the signing thread panicked".into()))
                        .collect()
                })
            })
            .collect()
    })
}
