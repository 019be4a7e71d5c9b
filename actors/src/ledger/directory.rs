//! Directory commands of one tenant: branches, users, devices, numbers,
//! skills, groups, pause types and queues, with their cross-object rules.

use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::credentials::{PasswordHash, SipSecret};
use crate::model::directory::{
    Branch, BranchSpec, Device, DeviceSpec, Named, NamedSpec, Number, NumberTarget, PauseType,
    PauseTypeSpec,
};
use crate::model::licence::DEVICES_PER_PACKAGE;
use crate::model::queue::{Destination, Queue, QueueSpec};
use crate::model::refusal::{ensure, Checked};
use crate::model::user::{Binding, RingPlan, Role, User, UserSpec};
use crate::model::{
    BranchId, DeviceId, GroupId, NumberId, PauseTypeId, QueueId, Refusal, RefusalCode, SkillId,
    UserId,
};
use std::collections::BTreeMap;

fn unique_name<'a, K: Ord + Copy>(
    names: impl Iterator<Item = (K, &'a str)>,
    name: &str,
    except: Option<K>,
    what: &str,
) -> Checked<()> {
    for (id, existing) in names {
        ensure(
            Some(id) == except || !existing.eq_ignore_ascii_case(name),
            RefusalCode::NameNotUnique,
            || format!("a {what} named {name:?} already exists"),
        )?;
    }
    Ok(())
}

fn get_mut<'a, K: Ord, V>(map: &'a mut BTreeMap<K, V>, id: &K, what: &str) -> Checked<&'a mut V> {
    map.get_mut(id).ok_or_else(|| Refusal::not_found(what))
}

/// Creates a named object (skill or group) with a name unique among its kind.
fn create_named<K: Ord + Copy>(
    map: &mut BTreeMap<K, Named>,
    id: K,
    raw_id: u64,
    spec: NamedSpec,
    what: &str,
) -> Checked<Outcome> {
    spec.validate()?;
    unique_name(
        map.iter().map(|(k, v)| (*k, v.spec.name.as_str())),
        &spec.name,
        None,
        what,
    )?;
    map.insert(id, Named { id: raw_id, spec });
    Ok(Outcome::Created { id: raw_id })
}

/// Replaces a named object's settings, keeping names unique among its kind.
fn update_named<K: Ord + Copy>(
    map: &mut BTreeMap<K, Named>,
    id: K,
    spec: NamedSpec,
    what: &str,
) -> Checked<Outcome> {
    spec.validate()?;
    unique_name(
        map.iter().map(|(k, v)| (*k, v.spec.name.as_str())),
        &spec.name,
        Some(id),
        what,
    )?;
    get_mut(map, &id, what)?.spec = spec;
    Ok(Outcome::Done)
}

impl TenantState {
    pub(crate) fn create_branch(&mut self, id: BranchId, spec: BranchSpec) -> Checked<Outcome> {
        spec.validate()?;
        unique_name(
            self.branches.values().map(|b| (b.id, b.spec.name.as_str())),
            &spec.name,
            None,
            "branch",
        )?;
        self.branches.insert(id, Branch { id, spec });
        Ok(Outcome::Created { id: id.0 })
    }

    pub(crate) fn update_branch(&mut self, id: BranchId, spec: BranchSpec) -> Checked<Outcome> {
        spec.validate()?;
        unique_name(
            self.branches.values().map(|b| (b.id, b.spec.name.as_str())),
            &spec.name,
            Some(id),
            "branch",
        )?;
        get_mut(&mut self.branches, &id, "branch")?.spec = spec;
        Ok(Outcome::Done)
    }

    pub(crate) fn delete_branch(&mut self, id: BranchId) -> Checked<Outcome> {
        ensure(
            self.branches.contains_key(&id),
            RefusalCode::NotFound,
            || "no such branch in this tenant".into(),
        )?;
        let used = self
            .users
            .values()
            .any(|u| u.spec.branch == Some(id) || u.spec.scope.branches.contains(&id));
        ensure(!used, RefusalCode::BranchInUse, || {
            "users belong to or are scoped to this branch".into()
        })?;
        self.branches.remove(&id);
        Ok(Outcome::Done)
    }

