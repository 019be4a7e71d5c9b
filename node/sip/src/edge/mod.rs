//! The SIP edge's core: the transaction layer and its transaction users,
//! sans-IO. Bytes, their flow and the time come in; bytes to send and the
//! B2BUA's leg events come out.
//!
//! The parts: [`TransactionLayer`] (parsing, the source guard,
//! retransmissions, timers), and the users it feeds: the registrar
//! ([`register`]: digest, bindings, L1), the keepalive client
//! ([`keepalive`]: OPTIONS towards registered contacts) and the [`B2bua`]
//! (calls). This module routes each new request to its user, in order (RFC
//! 3261 8.2 and 10.3):
//! 1. method: REGISTER to the registrar; OPTIONS outside a dialog answered
//!    here; a dialog-creating INVITE checked (415, 406, 488) and given to
//!    the B2BUA; CANCEL and every request with a To tag to the B2BUA (481
//!    when no leg has it); other known methods 405 with Allow; extension
//!    methods 501;
//! 2. Request-URI scheme other than sip, sips or tel: 416; Max-Forwards 0
//!    on a request that would be forwarded (a Request-URI with a user part):
//!    483; Require with any option tag: 420 with Unsupported.
//!
//! What to do with a call (which number, which queue, whether to challenge)
//! is not decided here: the driver hears [`LegEvent::Incoming`] and answers
//! with [`LegCommand`]s; [`Edge::verify_proxy_credentials`] serves a driver
//! that wants an INVITE authenticated (407).
//!
//! Invariants: every request that is not ACK and passes the guard gets
//! exactly one final response per transaction (retransmissions get the
//! same one); nothing here panics on network input; every table (server and
//! client transactions, timers, the guard, the registrar, digest nonces,
//! keepalives, legs) is bounded or swept.

mod keepalive;
mod register;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::b2bua::{
    Action, B2bua, B2buaConfig, DialRequest, LegCommand, LegEvent, LegId, TxRefEvent,
};
use crate::digest::{Credentials, Digest, DigestConfig, DigestError, Ha1};
use crate::guard::{Guard, GuardConfig};
use crate::keys::{AccountKey, TenantKey};
use crate::message::{Header, Message, Method, Uri};
use crate::registrar::{
    DeviceAllowance, DeviceKey, DeviceRegistration, Flow, FlowTransport, Registrar, RegistrarConfig,
};
use crate::sdp::SessionDescription;
use crate::transaction::layer::{
    Event, Input, LayerConfig, ServerTxId, TransactionLayer, TxOwner, TxRef,
};
use crate::transaction::TimerConfig;

pub use crate::transaction::layer::Transmit;

/// Methods this edge answers (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE";

/// Client transaction owners at or above this belong to the keepalive
/// client; below, to the B2BUA.
const KEEPALIVE_OWNERS: u64 = 1 << 62;

/// A SIP account: one registering device and its digest secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The device.
    pub device: AccountKey,
    /// Its internal short number (an address of record may use it instead
    /// of the username).
    pub short_number: Option<String>,
    /// Digest secrets for the tenant's realm.
    pub ha1: Ha1,
    /// The device-package rule (L1) for this device.
    pub allowance: DeviceAllowance,
}

/// Where the edge looks up tenants and accounts (a view of the ledger, in
/// a node).
pub trait Accounts {
    /// The tenant whose SIP domain (and digest realm) is `domain`.
    fn tenant_for_domain(&self, domain: &str) -> Option<TenantKey>;
    /// The account with SIP username `username` in `tenant`.
    fn account(&self, tenant: TenantKey, username: &str) -> Option<Account>;
}

