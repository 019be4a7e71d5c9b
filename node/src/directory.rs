//! The directory the SIP edge and the call glue read: tenants by SIP
//! domain, SIP accounts by username, numbers and short numbers, kept up to
//! date from the ledger replica's change notices and published as an
//! immutable snapshot ([`DirectoryView`]).
//!
//! Why: the edge is one task; reading the ledger under the state machine's
//! lock for every REGISTER and INVITE would stall it behind a snapshot
//! encode (150-190 ms at 25 MB). The builder task here takes that lock
//! briefly, only for the tenants a notice names, and the edge reads the last
//! published snapshot without waiting.
//!
//! Invariant: the published view equals what a full rebuild from the
//! replica would give at some applied index (a tenant is rebuilt whole; a
//! lagging or reset subscription rebuilds everything).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use carillon_actors::feature::FeatureCodes;
use carillon_actors::ledger::{Change, Ledger, TenantState};
use carillon_actors::model::directory::{DeviceKind, NumberTarget};
use carillon_actors::model::ids::{DeviceId, QueueId, TenantId, UserId};
use carillon_actors::model::queue::QueueSpec;
use carillon_consensus::{Consensus, Notice};
use carillon_sip::digest::Ha1;
use carillon_sip::edge::{Account, Accounts};
use carillon_sip::keys::{AccountKey, TenantKey};
use carillon_sip::registrar::DeviceAllowance;
use tokio::sync::{broadcast, watch};

/// One device, as calls need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The device.
    pub id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its owner.
    pub owner: Option<UserId>,
    /// SIP username, for registering kinds.
    pub sip_username: Option<String>,
    /// Short number.
    pub short_number: Option<String>,
}

/// One tenant's part of the view.
#[derive(Debug, Clone, Default)]
pub struct TenantDirectory {
    /// SIP domain (digest realm).
    pub domain: String,
    /// SIP accounts by username.
    pub accounts: HashMap<String, Account>,
    /// Devices by id.
    pub devices: HashMap<DeviceId, DeviceEntry>,
    /// Devices by short number.
    pub short_numbers: HashMap<String, DeviceId>,
    /// Where each assigned DID leads, by E.164.
    pub numbers: HashMap<String, NumberTarget>,
    /// Queues by id.
    pub queues: HashMap<QueueId, Arc<QueueSpec>>,
    /// Phone feature codes (A3).
    pub features: FeatureCodes,
}

/// The published view: every tenant's directory.
#[derive(Debug, Clone, Default)]
pub struct DirectoryView {
    domains: HashMap<String, TenantId>,
    tenants: HashMap<TenantId, Arc<TenantDirectory>>,
    /// DIDs are unique across tenants (the ledger refuses a second owner).
    numbers: HashMap<String, TenantId>,
    /// Every id names one object across tenants: the tenant of each device.
    devices: HashMap<DeviceId, TenantId>,
}

impl DirectoryView {
    /// The tenant serving `domain`.
    pub fn tenant_for_domain(&self, domain: &str) -> Option<TenantId> {
        self.domains.get(&domain.to_ascii_lowercase()).copied()
    }

    /// One tenant's directory.
    pub fn tenant(&self, tenant: TenantId) -> Option<&Arc<TenantDirectory>> {
        self.tenants.get(&tenant)
    }

    /// The tenant of a device.
    pub fn tenant_of_device(&self, device: DeviceId) -> Option<TenantId> {
        self.devices.get(&device).copied()
    }

    /// The tenant that owns DID `e164` and where it leads.
    pub fn number(&self, e164: &str) -> Option<(TenantId, &NumberTarget)> {
        let tenant = *self.numbers.get(e164)?;
        let target = self.tenants.get(&tenant)?.numbers.get(e164)?;
        Some((tenant, target))
    }

    fn build(ledger: &Ledger) -> Self {
        let mut view = DirectoryView::default();
        for tenant in ledger.tenants() {
            if let Some(state) = ledger.tenant(tenant.id) {
                view.replace(tenant.id, Some(tenant_directory(state)));
            }
        }
        view
    }

    fn replace(&mut self, tenant: TenantId, directory: Option<TenantDirectory>) {
        if let Some(old) = self.tenants.remove(&tenant) {
            self.domains.remove(&old.domain);
            for e164 in old.numbers.keys() {
                self.numbers.remove(e164);
            }
            for device in old.devices.keys() {
                self.devices.remove(device);
            }
        }
        if let Some(d) = directory {
            self.domains.insert(d.domain.to_ascii_lowercase(), tenant);
            for e164 in d.numbers.keys() {
                self.numbers.insert(e164.clone(), tenant);
            }
            for device in d.devices.keys() {
                self.devices.insert(*device, tenant);
            }
            self.tenants.insert(tenant, Arc::new(d));
        }
    }
}

