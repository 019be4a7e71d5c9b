//! The licence ledger (L1-L6) under random sequences of purchases,
//! withdrawals, seat assignments and releases, hand-overs, rank changes,
//! role changes and device packages, over eight users of mixed roles.
//!
//! After every step: seats in use never exceed the pool of any kind and
//! counted devices never exceed packages x 10 (L1, L6); `check_invariants`
//! holds; a refused command leaves the ledger equal to before. A model of
//! substitution (L5) checks every assignment against the report before it:
//! a need is served by its own kind when it has a free seat, otherwise by the
//! free kind of the lowest rank strictly above it, otherwise refused; no
//! other step creates a substitution; and no substitution of a need `k`
//! remains while `k` has a free seat.

mod common;

use carillon_actors::ledger::{Command, Outcome};
use carillon_actors::model::licence::{LicenceKind, LicenceRank, LicenceReport};
use carillon_actors::model::user::{Role, UserKind};
use carillon_actors::model::{DeviceId, RefusalCode, UserId};
use common::{mobile, user_spec, Fixture, NOW_MS};
use proptest::prelude::*;
use std::collections::BTreeMap;

const KINDS: [LicenceKind; 3] = [
    LicenceKind::Voice,
    LicenceKind::Chat,
    LicenceKind::UcContactCard,
];

/// Rank tables a step may set (L5): the default, a chain of three, the
/// default reversed, equal ranks (no substitution), none, and a table with a
/// kind twice (refused).
const RANK_TABLES: [&[(LicenceKind, u32)]; 6] = [
    &[(LicenceKind::UcContactCard, 1), (LicenceKind::Voice, 2)],
    &[
        (LicenceKind::UcContactCard, 1),
        (LicenceKind::Voice, 2),
        (LicenceKind::Chat, 3),
    ],
    &[(LicenceKind::Voice, 1), (LicenceKind::UcContactCard, 2)],
    &[
        (LicenceKind::UcContactCard, 1),
        (LicenceKind::Voice, 1),
        (LicenceKind::Chat, 1),
    ],
    &[],
    &[(LicenceKind::Voice, 1), (LicenceKind::Voice, 2)],
];

/// Role sets a user may be switched to.
const ROLE_SETS: [&[Role]; 4] = [
    &[Role::Agent],
    &[Role::PbxUser, Role::UcUser],
    &[Role::Agent, Role::PbxUser, Role::UcUser],
    &[Role::Supervisor],
];

#[derive(Debug, Clone)]
enum Op {
    Buy(usize, u32),
    Withdraw(usize, u32),
    Assign(usize, usize),
    Release(usize, usize),
    HandOver(usize, usize),
    Ranks(usize),
    Roles(usize, usize),
    Leave(usize),
    BuyPackages(u32),
    WithdrawPackages(u32),
    AddDevice,
    RemoveDevice(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..8usize;
    let kind = 0..KINDS.len();
    prop_oneof![
        3 => (kind.clone(), 1..3u32).prop_map(|(k, n)| Op::Buy(k, n)),
        2 => (kind.clone(), 1..3u32).prop_map(|(k, n)| Op::Withdraw(k, n)),
        6 => (user.clone(), kind.clone()).prop_map(|(u, k)| Op::Assign(u, k)),
        2 => (user.clone(), kind).prop_map(|(u, k)| Op::Release(u, k)),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::HandOver(a, b)),
        1 => (0..RANK_TABLES.len()).prop_map(Op::Ranks),
        1 => (user.clone(), 0..ROLE_SETS.len()).prop_map(|(u, r)| Op::Roles(u, r)),
        1 => user.prop_map(Op::Leave),
        1 => (1..3u32).prop_map(Op::BuyPackages),
        1 => (1..3u32).prop_map(Op::WithdrawPackages),
        2 => Just(Op::AddDevice),
        1 => (0..16usize).prop_map(Op::RemoveDevice),
    ]
}

