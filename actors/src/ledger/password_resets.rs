//! Password recovery (U5): a reset issued for a user is held as the hash of
//! its secret (the secret travels only in the user's e-mail), expires, and
//! is used once. Completing it sets the new password (which ends every
//! session token issued before, through the password tag), ends the user's
//! sessions and revokes the user's API tokens. Bounded: expired resets are
//! dropped whenever one is issued, a user holds at most [`MAX_PER_USER`]
//! (the oldest goes first) and gets at most one per [`MIN_INTERVAL_MS`];
//! completing one, or setting the password another way, ends the others.

use super::{Command, Ledger, TokenOwner};
use crate::model::credentials::PasswordHash;
use crate::model::refusal::{ensure, Checked};
use crate::model::{Refusal, RefusalCode, TenantId, UserId};
use serde::{Deserialize, Serialize};

/// Open resets per user; issuing one more drops the oldest.
pub const MAX_PER_USER: usize = 3;

/// A user gets at most one reset e-mail this often (however many ask).
pub const MIN_INTERVAL_MS: u64 = 60_000;

/// An issued reset, by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// The user's tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
    /// Issued at, ms since the epoch.
    pub issued_at_ms: u64,
    /// Refused from then on.
    pub expires_at_ms: u64,
    /// When it was used (a used reset is kept until it expires, to say so).
    pub used_at_ms: Option<u64>,
}

impl Ledger {
    pub(super) fn issue_password_reset(
        &mut self,
        tenant: TenantId,
        user: UserId,
        token_hash: String,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Checked<()> {
        ensure(expires_at_ms > now_ms, RefusalCode::CountInvalid, || {
            "a reset expires in the future".into()
        })?;
        let can = self
            .tenant(tenant)
            .and_then(|t| t.find_user(user))
            .is_some_and(|u| u.spec.can_log_in());
        ensure(can, RefusalCode::NotFound, || {
            "no user who may log in".into()
        })?;
        let recent = self.password_resets.values().any(|r| {
            r.tenant == tenant
                && r.user == user
                && now_ms.saturating_sub(r.issued_at_ms) < MIN_INTERVAL_MS
        });
        ensure(!recent, RefusalCode::ResetTooSoon, || {
            "a reset was issued for this user less than a minute ago".into()
        })?;
        self.password_resets.retain(|_, r| r.expires_at_ms > now_ms);
        let mut mine: Vec<(u64, String)> = self
            .password_resets
            .iter()
            .filter(|(_, r)| r.tenant == tenant && r.user == user)
            .map(|(hash, r)| (r.issued_at_ms, hash.clone()))
            .collect();
        mine.sort();
        let excess = (mine.len() + 1).saturating_sub(MAX_PER_USER);
        for (_, hash) in mine.into_iter().take(excess) {
            self.password_resets.remove(&hash);
        }
        self.password_resets.insert(
            token_hash,
            PasswordReset {
                tenant,
                user,
                issued_at_ms: now_ms,
                expires_at_ms,
                used_at_ms: None,
            },
        );
        Ok(())
    }

    /// The reset `token_hash` names, if it may be used at `now_ms`.
    pub fn usable_reset(&self, token_hash: &str, now_ms: u64) -> Checked<&PasswordReset> {
        let reset = self.password_resets.get(token_hash).ok_or_else(|| {
            Refusal::new(
                RefusalCode::ResetTokenInvalid,
                "this password reset link is not one the system issued",
            )
        })?;
        ensure(
            reset.used_at_ms.is_none(),
            RefusalCode::ResetTokenUsed,
            || "this password reset link was used already".into(),
        )?;
        ensure(
            now_ms < reset.expires_at_ms,
            RefusalCode::ResetTokenExpired,
            || "this password reset link has expired: ask for a new one".into(),
        )?;
        Ok(reset)
    }

    pub(super) fn complete_password_reset(
        &mut self,
        token_hash: String,
        password: PasswordHash,
        now_ms: u64,
    ) -> Checked<()> {
        let (tenant, user) = {
            let reset = self.usable_reset(&token_hash, now_ms)?;
            (reset.tenant, reset.user)
        };
        self.dispatch(
            Command::SetUserPassword {
                tenant,
                user,
                password,
            },
            now_ms,
        )?;
        // This link is kept (to say it was used); every other open link of
        // the user ends with it.
        self.password_resets
            .retain(|hash, r| *hash == token_hash || r.tenant != tenant || r.user != user);
        if let Some(reset) = self.password_resets.get_mut(&token_hash) {
            reset.used_at_ms = Some(now_ms);
        }
        self.changes.0.push(super::Change::Users(tenant));
        let owner = TokenOwner::User { tenant, user };
        self.login_sessions.retain(|_, s| s.owner != owner);
        for token in self.api_tokens.values_mut().filter(|t| t.owner == owner) {
            token.revoked = true;
        }
        Ok(())
    }

    /// A password set another way ends the user's open reset links.
    pub(super) fn password_changed(&mut self, tenant: TenantId, user: UserId) {
        self.password_resets
            .retain(|_, r| r.tenant != tenant || r.user != user);
    }

    /// The user a reset names (for the audit trail).
    pub(super) fn reset_user(&self, token_hash: &str) -> Option<(TenantId, UserId)> {
        self.password_resets
            .get(token_hash)
            .map(|r| (r.tenant, r.user))
    }
}
