//! The queue machine's two tables, each kept in the orders its routing
//! reads so that one input costs O(log n) of upkeep, not a scan of every
//! waiting call or offer:
//! - [`Waiting`]: the waiting calls by id and in service order (Q3);
//! - [`Offers`]: the offers in flight by entry and by agent.
//!
//! Invariants (checked by `check_invariants`, O(n), and per touched key by
//! `check_entry`/`check_agent`, O(log n)): both views of a table hold the
//! same pairs; no empty offer set.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::messages::EntryInfo;
use crate::model::UserId;

/// Service order (Q3, as `routing::service_order`): higher priority first,
/// then earlier sequence, then the entry id.
type ServiceKey = (Reverse<u32>, u64, String);

fn key(e: &EntryInfo) -> ServiceKey {
    (Reverse(e.priority), e.sequence, e.entry.clone())
}

/// The waiting calls of one queue.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    by_id: BTreeMap<String, EntryInfo>,
    order: BTreeSet<ServiceKey>,
}

impl Waiting {
    /// Calls waiting.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// No call waits.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The call `id`.
    pub fn get(&self, id: &str) -> Option<&EntryInfo> {
        self.by_id.get(id)
    }

    /// Whether `id` waits.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Adds (or replaces) a call.
    pub fn insert(&mut self, info: EntryInfo) {
        if let Some(old) = self.by_id.insert(info.entry.clone(), info.clone()) {
            self.order.remove(&key(&old));
        }
        self.order.insert(key(&info));
    }

    /// Removes a call.
    pub fn remove(&mut self, id: &str) -> Option<EntryInfo> {
        let info = self.by_id.remove(id)?;
        self.order.remove(&key(&info));
        Some(info)
    }

    /// Keeps the calls `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let gone: Vec<String> = self.by_id.keys().filter(|id| !keep(id)).cloned().collect();
        for id in gone {
            self.remove(&id);
        }
    }

    /// The calls by id.
    pub fn values(&self) -> impl Iterator<Item = &EntryInfo> {
        self.by_id.values()
    }

    /// The calls in service order.
    pub fn in_service_order(&self) -> impl Iterator<Item = &EntryInfo> {
        self.order
            .iter()
            .filter_map(|(_, _, id)| self.by_id.get(id))
    }

    /// Panics unless both views hold the same calls. O(n).
    pub fn check_invariants(&self) {
        assert_eq!(
            self.by_id.len(),
            self.order.len(),
            "every waiting call is in the service order once"
        );
        for info in self.by_id.values() {
            assert!(
                self.order.contains(&key(info)),
                "a waiting call is in the service order under its own key"
            );
        }
    }
}

/// The offers in flight: entry -> agent -> when it was sent, and the
/// entries each agent holds.
#[derive(Debug, Clone, Default)]
pub struct Offers {
    by_entry: BTreeMap<String, BTreeMap<UserId, u64>>,
    by_agent: BTreeMap<UserId, BTreeSet<String>>,
}

impl Offers {
    /// Records an offer of `entry` to `agent` sent at `at_ms`.
    pub fn insert(&mut self, entry: &str, agent: UserId, at_ms: u64) {
        self.by_entry
            .entry(entry.to_string())
            .or_default()
            .insert(agent, at_ms);
        self.by_agent
            .entry(agent)
            .or_default()
            .insert(entry.to_string());
    }

    /// Ends the offer of `entry` to `agent`.
    pub fn remove(&mut self, entry: &str, agent: UserId) {
        if let Some(agents) = self.by_entry.get_mut(entry) {
            agents.remove(&agent);
            if agents.is_empty() {
                self.by_entry.remove(entry);
            }
        }
        if let Some(entries) = self.by_agent.get_mut(&agent) {
            entries.remove(entry);
            if entries.is_empty() {
                self.by_agent.remove(&agent);
            }
        }
    }

    /// Ends every offer of `entry`.
    pub fn remove_entry(&mut self, entry: &str) {
        for agent in self
            .by_entry
            .get(entry)
            .map(|a| a.keys().copied().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            self.remove(entry, agent);
        }
    }

    /// Ends every offer `agent` holds.
    pub fn remove_agent(&mut self, agent: UserId) {
        for entry in self.by_agent.remove(&agent).unwrap_or_default() {
            if let Some(agents) = self.by_entry.get_mut(&entry) {
                agents.remove(&agent);
                if agents.is_empty() {
                    self.by_entry.remove(&entry);
                }
            }
        }
    }

    /// Keeps the offers of the entries `keep` says yes to.
    pub fn retain_entries(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let gone: Vec<String> = self.by_entry.keys().filter(|e| !keep(e)).cloned().collect();
        for entry in gone {
            self.remove_entry(&entry);
        }
    }

    /// Entries with an offer in flight.
    pub fn entry_count(&self) -> usize {
        self.by_entry.len()
    }

    /// Whether `entry` has an offer in flight.
    pub fn has_entry(&self, entry: &str) -> bool {
        self.by_entry.contains_key(entry)
    }