fn tenant_directory(state: &TenantState) -> TenantDirectory {
    let allowed = state.devices_allowed();
    let mut d = TenantDirectory {
        domain: state.info().sip_domain.clone(),
        features: state.info().feature_codes.clone(),
        ..TenantDirectory::default()
    };
    for device in state.devices() {
        let spec = &device.spec;
        d.devices.insert(
            device.id,
            DeviceEntry {
                id: device.id,
                kind: spec.kind,
                owner: spec.owner,
                sip_username: spec.sip_username.clone(),
                short_number: spec.short_number.clone(),
            },
        );
        if let Some(short) = &spec.short_number {
            d.short_numbers.insert(short.clone(), device.id);
        }
        let (Some(username), Some(secret)) = (&spec.sip_username, &device.sip_secret) else {
            continue;
        };
        if !spec.kind.registers() {
            continue;
        }
        d.accounts.insert(
            username.clone(),
            Account {
                device: AccountKey(device.id.0),
                short_number: spec.short_number.clone(),
                ha1: Ha1 {
                    md5: secret.ha1_md5.clone(),
                    sha256: secret.ha1_sha256.clone(),
                },
                allowance: DeviceAllowance {
                    counted: spec.kind.counts_against_packages(),
                    allowed,
                },
            },
        );
    }
    for number in state.numbers() {
        if let Some(target) = &number.target {
            d.numbers.insert(number.e164.clone(), target.clone());
        }
    }
    for queue in state.queues() {
        d.queues.insert(queue.id, Arc::new(queue.spec.clone()));
    }
    d
}

/// Which tenants a run of changes touches; `None` means all of them.
fn touched(changes: &[Change], into: &mut HashSet<TenantId>) -> bool {
    for change in changes {
        match change {
            Change::Tenants => return false,
            Change::Devices(t) | Change::Numbers(t) | Change::Queues(t) | Change::Directory(t) => {
                into.insert(*t);
            }
            _ => {}
        }
    }
    true
}

/// Keeps a [`DirectoryView`] of `consensus`'s replica up to date; returns
/// the receiver of published views. The task ends when every receiver is
/// gone or the subscription closes.
pub fn spawn(consensus: Consensus<Ledger>) -> watch::Receiver<Arc<DirectoryView>> {
    let mut notices = consensus.subscribe();
    let initial = consensus.read_local(DirectoryView::build);
    let (tx, rx) = watch::channel(Arc::new(initial));
    tokio::spawn(async move {
        loop {
            let first = notices.recv().await;
            let mut tenants = HashSet::new();
            let mut all = false;
            let mut take =
                |notice: Result<Notice<Change>, broadcast::error::RecvError>| match notice {
                    Ok(Notice::Applied { changes, .. }) => {
                        if !touched(&changes, &mut tenants) {
                            all = true;
                        }
                        true
                    }
                    Ok(Notice::Reset { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        all = true;
                        true
                    }
                    Err(broadcast::error::RecvError::Closed) => false,
                };
            if !take(first) {
                return;
            }
            // Whatever else is already queued goes into the same rebuild.
            for _ in 0..1024 {
                match notices.try_recv() {
                    Ok(n) => {
                        take(Ok(n));
                    }
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        take(Err(broadcast::error::RecvError::Lagged(n)));
                    }
                    Err(_) => break,
                }
            }
            if !all && tenants.is_empty() {
                continue;
            }
            let next = consensus.read_local(|ledger| {
                if all {
                    return DirectoryView::build(ledger);
                }
                let mut view = (**tx.borrow()).clone();
                for tenant in &tenants {
                    view.replace(*tenant, ledger.tenant(*tenant).map(tenant_directory));
                }
                view
            });
            if tx.send(Arc::new(next)).is_err() {
                return;
            }
        }
    });
    rx
}

/// [`Accounts`] for the edge, read from the published view.
#[derive(Debug, Clone)]
pub struct ViewAccounts {
    view: watch::Receiver<Arc<DirectoryView>>,
}

impl ViewAccounts {
    /// Accounts read from `view`.
    pub fn new(view: watch::Receiver<Arc<DirectoryView>>) -> Self {
        ViewAccounts { view }
    }
}

impl Accounts for ViewAccounts {
    fn tenant_for_domain(&self, domain: &str) -> Option<TenantKey> {
        self.view
            .borrow()
            .tenant_for_domain(domain)
            .map(|t| TenantKey(t.0))
    }

    fn account(&self, tenant: TenantKey, username: &str) -> Option<Account> {
        self.view
            .borrow()
            .tenant(TenantId(tenant.0))?
            .accounts
            .get(username)
            .cloned()
    }
}
