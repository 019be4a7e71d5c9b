//! A sans-IO back-to-back user agent: one dialog per leg, built on
//! [`Dialog`] and the transaction layer. Inbound legs are the INVITEs that
//! reach the node (it is their UAS); outbound legs are the INVITEs it sends
//! (their UAC). Whoever drives the call (a call actor, through the node)
//! answers in its own time: it hears [`LegEvent`]s and gives
//! [`LegCommand`]s, and the B2BUA turns them into transaction-layer
//! [`Action`]s, handling what RFC 3261 leaves to the TU:
//!
//! - a 2xx to an INVITE is retransmitted (T1 doubling to T2, on unreliable
//!   transports) until its ACK; without an ACK after 64*T1 the leg sends BYE
//!   and ends (`NoAck`); a hang-up asked for before the ACK waits for it;
//! - a 2xx to our INVITE is ACKed, and its retransmissions ACKed again;
//! - CANCEL races: a CANCEL from the caller before our final answer gets 200
//!   and the INVITE 487; after it, only 200. Our CANCEL is held back until a
//!   provisional response arrives (RFC 3261 9.1); a 2xx that crosses it is
//!   ACKed and ended with BYE; an INVITE whose 487 never comes after an
//!   answered CANCEL is given up after 64*T1;
//! - in-dialog requests: BYE (200, the leg ends), re-INVITE and UPDATE
//!   (200 with the leg's current description), INFO (200, passed on),
//!   OPTIONS (200), anything else 405; a CSeq that goes backwards gets 500.
//!
//! Invariants: every leg emits exactly one [`LegEvent::Ended`], and nothing
//! after it; a leg is in the dialog index exactly while its dialog is alive;
//! every table is bounded by `max_legs` (a new leg beyond it is refused);
//! nothing here panics on network input.

mod inbound;
mod outbound;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dialog::DialogId;
use crate::message::{Header, MediaType, Message, Method};
use crate::registrar::Flow;
use crate::transaction::layer::{ServerTxId, TxOwner, TxRef};
use crate::transaction::TimerConfig;

use inbound::Inbound;
use outbound::Outbound;

/// A leg, as the B2BUA numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// Why a leg ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The peer hung up: BYE, or CANCEL of an unanswered inbound leg.
    RemoteHangup,
    /// We hung up (BYE, CANCEL or a final refusal), and it completed.
    LocalHangup,
    /// An outbound INVITE got a final non-2xx (a timeout is 408).
    Rejected {
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Our 2xx was never ACKed (we sent BYE).
    NoAck,
    /// The transport failed.
    TransportFailed,
}

/// What happened on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// A new INVITE; the leg waits for a command (answer, progress, refusal).
    Incoming {
        /// The leg.
        leg: LegId,
        /// The INVITE.
        invite: Box<Message<'static>>,
        /// Where it came from.
        flow: Flow,
    },
    /// A provisional response to our INVITE.
    Progress {
        /// The leg.
        leg: LegId,
        /// 101-199.
        status: u16,
        /// Its SDP (early media), if any.
        sdp: Option<String>,
    },
    /// A 2xx to our INVITE (we ACKed it).
    Answered {
        /// The leg.
        leg: LegId,
        /// Its SDP.
        sdp: Option<String>,
    },
    /// The ACK of our 2xx arrived.
    Confirmed {
        /// The leg.
        leg: LegId,
    },
    /// The peer sent a new description (re-INVITE or UPDATE), answered with
    /// the leg's current one.
    Reoffered {
        /// The leg.
        leg: LegId,
        /// The new description.
        sdp: String,
    },
    /// An INFO in the dialog (SIP INFO DTMF, for example), answered 200.
    Info {
        /// The leg.
        leg: LegId,
        /// Content-Type, as text.
        content_type: String,
        /// The body.
        body: Vec<u8>,
    },
    /// The leg is over; its id names nothing from now on.
    Ended {
        /// The leg.
        leg: LegId,
        /// Why.
        reason: EndReason,
    },
}

