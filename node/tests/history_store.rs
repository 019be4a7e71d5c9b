//! The history store on redb from outside (H1, C4): a record put twice is
//! one record, also from a second writer and after a restart; filters and
//! visibility; pages in the order of their keys that cover a range exactly
//! once; the drained outbox sequence survives a reopening and never goes
//! back. The checks take any `HistoryStore`, so that another backend can
//! run the same suite.

use std::collections::BTreeSet;

use carillon_actors::history::{
    ActivityQuery, Cursor, HistoryStore, OutcomeKind, Visibility, SCAN_BUDGET,
};
use carillon_actors::model::activity::{ActivityOutcome, ActivityRecord, Direction};
use carillon_actors::model::{QueueId, TenantId, UserId};
use carillon_node::history::{RedbHistory, HISTORY_FILE};

const T: TenantId = TenantId(2);

fn record(n: u64, started_at_ms: u64) -> ActivityRecord {
    let answered = n.is_multiple_of(3);
    ActivityRecord {
        interventions: Vec::new(),
        disposition: None,
        id: format!("c1-ab-{n}"),
        direction: if n.is_multiple_of(5) {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        queue: Some(QueueId(10 + n % 2)),
        agent: answered.then_some(UserId(20 + n % 4)),
        caller: format!("+42077700{n:04}"),
        called: "+420225000100".into(),
        started_at_ms,
        connected_at_ms: answered.then_some(started_at_ms + 1_000),
        ended_at_ms: started_at_ms + 5_000,
        closed_at_ms: started_at_ms + 6_000,
        waiting_ms: 1_000,
        interaction_ms: if answered { 4_000 } else { 0 },
        processing_ms: if answered { 5_000 } else { 0 },
        outcome: if answered {
            ActivityOutcome::Answered
        } else {
            ActivityOutcome::Abandoned
        },
        segments: Vec::new(),
        node: 1,
    }
}

/// 60 records, three per instant at 20 instants (ties broken by id).
fn sixty() -> Vec<ActivityRecord> {
    (0..60)
        .map(|n| record(n, 1_000_000 + (n / 3) * 1_000))
        .collect()
}

/// Every page of `query`, following `next`; panics on a loop.
fn all_pages(store: &dyn HistoryStore, mut query: ActivityQuery) -> Vec<Vec<ActivityRecord>> {
    let mut pages = Vec::new();
    for _ in 0..1_000 {
        let page = store.activities(T, &query).expect("page");
        assert!(page.items.len() <= query.limit);
        pages.push(page.items);
        match page.next {
            None => return pages,
            Some(next) => {
                // The cursor goes through its text, as a client's would.
                query.cursor = Some(Cursor::parse(&next.encode()).expect("cursor"));
            }
        }
    }
    panic!("paging did not end");
}

fn ids(records: &[ActivityRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

/// The records newest first, as the store's keys order them.
fn newest_first(mut records: Vec<ActivityRecord>) -> Vec<ActivityRecord> {
    records.sort_by(|a, b| (b.started_at_ms, &b.id).cmp(&(a.started_at_ms, &a.id)));
    records
}

fn puts_are_idempotent(store: &dyn HistoryStore) {
    let records = sixty();
    let first = store.put_activities(T, &records[..40], 40).expect("put");
    assert_eq!((first.written, first.duplicates), (40, 0));
    // The same outbox drained again (a restart, or a second writer), and
    // overlapping: only the new ones are written.
    let again = store.put_activities(T, &records, 60).expect("put");
    assert_eq!((again.written, again.duplicates), (20, 40));
    // A record with an id already stored is the first one, whatever else it says.
    let mut changed = records[7].clone();
    changed.caller = "someone else".into();
    changed.started_at_ms += 77;
    let report = store
        .put_activities(T, &[changed.clone(), changed], 60)
        .expect("put");
    assert_eq!((report.written, report.duplicates), (0, 2));
    assert_eq!(
        store.activity(T, &records[7].id).expect("get"),
        Some(records[7].clone())
    );
    // A duplicate inside one batch is written once.
    let fresh = record(1_000, 5);
    let report = store
        .put_activities(T, &[fresh.clone(), fresh.clone()], 61)
        .expect("put");
    assert_eq!((report.written, report.duplicates), (1, 1));
    let everything = all_pages(
        store,
        ActivityQuery {
            limit: 500,
            ..ActivityQuery::default()
        },
    )
    .concat();
    assert_eq!(everything.len(), 61, "one record per id");
    assert_eq!(store.activity(T, "nobody").expect("get"), None);
    assert_eq!(
        store.activity(TenantId(3), &records[0].id).expect("get"),
        None,
        "nothing crosses tenants"
    );
}

fn pages_cover_the_range_once(store: &dyn HistoryStore) {
    let records = sixty();
    store.put_activities(T, &records, 60).expect("put");
    let expected = newest_first(records.clone());
    for limit in [1, 2, 3, 7, 60, 500] {
        let pages = all_pages(
            store,
            ActivityQuery {
                limit,
                ..ActivityQuery::default()
            },
        );
        assert_eq!(
            ids(&pages.concat()),
            ids(&expected),
            "limit {limit}: every record once, newest first"
        );
        assert_eq!(
            pages.len(),
            60usize.div_ceil(limit),
            "limit {limit}: full pages, and no empty one at the end"
        );
    }
    // A time range: [from, to) on started_at_ms, paged through ties.
    let (from, to) = (1_003_000, 1_010_000);
    let pages = all_pages(
        store,
        ActivityQuery {
            from_ms: from,
            to_ms: to,
            limit: 4,
            ..ActivityQuery::default()
        },
    );
    let want: Vec<ActivityRecord> = expected
        .iter()
        .filter(|r| (from..to).contains(&r.started_at_ms))
        .cloned()
        .collect();
    assert_eq!(want.len(), 21);
    assert_eq!(ids(&pages.concat()), ids(&want));
    // An empty range, and a range past every record.
    for (from_ms, to_ms) in [(1_003_000, 1_003_000), (9_000_000, u64::MAX)] {
        let page = store
            .activities(
                T,
                &ActivityQuery {
                    from_ms,
                    to_ms,
                    ..ActivityQuery::default()
                },
            )
            .expect("page");
        assert!(page.items.is_empty() && page.next.is_none());
    }
    // Records written between two pages do not move the pages already read.
    let first = store
        .activities(
            T,
            &ActivityQuery {
                limit: 10,
                ..ActivityQuery::default()
            },
        )
        .expect("page");
    store
        .put_activities(T, &[record(500, 2_000_000)], 61)
        .expect("put");
    let rest = all_pages(
        store,
        ActivityQuery {
            limit: 10,
            cursor: first.next.clone(),
            ..ActivityQuery::default()
        },
    )
    .concat();
    assert_eq!(
        ids(&[first.items, rest].concat()),
        ids(&expected),
        "a newer record is on no later page"
    );
}

fn filters_and_visibility(store: &dyn HistoryStore) {
    let records = sixty();
    store.put_activities(T, &records, 60).expect("put");
    let check = |query: ActivityQuery, keep: &dyn Fn(&ActivityRecord) -> bool| {
        let want = newest_first(records.iter().filter(|r| keep(r)).cloned().collect());
        assert!(!want.is_empty(), "{query:?} keeps something");
        assert!(want.len() < records.len(), "{query:?} drops something");
        let got = all_pages(
            store,
            ActivityQuery {
                limit: 6,
                ..query.clone()
            },
        )
        .concat();
        assert_eq!(ids(&got), ids(&want), "{query:?}");
    };
    let q = ActivityQuery::default;
    check(
        ActivityQuery {
            queue: Some(QueueId(11)),
            ..q()
        },
        &|r| r.queue == Some(QueueId(11)),
    );
    check(
        ActivityQuery {
            agent: Some(UserId(21)),
            ..q()
        },
        &|r| r.agent == Some(UserId(21)),
    );
    check(
        ActivityQuery {
            direction: Some(Direction::Outbound),
            ..q()
        },
        &|r| r.direction == Direction::Outbound,
    );
    check(
        ActivityQuery {
            outcome: Some(OutcomeKind::Abandoned),
            queue: Some(QueueId(10)),
            ..q()
        },
        &|r| r.outcome == ActivityOutcome::Abandoned && r.queue == Some(QueueId(10)),
    );
    check(
        ActivityQuery {
            visibility: Visibility::own_only(UserId(20)),
            ..q()
        },
        &|r| r.agent == Some(UserId(20)),
    );
    check(
        ActivityQuery {
            visibility: Visibility {
                queues: Some(BTreeSet::from([QueueId(10)])),
                agents: Some(BTreeSet::from([UserId(22)])),
                own: Some(UserId(21)),
            },
            ..q()
        },
        &|r| {
            r.agent == Some(UserId(21))
                || (r.queue == Some(QueueId(10)) && r.agent.is_none_or(|a| a == UserId(22)))
        },
    );
}

fn a_page_examines_a_bounded_number_of_records(store: &dyn HistoryStore) {
    let many: Vec<ActivityRecord> = (0..SCAN_BUDGET as u64 + 10)
        .map(|n| record(n * 3 + 1, 10_000 + n))
        .collect();
    for chunk in many.chunks(2_000) {
        store.put_activities(T, chunk, 0).expect("put");
    }
    // Nothing matches: the first page stops at the budget, empty, and says where to go on.
    let query = ActivityQuery {
        agent: Some(UserId(99)),
        ..ActivityQuery::default()
    };
    let page = store.activities(T, &query).expect("page");
    assert!(page.items.is_empty());
    let next = page.next.expect("more to examine");
    let page = store
        .activities(
            T,
            &ActivityQuery {
                cursor: Some(next),
                ..query
            },
        )
        .expect("page");
    assert!(page.items.is_empty() && page.next.is_none(), "{page:?}");
}

fn with_store(check: fn(&dyn HistoryStore)) {
    let dir = tempfile::tempdir().expect("dir");
    let store = RedbHistory::open_in(dir.path()).expect("open");
    check(&store);
}

#[test]
fn redb_puts_are_idempotent() {
    with_store(puts_are_idempotent);
}

#[test]
fn redb_pages_cover_the_range_once() {
    with_store(pages_cover_the_range_once);
}

#[test]
fn redb_filters_and_visibility() {
    with_store(filters_and_visibility);
}

#[test]
fn redb_pages_are_bounded() {
    with_store(a_page_examines_a_bounded_number_of_records);
}

#[test]
fn redb_keeps_records_and_the_drained_seq_across_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let records = sixty();
    {
        let store = RedbHistory::open_in(dir.path()).expect("open");
        assert_eq!(store.drained_seq(T).expect("seq"), 0);
        store.put_activities(T, &records[..25], 25).expect("put");
        store
            .put_activities(TenantId(3), &records[..1], 4)
            .expect("put");
        // An older writer's late batch does not take the sequence back.
        store.put_activities(T, &records[..5], 5).expect("put");
        assert_eq!(store.drained_seq(T).expect("seq"), 25);
    }
    assert!(dir.path().join(HISTORY_FILE).exists());
    let store = RedbHistory::open_in(dir.path()).expect("reopen");
    assert_eq!(store.drained_seq(T).expect("seq"), 25, "resumes after 25");
    assert_eq!(store.drained_seq(TenantId(3)).expect("seq"), 4);
    // The restarted writer replays from its sequence; a replay from
    // further back (a lost acknowledgement) adds nothing either.
    let report = store.put_activities(T, &records[20..], 60).expect("put");
    assert_eq!((report.written, report.duplicates), (35, 5));
    assert_eq!(store.drained_seq(T).expect("seq"), 60);
    let all = all_pages(&store, ActivityQuery::default()).concat();
    assert_eq!(ids(&all), ids(&newest_first(records)));
}

#[test]
fn a_file_of_another_format_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join(HISTORY_FILE);
    {
        let db = redb::Database::create(&path).expect("db");
        let txn = db.begin_write().expect("txn");
        {
            let table: redb::TableDefinition<&str, u32> =
                redb::TableDefinition::new("history_meta");
            let mut meta = txn.open_table(table).expect("meta");
            meta.insert("history_format", 99).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let error = RedbHistory::open(&path).expect_err("refused");
    assert!(error.to_string().contains("history format 99"), "{error}");
}

fn audit_record(seq: u64, at_ms: u64) -> carillon_actors::ledger::AuditRecord {
    use carillon_actors::model::agent_status::Author;
    carillon_actors::ledger::AuditRecord {
        id: seq.to_string(),
        at_ms,
        actor: Author::User {
            user: UserId(seq % 3),
        },
        source: Some("192.0.2.1".into()),
        action: if seq.is_multiple_of(2) {
            "update_queue".into()
        } else {
            "create_user".into()
        },
        object: None,
        before: None,
        after: None,
    }
}

/// Audit records: once per id whoever puts them, pages newest first that
/// cover the log once (ten records share each instant), filters, and the
/// retention deleting only what is older, in bounded steps.
fn audit_records(store: &dyn HistoryStore) {
    use carillon_actors::history::AuditQuery;
    let records: Vec<_> = (1..=40)
        .map(|s| audit_record(s, 5_000 + (s / 10) * 1_000))
        .collect();
    let first = store.put_audit(T, &records[..30], 30).expect("put");
    let again = store.put_audit(T, &records, 40).expect("put");
    assert_eq!(
        (first.written, again.written, again.duplicates),
        (30, 10, 30)
    );
    assert_eq!(store.audit_drained_seq(T).expect("seq"), 40);
    assert_eq!(store.audit_drained_seq(TenantId(9)).expect("seq"), 0);
    let mut query = AuditQuery {
        limit: 7,
        ..AuditQuery::default()
    };
    let mut seen = Vec::new();
    for _ in 0..100 {
        let page = store.audit(T, &query).expect("page");
        seen.extend(page.items.iter().map(|r| r.id.parse::<u64>().expect("seq")));
        match page.next {
            Some(next) => query.cursor = Some(Cursor::parse(&next.encode()).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (1..=40).rev().collect::<Vec<u64>>(),
        "newest first, each once"
    );
    let updates = store
        .audit(
            T,
            &AuditQuery {
                action: Some("update_queue".into()),
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .expect("page");
    assert_eq!(updates.items.len(), 20);
    // Retention: records before 7,000 ms (seqs 1-19) go, in steps of 5.
    let mut deleted = 0;
    for _ in 0..10 {
        let n = store.expire_audit(T, 7_000, 5).expect("expire");
        assert!(n <= 5);
        deleted += n;
        if n < 5 {
            break;
        }
    }
    assert_eq!(deleted, 19);
    let left = store
        .audit(
            T,
            &AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .expect("page");
    assert_eq!(left.items.len(), 21);
    assert!(left.items.iter().all(|r| r.at_ms >= 7_000));
    let again = store.put_audit(T, &records[..5], 40).expect("put");
    assert_eq!(
        again.written, 5,
        "an expired record is new to the store if put again"
    );
}

#[test]
fn redb_audit_records() {
    with_store(audit_records);
}
