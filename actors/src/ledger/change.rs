//! What an applied command changed, for the node's views and actors (the
//! SIP edge's accounts, the placement of actors, queue and agent actors):
//! they update from these instead of reading the whole ledger after every
//! command. Not part of the replicated state: the changes of the commands
//! applied since the last `take_changes` are kept aside and given away.

use super::command::Command;
use crate::model::{TenantId, UserId};

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Tenants were created or renamed.
    Tenants,
    /// A tenant's devices (accounts, secrets, bindings) changed.
    Devices(TenantId),
    /// A tenant's numbers changed.
    Numbers(TenantId),
    /// A tenant's users changed (settings, skills, PINs, passwords).
    Users(TenantId),
    /// A tenant's queues changed (settings).
    Queues(TenantId),
    /// A tenant's branches, skills, groups or pause types changed.
    Directory(TenantId),
    /// A tenant's licences changed.
    Licences(TenantId),
    /// An agent's session changed.
    Session {
        /// The tenant.
        tenant: TenantId,
        /// The agent.
        user: UserId,
    },
    /// A user changed a waiting entry (S2: its priority, a withdrawal):
    /// its queue re-reads, its call actor carries out a withdrawal.
    EntryByUser {
        /// The tenant.
        tenant: TenantId,
        /// The entry.
        entry: String,
    },
    /// A queue entry changed.
    Entry {
        /// The tenant.
        tenant: TenantId,
        /// The entry.
        entry: String,
    },
    /// The cluster's operators, key or API tokens changed.
    Cluster,
    /// The placement of actors changed (a new epoch).
    Placement,
    /// Agents' voice states changed in ways no single agent names (a lost
    /// call closed by a survivor).
    Voice(TenantId),
    /// An audit record was made in this tenant's log (or the platform's,
    /// `PLATFORM`).
    Audited {
        /// The tenant, or `PLATFORM`.
        tenant: TenantId,
    },
    /// An activity closed: its record is in the tenant's outbox.
    ActivityClosed {
        /// The tenant.
        tenant: TenantId,
    },
}

