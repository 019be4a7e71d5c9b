//! The licence ledger of one tenant (L1-L6): purchases, withdrawals, seat
//! assignments with ranked substitution, hand-over and device packages.
//!
//! Invariant (L6): for every kind, seats in use <= pool = purchased -
//! withdrawn. Withdrawals reserve their seats when accepted, so the
//! invariant holds at every instant, before and after a withdrawal takes
//! effect. Device packages: counted devices <= packages x 10 (L1).

use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::licence::{
    default_ranks, end_of_billing_month_ms, KindReport, LicenceKind, LicenceRank, LicenceReport,
    Substitution, Withdrawal, DEVICES_PER_PACKAGE,
};
use crate::model::refusal::{ensure, Checked};
use crate::model::user::{Role, User, UserKind};
use crate::model::{RefusalCode, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The largest purchase or withdrawal in one command.
pub const MAX_COUNT_PER_COMMAND: u32 = 100_000;

/// A tenant's licences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licences {
    purchased: BTreeMap<LicenceKind, u32>,
    withdrawals: Vec<Withdrawal>,
    /// user -> needed kind -> kind that serves it.
    assignments: BTreeMap<UserId, BTreeMap<LicenceKind, LicenceKind>>,
    ranks: Vec<LicenceRank>,
    device_packages: u32,
}

impl Default for Licences {
    fn default() -> Self {
        Self {
            purchased: BTreeMap::new(),
            withdrawals: Vec::new(),
            assignments: BTreeMap::new(),
            ranks: default_ranks(),
            device_packages: 0,
        }
    }
}

/// Whether `user` needs a seat of `kind` at all (L2): channel seats are for
/// agents, contact-card seats for UC users; administrators, supervisors and
/// back-office users are free, and a deactivated user needs no seat.
pub fn needs_licence(user: &User, kind: LicenceKind) -> bool {
    if user.spec.kind == UserKind::BackOffice || !user.spec.active {
        return false;
    }
    match kind {
        LicenceKind::UcContactCard => user.spec.roles.contains(&Role::UcUser),
        _ => user.spec.roles.contains(&Role::Agent),
    }
}

impl Licences {
    /// Seats of `kind` that can be in use.
    pub fn pool(&self, kind: LicenceKind) -> u32 {
        let bought = self.purchased.get(&kind).copied().unwrap_or(0);
        bought.saturating_sub(self.withdrawn(kind))
    }

