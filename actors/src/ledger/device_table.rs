//! A tenant's devices, with indexes by SIP username (every REGISTER and every device check
//! looks a username up), by owner and by the agent a line is bound to (every agent's
//! snapshot reads its devices): a scan of a large tenant's devices each time would grow
//! with the tenant.
//!
//! Invariant: `by_sip_username` holds exactly the SIP usernames of the devices in `by_id`,
//! each mapped to its device (usernames are unique in a tenant: `SIP_USERNAME_NOT_UNIQUE`);
//! `by_owner` and `by_bound` hold exactly each device under its owner and the agent it is
//! bound to. Every change of a device goes through [`DeviceTable::insert`],
//! [`DeviceTable::remove`], [`DeviceTable::update`], [`DeviceTable::set_binding`] or
//! [`DeviceTable::forget_user`], which keep the indexes. Snapshots carry the devices only
//! (the same form as a plain map); the indexes are rebuilt on restore.

use crate::model::directory::Device;
use crate::model::{DeviceId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A tenant's devices by id, and by SIP username.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<DeviceId, Device>",
    into = "BTreeMap<DeviceId, Device>"
)]
pub(crate) struct DeviceTable {
    by_id: BTreeMap<DeviceId, Device>,
    by_sip_username: HashMap<String, DeviceId>,
    by_owner: BTreeSet<(UserId, DeviceId)>,
    by_bound: BTreeSet<(UserId, DeviceId)>,
}

/// Why a snapshot's devices cannot be a tenant's table.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeviceTableError {
    /// A device is filed under another id than its own.
    #[error("device {found:?} is filed under id {key:?}")]
    Misfiled {
        /// The map key.
        key: DeviceId,
        /// The device's own id.
        found: DeviceId,
    },
    /// Two devices share a SIP username.
    #[error("SIP username {0:?} belongs to two devices")]
    DuplicateSipUsername(String),
}

impl TryFrom<BTreeMap<DeviceId, Device>> for DeviceTable {
    type Error = DeviceTableError;

    fn try_from(by_id: BTreeMap<DeviceId, Device>) -> Result<Self, Self::Error> {
        let mut table = DeviceTable::default();
        for (key, device) in by_id {
            if key != device.id {
                return Err(DeviceTableError::Misfiled {
                    key,
                    found: device.id,
                });
            }
            if let Some(username) = &device.spec.sip_username {
                if table.by_sip_username.contains_key(username) {
                    return Err(DeviceTableError::DuplicateSipUsername(username.clone()));
                }
            }
            table.insert(device);
        }
        Ok(table)
    }
}

impl From<DeviceTable> for BTreeMap<DeviceId, Device> {
    fn from(table: DeviceTable) -> Self {
        table.by_id
    }
}

impl DeviceTable {
    pub(crate) fn get(&self, id: &DeviceId) -> Option<&Device> {
        self.by_id.get(id)
    }

