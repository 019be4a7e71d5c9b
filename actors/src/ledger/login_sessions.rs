//! Sessions opened by `POST /auth/login`: each bearer token names one, so
//! that its owner can list them and end any (logout), and every node stops
//! accepting the token once the ledger has applied its end. Bounded: at most
//! [`MAX_PER_OWNER`] open sessions per account (opening one more ends the
//! oldest), and expired sessions are dropped whenever a session opens.

use super::{Ledger, TokenOwner};
use crate::model::refusal::{ensure, Checked};
use crate::model::{Refusal, RefusalCode};
use serde::{Deserialize, Serialize};

/// Open sessions per account; the oldest ends when one more opens.
pub const MAX_PER_OWNER: usize = 20;

/// Longest user agent kept with a session, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 200;

/// A logged-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginSession {
    /// Id (named by the session's bearer token).
    pub id: u64,
    /// Whose.
    pub owner: TokenOwner,
    /// Opened at, ms since the epoch.
    pub opened_at_ms: u64,
    /// Ends by itself at, ms since the epoch.
    pub expires_at_ms: u64,
    /// The address it logged in from.
    pub source: String,
    /// The client's `User-Agent`, shortened to 200 characters.
    pub user_agent: String,
}

impl Ledger {
    pub(super) fn open_login_session(
        &mut self,
        owner: TokenOwner,
        expires_at_ms: u64,
        source: String,
        user_agent: String,
        now_ms: u64,
    ) -> Checked<u64> {
        ensure(expires_at_ms > now_ms, RefusalCode::CountInvalid, || {
            "a session ends in the future".into()
        })?;
        ensure(self.owner_exists(owner), RefusalCode::NotFound, || {
            "no such account".into()
        })?;
        self.login_sessions.retain(|_, s| s.expires_at_ms > now_ms);
        let mine: Vec<u64> = self
            .login_sessions
            .values()
            .filter(|s| s.owner == owner)
            .map(|s| s.id)
            .collect();
        // Ids grow, so the first are the oldest.
        let excess = (mine.len() + 1).saturating_sub(MAX_PER_OWNER);
        for id in mine.into_iter().take(excess) {
            self.login_sessions.remove(&id);
        }
        let id = self.allocate_id();
        let user_agent = user_agent.chars().take(MAX_USER_AGENT_CHARS).collect();
        self.login_sessions.insert(
            id,
            LoginSession {
                id,
                owner,
                opened_at_ms: now_ms,
                expires_at_ms,
                source,
                user_agent,
            },
        );
        assert!(
            self.login_sessions
                .values()
                .filter(|s| s.owner == owner)
                .count()
                <= MAX_PER_OWNER,
            "an account has at most {MAX_PER_OWNER} open sessions"
        );
        Ok(id)
    }

    pub(super) fn close_login_session(&mut self, session: u64) -> Checked<()> {
        self.login_sessions
            .remove(&session)
            .map(|_| ())
            .ok_or_else(|| Refusal::not_found("session"))
    }

    fn owner_exists(&self, owner: TokenOwner) -> bool {
        match owner {
            TokenOwner::Operator { operator } => self.operators.contains_key(&operator),
            TokenOwner::User { tenant, user } => self
                .tenants
                .get(&tenant)
                .is_some_and(|t| t.find_user(user).is_some()),
        }
    }

    /// The session `id`, while open at `now_ms`.
    pub fn login_session(&self, id: u64, now_ms: u64) -> Option<&LoginSession> {
        self.login_sessions
            .get(&id)
            .filter(|s| s.expires_at_ms > now_ms)
    }

    /// `owner`'s sessions open at `now_ms`, oldest first.
    pub fn login_sessions_of(
        &self,
        owner: TokenOwner,
        now_ms: u64,
    ) -> impl Iterator<Item = &LoginSession> {
        self.login_sessions
            .values()
            .filter(move |s| s.owner == owner && s.expires_at_ms > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_PER_OWNER;
    use crate::ledger::{Command, Ledger, Outcome, TokenOwner};
    use crate::model::{OperatorId, RefusalCode};

    fn open(
        ledger: &mut Ledger,
        owner: TokenOwner,
        now: u64,
        ttl: u64,
    ) -> Result<u64, RefusalCode> {
        match ledger.execute(
            Command::OpenLoginSession {
                owner,
                expires_at_ms: now + ttl,
                source: "192.0.2.1".into(),
                user_agent: "x".repeat(500),
            },
            now,
        ) {
            Ok(Outcome::Created { id }) => Ok(id),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(r) => Err(r.code),
        }
    }

    #[test]
    fn sessions_open_end_expire_and_are_bounded_per_account() {
        let mut ledger = Ledger::default();
        ledger
            .execute(
                Command::CreateOperator {
                    login: "root".into(),
                    password_phc: "$argon2id$x".into(),
                },
                0,
            )
            .expect("operator");
        let root = TokenOwner::Operator {
            operator: OperatorId(1),
        };
        let ghost = TokenOwner::Operator {
            operator: OperatorId(99),
        };
        assert_eq!(open(&mut ledger, ghost, 0, 10), Err(RefusalCode::NotFound));
        assert_eq!(
            open(&mut ledger, root, 10, 0),
            Err(RefusalCode::CountInvalid)
        );
        let first = open(&mut ledger, root, 10, 100).expect("opened");
        let view = ledger.login_session(first, 11).expect("open");
        assert_eq!(view.user_agent.chars().count(), 200);
        assert!(ledger.login_session(first, 110).is_none(), "it expires");
        let second = open(&mut ledger, root, 20, 1_000).expect("opened");
        ledger
            .execute(Command::CloseLoginSession { session: second }, 21)
            .expect("closed");
        assert!(ledger.login_session(second, 22).is_none());
        let again = ledger.execute(Command::CloseLoginSession { session: second }, 23);
        assert_eq!(again.map_err(|r| r.code), Err(RefusalCode::NotFound));
        let ids: Vec<u64> = (0..MAX_PER_OWNER as u64 + 5)
            .map(|i| open(&mut ledger, root, 200 + i, 1_000).expect("opened"))
            .collect();
        let open_now: Vec<u64> = ledger.login_sessions_of(root, 300).map(|s| s.id).collect();
        assert_eq!(open_now, ids[5..].to_vec(), "the oldest five ended");
        assert!(
            ledger.login_session(first, 300).is_none(),
            "the expired one was dropped"
        );
    }
}
