//! Phone feature codes (A3): what an agent dials from its registered phone
//! to log in (with its PIN, in the dialled string or by DTMF after a
//! prompt), get ready, pause with a reason code, unpause and log out.
//!
//! The codes are a table per tenant ([`FeatureCodes`], in the ledger);
//! [`FeatureCodes::parse`] turns a dialled string into a
//! [`FeatureRequest`]; [`machine`] runs the call.

pub mod machine;

pub use machine::{
    FeatureInput, FeatureMachine, FeatureOutput, FeatureSetup, FeatureSnapshot, FeatureStep,
};

pub use crate::model::feature_codes::FeatureCodes;

/// What a dialled feature code asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureRequest {
    /// Log in, with the PIN if it was dialled.
    Login {
        /// The PIN, when dialled with the code.
        pin: Option<String>,
    },
    /// Get ready (unpause), with or without campaigns.
    Ready {
        /// Campaigns included.
        campaign: bool,
    },
    /// Pause, with a reason code (1-based position of the pause type).
    Pause {
        /// The reason code, when dialled.
        reason: Option<u32>,
    },
    /// Unpause.
    Unpause,
    /// Log out.
    Logout,
}

impl FeatureCodes {
    /// The request `dialled` makes, if it is a feature code.
    pub fn parse(&self, dialled: &str) -> Option<FeatureRequest> {
        let d = dialled.trim();
        if d == self.ready_in_campaign {
            return Some(FeatureRequest::Ready { campaign: true });
        }
        if d == self.ready_without_campaign {
            return Some(FeatureRequest::Ready { campaign: false });
        }
        if d == self.unpause {
            return Some(FeatureRequest::Unpause);
        }
        if d == self.logout {
            return Some(FeatureRequest::Logout);
        }
        if let Some(rest) = d.strip_prefix(self.login.as_str()) {
            return match rest.strip_prefix('*') {
                None if rest.is_empty() => Some(FeatureRequest::Login { pin: None }),
                Some(pin) if !pin.is_empty() && pin.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(FeatureRequest::Login {
                        pin: Some(pin.to_string()),
                    })
                }
                _ => None,
            };
        }
        if let Some(rest) = d.strip_prefix(self.pause.as_str()) {
            return match rest.strip_prefix('*') {
                None if rest.is_empty() => Some(FeatureRequest::Pause { reason: None }),
                Some(code) => code.parse().ok().map(|reason| FeatureRequest::Pause {
                    reason: Some(reason),
                }),
                None => None,
            };
        }
        None
    }
}

#[cfg(test)]
mod machine_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dialled: &str, expected: Option<FeatureRequest>) {
        assert_eq!(
            FeatureCodes::default().parse(dialled),
            expected,
            "{dialled}"
        );
    }

    #[test]
    fn the_default_codes() {
        use FeatureRequest as F;
        check("*100", Some(F::Login { pin: None }));
        check(
            "*100*40718",
            Some(F::Login {
                pin: Some("40718".into()),
            }),
        );
        check("*100*", None);
        check("*100*12a", None);
        check("*1001", None);
        check("#300#", Some(F::Ready { campaign: true }));
        check("#302#", Some(F::Ready { campaign: false }));
        check("*200", Some(F::Pause { reason: None }));
        check("*200*2", Some(F::Pause { reason: Some(2) }));
        check("*200*x", None);
        check("*201", Some(F::Unpause));
        check("404#", Some(F::Logout));
        check("404", None);
        check("+420225000100", None);
    }
}
