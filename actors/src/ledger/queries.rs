//! Read access to the ledger for the API. Every tenant-scoped query takes
//! the tenant: an object of another tenant is simply not found.

use super::entries::QueueEntry;
use super::sessions::AgentSession;
use super::tenant::TenantState;
use super::{ApiToken, Ledger, Operator};
use crate::model::directory::{Branch, Device, Named, Number, PauseType, Tenant};
use crate::model::directory::{DeviceView, TenantView};
use crate::model::licence::LicenceReport;
use crate::model::queue::Queue;
use crate::model::user::{User, UserView};
use crate::model::{DeviceId, OperatorId, QueueId, TenantId, UserId};

impl Ledger {
    /// The tenant whose SIP domain is `domain` (ASCII case-insensitive).
    pub fn tenant_by_sip_domain(&self, domain: &str) -> Option<&TenantState> {
        self.tenants
            .values()
            .find(|t| t.tenant.sip_domain.eq_ignore_ascii_case(domain))
    }

    /// Where actors are placed (members and epoch).
    pub fn placement(&self) -> &super::Placement {
        &self.placement
    }

    /// The cluster's token signing key, once bootstrapped.
    pub fn signing_key_hex(&self) -> Option<&str> {
        self.signing_key_hex.as_deref()
    }

    /// Whether an operator or a user has the (case-folded) login.
    pub(crate) fn login_exists(&self, folded: &str) -> bool {
        self.operators
            .values()
            .any(|o| super::fold_login(&o.login) == folded)
            || self.users_by_login(folded).next().is_some()
    }

    /// The lockout of `login` in force at `now_ms`, if any.
    pub fn lockout(&self, login: &str, now_ms: u64) -> Option<&super::Lockout> {
        self.lockouts
            .get(&super::fold_login(login))
            .filter(|l| l.until_ms > now_ms)
    }

    /// Every lockout in force at `now_ms`.
    pub fn lockouts(&self, now_ms: u64) -> impl Iterator<Item = &super::Lockout> {
        self.lockouts.values().filter(move |l| l.until_ms > now_ms)
    }

    /// An operator by login.
    pub fn operator_by_login(&self, login: &str) -> Option<&Operator> {
        self.operators.values().find(|o| o.login == login)
    }

    /// An operator by id.
    pub fn operator(&self, id: OperatorId) -> Option<&Operator> {
        self.operators.get(&id)
    }

    /// Every tenant.
    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.values().map(|t| &t.tenant)
    }

    /// One tenant's state.
    pub fn tenant(&self, id: TenantId) -> Option<&TenantState> {
        self.tenants.get(&id)
    }

    /// Users with this login, in any tenant (logins are unique per tenant).
    pub fn users_by_login<'a>(
        &'a self,
        login: &'a str,
    ) -> impl Iterator<Item = (&'a Tenant, &'a User)> + 'a {
        self.tenants.values().filter_map(move |t| {
            t.users
                .values()
                .find(|u| u.spec.login.eq_ignore_ascii_case(login))
                .map(|u| (&t.tenant, u))
        })
    }

    /// The user with `login` in `tenant` (logins are unique per tenant, V4).
    pub fn user_by_login(&self, tenant: TenantId, login: &str) -> Option<&User> {
        self.tenants
            .get(&tenant)?
            .users
            .values()
            .find(|u| u.spec.login.eq_ignore_ascii_case(login))
    }

    /// What the API shows of a user of `tenant`: never its secrets.
    pub fn user_view(&self, tenant: TenantId, user: UserId) -> Option<UserView> {
        self.tenants.get(&tenant)?.user_view(user)
    }

    /// The licence report of `tenant` at `now_ms`.
    pub fn licence_report(&self, tenant: TenantId, now_ms: u64) -> Option<LicenceReport> {
        Some(self.tenants.get(&tenant)?.licence_report(now_ms))
    }

    /// Callers waiting in `queue` of `tenant`, in service order (Q3).
    pub fn waiting(&self, tenant: TenantId, queue: QueueId) -> Vec<&QueueEntry> {
        self.tenants
            .get(&tenant)
            .map(|t| t.waiting(queue))
            .unwrap_or_default()
    }

    /// An API token by the hash of its secret.
    pub fn api_token_by_hash(&self, hash: &str) -> Option<&ApiToken> {
        self.api_tokens.values().find(|t| t.token_hash == hash)
    }

    /// API tokens owned by `owner`.
    pub fn api_tokens_of(&self, owner: super::TokenOwner) -> impl Iterator<Item = &ApiToken> {
        self.api_tokens.values().filter(move |t| t.owner == owner)
    }
}

