//! The transaction layer (RFC 3261 section 17) over the four machines: it
//! parses what arrives, applies the source guard, absorbs retransmissions,
//! runs the timers, and hands transaction users (TUs) typed events.
//!
//! Inputs ([`Input`]): a datagram or framed stream message, a tick, a TU's
//! response on a server transaction, a TU's request to send as a client
//! transaction, a closed connection. Outputs ([`Event`]): bytes to transmit,
//! a new request, the ACK of a 2xx, a response on a client transaction (or
//! one that matched none), a timeout, a transport failure, a terminated
//! transaction. Client transactions carry the TU's opaque [`TxOwner`] so that
//! their events go back to whoever started them.
//!
//! Before a request reaches a TU: an unparseable one gets a stateless
//! 400/505/513 naming the fault (or is dropped when too little is readable);
//! a banned source gets 403 and a flooding source one 503, then silence
//! ([`Guard`]); a retransmission goes to its transaction; a request that
//! merges with another (same From tag, Call-ID and CSeq, other branch) gets
//! 482; past `max_transactions`, 503. Responses the layer sends (the TU's
//! and its own) go back on the request's flow with `received`/`rport`
//! filled in (symmetric response routing, RFC 3581).
//!
//! Invariants: every table (server and client transactions, merge keys,
//! timers) holds only live transactions and is bounded by
//! `max_transactions`; a server transaction's id is never reused; nothing
//! here panics on network input.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    ClientInput, ClientInvite, ClientNonInvite, Millis, Output, ServerInput, ServerInvite,
    ServerNonInvite, Timer, TimerConfig, TransactionKey,
};
use crate::guard::{Guard, GuardConfig, Verdict};
use crate::message::{reject_response, Header, Message, Method, Param};
use crate::registrar::Flow;

/// A server transaction, as the layer numbers it for its TU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(pub u64);

/// Whatever the TU that started a client transaction wants to hear back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxOwner(pub u64);

/// Either kind of transaction, in events about both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxRef {
    /// A server transaction.
    Server(ServerTxId),
    /// A client transaction, by its owner.
    Client(TxOwner),
}

/// Bytes for the shell to send on a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub flow: Flow,
    /// What.
    pub bytes: Vec<u8>,
}

/// An input of the layer.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram, or one framed stream message, from `flow`.
    Datagram {
        /// Where it came from.
        flow: Flow,
        /// The message.
        bytes: &'a [u8],
    },
    /// Time passed: fire due timers.
    Tick,
    /// The TU answers a server transaction.
    Respond {
        /// The transaction.
        server: ServerTxId,
        /// The response (the layer fills in the Via's received/rport).
        response: Box<Message<'static>>,
    },
    /// The TU sends a request as a client transaction (INVITE or not) to `flow`.
    Send {
        /// The request; its top Via branch names the transaction.
        request: Box<Message<'static>>,
        /// Where.
        flow: Flow,
        /// Who hears the events.
        owner: TxOwner,
    },
    /// A stream connection closed: its client transactions fail.
    ConnectionClosed {
        /// The connection.
        connection: u64,
    },
    /// The TU gives up on a client transaction (an INVITE whose final
    /// response never came after a CANCEL): it is forgotten at once,
    /// without events.
    Abandon {
        /// The transaction's owner.
        owner: TxOwner,
    },
}

/// An output of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send these bytes.
    Transmit(Transmit),
    /// A new request (not ACK) for the TU; it must answer with
    /// [`Input::Respond`] exactly once with a final response.
    Request {
        /// Its server transaction.
        server: ServerTxId,
        /// Where it came from.
        flow: Flow,
        /// The request.
        request: Box<Message<'static>>,
    },
    /// An ACK that belongs to no server transaction: the ACK of a 2xx.
    Ack {
        /// Where it came from.
        flow: Flow,
        /// The ACK.
        request: Box<Message<'static>>,
    },
    /// A response on a client transaction.
    Response {
        /// The transaction's owner.
        owner: TxOwner,
        /// The response.
        response: Box<Message<'static>>,
    },
    /// A response that matches no client transaction (a retransmitted 2xx
    /// after the INVITE transaction ended, RFC 3261 17.1.1.2).
    StrayResponse {
        /// Where it came from.
        flow: Flow,
        /// The response.
        response: Box<Message<'static>>,
    },
    /// Timer B, F or H: the peer never answered (or never ACKed).
    TimedOut(TxRef),
    /// The transport failed for this transaction.
    TransportFailed(TxRef),
    /// The transaction ended; its id or owner names nothing from now on.
    Terminated(TxRef),
}

