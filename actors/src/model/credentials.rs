//! Secrets: validation of panel passwords (V2), agent PINs (V1) and SIP
//! passwords (V3), and the only forms in which they are kept. Plaintext never
//! enters the ledger: callers hash first, with salts they generate (this
//! module takes randomness as an argument, it never draws any).

use super::refusal::{ensure, Checked, RefusalCode};
use super::user::Role;
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::collections::BTreeSet;

/// A stored panel password. `phc` verifies a login (argon2id, per-user salt);
/// `fingerprint` (argon2id with the tenant's salt) lets the ledger refuse a
/// password equal to another user's (V2) without ever seeing it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    /// argon2id PHC string with a per-user salt.
    pub phc: String,
    /// argon2id of the password with the tenant-wide salt, hex.
    pub fingerprint: String,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A SIP device's digest secrets (RFC 7616 HA1 values for the tenant's realm).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipSecret {
    /// MD5(username:realm:password), hex.
    pub ha1_md5: String,
    /// SHA-256(username:realm:password), hex.
    pub ha1_sha256: String,
}

impl std::fmt::Debug for SipSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipSecret(..)")
    }
}

const SPECIALS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn is_special(c: char) -> bool {
    SPECIALS.contains(c) || (!c.is_alphanumeric() && !c.is_whitespace() && !c.is_control())
}

/// The minimum panel password length for a set of roles (V2): the strictest
/// of the user's roles applies.
pub fn minimum_password_length(roles: &BTreeSet<Role>) -> usize {
    roles
        .iter()
        .map(|role| match role {
            Role::SystemAdministrator | Role::TeamAdministrator => 12,
            Role::Supervisor => 10,
            Role::Agent | Role::PbxUser | Role::UcUser => 8,
        })
        .max()
        .unwrap_or(8)
}

/// V2: length by role, an upper-case letter, a digit and a special character.
pub fn validate_panel_password(password: &str, roles: &BTreeSet<Role>) -> Checked<()> {
    let minimum = minimum_password_length(roles);
    ensure(
        password.chars().count() >= minimum,
        RefusalCode::PasswordTooShortForRole,
        || format!("a panel password for these roles must have at least {minimum} characters"),
    )?;
    ensure(
        password.chars().any(char::is_uppercase),
        RefusalCode::PasswordMissingUppercase,
        || "a panel password needs at least one upper-case letter".into(),
    )?;
    ensure(
        password.chars().any(|c| c.is_ascii_digit()),
        RefusalCode::PasswordMissingDigit,
        || "a panel password needs at least one digit".into(),
    )?;
    ensure(
        password.chars().any(is_special),
        RefusalCode::PasswordMissingSpecial,
        || "a panel password needs at least one special character".into(),
    )
}

fn argon2() -> Argon2<'static> {
    Argon2::default()
}

fn fingerprint(secret: &str, tenant_salt: &[u8]) -> String {
    let mut out = [0u8; 32];
    // The tenant salt is 16 random bytes, within argon2's limits; a failure
    // here would be a bug in how the tenant was created.
    argon2()
        .hash_password_into(secret.as_bytes(), tenant_salt, &mut out)
        .unwrap_or_else(|e| panic!("a tenant salt is always a valid argon2 salt: {e}"));
    hex::encode(out)
}

/// Hashes a panel password: `user_salt` (16 random bytes) for the PHC string,
/// the tenant's salt for the uniqueness fingerprint.
pub fn hash_panel_password(
    password: &str,
    user_salt: &[u8; 16],
    tenant_salt: &[u8],
) -> PasswordHash {
    let salt = SaltString::encode_b64(user_salt)
        .unwrap_or_else(|e| panic!("16 bytes always encode as a salt: {e}"));
    let phc = argon2()
        .hash_password(password.as_bytes(), &salt)
        .unwrap_or_else(|e| panic!("argon2 with default parameters accepts any password: {e}"))
        .to_string();
    PasswordHash {
        phc,
        fingerprint: fingerprint(password, tenant_salt),
    }
}

/// Whether `password` matches the stored hash.
pub fn verify_panel_password(password: &str, stored: &PasswordHash) -> bool {
    verify_phc(password, &stored.phc)
}

