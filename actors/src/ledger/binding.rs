//! Agent-to-line binding (D4): fixed, self-adapting and dynamic modes, and
//! "keep station on logout".
//!
//! The binding lives on the device (`Device::bound_to`). Invariant: a
//! device is bound to at most one agent (by construction) and an agent to at
//! most one device; a bound agent exists. The shell decides *which* line a
//! self-adapting agent gets (it knows the registrations' addresses) and
//! proposes `BindDevice`; the ledger only keeps lines exclusive.

use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::directory::Device;
use crate::model::refusal::{ensure, Checked};
use crate::model::user::{Binding, Role};
use crate::model::{DeviceId, Refusal, RefusalCode, UserId};

impl TenantState {
    /// The line `user` is bound to, if any.
    pub fn bound_device(&self, user: UserId) -> Option<&Device> {
        self.devices.bound_to(user).next()
    }

    fn release_binding(&mut self, user: UserId) {
        // An agent is bound to at most one line (`check_bindings`).
        if let Some(line) = self.bound_device(user).map(|d| d.id) {
            self.devices.set_binding(&line, None);
        }
    }

    pub(crate) fn bind_device(&mut self, user: UserId, device: DeviceId) -> Checked<Outcome> {
        let agent = self.user(user)?;
        if let Binding::Fixed { device: fixed } = agent.spec.binding {
            ensure(fixed == device, RefusalCode::BindingInvalid, || {
                "the administrator fixed this agent's line; the agent cannot change it".into()
            })?;
        }
        let line = self
            .devices
            .get(&device)
            .ok_or_else(|| Refusal::not_found("device"))?;
        ensure(
            line.bound_to.is_none_or(|holder| holder == user),
            RefusalCode::DeviceAlreadyBound,
            || "this line is bound to another agent; pick a free one".into(),
        )?;
        ensure(
            self.sessions.contains_key(&user),
            RefusalCode::NotLoggedIn,
            || "an agent binds a line after logging in".into(),
        )?;
        self.release_binding(user);
        self.devices.set_binding(&device, Some(user));
        Ok(Outcome::Done)
    }

    pub(crate) fn unbind_device(&mut self, user: UserId) -> Checked<Outcome> {
        let agent = self.user(user)?;
        ensure(
            !matches!(agent.spec.binding, Binding::Fixed { .. }),
            RefusalCode::BindingInvalid,
            || "the administrator fixed this agent's line; change the binding mode first".into(),
        )?;
        ensure(
            self.bound_device(user).is_some(),
            RefusalCode::DeviceNotBound,
            || "the agent is bound to no line".into(),
        )?;
        self.release_binding(user);
        Ok(Outcome::Done)
    }

    /// At login: an agent with a fixed binding takes its line if it is free.
    pub(crate) fn bind_fixed_line(&mut self, user: UserId) {
        let Some(Binding::Fixed { device }) = self.users.get(&user).map(|u| u.spec.binding) else {
            return;
        };
        if self.bound_device(user).is_some_and(|d| d.id != device) {
            self.release_binding(user);
        }
        if self.devices.binding(&device) == Some(None) {
            self.devices.set_binding(&device, Some(user));
        }
    }

    /// Ends `user`'s session (after its last terminal and activity). The line
    /// stays bound only for an agent who keeps its station and may still log
    /// in (D4).
    pub(crate) fn end_session(&mut self, user: UserId) {
        self.sessions.remove(&user);
        let keeps = self
            .users
            .get(&user)
            .is_some_and(|u| u.spec.keep_station_on_logout && u.spec.can_log_in());
        if !keeps {
            self.release_binding(user);
        }
    }

    /// Logs out a user who may no longer log in (deactivated, lost the agent
    /// role or panel access): every terminal closes at once; an open
    /// activity finishes first (A5 "after this call").
    pub(crate) fn close_session(&mut self, user: UserId) {
        let may_log_in = self
            .users
            .get(&user)
            .is_some_and(|u| u.spec.can_log_in() && u.spec.roles.contains(&Role::Agent));
        if may_log_in {
            return;
        }
        match self.sessions.get_mut(&user) {
            Some(session) if !session.activities.is_empty() => {
                session.terminals.clear();
                session.after_activity = Some(super::sessions::AfterActivity::Logout);
            }
            Some(_) => self.end_session(user),
            None => {
                if !self.users.get(&user).is_some_and(|u| u.spec.can_log_in()) {
                    self.release_binding(user);
                }
            }
        }
    }

    /// Asserts D4: every bound agent exists and holds one line.
    pub(crate) fn check_bindings(&self) {
        let mut holders = std::collections::BTreeSet::new();
        for device in self.devices.values() {
            if let Some(user) = device.bound_to {
                assert!(
                    self.users.contains_key(&user),
                    "D4: a line is bound to an existing user"
                );
                assert!(
                    holders.insert(user),
                    "D4: an agent is bound to at most one line"
                );
            }
        }
    }
}
