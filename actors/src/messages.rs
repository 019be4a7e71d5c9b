//! The messages actors send each other, across nodes too (so they are wire
//! types: serde, and nothing in them refers to a node's memory). Each kind
//! of actor has its own enum; an [`Envelope`] carries one to an [`Address`].

use crate::ledger::CallCheckpoint;
use crate::model::activity::OfferEnd;
use crate::model::{DeviceId, QueueId, SkillId, TenantId, UserId};
use crate::placement::ActorKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A call actor: it lives on the node whose SIP edge holds the caller's
/// dialog, under the call's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CallRef {
    /// The node.
    pub node: u64,
    /// The call's id (also its activity id and its queue entry id).
    pub call: String,
}

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call/{}/{}", self.node, self.call)
    }
}

/// A call leg in some node's B2BUA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LegRef {
    /// The node whose edge holds the leg.
    pub node: u64,
    /// The leg there.
    pub leg: u64,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to")]
pub enum Address {
    /// An actor placed by hash (its owner is computed from the placement).
    Actor {
        /// The actor.
        key: ActorKey,
    },
    /// A call actor.
    Call {
        /// The call.
        call: CallRef,
    },
    /// A node's SIP edge (the call glue there).
    Edge {
        /// The node.
        node: u64,
    },
}

impl Address {
    /// The queue actor of `queue`.
    pub fn queue(tenant: TenantId, queue: QueueId) -> Self {
        Address::Actor {
            key: ActorKey::Queue { tenant, queue },
        }
    }

    /// The agent actor of `user`.
    pub fn agent(tenant: TenantId, user: UserId) -> Self {
        Address::Actor {
            key: ActorKey::Agent { tenant, user },
        }
    }

    /// The device actor of `device`.
    pub fn device(tenant: TenantId, device: DeviceId) -> Self {
        Address::Actor {
            key: ActorKey::Device { tenant, device },
        }
    }
}

/// A waiting call as queue and agent actors need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    /// Tenant.
    pub tenant: TenantId,
    /// Queue.
    pub queue: QueueId,
    /// The entry's id (the call's).
    pub entry: String,
    /// Priority (Q3).
    pub priority: u32,
    /// Arrival order in the tenant.
    pub sequence: u64,
    /// When it entered the queue.
    pub enqueued_at_ms: u64,
    /// Where the call lives.
    pub call: CallCheckpoint,
}

impl EntryInfo {
    /// The call actor that owns the entry.
    pub fn call_ref(&self) -> CallRef {
        CallRef {
            node: self.call.node,
            call: self.entry.clone(),
        }
    }
}

/// What an agent reports to each of its queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The agent.
    pub agent: UserId,
    /// Whether it is in this queue at all (checked in or a static member).
    pub member: bool,
    /// Whether it can take an offer now.
    pub available: bool,
    /// Skills and levels.
    pub skills: BTreeMap<SkillId, u8>,
    /// When it last became available.
    pub idle_since_ms: u64,
    /// When it was last offered a call.
    pub last_offered_ms: Option<u64>,
    /// Calls answered.
    pub calls_taken: u64,
    /// Talk time, ms.
    pub talk_time_ms: u64,
    /// Not offered before (Q4 back-off).
    pub not_before_ms: u64,
    /// Its A4 state (the queue's empty policies count by it, Q5).
    pub state: crate::model::agent_status::AgentState,
}

/// Messages to a queue actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum QueueMsg {
    /// A caller entered (the ledger holds the entry).
    Enqueued(Box<EntryInfo>),
    /// A caller left the queue (answered, abandoned, closed).
    Gone {
        /// The entry.
        entry: String,
    },
    /// An agent's availability for this queue.
    Agent(Box<AgentReport>),
    /// An offer ended without a connection: the entry waits on.
    OfferEnded {
        /// The entry.
        entry: String,
        /// The agent.
        agent: UserId,
        /// How.
        end: OfferEnd,
    },
    /// An agent that became available asks for the most deserving call
    /// (Q3); answered with an offer, or [`AgentMsg::NothingWaiting`].
    Pull {
        /// The agent.
        agent: UserId,
    },
    /// A waiting call asks its place, to announce it (Q6); answered with
    /// [`CallMsg::Place`].
    Where {
        /// The entry.
        entry: String,
    },
    /// Timer: look again (relaxation steps, back-offs ending).
    Tick,
    /// Resynchronise with the ledger (the node saw a change).
    Refresh,
}