/// Eight users of mixed roles: two agents, two UC users, one both, and a
/// supervisor, an administrator and a back-office user, who need no seat.
fn setup() -> (Fixture, Vec<UserId>) {
    let mut f = Fixture::new();
    let mut add = |roles: &[Role], login: &str| {
        let spec = user_spec(UserKind::ContactCentre, roles, login);
        f.add_user(spec, None, None).expect("user")
    };
    let hybrid = add(&[Role::Agent, Role::PbxUser, Role::UcUser], "hybrid");
    let second_uc = add(&[Role::PbxUser, Role::UcUser], "uc2");
    let users = vec![
        f.agents[0],
        f.agents[1],
        f.uc_user,
        second_uc,
        hybrid,
        f.supervisor,
        f.admin,
        f.back_office,
    ];
    (f, users)
}

fn line(report: &LicenceReport, kind: LicenceKind) -> (u32, u32, u32) {
    let l = report.kinds.iter().find(|l| l.kind == kind).expect("line");
    (l.in_use, l.pool, l.free)
}

fn free(report: &LicenceReport, kind: LicenceKind) -> u32 {
    line(report, kind).2
}

fn rank(ranks: &[LicenceRank], kind: LicenceKind) -> Option<u32> {
    ranks.iter().find(|r| r.kind == kind).map(|r| r.rank)
}

/// What the model says should serve `needed`, from the report before.
fn model_serving(before: &LicenceReport, needed: LicenceKind) -> Option<LicenceKind> {
    if free(before, needed) > 0 {
        return Some(needed);
    }
    let floor = rank(&before.ranks, needed)?;
    let candidates = before.ranks.iter().filter(|r| r.rank > floor);
    let lowest = candidates
        .filter(|r| free(before, r.kind) > 0)
        .map(|r| r.rank)
        .min()?;
    // Several kinds may share the lowest rank; any free one of them is fine.
    let chosen = before
        .ranks
        .iter()
        .find(|r| r.rank == lowest && free(before, r.kind) > 0)?;
    Some(chosen.kind)
}

fn substitution_pairs(report: &LicenceReport) -> BTreeMap<(LicenceKind, LicenceKind), usize> {
    let mut pairs = BTreeMap::new();
    for s in &report.substitutions {
        *pairs.entry((s.needed, s.used)).or_default() += 1;
    }
    pairs
}

fn total_in_use(report: &LicenceReport) -> u32 {
    report.kinds.iter().map(|l| l.in_use).sum()
}

/// Checks one applied step against the model.
fn check_step(
    op: &Op,
    result: &Result<Outcome, RefusalCode>,
    before: &LicenceReport,
    after: &LicenceReport,
) -> Result<(), TestCaseError> {
    for kind in KINDS {
        let (in_use, pool, _) = line(after, kind);
        prop_assert!(in_use <= pool, "L6: {kind:?} {in_use} in use > pool {pool}");
    }
    prop_assert!(
        after.devices_in_use <= after.devices_allowed,
        "L1: {} devices > {} allowed",
        after.devices_in_use,
        after.devices_allowed
    );
    for s in &after.substitutions {
        prop_assert_ne!(s.needed, s.used);
        prop_assert_eq!(
            free(after, s.needed),
            0,
            "L5: {:?} of user {} is served by {:?} although {:?} has a free seat",
            s.needed,
            s.user,
            s.used,
            s.needed
        );
    }
    let mut created = None;
    if let Op::Assign(_, k) = op {
        let needed = KINDS[*k];
        let expected = model_serving(before, needed);
        match result {
            Ok(Outcome::LicenceAssigned { used, substituted }) => {
                prop_assert_eq!(*substituted, *used != needed);
                prop_assert!(
                    expected.is_some(),
                    "assigned although the model has no seat"
                );
                if *substituted {
                    let (r_need, r_used) =
                        (rank(&before.ranks, needed), rank(&before.ranks, *used));
                    prop_assert!(
                        r_need.is_some() && r_used > r_need,
                        "L5: {needed:?} (rank {r_need:?}) served by {used:?} (rank {r_used:?})"
                    );
                    prop_assert_eq!(
                        rank(&before.ranks, *used),
                        expected.and_then(|e| rank(&before.ranks, e)),
                        "the lowest free rank above the need serves it"
                    );
                    created = Some((needed, *used));
                } else {
                    prop_assert_eq!(expected, Some(needed));
                }
                prop_assert_eq!(total_in_use(after), total_in_use(before) + 1);
            }
            Err(RefusalCode::LicencePoolExhausted) => {
                prop_assert_eq!(expected, None, "refused although a seat was free");
            }
            Err(
                RefusalCode::LicenceNotNeeded
                | RefusalCode::LicenceAlreadyAssigned
                | RefusalCode::NotFound,
            ) => {}
            other => prop_assert!(false, "unexpected assignment result {other:?}"),
        }
    }
    // Only an assignment creates a substitution; every other step keeps or removes them.
    let (pairs_before, pairs_after) = (substitution_pairs(before), substitution_pairs(after));
    for (pair, count) in &pairs_after {
        let allowed =
            pairs_before.get(pair).copied().unwrap_or(0) + usize::from(created == Some(*pair));
        prop_assert!(*count <= allowed, "{op:?} created substitution {pair:?}");
    }
    match (op, result) {
        (Op::Release(..), Ok(_)) => prop_assert_eq!(total_in_use(after) + 1, total_in_use(before)),
        (Op::HandOver(..), Ok(Outcome::HandedOver { returned, .. })) => {
            prop_assert_eq!(
                total_in_use(after) as usize + returned.len(),
                total_in_use(before) as usize
            );
        }
        (Op::Roles(..) | Op::Leave(..), _) => {
            prop_assert!(total_in_use(after) <= total_in_use(before))
        }
        (Op::Assign(..), _) => {}
        _ => prop_assert_eq!(
            total_in_use(after),
            total_in_use(before),
            "{:?} moves no seat",
            op
        ),
    }
    Ok(())
}

