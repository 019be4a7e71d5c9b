//! Users (U2-U5): kinds, roles, rights, scope and every user field, plus the
//! agent-facing settings (skills A7, ring plan D3, binding D4, presentation
//! D5, black/white lists D6).

use super::ids::{BranchId, DeviceId, GroupId, QueueId, SkillId, UserId};
use super::refusal::{ensure, Checked, RefusalCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The two kinds of user (U2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    /// Owns devices and makes/receives calls; never logs in anywhere.
    BackOffice,
    /// Logs in to the panel or mobile app; full statistics.
    ContactCentre,
}

/// Roles (U3). A person may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the tenant.
    SystemAdministrator,
    /// A team's users, agents and queues.
    TeamAdministrator,
    /// Monitors assigned agents and queues.
    Supervisor,
    /// Handles interactions.
    Agent,
    /// A phone number on a hardware or software phone, no panel.
    PbxUser,
    /// A PBX user with contacts and contact history; needs `pbx_user`.
    UcUser,
}

impl Role {
    /// Whether the role uses the panel (and so needs a contact-centre user).
    pub fn uses_panel(self) -> bool {
        matches!(
            self,
            Role::SystemAdministrator | Role::TeamAdministrator | Role::Supervisor | Role::Agent
        )
    }
}

/// Panel modules a user may open (U4 "accesses").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Access {
    Realtime,
    Statistics,
    Recordings,
    Users,
    Queues,
    Licences,
    Administration,
    Callbacks,
    CallHistory,
}

/// Which objects a user may see or change (U4 "data rights").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DataRights {
    /// Users it may see; empty means all in its scope.
    #[serde(default)]
    pub users: BTreeSet<UserId>,
    /// Queues it may see; empty means all.
    #[serde(default)]
    pub queues: BTreeSet<QueueId>,
    /// Skills it may assign; empty means all.
    #[serde(default)]
    pub skills: BTreeSet<SkillId>,
    /// Highest caller priority it may set (Q3).
    #[serde(default)]
    pub max_priority: Option<u32>,
}

/// The part of a tenant a supervisor or team administrator manages (U1):
/// users of these branches or groups. Empty: the whole tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Branches in scope.
    #[serde(default)]
    pub branches: BTreeSet<BranchId>,
    /// Groups in scope.
    #[serde(default)]
    pub groups: BTreeSet<GroupId>,
}

impl Scope {
    /// Whether the scope is the whole tenant.
    pub fn is_whole_tenant(&self) -> bool {
        self.branches.is_empty() && self.groups.is_empty()
    }
}

/// Panel languages (U5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Language {
    #[default]
    En,
    Cs,
    Pl,
    De,
}

/// A skill with a proficiency level 1..=10 (A7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillLevel {
    /// The skill.
    pub skill: SkillId,
    /// Proficiency, 1 (lowest) to 10.
    pub level: u8,
}

/// How a user's devices ring (D3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum RingPlan {
    /// Every device at once (also when no device is listed: all of them).
    #[default]
    Parallel,
    /// Devices join in steps, each after its delay from the start.
    Staged {
        /// The steps, in order.
        steps: Vec<RingStep>,
    },
}

/// One step of a staged ring plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RingStep {
    /// Seconds after the start of ringing.
    pub delay_s: u32,
    /// Devices that start ringing at this step.
    pub devices: BTreeSet<DeviceId>,
}

/// How an agent is bound to a device (D4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Binding {
    /// Set by the administrator; the agent cannot change it.
    Fixed {
        /// The device.
        device: DeviceId,
    },
    /// At login, a phone registered from the agent's browser's address.
    SelfAdapting,
    /// The agent picks any free line.
    #[default]
    Dynamic,
}

/// Everything an administrator sets on a user (U5 and the agent settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Back-office or contact-centre (U2).
    pub kind: UserKind,
    /// Roles (U3).
    pub roles: BTreeSet<Role>,
    /// Full name.
    pub full_name: String,
    /// Login, unique in the tenant (V4).
    pub login: String,
    /// Branch the user belongs to (U1).
    #[serde(default)]
    pub branch: Option<BranchId>,
    /// Mobile number.
    #[serde(default)]
    pub mobile: Option<String>,
    /// E-mail for password recovery and notifications.
    #[serde(default)]
    pub email: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Panel language.
    #[serde(default)]
    pub language: Language,
    /// Avatar image URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// May log in.
    #[serde(default = "yes")]
    pub active: bool,
    /// Appears in statistics.
    #[serde(default = "yes")]
    pub visible: bool,
    /// May use the web panel.
    #[serde(default)]
    pub panel_access: bool,
    /// May use the mobile app.
    #[serde(default)]
    pub mobile_app_access: bool,
    /// Logged out at the end of the working day (A2).
    #[serde(default)]
    pub requires_daily_login: bool,
    /// The agent's own after-call work limit (A4), 0..=3600 s; it wins over
    /// the queue's.
    #[serde(default)]
    pub wrap_up_s: Option<u32>,
    /// Keeps its device binding after logout (D4).
    #[serde(default)]
    pub keep_station_on_logout: bool,
    /// Prompt played to the caller just before the agent is connected.
    #[serde(default)]
    pub agent_greeting: Option<String>,
    /// E-mail notifications on.
    #[serde(default)]
    pub email_notifications: bool,
    /// Modules (U4 accesses).
    #[serde(default)]
    pub accesses: BTreeSet<Access>,
    /// Data rights (U4).
    #[serde(default)]
    pub data_rights: DataRights,
    /// Managed part of the tenant, for supervisors and team administrators (U1).
    #[serde(default)]
    pub scope: Scope,
    /// Skills with levels (A7).
    #[serde(default)]
    pub skills: Vec<SkillLevel>,
    /// Groups (A7).
    #[serde(default)]
    pub groups: BTreeSet<GroupId>,
    /// Caller id for outbound calls (D5).
    #[serde(default)]
    pub presentation_number: Option<String>,
    /// Numbers the user may not call (D6).
    #[serde(default)]
    pub blacklist: BTreeSet<String>,
    /// Numbers the user may call (D6); a number on both lists is allowed.
    #[serde(default)]
    pub whitelist: BTreeSet<String>,
    /// How the user's devices ring (D3).
    #[serde(default)]
    pub ring_plan: RingPlan,
    /// Agent-to-device binding (D4).
    #[serde(default)]
    pub binding: Binding,
    /// Queues an agent is checked in to when it logs in (A1: a phone login
    /// by feature code has no panel to check in from).
    #[serde(default)]
    pub login_queues: BTreeSet<QueueId>,
}

