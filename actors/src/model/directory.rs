//! Tenants and branches (U1), devices (D1, D2, D7), numbers (D2, V5),
//! skills and groups (A7), pause types (A5).

use super::credentials::SipSecret;
use super::ids::{BranchId, DeviceId, NumberId, QueueId, TenantId, UserId};
use super::refusal::{ensure, Checked, RefusalCode};
use super::user::valid_phone_number;
use serde::{Deserialize, Serialize};

fn name_ok(name: &str) -> Checked<()> {
    ensure(!name.trim().is_empty(), RefusalCode::NameRequired, || {
        "a name has 1 to 200 characters".into()
    })?;
    super::text::LINE.check("name", name)
}

/// What an operator sets when creating a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Display name.
    pub name: String,
    /// The tenant's SIP domain, also its digest realm; fixed at creation.
    pub sip_domain: String,
}

impl TenantSpec {
    /// Rules of the spec alone.
    pub fn validate(&self) -> Checked<()> {
        name_ok(&self.name)?;
        let d = &self.sip_domain;
        let ok = (1..=253).contains(&d.len())
            && d.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        ensure(ok, RefusalCode::SipDomainInvalid, || {
            format!("{d:?} is not a host name usable as a SIP domain")
        })
    }
}

/// A tenant (U1), as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// SIP domain and digest realm.
    pub sip_domain: String,
    /// Salt for password and PIN fingerprints, hex (kept, never shown).
    pub fingerprint_salt_hex: String,
    /// Phone feature codes (A3); the defaults until set.
    #[serde(default)]
    pub feature_codes: super::feature_codes::FeatureCodes,
    /// How long the tenant's audit records are kept, in days.
    #[serde(default = "default_audit_retention_days")]
    pub audit_retention_days: u32,
}

/// Audit records are kept this long unless the tenant says otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;
/// The longest a tenant may keep its audit records (ten years).
pub const MAX_AUDIT_RETENTION_DAYS: u32 = 3_650;

fn default_audit_retention_days() -> u32 {
    DEFAULT_AUDIT_RETENTION_DAYS
}

/// What the API shows of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantView {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// SIP domain and digest realm.
    pub sip_domain: String,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            sip_domain: t.sip_domain.clone(),
        }
    }
}

/// A branch (site, country) of a tenant (U1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    /// Display name.
    pub name: String,
    /// ISO 3166-1 alpha-2 country code, upper case (CZ, PL).
    pub country: String,
    /// IANA time zone (Europe/Prague).
    pub timezone: String,
}

/// Whether `tz` has the shape of an IANA zone name (Area/Location or UTC).
pub fn valid_timezone(tz: &str) -> bool {
    tz == "UTC"
        || tz.split_once('/').is_some_and(|(area, rest)| {
            !area.is_empty()
                && !rest.is_empty()
                && tz.len() <= 64
                && tz
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
        })
}

impl BranchSpec {
    /// Rules of the spec alone.
    pub fn validate(&self) -> Checked<()> {
        name_ok(&self.name)?;
        ensure(
            self.country.len() == 2 && self.country.bytes().all(|b| b.is_ascii_uppercase()),
            RefusalCode::CountryInvalid,
            || format!("{:?} is not an ISO 3166 alpha-2 country code", self.country),
        )?;
        ensure(
            valid_timezone(&self.timezone),
            RefusalCode::TimezoneInvalid,
            || format!("{:?} is not an IANA time zone name", self.timezone),
        )
    }
}

/// A stored branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Branch {
    /// Id.
    pub id: BranchId,
    /// Settings.
    #[serde(flatten)]
    pub spec: BranchSpec,
}

/// Device kinds (D1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Hardware SIP phone.
    SipPhone,
    /// Softphone.
    Softphone,
    /// WebRTC (browser or mobile app).
    Webrtc,
    /// Mobile phone, reached through a trunk.
    Mobile,
    /// Ordinary phone that can only receive calls.
    External,
}

impl DeviceKind {
    /// Registers over SIP with digest credentials.
    pub fn registers(self) -> bool {
        matches!(self, Self::SipPhone | Self::Softphone | Self::Webrtc)
    }

    /// Counts against the tenant's device packages (L1).
    pub fn counts_against_packages(self) -> bool {
        !matches!(self, Self::External)
    }
}