/// The changes `command` makes when it succeeds.
pub(crate) fn changes_of(command: &Command) -> Vec<Change> {
    use Command as C;
    match command {
        C::By { inner, .. } => changes_of(inner),
        C::Bootstrap { .. }
        | C::CreateOperator { .. }
        | C::CreateApiToken { .. }
        | C::RevokeApiToken { .. } => vec![Change::Cluster],
        C::LockLogin { .. }
        | C::UnlockLogin { .. }
        | C::OpenLoginSession { .. }
        | C::CloseLoginSession { .. }
        | C::RecordAudit { .. }
        | C::IssuePasswordReset { .. } => Vec::new(),
        C::CompletePasswordReset { .. } => vec![Change::Cluster],
        C::SetAuditRetention { .. } => vec![Change::Tenants],
        C::CreateTenant { .. } | C::RenameTenant { .. } => vec![Change::Tenants],
        C::CreateBranch { tenant, .. }
        | C::UpdateBranch { tenant, .. }
        | C::DeleteBranch { tenant, .. }
        | C::CreateSkill { tenant, .. }
        | C::UpdateSkill { tenant, .. }
        | C::DeleteSkill { tenant, .. }
        | C::CreateGroup { tenant, .. }
        | C::UpdateGroup { tenant, .. }
        | C::DeleteGroup { tenant, .. }
        | C::CreatePauseType { tenant, .. }
        | C::UpdatePauseType { tenant, .. }
        | C::DeletePauseType { tenant, .. }
        | C::SetFeatureCodes { tenant, .. } => vec![Change::Directory(*tenant)],
        C::CreateUser { tenant, .. }
        | C::UpdateUser { tenant, .. }
        | C::SetUserSkills { tenant, .. }
        | C::SetUserPassword { tenant, .. }
        | C::SetUserPin { tenant, .. } => vec![Change::Users(*tenant)],
        C::DeleteUser { tenant, user } => vec![
            Change::Users(*tenant),
            Change::Devices(*tenant),
            Change::Numbers(*tenant),
            Change::Licences(*tenant),
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
        ],
        C::CreateDevice { tenant, .. }
        | C::UpdateDevice { tenant, .. }
        | C::DeleteDevice { tenant, .. }
        | C::BuyDevicePackages { tenant, .. }
        | C::WithdrawDevicePackages { tenant, .. } => vec![Change::Devices(*tenant)],
        C::AddNumber { tenant, .. }
        | C::DeleteNumber { tenant, .. }
        | C::AssignNumber { tenant, .. }
        | C::ReleaseNumber { tenant, .. } => vec![Change::Numbers(*tenant)],
        C::CreateQueue { tenant, .. }
        | C::UpdateQueue { tenant, .. }
        | C::DeleteQueue { tenant, .. } => vec![Change::Queues(*tenant)],
        C::BuyLicences { tenant, .. }
        | C::WithdrawLicences { tenant, .. }
        | C::AssignLicence { tenant, .. }
        | C::ReleaseLicence { tenant, .. }
        | C::HandOverLicences { tenant, .. }
        | C::SetLicenceRanks { tenant, .. } => vec![Change::Licences(*tenant)],
        C::Login { tenant, user, .. }
        | C::Logout { tenant, user, .. }
        | C::CheckIn { tenant, user, .. }
        | C::CheckOut { tenant, user, .. }
        | C::Pause { tenant, user, .. }
        | C::Unpause { tenant, user }
        | C::SetReachable { tenant, user, .. }
        | C::BeginActivity { tenant, user, .. }
        | C::EndActivity { tenant, user, .. } => vec![Change::Session {
            tenant: *tenant,
            user: *user,
        }],
        C::BindDevice { tenant, user, .. } | C::UnbindDevice { tenant, user } => vec![
            Change::Devices(*tenant),
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
        ],
        C::ChangePriority { tenant, entry, .. }
        | C::WithdrawEntry { tenant, entry, .. }
        | C::AbandonEntry { tenant, entry } => vec![
            Change::Entry {
                tenant: *tenant,
                entry: entry.clone(),
            },
            Change::EntryByUser {
                tenant: *tenant,
                entry: entry.clone(),
            },
        ],
        C::Enqueue { tenant, entry, .. } | C::MoveEntry { tenant, entry, .. } => {
            vec![Change::Entry {
                tenant: *tenant,
                entry: entry.clone(),
            }]
        }
        C::SetPlacement { .. } => vec![Change::Placement],
        C::OfferCall {
            tenant,
            entry,
            user,
            ..
        }
        | C::ReleaseOffer {
            tenant,
            entry,
            user,
            ..
        }
        | C::ConnectCall {
            tenant,
            entry,
            user,
        } => vec![
            Change::Entry {
                tenant: *tenant,
                entry: entry.clone(),
            },
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
        ],
        // A queue without after-call work closes the activity at once.
        C::EndCall {
            tenant,
            entry,
            user,
            ..
        } => vec![
            Change::Entry {
                tenant: *tenant,
                entry: entry.clone(),
            },
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
            Change::ActivityClosed { tenant: *tenant },
        ],
        C::FinishWrapUp {
            tenant,
            entry,
            user,
            ..
        } => vec![
            Change::Entry {
                tenant: *tenant,
                entry: entry.clone(),
            },
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
            Change::ActivityClosed { tenant: *tenant },
        ],
        C::SetDisposition { tenant, user, .. } => vec![Change::Session {
            tenant: *tenant,
            user: *user,
        }],
        C::EndWrapUp { tenant, user, .. } => vec![
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
            Change::ActivityClosed { tenant: *tenant },
        ],
        C::CloseActivity { tenant, record } => vec![
            Change::Entry {
                tenant: *tenant,
                entry: record.id.clone(),
            },
            Change::Voice(*tenant),
            Change::ActivityClosed { tenant: *tenant },
        ],
        C::AssignEntry {
            tenant,
            entry,
            user,
        } => vec![
            Change::Entry {
                tenant: *tenant,
                entry: entry.clone(),
            },
            Change::Session {
                tenant: *tenant,
                user: *user,
            },
        ],
    }
}

/// The changes awaiting `take_changes`. Not state: two ledgers are equal
/// whatever changes they have not given away yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending(pub(crate) Vec<Change>);

impl PartialEq for Pending {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for Pending {}
