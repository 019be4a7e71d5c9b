//! A tenant's devices, with an index by SIP username: every REGISTER and every device
//! check looks a username up, and a scan of a large tenant's devices each time would grow
//! with the tenant.
//!
//! Invariant: `by_sip_username` holds exactly the SIP usernames of the devices in `by_id`,
//! each mapped to its device (usernames are unique in a tenant: `SIP_USERNAME_NOT_UNIQUE`).
//! Every change of a device goes through [`DeviceTable::insert`], [`DeviceTable::remove`]
//! or [`DeviceTable::update`], which keep the index, or changes only fields the index does
//! not cover ([`DeviceTable::binding_mut`], [`DeviceTable::forget_user`]). Snapshots
//! carry the devices only (the same form as a plain map); the index is rebuilt on restore.

use crate::model::directory::Device;
use crate::model::{DeviceId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A tenant's devices by id, and by SIP username.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<DeviceId, Device>",
    into = "BTreeMap<DeviceId, Device>"
)]
pub(crate) struct DeviceTable {
    by_id: BTreeMap<DeviceId, Device>,
    by_sip_username: HashMap<String, DeviceId>,
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

    /// The agent a line is bound to, to change in place (not indexed).
    pub(crate) fn binding_mut(&mut self, id: &DeviceId) -> Option<&mut Option<UserId>> {
        self.by_id.get_mut(id).map(|device| &mut device.bound_to)
    }

    /// Forgets a deleted user: no device is owned by it or bound to it any more (neither is
    /// indexed, so this changes devices in place).
    pub(crate) fn forget_user(&mut self, user: UserId) {
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