/// The layer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerConfig {
    /// Timer base values.
    pub timers: TimerConfig,
    /// Rate limits and bans.
    pub guard: GuardConfig,
    /// Most server plus client transactions alive at once.
    pub max_transactions: usize,
    /// The `Server` header value of responses the layer writes itself.
    pub server_header: String,
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            timers: TimerConfig::default(),
            guard: GuardConfig::default(),
            max_transactions: 500_000,
            server_header: concat!("Carillon/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// Counters of the layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Requests received (retransmissions included).
    pub requests: u64,
    /// Responses received.
    pub responses: u64,
    /// Messages that did not parse.
    pub parse_errors: u64,
    /// Final responses sent, by class (index 1 = 1xx ... 6 = 6xx).
    pub responses_sent: [u64; 7],
    /// Requests absorbed as retransmissions.
    pub retransmissions: u64,
}

#[derive(Debug)]
enum ServerMachine {
    NonInvite(ServerNonInvite),
    Invite(ServerInvite),
}

#[derive(Debug)]
struct ServerTx {
    key: TransactionKey,
    machine: ServerMachine,
    flow: Flow,
    merge_key: Option<MergeKey>,
}

#[derive(Debug)]
enum ClientMachine {
    NonInvite(ClientNonInvite),
    Invite(ClientInvite),
}

