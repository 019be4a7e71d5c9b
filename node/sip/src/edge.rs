//! The SIP edge's core: what a node does with each message it receives,
//! sans-IO. Bytes, their flow and the time come in; bytes to send on a flow
//! come out. It runs the server transactions (retransmissions absorbed),
//! the registrar with digest authentication, OPTIONS keepalives towards
//! registered contacts, and the protections of [`super::guard`].
//!
//! Request handling, in order (RFC 3261 8.2 and 10.3):
//! 1. unparseable: a stateless 400/505/513 naming the fault when enough of
//!    the request is readable to answer, otherwise dropped; responses that
//!    do not parse are dropped;
//! 2. the source's guard verdict: banned sources get 403, floods one 503
//!    then silence;
//! 3. retransmissions go to their transaction; a request that merges with
//!    another (same From tag, Call-ID and CSeq, other branch) gets 482;
//! 4. method: REGISTER and OPTIONS are served; INVITE is checked, then
//!    refused with 480 until calls are routed; ACK is absorbed; CANCEL and
//!    BYE without a dialog get 481; other known methods 405 with Allow;
//!    extension methods 501;
//! 5. Request-URI scheme other than sip, sips or tel: 416; Max-Forwards 0
//!    on a request that would be forwarded (a Request-URI with a user part):
//!    483; Require with any option tag: 420 with Unsupported;
//! 6. REGISTER: domain served (404), digest (401 with SHA-256 and MD5
//!    challenges, `stale=true` for expired nonces), the credentials' right
//!    to the address of record (403), then the registrar (423, 400, 403).
//!
//! Responses on UDP go back to the source address and port (symmetric
//! response routing, as RFC 3581 asks when `rport` is present; forced for
//! every request, because phones behind NAT do not always ask), with
//! `received` and `rport` filled in when the client asked for them or its
//! Via host is not the source.
//!
//! Invariants: every request that is not ACK and passes the guard gets
//! exactly one final response per transaction (retransmissions get the
//! same one); nothing here panics on network input; every table (server
//! and client transactions, timers, the guard, the registrar, digest
//! nonces) is bounded or swept.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::keys::{AccountKey, TenantKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::digest::{Credentials, Digest, DigestConfig, DigestError, Ha1};
use super::guard::{Guard, GuardConfig, Verdict};
use super::message::{reject_response, Contact, Header, Message, Method, Param, Uri};
use super::registrar::{
    ContactRequest, DeviceAllowance, DeviceKey, DeviceRegistration, Flow, FlowTransport,
    RegisterRefusal, RegisterRequest, Registrar, RegistrarConfig,
};
use super::transaction::{
    ClientInput, ClientNonInvite, Millis, Output, ServerInput, ServerInvite, ServerNonInvite,
    Timer, TimerConfig, TransactionKey,
};

/// Methods this edge answers (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

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

/// Where the edge looks up tenants and accounts (the ledger, in a node).
pub trait Accounts {
    /// The tenant whose SIP domain (and digest realm) is `domain`.
    fn tenant_for_domain(&self, domain: &str) -> Option<TenantKey>;
    /// The account with SIP username `username` in `tenant`.
    fn account(&self, tenant: TenantKey, username: &str) -> Option<Account>;
}

/// The edge's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Host (name or address) this node puts in its Via and From headers.
    pub advertised_host: String,
    /// Port for UDP and TCP.
    pub advertised_port: u16,
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
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 5060,
            timers: TimerConfig::default(),
            digest: DigestConfig::default(),
            guard: GuardConfig::default(),
            registrar: RegistrarConfig::default(),
            max_transactions: 500_000,
        }
    }
}

/// Something for the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub flow: Flow,
    /// What.
    pub bytes: Vec<u8>,
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
}

#[derive(Debug)]
enum ServerMachine {
    NonInvite(ServerNonInvite),
    Invite(ServerInvite),
}

#[derive(Debug)]
struct ServerTx {
    machine: ServerMachine,
    flow: Flow,
    merge_key: Option<MergeKey>,
}

#[derive(Debug)]
struct ClientTx {
    machine: ClientNonInvite,
    flow: Flow,
    key: DeviceKey,
    contact: String,
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
    Server(TransactionKey),
    Client(TransactionKey),
}

