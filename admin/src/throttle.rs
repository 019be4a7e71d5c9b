//! Login throttling (the front door), sans-IO: time comes in as `now_ms`.
//!
//! The rule, as documented in the README:
//! - Failures are counted per (login, source address) pair and per source
//!   address, each forgotten `window_ms` after its last failure. Past a
//!   key's free failures, every further attempt of that key waits a delay
//!   that doubles with each failure (from `base_delay_ms`, at most
//!   `max_delay_ms`) after the last one; an attempt before that is refused
//!   with 429 `LOGIN_THROTTLED` and `Retry-After`, without a password check.
//!   A success clears its pair. So an attacker's failures slow the
//!   attacker's own address, not the account's owner elsewhere.
//! - Failures of one login from every source are counted too: at
//!   `lockout_failures` within the window the login is locked for
//!   `lockout_ms` on every node (the ledger holds the lockout, for accounts
//!   that exist), until it lifts or an administrator unlocks it. That is the
//!   one way an attacker elsewhere can block an owner, and it ends.
//!
//! Invariant: each table holds at most `capacity` keys; when full, the key
//! whose last failure is oldest goes (a spray of random logins cannot grow
//! the node's memory).

// Logins are counted case-folded, as the ledger compares them.
use carillon_actors::ledger::fold_login as fold;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRules {
    /// Failures of a (login, source) pair before delays start.
    pub pair_free_failures: u32,
    /// Failures of a source (any login) before delays start.
    pub source_free_failures: u32,
    /// The first delay.
    pub base_delay_ms: u64,
    /// The longest delay.
    pub max_delay_ms: u64,
    /// A key is forgotten this long after its last failure.
    pub window_ms: u64,
    /// Failures of one login (any source) within the window that lock it.
    pub lockout_failures: u32,
    /// How long a lockout lasts.
    pub lockout_ms: u64,
    /// Keys per table.
    pub capacity: usize,
}

impl Default for ThrottleRules {
    fn default() -> Self {
        ThrottleRules {
            pair_free_failures: 3,
            source_free_failures: 20,
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            window_ms: 15 * 60_000,
            lockout_failures: 10,
            lockout_ms: 15 * 60_000,
            capacity: 65_536,
        }
    }
}

impl ThrottleRules {
    /// The rules for bad bearer tokens, counted per source address (one
    /// pair per address: the login is empty): 10 free, then the same
    /// doubling delays; a token is never locked (there is no account name).
    pub fn for_bearer_tokens() -> Self {
        ThrottleRules {
            pair_free_failures: 10,
            source_free_failures: 10,
            lockout_failures: u32::MAX,
            ..Self::default()
        }
    }
}

impl ThrottleRules {
    /// The rules for password reset requests: per (login or e-mail,
    /// address) 3 free, per address 10, then the doubling delays; never a
    /// lockout (the account's owner must stay able to recover it).
    pub fn for_password_resets() -> Self {
        ThrottleRules {
            pair_free_failures: 3,
            source_free_failures: 10,
            lockout_failures: u32::MAX,
            ..Self::default()
        }
    }
}

/// May an attempt go ahead?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Allowed,
    /// Refused without a check: try again in this many ms.
    Wait {
        /// Time left, ms.
        retry_after_ms: u64,
    },
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// The login reached the lockout threshold: lock it until then.
    pub lock_until_ms: Option<u64>,
    /// Failures of the login within the window (from every source).
    pub login_failures: u32,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last_ms: u64,
    stamp: u64,
}

/// A bounded table of failure counts, oldest last failure evicted first.
#[derive(Debug)]
struct Table<K> {
    counts: HashMap<K, Count>,
    by_age: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            counts: HashMap::new(),
            by_age: BTreeMap::new(),
        }
    }

    /// The live count of `key` (forgotten past the window).
    fn get(&self, key: &K, now_ms: u64, window_ms: u64) -> Option<Count> {
        self.counts
            .get(key)
            .copied()
            .filter(|c| now_ms.saturating_sub(c.last_ms) <= window_ms)
    }

    /// Restarts the wait of `key` at `now_ms` (its failures stay).
    fn touch(&mut self, key: &K, now_ms: u64) {
        if let Some(c) = self.counts.get_mut(key) {
            c.last_ms = c.last_ms.max(now_ms);
        }
    }

    fn remove(&mut self, key: &K) {
        if let Some(c) = self.counts.remove(key) {
            self.by_age.remove(&c.stamp);
        }
    }

    /// One more failure of `key`; its count now.
    fn fail(&mut self, key: K, now_ms: u64, window_ms: u64, stamp: u64, capacity: usize) -> u32 {
        let failures = self.get(&key, now_ms, window_ms).map_or(0, |c| c.failures) + 1;
        self.remove(&key);
        while self.counts.len() >= capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.counts.remove(&oldest);
        }
        self.by_age.insert(stamp, key.clone());
        self.counts.insert(
            key,
            Count {
                failures,
                last_ms: now_ms,
                stamp,
            },
        );
        failures
    }

    fn len(&self) -> usize {
        self.counts.len()
    }

    fn check_invariants(&self, capacity: usize) {
        assert!(
            self.counts.len() <= capacity,
            "a table holds at most its capacity"
        );
        assert_eq!(
            self.counts.len(),
            self.by_age.len(),
            "every key has one age stamp"
        );
    }
}

