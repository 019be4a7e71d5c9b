//! Tells device actors where their devices are registered: the edge
//! publishes its registrations; each change of a device's bindings or
//! reachability here goes to the device's actor, and everything again when
//! the placement changes (a device actor may have moved) and every
//! [`RESEND_EVERY`] (a message lost with a node is repeated).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use carillon_actors::messages::{Address, DeviceMsg, Envelope, Message};
use carillon_actors::model::ids::{DeviceId, TenantId};
use carillon_sip::registrar::{DeviceKey, ExtensionState};

use super::services::NodeServices;
use crate::sip_io::Registrations;

/// Everything is sent again this often.
pub const RESEND_EVERY: Duration = Duration::from_secs(10);

/// Runs until the registrations' sender is gone.
pub fn spawn(
    node: u64,
    services: Arc<NodeServices>,
    mut registrations: tokio::sync::watch::Receiver<Registrations>,
) {
    tokio::spawn(async move {
        let mut sent: BTreeMap<DeviceKey, (u32, bool)> = BTreeMap::new();
        let mut epoch = services.host().map(|h| h.placement().epoch).unwrap_or(0);
        let mut last_full = tokio::time::Instant::now();
        loop {
            tokio::select! {
                changed = registrations.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let now_epoch = services.host().map(|h| h.placement().epoch).unwrap_or(0);
            let full = now_epoch != epoch || last_full.elapsed() >= RESEND_EVERY;
            if full {
                epoch = now_epoch;
                last_full = tokio::time::Instant::now();
            }
            let current: BTreeMap<DeviceKey, (u32, bool)> = registrations
                .borrow()
                .iter()
                .map(|(k, r)| {
                    let reachable = r.state == ExtensionState::Online;
                    (*k, (r.bindings.len() as u32, reachable))
                })
                .collect();
            let tell = |key: &DeviceKey, bindings: u32, reachable: bool| {
                services.route(Envelope {
                    to: Address::device(TenantId(key.tenant.0), DeviceId(key.device.0)),
                    message: Message::Device(DeviceMsg::Registration {
                        node,
                        bindings,
                        reachable,
                    }),
                    hops: 0,
                });
            };
            for (key, (bindings, reachable)) in &current {
                if full || sent.get(key) != Some(&(*bindings, *reachable)) {
                    tell(key, *bindings, *reachable);
                }
            }
            for key in sent.keys() {
                if !current.contains_key(key) {
                    tell(key, 0, false);
                }
            }
            sent = current;
        }
    });
}
