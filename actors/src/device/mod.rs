//! The device actor (D1, D7, A8): where a device is registered, whether it
//! is reachable, and ringing it for a call. Sans-IO [`DeviceMachine`];
//! its ractor shell is in `crate::shell`.
//!
//! Registrations are per node (a phone registers where it connects); each
//! node's registrar reports its bindings of the device here. Reachable means
//! some live member holds a binding that answers its keepalives. A ring
//! request goes to every node that holds a reachable binding; the node's
//! call glue places one fork per binding.
//!
//! Invariants: only live members' registrations count; the agents told of
//! reachability are the device's owner and the agent bound to it.

use std::collections::{BTreeMap, BTreeSet};

use crate::ledger::Ledger;
use crate::messages::{Address, AgentMsg, DeviceMsg, EdgeRequest, Envelope, Message};
use crate::model::{DeviceId, TenantId, UserId};

/// What the device machine reads of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceSnapshot {
    /// The agents that hear its reachability: owner and bound agent.
    pub agents: BTreeSet<UserId>,
    /// Live members (registrations elsewhere are void).
    pub members: BTreeSet<u64>,
}

/// The snapshot of `device`, or `None` when it does not exist.
pub fn device_snapshot(
    ledger: &Ledger,
    tenant: TenantId,
    device: DeviceId,
) -> Option<DeviceSnapshot> {
    let t = ledger.tenant(tenant)?;
    let d = t.device(device)?;
    Some(DeviceSnapshot {
        agents: d.spec.owner.into_iter().chain(d.bound_to).collect(),
        members: ledger.placement().members.clone(),
    })
}

/// An input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceInput {
    /// The ledger's view.
    Snapshot(DeviceSnapshot),
    /// A message.
    Message(DeviceMsg),
}

/// The device machine.
#[derive(Debug, Clone)]
pub struct DeviceMachine {
    tenant: TenantId,
    device: DeviceId,
    snapshot: DeviceSnapshot,
    registrations: BTreeMap<u64, (u32, bool)>,
    told: BTreeMap<UserId, bool>,
}

impl DeviceMachine {
    /// A machine for `device`.
    pub fn new(tenant: TenantId, device: DeviceId) -> Self {
        DeviceMachine {
            tenant,
            device,
            snapshot: DeviceSnapshot::default(),
            registrations: BTreeMap::new(),
            told: BTreeMap::new(),
        }
    }

    /// Whether a live member holds a reachable binding.
    pub fn reachable(&self) -> bool {
        self.registrations
            .iter()
            .any(|(node, (n, r))| *n > 0 && *r && self.live(*node))
    }

    fn live(&self, node: u64) -> bool {
        self.snapshot.members.is_empty() || self.snapshot.members.contains(&node)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: DeviceInput) -> Vec<Envelope> {
        let mut out = Vec::new();
        match input {
            DeviceInput::Snapshot(s) => {
                self.snapshot = s;
                self.told
                    .retain(|agent, _| self.snapshot.agents.contains(agent));
            }
            DeviceInput::Message(DeviceMsg::Registration {
                node,
                bindings,
                reachable,
            }) => {
                if bindings == 0 {
                    self.registrations.remove(&node);
                } else {
                    self.registrations.insert(node, (bindings, reachable));
                }
            }
            DeviceInput::Message(DeviceMsg::Ring(request)) => {
                let nodes: Vec<u64> = self
                    .registrations
                    .iter()
                    .filter(|(node, (n, r))| *n > 0 && *r && self.live(**node))
                    .map(|(node, _)| *node)
                    .collect();
                if nodes.is_empty() {
                    out.push(Envelope {
                        to: Address::agent(self.tenant, request.agent),
                        message: Message::Agent(AgentMsg::DeviceRinging {
                            device: self.device,
                            entry: request.call.call.clone(),
                            placed: false,
                        }),
                        hops: 0,
                    });
                }
                for node in nodes {
                    out.push(Envelope {
                        to: Address::Edge { node },
                        message: Message::Edge(EdgeRequest::Dial(request.clone())),
                        hops: 0,
                    });
                }
            }
        }
        let reachable = self.reachable();
        for agent in self.snapshot.agents.clone() {
            if self.told.get(&agent) != Some(&reachable) {
                self.told.insert(agent, reachable);
                out.push(Envelope {
                    to: Address::agent(self.tenant, agent),
                    message: Message::Agent(AgentMsg::Reachability {
                        device: self.device,
                        reachable,
                    }),
                    hops: 0,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{CallRef, RingRequest};

    fn ring() -> DeviceMsg {
        DeviceMsg::Ring(Box::new(RingRequest {
            call: CallRef {
                node: 1,
                call: "c1".into(),
            },
            agent: UserId(7),
            device: DeviceId(9),
            sdp: "v=0".into(),
            caller: "+1".into(),
            display: "Support".into(),
        }))
    }

    #[test]
    fn reachability_and_rings_follow_live_registrations() {
        let mut m = DeviceMachine::new(TenantId(2), DeviceId(9));
        let out = m.handle(DeviceInput::Snapshot(DeviceSnapshot {
            agents: [UserId(7)].into(),
            members: [1, 2].into(),
        }));
        assert_eq!(out.len(), 1, "the owner hears it is unreachable: {out:?}");
        // Not registered: the ring fails at once.
        let out = m.handle(DeviceInput::Message(ring()));
        assert!(matches!(
            &out[..],
            [Envelope {
                message: Message::Agent(AgentMsg::DeviceRinging { placed: false, .. }),
                ..
            }]
        ));
        // Registered on node 2 and answering: reachable, rings go there.
        let out = m.handle(DeviceInput::Message(DeviceMsg::Registration {
            node: 2,
            bindings: 1,
            reachable: true,
        }));
        assert!(matches!(
            &out[..],
            [Envelope {
                message: Message::Agent(AgentMsg::Reachability {
                    reachable: true,
                    ..
                }),
                ..
            }]
        ));
        let out = m.handle(DeviceInput::Message(ring()));
        assert!(matches!(
            &out[..],
            [Envelope {
                to: Address::Edge { node: 2 },
                ..
            }]
        ));
        // Node 2 leaves the placement: its registration is void.
        let out = m.handle(DeviceInput::Snapshot(DeviceSnapshot {
            agents: [UserId(7)].into(),
            members: [1].into(),
        }));
        assert!(!m.reachable());
        assert!(matches!(
            &out[..],
            [Envelope {
                message: Message::Agent(AgentMsg::Reachability {
                    reachable: false,
                    ..
                }),
                ..
            }]
        ));
        // Nothing repeats without a change.
        assert!(m
            .handle(DeviceInput::Snapshot(DeviceSnapshot {
                agents: [UserId(7)].into(),
                members: [1].into()
            }))
            .is_empty());
    }
}
