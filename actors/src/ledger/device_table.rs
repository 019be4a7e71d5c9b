//! A tenant's devices, with an index by SIP username: every REGISTER and every device
//! check looks a username up, and a scan of a large tenant's devices each time would grow
//! with the tenant.
//!
//! Invariant: `by_sip_username` holds exactly the SIP usernames of the devices in `by_id`,
//! each mapped to its device (usernames are unique in a tenant: `SIP_USERNAME_NOT_UNIQUE`).
//! Every change of a device goes through [`DeviceTable::insert`], [`DeviceTable::remove`],
//! [`DeviceTable::update`] or [`DeviceTable::update_all`], which keep the index. Snapshots
//! carry the devices only (the same form as a plain map); the index is rebuilt on restore.

use crate::model::directory::Device;
use crate::model::DeviceId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A tenant's devices by id, and by SIP username.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<DeviceId, Device>",
    into = "BTreeMap<DeviceId, Device>"
)]
pub(crate) struct DeviceTable {
    by_id: BTreeMap<DeviceId, Device>,
    by_sip_username: HashMap<String, DeviceId>,
}

impl From<BTreeMap<DeviceId, Device>> for DeviceTable {
    fn from(by_id: BTreeMap<DeviceId, Device>) -> Self {
        let mut table = DeviceTable::default();
        for (_, device) in by_id {
            table.insert(device);
        }
        table
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

    /// Changes every device.
    pub(crate) fn update_all(&mut self, mut f: impl FnMut(&mut Device)) {
        let ids: Vec<DeviceId> = self.by_id.keys().copied().collect();
        for id in ids {
            self.update(&id, &mut f);
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