    /// Rules of a user spec against the rest of the tenant.
    fn check_user(&self, id: Option<UserId>, spec: &UserSpec) -> Checked<()> {
        spec.validate()?;
        ensure(
            !self
                .users
                .values()
                .any(|u| Some(u.id) != id && u.spec.login.eq_ignore_ascii_case(&spec.login)),
            RefusalCode::LoginNotUnique,
            || format!("login {:?} is taken in this tenant", spec.login),
        )?;
        let branch_ok = spec.branch.is_none_or(|b| self.branches.contains_key(&b))
            && spec
                .scope
                .branches
                .iter()
                .all(|b| self.branches.contains_key(b));
        ensure(branch_ok, RefusalCode::NotFound, || {
            "a referenced branch does not exist in this tenant".into()
        })?;
        let groups_ok = spec
            .groups
            .iter()
            .chain(&spec.scope.groups)
            .all(|g| self.groups.contains_key(g));
        ensure(groups_ok, RefusalCode::NotFound, || {
            "a referenced group does not exist in this tenant".into()
        })?;
        ensure(
            spec.skills
                .iter()
                .all(|s| self.skills.contains_key(&s.skill)),
            RefusalCode::NotFound,
            || "a referenced skill does not exist in this tenant".into(),
        )?;
        let own_device = |d: &DeviceId| {
            self.devices
                .get(d)
                .is_some_and(|dev| id.is_some() && dev.spec.owner == id)
        };
        if let RingPlan::Staged { steps } = &spec.ring_plan {
            let ok = !steps.is_empty()
                && steps.windows(2).all(|w| w[0].delay_s <= w[1].delay_s)
                && steps
                    .iter()
                    .all(|s| !s.devices.is_empty() && s.devices.iter().all(own_device));
            ensure(ok, RefusalCode::RingPlanInvalid, || {
                "a staged ring plan has steps in delay order, each ringing devices the user owns"
                    .into()
            })?;
        }
        if let Binding::Fixed { device } = spec.binding {
            ensure(
                self.devices.contains_key(&device),
                RefusalCode::BindingInvalid,
                || "a fixed binding names a device of this tenant".into(),
            )?;
        }
        Ok(())
    }

    fn check_password_unique(&self, id: Option<UserId>, password: &PasswordHash) -> Checked<()> {
        let taken = self.users.values().any(|u| {
            Some(u.id) != id
                && u.password
                    .as_ref()
                    .is_some_and(|p| p.fingerprint == password.fingerprint)
        });
        ensure(!taken, RefusalCode::PasswordNotUnique, || {
            "the panel password must differ from every other user's password".into()
        })
    }

    fn check_pin_unique(&self, id: Option<UserId>, pin: &str) -> Checked<()> {
        let taken = self
            .users
            .values()
            .any(|u| Some(u.id) != id && u.pin_fingerprint.as_deref() == Some(pin));
        ensure(!taken, RefusalCode::PinNotUnique, || {
            "the agent PIN is used by another user of this tenant".into()
        })
    }

    pub(crate) fn create_user(
        &mut self,
        id: UserId,
        spec: UserSpec,
        password: Option<PasswordHash>,
        pin_fingerprint: Option<String>,
    ) -> Checked<Outcome> {
        self.check_user(None, &spec)?;
        if let Some(password) = &password {
            ensure(
                spec.kind != crate::model::user::UserKind::BackOffice,
                RefusalCode::PasswordNotAllowed,
                || "a back-office user never logs in, so it has no panel password".into(),
            )?;
            self.check_password_unique(None, password)?;
        }
        if let Some(pin) = &pin_fingerprint {
            self.check_pin_unique(None, pin)?;
        }
        self.users.insert(
            id,
            User {
                id,
                spec,
                password,
                pin_fingerprint,
            },
        );
        Ok(Outcome::Created { id: id.0 })
    }

