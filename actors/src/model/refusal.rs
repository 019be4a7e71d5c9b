//! Domain refusals (V6): a stable machine-readable code, the rule it
//! enforces and a human sentence. A refusal is a value, never a panic.

use serde::{Deserialize, Serialize};

/// How the API should present a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The request breaks a validation rule (HTTP 422).
    Invalid,
    /// The request conflicts with the current state (HTTP 409).
    Conflict,
    /// The object does not exist in the caller's tenant (HTTP 404).
    NotFound,
}

macro_rules! refusal_codes {
    ($($code:ident => ($rule:literal, $kind:ident)),* $(,)?) => {
        /// Every refusal code the domain can give.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[allow(missing_docs)]
        pub enum RefusalCode { $($code),* }

        impl RefusalCode {
            /// Every code, for tests that must cover them all.
            pub const ALL: &'static [RefusalCode] = &[$(RefusalCode::$code),*];

            /// The requirement id the code enforces (DOMAIN.md).
            pub fn rule(self) -> &'static str {
                match self { $(RefusalCode::$code => $rule),* }
            }

            /// How the API presents it.
            pub fn kind(self) -> RefusalKind {
                match self { $(RefusalCode::$code => RefusalKind::$kind),* }
            }

            /// The variant's name (`PinSequential`).
            fn camel_name(self) -> &'static str {
                match self { $(RefusalCode::$code => stringify!($code)),* }
            }
        }
    };
}

refusal_codes! {
    NotFound => ("U1", NotFound),
    AlreadyBootstrapped => ("U1", Conflict),
    NameRequired => ("V6", Invalid),
    NameNotUnique => ("V6", Conflict),
    TextControlCharacter => ("V6", Invalid),
    TextBidiControl => ("V6", Invalid),
    TextTooLong => ("V6", Invalid),
    SipDomainInvalid => ("U1", Invalid),
    SipDomainNotUnique => ("U1", Conflict),
    CountryInvalid => ("U1", Invalid),
    TimezoneInvalid => ("U1", Invalid),
    BranchInUse => ("U1", Conflict),
    ObjectInUse => ("V6", Conflict),
    LoginInvalid => ("V4", Invalid),
    LoginNotUnique => ("V4", Conflict),
    EmailInvalid => ("U5", Invalid),
    PhoneNumberInvalid => ("D2", Invalid),
    RoleRequired => ("U3", Invalid),
    UcRequiresPbxRole => ("U3", Invalid),
    BackOfficeCannotLogIn => ("U2", Invalid),
    ScopeNotAllowed => ("U1", Invalid),
    SkillLevelInvalid => ("A7", Invalid),
    PinTooShort => ("V1", Invalid),
    PinNotDigits => ("V1", Invalid),
    PinSequential => ("V1", Invalid),
    PinRepeatedDigit => ("V1", Invalid),
    PinNotUnique => ("V1", Conflict),
    PasswordTooShortForRole => ("V2", Invalid),
    PasswordMissingUppercase => ("V2", Invalid),
    PasswordMissingDigit => ("V2", Invalid),
    PasswordMissingSpecial => ("V2", Invalid),
    PasswordNotUnique => ("V2", Conflict),
    PasswordNotAllowed => ("U2", Invalid),
    SipPasswordTooWeak => ("V3", Invalid),
    SipUsernameInvalid => ("D7", Invalid),
    SipUsernameNotUnique => ("D7", Conflict),
    SipCredentialsRequired => ("D7", Invalid),
    ShortNumberInvalid => ("V4", Invalid),
    ShortNumberNotUnique => ("V4", Conflict),
    ExternalNumberRequired => ("D1", Invalid),
    DevicePackageLimit => ("L1", Conflict),
    RingPlanInvalid => ("D3", Invalid),
    BindingInvalid => ("D4", Invalid),
    DeviceAlreadyBound => ("D4", Conflict),
    DeviceNotBound => ("D4", Conflict),
    NumberNotUnique => ("V5", Conflict),
    DidNotOwned => ("V5", Conflict),
    DidAlreadyAssigned => ("V5", Conflict),
    DidNotAssigned => ("V5", Conflict),
    CountInvalid => ("L3", Invalid),
    LicenceNotNeeded => ("L2", Invalid),
    LicencePoolExhausted => ("L6", Conflict),
    LicenceAlreadyAssigned => ("L4", Conflict),
    LicenceNotAssigned => ("L4", Conflict),
    WithdrawalExceedsFreeSeats => ("L3", Conflict),
    LicenceRanksInvalid => ("L5", Invalid),
    QueueConfigInvalid => ("Q1", Invalid),
    QueueFull => ("Q5", Conflict),
    NotLoggedIn => ("A1", Conflict),
    AlreadyLoggedIn => ("A1", Conflict),
    AgentCannotLogIn => ("A1", Conflict),
    NotCheckedIn => ("A1", Conflict),
    AlreadyCheckedIn => ("A1", Conflict),
    NotPaused => ("A5", Conflict),
    AlreadyPaused => ("A5", Conflict),
    ActivityUnknown => ("A4", Conflict),
    WrapUpInvalid => ("A4", Invalid),
    DispositionUnknown => ("C4", Invalid),
    EntryNotUnique => ("Q3", Conflict),
    EntryNotWaiting => ("Q3", Conflict),
    EntryAlreadyAssigned => ("Q3", Conflict),
    PriorityInvalid => ("Q3", Invalid),
    AgentBusy => ("A6", Conflict),
    AgentUnavailable => ("A4", Conflict),
    ActivityClosed => ("C4", Conflict),
    PlacementStale => ("Q3", Conflict),
    TokenNameInvalid => ("U4", Invalid),
    ResetTokenInvalid => ("U5", Invalid),
    ResetTokenExpired => ("U5", Invalid),
    ResetTokenUsed => ("U5", Conflict),
    ResetTooSoon => ("U5", Conflict),
    FeatureCodeInvalid => ("A3", Invalid),
    FeatureCodeAmbiguous => ("A3", Invalid),
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&code_text(*self))
    }
}

/// The code in SCREAMING_SNAKE_CASE, exactly as serde writes it.
pub fn code_text(code: RefusalCode) -> String {
    let camel = code.camel_name();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A domain refusal (V6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refusal {
    /// Stable code.
    pub code: RefusalCode,
    /// A sentence naming the rule, for people.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code`; the message is prefixed with the rule id.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: format!("{}: {}", code.rule(), message.into()),
        }
    }

    /// `NOT_FOUND` for `what` (objects of other tenants are not found either).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            RefusalCode::NotFound,
            format!("no such {what} in this tenant"),
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Shorthand for a result whose error is a refusal.
pub type Checked<T> = Result<T, Refusal>;

/// Refuses with `code` and `message` unless `condition` holds.
pub fn ensure(condition: bool, code: RefusalCode, message: impl FnOnce() -> String) -> Checked<()> {
    if condition {
        Ok(())
    } else {
        Err(Refusal::new(code, message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serialises_as_its_screaming_text_and_names_a_rule() {
        for code in RefusalCode::ALL {
            let json = serde_json::to_string(code).expect("serialise");
            assert_eq!(json, format!("\"{}\"", code_text(*code)));
            assert!(!code.rule().is_empty());
        }
        assert_eq!(code_text(RefusalCode::PinSequential), "PIN_SEQUENTIAL");
        assert_eq!(
            code_text(RefusalCode::UcRequiresPbxRole),
            "UC_REQUIRES_PBX_ROLE"
        );
    }
}
