//! Signed session tokens: `v1.<claims>.<signature>`, base64url, HMAC-SHA-256
//! with the cluster's signing key (replicated, so any node verifies a token
//! any other node issued). Pure: time and key come in as arguments.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a session token from `POST /auth/login` is valid.
pub const SESSION_TTL_MS: u64 = 12 * 60 * 60 * 1000;

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Principal {
    /// A platform operator (creates tenants, manages the cluster).
    Operator {
        /// Operator id.
        id: u64,
    },
    /// A user of a tenant.
    User {
        /// The user's tenant.
        tenant: u64,
        /// The user.
        id: u64,
    },
}

/// What a session token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who.
    pub principal: Principal,
    /// The ledger's session this token belongs to: logging out ends it,
    /// and the token with it.
    pub session: u64,
    /// A tag of the password the token was issued against: changing the
    /// password invalidates every token issued before.
    pub password_tag: String,
    /// Issued at, ms since the epoch.
    pub issued_at_ms: u64,
    /// Expires at, ms since the epoch.
    pub expires_at_ms: u64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `v1.<claims>.<signature>`.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// Signs `claims` with `key`.
pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mut m = mac(key);
    m.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("v1.{payload}.{signature}")
}

/// Checks the signature and expiry of `token` at `now_ms`.
pub fn verify(token: &str, key: &[u8], now_ms: u64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some("v1"), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(payload.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if now_ms >= claims.expires_at_ms {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// A short tag of a stored password hash (see [`Claims::password_tag`]).
pub fn password_tag(phc: &str) -> String {
    use sha2::Digest as _;
    let digest = Sha256::digest(phc.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            principal: Principal::User { tenant: 1, id: 7 },
            session: 3,
            password_tag: password_tag("$argon2id$v=19$m=19456,t=2,p=1$abc$def"),
            issued_at_ms: 1_000,
            expires_at_ms: 2_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = sign(&claims(), b"key");
        assert_eq!(verify(&token, b"key", 1_999), Ok(claims()));
        assert_eq!(verify(&token, b"key", 2_000), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_key_or_altered_is_refused() {
        let token = sign(&claims(), b"key");
        assert_eq!(
            verify(&token, b"other", 1_500),
            Err(TokenError::BadSignature)
        );
        let mut altered = claims();
        altered.principal = Principal::Operator { id: 7 };
        let forged_payload = sign(&altered, b"attacker");
        let (_, rest) = forged_payload.split_once('.').expect("dot");
        let (payload, _) = rest.split_once('.').expect("dot");
        let (_, original_signature) = token.rsplit_once('.').expect("dot");
        let forged = format!("v1.{payload}.{original_signature}");
        assert_eq!(
            verify(&forged, b"key", 1_500),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify("v1.abc", b"key", 1_500), Err(TokenError::Malformed));
        assert_eq!(verify("garbage", b"key", 1_500), Err(TokenError::Malformed));
    }
}