/// The edge's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Host (name or address) this node puts in its Via, From and Contact.
    pub advertised_host: String,
    /// Port for UDP and TCP.
    pub advertised_port: u16,
    /// Port of the TLS listener, when there is one.
    pub advertised_tls_port: Option<u16>,
    /// Transaction timers.
    pub timers: TimerConfig,
    /// Digest settings.
    pub digest: DigestConfig,
    /// Rate limits and bans.
    pub guard: GuardConfig,
    /// Registrar limits.
    pub registrar: RegistrarConfig,
    /// Most server plus client transactions alive at once; past it, new
    /// requests get 503.
    pub max_transactions: usize,
    /// Most call legs alive at once; past it, new INVITEs get 503.
    pub max_legs: usize,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 5060,
            advertised_tls_port: None,
            timers: TimerConfig::default(),
            digest: DigestConfig::default(),
            guard: GuardConfig::default(),
            registrar: RegistrarConfig::default(),
            max_transactions: 500_000,
            max_legs: 100_000,
        }
    }
}

/// An output of the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeOutput {
    /// Bytes to send.
    Transmit(Transmit),
    /// Something happened on a call leg.
    Leg(LegEvent),
}

/// Counters, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// Requests received (retransmissions included).
    pub requests: u64,
    /// Responses received.
    pub responses: u64,
    /// Messages that did not parse.
    pub parse_errors: u64,
    /// Final responses sent, by class (index 1 = 1xx ... 6 = 6xx).
    pub responses_sent: [u64; 7],
    /// Registrations accepted (200 to a REGISTER with contacts).
    pub registrations: u64,
    /// Failed digest verifications that counted towards a ban.
    pub auth_failures: u64,
    /// Requests absorbed as retransmissions.
    pub retransmissions: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
    /// Keepalives that got no answer.
    pub keepalives_failed: u64,
    /// Call legs alive.
    pub legs: u64,
}

/// What [`Edge::verify_proxy_credentials`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyAuth {
    /// The INVITE carries valid credentials of this account.
    Verified(AccountKey),
    /// Answer 407 with these headers (`Proxy-Authenticate` challenges) and
    /// this reason.
    Challenge {
        /// Reason phrase.
        reason: String,
        /// Headers to add.
        headers: Vec<(String, String)>,
    },
    /// Refuse with this status and reason (a malformed header, a banned
    /// source).
    Refuse {
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// The SIP edge core. One per node, owned by one task.
pub struct Edge<A> {
    config: EdgeConfig,
    accounts: A,
    rng: StdRng,
    layer: TransactionLayer,
    digest: Digest,
    registrar: Registrar,
    keepalives: HashMap<TxOwner, (DeviceKey, String)>,
    next_keepalive: u64,
    b2bua: B2bua,
    last_sweep_ms: u64,
    registrations: u64,
    auth_failures: u64,
    keepalives_sent: u64,
    keepalives_failed: u64,
    events: Vec<Event>,
    actions: Vec<Action>,
}

impl<A> std::fmt::Debug for Edge<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("transactions", &self.layer.transactions())
            .field("legs", &self.b2bua.leg_count())
            .finish_non_exhaustive()
    }
}