/// The node's login throttle.
#[derive(Debug)]
pub struct Throttle {
    rules: ThrottleRules,
    pairs: Table<(String, IpAddr)>,
    sources: Table<IpAddr>,
    logins: Table<String>,
    next_stamp: u64,
}

impl Throttle {
    /// A throttle with `rules`.
    pub fn new(rules: ThrottleRules) -> Self {
        assert!(
            rules.capacity > 0,
            "a throttle table holds at least one key"
        );
        Throttle {
            rules,
            pairs: Table::new(),
            sources: Table::new(),
            logins: Table::new(),
            next_stamp: 0,
        }
    }

    /// The rules.
    pub fn rules(&self) -> ThrottleRules {
        self.rules
    }

    fn delay_ms(&self, failures: u32, free: u32) -> u64 {
        if failures < free {
            return 0;
        }
        let doublings = (failures - free).min(20);
        (self.rules.base_delay_ms << doublings).min(self.rules.max_delay_ms)
    }

    fn wait(&self, count: Option<Count>, free: u32, now_ms: u64) -> u64 {
        count.map_or(0, |c| {
            (c.last_ms + self.delay_ms(c.failures, free)).saturating_sub(now_ms)
        })
    }

    /// May `login` from `source` try now?
    pub fn check(&self, login: &str, source: IpAddr, now_ms: u64) -> Verdict {
        let window = self.rules.window_ms;
        let pair = self.pairs.get(&(fold(login), source), now_ms, window);
        let from = self.sources.get(&source, now_ms, window);
        let wait = self
            .wait(pair, self.rules.pair_free_failures, now_ms)
            .max(self.wait(from, self.rules.source_free_failures, now_ms));
        if wait == 0 {
            Verdict::Allowed
        } else {
            Verdict::Wait {
                retry_after_ms: wait,
            }
        }
    }

    /// Like [`Throttle::check`], and an attempt let through a delay takes
    /// the slot: the delay of its pair starts again now, so that
    /// many attempts sent at once when a delay ends are one password check,
    /// not one each.
    pub fn admit(&mut self, login: &str, source: IpAddr, now_ms: u64) -> Verdict {
        let verdict = self.check(login, source, now_ms);
        if verdict == Verdict::Allowed {
            let window = self.rules.window_ms;
            let pair = (fold(login), source);
            let delayed = |c: Option<Count>, free: u32| c.is_some_and(|c| c.failures >= free);
            // The pair only: touching the address would keep a shared
            // address (a NAT) delayed for as long as anyone logs in from it.
            if delayed(
                self.pairs.get(&pair, now_ms, window),
                self.rules.pair_free_failures,
            ) {
                self.pairs.touch(&pair, now_ms);
            }
        }
        verdict
    }

    /// A wrong password (or unknown login) for `login` from `source`.
    pub fn failed(&mut self, login: &str, source: IpAddr, now_ms: u64) -> Failed {
        let (window, capacity) = (self.rules.window_ms, self.rules.capacity);
        let folded = fold(login);
        let mut stamp = || {
            self.next_stamp += 1;
            self.next_stamp
        };
        let (s1, s2, s3) = (stamp(), stamp(), stamp());
        self.pairs
            .fail((folded.clone(), source), now_ms, window, s1, capacity);
        self.sources.fail(source, now_ms, window, s2, capacity);
        let login_failures = self
            .logins
            .fail(folded.clone(), now_ms, window, s3, capacity);
        let lock_until_ms = (login_failures >= self.rules.lockout_failures).then(|| {
            // The lockout starts its own count: the next one needs as many.
            self.logins.remove(&folded);
            now_ms + self.rules.lockout_ms
        });
        self.check_invariants();
        Failed {
            lock_until_ms,
            login_failures,
        }
    }

    /// `login` succeeded from `source`: its pair starts afresh.
    pub fn succeeded(&mut self, login: &str, source: IpAddr) {
        self.pairs.remove(&(fold(login), source));
    }

    /// An administrator unlocked `login`: its counts start afresh.
    pub fn unlocked(&mut self, login: &str) {
        let folded = fold(login);
        self.logins.remove(&folded);
        let pairs: Vec<(String, IpAddr)> = self
            .pairs
            .counts
            .keys()
            .filter(|(l, _)| *l == folded)
            .cloned()
            .collect();
        for pair in pairs {
            self.pairs.remove(&pair);
        }
    }

    /// Keys held, over the three tables.
    pub fn entries(&self) -> usize {
        self.pairs.len() + self.sources.len() + self.logins.len()
    }

    /// Panics if a table broke its bound (a bug here).
    pub fn check_invariants(&self) {
        let capacity = self.rules.capacity;
        self.pairs.check_invariants(capacity);
        self.sources.check_invariants(capacity);
        self.logins.check_invariants(capacity);
    }
}

#[cfg(test)]
mod tests;
