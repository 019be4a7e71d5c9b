//! The agent machine by exact output sequences.

use super::machine::*;
use crate::ledger::{AgentVoice, CallCheckpoint, Command, Outcome};
use crate::messages::{Address, AgentMsg, CallMsg, DeviceMsg, EntryInfo, Message, QueueMsg};
use crate::model::activity::OfferEnd;
use crate::model::agent_status::{Author, SessionAction, SessionChange};
use crate::model::{DeviceId, PauseTypeId, QueueId, TenantId, UserId};

const T: TenantId = TenantId(2);
const A: UserId = UserId(15);
const Q: QueueId = QueueId(24);
const PHONE: DeviceId = DeviceId(20);

fn snapshot(terminals: &[&str]) -> AgentSnapshot {
    AgentSnapshot {
        logged_in: !terminals.is_empty(),
        queues: [Q].into(),
        voice: AgentVoice::default(),
        ring_plan: vec![(0, vec![PHONE])],
        ring_timeout_s: [(Q, 20)].into(),
        epoch: 3,
        terminals: terminals.iter().map(|t| t.to_string()).collect(),
        ..AgentSnapshot::default()
    }
}

fn entry() -> EntryInfo {
    EntryInfo {
        tenant: T,
        queue: Q,
        entry: "c1".into(),
        priority: 0,
        sequence: 1,
        enqueued_at_ms: 0,
        call: CallCheckpoint {
            node: 1,
            leg: 7,
            sip_call_id: "s".into(),
            caller: "+1".into(),
            called: "+2".into(),
            media_session: "c1".into(),
            relay: "local".into(),
            agent_offer_sdp: "offer".into(),
            arrived_at_ms: 0,
        },
    }
}

fn names(outputs: &[AgentOutput]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| match o {
            AgentOutput::Ledger { command, .. } => match &**command {
                Command::OfferCall { entry, epoch, .. } => {
                    format!("ledger offer {entry} epoch {epoch}")
                }
                Command::ReleaseOffer { entry, end, .. } => {
                    format!("ledger release {entry} {end:?}")
                }
                Command::Logout { terminal, .. } => format!("ledger logout {terminal}"),
                Command::By { by, inner, .. } => match &**inner {
                    Command::Logout { terminal, .. } => {
                        format!("ledger logout {terminal} by {}", by.describe())
                    }
                    other => format!("ledger {other:?} by {}", by.describe()),
                },
                Command::SetReachable { reachable, .. } => format!("ledger reachable {reachable}"),
                other => format!("ledger {other:?}"),
            },
            AgentOutput::Send(e) => {
                let to = match &e.to {
                    Address::Actor { key } => key.to_string(),
                    Address::Call { call } => call.to_string(),
                    Address::Edge { node } => format!("edge/{node}"),
                };
                let what = match &e.message {
                    Message::Queue(QueueMsg::Agent(r)) => {
                        format!("report available={}", r.available)
                    }
                    Message::Queue(QueueMsg::Pull { .. }) => "pull".into(),
                    Message::Queue(QueueMsg::OfferEnded { end, .. }) => {
                        format!("offer ended {end:?}")
                    }
                    Message::Call(CallMsg::Offered { .. }) => "offered".into(),
                    Message::Call(CallMsg::StopRinging { end, .. }) => {
                        format!("stop ringing {end:?}")
                    }
                    Message::Device(DeviceMsg::Ring(r)) => format!("ring {}", r.sdp),
                    other => format!("{other:?}"),
                };
                format!("send {to} {what}")
            }
            AgentOutput::Timer { after_ms, message } => format!("timer {after_ms} {message:?}"),
            AgentOutput::DecideLater => "decide later".into(),
            AgentOutput::Refresh => "refresh".into(),
            AgentOutput::Event(AgentEvent::StateChanged { state, reason, by }) => {
                format!("state {state:?}: {reason} (by {})", by.describe())
            }
        })
        .collect()
}

fn ready() -> AgentMachine {
    let mut m = AgentMachine::new(T, A);
    assert_eq!(
        names(&m.handle(0, AgentInput::Snapshot(Box::new(snapshot(&["panel"]))))),
        [
            "state Disconnected: state read from the ledger (by the system (CallFlow))",
            "send queue/2/24 report available=false"
        ]
    );
    assert_eq!(
        names(&m.handle(
            10,
            AgentInput::Message(AgentMsg::Reachability {
                device: PHONE,
                reachable: true
            })
        )),
        [
            "state Idle: A8: a device is reachable again (by the system (Reachability))",
            "send queue/2/24 report available=true",
            "send queue/2/24 pull"
        ]
    );
    m
}