#[derive(Debug)]
struct ClientTx {
    machine: ClientMachine,
    flow: Flow,
    owner: TxOwner,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MergeKey {
    from_tag: String,
    call_id: String,
    cseq: u32,
    method: Method<'static>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerTarget {
    Server(ServerTxId),
    Client(TransactionKey),
}

fn status_class(status: u16) -> usize {
    usize::from(status / 100).min(6)
}

/// The transaction layer. One per node, owned by the edge task.
#[derive(Debug)]
pub struct TransactionLayer {
    config: LayerConfig,
    guard: Guard,
    rng: StdRng,
    server_keys: HashMap<TransactionKey, ServerTxId>,
    servers: HashMap<ServerTxId, ServerTx>,
    clients: HashMap<TransactionKey, ClientTx>,
    client_keys: HashMap<TxOwner, TransactionKey>,
    merges: HashMap<MergeKey, ServerTxId>,
    timers: BTreeMap<(u64, u64), (TimerTarget, Timer)>,
    timer_seq: u64,
    next_server: u64,
    stats: LayerStats,
}

impl TransactionLayer {
    /// A layer; `seed` seeds the To tags of its stateless answers.
    pub fn new(config: LayerConfig, seed: u64) -> Self {
        TransactionLayer {
            guard: Guard::new(config.guard),
            config,
            rng: StdRng::seed_from_u64(seed),
            server_keys: HashMap::new(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            merges: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            next_server: 0,
            stats: LayerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &LayerStats {
        &self.stats
    }

    /// The source guard (TUs report authentication failures to it).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The source guard, to report authentication failures.
    pub fn guard_mut(&mut self) -> &mut Guard {
        &mut self.guard
    }

    /// The timer settings.
    pub fn timers(&self) -> TimerConfig {
        self.config.timers
    }

    /// Transactions alive (server, client).
    pub fn transactions(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    /// The earliest instant at which a [`Input::Tick`] has work.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// The server transaction filed under `key`, if alive (a CANCEL's TU
    /// finds the INVITE it cancels this way).
    pub fn server_for(&self, key: &TransactionKey) -> Option<ServerTxId> {
        self.server_keys.get(key).copied()
    }

    /// Whether a server transaction is still alive.
    pub fn server_alive(&self, server: ServerTxId) -> bool {
        self.servers.contains_key(&server)
    }

    /// Feeds one input.
    pub fn handle(&mut self, now_ms: u64, input: Input<'_>, out: &mut Vec<Event>) {
        match input {
            Input::Datagram { flow, bytes } => self.on_datagram(now_ms, flow, bytes, out),
            Input::Tick => self.on_tick(now_ms, out),
            Input::Respond { server, response } => self.respond(now_ms, server, response, out),
            Input::Send {
                request,
                flow,
                owner,
            } => self.send(now_ms, request, flow, owner, out),
            Input::Abandon { owner } => {
                if let Some(key) = self.client_keys.remove(&owner) {
                    self.clients.remove(&key);
                }
            }
            Input::ConnectionClosed { connection } => {
                let keys: Vec<TransactionKey> = self
                    .clients
                    .iter()
                    .filter(|(_, t)| t.flow.connection == Some(connection))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.feed_client(now_ms, key, ClientInput::TransportError, out);
                }
            }
        }
    }

    /// Sends a message outside any transaction: the ACK of a 2xx, a 2xx
    /// retransmission after its server transaction ended, a response the
    /// TU writes without a transaction.
    pub fn transmit(&mut self, flow: Flow, message: &Message<'_>, out: &mut Vec<Event>) {
        if let Some(status) = message.status() {
            if status >= 200 {
                self.stats.responses_sent[status_class(status)] += 1;
            }
        }
        out.push(Event::Transmit(Transmit {
            flow,
            bytes: message.to_bytes(),
        }));
    }

    fn schedule(&mut self, target: TimerTarget, timer: Timer, at: Millis) {
        self.timer_seq += 1;
        self.timers.insert((at.0, self.timer_seq), (target, timer));
    }

    fn tag(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    fn on_datagram(&mut self, now_ms: u64, flow: Flow, bytes: &[u8], out: &mut Vec<Event>) {
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(error) => {
                self.stats.parse_errors += 1;
                let tag = self.tag();
                if let Some(answer) = reject_response(bytes, &error, &tag) {
                    self.stats.responses_sent[status_class(answer.status)] += 1;
                    out.push(Event::Transmit(Transmit {
                        flow,
                        bytes: answer.to_bytes(),
                    }));
                }
                return;
            }
        };
        if message.is_request() {
            self.stats.requests += 1;
            self.on_request(now_ms, flow, message.into_owned(), out);
        } else {
            self.stats.responses += 1;
            let response = message.into_owned();
            match TransactionKey::for_client_response(&response) {
                Some(key) if self.clients.contains_key(&key) => {
                    self.feed_client(now_ms, key, ClientInput::Response(Box::new(response)), out)
                }
                _ => out.push(Event::StrayResponse {
                    flow,
                    response: Box::new(response),
                }),
            }
        }
    }

    /// A response to `request` written by the layer itself (refusals).
    pub fn reply(
        &mut self,
        request: &Message<'_>,
        flow: &Flow,
        status: u16,
        reason: &str,
    ) -> Message<'static> {
        let mut r = Message::response_to(request, status, reason);
        if r.headers.to.tag().is_none() && status > 100 {
            let tag = self.tag();
            r.headers.to.set_tag(Cow::Owned(tag));
        }
        fill_via(&mut r, flow);
        r.headers.other.push(Header {
            name: Cow::Borrowed("Server"),
            value: Cow::Owned(self.config.server_header.clone()),
        });
        r
    }

    fn stateless(&mut self, flow: Flow, response: Message<'static>, out: &mut Vec<Event>) {
        self.transmit(flow, &response, out);
    }

    fn on_request(
        &mut self,
        now_ms: u64,
        flow: Flow,
        request: Message<'static>,
        out: &mut Vec<Event>,
    ) {
        let is_ack = matches!(request.method(), Method::Ack);
        match self.guard.check(now_ms, flow.remote.ip()) {
            Verdict::Allow => {}
            Verdict::Banned { until_ms } => {
                if !is_ack {
                    let secs = until_ms.saturating_sub(now_ms).div_ceil(1_000);
                    let reason = format!(
                        "Forbidden - source banned after repeated authentication failures for {secs} s more"
                    );
                    let r = self.reply(&request, &flow, 403, &reason);
                    self.stateless(flow, r, out);
                }
                return;
            }
            Verdict::RateLimited { notify } => {
                if notify && !is_ack {
                    let mut r = self.reply(
                        &request,
                        &flow,
                        503,
                        "Service Unavailable - request rate limit for this source exceeded",
                    );
                    r.headers.other.push(Header {
                        name: Cow::Borrowed("Retry-After"),
                        value: Cow::Borrowed("1"),
                    });
                    self.stateless(flow, r, out);
                }
                return;
            }
        }
        let Some(key) = TransactionKey::for_server(&request) else {
            return;
        };
        if let Some(&id) = self.server_keys.get(&key) {
            self.stats.retransmissions += u64::from(!is_ack);
            let Some(tx) = self.servers.get_mut(&id) else {
                return;
            };
            // A retransmission from a new source (a NAT rebinding, a phone
            // that moved) is answered where it came from.
            if tx.flow.transport == flow.transport {
                tx.flow = flow;
            }
            let input = ServerInput::Request(Box::new(request));
            let outputs = match &mut tx.machine {
                ServerMachine::NonInvite(m) => m.handle(Millis(now_ms), input),
                ServerMachine::Invite(m) => m.handle(Millis(now_ms), input),
            };
            self.run_server_outputs(id, outputs, out);
            return;
        }
        if is_ack {
            out.push(Event::Ack {
                flow,
                request: Box::new(request),
            });
            return;
        }
        let merge_key = request.headers.to.tag().is_none().then(|| MergeKey {
            from_tag: request.headers.from.tag().unwrap_or_default().to_string(),
            call_id: request.headers.call_id.to_string(),
            cseq: request.headers.cseq.number,
            method: request.method().clone(),
        });
        if let Some(m) = &merge_key {
            if self.merges.contains_key(m) {
                let r = self.reply(&request, &flow, 482, "Loop Detected - merged request");
                self.stateless(flow, r, out);
                return;
            }
        }
        if self.servers.len() + self.clients.len() >= self.config.max_transactions {
            let mut r = self.reply(
                &request,
                &flow,
                503,
                "Service Unavailable - too many transactions in progress",
            );
            r.headers.other.push(Header {
                name: Cow::Borrowed("Retry-After"),
                value: Cow::Borrowed("5"),
            });
            self.stateless(flow, r, out);
            return;
        }
        let reliable = flow.transport.is_reliable();
        self.next_server += 1;
        let id = ServerTxId(self.next_server);
        let (machine, outputs) = if matches!(request.method(), Method::Invite) {
            let (m, o) = ServerInvite::start(Millis(now_ms), request, reliable, self.config.timers);
            (ServerMachine::Invite(m), o)
        } else {
            let (m, o) =
                ServerNonInvite::start(Millis(now_ms), request, reliable, self.config.timers);
            (ServerMachine::NonInvite(m), o)
        };
        if let Some(m) = &merge_key {
            self.merges.insert(m.clone(), id);
        }
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerTx {
                key,
                machine,
                flow,
                merge_key,
            },
        );
        self.run_server_outputs(id, outputs, out);
    }

    fn respond(
        &mut self,
        now_ms: u64,
        server: ServerTxId,
        mut response: Box<Message<'static>>,
        out: &mut Vec<Event>,
    ) {
        let Some(tx) = self.servers.get_mut(&server) else {
            return;
        };
        fill_via(&mut response, &tx.flow);
        let input = ServerInput::Respond(response);
        let outputs = match &mut tx.machine {
            ServerMachine::NonInvite(m) => m.handle(Millis(now_ms), input),
            ServerMachine::Invite(m) => m.handle(Millis(now_ms), input),
        };
        self.run_server_outputs(server, outputs, out);
    }

    fn send(
        &mut self,
        now_ms: u64,
        request: Box<Message<'static>>,
        flow: Flow,
        owner: TxOwner,
        out: &mut Vec<Event>,
    ) {
        let Some(key) = TransactionKey::for_client_request(&request) else {
            // A TU always writes a branch; without one there is no
            // transaction to run, and the TU hears it failed.
            out.push(Event::TransportFailed(TxRef::Client(owner)));
            out.push(Event::Terminated(TxRef::Client(owner)));
            return;
        };
        let reliable = flow.transport.is_reliable();
        let (machine, outputs) = if matches!(request.method(), Method::Invite) {
            let (m, o) =
                ClientInvite::start(Millis(now_ms), *request, reliable, self.config.timers);
            (ClientMachine::Invite(m), o)
        } else {
            let (m, o) =
                ClientNonInvite::start(Millis(now_ms), *request, reliable, self.config.timers);
            (ClientMachine::NonInvite(m), o)
        };
        if let Some(old) = self.client_keys.insert(owner, key.clone()) {
            // An owner names one transaction at a time; a TU reusing one
            // replaces the old transaction.
            self.clients.remove(&old);
        }
        self.clients.insert(
            key.clone(),
            ClientTx {
                machine,
                flow,
                owner,
            },
        );
        self.run_client_outputs(key, outputs, out);
    }

    fn on_tick(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let (target, timer) = entry.remove();
            match target {
                TimerTarget::Server(id) => {
                    let Some(tx) = self.servers.get_mut(&id) else {
                        continue;
                    };
                    let input = ServerInput::TimerFired(timer);
                    let outputs = match &mut tx.machine {
                        ServerMachine::NonInvite(m) => m.handle(Millis(now_ms), input),
                        ServerMachine::Invite(m) => m.handle(Millis(now_ms), input),
                    };
                    self.run_server_outputs(id, outputs, out);
                }
                TimerTarget::Client(key) => {
                    self.feed_client(now_ms, key, ClientInput::TimerFired(timer), out)
                }
            }
        }
    }