    pub(crate) fn contains_key(&self, id: &DeviceId) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Device> {
        self.by_id.values()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &DeviceId> {
        self.by_id.keys()
    }

    /// The devices `user` owns. O(log n + k).
    pub(crate) fn owned_by(&self, user: UserId) -> impl Iterator<Item = &Device> {
        self.of(&self.by_owner, user)
    }

    /// The lines bound to agent `user` (D4). O(log n + k).
    pub(crate) fn bound_to(&self, user: UserId) -> impl Iterator<Item = &Device> {
        self.of(&self.by_bound, user)
    }

    fn of<'a>(
        &'a self,
        index: &'a BTreeSet<(UserId, DeviceId)>,
        user: UserId,
    ) -> impl Iterator<Item = &'a Device> {
        index
            .range((user, DeviceId(0))..=(user, DeviceId(u64::MAX)))
            .filter_map(|(_, id)| self.by_id.get(id))
    }

    /// The device registering as `username`.
    pub(crate) fn by_sip_username(&self, username: &str) -> Option<&Device> {
        let id = self.by_sip_username.get(username)?;
        let device = self.by_id.get(id);
        assert!(
            device.is_some(),
            "the SIP username index names only devices of the table ({username:?} -> {id:?})"
        );
        device
    }

    /// Adds a device, or replaces the one with its id.
    pub(crate) fn insert(&mut self, device: Device) {
        self.unindex(device.id);
        self.index(&device);
        self.by_id.insert(device.id, device);
    }

    pub(crate) fn remove(&mut self, id: &DeviceId) -> Option<Device> {
        self.unindex(*id);
        self.by_id.remove(id)
    }

    /// Changes one device; `None` if there is no such device.
    pub(crate) fn update<R>(
        &mut self,
        id: &DeviceId,
        f: impl FnOnce(&mut Device) -> R,
    ) -> Option<R> {
        let mut device = self.remove(id)?;
        let result = f(&mut device);
        assert_eq!(device.id, *id, "an update keeps the device's id");
        self.insert(device);
        Some(result)
    }

    /// Binds a line to an agent, or unbinds it; the agent it was bound to,
    /// `None` if there is no such device.
    pub(crate) fn set_binding(
        &mut self,
        id: &DeviceId,
        to: Option<UserId>,
    ) -> Option<Option<UserId>> {
        self.update(id, |device| std::mem::replace(&mut device.bound_to, to))
    }

    /// The agent a line is bound to.
    pub(crate) fn binding(&self, id: &DeviceId) -> Option<Option<UserId>> {
        self.by_id.get(id).map(|device| device.bound_to)
    }

    /// Forgets a deleted user: no device is owned by it or bound to it any more (neither is
    /// indexed, so this changes devices in place).
    pub(crate) fn forget_user(&mut self, user: UserId) {
        self.by_owner.retain(|(u, _)| *u != user);
        self.by_bound.retain(|(u, _)| *u != user);
        for device in self.by_id.values_mut() {
            if device.spec.owner == Some(user) {
                device.spec.owner = None;
            }
            if device.bound_to == Some(user) {
                device.bound_to = None;
            }
        }
    }

    fn index(&mut self, device: &Device) {
        if let Some(owner) = device.spec.owner {
            self.by_owner.insert((owner, device.id));
        }
        if let Some(agent) = device.bound_to {
            self.by_bound.insert((agent, device.id));
        }
        if let Some(username) = &device.spec.sip_username {
            let previous = self.by_sip_username.insert(username.clone(), device.id);
            assert!(
                previous.is_none_or(|other| other == device.id),
                "SIP usernames are unique in a tenant (checked before any change): \
                 {username:?} is device {previous:?}'s and device {:?}'s",
                device.id
            );
        }
    }

    fn unindex(&mut self, id: DeviceId) {
        if let Some(device) = self.by_id.get(&id) {
            if let Some(owner) = device.spec.owner {
                self.by_owner.remove(&(owner, id));
            }
            if let Some(agent) = device.bound_to {
                self.by_bound.remove(&(agent, id));
            }
        }
        if let Some(username) = self
            .by_id
            .get(&id)
            .and_then(|d| d.spec.sip_username.as_ref())
        {
            self.by_sip_username.remove(username);
        }
    }

    /// Panics if the index and the devices disagree.
    pub(crate) fn check_invariants(&self) {
        let usernames = self
            .by_id
            .values()
            .filter(|d| d.spec.sip_username.is_some())
            .count();
        assert_eq!(
            usernames,
            self.by_sip_username.len(),
            "one index entry per device with a SIP username"
        );
        let owners: BTreeSet<(UserId, DeviceId)> = self
            .by_id
            .values()
            .filter_map(|d| Some((d.spec.owner?, d.id)))
            .collect();
        assert_eq!(owners, self.by_owner, "the owner index follows the devices");
        let bound: BTreeSet<(UserId, DeviceId)> = self
            .by_id
            .values()
            .filter_map(|d| Some((d.bound_to?, d.id)))
            .collect();
        assert_eq!(
            bound, self.by_bound,
            "the binding index follows the devices"
        );
        for (username, id) in &self.by_sip_username {
            let device = self.by_id.get(id);
            assert_eq!(
                device.and_then(|d| d.spec.sip_username.as_ref()),
                Some(username),
                "the index maps {username:?} to the device that has it"
            );
        }
    }
}