/// The SIP edge core. One per node, owned by one task.
pub struct Edge<A> {
    config: EdgeConfig,
    accounts: A,
    rng: StdRng,
    digest: Digest,
    guard: Guard,
    registrar: Registrar,
    servers: HashMap<TransactionKey, ServerTx>,
    clients: HashMap<TransactionKey, ClientTx>,
    merges: HashMap<MergeKey, TransactionKey>,
    timers: BTreeMap<(u64, u64), (TimerTarget, Timer)>,
    timer_seq: u64,
    last_sweep_ms: u64,
    stats: EdgeStats,
}

impl<A> std::fmt::Debug for Edge<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("servers", &self.servers.len())
            .field("clients", &self.clients.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn status_class(status: u16) -> usize {
    usize::from(status / 100).min(6)
}

impl<A: Accounts> Edge<A> {
    /// An edge; `seed` seeds the random tags, branches and nonce salts, and
    /// `nonce_key` signs nonces (both random in a node, fixed in tests).
    pub fn new(config: EdgeConfig, accounts: A, seed: u64, nonce_key: [u8; 32]) -> Self {
        Edge {
            digest: Digest::new(nonce_key, config.digest),
            guard: Guard::new(config.guard),
            registrar: Registrar::new(config.registrar),
            config,
            accounts,
            rng: StdRng::seed_from_u64(seed),
            servers: HashMap::new(),
            clients: HashMap::new(),
            merges: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            last_sweep_ms: 0,
            stats: EdgeStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &EdgeStats {
        &self.stats
    }

    /// The guard (for its counters).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Transactions alive (server, client).
    pub fn transactions(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    /// Bindings held.
    pub fn binding_count(&self) -> usize {
        self.registrar.binding_count()
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

    /// The earliest instant at which [`Edge::on_tick`] has work.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    fn tag(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    fn schedule(&mut self, target: TimerTarget, timer: Timer, at: Millis) {
        self.timer_seq += 1;
        self.timers.insert((at.0, self.timer_seq), (target, timer));
    }

    /// Handles one datagram or framed stream message from `flow`.
    pub fn on_message(&mut self, now_ms: u64, flow: Flow, bytes: &[u8], out: &mut Vec<Transmit>) {
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(error) => {
                self.stats.parse_errors += 1;
                let tag = self.tag();
                if let Some(answer) = reject_response(bytes, &error, &tag) {
                    self.stats.responses_sent[status_class(answer.status)] += 1;
                    out.push(Transmit {
                        flow,
                        bytes: answer.to_bytes(),
                    });
                }
                return;
            }
        };
        if message.is_request() {
            self.stats.requests += 1;
            self.on_request(now_ms, flow, message.into_owned(), out);
        } else {
            self.stats.responses += 1;
            self.on_response(now_ms, message.into_owned(), out);
        }
    }

    fn on_response(&mut self, now_ms: u64, response: Message<'static>, out: &mut Vec<Transmit>) {
        let Some(key) = TransactionKey::for_client_response(&response) else {
            return;
        };
        self.feed_client(now_ms, key, ClientInput::Response(Box::new(response)), out);
    }

    fn feed_client(
        &mut self,
        now_ms: u64,
        key: TransactionKey,
        input: ClientInput,
        out: &mut Vec<Transmit>,
    ) {
        let Some(tx) = self.clients.get_mut(&key) else {
            return;
        };
        let outputs = tx.machine.handle(Millis(now_ms), input);
        self.run_client_outputs(key, outputs, out);
    }

    fn run_client_outputs(
        &mut self,
        key: TransactionKey,
        outputs: Vec<Output>,
        out: &mut Vec<Transmit>,
    ) {
        for output in outputs {
            let Some(tx) = self.clients.get(&key) else {
                return;
            };
            let (flow, device, contact) = (tx.flow, tx.key, tx.contact.clone());
            match output {
                Output::Send(m) => out.push(Transmit {
                    flow,
                    bytes: m.to_bytes(),
                }),
                Output::Deliver(_) => self.registrar.keepalive_result(device, &contact, true),
                Output::Schedule { timer, at } => {
                    self.schedule(TimerTarget::Client(key.clone()), timer, at)
                }
                Output::Timeout | Output::TransportFailed => {
                    self.stats.keepalives_failed += 1;
                    self.registrar.keepalive_result(device, &contact, false);
                }
                Output::Terminated => {
                    self.clients.remove(&key);
                }
            }
        }
    }

    fn run_server_outputs(
        &mut self,
        key: &TransactionKey,
        outputs: Vec<Output>,
        out: &mut Vec<Transmit>,
    ) {
        for output in outputs {
            let Some(tx) = self.servers.get(key) else {
                return;
            };
            let flow = tx.flow;
            match output {
                Output::Send(m) => {
                    if let Some(status) = m.status() {
                        if status >= 200 {
                            self.stats.responses_sent[status_class(status)] += 1;
                        }
                    }
                    out.push(Transmit {
                        flow,
                        bytes: m.to_bytes(),
                    })
                }
                Output::Schedule { timer, at } => {
                    self.schedule(TimerTarget::Server(key.clone()), timer, at)
                }
                Output::Terminated => {
                    if let Some(tx) = self.servers.remove(key) {
                        if let Some(m) = tx.merge_key {
                            self.merges.remove(&m);
                        }
                    }
                }
                Output::Deliver(_) | Output::Timeout | Output::TransportFailed => {}
            }
        }
    }

    /// Answers `request` outside any transaction (guard refusals, 503 on
    /// overload), once.
    fn stateless(&mut self, flow: Flow, response: Message<'static>, out: &mut Vec<Transmit>) {
        if let Some(status) = response.status() {
            self.stats.responses_sent[status_class(status)] += 1;
        }
        out.push(Transmit {
            flow,
            bytes: response.to_bytes(),
        });
    }

    fn on_request(
        &mut self,
        now_ms: u64,
        flow: Flow,
        request: Message<'static>,
        out: &mut Vec<Transmit>,
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
                    r.headers.other.push(header("Retry-After", "1".into()));
                    self.stateless(flow, r, out);
                }
                return;
            }
        }
        self.registrar.flow_seen(&flow);
        let Some(key) = TransactionKey::for_server(&request) else {
            return;
        };
        if let Some(tx) = self.servers.get_mut(&key) {
            self.stats.retransmissions += 1;
            // A retransmission from a new source (a NAT rebinding, a phone
            // that moved) is answered where it came from.
            if tx.flow.transport == flow.transport {
                tx.flow = flow;
            }
            let outputs = match &mut self.servers.get_mut(&key).map(|t| &mut t.machine) {
                Some(ServerMachine::NonInvite(m)) => {
                    m.handle(Millis(now_ms), ServerInput::Request(Box::new(request)))
                }
                Some(ServerMachine::Invite(m)) => {
                    m.handle(Millis(now_ms), ServerInput::Request(Box::new(request)))
                }
                None => Vec::new(),
            };
            self.run_server_outputs(&key, outputs, out);
            return;
        }
        if is_ack {
            // An ACK for a transaction that is gone, or for a 2xx (this edge
            // sends no 2xx to INVITE yet): nothing to do.
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
            r.headers.other.push(header("Retry-After", "5".into()));
            self.stateless(flow, r, out);
            return;
        }
        let reliable = flow.transport.is_reliable();
        let invite = matches!(request.method(), Method::Invite);
        let response = self.answer(now_ms, &flow, &request);
        let (machine, outputs) = if invite {
            let (m, o) = ServerInvite::start(Millis(now_ms), request, reliable, self.config.timers);
            (ServerMachine::Invite(m), o)
        } else {
            let (m, o) =
                ServerNonInvite::start(Millis(now_ms), request, reliable, self.config.timers);
            (ServerMachine::NonInvite(m), o)
        };
        if let Some(m) = &merge_key {
            self.merges.insert(m.clone(), key.clone());
        }
        self.servers.insert(
            key.clone(),
            ServerTx {
                machine,
                flow,
                merge_key,
            },
        );
        self.run_server_outputs(&key, outputs, out);
        let outputs = match self.servers.get_mut(&key).map(|t| &mut t.machine) {
            Some(ServerMachine::NonInvite(m)) => {
                m.handle(Millis(now_ms), ServerInput::Respond(Box::new(response)))
            }
            Some(ServerMachine::Invite(m)) => {
                m.handle(Millis(now_ms), ServerInput::Respond(Box::new(response)))
            }
            None => Vec::new(),
        };
        self.run_server_outputs(&key, outputs, out);
    }

    /// A response to `request` with a To tag, the Via filled in for the
    /// flow, and a Server header.
    fn reply(
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
        if let Some(via) = r.headers.via.first_mut() {
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
        r.headers.other.push(header(
            "Server",
            concat!("Carillon/", env!("CARGO_PKG_VERSION")).into(),
        ));
        r
    }

    /// The transaction user: the final response to a new request.
    fn answer(&mut self, now_ms: u64, flow: &Flow, request: &Message<'_>) -> Message<'static> {
        let method = request.method().clone();
        match method {
            Method::Register | Method::Options | Method::Invite => {}
            Method::Cancel | Method::Bye => {
                return self.reply(
                    request,
                    flow,
                    481,
                    "Call/Transaction Does Not Exist - no such dialog or transaction here",
                );
            }
            Method::Extension(ref m) => {
                let reason = format!("Not Implemented - method {m} is not supported");
                let mut r = self.reply(request, flow, 501, &reason);
                r.headers.other.push(header("Allow", ALLOW.into()));
                return r;
            }
            ref other => {
                let reason = format!(
                    "Method Not Allowed - {} is not served by this edge",
                    other.as_str()
                );
                let mut r = self.reply(request, flow, 405, &reason);
                r.headers.other.push(header("Allow", ALLOW.into()));
                return r;
            }
        }
        let Some(uri) = request.request_uri() else {
            return self.reply(request, flow, 400, "Bad Request - no Request-URI");
        };
        let scheme = uri.scheme().to_ascii_lowercase();
        if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
            let reason = format!("Unsupported URI Scheme - {scheme} is not sip, sips or tel");
            return self.reply(request, flow, 416, &reason);
        }
        let has_user = uri.as_sip().is_some_and(|u| u.user.is_some()) || scheme == "tel";
        if has_user && request.headers.max_forwards == Some(0) && method != Method::Register {
            return self.reply(
                request,
                flow,
                483,
                "Too Many Hops - Max-Forwards is 0 and the request would be forwarded",
            );
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
            return r;
        }
        match method {
            Method::Options => {
                let mut r = self.reply(request, flow, 200, "OK");
                r.headers.other.push(header("Allow", ALLOW.into()));
                r.headers
                    .other
                    .push(header("Accept", "application/sdp".into()));
                r
            }
            Method::Invite => self.answer_invite(request, flow),
            _ => self.register(now_ms, flow, request),
        }
    }

    fn answer_invite(&mut self, request: &Message<'_>, flow: &Flow) -> Message<'static> {
        if !request.body.is_empty() {
            let sdp = request.headers.content_type.as_ref().is_some_and(|ct| {
                ct.kind.eq_ignore_ascii_case("application")
                    && ct.subtype.eq_ignore_ascii_case("sdp")
            });
            if !sdp {
                let mut r = self.reply(
                    request,
                    flow,
                    415,
                    "Unsupported Media Type - only application/sdp bodies are accepted",
                );
                r.headers
                    .other
                    .push(header("Accept", "application/sdp".into()));
                return r;
            }
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
                return self.reply(
                    request,
                    flow,
                    406,
                    "Not Acceptable - the answer would be application/sdp, which Accept excludes",
                );
            }
        }
        self.reply(
            request,
            flow,
            480,
            "Temporarily Unavailable - calls are not routed by this node yet",
        )
    }

    fn challenge(
        &mut self,
        request: &Message<'_>,
        flow: &Flow,
        realm: &str,
        now_ms: u64,
        stale: bool,
        reason: &str,
    ) -> Message<'static> {
        let salt = self.rng.gen::<u64>();
        let mut r = self.reply(request, flow, 401, reason);
        for c in self.digest.challenges(realm, now_ms, salt, stale) {
            r.headers.other.push(header("WWW-Authenticate", c));
        }
        r
    }

    fn register(&mut self, now_ms: u64, flow: &Flow, request: &Message<'_>) -> Message<'static> {
        let Some(sip_uri) = request.request_uri().and_then(Uri::as_sip) else {
            return self.reply(
                request,
                flow,
                416,
                "Unsupported URI Scheme - REGISTER needs a sip or sips Request-URI",
            );
        };
        let domain = sip_uri.host.to_string().to_ascii_lowercase();
        let Some(tenant) = self.accounts.tenant_for_domain(&domain) else {
            let reason = format!("Not Found - domain {domain} is not served here");
            return self.reply(request, flow, 404, &reason);
        };
        let realm = domain;
        let digest_value = request.headers.authorization.iter().find(|a| {
            a.scheme.eq_ignore_ascii_case("Digest")
                && a.param("realm")
                    .is_some_and(|r| r.eq_ignore_ascii_case(&realm))
        });
        let Some(value) = digest_value else {
            return self.challenge(request, flow, &realm, now_ms, false, "Unauthorized");
        };
        let creds = match Credentials::from_header(value) {
            Ok(c) => c,
            Err(e @ DigestError::Malformed(_)) => {
                let reason = format!("Bad Request - {e}");
                return self.reply(request, flow, 400, &reason);
            }
            Err(e) => {
                let reason = format!("Unauthorized - {e}");
                return self.challenge(request, flow, &realm, now_ms, false, &reason);
            }
        };
        let account = self.accounts.account(tenant, &creds.username);
        let method = request.method().clone();
        let Some(uri) = request.request_uri().cloned() else {
            return self.reply(request, flow, 400, "Bad Request - no Request-URI");
        };
        let verified = match &account {
            Some(a) => self
                .digest
                .verify(now_ms, &realm, &method, &uri, &creds, &a.ha1),
            None => Err(DigestError::WrongResponse),
        };
        match verified {
            Ok(()) => {}
            Err(DigestError::StaleNonce) => {
                return self.challenge(
                    request,
                    flow,
                    &realm,
                    now_ms,
                    true,
                    "Unauthorized - digest nonce has expired",
                );
            }
            Err(e @ DigestError::UriNotSip) => {
                let reason = format!("Bad Request - {e}");
                return self.reply(request, flow, 400, &reason);
            }
            Err(e) => {
                if e.counts_as_failure() {
                    self.stats.auth_failures += 1;
                    if let Some(until) = self.guard.auth_failed(now_ms, flow.remote.ip()) {
                        let secs = until.saturating_sub(now_ms).div_ceil(1_000);
                        let reason = format!(
                            "Forbidden - too many authentication failures; source banned for {secs} s"
                        );
                        return self.reply(request, flow, 403, &reason);
                    }
                }
                let reason = format!("Unauthorized - {e}");
                return self.challenge(request, flow, &realm, now_ms, false, &reason);
            }
        }
        let Some(account) = account else {
            return self.reply(
                request,
                flow,
                500,
                "Server Internal Error - account vanished",
            );
        };
        // RFC 3261 10.3 step 4: may these credentials register this AOR?
        let aor_user = request.headers.to.uri.as_sip().and_then(|u| u.user.clone());
        let may = aor_user.as_deref().is_some_and(|user| {
            user == creds.username || account.short_number.as_deref() == Some(user)
        });
        if !may {
            let reason = format!(
                "Forbidden - credentials of {} may not register {}",
                creds.username, request.headers.to.uri
            );
            return self.reply(request, flow, 403, &reason);
        }
        let key = DeviceKey {
            tenant,
            device: account.device,
        };
        let mut wildcard = false;
        let mut contacts = Vec::new();
        for c in &request.headers.contact {
            match c {
                Contact::Wildcard => wildcard = true,
                Contact::Address(a) => contacts.push(ContactRequest {
                    uri: a.uri.to_string(),
                    expires: a.expires(),
                    q: a.q_thousandths(),
                }),
            }
        }
        let query = contacts.is_empty() && !wildcard;
        let bindings = if query {
            Ok(self.registrar.bindings(now_ms, key))
        } else {
            let req = RegisterRequest {
                contacts,
                wildcard,
                expires: request.headers.expires,
                call_id: request.headers.call_id.to_string(),
                cseq: request.headers.cseq.number,
                flow: *flow,
                user_agent: request
                    .headers
                    .get_all("User-Agent")
                    .next()
                    .map(str::to_string),
            };
            self.registrar
                .register(now_ms, key, &req, account.allowance)
        };
        match bindings {
            Ok(bindings) => {
                if !query {
                    self.stats.registrations += 1;
                }
                let mut r = self.reply(request, flow, 200, "OK");
                for b in bindings {
                    r.headers.other.push(header(
                        "Contact",
                        format!("<{}>;expires={}", b.contact, b.expires_s),
                    ));
                }
                r
            }
            Err(refusal) => {
                let reason = refusal.to_string();
                let mut r = self.reply(request, flow, refusal.status(), &reason);
                if let RegisterRefusal::IntervalTooBrief { min_expires_s } = refusal {
                    r.headers
                        .other
                        .push(header("Min-Expires", min_expires_s.to_string()));
                }
                r
            }
        }
    }

    /// Fires due timers, sends due keepalives and sweeps the tables.
    pub fn on_tick(&mut self, now_ms: u64, out: &mut Vec<Transmit>) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let (target, timer) = entry.remove();
            match target {
                TimerTarget::Server(key) => {
                    let outputs = match self.servers.get_mut(&key).map(|t| &mut t.machine) {
                        Some(ServerMachine::NonInvite(m)) => {
                            m.handle(Millis(now_ms), ServerInput::TimerFired(timer))
                        }
                        Some(ServerMachine::Invite(m)) => {
                            m.handle(Millis(now_ms), ServerInput::TimerFired(timer))
                        }
                        None => continue,
                    };
                    self.run_server_outputs(&key, outputs, out);
                }
                TimerTarget::Client(key) => {
                    self.feed_client(now_ms, key, ClientInput::TimerFired(timer), out)
                }
            }
        }
        for due in self.registrar.keepalives_due(now_ms) {
            self.send_keepalive(now_ms, due.key, due.contact, due.flow, out);
        }
        if now_ms.saturating_sub(self.last_sweep_ms) >= 1_000 {
            self.last_sweep_ms = now_ms;
            self.registrar.expire(now_ms);
            self.guard.sweep(now_ms);
            self.digest.sweep(now_ms);
        }
    }

    /// When the next keepalive or sweep is due, for shells that sleep until
    /// [`Edge::next_deadline`]: they should also wake at least this often.
    pub fn housekeeping_interval_ms(&self) -> u64 {
        250
    }

    fn send_keepalive(
        &mut self,
        now_ms: u64,
        key: DeviceKey,
        contact: String,
        flow: Flow,
        out: &mut Vec<Transmit>,
    ) {
        let branch = format!("z9hG4bK{:016x}", self.rng.gen::<u64>());
        let tag = self.tag();
        let call_id = format!("{:016x}@carillon", self.rng.gen::<u64>());
        let host = &self.config.advertised_host;
        let port = self.config.advertised_port;
        let text = format!(
            "OPTIONS {contact} SIP/2.0\r\nVia: SIP/2.0/{} {host}:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:keepalive@{host}>;tag={tag}\r\nTo: <{contact}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            flow.transport.via_token()
        );
        let Ok(request) = Message::parse(text.as_bytes()).map(Message::into_owned) else {
            // A contact we accepted but cannot address (it parsed as a URI
            // in the REGISTER, so this is not expected): count it failed.
            self.stats.keepalives_failed += 1;
            self.registrar.keepalive_result(key, &contact, false);
            return;
        };
        let Some(tx_key) = TransactionKey::for_client_request(&request) else {
            return;
        };
        self.stats.keepalives_sent += 1;
        let (machine, outputs) = ClientNonInvite::start(
            Millis(now_ms),
            request,
            flow.transport.is_reliable(),
            self.config.timers,
        );
        self.clients.insert(
            tx_key.clone(),
            ClientTx {
                machine,
                flow,
                key,
                contact,
            },
        );
        self.run_client_outputs(tx_key, outputs, out);
    }

    /// A stream connection closed: its bindings are unreachable, and its
    /// client transactions fail.
    pub fn connection_closed(&mut self, now_ms: u64, connection: u64, out: &mut Vec<Transmit>) {
        self.registrar.connection_closed(connection);
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

    /// Whether `source` is banned now.
    pub fn is_banned(&self, now_ms: u64, source: IpAddr) -> bool {
        self.guard.is_banned(now_ms, source)
    }
}

fn header(name: &'static str, value: String) -> Header<'static> {
    Header {
        name: Cow::Borrowed(name),
        value: Cow::Owned(value),
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