    pub(crate) fn update_user(&mut self, id: UserId, spec: UserSpec) -> Checked<Outcome> {
        self.user(id)?;
        self.check_user(Some(id), &spec)?;
        let user = get_mut(&mut self.users, &id, "user")?;
        if spec.kind == crate::model::user::UserKind::BackOffice {
            user.password = None;
        }
        user.spec = spec;
        // Seats the user no longer needs go back to the pool (L2).
        let user = self.users[&id].clone();
        self.licences.release_unneeded(&user);
        Ok(Outcome::Done)
    }

    pub(crate) fn delete_user(&mut self, id: UserId) -> Checked<Outcome> {
        self.user(id)?;
        self.licences.release_all(id);
        self.sessions.remove(&id);
        for number in self.numbers.values_mut() {
            if number.target == Some(NumberTarget::User { user: id }) {
                number.target = None;
            }
        }
        for device in self.devices.values_mut() {
            if device.spec.owner == Some(id) {
                device.spec.owner = None;
            }
        }
        for queue in self.queues.values_mut() {
            queue.spec.static_members.remove(&id);
        }
        self.users.remove(&id);
        Ok(Outcome::Done)
    }

    pub(crate) fn set_password(&mut self, id: UserId, password: PasswordHash) -> Checked<Outcome> {
        let user = self.user(id)?;
        ensure(
            user.spec.kind != crate::model::user::UserKind::BackOffice,
            RefusalCode::PasswordNotAllowed,
            || "a back-office user never logs in, so it has no panel password".into(),
        )?;
        self.check_password_unique(Some(id), &password)?;
        get_mut(&mut self.users, &id, "user")?.password = Some(password);
        Ok(Outcome::Done)
    }

    pub(crate) fn set_pin(&mut self, id: UserId, pin: String) -> Checked<Outcome> {
        self.user(id)?;
        self.check_pin_unique(Some(id), &pin)?;
        get_mut(&mut self.users, &id, "user")?.pin_fingerprint = Some(pin);
        Ok(Outcome::Done)
    }