fn yes() -> bool {
    true
}

/// A phone number as dialled: `+` and 3..=15 digits, or 3..=20 digits.
pub fn valid_phone_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

impl UserSpec {
    /// Rules that need nothing but the spec itself.
    pub fn validate(&self) -> Checked<()> {
        ensure(
            !self.full_name.trim().is_empty(),
            RefusalCode::NameRequired,
            || "a user needs a full name".into(),
        )?;
        use super::text::{check_opt, Text, DESCRIPTION, LINE, SHORT, URL};
        LINE.check("full_name", &self.full_name)?;
        DESCRIPTION.check("description", &self.description)?;
        check_opt(URL, "avatar_url", self.avatar_url.as_deref())?;
        check_opt(SHORT, "agent_greeting", self.agent_greeting.as_deref())?;
        let email = Text {
            max_chars: 254,
            multiline: false,
        };
        check_opt(email, "email", self.email.as_deref())?;
        ensure(
            self.wrap_up_s.is_none_or(|s| s <= 3600),
            RefusalCode::WrapUpInvalid,
            || "A4: an agent's wrap_up_s is 0 to 3600 seconds".into(),
        )?;
        let login_ok = (2..=64).contains(&self.login.len())
            && self
                .login
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        ensure(login_ok, RefusalCode::LoginInvalid, || {
            "a login has 2 to 64 characters: letters, digits, '.', '_', '-', '@'".into()
        })?;
        ensure(!self.roles.is_empty(), RefusalCode::RoleRequired, || {
            "a user holds at least one role".into()
        })?;
        ensure(
            !self.roles.contains(&Role::UcUser) || self.roles.contains(&Role::PbxUser),
            RefusalCode::UcRequiresPbxRole,
            || "the UC user role requires the PBX user role".into(),
        )?;
        if self.kind == UserKind::BackOffice {
            let logs_in = self.panel_access
                || self.mobile_app_access
                || self.roles.iter().any(|r| r.uses_panel());
            ensure(!logs_in, RefusalCode::BackOfficeCannotLogIn, || {
                "a back-office user never logs in: only the pbx_user and uc_user roles, no panel or mobile access".into()
            })?;
        }
        let manages =
            self.roles.contains(&Role::Supervisor) || self.roles.contains(&Role::TeamAdministrator);
        ensure(
            manages || self.scope.is_whole_tenant(),
            RefusalCode::ScopeNotAllowed,
            || "only supervisors and team administrators have a scope".into(),
        )?;
        if let Some(email) = &self.email {
            let ok = email.len() <= 254
                && email
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
            ensure(ok, RefusalCode::EmailInvalid, || {
                format!("{email:?} is not an e-mail address")
            })?;
        }
        for number in self.mobile.iter().chain(&self.presentation_number) {
            ensure(
                valid_phone_number(number),
                RefusalCode::PhoneNumberInvalid,
                || format!("{number:?} is not a phone number (+ and 3 to 20 digits)"),
            )?;
        }
        for number in self.blacklist.iter().chain(&self.whitelist) {
            ensure(
                valid_phone_number(number),
                RefusalCode::PhoneNumberInvalid,
                || format!("{number:?} on a call list is not a phone number"),
            )?;
        }
        let mut seen = BTreeSet::new();
        for s in &self.skills {
            ensure(
                (1..=10).contains(&s.level) && seen.insert(s.skill),
                RefusalCode::SkillLevelInvalid,
                || {
                    format!(
                        "skill {} must appear once with a level from 1 to 10",
                        s.skill
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Whether this user may log in to the panel at all.
    pub fn can_log_in(&self) -> bool {
        self.active
            && self.kind == UserKind::ContactCentre
            && (self.panel_access || self.mobile_app_access)
    }
}

/// A stored user: the spec plus the secrets, which never leave the ledger
/// except through [`crate::model::credentials`] checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Settings.
    pub spec: UserSpec,
    /// Panel password, if set.
    pub password: Option<super::credentials::PasswordHash>,
    /// Agent PIN fingerprint, if set.
    pub pin_fingerprint: Option<String>,
}

/// What the API shows of a user: no password, no PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// Id.
    pub id: UserId,
    /// Settings.
    #[serde(flatten)]
    pub spec: UserSpec,
    /// Whether a panel password is set.
    pub has_password: bool,
    /// Whether an agent PIN is set.
    pub has_pin: bool,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            spec: user.spec.clone(),
            has_password: user.password.is_some(),
            has_pin: user.pin_fingerprint.is_some(),
        }
    }
}