proptest! {
    // 256, not 64: at 64 cases the substitution bugs this test found (seats
    // freed by a role change or a departure, chains of three ranks) were hit
    // in about one run in three; a case takes about 3 ms.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seats_never_exceed_the_pool_and_substitution_follows_the_ranks(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        let (mut f, users) = setup();
        let tenant = f.tenant;
        let mut devices: Vec<DeviceId> = vec![f.phone];
        let mut next_number = 0u32;
        for op in &ops {
            let command = match op.clone() {
                Op::Buy(k, count) => Command::BuyLicences { tenant, kind: KINDS[k], count },
                Op::Withdraw(k, count) => Command::WithdrawLicences { tenant, kind: KINDS[k], count },
                Op::Assign(u, k) => Command::AssignLicence { tenant, user: users[u], kind: KINDS[k] },
                Op::Release(u, k) => Command::ReleaseLicence { tenant, user: users[u], kind: KINDS[k] },
                Op::HandOver(a, b) => Command::HandOverLicences { tenant, from: users[a], to: users[b] },
                Op::Ranks(r) => Command::SetLicenceRanks {
                    tenant,
                    ranks: RANK_TABLES[r].iter().map(|&(kind, rank)| LicenceRank { kind, rank }).collect(),
                },
                Op::Roles(u, r) => {
                    let mut spec = match f.state().find_user(users[u]) {
                        Some(user) => user.spec.clone(),
                        None => common::agent_spec("gone"),
                    };
                    spec.roles = ROLE_SETS[r].iter().copied().collect();
                    Command::UpdateUser { tenant, user: users[u], spec }
                }
                Op::Leave(u) => Command::DeleteUser { tenant, user: users[u] },
                Op::BuyPackages(count) => Command::BuyDevicePackages { tenant, count },
                Op::WithdrawPackages(count) => Command::WithdrawDevicePackages { tenant, count },
                Op::AddDevice => {
                    next_number += 1;
                    let spec = mobile(&format!("mobile {next_number}"), &format!("+42077{next_number:07}"));
                    Command::CreateDevice { tenant, spec, sip_secret: None }
                }
                Op::RemoveDevice(i) => Command::DeleteDevice { tenant, device: devices.get(i).copied().unwrap_or(DeviceId(0)) },
            };
            let before_ledger = f.ledger.clone();
            let before = f.state().licence_report(NOW_MS);
            let result = f.run(command);
            f.ledger.check_invariants();
            if result.is_err() {
                prop_assert_eq!(&f.ledger, &before_ledger, "refused {:?} changed the ledger", op);
            }
            match (op, &result) {
                (Op::AddDevice, Ok(Outcome::Created { id })) => devices.push(DeviceId(*id)),
                (Op::RemoveDevice(i), Ok(_)) => { devices.remove(*i); }
                _ => {}
            }
            let after = f.state().licence_report(NOW_MS);
            check_step(op, &result, &before, &after)?;
        }
    }
}