impl TenantState {
    /// The tenant record.
    pub fn info(&self) -> &Tenant {
        &self.tenant
    }

    /// What the API shows of the tenant.
    pub fn view(&self) -> TenantView {
        TenantView::from(&self.tenant)
    }

    /// A user by id.
    pub fn find_user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id)
    }

    /// What the API shows of a user: never its password hash or PIN.
    pub fn user_view(&self, id: UserId) -> Option<UserView> {
        self.users.get(&id).map(UserView::from)
    }

    /// Every user as the API shows it.
    pub fn user_views(&self) -> impl Iterator<Item = UserView> + '_ {
        self.users.values().map(UserView::from)
    }

    /// Every device as the API shows it: never its digest secrets.
    pub fn device_views(&self) -> impl Iterator<Item = DeviceView> + '_ {
        self.devices.values().map(DeviceView::from)
    }

    /// Every user.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Every branch.
    pub fn branches(&self) -> impl Iterator<Item = &Branch> {
        self.branches.values()
    }

    /// Every device.
    /// The device `id`.
    pub fn device(&self, id: DeviceId) -> Option<&Device> {
        self.devices.get(&id)
    }

    /// The devices `user` owns, in id order. O(log n + k).
    pub fn devices_owned_by(&self, user: UserId) -> impl Iterator<Item = &Device> {
        self.devices.owned_by(user)
    }

    /// The lines bound to agent `user` (D4), in id order. O(log n + k).
    pub fn devices_bound_to(&self, user: UserId) -> impl Iterator<Item = &Device> {
        self.devices.bound_to(user)
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// The device registering as `username` (SIP usernames are unique in a
    /// tenant).
    pub fn device_by_sip_username(&self, username: &str) -> Option<&Device> {
        self.devices.by_sip_username(username)
    }

    /// Devices the tenant's device packages allow (L1).
    pub fn devices_allowed(&self) -> u32 {
        self.licences
            .device_packages()
            .saturating_mul(crate::model::licence::DEVICES_PER_PACKAGE)
    }

    /// Every number.
    pub fn numbers(&self) -> impl Iterator<Item = &Number> {
        self.numbers.values()
    }

    /// Every queue.
    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.queues.values()
    }

    /// Every skill.
    pub fn skills(&self) -> impl Iterator<Item = &Named> {
        self.skills.values()
    }

    /// Every group.
    pub fn groups(&self) -> impl Iterator<Item = &Named> {
        self.groups.values()
    }

    /// Every pause type.
    pub fn pause_types(&self) -> impl Iterator<Item = &PauseType> {
        self.pause_types.values()
    }

    /// Every agent session.
    pub fn sessions(&self) -> impl Iterator<Item = &AgentSession> {
        self.sessions.values()
    }

    /// One agent's session.
    pub fn session(&self, user: UserId) -> Option<&AgentSession> {
        self.sessions.get(&user)
    }

    /// Callers waiting in `queue`, in service order.
    pub fn waiting(&self, queue: QueueId) -> Vec<&QueueEntry> {
        self.entries.waiting(queue)
    }

    /// The voice state of every agent that ever had one.
    pub fn voices(&self) -> impl Iterator<Item = (&UserId, &super::calls::AgentVoice)> {
        self.voice.iter()
    }

    /// Closed activities and the outbox of their records.
    pub fn activities(&self) -> &super::calls::Activities {
        &self.activities
    }

    /// An entry by id.
    pub fn entry(&self, entry: &str) -> Option<&QueueEntry> {
        self.entries.get(entry)
    }

    /// The licence report at `now_ms`.
    pub fn licence_report(&self, now_ms: u64) -> LicenceReport {
        self.licences.report(now_ms, self.counted_devices())
    }
}
