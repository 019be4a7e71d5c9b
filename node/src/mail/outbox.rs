//! The node's mail outbox: `outbox.redb` in its data directory. A message
//! is on disk before `enqueue` returns, leaves only when the relay took it,
//! and after a temporary failure waits for its next attempt (5 s, doubling
//! to 15 min); after 48 hours of failures, or a permanent refusal, it moves
//! to the dead letters (recipient, subject and last error, not the body),
//! kept for an operator to see in the log and metrics.
//! A restart resumes with every message still there.
//!
//! Delivery is at least once: a node that stops between the relay's "250"
//! and the removal sends that message again after its restart, with the
//! same `Message-ID`, so that the receiving side can tell.

use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use carillon_admin::mailer::OutgoingMail;

const MAIL: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_mail");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_dead");
const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");
const NEXT_ID: &str = "next_id";

/// The file name in the node's data directory.
pub const OUTBOX_FILE: &str = "outbox.redb";

/// Messages waiting at most; more are refused (a relay down for long, or a
/// flood of requests, does not grow the disk without end).
pub const MAX_PENDING: u64 = 10_000;

/// The first retry waits this long; each next one twice as long.
pub const FIRST_RETRY_MS: u64 = 5_000;
/// The longest wait between attempts.
pub const MAX_RETRY_MS: u64 = 15 * 60 * 1000;
/// A message that has failed for this long is given up.
pub const GIVE_UP_AFTER_MS: u64 = 48 * 60 * 60 * 1000;

/// A message in the outbox.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// Id in this outbox (also in the `Message-ID`).
    pub id: u64,
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Queued at, ms since the epoch.
    pub queued_at_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Not before.
    pub next_attempt_ms: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// When to try again after the `attempts`-th failure of a message queued
/// at `queued_at_ms`, at `now_ms`; `None`: give up.
pub fn next_attempt(queued_at_ms: u64, attempts: u32, now_ms: u64) -> Option<u64> {
    if now_ms.saturating_sub(queued_at_ms) >= GIVE_UP_AFTER_MS {
        return None;
    }
    let doubling = 1u64 << attempts.saturating_sub(1).min(20);
    Some(now_ms + FIRST_RETRY_MS.saturating_mul(doubling).min(MAX_RETRY_MS))
}

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
#[error("mail outbox: {0}")]
pub struct OutboxError(String);

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

fn encode(mail: &Queued) -> Result<Vec<u8>, OutboxError> {
    serde_json::to_vec(mail).map_err(err)
}

fn decode(bytes: &[u8]) -> Result<Queued, OutboxError> {
    serde_json::from_slice(bytes).map_err(err)
}

/// The outbox file.
#[derive(Debug)]
pub struct Outbox {
    db: Database,
}

