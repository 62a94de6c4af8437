//! Access tokens (JWT, HS256) and refresh tokens (random, stored only as a hash).
//!
//! One issuer and one audience per purpose: an access token for the API cannot be
//! replayed where an agent token (or any later purpose) is expected, and vice versa.
//! The algorithm is pinned: a token whose header says `none`, `RS256` or anything
//! else is refused before its signature is even looked at.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;

pub const ISSUER: &str = "rinnovo";
pub const API_AUDIENCE: &str = "rinnovo-api";
/// Agent tokens: their own issuer and audience, so they are never access tokens.
pub const AGENT_ISSUER: &str = "rinnovo-agent-auth";
pub const AGENT_AUDIENCE: &str = "rinnovo-agent";
/// An agent session lasts minutes: long enough to request, poll and install.
pub const AGENT_TTL_MINUTES: i64 = 15;

/// What an agent token says: one certificate of one device of one brand.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentClaims {
    pub iss: String,
    pub aud: String,
    /// The device id.
    pub sub: String,
    /// The certificate the agent proved it holds.
    pub cert: String,
    pub brand: String,
    pub iat: i64,
    pub exp: i64,
}
pub const SECRET_FILE: &str = "jwt-secret";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub brand: String,
    pub role: Role,
    /// The sign-in the token belongs to (its refresh-token family): the token is good only
    /// while that sign-in is, so signing out or a password change ends it at once. Tokens
    /// made before this claim existed have none, and are refused as ended sessions.
    #[serde(default)]
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    agent_validation: Validation,
    access_ttl: Duration,
}

impl TokenIssuer {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[API_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Clocks of several service machines differ a little.
        validation.leeway = 30;
        let mut agent_validation = validation.clone();
        agent_validation.set_issuer(&[AGENT_ISSUER]);
        agent_validation.set_audience(&[AGENT_AUDIENCE]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            agent_validation,
            access_ttl,
        }
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    fn sign(&self, claims: &impl Serialize) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<C, TokenError> {
        decode::<C>(token, &self.decoding, validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }

    pub fn issue_access(
        &self,
        user_id: &str,
        brand: &str,
        role: Role,
        session: &str,
        now: DateTime<Utc>,
    ) -> String {
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: API_AUDIENCE.into(),
            sub: user_id.into(),
            brand: brand.into(),
            role,
            sid: session.into(),
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
        };
        self.sign(&claims)
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token, &self.validation)
    }
}

impl TokenIssuer {
    pub fn issue_agent(
        &self,
        device_id: &str,
        certificate_id: &str,
        brand: &str,
        now: DateTime<Utc>,
    ) -> String {
        let claims = AgentClaims {
            iss: AGENT_ISSUER.into(),
            aud: AGENT_AUDIENCE.into(),
            sub: device_id.into(),
            cert: certificate_id.into(),
            brand: brand.into(),
            iat: now.timestamp(),
            exp: (now + Duration::minutes(AGENT_TTL_MINUTES)).timestamp(),
        };
        self.sign(&claims)
    }

    pub fn verify_agent(&self, token: &str) -> Result<AgentClaims, TokenError> {
        self.verify(token, &self.agent_validation)
    }
}

/// A new secret token (a refresh token, a password-reset or confirmation link's): 256
/// random bits as hex, and the hash that is stored.
pub fn new_secret_token() -> (String, String) {
    let token = hex(&crate::secrets::random_bytes::<32>());
    let hash = hash_secret_token(&token);
    (token, hash)
}

/// SHA-256 is enough here: the token has 256 bits of entropy, nothing to brute-force.
pub fn hash_secret_token(token: &str) -> String {
    hex(&Sha256::digest(token.trim().as_bytes()))
}

use crate::secrets::hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(b"0123456789abcdef0123456789abcdef", Duration::minutes(15))
    }

    #[test]
    fn issued_tokens_verify() {
        let token = issuer().issue_access("u1", "visura", Role::Customer, "s1", Utc::now());
        let claims = issuer().verify_access(&token).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.brand, "visura");
        assert_eq!(claims.role, Role::Customer);
        assert_eq!(claims.sid, "s1");
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let old = issuer().issue_access(
            "u1",
            "visura",
            Role::Customer,
            "s1",
            Utc::now() - Duration::hours(1),
        );
        assert!(matches!(
            issuer().verify_access(&old),
            Err(TokenError::Expired)
        ));
        let other = TokenIssuer::new(b"another secret another secret 12", Duration::minutes(15));
        let foreign = other.issue_access("u1", "visura", Role::Customer, "s1", Utc::now());
        assert!(matches!(
            issuer().verify_access(&foreign),
            Err(TokenError::Invalid)
        ));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, hash_a) = new_secret_token();
        let (b, _) = new_secret_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_secret_token(&a), hash_a);
        assert_ne!(a, hash_a);
    }
}