impl LegEvent {
    /// The leg the event is about.
    pub fn leg(&self) -> LegId {
        match self {
            LegEvent::Incoming { leg, .. }
            | LegEvent::Progress { leg, .. }
            | LegEvent::Answered { leg, .. }
            | LegEvent::Confirmed { leg }
            | LegEvent::Reoffered { leg, .. }
            | LegEvent::Info { leg, .. }
            | LegEvent::Ended { leg, .. } => *leg,
        }
    }
}

/// An extra header for a response or request the B2BUA writes.
pub type ExtraHeader = (String, String);

/// What the driver of a call asks of a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegCommand {
    /// Send a provisional response (180 or 183) on an inbound leg, with SDP
    /// for early media.
    Progress {
        /// The leg.
        leg: LegId,
        /// 180 or 183.
        status: u16,
        /// The description (183 with early media).
        sdp: Option<String>,
    },
    /// Answer an inbound leg with 200 and this SDP.
    Answer {
        /// The leg.
        leg: LegId,
        /// The description.
        sdp: String,
    },
    /// Refuse an unanswered inbound leg with a final status (300-699).
    Reject {
        /// The leg.
        leg: LegId,
        /// Status.
        status: u16,
        /// Reason phrase (the rule that refused it).
        reason: String,
        /// Extra headers (`Proxy-Authenticate`, `Retry-After`, ...).
        headers: Vec<ExtraHeader>,
    },
    /// End the leg whatever its state: CANCEL or BYE for an outbound leg,
    /// 480 or BYE for an inbound one.
    Hangup {
        /// The leg.
        leg: LegId,
    },
}

/// An outbound INVITE to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    /// Request-URI (a registered contact).
    pub target: String,
    /// The flow to send on (the registration's).
    pub flow: Flow,
    /// To: the address of record.
    pub to: String,
    /// From user part (the caller's number).
    pub from_user: String,
    /// From display name.
    pub from_display: Option<String>,
    /// From host (the tenant's SIP domain).
    pub from_host: String,
    /// The offer.
    pub sdp: String,
    /// Extra headers.
    pub headers: Vec<ExtraHeader>,
}

/// The B2BUA's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2buaConfig {
    /// Host in our Via and Contact.
    pub host: String,
    /// Port in our Via and Contact.
    pub port: u16,
    /// Port of the TLS listener, in our Via and Contact on TLS flows.
    pub tls_port: Option<u16>,
    /// Timer base values.
    pub timers: TimerConfig,
    /// Most legs alive at once.
    pub max_legs: usize,
    /// User-Agent / Server header value.
    pub user_agent: String,
}

impl Default for B2buaConfig {
    fn default() -> Self {
        B2buaConfig {
            host: "127.0.0.1".into(),
            port: 5060,
            tls_port: None,
            timers: TimerConfig::default(),
            max_legs: 100_000,
            user_agent: concat!("Carillon/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// What the B2BUA asks of the transaction layer, or tells the call's driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer a server transaction.
    Respond {
        /// The transaction.
        server: ServerTxId,
        /// The response.
        response: Box<Message<'static>>,
    },
    /// Start a client transaction.
    Send {
        /// The request.
        request: Box<Message<'static>>,
        /// Where.
        flow: Flow,
        /// Its owner (events come back with it).
        owner: TxOwner,
    },
    /// Send outside any transaction (ACK of a 2xx, 2xx retransmission).
    Transmit {
        /// Where.
        flow: Flow,
        /// What.
        message: Box<Message<'static>>,
    },
    /// Forget a client transaction.
    Abandon {
        /// Its owner.
        owner: TxOwner,
    },
    /// Tell the call's driver.
    Event(LegEvent),
}

/// Why a client transaction was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Invite,
    Cancel,
    Bye,
}

/// Timers of legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegTimer {
    /// Retransmit our 2xx.
    Retransmit2xx,
    /// Give up waiting for the ACK of our 2xx.
    AckTimeout,
    /// Give up waiting for the final response after our CANCEL.
    CancelTimeout,
}

#[derive(Debug)]
enum Leg {
    Inbound(Inbound),
    Outbound(Outbound),
}

/// Shared state the legs use: settings, tags, owners and timers.
#[derive(Debug)]
struct Context {
    config: B2buaConfig,
    rng: StdRng,
    next_owner: u64,
    timer_seq: u64,
    timers: BTreeMap<(u64, u64), (LegId, LegTimer)>,
    owners: HashMap<TxOwner, (LegId, Purpose)>,
}

impl Context {
    fn random_hex(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.random_hex())
    }

