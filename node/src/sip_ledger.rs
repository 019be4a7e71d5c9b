//! The bridge that lets the admin API show extension state (D7) from the
//! registrations the edge publishes. (The edge's accounts come from
//! [`crate::directory`].)

use std::collections::BTreeMap;

use carillon_actors::model::ids::{DeviceId, TenantId};
use carillon_admin::presence::{BindingInfo, Presence, Registration};
use tokio::sync::watch;

use crate::sip_io::Registrations;
use carillon_sip::keys::TenantKey;
use carillon_sip::registrar::ExtensionState;

/// [`Presence`] from the edge's published registrations.
#[derive(Debug, Clone)]
pub struct EdgePresence {
    registrations: watch::Receiver<Registrations>,
}

impl EdgePresence {
    /// Presence read from `registrations`.
    pub fn new(registrations: watch::Receiver<Registrations>) -> Self {
        EdgePresence { registrations }
    }
}

impl Presence for EdgePresence {
    fn registrations(&self, tenant: TenantId) -> BTreeMap<DeviceId, Registration> {
        let all = self.registrations.borrow().clone();
        all.iter()
            .filter(|(key, _)| key.tenant == TenantKey(tenant.0))
            .map(|(key, reg)| {
                (
                    DeviceId(key.device.0),
                    Registration {
                        online: reg.state == ExtensionState::Online,
                        bindings: reg
                            .bindings
                            .iter()
                            .map(|b| BindingInfo {
                                contact: b.contact.clone(),
                                transport: b.flow.transport.via_token().to_ascii_lowercase(),
                                source: b.flow.remote.to_string(),
                                expires_s: b.expires_s,
                                reachable: b.reachable,
                                user_agent: b.user_agent.clone(),
                            })
                            .collect(),
                    },
                )
            })
            .collect()
    }

    fn serving(&self) -> bool {
        true
    }
}