    /// Whether `entry` is offered to `agent`.
    pub fn contains(&self, entry: &str, agent: UserId) -> bool {
        self.by_entry
            .get(entry)
            .is_some_and(|a| a.contains_key(&agent))
    }

    /// Whether `agent` holds an offer.
    pub fn holds(&self, agent: UserId) -> bool {
        self.by_agent.contains_key(&agent)
    }

    /// The agents `entry` is offered to.
    pub fn agents_of(&self, entry: &str) -> Option<&BTreeMap<UserId, u64>> {
        self.by_entry.get(entry)
    }

    /// Every offer: (entry, agent, sent at).
    pub fn iter(&self) -> impl Iterator<Item = (&String, UserId, u64)> {
        self.by_entry
            .iter()
            .flat_map(|(e, a)| a.iter().map(move |(u, at)| (e, *u, *at)))
    }

    /// Entries with offers.
    pub fn entries(&self) -> impl Iterator<Item = &String> {
        self.by_entry.keys()
    }

    /// Agents holding offers.
    pub fn agents(&self) -> impl Iterator<Item = UserId> + '_ {
        self.by_agent.keys().copied()
    }

    /// Panics unless `entry`'s offers are in both views. O(log n) per agent.
    pub fn check_entry(&self, entry: &str) {
        if let Some(agents) = self.by_entry.get(entry) {
            assert!(!agents.is_empty(), "no empty offer sets");
            for agent in agents.keys() {
                assert!(
                    self.by_agent.get(agent).is_some_and(|e| e.contains(entry)),
                    "an offer is in both views"
                );
            }
        }
    }

    /// Panics unless `agent`'s offers are in both views.
    pub fn check_agent(&self, agent: UserId) {
        if let Some(entries) = self.by_agent.get(&agent) {
            assert!(!entries.is_empty(), "no empty offer sets");
            for entry in entries {
                assert!(
                    self.contains(entry, agent),
                    "an agent's offer is in both views"
                );
            }
        }
    }

    /// Panics unless both views hold the same offers. O(n log n).
    pub fn check_invariants(&self) {
        let pairs: usize = self.by_entry.values().map(BTreeMap::len).sum();
        let held: usize = self.by_agent.values().map(BTreeSet::len).sum();
        assert_eq!(pairs, held, "both views hold the same number of offers");
        for entry in self.by_entry.keys() {
            self.check_entry(entry);
        }
        for agent in self.by_agent.keys() {
            self.check_agent(*agent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::CallCheckpoint;
    use crate::model::{QueueId, TenantId};

    fn entry(id: &str, priority: u32, sequence: u64) -> EntryInfo {
        EntryInfo {
            tenant: TenantId(1),
            queue: QueueId(2),
            entry: id.into(),
            priority,
            sequence,
            enqueued_at_ms: sequence,
            call: CallCheckpoint {
                node: 1,
                leg: sequence,
                sip_call_id: id.into(),
                caller: "+1".into(),
                called: "+2".into(),
                media_session: id.into(),
                relay: "local".into(),
                agent_offer_sdp: String::new(),
                arrived_at_ms: 0,
            },
        }
    }

    fn order(w: &Waiting) -> Vec<&str> {
        w.in_service_order().map(|e| e.entry.as_str()).collect()
    }

    #[test]
    fn waiting_calls_come_in_service_order_through_every_change() {
        let mut w = Waiting::default();
        w.insert(entry("a", 0, 1));
        w.insert(entry("b", 0, 2));
        w.insert(entry("c", 5, 3));
        assert_eq!(order(&w), ["c", "a", "b"], "priority first, then sequence");
        // A new priority moves the call, once.
        w.insert(entry("b", 9, 2));
        assert_eq!(order(&w), ["b", "c", "a"]);
        assert_eq!(w.remove("c").map(|e| e.priority), Some(5));
        w.retain(|id| id != "a");
        assert_eq!((order(&w), w.len()), (vec!["b"], 1));
        w.check_invariants();
    }

    #[test]
    fn offers_are_the_same_by_entry_and_by_agent() {
        let mut o = Offers::default();
        let (a, b) = (UserId(1), UserId(2));
        o.insert("e1", a, 10);
        o.insert("e1", b, 11);
        o.insert("e2", a, 12);
        o.check_invariants();
        assert!(o.holds(a) && o.contains("e1", b) && o.entry_count() == 2);
        o.remove("e1", b);
        assert!(!o.holds(b) && o.has_entry("e1"));
        o.remove_agent(a);
        assert!(!o.holds(a) && o.entry_count() == 0, "no empty sets left");
        o.insert("e3", b, 13);
        o.insert("e4", b, 14);
        o.retain_entries(|e| e != "e3");
        assert_eq!(o.iter().collect::<Vec<_>>(), [(&"e4".to_string(), b, 14)]);
        o.remove_entry("e4");
        assert!(!o.holds(b));
        o.check_invariants();
    }
}