fn assign(f: &mut Fixture, user: UserId, kind: LicenceKind) -> Result<Outcome, RefusalCode> {
    f.run(Command::AssignLicence {
        tenant: f.tenant,
        user,
        kind,
    })
}

fn buy(f: &mut Fixture, kind: LicenceKind, count: u32) {
    f.ok(Command::BuyLicences {
        tenant: f.tenant,
        kind,
        count,
    });
}

fn substituted() -> Outcome {
    Outcome::LicenceAssigned {
        used: LicenceKind::Voice,
        substituted: true,
    }
}

#[test]
fn a_substitution_is_reported_and_moves_back_when_its_kind_is_bought() {
    let mut f = Fixture::new();
    buy(&mut f, LicenceKind::Voice, 2);
    let uc = f.uc_user;
    assert_eq!(
        assign(&mut f, uc, LicenceKind::UcContactCard),
        Ok(substituted())
    );
    let report = f.state().licence_report(NOW_MS);
    assert_eq!(report.substitutions.len(), 1, "L5: visible in the report");
    assert_eq!(report.substitutions[0].user, f.uc_user);
    assert_eq!(f.seats(LicenceKind::Voice), (1, 2));
    buy(&mut f, LicenceKind::UcContactCard, 1);
    assert!(f.state().licence_report(NOW_MS).substitutions.is_empty());
    assert_eq!(
        f.seats(LicenceKind::Voice),
        (0, 2),
        "the voice seat is free again"
    );
    assert_eq!(f.seats(LicenceKind::UcContactCard), (1, 1));
}

/// L4 + L5: a user who leaves returns its seats to the pool, and a need
/// served by a higher rank moves back to the freed seat.
#[test]
fn a_user_who_leaves_frees_seats_for_substituted_needs() {
    for leave in ["delete", "lose the role"] {
        let mut f = Fixture::new();
        let (tenant, uc) = (f.tenant, f.uc_user);
        let second_uc = f
            .add_user(
                user_spec(
                    UserKind::ContactCentre,
                    &[Role::PbxUser, Role::UcUser],
                    "uc2",
                ),
                None,
                None,
            )
            .expect("uc2");
        buy(&mut f, LicenceKind::UcContactCard, 1);
        buy(&mut f, LicenceKind::Voice, 1);
        assert!(assign(&mut f, uc, LicenceKind::UcContactCard).is_ok());
        assert_eq!(
            assign(&mut f, second_uc, LicenceKind::UcContactCard),
            Ok(substituted())
        );
        if leave == "delete" {
            f.ok(Command::DeleteUser { tenant, user: uc });
        } else {
            let spec = user_spec(UserKind::ContactCentre, &[Role::PbxUser], "uc");
            f.ok(Command::UpdateUser {
                tenant,
                user: uc,
                spec,
            });
        }
        let report = f.state().licence_report(NOW_MS);
        assert!(
            report.substitutions.is_empty(),
            "{leave}: {:?}",
            report.substitutions
        );
        assert_eq!(
            f.seats(LicenceKind::Voice),
            (0, 1),
            "{leave}: the voice seat is free"
        );
        let agent = f.agents[0];
        assert!(assign(&mut f, agent, LicenceKind::Voice).is_ok(), "{leave}");
    }
}