    fn feed_client(
        &mut self,
        now_ms: u64,
        key: TransactionKey,
        input: ClientInput,
        out: &mut Vec<Event>,
    ) {
        let Some(tx) = self.clients.get_mut(&key) else {
            return;
        };
        let outputs = match &mut tx.machine {
            ClientMachine::NonInvite(m) => m.handle(Millis(now_ms), input),
            ClientMachine::Invite(m) => m.handle(Millis(now_ms), input),
        };
        self.run_client_outputs(key, outputs, out);
    }

    fn run_client_outputs(
        &mut self,
        key: TransactionKey,
        outputs: Vec<Output>,
        out: &mut Vec<Event>,
    ) {
        for output in outputs {
            let Some(tx) = self.clients.get(&key) else {
                return;
            };
            let (flow, owner) = (tx.flow, tx.owner);
            match output {
                Output::Send(m) => out.push(Event::Transmit(Transmit {
                    flow,
                    bytes: m.to_bytes(),
                })),
                Output::Deliver(response) => out.push(Event::Response { owner, response }),
                Output::Schedule { timer, at } => {
                    self.schedule(TimerTarget::Client(key.clone()), timer, at)
                }
                Output::Timeout => out.push(Event::TimedOut(TxRef::Client(owner))),
                Output::TransportFailed => out.push(Event::TransportFailed(TxRef::Client(owner))),
                Output::Terminated => {
                    self.clients.remove(&key);
                    if self.client_keys.get(&owner) == Some(&key) {
                        self.client_keys.remove(&owner);
                    }
                    out.push(Event::Terminated(TxRef::Client(owner)));
                }
            }
        }
    }

