//! User commands of one tenant (U1-U5, V1, V2, A7): the cross-object rules
//! of a user spec, secrets kept unique by fingerprint, deactivation and
//! deletion.

use super::command::Outcome;
use super::directory::get_mut;
use super::tenant::TenantState;
use crate::model::credentials::PasswordHash;
use crate::model::directory::NumberTarget;
use crate::model::refusal::{ensure, Checked};
use crate::model::user::{Binding, RingPlan, Role, SkillLevel, User, UserKind, UserSpec};
use crate::model::{DeviceId, Refusal, RefusalCode, UserId};

impl TenantState {
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
        ensure(
            spec.login_queues
                .iter()
                .all(|q| self.queues.contains_key(q)),
            RefusalCode::NotFound,
            || "a login queue does not exist in this tenant".into(),
        )?;
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
                spec.kind != UserKind::BackOffice,
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
        if !spec.roles.contains(&Role::Agent) {
            if let Some(queue) = self
                .queues
                .values()
                .find(|q| q.spec.static_members.contains(&id))
            {
                return Err(Refusal::new(
                    RefusalCode::ObjectInUse,
                    format!(
                        "the user is a static member of queue {:?}; remove it there before taking the agent role away",
                        queue.spec.name
                    ),
                ));
            }
        }
        let user = get_mut(&mut self.users, &id, "user")?;
        if spec.kind == UserKind::BackOffice {
            user.password = None;
        }
        user.spec = spec;
        // Seats the user no longer needs go back to the pool (L2); a
        // deactivated user needs none.
        let user = self.users[&id].clone();
        self.licences.release_unneeded(&user);
        // A user who may no longer log in as an agent is logged out (A1).
        self.close_session(id);
        Ok(Outcome::Done)
    }

    pub(crate) fn set_user_skills(
        &mut self,
        id: UserId,
        skills: Vec<SkillLevel>,
    ) -> Checked<Outcome> {
        let mut spec = self.user(id)?.spec.clone();
        spec.skills = skills;
        self.check_user(Some(id), &spec)?;
        get_mut(&mut self.users, &id, "user")?.spec = spec;
        Ok(Outcome::Done)
    }

    pub(crate) fn delete_user(&mut self, id: UserId) -> Checked<Outcome> {
        self.user(id)?;
        self.licences.release_all(id);
        self.sessions.remove(&id);
        self.last_changes.remove(&id);
        for number in self.numbers.values_mut() {
            if number.target == Some(NumberTarget::User { user: id }) {
                number.target = None;
            }
        }
        self.devices.forget_user(id);
        for queue in self.queues.values_mut() {
            queue.spec.static_members.remove(&id);
            if let crate::model::queue::Strategy::WeightedRandom { weights } =
                &mut queue.spec.strategy
            {
                weights.retain(|w| w.user != id);
            }
        }
        self.users.remove(&id);
        Ok(Outcome::Done)
    }

    pub(crate) fn set_password(&mut self, id: UserId, password: PasswordHash) -> Checked<Outcome> {
        let user = self.user(id)?;
        ensure(
            user.spec.kind != UserKind::BackOffice,
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
}