/// L5 with three ranks: a seat freed at the bottom lets every substitution
/// above it move down one step.
#[test]
fn freed_seats_move_substitutions_down_a_chain_of_ranks() {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    let ranks = vec![
        LicenceRank {
            kind: LicenceKind::UcContactCard,
            rank: 1,
        },
        LicenceRank {
            kind: LicenceKind::Voice,
            rank: 2,
        },
        LicenceRank {
            kind: LicenceKind::Chat,
            rank: 3,
        },
    ];
    f.ok(Command::SetLicenceRanks { tenant, ranks });
    buy(&mut f, LicenceKind::Voice, 1);
    buy(&mut f, LicenceKind::Chat, 1);
    // The UC need takes the voice seat, the voice need the chat seat.
    let uc = f.uc_user;
    assert_eq!(
        assign(&mut f, uc, LicenceKind::UcContactCard),
        Ok(substituted())
    );
    let chat = Outcome::LicenceAssigned {
        used: LicenceKind::Chat,
        substituted: true,
    };
    let agent = f.agents[0];
    assert_eq!(assign(&mut f, agent, LicenceKind::Voice), Ok(chat));
    buy(&mut f, LicenceKind::UcContactCard, 1);
    let report = f.state().licence_report(NOW_MS);
    assert!(
        report.substitutions.is_empty(),
        "{:?}",
        report.substitutions
    );
    assert_eq!(
        f.seats(LicenceKind::Chat),
        (0, 1),
        "the chat seat is free again"
    );
}

/// L3: a withdrawal shrinks the pool at once and stays on the bill until
/// the end of its month.
#[test]
fn a_withdrawal_takes_seats_at_once_and_leaves_the_bill_at_the_end_of_the_month() {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    buy(&mut f, LicenceKind::Chat, 3);
    f.ok(Command::WithdrawLicences {
        tenant,
        kind: LicenceKind::Chat,
        count: 2,
    });
    assert_eq!(f.seats(LicenceKind::Chat), (0, 1));
    let month_end = 1_796_083_200_000; // 2026-12-01T00:00:00Z
    let pending = |f: &Fixture, now_ms| {
        let report = f.state().licence_report(now_ms);
        let l = report
            .kinds
            .iter()
            .find(|l| l.kind == LicenceKind::Chat)
            .expect("line");
        (l.purchased, l.withdrawn, l.withdrawn_pending)
    };
    assert_eq!(pending(&f, NOW_MS), (3, 2, 2));
    assert_eq!(pending(&f, month_end - 1), (3, 2, 2));
    assert_eq!(pending(&f, month_end), (3, 2, 0));
}

/// L4: a hand-over moves the seats the new user needs and returns the rest.
#[test]
fn a_hand_over_moves_needed_seats_and_returns_the_rest() {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    buy(&mut f, LicenceKind::Voice, 2);
    buy(&mut f, LicenceKind::Chat, 1);
    let (from, to) = (f.agents[0], f.agents[1]);
    assert!(assign(&mut f, from, LicenceKind::Voice).is_ok());
    assert!(assign(&mut f, from, LicenceKind::Chat).is_ok());
    assert!(assign(&mut f, to, LicenceKind::Voice).is_ok());
    let outcome = f.ok(Command::HandOverLicences { tenant, from, to });
    assert_eq!(
        outcome,
        Outcome::HandedOver {
            moved: vec![LicenceKind::Chat],
            returned: vec![LicenceKind::Voice]
        }
    );
    assert_eq!(f.seats(LicenceKind::Voice), (1, 2));
    assert_eq!(f.seats(LicenceKind::Chat), (1, 1));
    assert!(!f
        .state()
        .licence_report(NOW_MS)
        .substitutions
        .iter()
        .any(|s| s.user == from));
    assert_eq!(
        assign(&mut f, to, LicenceKind::Chat),
        Err(RefusalCode::LicenceAlreadyAssigned)
    );
}

/// L1: packages x 10 is computed without overflow however many packages a
/// tenant buys (an overflow would panic the replicated state machine).
#[test]
fn buying_packages_without_bound_never_overflows_the_device_limit() {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    for _ in 0..4_300 {
        f.ok(Command::BuyDevicePackages {
            tenant,
            count: 100_000,
        });
    }
    let report = f.state().licence_report(NOW_MS);
    assert_eq!(report.device_packages, 430_000_001);
    assert_eq!(report.devices_allowed, u32::MAX, "saturates");
    f.ok(Command::WithdrawDevicePackages {
        tenant,
        count: 100_000,
    });
    let spec = mobile("one more", "+420777000001");
    f.ok(Command::CreateDevice {
        tenant,
        spec,
        sip_secret: None,
    });
    f.ledger.check_invariants();
}
