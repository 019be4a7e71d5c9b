//! Property tests of the ledger against simple models: seats in use never
//! exceed the pool under any sequence of licence commands (L6); waiting
//! callers keep priority-then-FIFO order and are assigned at most once (Q3);
//! a snapshot restores an equal ledger.

mod common;

use carillon_actors::ledger::{Command, Ledger};
use carillon_actors::model::licence::{LicenceKind, LicenceRank};
use carillon_actors::model::{RefusalCode, UserId};
use carillon_consensus::ReplicatedState;
use common::{Fixture, NOW_MS};
use proptest::prelude::*;

const KINDS: [LicenceKind; 3] = [
    LicenceKind::Voice,
    LicenceKind::Chat,
    LicenceKind::UcContactCard,
];

#[derive(Debug, Clone)]
enum LicenceOp {
    Buy(usize, u32),
    Withdraw(usize, u32),
    Assign(usize, usize),
    Release(usize, usize),
    HandOver(usize, usize),
    Ranks(Vec<(usize, u32)>),
}

fn licence_op() -> impl Strategy<Value = LicenceOp> {
    prop_oneof![
        (0..3usize, 1..4u32).prop_map(|(k, n)| LicenceOp::Buy(k, n)),
        (0..3usize, 1..4u32).prop_map(|(k, n)| LicenceOp::Withdraw(k, n)),
        (0..5usize, 0..3usize).prop_map(|(u, k)| LicenceOp::Assign(u, k)),
        (0..5usize, 0..3usize).prop_map(|(u, k)| LicenceOp::Release(u, k)),
        (0..5usize, 0..5usize).prop_map(|(a, b)| LicenceOp::HandOver(a, b)),
        prop::collection::vec((0..3usize, 1..4u32), 0..3).prop_map(LicenceOp::Ranks),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn seats_in_use_never_exceed_the_pool(ops in prop::collection::vec(licence_op(), 1..60)) {
        let mut f = Fixture::new();
        // Agents need channel seats, the UC user needs a contact-card seat.
        let users: Vec<UserId> = f.agents.iter().copied().chain([f.uc_user, f.admin]).collect();
        for op in ops {
            let tenant = f.tenant;
            let command = match op {
                LicenceOp::Buy(k, n) => Command::BuyLicences { tenant, kind: KINDS[k], count: n },
                LicenceOp::Withdraw(k, n) => Command::WithdrawLicences { tenant, kind: KINDS[k], count: n },
                LicenceOp::Assign(u, k) => Command::AssignLicence { tenant, user: users[u], kind: KINDS[k] },
                LicenceOp::Release(u, k) => Command::ReleaseLicence { tenant, user: users[u], kind: KINDS[k] },
                LicenceOp::HandOver(a, b) => Command::HandOverLicences { tenant, from: users[a], to: users[b] },
                LicenceOp::Ranks(r) => Command::SetLicenceRanks {
                    tenant,
                    ranks: r.into_iter().map(|(k, rank)| LicenceRank { kind: KINDS[k], rank }).collect(),
                },
            };
            let before = f.ledger.clone();
            let result = f.ledger.execute(command, NOW_MS);
            if result.is_err() {
                prop_assert_eq!(&f.ledger, &before, "a refused command changes nothing");
            }
            f.ledger.check_invariants();
            let report = f.ledger.tenant(f.tenant).expect("tenant").licence_report(NOW_MS);
            for line in &report.kinds {
                prop_assert!(line.in_use <= line.pool, "{:?}: {} in use > pool {}", line.kind, line.in_use, line.pool);
            }
            for sub in &report.substitutions {
                prop_assert_ne!(sub.needed, sub.used);
                let free_of_need = report.kinds.iter().find(|k| k.kind == sub.needed).map_or(0, |k| k.free);
                prop_assert_eq!(free_of_need, 0, "a substituted need moves back as soon as its own kind has a free seat");
            }
        }
    }

    #[test]
    fn waiting_callers_keep_priority_then_fifo_order_and_are_assigned_once(
        ops in prop::collection::vec((0..4u8, 0..12usize, 0..=100u32), 1..80)
    ) {
        let mut f = Fixture::new();
        // The model: (entry, priority, arrival) of waiting callers; assigned entries.
        let mut waiting: Vec<(String, u32, u64)> = Vec::new();
        let mut finished: Vec<String> = Vec::new();
        let mut arrival = 0u64;
        for (op, n, priority) in ops {
            let entry = format!("call-{n}");
            let tenant = f.tenant;
            let result = match op {
                0 => f.run(Command::Enqueue { tenant, queue: f.queue, entry: entry.clone(), priority: Some(priority) }),
                1 => f.run(Command::ChangePriority { tenant, entry: entry.clone(), priority }),
                2 => f.run(Command::AssignEntry { tenant, entry: entry.clone(), user: f.agents[0] }),
                _ => f.run(Command::AbandonEntry { tenant, entry: entry.clone() }),
            };
            let position = waiting.iter().position(|(e, _, _)| *e == entry);
            let known = position.is_some() || finished.contains(&entry);
            match (op, position) {
                (0, _) if known => prop_assert_eq!(result, Err(RefusalCode::EntryNotUnique)),
                (0, _) => {
                    prop_assert!(result.is_ok());
                    arrival += 1;
                    waiting.push((entry, priority, arrival));
                }
                (_, Some(i)) => {
                    prop_assert!(result.is_ok(), "{:?}", result);
                    if op == 1 {
                        waiting[i].1 = priority;
                    } else {
                        waiting.remove(i);
                        finished.push(entry);
                    }
                }
                (2, None) if finished.contains(&entry) => {
                    prop_assert!(matches!(result, Err(RefusalCode::EntryAlreadyAssigned | RefusalCode::EntryNotWaiting)));
                }
                (_, None) => prop_assert!(result.is_err()),
            }
            let mut expected = waiting.clone();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
            let actual: Vec<String> = f.ledger.tenant(f.tenant).expect("tenant").waiting(f.queue).iter().map(|e| e.entry.clone()).collect();
            let expected: Vec<String> = expected.into_iter().map(|(e, _, _)| e).collect();
            prop_assert_eq!(actual, expected);
            f.ledger.check_invariants();
        }
    }
}

#[test]
fn a_snapshot_restores_an_equal_ledger() {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    f.run(Command::BuyLicences {
        tenant,
        kind: LicenceKind::Voice,
        count: 2,
    })
    .expect("buy");
    f.run(Command::AssignLicence {
        tenant,
        user: f.agents[0],
        kind: LicenceKind::Voice,
    })
    .expect("assign");
    f.run(Command::BuyLicences {
        tenant,
        kind: LicenceKind::UcContactCard,
        count: 0,
    })
    .expect_err("zero");
    for i in 0..20 {
        f.run(Command::Enqueue {
            tenant,
            queue: f.queue,
            entry: format!("c{i}"),
            priority: Some(i % 3),
        })
        .expect("enqueue");
    }
    f.run(Command::AssignEntry {
        tenant,
        entry: "c3".into(),
        user: f.agents[1],
    })
    .expect("assign entry");
    let bytes = f.ledger.snapshot().expect("snapshot");
    let restored = Ledger::restore(&bytes).expect("restore");
    assert_eq!(restored, f.ledger);
    assert_eq!(
        restored
            .tenant(tenant)
            .expect("tenant")
            .info()
            .fingerprint_salt_hex,
        common::hex(&common::TENANT_SALT)
    );
}