/// Whether `password` matches a PHC string (operators have no fingerprint).
pub fn verify_phc(password: &str, phc: &str) -> bool {
    match Phc::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A PHC string for an operator password (no tenant, no fingerprint).
pub fn hash_operator_password(password: &str, salt: &[u8; 16]) -> String {
    let salt =
        SaltString::encode_b64(salt).unwrap_or_else(|e| panic!("16 bytes always encode: {e}"));
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .unwrap_or_else(|e| panic!("argon2 with default parameters accepts any password: {e}"))
        .to_string()
}

/// V1: at least 5 digits, not a run (12345, 54321), not one repeated digit.
pub fn validate_pin(pin: &str) -> Checked<()> {
    ensure(
        pin.chars().all(|c| c.is_ascii_digit()) && !pin.is_empty(),
        RefusalCode::PinNotDigits,
        || "an agent PIN consists of digits only".into(),
    )?;
    ensure(pin.len() >= 5, RefusalCode::PinTooShort, || {
        "an agent PIN has at least 5 digits".into()
    })?;
    let digits: Vec<i16> = pin.bytes().map(|b| i16::from(b - b'0')).collect();
    let steps: BTreeSet<i16> = digits.windows(2).map(|w| w[1] - w[0]).collect();
    ensure(
        steps != BTreeSet::from([0]),
        RefusalCode::PinRepeatedDigit,
        || "an agent PIN must not be one repeated digit".into(),
    )?;
    ensure(
        steps != BTreeSet::from([1]) && steps != BTreeSet::from([-1]),
        RefusalCode::PinSequential,
        || "an agent PIN must not be an ascending or descending run of digits".into(),
    )
}

/// The stored form of a PIN: its fingerprint with the tenant's salt (so the
/// ledger can keep PINs unique and find an agent by PIN, V1/A3).
pub fn pin_fingerprint(pin: &str, tenant_salt: &[u8]) -> String {
    fingerprint(pin, tenant_salt)
}

/// V3: at least 10 characters with lower-case, upper-case, digit and special.
pub fn validate_sip_password(password: &str) -> Checked<()> {
    let strong = password.chars().count() >= 10
        && password.chars().any(char::is_lowercase)
        && password.chars().any(char::is_uppercase)
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(is_special);
    ensure(strong, RefusalCode::SipPasswordTooWeak, || {
        "a SIP password has at least 10 characters with a lower-case and an upper-case letter, a digit and a special character".into()
    })
}

/// The RFC 7616 HA1 values of a SIP account.
pub fn sip_ha1(username: &str, realm: &str, password: &str) -> SipSecret {
    let a1 = format!("{username}:{realm}:{password}");
    SipSecret {
        ha1_md5: hex::encode(md5::Md5::digest(a1.as_bytes())),
        ha1_sha256: hex::encode(sha2::Sha256::digest(a1.as_bytes())),
    }
}

/// The stored form of an API token secret (SHA-256, hex): tokens are long
/// random strings, so a fast hash is enough.
pub fn hash_api_token(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_pin(pin: &str) -> Result<(), RefusalCode> {
        validate_pin(pin).map_err(|r| r.code)
    }

    #[test]
    fn pins_follow_v1() {
        let cases = [
            ("12345", Err(RefusalCode::PinSequential)),
            ("54321", Err(RefusalCode::PinSequential)),
            ("3456789", Err(RefusalCode::PinSequential)),
            ("11111", Err(RefusalCode::PinRepeatedDigit)),
            ("1234", Err(RefusalCode::PinTooShort)),
            ("12a45", Err(RefusalCode::PinNotDigits)),
            ("", Err(RefusalCode::PinNotDigits)),
            ("13579", Ok(())),
            ("12344", Ok(())),
            ("90817", Ok(())),
        ];
        for (pin, expected) in cases {
            assert_eq!(check_pin(pin), expected, "PIN {pin:?}");
        }
    }

    #[test]
    fn panel_passwords_follow_v2_with_the_strictest_role() {
        let agent = BTreeSet::from([Role::Agent]);
        let supervisor = BTreeSet::from([Role::Agent, Role::Supervisor]);
        let admin = BTreeSet::from([Role::SystemAdministrator]);
        let cases = [
            ("Abcdef1!", &agent, Ok(())),
            ("Abcde1!", &agent, Err(RefusalCode::PasswordTooShortForRole)),
            (
                "Abcdef1!",
                &supervisor,
                Err(RefusalCode::PasswordTooShortForRole),
            ),
            ("Abcdefgh1!", &supervisor, Ok(())),
            (
                "Abcdefgh1!",
                &admin,
                Err(RefusalCode::PasswordTooShortForRole),
            ),
            ("Abcdefghij1!", &admin, Ok(())),
            (
                "abcdefgh1!",
                &agent,
                Err(RefusalCode::PasswordMissingUppercase),
            ),
            ("Abcdefgh!!", &agent, Err(RefusalCode::PasswordMissingDigit)),
            (
                "Abcdefgh12",
                &agent,
                Err(RefusalCode::PasswordMissingSpecial),
            ),
        ];
        for (password, roles, expected) in cases {
            assert_eq!(
                validate_panel_password(password, roles).map_err(|r| r.code),
                expected,
                "{password:?} for {roles:?}"
            );
        }
    }

    #[test]
    fn sip_passwords_follow_v3() {
        assert!(validate_sip_password("Abcdefgh1!").is_ok());
        for weak in [
            "Abcdefg1!",
            "abcdefgh1!",
            "ABCDEFGH1!",
            "Abcdefghi!",
            "Abcdefghi1",
        ] {
            assert_eq!(
                validate_sip_password(weak).map_err(|r| r.code),
                Err(RefusalCode::SipPasswordTooWeak),
                "{weak}"
            );
        }
    }

    #[test]
    fn a_hashed_password_verifies_and_equal_passwords_share_a_fingerprint_within_a_tenant() {
        let tenant_salt = [7u8; 16];
        let a = hash_panel_password("Abcdefgh1!", &[1; 16], &tenant_salt);
        let b = hash_panel_password("Abcdefgh1!", &[2; 16], &tenant_salt);
        assert!(verify_panel_password("Abcdefgh1!", &a));
        assert!(!verify_panel_password("Abcdefgh1?", &a));
        assert_ne!(a.phc, b.phc, "per-user salts differ");
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "the tenant salt makes equal passwords comparable"
        );
        assert!(!a.phc.contains("Abcdefgh1!"));
        assert_eq!(format!("{a:?}"), "PasswordHash(..)");
    }

    #[test]
    fn ha1_matches_rfc_2617_example() {
        // RFC 2617 section 3.5: Mufasa / testrealm@host.com / Circle Of Life.
        let secret = sip_ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(secret.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(secret.ha1_sha256.len(), 64);
    }
}