    fn owner(&mut self, leg: LegId, purpose: Purpose) -> TxOwner {
        self.next_owner += 1;
        let owner = TxOwner(self.next_owner);
        self.owners.insert(owner, (leg, purpose));
        owner
    }

    fn schedule(&mut self, leg: LegId, timer: LegTimer, at_ms: u64) {
        self.timer_seq += 1;
        self.timers.insert((at_ms, self.timer_seq), (leg, timer));
    }

    fn cancel_timers(&mut self, leg: LegId) {
        self.timers.retain(|_, (l, _)| *l != leg);
    }

    fn contact(&self, flow: &Flow) -> String {
        let transport = match flow.transport.via_token() {
            "UDP" => String::new(),
            other => format!(";transport={}", other.to_ascii_lowercase()),
        };
        format!(
            "<sip:carillon@{}:{}{transport}>",
            self.config.host,
            self.port_for(flow)
        )
    }

    /// The port a peer reaches this node on over `flow`'s transport.
    fn port_for(&self, flow: &Flow) -> u16 {
        match (flow.transport, self.config.tls_port) {
            (crate::registrar::FlowTransport::Tls, Some(port)) => port,
            _ => self.config.port,
        }
    }

    fn via(&mut self, flow: &Flow) -> crate::message::Via<'static> {
        let branch = self.branch();
        let text = format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            flow.transport.via_token(),
            self.config.host,
            self.port_for(flow),
        );
        let vias = crate::message::Via::parse_list(&text).map(|v| {
            v.into_iter()
                .map(crate::message::Via::into_owned)
                .collect::<Vec<_>>()
        });
        match vias.ok().and_then(|mut v| v.pop()) {
            Some(via) => via,
            None => panic!("the B2BUA's own Via must parse: {text}"),
        }
    }
}

fn header(name: &str, value: impl Into<String>) -> Header<'static> {
    Header {
        name: Cow::Owned(name.to_string()),
        value: Cow::Owned(value.into()),
    }
}

/// Sets an SDP body.
fn set_sdp(message: &mut Message<'static>, sdp: &str) {
    message.headers.content_type = Some(MediaType {
        kind: Cow::Borrowed("application"),
        subtype: Cow::Borrowed("sdp"),
        params: Vec::new(),
    });
    message.body = Cow::Owned(sdp.as_bytes().to_vec());
}

