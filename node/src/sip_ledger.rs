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

use crate::sip_io::Registrations;
use carillon_sip::digest::Ha1;
use carillon_sip::edge::{Account, Accounts};
use carillon_sip::keys::{AccountKey, TenantKey};
use carillon_sip::registrar::{DeviceAllowance, ExtensionState};

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
    fn tenant_for_domain(&self, domain: &str) -> Option<TenantKey> {
        self.consensus.read_local(|l| {
            l.tenant_by_sip_domain(domain)
                .map(|t| TenantKey(t.info().id.0))
        })
    }

    fn account(&self, tenant: TenantKey, username: &str) -> Option<Account> {
        self.consensus.read_local(|l| {
            let t = l.tenant(TenantId(tenant.0))?;
            let device = t.device_by_sip_username(username)?;
            if !device.spec.kind.registers() {
                return None;
            }
            let secret = device.sip_secret.as_ref()?;
            Some(Account {
                device: AccountKey(device.id.0),
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
