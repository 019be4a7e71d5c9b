//! Devices (D1-D4, D7, L1) and public numbers (D2, V5) of one tenant.

use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::credentials::SipSecret;
use crate::model::directory::{Device, DeviceSpec, Number, NumberTarget};
use crate::model::licence::DEVICES_PER_PACKAGE;
use crate::model::refusal::{ensure, Checked};
use crate::model::user::{Binding, RingPlan};
use crate::model::{DeviceId, NumberId, Refusal, RefusalCode};

impl TenantState {
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
                self.devices
                    .by_sip_username(username)
                    .is_none_or(|d| Some(d.id) == id),
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
        self.devices.insert(Device {
            id,
            spec,
            sip_secret,
            bound_to: None,
        });
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
        self.devices
            .update(&id, |device| {
                if !spec.kind.registers() {
                    device.sip_secret = None;
                } else if secret.is_some() {
                    device.sip_secret = secret;
                }
                device.spec = spec;
            })
            .ok_or_else(|| Refusal::not_found("device"))?;
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
        let bound = self.devices.get(&id).is_some_and(|d| d.bound_to.is_some());
        ensure(!used && !bound, RefusalCode::ObjectInUse, || {
            "an agent is bound to this device, or a user's binding or ring plan uses it".into()
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
}