/// The SDP body of a message, if it has one.
pub fn sdp_of(message: &Message<'_>) -> Option<String> {
    let is_sdp = message.headers.content_type.as_ref().is_some_and(|ct| {
        ct.kind.eq_ignore_ascii_case("application") && ct.subtype.eq_ignore_ascii_case("sdp")
    });
    (is_sdp && !message.body.is_empty())
        .then(|| String::from_utf8_lossy(&message.body).into_owned())
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct B2buaStats {
    /// Inbound legs created.
    pub inbound_legs: u64,
    /// Outbound legs created.
    pub outbound_legs: u64,
    /// Legs refused at `max_legs`.
    pub legs_refused: u64,
    /// 2xx retransmissions sent.
    pub retransmitted_2xx: u64,
    /// Legs ended without the ACK of our 2xx.
    pub no_ack: u64,
}

/// The B2BUA: every leg of the node.
#[derive(Debug)]
pub struct B2bua {
    ctx: Context,
    legs: HashMap<LegId, Leg>,
    dialogs: HashMap<DialogId, LegId>,
    invites: HashMap<ServerTxId, LegId>,
    /// Outbound legs by (Call-ID, our From tag): responses find their leg
    /// whatever their To tag.
    outbound: HashMap<(String, String), LegId>,
    next_leg: u64,
    stats: B2buaStats,
}

impl B2bua {
    /// A B2BUA; `seed` seeds tags, branches and Call-IDs.
    pub fn new(config: B2buaConfig, seed: u64) -> Self {
        B2bua {
            ctx: Context {
                config,
                rng: StdRng::seed_from_u64(seed),
                next_owner: 0,
                timer_seq: 0,
                timers: BTreeMap::new(),
                owners: HashMap::new(),
            },
            legs: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            outbound: HashMap::new(),
            next_leg: 0,
            stats: B2buaStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &B2buaStats {
        &self.stats
    }

    /// Legs alive.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// Whether the leg is alive.
    pub fn has_leg(&self, leg: LegId) -> bool {
        self.legs.contains_key(&leg)
    }

    /// Whether another leg fits under `max_legs`.
    pub fn has_room(&self) -> bool {
        self.legs.len() < self.ctx.config.max_legs
    }

    /// The earliest instant at which [`B2bua::on_tick`] has work.
    pub fn next_deadline(&self) -> Option<u64> {
        self.ctx.timers.keys().next().map(|(at, _)| *at)
    }

    fn allocate(&mut self) -> LegId {
        self.next_leg += 1;
        LegId(self.next_leg)
    }

    /// A new dialog-creating INVITE (the endpoint has checked it): a leg is
    /// made and [`LegEvent::Incoming`] goes to the driver. Refused with 503
    /// when `max_legs` legs are alive.
    pub fn on_invite(
        &mut self,
        now_ms: u64,
        server: ServerTxId,
        flow: Flow,
        invite: Box<Message<'static>>,
        out: &mut Vec<Action>,
    ) -> Option<LegId> {
        let _ = now_ms;
        if !self.has_room() {
            self.stats.legs_refused += 1;
            let mut r = Message::response_to(
                &invite,
                503,
                "Service Unavailable - too many calls in progress on this node",
            );
            r.headers.to.set_tag(Cow::Owned(self.ctx.random_hex()));
            r.headers.other.push(header("Retry-After", "5"));
            out.push(Action::Respond {
                server,
                response: Box::new(r),
            });
            return None;
        }
        let id = self.allocate();
        self.stats.inbound_legs += 1;
        let tag = self.ctx.random_hex();
        let leg = Inbound::new(id, server, flow, invite.clone(), tag);
        self.invites.insert(server, id);
        self.legs.insert(id, Leg::Inbound(leg));
        out.push(Action::Event(LegEvent::Incoming {
            leg: id,
            invite,
            flow,
        }));
        Some(id)
    }

    /// Places an outbound INVITE; `None` when `max_legs` legs are alive or
    /// the request cannot be written (its fields are not SIP).
    pub fn dial(
        &mut self,
        now_ms: u64,
        request: DialRequest,
        out: &mut Vec<Action>,
    ) -> Option<LegId> {
        if !self.has_room() {
            self.stats.legs_refused += 1;
            return None;
        }
        let id = self.allocate();
        let leg = Outbound::start(&mut self.ctx, now_ms, id, request, out)?;
        self.stats.outbound_legs += 1;
        self.outbound.insert(leg.match_key(), id);
        self.legs.insert(id, Leg::Outbound(leg));
        Some(id)
    }

    /// A command from the driver; a command for a leg that has ended is
    /// ignored (the driver hears the `Ended` event).
    pub fn command(&mut self, now_ms: u64, command: LegCommand, out: &mut Vec<Action>) {
        let leg = match &command {
            LegCommand::Progress { leg, .. }
            | LegCommand::Answer { leg, .. }
            | LegCommand::Reject { leg, .. }
            | LegCommand::Hangup { leg } => *leg,
        };
        let Some(state) = self.legs.get_mut(&leg) else {
            return;
        };
        let outcome = match state {
            Leg::Inbound(l) => l.command(&mut self.ctx, now_ms, command, out),
            Leg::Outbound(l) => l.command(&mut self.ctx, now_ms, command, out),
        };
        self.settle(leg, outcome, out);
    }

    /// An in-dialog request or a CANCEL. `cancelled` is the INVITE server
    /// transaction a CANCEL names, if it is alive. Returns false when no leg
    /// takes it (the endpoint answers 481).
    pub fn on_request(
        &mut self,
        now_ms: u64,
        server: ServerTxId,
        flow: Flow,
        request: Box<Message<'static>>,
        cancelled: Option<ServerTxId>,
        out: &mut Vec<Action>,
    ) -> bool {
        let leg = if *request.method() == Method::Cancel {
            cancelled.and_then(|s| self.invites.get(&s).copied())
        } else {
            DialogId::for_incoming_request(&request).and_then(|d| self.dialogs.get(&d).copied())
        };
        let Some(leg) = leg else {
            return false;
        };
        let Some(state) = self.legs.get_mut(&leg) else {
            return false;
        };
        let outcome = match state {
            Leg::Inbound(l) => l.on_request(&mut self.ctx, now_ms, server, flow, &request, out),
            Leg::Outbound(l) => l.on_request(&mut self.ctx, now_ms, server, flow, &request, out),
        };
        self.settle(leg, outcome, out);
        true
    }

    /// An ACK outside any transaction (the ACK of a 2xx).
    pub fn on_ack(&mut self, now_ms: u64, request: &Message<'_>, out: &mut Vec<Action>) {
        let Some(leg) =
            DialogId::for_incoming_request(request).and_then(|d| self.dialogs.get(&d).copied())
        else {
            return;
        };
        if let Some(Leg::Inbound(l)) = self.legs.get_mut(&leg) {
            let outcome = l.on_ack(&mut self.ctx, now_ms, request, out);
            self.settle(leg, outcome, out);
        }
    }

    /// A response on one of our client transactions.
    pub fn on_response(
        &mut self,
        now_ms: u64,
        owner: TxOwner,
        response: &Message<'static>,
        out: &mut Vec<Action>,
    ) {
        let Some(&(leg, purpose)) = self.ctx.owners.get(&owner) else {
            return;
        };
        let Some(Leg::Outbound(_) | Leg::Inbound(_)) = self.legs.get(&leg) else {
            return;
        };
        let outcome = match self.legs.get_mut(&leg) {
            Some(Leg::Outbound(l)) => l.on_response(&mut self.ctx, now_ms, purpose, response, out),
            Some(Leg::Inbound(l)) => l.on_response(purpose, response),
            None => Outcome::Alive,
        };
        self.settle(leg, outcome, out);
    }

    /// A response that matched no client transaction: a retransmitted 2xx
    /// is ACKed again (and a 2xx from a second dialog ACKed and ended).
    pub fn on_stray_response(
        &mut self,
        now_ms: u64,
        response: &Message<'static>,
        out: &mut Vec<Action>,
    ) {
        let _ = now_ms;
        if !matches!(response.status(), Some(200..=299)) || *response.method() != Method::Invite {
            return;
        }
        let key = (
            response.headers.call_id.to_string(),
            response.headers.from.tag().unwrap_or_default().to_string(),
        );
        let Some(&leg) = self.outbound.get(&key) else {
            return;
        };
        if let Some(Leg::Outbound(l)) = self.legs.get_mut(&leg) {
            l.on_stray_2xx(&mut self.ctx, response, out);
        }
    }

    /// A transaction timed out, failed or ended.
    pub fn on_transaction(&mut self, now_ms: u64, tx: TxRefEvent, out: &mut Vec<Action>) {
        let (owner, what) = match tx {
            TxRefEvent::TimedOut(TxRef::Client(owner)) => (owner, TxEnd::TimedOut),
            TxRefEvent::TransportFailed(TxRef::Client(owner)) => (owner, TxEnd::TransportFailed),
            TxRefEvent::Terminated(TxRef::Client(owner)) => {
                self.ctx.owners.remove(&owner);
                return;
            }
            TxRefEvent::Terminated(TxRef::Server(server)) => {
                if let Some(leg) = self.invites.remove(&server) {
                    if let Some(Leg::Inbound(l)) = self.legs.get_mut(&leg) {
                        l.invite_transaction_ended();
                    }
                }
                return;
            }
            TxRefEvent::TransportFailed(TxRef::Server(server)) => {
                if let Some(&leg) = self.invites.get(&server) {
                    self.settle(leg, Outcome::Ended(EndReason::TransportFailed), out);
                }
                return;
            }
            TxRefEvent::TimedOut(TxRef::Server(_)) => return,
        };
        let Some(&(leg, purpose)) = self.ctx.owners.get(&owner) else {
            return;
        };
        let outcome = match self.legs.get_mut(&leg) {
            Some(Leg::Outbound(l)) => l.on_failure(&mut self.ctx, now_ms, purpose, what, out),
            Some(Leg::Inbound(_)) if purpose == Purpose::Bye => {
                Outcome::Ended(EndReason::LocalHangup)
            }
            _ => Outcome::Alive,
        };
        self.settle(leg, outcome, out);
    }

    /// Fires due leg timers.
    pub fn on_tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        while let Some(entry) = self.ctx.timers.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let (leg, timer) = entry.remove();
            let outcome = match self.legs.get_mut(&leg) {
                Some(Leg::Inbound(l)) => {
                    let o = l.on_timer(&mut self.ctx, now_ms, timer, out);
                    if timer == LegTimer::Retransmit2xx && o == Outcome::Alive {
                        self.stats.retransmitted_2xx += u64::from(l.awaiting_ack());
                    }
                    if o == Outcome::Ended(EndReason::NoAck) {
                        self.stats.no_ack += 1;
                    }
                    o
                }
                Some(Leg::Outbound(l)) => l.on_timer(&mut self.ctx, now_ms, timer, out),
                None => continue,
            };
            self.settle(leg, outcome, out);
        }
    }

    /// Applies a leg's outcome: files a dialog it created, or removes the
    /// ended leg and tells the driver.
    fn settle(&mut self, leg: LegId, outcome: Outcome, out: &mut Vec<Action>) {
        match outcome {
            Outcome::Alive => {}
            Outcome::Dialog(id) => {
                self.dialogs.insert(id, leg);
            }
            Outcome::Ended(reason) => {
                let Some(state) = self.legs.remove(&leg) else {
                    return;
                };
                self.ctx.cancel_timers(leg);
                self.dialogs.retain(|_, l| *l != leg);
                match state {
                    Leg::Inbound(l) => {
                        if self.invites.get(&l.server()) == Some(&leg) {
                            self.invites.remove(&l.server());
                        }
                    }
                    Leg::Outbound(l) => {
                        self.outbound.remove(&l.match_key());
                    }
                }
                out.push(Action::Event(LegEvent::Ended { leg, reason }));
            }
        }
    }

    /// Panics if the indexes disagree with the legs (a bug here).
    pub fn check_invariants(&self) {
        for leg in self.dialogs.values() {
            assert!(
                self.legs.contains_key(leg),
                "the dialog index names live legs"
            );
        }
        for leg in self.invites.values() {
            assert!(
                matches!(self.legs.get(leg), Some(Leg::Inbound(_))),
                "the INVITE index names live inbound legs"
            );
        }
        for leg in self.outbound.values() {
            assert!(
                matches!(self.legs.get(leg), Some(Leg::Outbound(_))),
                "the outbound index names live outbound legs"
            );
        }
        assert!(
            self.legs.len() <= self.ctx.config.max_legs,
            "legs stay within max_legs"
        );
        for (leg, _) in self.ctx.timers.values() {
            assert!(self.legs.contains_key(leg), "timers belong to live legs");
        }
    }
}

/// A transaction event the B2BUA needs to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxRefEvent {
    /// Timer B, F or H.
    TimedOut(TxRef),
    /// Transport failure.
    TransportFailed(TxRef),
    /// The transaction ended.
    Terminated(TxRef),
}

/// How a client transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxEnd {
    TimedOut,
    TransportFailed,
}

/// What a leg's step did to the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Nothing to file.
    Alive,
    /// Its dialog now exists under this id.
    Dialog(DialogId),
    /// It is over.
    Ended(EndReason),
}
