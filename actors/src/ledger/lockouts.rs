//! Logins locked by the front door after too many failures (any source):
//! held in the ledger so that every node refuses them and administrators
//! see and lift them. Only logins of accounts that exist are locked (the
//! table is bounded by the accounts); an expired lockout is dropped at the
//! next lock.

use serde::{Deserialize, Serialize};

/// A locked login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lockout {
    /// The login, case-folded.
    pub login: String,
    /// Locked at, ms since the epoch.
    pub locked_at_ms: u64,
    /// Refused until, ms since the epoch.
    pub until_ms: u64,
    /// Failures that locked it (within the throttle's window).
    pub failures: u32,
    /// The address of the last failure.
    pub last_source: String,
}

/// Logins are compared case-folded.
pub fn fold_login(login: &str) -> String {
    login.to_lowercase()
}

#[cfg(test)]
mod tests {
    use crate::ledger::{Command, Ledger};
    use crate::model::RefusalCode;

    fn lock(login: &str, until_ms: u64) -> Command {
        Command::LockLogin {
            login: login.into(),
            until_ms,
            failures: 10,
            last_source: "192.0.2.1".into(),
        }
    }

    #[test]
    fn only_accounts_are_locked_until_the_lockout_lifts_or_is_lifted() {
        let mut ledger = Ledger::default();
        ledger
            .execute(
                Command::CreateOperator {
                    login: "Root".into(),
                    password_phc: "$argon2id$x".into(),
                },
                0,
            )
            .expect("operator");
        let refused = ledger.execute(lock("nobody", 1_000), 0);
        assert_eq!(refused.map_err(|r| r.code), Err(RefusalCode::NotFound));
        assert_eq!(
            ledger.lockouts(0).count(),
            0,
            "an unknown login is not kept"
        );
        ledger.execute(lock("ROOT", 1_000), 0).expect("locked");
        assert_eq!(ledger.lockout("root", 999).map(|l| l.until_ms), Some(1_000));
        assert!(
            ledger.lockout("Root", 1_000).is_none(),
            "it lifts by itself"
        );
        let expired = ledger.execute(
            Command::UnlockLogin {
                login: "root".into(),
            },
            1_000,
        );
        assert_eq!(expired.map_err(|r| r.code), Err(RefusalCode::NotFound));
        ledger
            .execute(lock("root", 5_000), 2_000)
            .expect("locked again");
        ledger
            .execute(
                Command::UnlockLogin {
                    login: "Root".into(),
                },
                2_001,
            )
            .expect("an administrator lifts it");
        assert!(ledger.lockout("root", 2_002).is_none());
        let past = ledger.execute(lock("root", 10), 20);
        assert_eq!(past.map_err(|r| r.code), Err(RefusalCode::CountInvalid));
    }
}