fn header(name: &'static str, value: String) -> Header<'static> {
    Header {
        name: Cow::Borrowed(name),
        value: Cow::Owned(value),
    }
}

impl<A: Accounts> Edge<A> {
    /// An edge; `seed` seeds the random tags, branches and nonce salts, and
    /// `nonce_key` signs nonces (both random in a node, fixed in tests).
    pub fn new(config: EdgeConfig, accounts: A, seed: u64, nonce_key: [u8; 32]) -> Self {
        let layer = TransactionLayer::new(
            LayerConfig {
                timers: config.timers,
                guard: config.guard,
                max_transactions: config.max_transactions,
                ..LayerConfig::default()
            },
            seed ^ 0x5eed_1a7e,
        );
        let b2bua = B2bua::new(
            B2buaConfig {
                host: config.advertised_host.clone(),
                port: config.advertised_port,
                tls_port: config.advertised_tls_port,
                timers: config.timers,
                max_legs: config.max_legs,
                ..B2buaConfig::default()
            },
            seed ^ 0xb2b0_a000,
        );
        Edge {
            digest: Digest::new(nonce_key, config.digest),
            registrar: Registrar::new(config.registrar),
            config,
            accounts,
            rng: StdRng::seed_from_u64(seed),
            layer,
            keepalives: HashMap::new(),
            next_keepalive: KEEPALIVE_OWNERS,
            b2bua,
            last_sweep_ms: 0,
            registrations: 0,
            auth_failures: 0,
            keepalives_sent: 0,
            keepalives_failed: 0,
            events: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> EdgeStats {
        let l = self.layer.stats();
        EdgeStats {
            requests: l.requests,
            responses: l.responses,
            parse_errors: l.parse_errors,
            responses_sent: l.responses_sent,
            registrations: self.registrations,
            auth_failures: self.auth_failures,
            retransmissions: l.retransmissions,
            keepalives_sent: self.keepalives_sent,
            keepalives_failed: self.keepalives_failed,
            legs: self.b2bua.leg_count() as u64,
        }
    }

    /// The guard (for its counters).
    pub fn guard(&self) -> &Guard {
        self.layer.guard()
    }

    /// Transactions alive (server, client).
    pub fn transactions(&self) -> (usize, usize) {
        self.layer.transactions()
    }

    /// Bindings held.
    pub fn binding_count(&self) -> usize {
        self.registrar.binding_count()
    }

    /// The B2BUA (for its counters and legs).
    pub fn b2bua(&self) -> &B2bua {
        &self.b2bua
    }

    /// The registration state of every registered device, when it changed
    /// since the last call.
    pub fn registrations_if_changed(
        &mut self,
        now_ms: u64,
    ) -> Option<BTreeMap<DeviceKey, DeviceRegistration>> {
        self.registrar
            .take_dirty()
            .then(|| self.registrar.snapshot(now_ms))
    }

    /// The registration of one device now (bindings with their flows).
    pub fn registration(&self, now_ms: u64, key: DeviceKey) -> Option<DeviceRegistration> {
        self.registrar.registration(now_ms, key)
    }

    /// The earliest instant at which [`Edge::on_tick`] has work.
    pub fn next_deadline(&self) -> Option<u64> {
        match (self.layer.next_deadline(), self.b2bua.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the next keepalive or sweep is due, for shells that sleep until
    /// [`Edge::next_deadline`]: they should also wake at least this often.
    pub fn housekeeping_interval_ms(&self) -> u64 {
        250
    }

    fn tag(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    /// Handles one datagram or framed stream message from `flow`.
    pub fn on_message(&mut self, now_ms: u64, flow: Flow, bytes: &[u8], out: &mut Vec<EdgeOutput>) {
        let mut events = std::mem::take(&mut self.events);
        self.layer
            .handle(now_ms, Input::Datagram { flow, bytes }, &mut events);
        self.drain(now_ms, &mut events, out);
        self.events = events;
    }

    /// Fires due timers, sends due keepalives and sweeps the tables.
    pub fn on_tick(&mut self, now_ms: u64, out: &mut Vec<EdgeOutput>) {
        let mut events = std::mem::take(&mut self.events);
        self.layer.handle(now_ms, Input::Tick, &mut events);
        self.drain(now_ms, &mut events, out);
        let mut actions = std::mem::take(&mut self.actions);
        self.b2bua.on_tick(now_ms, &mut actions);
        self.perform(now_ms, &mut actions, &mut events, out);
        self.actions = actions;
        for due in self.registrar.keepalives_due(now_ms) {
            self.send_keepalive(now_ms, due.key, due.contact, due.flow, &mut events);
        }
        self.drain(now_ms, &mut events, out);
        if now_ms.saturating_sub(self.last_sweep_ms) >= 1_000 {
            self.last_sweep_ms = now_ms;
            self.registrar.expire(now_ms);
            self.layer.guard_mut().sweep(now_ms);
            self.digest.sweep(now_ms);
        }
        self.events = events;
    }

    /// A stream connection closed: its bindings are unreachable, and its
    /// client transactions fail.
    pub fn connection_closed(&mut self, now_ms: u64, connection: u64, out: &mut Vec<EdgeOutput>) {
        self.registrar.connection_closed(connection);
        let mut events = std::mem::take(&mut self.events);
        self.layer
            .handle(now_ms, Input::ConnectionClosed { connection }, &mut events);
        self.drain(now_ms, &mut events, out);
        self.events = events;
    }

    /// A command from the driver of a call.
    pub fn leg_command(&mut self, now_ms: u64, command: LegCommand, out: &mut Vec<EdgeOutput>) {
        let mut actions = std::mem::take(&mut self.actions);
        let mut events = std::mem::take(&mut self.events);
        self.b2bua.command(now_ms, command, &mut actions);
        self.perform(now_ms, &mut actions, &mut events, out);
        self.drain(now_ms, &mut events, out);
        self.actions = actions;
        self.events = events;
    }

    /// Places an outbound INVITE; `None` when the node has no room for
    /// another leg or the request's fields are not SIP.
    pub fn dial(
        &mut self,
        now_ms: u64,
        request: DialRequest,
        out: &mut Vec<EdgeOutput>,
    ) -> Option<LegId> {
        let mut actions = std::mem::take(&mut self.actions);
        let mut events = std::mem::take(&mut self.events);
        let leg = self.b2bua.dial(now_ms, request, &mut actions);
        self.perform(now_ms, &mut actions, &mut events, out);
        self.drain(now_ms, &mut events, out);
        self.actions = actions;
        self.events = events;
        leg
    }

    /// Whether `source` is banned now.
    pub fn is_banned(&self, now_ms: u64, source: IpAddr) -> bool {
        self.layer.guard().is_banned(now_ms, source)
    }

    /// Performs the B2BUA's actions against the layer; events go to `out`.
    fn perform(
        &mut self,
        now_ms: u64,
        actions: &mut Vec<Action>,
        events: &mut Vec<Event>,
        out: &mut Vec<EdgeOutput>,
    ) {
        for action in actions.drain(..) {
            match action {
                Action::Respond { server, response } => {
                    self.layer
                        .handle(now_ms, Input::Respond { server, response }, events)
                }
                Action::Send {
                    request,
                    flow,
                    owner,
                } => self.layer.handle(
                    now_ms,
                    Input::Send {
                        request,
                        flow,
                        owner,
                    },
                    events,
                ),
                Action::Transmit { flow, message } => self.layer.transmit(flow, &message, events),
                Action::Abandon { owner } => {
                    self.layer.handle(now_ms, Input::Abandon { owner }, events)
                }
                Action::Event(e) => out.push(EdgeOutput::Leg(e)),
            }
        }
    }

    /// Routes the layer's events to the users until none is left. Bounded:
    /// each round answers what the previous one produced, and the users
    /// produce layer inputs only in answer to events.
    fn drain(&mut self, now_ms: u64, events: &mut Vec<Event>, out: &mut Vec<EdgeOutput>) {
        let mut actions = std::mem::take(&mut self.actions);
        let mut rounds = 0;
        while !events.is_empty() {
            rounds += 1;
            assert!(
                rounds <= 64,
                "the edge's event loop must settle: users answer events, never loop on them"
            );
            let batch: Vec<Event> = std::mem::take(events);
            for event in batch {
                self.route(now_ms, event, &mut actions, events, out);
                self.perform(now_ms, &mut actions, events, out);
            }
        }
        self.actions = actions;
    }

    fn route(
        &mut self,
        now_ms: u64,
        event: Event,
        actions: &mut Vec<Action>,
        events: &mut Vec<Event>,
        out: &mut Vec<EdgeOutput>,
    ) {
        match event {
            Event::Transmit(t) => out.push(EdgeOutput::Transmit(t)),
            Event::Request {
                server,
                flow,
                request,
            } => {
                self.registrar.flow_seen(&flow);
                self.on_request(now_ms, server, flow, request, actions, events);
            }
            Event::Ack { flow, request } => {
                self.registrar.flow_seen(&flow);
                self.b2bua.on_ack(now_ms, &request, actions);
            }
            Event::Response { owner, response } => {
                if owner.0 >= KEEPALIVE_OWNERS {
                    self.keepalive_answered(owner, &response);
                } else {
                    self.b2bua.on_response(now_ms, owner, &response, actions);
                }
            }
            Event::StrayResponse { response, .. } => {
                self.b2bua.on_stray_response(now_ms, &response, actions)
            }
            Event::TimedOut(tx) => {
                self.transaction_event(now_ms, TxRefEvent::TimedOut(tx), actions)
            }
            Event::TransportFailed(tx) => {
                self.transaction_event(now_ms, TxRefEvent::TransportFailed(tx), actions)
            }
            Event::Terminated(tx) => {
                self.transaction_event(now_ms, TxRefEvent::Terminated(tx), actions)
            }
        }
    }

    fn transaction_event(&mut self, now_ms: u64, event: TxRefEvent, actions: &mut Vec<Action>) {
        let owner = match event {
            TxRefEvent::TimedOut(TxRef::Client(o))
            | TxRefEvent::TransportFailed(TxRef::Client(o))
            | TxRefEvent::Terminated(TxRef::Client(o)) => Some(o),
            _ => None,
        };
        match owner {
            Some(o) if o.0 >= KEEPALIVE_OWNERS => self.keepalive_ended(event, o),
            _ => self.b2bua.on_transaction(now_ms, event, actions),
        }
    }

    fn respond(
        &mut self,
        now_ms: u64,
        server: ServerTxId,
        response: Message<'static>,
        events: &mut Vec<Event>,
    ) {
        self.layer.handle(
            now_ms,
            Input::Respond {
                server,
                response: Box::new(response),
            },
            events,
        );
    }

    fn reply(
        &mut self,
        request: &Message<'_>,
        flow: &Flow,
        status: u16,
        reason: &str,
    ) -> Message<'static> {
        self.layer.reply(request, flow, status, reason)
    }

    fn on_request(
        &mut self,
        now_ms: u64,
        server: ServerTxId,
        flow: Flow,
        request: Box<Message<'static>>,
        actions: &mut Vec<Action>,
        events: &mut Vec<Event>,
    ) {
        let method = request.method().clone();
        let in_dialog = request.headers.to.tag().is_some();
        // CANCEL and in-dialog requests belong to the B2BUA (481 when no leg
        // has them); REGISTER never is in a dialog.
        if method == Method::Cancel || (in_dialog && method != Method::Register) {
            let cancelled = (method == Method::Cancel)
                .then(|| crate::transaction::TransactionKey::for_server(&request))
                .flatten()
                .and_then(|key| self.layer.server_for(&key.with_method(Method::Invite)));
            let taken =
                self.b2bua
                    .on_request(now_ms, server, flow, request.clone(), cancelled, actions);
            if !taken {
                let r = self.reply(
                    &request,
                    &flow,
                    481,
                    "Call/Transaction Does Not Exist - no such dialog or transaction here",
                );
                self.respond(now_ms, server, r, events);
            }
            return;
        }
        let response = match self.check(now_ms, &flow, &request) {
            Some(refusal) => refusal,
            None => match method {
                Method::Options => {
                    let mut r = self.reply(&request, &flow, 200, "OK");
                    r.headers.other.push(header("Allow", ALLOW.into()));
                    r.headers
                        .other
                        .push(header("Accept", "application/sdp".into()));
                    r
                }
                Method::Invite => match self.check_invite(&request, &flow) {
                    Some(refusal) => refusal,
                    None => {
                        self.b2bua.on_invite(now_ms, server, flow, request, actions);
                        return;
                    }
                },
                _ => self.register(now_ms, &flow, &request),
            },
        };
        self.respond(now_ms, server, response, events);
    }

    /// The rules every new request passes (method, scheme, hops, Require).
    fn check(
        &mut self,
        now_ms: u64,
        flow: &Flow,
        request: &Message<'_>,
    ) -> Option<Message<'static>> {
        let _ = now_ms;
        let method = request.method().clone();
        match method {
            Method::Register | Method::Options | Method::Invite => {}
            Method::Bye => {
                return Some(self.reply(
                    request,
                    flow,
                    481,
                    "Call/Transaction Does Not Exist - no such dialog or transaction here",
                ));
            }
            Method::Extension(ref m) => {
                let reason = format!("Not Implemented - method {m} is not supported");
                let mut r = self.reply(request, flow, 501, &reason);
                r.headers.other.push(header("Allow", ALLOW.into()));
                return Some(r);
            }
            ref other => {
                let reason = format!(
                    "Method Not Allowed - {} is not served outside a call",
                    other.as_str()
                );
                let mut r = self.reply(request, flow, 405, &reason);
                r.headers.other.push(header("Allow", ALLOW.into()));
                return Some(r);
            }
        }
        let Some(uri) = request.request_uri() else {
            return Some(self.reply(request, flow, 400, "Bad Request - no Request-URI"));
        };
        let scheme = uri.scheme().to_ascii_lowercase();
        if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
            let reason = format!("Unsupported URI Scheme - {scheme} is not sip, sips or tel");
            return Some(self.reply(request, flow, 416, &reason));
        }
        let has_user = uri.as_sip().is_some_and(|u| u.user.is_some()) || scheme == "tel";
        if has_user && request.headers.max_forwards == Some(0) && method != Method::Register {
            return Some(self.reply(
                request,
                flow,
                483,
                "Too Many Hops - Max-Forwards is 0 and the request would be forwarded",
            ));
        }
        if !request.headers.require.is_empty() {
            let tags = request
                .headers
                .require
                .iter()
                .map(|t| t.as_ref())
                .collect::<Vec<_>>()
                .join(", ");
            let mut r = self.reply(
                request,
                flow,
                420,
                "Bad Extension - a required extension is not supported",
            );
            r.headers.other.push(header("Unsupported", tags));
            return Some(r);
        }
        None
    }

    /// What a dialog-creating INVITE must carry: an SDP offer (no other body
    /// type, 415) with a G.711 audio stream (488), an Accept that allows SDP
    /// answers (406).
    fn check_invite(&mut self, request: &Message<'_>, flow: &Flow) -> Option<Message<'static>> {
        let is_sdp = request.headers.content_type.as_ref().is_some_and(|ct| {
            ct.kind.eq_ignore_ascii_case("application") && ct.subtype.eq_ignore_ascii_case("sdp")
        });
        if !request.body.is_empty() && !is_sdp {
            let mut r = self.reply(
                request,
                flow,
                415,
                "Unsupported Media Type - only application/sdp bodies are accepted",
            );
            r.headers
                .other
                .push(header("Accept", "application/sdp".into()));
            return Some(r);
        }
        let accepts: Vec<&str> = request.headers.get_all("Accept").collect();
        if !accepts.is_empty() {
            let sdp_ok = accepts.iter().flat_map(|a| a.split(',')).any(|t| {
                let t = t
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                matches!(t.as_str(), "application/sdp" | "application/*" | "*/*")
            });
            if !sdp_ok {
                return Some(self.reply(
                    request,
                    flow,
                    406,
                    "Not Acceptable - the answer would be application/sdp, which Accept excludes",
                ));
            }
        }
        if request.body.is_empty() {
            return Some(self.reply(
                request,
                flow,
                488,
                "Not Acceptable Here - an INVITE without an SDP offer (delayed offer) is not served",
            ));
        }
        let text = String::from_utf8_lossy(&request.body);
        let description = match SessionDescription::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                let reason = format!("Not Acceptable Here - the SDP offer is malformed: {e}");
                return Some(self.reply(request, flow, 488, &reason));
            }
        };
        let g711 = description
            .media
            .iter()
            .filter(|m| m.media == "audio" && m.port != 0)
            .any(|m| {
                m.formats.iter().any(|f| {
                    let pt: Option<u8> = f.parse().ok();
                    match pt.and_then(|pt| m.rtpmap(pt).map(|map| (pt, map))) {
                        Some((_, map)) => {
                            map.clock_rate_hz == 8000
                                && (map.encoding.eq_ignore_ascii_case("PCMU")
                                    || map.encoding.eq_ignore_ascii_case("PCMA"))
                        }
                        None => matches!(pt, Some(0) | Some(8)),
                    }
                })
            });
        if !g711 {
            return Some(self.reply(
                request,
                flow,
                488,
                "Not Acceptable Here - the SDP offer has no G.711 (PCMU or PCMA) audio stream",
            ));
        }
        None
    }

    /// Checks the Proxy-Authorization of an INVITE for the realm of
    /// `tenant`: valid credentials name their account; missing or stale ones
    /// get a challenge; wrong ones count towards the source's ban.
    pub fn verify_proxy_credentials(
        &mut self,
        now_ms: u64,
        tenant: TenantKey,
        realm: &str,
        invite: &Message<'_>,
        flow: &Flow,
    ) -> ProxyAuth {
        let challenge = |edge: &mut Self, stale: bool, reason: String| {
            let salt = edge.rng.gen::<u64>();
            ProxyAuth::Challenge {
                reason,
                headers: edge
                    .digest
                    .challenges(realm, now_ms, salt, stale)
                    .into_iter()
                    .map(|c| ("Proxy-Authenticate".to_string(), c))
                    .collect(),
            }
        };
        let value = invite.headers.proxy_authorization.iter().find(|a| {
            a.scheme.eq_ignore_ascii_case("Digest")
                && a.param("realm")
                    .is_some_and(|r| r.eq_ignore_ascii_case(realm))
        });
        let Some(value) = value else {
            return challenge(
                self,
                false,
                "Proxy Authentication Required - calls to internal numbers are authenticated"
                    .into(),
            );
        };
        let creds = match Credentials::from_header(value) {
            Ok(c) => c,
            Err(e @ DigestError::Malformed(_)) => {
                return ProxyAuth::Refuse {
                    status: 400,
                    reason: format!("Bad Request - {e}"),
                }
            }
            Err(e) => {
                return challenge(self, false, format!("Proxy Authentication Required - {e}"))
            }
        };
        let account = self.accounts.account(tenant, &creds.username);
        let Some(uri) = invite.request_uri().cloned() else {
            return ProxyAuth::Refuse {
                status: 400,
                reason: "Bad Request - no Request-URI".into(),
            };
        };
        let verified = match &account {
            Some(a) => self
                .digest
                .verify(now_ms, realm, &Method::Invite, &uri, &creds, &a.ha1),
            None => Err(DigestError::WrongResponse),
        };
        match (verified, account) {
            (Ok(()), Some(a)) => ProxyAuth::Verified(a.device),
            (Ok(()), None) => challenge(self, false, "Proxy Authentication Required".into()),
            (Err(DigestError::StaleNonce), _) => challenge(
                self,
                true,
                "Proxy Authentication Required - digest nonce has expired".into(),
            ),
            (Err(e @ DigestError::UriNotSip), _) => ProxyAuth::Refuse {
                status: 400,
                reason: format!("Bad Request - {e}"),
            },
            (Err(e), _) => {
                if e.counts_as_failure() {
                    self.auth_failures += 1;
                    if let Some(until) =
                        self.layer.guard_mut().auth_failed(now_ms, flow.remote.ip())
                    {
                        let secs = until.saturating_sub(now_ms).div_ceil(1_000);
                        return ProxyAuth::Refuse {
                            status: 403,
                            reason: format!(
                                "Forbidden - too many authentication failures; source banned for {secs} s"
                            ),
                        };
                    }
                }
                challenge(self, false, format!("Proxy Authentication Required - {e}"))
            }
        }
    }

    /// Panics if a table disagrees with another (a bug here).
    pub fn check_invariants(&self) {
        self.layer.check_invariants();
        self.b2bua.check_invariants();
        self.registrar.check_invariants();
    }
}

/// The flow of a UDP datagram from `remote`.
pub fn udp_flow(remote: std::net::SocketAddr) -> Flow {
    Flow {
        transport: FlowTransport::Udp,
        remote,
        connection: None,
    }
}

/// The Request-URI's user part, unescaped, if it is a SIP or tel URI.
pub fn request_user(request: &Message<'_>) -> Option<String> {
    match request.request_uri()? {
        Uri::Sip(sip) => sip.user.as_deref().map(crate::message::percent_decode),
        Uri::Tel(tel) => Some(tel.number.to_string()),
        Uri::Other { .. } => None,
    }
}