/// What an administrator sets on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Kind.
    pub kind: DeviceKind,
    /// Display name.
    pub name: String,
    /// Owner (cost of external calls is booked to it, D2).
    #[serde(default)]
    pub owner: Option<UserId>,
    /// SIP username, for the kinds that register (unique in the tenant).
    #[serde(default)]
    pub sip_username: Option<String>,
    /// Internal extension: at least 3 digits, unique in the tenant (V4).
    #[serde(default)]
    pub short_number: Option<String>,
    /// Where calls go, for mobile and external devices.
    #[serde(default)]
    pub external_number: Option<String>,
}

/// V4: a short number has at least 3 digits (and at most 8).
pub fn valid_short_number(number: &str) -> bool {
    (3..=8).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

impl DeviceSpec {
    /// Rules of the spec alone (credentials are checked by the ledger).
    pub fn validate(&self) -> Checked<()> {
        name_ok(&self.name)?;
        if let Some(number) = &self.short_number {
            ensure(
                valid_short_number(number),
                RefusalCode::ShortNumberInvalid,
                || format!("short number {number:?} must have 3 to 8 digits"),
            )?;
        }
        if self.kind.registers() {
            let ok = self.sip_username.as_deref().is_some_and(|u| {
                (1..=64).contains(&u.len())
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
            ensure(ok, RefusalCode::SipUsernameInvalid, || {
                "a registering device needs a SIP username of 1 to 64 letters, digits, '.', '_', '-'".into()
            })?;
        } else {
            ensure(
                self.sip_username.is_none(),
                RefusalCode::SipUsernameInvalid,
                || "mobile and external devices do not register and have no SIP username".into(),
            )?;
            let ok = self
                .external_number
                .as_deref()
                .is_some_and(valid_phone_number);
            ensure(ok, RefusalCode::ExternalNumberRequired, || {
                "mobile and external devices need an external number (+ and 3 to 20 digits)".into()
            })?;
        }
        Ok(())
    }
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Settings.
    pub spec: DeviceSpec,
    /// Digest secrets, for registering kinds.
    pub sip_secret: Option<SipSecret>,
    /// The agent bound to this line (D4); it stays bound after logout when
    /// the agent keeps its station, and nobody else may take it meanwhile.
    #[serde(default)]
    pub bound_to: Option<UserId>,
}

/// What the API shows of a device: no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceView {
    /// Id.
    pub id: DeviceId,
    /// Settings.
    #[serde(flatten)]
    pub spec: DeviceSpec,
    /// Whether SIP credentials are set.
    pub has_sip_password: bool,
    /// The agent bound to this line (D4).
    pub bound_to: Option<UserId>,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        Self {
            id: d.id,
            spec: d.spec.clone(),
            has_sip_password: d.sip_secret.is_some(),
            bound_to: d.bound_to,
        }
    }
}

/// Where a DID leads (D2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NumberTarget {
    /// A user's devices.
    User {
        /// The user.
        user: UserId,
    },
    /// A queue.
    Queue {
        /// The queue.
        queue: QueueId,
    },
    /// An IVR by name.
    Ivr {
        /// The IVR's name.
        name: String,
    },
}

/// A public number (DID) the tenant owns (D2, V5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Number {
    /// Id.
    pub id: NumberId,
    /// The number, E.164 (+420...).
    pub e164: String,
    /// Where calls to it go, if assigned.
    pub target: Option<NumberTarget>,
}

/// V5/D2: an E.164 number: `+` and 6..=15 digits.
pub fn valid_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A named thing with only a name: skills and groups (A7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NamedSpec {
    /// Name, unique among its kind in the tenant.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

impl NamedSpec {
    /// Rules of the spec alone.
    pub fn validate(&self) -> Checked<()> {
        name_ok(&self.name)?;
        super::text::DESCRIPTION.check("description", &self.description)
    }
}

/// A stored skill or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Named {
    /// Id.
    pub id: u64,
    /// Settings.
    #[serde(flatten)]
    pub spec: NamedSpec,
}

/// A pause type (A5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PauseTypeSpec {
    /// Name, unique in the tenant.
    pub name: String,
    /// Paid or unpaid.
    pub paid: bool,
    /// Longest allowed pause, if limited.
    #[serde(default)]
    pub max_duration_s: Option<u32>,
}

impl PauseTypeSpec {
    /// Rules of the spec alone.
    pub fn validate(&self) -> Checked<()> {
        name_ok(&self.name)?;
        ensure(
            self.max_duration_s != Some(0),
            RefusalCode::NameRequired,
            || "a time-limited pause lasts at least one second".into(),
        )
    }
}

/// A stored pause type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PauseType {
    /// Id.
    pub id: u64,
    /// Settings.
    #[serde(flatten)]
    pub spec: PauseTypeSpec,
}
