//! One tenant's part of the ledger and the dispatch of tenant-scoped commands.

use super::command::{Command, Outcome};
use super::device_table::DeviceTable;
use super::entries::QueueEntries;
use super::licences::Licences;
use super::sessions::AgentSession;
use crate::model::agent_status::SessionChange;
use crate::model::directory::{Branch, Named, Number, PauseType, Tenant};
use crate::model::queue::Queue;
use crate::model::refusal::Checked;
use crate::model::user::User;
use crate::model::{
    BranchId, DeviceId, GroupId, NumberId, PauseTypeId, QueueId, Refusal, SkillId, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one tenant owns. Nothing here refers to another tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantState {
    pub(crate) tenant: Tenant,
    pub(crate) branches: BTreeMap<BranchId, Branch>,
    pub(crate) users: BTreeMap<UserId, User>,
    pub(crate) devices: DeviceTable,
    pub(crate) numbers: BTreeMap<NumberId, Number>,
    pub(crate) queues: BTreeMap<QueueId, Queue>,
    pub(crate) skills: BTreeMap<SkillId, Named>,
    pub(crate) groups: BTreeMap<GroupId, Named>,
    pub(crate) pause_types: BTreeMap<PauseTypeId, PauseType>,
    pub(crate) licences: Licences,
    pub(crate) sessions: BTreeMap<UserId, AgentSession>,
    pub(crate) entries: QueueEntries,
    #[serde(default)]
    pub(crate) voice: super::calls::VoiceTable,
    #[serde(default)]
    pub(crate) activities: super::calls::Activities,
    /// Each agent's last session change (A4: who caused it), kept after
    /// logout; only existing users.
    #[serde(default)]
    pub(crate) last_changes: BTreeMap<UserId, SessionChange>,
    /// The tenant's audit log.
    #[serde(default)]
    pub(crate) audit: super::audit::AuditLog,
}

impl TenantState {
    pub(crate) fn new(tenant: Tenant) -> Self {
        Self {
            tenant,
            branches: BTreeMap::new(),
            users: BTreeMap::new(),
            devices: DeviceTable::default(),
            numbers: BTreeMap::new(),
            queues: BTreeMap::new(),
            skills: BTreeMap::new(),
            groups: BTreeMap::new(),
            pause_types: BTreeMap::new(),
            licences: Licences::default(),
            sessions: BTreeMap::new(),
            entries: QueueEntries::default(),
            voice: Default::default(),
            activities: Default::default(),
            audit: Default::default(),
            last_changes: BTreeMap::new(),
        }
    }

    pub(crate) fn user(&self, id: UserId) -> Checked<&User> {
        self.users
            .get(&id)
            .ok_or_else(|| Refusal::not_found("user"))
    }

    /// Applies a tenant-scoped command. `next_id` is the id a created object
    /// gets; the flag says whether it was used.
    pub(crate) fn apply(
        &mut self,
        command: Command,
        next_id: u64,
        now_ms: u64,
    ) -> Checked<(Outcome, bool)> {
        use Command as C;
        let created = |outcome: Checked<Outcome>| outcome.map(|o| (o, true));
        let done = |outcome: Checked<Outcome>| outcome.map(|o| (o, false));
        match command {
            C::CreateBranch { spec, .. } => created(self.create_branch(BranchId(next_id), spec)),
            C::UpdateBranch { branch, spec, .. } => done(self.update_branch(branch, spec)),
            C::DeleteBranch { branch, .. } => done(self.delete_branch(branch)),
            C::CreateUser {
                spec,
                password,
                pin_fingerprint,
                ..
            } => created(self.create_user(UserId(next_id), spec, password, pin_fingerprint)),
            C::UpdateUser { user, spec, .. } => done(self.update_user(user, spec)),
            C::DeleteUser { user, .. } => done(self.delete_user(user)),
            C::SetUserSkills { user, skills, .. } => done(self.set_user_skills(user, skills)),
            C::SetUserPassword { user, password, .. } => done(self.set_password(user, password)),
            C::SetUserPin {
                user,
                pin_fingerprint,
                ..
            } => done(self.set_pin(user, pin_fingerprint)),
            C::CreateDevice {
                spec, sip_secret, ..
            } => created(self.create_device(DeviceId(next_id), spec, sip_secret)),
            C::UpdateDevice {
                device,
                spec,
                sip_secret,
                ..
            } => done(self.update_device(device, spec, sip_secret)),
            C::DeleteDevice { device, .. } => done(self.delete_device(device)),
            C::DeleteNumber { number, .. } => done(self.delete_number(number)),
            C::AssignNumber { e164, target, .. } => done(self.assign_number(&e164, target)),
            C::ReleaseNumber { e164, .. } => done(self.release_number(&e164)),
            C::CreateSkill { spec, .. } => created(self.create_skill(SkillId(next_id), spec)),
            C::UpdateSkill { skill, spec, .. } => done(self.update_skill(skill, spec)),
            C::DeleteSkill { skill, .. } => done(self.delete_skill(skill)),
            C::CreateGroup { spec, .. } => created(self.create_group(GroupId(next_id), spec)),
            C::UpdateGroup { group, spec, .. } => done(self.update_group(group, spec)),
            C::DeleteGroup { group, .. } => done(self.delete_group(group)),
            C::CreatePauseType { spec, .. } => {
                created(self.create_pause_type(PauseTypeId(next_id), spec))
            }
            C::UpdatePauseType {
                pause_type, spec, ..
            } => done(self.update_pause_type(pause_type, spec)),
            C::DeletePauseType { pause_type, .. } => done(self.delete_pause_type(pause_type)),
            C::CreateQueue { spec, .. } => created(self.create_queue(QueueId(next_id), spec)),
            C::UpdateQueue { queue, spec, .. } => done(self.update_queue(queue, spec)),
            C::DeleteQueue { queue, .. } => done(self.delete_queue(queue)),
            C::BuyLicences { kind, count, .. } => done(self.buy_licences(kind, count, now_ms)),
            C::WithdrawLicences { kind, count, .. } => {
                done(self.withdraw_licences(kind, count, now_ms))
            }
            C::AssignLicence { user, kind, .. } => done(self.assign_licence(user, kind)),
            C::ReleaseLicence { user, kind, .. } => done(self.release_licence(user, kind)),
            C::HandOverLicences { from, to, .. } => done(self.hand_over(from, to)),
            C::SetLicenceRanks { ranks, .. } => done(self.set_ranks(ranks)),
            C::BuyDevicePackages { count, .. } => done(self.buy_packages(count)),
            C::WithdrawDevicePackages { count, .. } => done(self.withdraw_packages(count)),
            C::Login { user, terminal, .. } => done(self.login(user, terminal, now_ms)),
            C::Logout { user, terminal, .. } => done(self.logout(user, &terminal, now_ms)),
            C::BindDevice { user, device, .. } => done(self.bind_device(user, device)),
            C::UnbindDevice { user, .. } => done(self.unbind_device(user)),
            C::CheckIn { user, queue, .. } => done(self.check_in(user, queue)),
            C::CheckOut { user, queue, .. } => done(self.check_out(user, queue)),
            C::Pause {
                user, pause_type, ..
            } => done(self.pause(user, pause_type, now_ms)),
            C::Unpause { user, .. } => done(self.unpause(user)),
            C::SetReachable {
                user, reachable, ..
            } => done(self.set_reachable(user, reachable, now_ms)),
            C::BeginActivity { user, activity, .. } => done(self.begin_activity(user, activity)),
            C::EndActivity { user, activity, .. } => {
                done(self.end_activity(user, &activity, now_ms))
            }
            C::Enqueue {
                queue,
                entry,
                priority,
                call,
                ..
            } => done(self.enqueue(queue, entry, priority, call, now_ms)),
            C::OfferCall { entry, user, .. } => done(self.offer_call(&entry, user, now_ms)),
            C::ReleaseOffer {
                entry, user, end, ..
            } => done(self.release_offer(&entry, user, end, now_ms)),
            C::ConnectCall { entry, user, .. } => done(self.connect_call(&entry, user, now_ms)),
            C::EndCall {
                entry,
                user,
                record,
                ..
            } => done(self.end_call(&entry, user, *record, now_ms)),
            C::FinishWrapUp { entry, user, .. } => {
                done(self.finish_wrap_up(&entry, user, None, now_ms))
            }
            C::SetDisposition { user, code, .. } => done(self.set_disposition(user, &code)),
            C::EndWrapUp {
                user, disposition, ..
            } => done(self.end_wrap_up(user, disposition, now_ms)),
            C::CloseActivity { record, .. } => done(self.close_activity(*record, now_ms)),
            C::ChangePriority {
                entry, priority, ..
            } => done(self.change_priority(&entry, priority)),
            C::MoveEntry { entry, queue, .. } => done(self.move_entry(&entry, queue, now_ms)),
            C::WithdrawEntry {
                entry, destination, ..
            } => done(self.withdraw_entry(&entry, destination, now_ms)),
            C::AssignEntry { entry, user, .. } => done(self.assign_entry(&entry, user)),
            // A user's abandon of a call's entry hangs the caller up through
            // its call actor (the entry ends with the call's record).
            C::AbandonEntry { entry, .. } => done(self.withdraw_entry(
                &entry,
                crate::model::queue::Destination::Hangup { prompt: None },
                now_ms,
            )),
            other => unreachable!("handled by the ledger, not a tenant: {other:?}"),
        }
    }

    /// The largest id any object of this tenant carries.
    pub(crate) fn max_id(&self) -> u64 {
        let ids = [
            self.tenant.id.0,
            self.branches.keys().last().map_or(0, |i| i.0),
            self.users.keys().last().map_or(0, |i| i.0),
            self.devices.keys().last().map_or(0, |i| i.0),
            self.numbers.keys().last().map_or(0, |i| i.0),
            self.queues.keys().last().map_or(0, |i| i.0),
            self.skills.keys().last().map_or(0, |i| i.0),
            self.groups.keys().last().map_or(0, |i| i.0),
            self.pause_types.keys().last().map_or(0, |i| i.0),
        ];
        ids.into_iter().max().unwrap_or(0)
    }

    /// Asserts this tenant's invariants.
    pub(crate) fn check_invariants(&self) {
        self.licences.check_invariants(self.counted_devices());
        self.entries.check_invariants();
        self.devices.check_invariants();
        self.check_bindings();
        self.check_voice();
        for (user, session) in &self.sessions {
            assert!(
                self.users.contains_key(user),
                "a session belongs to an existing user"
            );
            assert!(
                !session.terminals.is_empty() || !session.activities.is_empty(),
                "a session without terminals lives only until its activity ends"
            );
        }
        for user in self.last_changes.keys() {
            assert!(
                self.users.contains_key(user),
                "a last session change belongs to an existing user"
            );
        }
        for (user, needs) in self.licences.assignments() {
            assert!(
                self.users.contains_key(user),
                "a seat belongs to an existing user"
            );
            assert!(
                !needs.is_empty(),
                "a user without seats has no assignment entry"
            );
        }
    }
}
