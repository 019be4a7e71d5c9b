//! Placement of actors on nodes: the owner of an actor is the rendezvous
//! (highest random weight) hash of its key over the live members of the
//! ledger's placement. Every node computes the same owner from the same
//! placement, and a member's death moves only the actors it owned.
//!
//! Two nodes never both act as an owner: an actor's commands that matter
//! (an offer, the end of after-call work) carry the placement epoch they were
//! decided under, and the ledger refuses an older one. An actor on a node
//! that has not yet seen the new placement may still run for a moment; what
//! it can change is fenced.

use crate::ledger::Ledger;
use crate::model::user::Role;
use crate::model::{DeviceId, QueueId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// An actor placed by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ActorKey {
    /// A queue's actor.
    Queue {
        /// Tenant.
        tenant: TenantId,
        /// Queue.
        queue: QueueId,
    },
    /// An agent's actor.
    Agent {
        /// Tenant.
        tenant: TenantId,
        /// Agent.
        user: UserId,
    },
    /// A device's actor.
    Device {
        /// Tenant.
        tenant: TenantId,
        /// Device.
        device: DeviceId,
    },
}

impl ActorKey {
    /// The tenant the actor belongs to.
    pub fn tenant(&self) -> TenantId {
        match self {
            ActorKey::Queue { tenant, .. }
            | ActorKey::Agent { tenant, .. }
            | ActorKey::Device { tenant, .. } => *tenant,
        }
    }

    /// A stable 64-bit key (the same on every node and build).
    pub fn hash_key(&self) -> u64 {
        let (kind, tenant, id) = match self {
            ActorKey::Queue { tenant, queue } => (1u64, tenant.0, queue.0),
            ActorKey::Agent { tenant, user } => (2, tenant.0, user.0),
            ActorKey::Device { tenant, device } => (3, tenant.0, device.0),
        };
        mix(mix(kind ^ mix(tenant)) ^ id)
    }
}

impl fmt::Display for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorKey::Queue { tenant, queue } => write!(f, "queue/{tenant}/{queue}"),
            ActorKey::Agent { tenant, user } => write!(f, "agent/{tenant}/{user}"),
            ActorKey::Device { tenant, device } => write!(f, "device/{tenant}/{device}"),
        }
    }
}

/// SplitMix64's finaliser: a fixed, well-distributed 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The owner of `key` among `members`: the member with the highest weight
/// `mix(key ^ mix(member))`; ties (astronomically unlikely) go to the lower
/// id. `None` when there are no members.
pub fn owner(key: &ActorKey, members: &BTreeSet<u64>) -> Option<u64> {
    let k = key.hash_key();
    members
        .iter()
        .map(|m| (mix(k ^ mix(*m)), std::cmp::Reverse(*m)))
        .max()
        .map(|(_, std::cmp::Reverse(m))| m)
}

/// Every actor key the ledger names: queues, agents, registering devices.
pub fn actor_keys(ledger: &Ledger) -> BTreeSet<ActorKey> {
    let mut keys = BTreeSet::new();
    for tenant in ledger.tenants() {
        let Some(t) = ledger.tenant(tenant.id) else {
            continue;
        };
        keys.extend(t.queues().map(|q| ActorKey::Queue {
            tenant: tenant.id,
            queue: q.id,
        }));
        keys.extend(
            t.users()
                .filter(|u| u.spec.roles.contains(&Role::Agent))
                .map(|u| ActorKey::Agent {
                    tenant: tenant.id,
                    user: u.id,
                }),
        );
        keys.extend(
            t.devices()
                .filter(|d| d.spec.kind.registers())
                .map(|d| ActorKey::Device {
                    tenant: tenant.id,
                    device: d.id,
                }),
        );
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    fn keys(n: u64) -> Vec<ActorKey> {
        (0..n)
            .flat_map(|i| {
                [
                    ActorKey::Queue {
                        tenant: TenantId(2),
                        queue: QueueId(100 + i),
                    },
                    ActorKey::Agent {
                        tenant: TenantId(2),
                        user: UserId(1000 + i),
                    },
                    ActorKey::Device {
                        tenant: TenantId(3),
                        device: DeviceId(5000 + i),
                    },
                ]
            })
            .collect()
    }

    #[test]
    fn owners_are_spread_and_stable() {
        let three = members(&[1, 2, 3]);
        let mut counts = [0usize; 4];
        for key in keys(1000) {
            let o = owner(&key, &three).expect("an owner");
            counts[o as usize] += 1;
            assert_eq!(owner(&key, &three), Some(o), "the same answer every time");
        }
        for (node, n) in counts.iter().enumerate().skip(1) {
            assert!((800..1200).contains(n), "node {node} owns {n} of 3000");
        }
        assert_eq!(owner(&keys(1)[0], &BTreeSet::new()), None);
    }

    #[test]
    fn a_death_moves_only_the_dead_members_actors() {
        let three = members(&[1, 2, 3]);
        let two = members(&[1, 3]);
        for key in keys(500) {
            let before = owner(&key, &three).expect("owner");
            let after = owner(&key, &two).expect("owner");
            if before != 2 {
                assert_eq!(before, after, "{key} stays where it was");
            } else {
                assert!(after == 1 || after == 3);
            }
        }
    }
}