    fn withdrawn(&self, kind: LicenceKind) -> u32 {
        self.withdrawals
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| w.count)
            .sum()
    }

    /// Seats of `kind` in use.
    pub fn in_use(&self, kind: LicenceKind) -> u32 {
        let count = self
            .assignments
            .values()
            .flat_map(|m| m.values())
            .filter(|used| **used == kind)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Free seats of `kind`.
    pub fn free(&self, kind: LicenceKind) -> u32 {
        self.pool(kind).saturating_sub(self.in_use(kind))
    }

    /// Device packages bought, net of withdrawals.
    pub fn device_packages(&self) -> u32 {
        self.device_packages
    }

    /// Every user's seats: needed kind -> serving kind.
    pub fn assignments(&self) -> &BTreeMap<UserId, BTreeMap<LicenceKind, LicenceKind>> {
        &self.assignments
    }

    fn rank(&self, kind: LicenceKind) -> Option<u32> {
        self.ranks.iter().find(|r| r.kind == kind).map(|r| r.rank)
    }

    /// The kind that would serve a need now: the kind itself if free, else
    /// the free kind of the lowest rank above it (L5).
    fn serving_kind(&self, needed: LicenceKind) -> Option<LicenceKind> {
        if self.free(needed) > 0 {
            return Some(needed);
        }
        let rank = self.rank(needed)?;
        let mut higher: Vec<&LicenceRank> = self.ranks.iter().filter(|r| r.rank > rank).collect();
        higher.sort_by_key(|r| r.rank);
        higher
            .into_iter()
            .map(|r| r.kind)
            .find(|k| self.free(*k) > 0)
    }

    /// Returns every seat of `user` to the pool (L4).
    pub(crate) fn release_all(&mut self, user: UserId) {
        self.assignments.remove(&user);
        self.settle();
    }

    /// Returns the seats `user` no longer needs (after a role change).
    pub(crate) fn release_unneeded(&mut self, user: &User) {
        if let Some(seats) = self.assignments.get_mut(&user.id) {
            seats.retain(|needed, _| needs_licence(user, *needed));
            if seats.is_empty() {
                self.assignments.remove(&user.id);
            }
        }
        self.settle();
    }

    /// Moves substituted seats back to their own kind while it has free seats.
    fn unsubstitute(&mut self, kind: LicenceKind) {
        let substituted: Vec<UserId> = self
            .assignments
            .iter()
            .filter(|(_, seats)| seats.get(&kind).is_some_and(|used| *used != kind))
            .map(|(user, _)| *user)
            .collect();
        for user in substituted {
            if self.free(kind) == 0 {
                break;
            }
            if let Some(used) = self
                .assignments
                .get_mut(&user)
                .and_then(|s| s.get_mut(&kind))
            {
                *used = kind;
            }
        }
    }

    /// Moves substituted seats back to their own kinds until no kind a
    /// substituted need asks for has a free seat. A move frees a seat of a
    /// higher kind, which may let a need of that kind move back in turn, so
    /// this repeats; every round but the last ends a substitution, which
    /// bounds the rounds.
    fn settle(&mut self) {
        let substituted = |l: &Self| {
            l.assignments
                .values()
                .flat_map(|seats| seats.iter())
                .filter(|(needed, used)| needed != used)
                .count()
        };
        let mut remaining = substituted(self);
        let rounds = remaining;
        for _ in 0..=rounds {
            for kind in LicenceKind::ALL {
                self.unsubstitute(kind);
            }
            let now = substituted(self);
            if now == remaining {
                return;
            }
            remaining = now;
        }
    }

    /// Asserts L6 and L1 (`counted_devices` comes from the directory).
    pub fn check_invariants(&self, counted_devices: u32) {
        for kind in LicenceKind::ALL {
            assert!(
                self.in_use(kind) <= self.pool(kind),
                "L6: {kind:?} seats in use ({}) never exceed the pool ({})",
                self.in_use(kind),
                self.pool(kind)
            );
        }
        assert!(
            counted_devices <= self.device_packages.saturating_mul(DEVICES_PER_PACKAGE),
            "L1: devices ({counted_devices}) never exceed packages x {DEVICES_PER_PACKAGE}"
        );
    }

    /// The report at `now_ms` (L1-L5).
    pub fn report(&self, now_ms: u64, counted_devices: u32) -> LicenceReport {
        let kinds = LicenceKind::ALL
            .into_iter()
            .map(|kind| {
                let withdrawn_pending = self
                    .withdrawals
                    .iter()
                    .filter(|w| w.kind == kind && w.effective_at_ms > now_ms)
                    .map(|w| w.count)
                    .sum();
                KindReport {
                    kind,
                    purchased: self.purchased.get(&kind).copied().unwrap_or(0),
                    withdrawn: self.withdrawn(kind),
                    withdrawn_pending,
                    pool: self.pool(kind),
                    in_use: self.in_use(kind),
                    free: self.free(kind),
                }
            })
            .collect();
        let substitutions = self
            .assignments
            .iter()
            .flat_map(|(user, seats)| {
                seats
                    .iter()
                    .filter(|(needed, used)| needed != used)
                    .map(|(needed, used)| Substitution {
                        user: *user,
                        needed: *needed,
                        used: *used,
                    })
            })
            .collect();
        LicenceReport {
            kinds,
            substitutions,
            ranks: self.ranks.clone(),
            device_packages: self.device_packages,
            devices_allowed: self.device_packages.saturating_mul(DEVICES_PER_PACKAGE),
            devices_in_use: counted_devices,
        }
    }
}

fn count_ok(count: u32) -> Checked<()> {
    ensure(
        (1..=MAX_COUNT_PER_COMMAND).contains(&count),
        RefusalCode::CountInvalid,
        || format!("a count is 1 to {MAX_COUNT_PER_COMMAND}"),
    )
}

impl TenantState {
    fn after_licence_change(&self) {
        // L6 is the invariant this whole module exists for: checked after
        // every licence command, in production too.
        self.licences.check_invariants(self.counted_devices());
    }

    pub(crate) fn buy_licences(
        &mut self,
        kind: LicenceKind,
        count: u32,
        _now_ms: u64,
    ) -> Checked<Outcome> {
        count_ok(count)?;
        let bought = self.licences.purchased.entry(kind).or_default();
        *bought = bought.saturating_add(count);
        self.licences.settle();
        self.after_licence_change();
        Ok(Outcome::Done)
    }

    pub(crate) fn withdraw_licences(
        &mut self,
        kind: LicenceKind,
        count: u32,
        now_ms: u64,
    ) -> Checked<Outcome> {
        count_ok(count)?;
        let free = self.licences.free(kind);
        ensure(
            count <= free,
            RefusalCode::WithdrawalExceedsFreeSeats,
            || {
                format!(
                    "only {free} {kind:?} seats are free; release seats before withdrawing {count}"
                )
            },
        )?;
        self.licences.withdrawals.push(Withdrawal {
            kind,
            count,
            requested_at_ms: now_ms,
            effective_at_ms: end_of_billing_month_ms(now_ms),
        });
        self.after_licence_change();
        Ok(Outcome::Done)
    }

