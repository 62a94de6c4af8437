//! Passwords: a strength rule for new ones, argon2id hashes, constant-shape verification.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::email_address::EmailAddress;
use crate::validation::Rule;

/// A password that meets the strength rule. Never logged: Debug is redacted.
#[derive(Clone)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;
/// The most common choices that pass the length rule; a real deployment can extend it.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "qwertyuiop",
    "password123",
    "password1234",
    "passwordpassword",
    "iloveyou123",
    "abcdefghij",
    "0987654321",
    "1q2w3e4r5t",
    "qwerty1234",
    "password01",
    "firmadigitale",
    "rinnovo2026",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("a password has at most {MAX_LENGTH} characters")]
    TooLong,
    #[error("a password needs at least 5 different characters")]
    TooRepetitive,
    #[error("this password is among the most common ones; choose another")]
    Common,
    #[error("a password must not contain the email address")]
    ContainsEmail,
}

impl Rule for PasswordError {
    fn rule(&self) -> &'static str {
        match self {
            Self::TooShort => "min_length",
            Self::TooLong => "max_length",
            Self::TooRepetitive => "distinct_characters",
            Self::Common => "not_common",
            Self::ContainsEmail => "not_email",
        }
    }
}

impl NewPassword {
    /// The rule follows NIST SP 800-63B: length matters, composition rules do not; common
    /// and guessable-from-context passwords are refused.
    pub fn parse(input: &str, email: Option<&EmailAddress>) -> Result<Self, PasswordError> {
        let length = input.chars().count();
        if length < MIN_LENGTH {
            return Err(PasswordError::TooShort);
        }
        if length > MAX_LENGTH {
            return Err(PasswordError::TooLong);
        }
        let mut distinct: Vec<char> = input.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 5 {
            return Err(PasswordError::TooRepetitive);
        }
        let lowered = input.to_lowercase();
        if COMMON.contains(&lowered.as_str()) {
            return Err(PasswordError::Common);
        }
        if let Some(email) = email {
            let local = email.as_str().split('@').next().unwrap_or_default();
            if local.chars().count() >= 4 && lowered.contains(local) {
                return Err(PasswordError::ContainsEmail);
            }
        }
        Ok(Self(input.to_owned()))
    }

    pub fn hash(&self) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .expect("argon2 with default parameters cannot fail on a bounded password")
            .to_string()
    }
}

/// Checks a candidate against a stored hash. With no hash (unknown user) it still does
/// the work of one verification, so the answer time does not tell whether the account
/// exists.
pub fn verify(candidate: &str, stored_hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| NewPassword("dummy-password-for-timing".into()).hash());
    let hash_text = stored_hash.unwrap_or(dummy);
    let Ok(hash) = PasswordHash::new(hash_text) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(candidate.as_bytes(), &hash)
        .is_ok();
    matches && stored_hash.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_rule() {
        let email = EmailAddress::parse("mario.rossi@example.it").unwrap();
        assert!(NewPassword::parse("correct horse battery", Some(&email)).is_ok());
        let rule = |p: &str| NewPassword::parse(p, Some(&email)).unwrap_err().rule();
        assert_eq!(rule("short"), "min_length");
        assert_eq!(rule(&"ab".repeat(65)), "max_length");
        assert_eq!(rule("aaaaabbbbbb"), "distinct_characters");
        assert_eq!(rule("Password123"), "not_common");
        assert_eq!(rule("xx-mario.rossi-yy"), "not_email");
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        let password = NewPassword::parse("una password lunga", None).unwrap();
        let (a, b) = (password.hash(), password.hash());
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("una password lunga", Some(&a)));
        assert!(!verify("una password lungA", Some(&a)));
        assert!(!verify("dummy-password-for-timing", None));
        assert!(!verify("anything", Some("not a hash")));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = NewPassword::parse("una password lunga", None).unwrap();
        assert_eq!(format!("{password:?}"), "NewPassword(***)");
    }
}