impl Outbox {
    /// Opens (or creates) the outbox of the node whose data directory is `dir`.
    pub fn open_in(dir: &Path) -> Result<Self, OutboxError> {
        let path = dir.join(OUTBOX_FILE);
        let db = Database::create(&path)
            .map_err(|e| OutboxError(format!("open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(err)?;
        {
            txn.open_table(MAIL).map_err(err)?;
            txn.open_table(DEAD).map_err(err)?;
            txn.open_table(META).map_err(err)?;
        }
        txn.commit().map_err(err)?;
        Ok(Outbox { db })
    }

    /// Stores `mail` for delivery now; its id. Durable when it returns.
    pub fn enqueue(&self, mail: OutgoingMail, now_ms: u64) -> Result<u64, OutboxError> {
        let txn = self.db.begin_write().map_err(err)?;
        let id = {
            let pending = txn.open_table(MAIL).map_err(err)?.len().map_err(err)?;
            if pending >= MAX_PENDING {
                return Err(OutboxError(format!(
                    "the outbox holds {pending} messages, its limit: the relay is not taking mail"
                )));
            }
            let mut meta = txn.open_table(META).map_err(err)?;
            let id = meta.get(NEXT_ID).map_err(err)?.map_or(1, |v| v.value());
            meta.insert(NEXT_ID, id + 1).map_err(err)?;
            let queued = Queued {
                id,
                to: mail.to,
                subject: mail.subject,
                body: mail.body,
                queued_at_ms: now_ms,
                attempts: 0,
                next_attempt_ms: now_ms,
                last_error: None,
            };
            let mut table = txn.open_table(MAIL).map_err(err)?;
            table.insert(id, encode(&queued)?.as_slice()).map_err(err)?;
            id
        };
        txn.commit().map_err(err)?;
        Ok(id)
    }

    /// Up to `max` messages due at `now_ms`, the longest waiting first.
    pub fn due(&self, now_ms: u64, max: usize) -> Result<Vec<Queued>, OutboxError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(MAIL).map_err(err)?;
        let mut due = Vec::new();
        for item in table.iter().map_err(err)? {
            let (key, value) = item.map_err(err)?;
            // One record that does not decode must not stop every other.
            let mail = match decode(value.value()) {
                Ok(mail) => mail,
                Err(e) => {
                    tracing::error!(mail = key.value(), error = %e, "an outbox record does not decode; skipped");
                    continue;
                }
            };
            if mail.next_attempt_ms <= now_ms {
                due.push(mail);
            }
        }
        due.sort_by_key(|m| (m.next_attempt_ms, m.id));
        due.truncate(max);
        Ok(due)
    }

    /// The earliest next attempt of any message.
    pub fn next_due(&self) -> Result<Option<u64>, OutboxError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(MAIL).map_err(err)?;
        let mut next: Option<u64> = None;
        for item in table.iter().map_err(err)? {
            let (_, value) = item.map_err(err)?;
            if let Ok(mail) = decode(value.value()) {
                let at = mail.next_attempt_ms;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(next)
    }

    /// The relay took message `id`: it leaves the outbox.
    pub fn delivered(&self, id: u64) -> Result<(), OutboxError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(MAIL).map_err(err)?.remove(id).map_err(err)?;
        txn.commit().map_err(err)
    }

    /// Message `id` failed at `now_ms` (`permanent`: the relay refused it
    /// for good); whether it is given up (moved to the dead letters).
    pub fn failed(
        &self,
        id: u64,
        now_ms: u64,
        error: &str,
        permanent: bool,
    ) -> Result<bool, OutboxError> {
        let txn = self.db.begin_write().map_err(err)?;
        let dead = {
            let mut table = txn.open_table(MAIL).map_err(err)?;
            let Some(mut mail) = table
                .get(id)
                .map_err(err)?
                .map(|v| decode(v.value()))
                .transpose()?
            else {
                return Ok(false);
            };
            mail.attempts += 1;
            mail.last_error = Some(error.chars().take(500).collect());
            let next = (!permanent)
                .then(|| next_attempt(mail.queued_at_ms, mail.attempts, now_ms))
                .flatten();
            match next {
                Some(at) => {
                    mail.next_attempt_ms = at;
                    table.insert(id, encode(&mail)?.as_slice()).map_err(err)?;
                    false
                }
                None => {
                    table.remove(id).map_err(err)?;
                    // Kept for an operator, without the body (a reset link
                    // must not stay on disk).
                    mail.body = String::new();
                    let mut dead = txn.open_table(DEAD).map_err(err)?;
                    dead.insert(id, encode(&mail)?.as_slice()).map_err(err)?;
                    true
                }
            }
        };
        txn.commit().map_err(err)?;
        Ok(dead)
    }

    /// Messages waiting, and given up.
    pub fn counts(&self) -> Result<(u64, u64), OutboxError> {
        let txn = self.db.begin_read().map_err(err)?;
        let pending = txn.open_table(MAIL).map_err(err)?.len().map_err(err)?;
        let dead = txn.open_table(DEAD).map_err(err)?.len().map_err(err)?;
        Ok((pending, dead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.into(),
            subject: "s".into(),
            body: "b".into(),
        }
    }

    #[test]
    fn retries_double_up_to_the_cap_and_stop_after_two_days() {
        assert_eq!(next_attempt(0, 1, 1_000), Some(6_000));
        assert_eq!(next_attempt(0, 2, 1_000), Some(11_000));
        assert_eq!(next_attempt(0, 3, 1_000), Some(21_000));
        assert_eq!(next_attempt(0, 30, 1_000), Some(1_000 + MAX_RETRY_MS));
        assert_eq!(next_attempt(0, 5, GIVE_UP_AFTER_MS), None);
    }

    #[test]
    fn messages_survive_a_reopen_wait_after_failures_and_leave_once_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = {
            let outbox = Outbox::open_in(dir.path()).expect("open");
            let a = outbox.enqueue(mail("a@x.test"), 100).expect("a");
            let b = outbox.enqueue(mail("b@x.test"), 200).expect("b");
            assert!(!outbox
                .failed(a, 300, "451 try later", false)
                .expect("failed"));
            (a, b)
        };
        let outbox = Outbox::open_in(dir.path()).expect("reopened");
        let due: Vec<u64> = outbox
            .due(400, 10)
            .expect("due")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(due, vec![b], "a waits for its retry");
        assert_eq!(outbox.next_due().expect("next"), Some(200));
        let later: Vec<u64> = outbox
            .due(5_300, 10)
            .expect("due")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(later, vec![b, a]);
        outbox.delivered(b).expect("delivered");
        assert!(outbox
            .failed(a, 5_400, "550 no such user", true)
            .expect("failed"));
        assert_eq!(outbox.counts().expect("counts"), (0, 1));
        assert!(outbox.due(u64::MAX, 10).expect("due").is_empty());
        let c = outbox.enqueue(mail("c@x.test"), 6_000).expect("c");
        assert!(c > a, "ids are not reused");
    }
}