    pub(crate) fn assign_licence(&mut self, user: UserId, kind: LicenceKind) -> Checked<Outcome> {
        let holder = self.user(user)?;
        ensure(
            needs_licence(holder, kind),
            RefusalCode::LicenceNotNeeded,
            || {
                format!("this user needs no {kind:?} licence: administrators, supervisors and back-office users are free, channel seats are for agents and contact-card seats for UC users")
            },
        )?;
        let has = self
            .licences
            .assignments
            .get(&user)
            .is_some_and(|s| s.contains_key(&kind));
        ensure(!has, RefusalCode::LicenceAlreadyAssigned, || {
            format!("the user already holds a {kind:?} seat")
        })?;
        let used = self.licences.serving_kind(kind).ok_or_else(|| {
            crate::model::Refusal::new(
                RefusalCode::LicencePoolExhausted,
                format!("no free {kind:?} seat and no free seat of a higher rank"),
            )
        })?;
        self.licences
            .assignments
            .entry(user)
            .or_default()
            .insert(kind, used);
        self.after_licence_change();
        Ok(Outcome::LicenceAssigned {
            used,
            substituted: used != kind,
        })
    }

    pub(crate) fn release_licence(&mut self, user: UserId, kind: LicenceKind) -> Checked<Outcome> {
        self.user(user)?;
        let seats = self.licences.assignments.get_mut(&user);
        let removed = seats.and_then(|s| s.remove(&kind));
        removed.ok_or_else(|| {
            crate::model::Refusal::new(
                RefusalCode::LicenceNotAssigned,
                format!("the user holds no {kind:?} seat"),
            )
        })?;
        if self
            .licences
            .assignments
            .get(&user)
            .is_some_and(BTreeMap::is_empty)
        {
            self.licences.assignments.remove(&user);
        }
        // A freed seat lets needs served by a higher rank move back.
        self.licences.settle();
        self.after_licence_change();
        Ok(Outcome::Done)
    }

    pub(crate) fn hand_over(&mut self, from: UserId, to: UserId) -> Checked<Outcome> {
        self.user(from)?;
        let receiver = self.user(to)?.clone();
        ensure(from != to, RefusalCode::LicenceNotAssigned, || {
            "a hand-over needs two different users".into()
        })?;
        let seats = self.licences.assignments.remove(&from).unwrap_or_default();
        let already: BTreeSet<LicenceKind> = self
            .licences
            .assignments
            .get(&to)
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default();
        let (mut moved, mut returned) = (Vec::new(), Vec::new());
        for (needed, used) in seats {
            if already.contains(&needed) || !needs_licence(&receiver, needed) {
                returned.push(needed);
            } else {
                self.licences
                    .assignments
                    .entry(to)
                    .or_default()
                    .insert(needed, used);
                moved.push(needed);
            }
        }
        self.licences.settle();
        self.after_licence_change();
        Ok(Outcome::HandedOver { moved, returned })
    }

    pub(crate) fn set_ranks(&mut self, ranks: Vec<LicenceRank>) -> Checked<Outcome> {
        let kinds: BTreeSet<LicenceKind> = ranks.iter().map(|r| r.kind).collect();
        ensure(
            kinds.len() == ranks.len(),
            RefusalCode::LicenceRanksInvalid,
            || "each licence kind appears at most once in the ranks".into(),
        )?;
        self.licences.ranks = ranks;
        Ok(Outcome::Done)
    }

    pub(crate) fn buy_packages(&mut self, count: u32) -> Checked<Outcome> {
        count_ok(count)?;
        self.licences.device_packages = self.licences.device_packages.saturating_add(count);
        self.after_licence_change();
        Ok(Outcome::Done)
    }

    pub(crate) fn withdraw_packages(&mut self, count: u32) -> Checked<Outcome> {
        count_ok(count)?;
        let remaining = self.licences.device_packages.saturating_sub(count);
        let in_use = self.counted_devices();
        ensure(
            count <= self.licences.device_packages
                && remaining.saturating_mul(DEVICES_PER_PACKAGE) >= in_use,
            RefusalCode::WithdrawalExceedsFreeSeats,
            || {
                format!(
                    "{in_use} devices are in use; {remaining} packages would allow {}",
                    remaining.saturating_mul(DEVICES_PER_PACKAGE)
                )
            },
        )?;
        self.licences.device_packages = remaining;
        self.after_licence_change();
        Ok(Outcome::Done)
    }
}