    /// Devices that count against the packages (L1).
    pub(crate) fn counted_devices(&self) -> u32 {
        let count = self
            .devices
            .values()
            .filter(|d| d.spec.kind.counts_against_packages())
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn check_device(
        &self,
        id: Option<DeviceId>,
        spec: &DeviceSpec,
        secret: Option<&SipSecret>,
    ) -> Checked<()> {
        spec.validate()?;
        if let Some(owner) = spec.owner {
            self.user(owner)?;
        }
        if let Some(username) = &spec.sip_username {
            ensure(
                !self
                    .devices
                    .values()
                    .any(|d| Some(d.id) != id && d.spec.sip_username.as_deref() == Some(username)),
                RefusalCode::SipUsernameNotUnique,
                || format!("SIP username {username:?} is taken in this tenant"),
            )?;
        }
        if let Some(number) = &spec.short_number {
            ensure(
                !self
                    .devices
                    .values()
                    .any(|d| Some(d.id) != id && d.spec.short_number.as_deref() == Some(number)),
                RefusalCode::ShortNumberNotUnique,
                || format!("short number {number} is taken in this tenant"),
            )?;
        }
        let has_secret = secret.is_some()
            || id.is_some_and(|id| {
                self.devices
                    .get(&id)
                    .is_some_and(|d| d.sip_secret.is_some())
            });
        ensure(
            !spec.kind.registers() || has_secret,
            RefusalCode::SipCredentialsRequired,
            || "a registering device needs a SIP password".into(),
        )?;
        let counted_before = id
            .and_then(|id| self.devices.get(&id))
            .is_some_and(|d| d.spec.kind.counts_against_packages());
        if spec.kind.counts_against_packages() && !counted_before {
            let allowed = self
                .licences
                .device_packages()
                .saturating_mul(DEVICES_PER_PACKAGE);
            ensure(
                self.counted_devices() < allowed,
                RefusalCode::DevicePackageLimit,
                || {
                    format!("the device packages allow {allowed} devices and all are in use; buy another package of {DEVICES_PER_PACKAGE}")
                },
            )?;
        }
        Ok(())
    }

    pub(crate) fn create_device(
        &mut self,
        id: DeviceId,
        spec: DeviceSpec,
        secret: Option<SipSecret>,
    ) -> Checked<Outcome> {
        self.check_device(None, &spec, secret.as_ref())?;
        let sip_secret = if spec.kind.registers() { secret } else { None };
        self.devices.insert(
            id,
            Device {
                id,
                spec,
                sip_secret,
            },
        );
        Ok(Outcome::Created { id: id.0 })
    }

    pub(crate) fn update_device(
        &mut self,
        id: DeviceId,
        spec: DeviceSpec,
        secret: Option<SipSecret>,
    ) -> Checked<Outcome> {
        ensure(
            self.devices.contains_key(&id),
            RefusalCode::NotFound,
            || "no such device in this tenant".into(),
        )?;
        self.check_device(Some(id), &spec, secret.as_ref())?;
        let device = get_mut(&mut self.devices, &id, "device")?;
        if !spec.kind.registers() {
            device.sip_secret = None;
        } else if secret.is_some() {
            device.sip_secret = secret;
        }
        device.spec = spec;
        Ok(Outcome::Done)
    }

    pub(crate) fn delete_device(&mut self, id: DeviceId) -> Checked<Outcome> {
        ensure(
            self.devices.contains_key(&id),
            RefusalCode::NotFound,
            || "no such device in this tenant".into(),
        )?;
        let used = self.users.values().any(|u| {
            u.spec.binding == Binding::Fixed { device: id }
                || matches!(&u.spec.ring_plan, RingPlan::Staged { steps } if steps.iter().any(|s| s.devices.contains(&id)))
        });
        ensure(!used, RefusalCode::ObjectInUse, || {
            "a user's binding or ring plan uses this device".into()
        })?;
        self.devices.remove(&id);
        Ok(Outcome::Done)
    }

    pub(crate) fn add_number(&mut self, id: u64, e164: String) -> Checked<Outcome> {
        let id = NumberId(id);
        self.numbers.insert(
            id,
            Number {
                id,
                e164,
                target: None,
            },
        );
        Ok(Outcome::Created { id: id.0 })
    }

    pub(crate) fn delete_number(&mut self, id: NumberId) -> Checked<Outcome> {
        let number = self
            .numbers
            .get(&id)
            .ok_or_else(|| Refusal::not_found("number"))?;
        ensure(number.target.is_none(), RefusalCode::ObjectInUse, || {
            "release the number before deleting it".into()
        })?;
        self.numbers.remove(&id);
        Ok(Outcome::Done)
    }

    fn number_by_e164(&mut self, e164: &str) -> Checked<&mut Number> {
        self.numbers
            .values_mut()
            .find(|n| n.e164 == e164)
            .ok_or_else(|| {
                Refusal::new(
                    RefusalCode::DidNotOwned,
                    format!("the tenant does not own {e164}"),
                )
            })
    }

    pub(crate) fn assign_number(&mut self, e164: &str, target: NumberTarget) -> Checked<Outcome> {
        match &target {
            NumberTarget::User { user } => {
                self.user(*user)?;
            }
            NumberTarget::Queue { queue } => {
                ensure(
                    self.queues.contains_key(queue),
                    RefusalCode::NotFound,
                    || "no such queue in this tenant".into(),
                )?;
            }
            NumberTarget::Ivr { name } => {
                ensure(!name.trim().is_empty(), RefusalCode::NameRequired, || {
                    "an IVR target needs a name".into()
                })?;
            }
        }
        let number = self.number_by_e164(e164)?;
        ensure(
            number.target.is_none(),
            RefusalCode::DidAlreadyAssigned,
            || format!("{e164} is already assigned; release it first"),
        )?;
        number.target = Some(target);
        Ok(Outcome::Done)
    }

    pub(crate) fn release_number(&mut self, e164: &str) -> Checked<Outcome> {
        let number = self.number_by_e164(e164)?;
        ensure(number.target.is_some(), RefusalCode::DidNotAssigned, || {
            format!("{e164} is not assigned")
        })?;
        number.target = None;
        Ok(Outcome::Done)
    }

    pub(crate) fn create_skill(&mut self, id: SkillId, spec: NamedSpec) -> Checked<Outcome> {
        create_named(&mut self.skills, id, id.0, spec, "skill")
    }

    pub(crate) fn update_skill(&mut self, id: SkillId, spec: NamedSpec) -> Checked<Outcome> {
        update_named(&mut self.skills, id, spec, "skill")
    }

    pub(crate) fn delete_skill(&mut self, id: SkillId) -> Checked<Outcome> {
        ensure(self.skills.contains_key(&id), RefusalCode::NotFound, || {
            "no such skill in this tenant".into()
        })?;
        let used = self
            .users
            .values()
            .any(|u| u.spec.skills.iter().any(|s| s.skill == id))
            || self
                .queues
                .values()
                .any(|q| q.spec.referenced_skills().any(|s| s == id));
        ensure(!used, RefusalCode::ObjectInUse, || {
            "users or queues use this skill".into()
        })?;
        self.skills.remove(&id);
        Ok(Outcome::Done)
    }

    pub(crate) fn create_group(&mut self, id: GroupId, spec: NamedSpec) -> Checked<Outcome> {
        create_named(&mut self.groups, id, id.0, spec, "group")
    }

    pub(crate) fn update_group(&mut self, id: GroupId, spec: NamedSpec) -> Checked<Outcome> {
        update_named(&mut self.groups, id, spec, "group")
    }

    pub(crate) fn delete_group(&mut self, id: GroupId) -> Checked<Outcome> {
        ensure(self.groups.contains_key(&id), RefusalCode::NotFound, || {
            "no such group in this tenant".into()
        })?;
        let used = self
            .users
            .values()
            .any(|u| u.spec.groups.contains(&id) || u.spec.scope.groups.contains(&id));
        ensure(!used, RefusalCode::ObjectInUse, || {
            "users belong to or are scoped to this group".into()
        })?;
        self.groups.remove(&id);
        Ok(Outcome::Done)
    }

    pub(crate) fn create_pause_type(
        &mut self,
        id: PauseTypeId,
        spec: PauseTypeSpec,
    ) -> Checked<Outcome> {
        spec.validate()?;
        unique_name(
            self.pause_types
                .iter()
                .map(|(k, v)| (*k, v.spec.name.as_str())),
            &spec.name,
            None,
            "pause type",
        )?;
        self.pause_types.insert(id, PauseType { id: id.0, spec });
        Ok(Outcome::Created { id: id.0 })
    }

    pub(crate) fn update_pause_type(
        &mut self,
        id: PauseTypeId,
        spec: PauseTypeSpec,
    ) -> Checked<Outcome> {
        spec.validate()?;
        unique_name(
            self.pause_types
                .iter()
                .map(|(k, v)| (*k, v.spec.name.as_str())),
            &spec.name,
            Some(id),
            "pause type",
        )?;
        get_mut(&mut self.pause_types, &id, "pause type")?.spec = spec;
        Ok(Outcome::Done)
    }

    pub(crate) fn delete_pause_type(&mut self, id: PauseTypeId) -> Checked<Outcome> {
        ensure(
            self.pause_types.contains_key(&id),
            RefusalCode::NotFound,
            || "no such pause type in this tenant".into(),
        )?;
        let used = self
            .queues
            .values()
            .any(|q| q.spec.auto_pause_type == Some(id))
            || self.sessions.values().any(|s| s.uses_pause_type(id));
        ensure(!used, RefusalCode::ObjectInUse, || {
            "a queue or a current pause uses this pause type".into()
        })?;
        self.pause_types.remove(&id);
        Ok(Outcome::Done)
    }

    fn check_queue(&self, id: Option<QueueId>, spec: &QueueSpec) -> Checked<()> {
        spec.validate()?;
        unique_name(
            self.queues.values().map(|q| (q.id, q.spec.name.as_str())),
            &spec.name,
            id,
            "queue",
        )?;
        ensure(
            spec.referenced_skills()
                .all(|s| self.skills.contains_key(&s)),
            RefusalCode::NotFound,
            || "a required skill does not exist in this tenant".into(),
        )?;
        ensure(
            spec.auto_pause_type
                .is_none_or(|p| self.pause_types.contains_key(&p)),
            RefusalCode::NotFound,
            || "the auto-pause type does not exist in this tenant".into(),
        )?;
        let queue_ok = |d: Option<&Destination>| match d {
            Some(Destination::Queue { queue }) => {
                Some(*queue) != id && self.queues.contains_key(queue)
            }
            _ => true,
        };
        ensure(
            queue_ok(spec.overflow.as_ref().map(|o| &o.destination))
                && queue_ok(spec.closed_destination.as_ref()),
            RefusalCode::QueueConfigInvalid,
            || "overflow and closed destinations name another queue of this tenant".into(),
        )?;
        let agents_ok = spec.static_members.iter().all(|u| {
            self.users
                .get(u)
                .is_some_and(|u| u.spec.roles.contains(&Role::Agent))
        });
        ensure(agents_ok, RefusalCode::QueueConfigInvalid, || {
            "static members are agents of this tenant".into()
        })?;
        if let crate::model::queue::Strategy::WeightedRandom { weights } = &spec.strategy {
            ensure(
                weights.iter().all(|w| self.users.contains_key(&w.user)),
                RefusalCode::NotFound,
                || "a weighted agent does not exist in this tenant".into(),
            )?;
        }
        Ok(())
    }

    pub(crate) fn create_queue(&mut self, id: QueueId, spec: QueueSpec) -> Checked<Outcome> {
        self.check_queue(None, &spec)?;
        self.queues.insert(id, Queue { id, spec });
        self.sync_static_members(id);
        Ok(Outcome::Created { id: id.0 })
    }

    pub(crate) fn update_queue(&mut self, id: QueueId, spec: QueueSpec) -> Checked<Outcome> {
        ensure(self.queues.contains_key(&id), RefusalCode::NotFound, || {
            "no such queue in this tenant".into()
        })?;
        self.check_queue(Some(id), &spec)?;
        get_mut(&mut self.queues, &id, "queue")?.spec = spec;
        self.sync_static_members(id);
        Ok(Outcome::Done)
    }

    pub(crate) fn delete_queue(&mut self, id: QueueId) -> Checked<Outcome> {
        ensure(self.queues.contains_key(&id), RefusalCode::NotFound, || {
            "no such queue in this tenant".into()
        })?;
        ensure(
            self.entries.waiting_count(id) == 0,
            RefusalCode::ObjectInUse,
            || "callers are waiting in this queue".into(),
        )?;
        let referenced = self.numbers.values().any(|n| n.target == Some(NumberTarget::Queue { queue: id }))
            || self.queues.values().any(|q| {
                let points = |d: Option<&Destination>| matches!(d, Some(Destination::Queue { queue }) if *queue == id);
                points(q.spec.overflow.as_ref().map(|o| &o.destination)) || points(q.spec.closed_destination.as_ref())
            });
        ensure(!referenced, RefusalCode::ObjectInUse, || {
            "a number or another queue leads to this queue".into()
        })?;
        self.queues.remove(&id);
        for session in self.sessions.values_mut() {
            session.checked_in.remove(&id);
        }
        Ok(Outcome::Done)
    }
}
