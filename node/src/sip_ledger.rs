//! The SIP edge's view of the ledger: tenants by SIP domain and accounts by
//! SIP username, read from this node's replica (a registration must not
//! wait on a Raft round trip; a device created a moment ago on another node
//! becomes visible as soon as the entry is applied here).
//!
//! Also the bridge that lets the admin API show extension state (D7).

use std::collections::BTreeMap;

use carillon_actors::ledger::Ledger;
use carillon_actors::model::ids::{DeviceId, TenantId};
use carillon_admin::presence::{BindingInfo, Presence, Registration};
use carillon_consensus::Consensus;
use tokio::sync::watch;

use crate::sip::digest::Ha1;
use crate::sip::edge::{Account, Accounts};
use crate::sip::registrar::{DeviceAllowance, ExtensionState};
use crate::sip_io::Registrations;

/// [`Accounts`] over the local ledger replica.
#[derive(Debug, Clone)]
pub struct LedgerAccounts {
    consensus: Consensus<Ledger>,
}

impl LedgerAccounts {
    /// Accounts read from `consensus`'s local state.
    pub fn new(consensus: Consensus<Ledger>) -> Self {
        LedgerAccounts { consensus }
    }
}

impl Accounts for LedgerAccounts {
    fn tenant_for_domain(&self, domain: &str) -> Option<TenantId> {
        self.consensus
            .read_local(|l| l.tenant_by_sip_domain(domain).map(|t| t.info().id))
    }

    fn account(&self, tenant: TenantId, username: &str) -> Option<Account> {
        self.consensus.read_local(|l| {
            let t = l.tenant(tenant)?;
            let device = t.device_by_sip_username(username)?;
            if !device.spec.kind.registers() {
                return None;
            }
            let secret = device.sip_secret.as_ref()?;
            Some(Account {
                device: device.id,
                short_number: device.spec.short_number.clone(),
                ha1: Ha1 {
                    md5: secret.ha1_md5.clone(),
                    sha256: secret.ha1_sha256.clone(),
                },
                allowance: DeviceAllowance {
                    counted: device.spec.kind.counts_against_packages(),
                    allowed: t.devices_allowed(),
                },
            })
        })
    }
}

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
            .filter(|(key, _)| key.tenant == tenant)
            .map(|(key, reg)| {
                (
                    key.device,
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