#[test]
fn an_offer_is_reserved_rings_and_ends_at_the_ring_timeout() {
    let mut m = ready();
    assert_eq!(
        names(&m.handle(100, AgentInput::Message(AgentMsg::Offer(Box::new(entry()))))),
        ["decide later"]
    );
    assert_eq!(
        names(&m.handle(101, AgentInput::Decide)),
        ["ledger offer c1 epoch 3"]
    );
    let reserve = AgentOp::Reserve(Box::new(entry()));
    assert_eq!(
        names(&m.handle(
            102,
            AgentInput::Ledger {
                op: reserve,
                result: Ok(Outcome::Done)
            }
        )),
        [
            "send call/1/c1 offered",
            "timer 20000 RingTimeout { entry: \"c1\" }",
            "state Offered: offered a call (by the system (CallFlow))",
            "send queue/2/24 report available=false",
            "send device/2/20 ring offer",
        ]
    );
    // A second offer meanwhile is declined.
    assert_eq!(
        names(&m.handle(
            200,
            AgentInput::Message(AgentMsg::Offer(Box::new(EntryInfo {
                entry: "c2".into(),
                ..entry()
            })))
        )),
        [
            "send queue/2/24 offer ended Cancelled",
            "send queue/2/24 report available=false"
        ],
        "declined, and the queue that thought the agent free hears it is not"
    );
    assert_eq!(
        names(&m.handle(
            20_102,
            AgentInput::Message(AgentMsg::RingTimeout { entry: "c1".into() })
        )),
        [
            "send call/1/c1 stop ringing NoAnswer",
            "ledger release c1 NoAnswer"
        ]
    );
    let release = AgentOp::Release {
        entry: "c1".into(),
        queue: Q,
        end: OfferEnd::NoAnswer,
    };
    assert_eq!(
        names(&m.handle(
            20_110,
            AgentInput::Ledger {
                op: release,
                result: Ok(Outcome::OfferReleased { auto_paused: false })
            }
        )),
        ["send queue/2/24 offer ended NoAnswer", "refresh"]
    );
}

#[test]
fn a_phone_login_ends_after_its_phone_stopped_answering() {
    let mut m = AgentMachine::new(T, A);
    m.handle(0, AgentInput::Snapshot(Box::new(snapshot(&["phone-20"]))));
    assert_eq!(
        names(&m.handle(
            PHONE_SESSION_TIMEOUT_MS - 1,
            AgentInput::Snapshot(Box::new(snapshot(&["phone-20"])))
        )),
        ["ledger reachable false"],
        "A8: disconnected long before the phone's session times out"
    );
    assert_eq!(
        names(&m.handle(
            PHONE_SESSION_TIMEOUT_MS,
            AgentInput::Snapshot(Box::new(snapshot(&["phone-20"])))
        )),
        [
            "state LoggedOut: A2: the agent's phone stopped answering; logged out of it (by the system (PhoneTimeout))",
            "ledger logout phone-20 by the system (PhoneTimeout)"
        ]
    );
    // Asked once, not at every refresh.
    assert!(names(&m.handle(
        PHONE_SESSION_TIMEOUT_MS + 5_000,
        AgentInput::Snapshot(Box::new(snapshot(&["phone-20"])))
    ))
    .is_empty());
}

#[test]
fn a_transition_names_who_caused_it() {
    let mut m = ready();
    let paused = AgentSnapshot {
        paused: true,
        last_change: Some(SessionChange {
            at_ms: 50,
            by: Author::User { user: UserId(9) },
            what: SessionAction::Paused {
                pause_type: PauseTypeId(3),
                deferred: false,
            },
        }),
        ..snapshot(&["panel"])
    };
    assert_eq!(
        names(&m.handle(60, AgentInput::Snapshot(Box::new(paused.clone())))),
        [
            "state Paused: paused with type 3 (by user 9)",
            "send queue/2/24 report available=false"
        ]
    );
    // The same change seen again names nothing.
    assert!(names(&m.handle(70, AgentInput::Snapshot(Box::new(paused)))).is_empty());
}

#[test]
fn a_disconnection_is_recorded_after_its_grace_and_its_end_at_once() {
    let mut m = ready();
    assert_eq!(
        names(&m.handle(
            1_000,
            AgentInput::Message(AgentMsg::Reachability {
                device: PHONE,
                reachable: false
            })
        )),
        [
            "state Disconnected: A8: a device stopped answering (by the system (Reachability))",
            "send queue/2/24 report available=false"
        ]
    );
    let refresh = |m: &mut AgentMachine, at| {
        names(&m.handle(at, AgentInput::Snapshot(Box::new(snapshot(&["panel"])))))
    };
    assert!(refresh(&mut m, 1_000 + DISCONNECTED_AFTER_MS - 1).is_empty());
    assert_eq!(
        refresh(&mut m, 1_000 + DISCONNECTED_AFTER_MS),
        ["ledger reachable false"]
    );
    // Asked once while the write is under way, and not again once written.
    assert!(refresh(&mut m, 4_000).is_empty());
    let written = AgentInput::Ledger {
        op: AgentOp::Reachability { reachable: false },
        result: Ok(Outcome::Done),
    };
    assert!(names(&m.handle(4_100, written)).is_empty());
    assert!(refresh(&mut m, 9_000).is_empty());
    assert_eq!(
        names(&m.handle(
            9_500,
            AgentInput::Message(AgentMsg::Reachability {
                device: PHONE,
                reachable: true
            })
        )),
        [
            "state Idle: A8: a device is reachable again (by the system (Reachability))",
            "ledger reachable true",
            "send queue/2/24 report available=true",
            "send queue/2/24 pull"
        ]
    );
}