    fn run_server_outputs(&mut self, id: ServerTxId, outputs: Vec<Output>, out: &mut Vec<Event>) {
        for output in outputs {
            let Some(tx) = self.servers.get(&id) else {
                return;
            };
            let flow = tx.flow;
            match output {
                Output::Send(m) => self.transmit(flow, &m, out),
                Output::Deliver(request) => {
                    if matches!(request.method(), Method::Ack) {
                        out.push(Event::Ack { flow, request });
                    } else {
                        out.push(Event::Request {
                            server: id,
                            flow,
                            request,
                        });
                    }
                }
                Output::Schedule { timer, at } => self.schedule(TimerTarget::Server(id), timer, at),
                Output::Timeout => out.push(Event::TimedOut(TxRef::Server(id))),
                Output::TransportFailed => out.push(Event::TransportFailed(TxRef::Server(id))),
                Output::Terminated => {
                    if let Some(tx) = self.servers.remove(&id) {
                        self.server_keys.remove(&tx.key);
                        if let Some(m) = tx.merge_key {
                            self.merges.remove(&m);
                        }
                    }
                    out.push(Event::Terminated(TxRef::Server(id)));
                }
            }
        }
    }

    /// Panics if the tables disagree (a bug here).
    pub fn check_invariants(&self) {
        assert_eq!(
            self.server_keys.len(),
            self.servers.len(),
            "every server transaction is filed under exactly one key"
        );
        for (key, id) in &self.server_keys {
            assert!(
                self.servers.get(id).is_some_and(|t| &t.key == key),
                "a key names the transaction filed under it"
            );
        }
        assert_eq!(
            self.client_keys.len(),
            self.clients.len(),
            "every client transaction has exactly one owner"
        );
        for (owner, key) in &self.client_keys {
            assert!(
                self.clients.get(key).is_some_and(|t| &t.owner == owner),
                "an owner names its own transaction"
            );
        }
        for id in self.merges.values() {
            assert!(
                self.servers.contains_key(id),
                "merge keys name live transactions"
            );
        }
    }
}

/// Fills in `received` and `rport` on the top Via of a response for the
/// request's source: when the client asked (`rport`) or its Via host is not
/// the source address.
fn fill_via(response: &mut Message<'_>, flow: &Flow) {
    let Some(via) = response.headers.via.first_mut() else {
        return;
    };
    let asked_rport = via.rport().is_some();
    let source = flow.remote;
    if asked_rport || via.host.ip() != Some(source.ip()) {
        via.params
            .retain(|p| !p.name.eq_ignore_ascii_case("received"));
        via.params
            .push(Param::new("received", source.ip().to_string()));
    }
    if asked_rport {
        via.params.retain(|p| !p.name.eq_ignore_ascii_case("rport"));
        via.params
            .push(Param::new("rport", source.port().to_string()));
    }
}
