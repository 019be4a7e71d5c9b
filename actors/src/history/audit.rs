//! Reading audit records: a time range, filters, cursor paging (the same
//! cursors as activity records). Pure: a store scans its keys newest first
//! and asks [`AuditQuery::matches`] of each record.

use super::query::{Cursor, DEFAULT_LIMIT};
use crate::ledger::AuditRecord;
use crate::model::agent_status::Author;

/// A read of audit records: `from_ms <= at_ms < to_ms`, the filters, the
/// page size and where to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Earliest, inclusive.
    pub from_ms: u64,
    /// Latest, exclusive.
    pub to_ms: u64,
    /// Only this action (`create_user`, ...).
    pub action: Option<String>,
    /// Only this actor.
    pub actor: Option<Author>,
    /// Only objects of this kind (`user`, `queue`, ...).
    pub object_kind: Option<String>,
    /// Only this object (with its kind).
    pub object_id: Option<String>,
    /// The most records on the page.
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            from_ms: 0,
            to_ms: u64::MAX,
            action: None,
            actor: None,
            object_kind: None,
            object_id: None,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

impl AuditQuery {
    /// Whether `record` belongs on the page (the time range is the store's).
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let object = record.object.as_ref();
        self.action.as_ref().is_none_or(|a| *a == record.action)
            && self.actor.as_ref().is_none_or(|a| *a == record.actor)
            && self
                .object_kind
                .as_ref()
                .is_none_or(|k| object.is_some_and(|o| o.kind == *k))
            && self
                .object_id
                .as_ref()
                .is_none_or(|i| object.is_some_and(|o| o.id.as_ref() == Some(i)))
    }

    /// The exclusive upper end of the scan (as [`super::ActivityQuery`]).
    pub fn upper_bound(&self) -> (u64, Option<&str>) {
        match &self.cursor {
            Some(c) if c.time_ms < self.to_ms => (c.time_ms, Some(c.id.as_str())),
            _ => (self.to_ms, None),
        }
    }
}

/// The id of an audit record in a store's keys: its sequence, zero-padded
/// so that keys sort in the order the records were made.
pub fn audit_key_id(record: &AuditRecord) -> String {
    match record.id.parse::<u64>() {
        Ok(seq) => format!("{seq:020}"),
        Err(_) => record.id.clone(),
    }
}

/// One page of audit records, newest first, and where the next starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditPage {
    /// The records.
    pub items: Vec<AuditRecord>,
    /// Where to go on (`None`: nothing more).
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AuditObject;
    use crate::model::UserId;

    #[test]
    fn filters_match_each_field() {
        let record = AuditRecord {
            id: "7".into(),
            at_ms: 10,
            actor: Author::User { user: UserId(3) },
            source: None,
            action: "update_queue".into(),
            object: Some(AuditObject {
                kind: "queue".into(),
                id: Some("12".into()),
            }),
            before: None,
            after: None,
        };
        let q = |f: fn(&mut AuditQuery)| {
            let mut query = AuditQuery::default();
            f(&mut query);
            query.matches(&record)
        };
        assert!(q(|_| {}));
        assert!(q(|x| x.action = Some("update_queue".into())));
        assert!(!q(|x| x.action = Some("delete_queue".into())));
        assert!(q(|x| x.actor = Some(Author::User { user: UserId(3) })));
        assert!(!q(|x| x.actor = Some(Author::User { user: UserId(4) })));
        assert!(q(|x| x.object_kind = Some("queue".into())));
        assert!(!q(|x| x.object_kind = Some("user".into())));
        assert!(q(|x| x.object_id = Some("12".into())));
        assert!(!q(|x| x.object_id = Some("13".into())));
        assert_eq!(audit_key_id(&record), "00000000000000000007");
    }
}
