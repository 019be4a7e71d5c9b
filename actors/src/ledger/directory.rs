//! Directory commands of one tenant: branches, skills, groups, pause types
//! and queues, with their cross-object rules (users are in `users.rs`,
//! devices and numbers in `devices.rs`).

use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::directory::{
    Branch, BranchSpec, Named, NamedSpec, NumberTarget, PauseType, PauseTypeSpec,
};
use crate::model::queue::{Destination, Queue, QueueSpec};
use crate::model::refusal::{ensure, Checked};
use crate::model::user::Role;
use crate::model::{BranchId, GroupId, PauseTypeId, QueueId, Refusal, RefusalCode, SkillId};
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

pub(super) fn get_mut<'a, K: Ord, V>(
    map: &'a mut BTreeMap<K, V>,
    id: &K,
    what: &str,
) -> Checked<&'a mut V> {
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
            spec.destinations().all(|d| queue_ok(Some(d))),
            RefusalCode::QueueConfigInvalid,
            || "overflow, exit and closed destinations name another queue of this tenant".into(),
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
        let referenced = self
            .numbers
            .values()
            .any(|n| n.target == Some(NumberTarget::Queue { queue: id }))
            || self.queues.values().any(|q| {
                q.spec
                    .destinations()
                    .any(|d| matches!(d, Destination::Queue { queue } if *queue == id))
            });
        ensure(!referenced, RefusalCode::ObjectInUse, || {
            "a number or another queue leads to this queue".into()
        })?;
        self.queues.remove(&id);
        for session in self.sessions.values_mut() {
            session.checked_in.remove(&id);
        }
        for user in self.users.values_mut() {
            user.spec.login_queues.remove(&id);
        }
        Ok(Outcome::Done)
    }
}