/// Messages to an agent actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AgentMsg {
    /// A queue offers a waiting call.
    Offer(Box<EntryInfo>),
    /// A queue had nothing for the agent's pull.
    NothingWaiting {
        /// The queue.
        queue: QueueId,
    },
    /// A device rang, or could not.
    DeviceRinging {
        /// The device.
        device: DeviceId,
        /// The entry.
        entry: String,
        /// Whether a fork was placed.
        placed: bool,
    },
    /// One of the agent's forks ended without an answer.
    ForkEnded {
        /// The entry.
        entry: String,
        /// The device.
        device: DeviceId,
        /// How.
        end: OfferEnd,
    },
    /// The call actor connected the agent (the ledger assigned it).
    Connected {
        /// The entry.
        entry: String,
    },
    /// The call ended while the agent was on it or offered it.
    CallEnded {
        /// The entry.
        entry: String,
        /// How the offer ended, when it never connected.
        end: Option<OfferEnd>,
    },
    /// A device's reachability changed.
    Reachability {
        /// The device.
        device: DeviceId,
        /// Reachable now.
        reachable: bool,
    },
    /// A queue asks for a report.
    Report {
        /// The queue.
        queue: QueueId,
    },
    /// Timer: the offer's ring timeout.
    RingTimeout {
        /// The entry.
        entry: String,
    },
    /// Timer: the next step of the ring plan (D3).
    RingStep {
        /// The entry.
        entry: String,
        /// The step's index.
        step: usize,
    },
    /// Timer: after-call work is over.
    WrapUpOver {
        /// The entry.
        entry: String,
    },
    /// Resynchronise with the ledger (the node saw a change).
    Refresh,
}

/// Messages to a device actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeviceMsg {
    /// A node's registrar reports this device's registration there.
    Registration {
        /// The node.
        node: u64,
        /// Bindings there.
        bindings: u32,
        /// Whether any of them is reachable.
        reachable: bool,
    },
    /// Ring this device for a call.
    Ring(Box<RingRequest>),
}

/// What a device needs to ring for a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingRequest {
    /// The call actor that hears the forks.
    pub call: CallRef,
    /// The agent being offered.
    pub agent: UserId,
    /// The device.
    pub device: DeviceId,
    /// The relay's offer for the agent's leg.
    pub sdp: String,
    /// The caller's number (From).
    pub caller: String,
    /// A display name (the queue's name).
    pub display: String,
}

/// Messages to a call actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CallMsg {
    /// An agent accepted the offer: its devices will ring.
    Offered {
        /// The agent.
        agent: UserId,
    },
    /// A fork to an agent's device was placed.
    Forked {
        /// The leg.
        leg: LegRef,
        /// The agent.
        agent: UserId,
        /// The device.
        device: DeviceId,
    },
    /// Something happened on one of the call's legs.
    Leg {
        /// The leg.
        leg: LegRef,
        /// What.
        event: LegNotice,
    },
    /// The agent's offer is over (ring timeout, no device answered): stop
    /// ringing it.
    StopRinging {
        /// The agent.
        agent: UserId,
        /// How the offer ended.
        end: OfferEnd,
    },
    /// The queue turns the caller away (Q5: nobody to join, or the last
    /// agent left).
    Exit {
        /// The queue (an exit of a queue the call has left is ignored).
        queue: QueueId,
        /// Why.
        reason: crate::model::queue::ExitReason,
    },
    /// The caller's place in its queue (Q6).
    Place {
        /// 1: next.
        position: Option<u32>,
        /// The queue's estimate of the wait left, seconds.
        estimated_wait_s: Option<u32>,
    },
    /// A user sent the waiting caller elsewhere (S2).
    Withdraw {
        /// Where.
        destination: crate::model::queue::Destination,
    },
    /// Timer of the call actor.
    Timer {
        /// Which.
        timer: u64,
    },
}

/// A leg event, as a wire type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LegNotice {
    /// A provisional response.
    Progress {
        /// Status.
        status: u16,
    },
    /// Answered with this SDP.
    Answered {
        /// The SDP.
        sdp: Option<String>,
    },
    /// The ACK of our 2xx.
    Confirmed,
    /// An RFC 2976 INFO (SIP INFO DTMF).
    Info {
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// Ended.
    Ended {
        /// How: `remote_hangup`, `local_hangup`, `rejected`, `no_ack`, `transport_failed`.
        reason: String,
        /// The final status of a rejected INVITE.
        status: Option<u16>,
    },
}

/// Requests to a node's call glue (its SIP edge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EdgeRequest {
    /// Place forks to every reachable binding of a device registered here.
    Dial(Box<RingRequest>),
    /// Hang up a leg of this node.
    Hangup {
        /// The leg.
        leg: u64,
    },
    /// Answer or refuse an inbound leg of this node.
    Leg(Box<LegRequest>),
}

/// A command for an inbound leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LegRequest {
    /// 180/183, with early media.
    Progress {
        /// The leg.
        leg: u64,
        /// Status.
        status: u16,
        /// SDP.
        sdp: Option<String>,
    },
    /// 200 with SDP.
    Answer {
        /// The leg.
        leg: u64,
        /// SDP.
        sdp: String,
    },
    /// A final refusal naming its rule.
    Reject {
        /// The leg.
        leg: u64,
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// Any message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "for")]
pub enum Message {
    /// For a queue actor.
    Queue(QueueMsg),
    /// For an agent actor.
    Agent(AgentMsg),
    /// For a device actor.
    Device(DeviceMsg),
    /// For a call actor.
    Call(CallMsg),
    /// For a node's edge.
    Edge(EdgeRequest),
}

/// A message and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Where.
    pub to: Address,
    /// What.
    pub message: Message,
    /// Hops between nodes so far (a message that reaches a node that does
    /// not own its actor is passed on at most once more).
    #[serde(default)]
    pub hops: u8,
}
