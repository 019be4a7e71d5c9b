//! A tenant's phone feature codes (A3): what its agents dial from a
//! registered phone to log in, get ready, pause, unpause and log out.
//! Parsing a dialled string is `crate::feature`'s.
//!
//! Rules ([`FeatureCodes::validate`]): a code has 2 to 16 characters of
//! `0-9`, `*` and `#`, at least one of them `*` or `#` (so that no code
//! shadows a short number or a DID, which are digits); the six codes
//! differ, and none is a prefix of another (log in and pause take a suffix,
//! `*PIN` and `*reason`, so a prefix would make a dialled string mean two
//! things).

use super::refusal::{ensure, Checked, RefusalCode};
use serde::{Deserialize, Serialize};

/// The codes of a tenant; the defaults are the (`*100`, `#300#`,
/// `#302#`, `*200`, `*201`, `404#`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FeatureCodes {
    /// Log in; the PIN follows after `*` in the dialled string, or comes by
    /// DTMF after the prompt.
    pub login: String,
    /// Ready, campaigns included.
    pub ready_in_campaign: String,
    /// Ready for inbound calls only.
    pub ready_without_campaign: String,
    /// Pause; a reason code (the pause type's position, 1-based) may follow
    /// after `*`.
    pub pause: String,
    /// Unpause.
    pub unpause: String,
    /// Log out.
    pub logout: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            login: "*100".into(),
            ready_in_campaign: "#300#".into(),
            ready_without_campaign: "#302#".into(),
            pause: "*200".into(),
            unpause: "*201".into(),
            logout: "404#".into(),
        }
    }
}

impl FeatureCodes {
    /// Each code with the name of its field.
    pub fn named(&self) -> [(&'static str, &str); 6] {
        [
            ("login", &self.login),
            ("ready_in_campaign", &self.ready_in_campaign),
            ("ready_without_campaign", &self.ready_without_campaign),
            ("pause", &self.pause),
            ("unpause", &self.unpause),
            ("logout", &self.logout),
        ]
    }

    /// The rules of the module documentation.
    pub fn validate(&self) -> Checked<()> {
        let named = self.named();
        for (field, code) in named {
            ensure(
                (2..=16).contains(&code.len())
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
                    && code.bytes().any(|b| b == b'*' || b == b'#'),
                RefusalCode::FeatureCodeInvalid,
                || {
                    format!(
                        "{field} {code:?}: a feature code has 2 to 16 characters of 0-9, * and #, \
                         with at least one * or # so that it never shadows a number"
                    )
                },
            )?;
        }
        for (i, (a_field, a)) in named.iter().enumerate() {
            for (b_field, b) in &named[i + 1..] {
                ensure(
                    !a.starts_with(*b) && !b.starts_with(*a),
                    RefusalCode::FeatureCodeAmbiguous,
                    || {
                        if a == b {
                            format!("{a_field} and {b_field} are both {a:?}")
                        } else {
                            format!(
                                "{a_field} {a:?} and {b_field} {b:?}: one is a prefix of the \
                                 other, so a dialled string could mean either"
                            )
                        }
                    },
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(field: &str, code: &str) -> FeatureCodes {
        let mut json = serde_json::to_value(FeatureCodes::default()).expect("json");
        json[field] = code.into();
        serde_json::from_value(json).expect("codes")
    }

    #[test]
    fn the_defaults_are_valid_and_bad_codes_name_their_rule() {
        FeatureCodes::default().validate().expect("defaults");
        with("login", "*55").validate().expect("*55");
        for (field, code) in [
            ("login", "100"),
            ("login", "*"),
            ("pause", "*2a0"),
            ("logout", "*12345678901234567"),
            ("unpause", ""),
        ] {
            let refusal = with(field, code).validate().expect_err(code);
            assert_eq!(refusal.code, RefusalCode::FeatureCodeInvalid, "{code}");
            assert!(refusal.message.contains(field), "{}", refusal.message);
        }
        for (field, code) in [("logout", "*100"), ("unpause", "*2"), ("pause", "*1000")] {
            let refusal = with(field, code).validate().expect_err(code);
            assert_eq!(refusal.code, RefusalCode::FeatureCodeAmbiguous, "{code}");
        }
    }
}
