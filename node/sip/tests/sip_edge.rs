//! The SIP edge core (`sip::edge::Edge`) under injected time: registration
//! with digest (MD5 and SHA-256), retransmissions, replay, stale nonces,
//! bans and their end, rate limits, keepalives and extension state, and
//! the answers to requests the edge does not serve. Each case feeds bytes
//! as a transport would and reads the bytes the edge sends back.

use std::collections::HashMap;
use std::net::SocketAddr;

use carillon_sip::b2bua::{LegCommand, LegEvent};
use carillon_sip::digest::{client_response, Algorithm, Challenges, DigestConfig, Ha1};
use carillon_sip::edge::{udp_flow, Account, Accounts, Edge, EdgeConfig, EdgeOutput, Transmit};
use carillon_sip::guard::GuardConfig;
use carillon_sip::keys::{AccountKey, TenantKey};
use carillon_sip::message::Message;
use carillon_sip::registrar::{
    DeviceAllowance, DeviceKey, ExtensionState, Flow, FlowTransport, RegistrarConfig,
};
use carillon_sip::transaction::TimerConfig;
use md5::Digest as _;

const DOMAIN: &str = "example.test";
const TENANT: TenantKey = TenantKey(7);

#[derive(Debug, Default)]
struct Directory {
    accounts: HashMap<String, (Account, String)>,
}

impl Directory {
    fn with(users: &[(&str, &str, u64)]) -> Self {
        let mut d = Directory::default();
        for (user, password, device) in users {
            let a1 = format!("{user}:{DOMAIN}:{password}");
            let account = Account {
                device: AccountKey(*device),
                short_number: Some(format!("{}", 100 + device)),
                ha1: Ha1 {
                    md5: hex::encode(md5::Md5::digest(a1.as_bytes())),
                    sha256: hex::encode(sha2::Sha256::digest(a1.as_bytes())),
                },
                allowance: DeviceAllowance {
                    counted: true,
                    allowed: 10,
                },
            };
            d.accounts
                .insert((*user).to_string(), (account, (*password).to_string()));
        }
        d
    }
}

impl Accounts for Directory {
    fn tenant_for_domain(&self, domain: &str) -> Option<TenantKey> {
        (domain == DOMAIN).then_some(TENANT)
    }

    fn account(&self, tenant: TenantKey, username: &str) -> Option<Account> {
        (tenant == TENANT)
            .then(|| self.accounts.get(username).map(|(a, _)| a.clone()))
            .flatten()
    }
}

struct Harness {
    edge: Edge<Directory>,
    now: u64,
}

fn source(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], port))
}

impl Harness {
    fn new(config: EdgeConfig) -> Self {
        let directory =
            Directory::with(&[("1001", "Right-Pass-1", 1), ("1002", "Right-Pass-2", 2)]);
        Harness {
            edge: Edge::new(config, directory, 42, [9; 32]),
            now: 1_000,
        }
    }

    fn send_on(&mut self, flow: Flow, text: &str) -> Vec<Transmit> {
        let mut out = Vec::new();
        self.edge
            .on_message(self.now, flow, text.as_bytes(), &mut out);
        self.settle(out)
    }

    /// The transmissions in `out`; new calls are refused with 480, as a
    /// node whose calls are not routed does.
    fn settle(&mut self, out: Vec<EdgeOutput>) -> Vec<Transmit> {
        let mut sent = Vec::new();
        let mut pending = out;
        while !pending.is_empty() {
            let mut more = Vec::new();
            for output in pending {
                match output {
                    EdgeOutput::Transmit(t) => sent.push(t),
                    EdgeOutput::Leg(LegEvent::Incoming { leg, .. }) => self.edge.leg_command(
                        self.now,
                        LegCommand::Reject {
                            leg,
                            status: 480,
                            reason: "Temporarily Unavailable - calls are not routed here".into(),
                            headers: Vec::new(),
                        },
                        &mut more,
                    ),
                    EdgeOutput::Leg(_) => {}
                }
            }
            pending = more;
        }
        self.edge.check_invariants();
        sent
    }

    fn send(&mut self, from: SocketAddr, text: &str) -> Vec<Transmit> {
        self.send_on(udp_flow(from), text)
    }

    /// Sends and expects exactly one response; returns it.
    fn ask(&mut self, from: SocketAddr, text: &str) -> Message<'static> {
        let out = self.send(from, text);
        assert_eq!(out.len(), 1, "one answer to:\n{text}\ngot {out:?}");
        assert_eq!(out[0].flow.remote, from, "answers go back to the source");
        Message::parse(&out[0].bytes)
            .expect("the edge sends parseable responses")
            .into_owned()
    }

    fn tick(&mut self, advance_ms: u64) -> Vec<Transmit> {
        self.now += advance_ms;
        let mut out = Vec::new();
        self.edge.on_tick(self.now, &mut out);
        self.settle(out)
    }

    fn state(&mut self, device: u64) -> ExtensionState {
        let key = DeviceKey {
            tenant: TENANT,
            device: AccountKey(device),
        };
        self.edge
            .registrations_if_changed(self.now)
            .and_then(|r| r.get(&key).map(|reg| reg.state))
            .unwrap_or(ExtensionState::Unavailable)
    }
}

fn status_reason(m: &Message<'_>) -> (u16, String) {
    match &m.start {
        carillon_sip::message::StartLine::Response { status, reason } => {
            (*status, reason.to_string())
        }
        other => panic!("not a response: {other:?}"),
    }
}

struct Register<'a> {
    user: &'a str,
    branch: &'a str,
    call_id: &'a str,
    cseq: u32,
    contact: &'a str,
    expires: Option<u32>,
    auth: Option<String>,
}

impl Register<'_> {
    fn text(&self) -> String {
        let mut t = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={};rport\r\nFrom: <sip:{u}@{DOMAIN}>;tag=f1\r\nTo: <sip:{u}@{DOMAIN}>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\nMax-Forwards: 70\r\nContact: {}\r\n",
            self.branch,
            self.call_id,
            self.cseq,
            self.contact,
            u = self.user
        );
        if let Some(e) = self.expires {
            t.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = &self.auth {
            t.push_str(&format!("Authorization: {a}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        t
    }
}

fn register(user: &str, branch: &str, cseq: u32) -> Register<'static> {
    // Leak the small strings: tests only.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Register {
        user: leak(user.to_string()),
        branch: leak(branch.to_string()),
        call_id: leak(format!("call-{user}")),
        cseq,
        contact: leak(format!("<sip:{user}@127.0.0.1:5070>")),
        expires: Some(600),
        auth: None,
    }
}

/// The challenge of `algorithm` in a 401.
fn challenge(m: &Message<'_>, algorithm: &str) -> (String, bool) {
    let value = m
        .headers
        .www_authenticate
        .iter()
        .find(|v| v.param("algorithm").as_deref() == Some(algorithm))
        .unwrap_or_else(|| panic!("a {algorithm} challenge in {m:?}"));
    assert_eq!(value.param("qop").as_deref(), Some("auth"));
    assert_eq!(value.param("realm").as_deref(), Some(DOMAIN));
    let nonce = value.param("nonce").expect("nonce");
    (nonce, value.param("stale").as_deref() == Some("true"))
}

fn algorithms(m: &Message<'_>) -> Vec<String> {
    m.headers
        .www_authenticate
        .iter()
        .map(|v| v.param("algorithm").unwrap_or_default())
        .collect()
}

fn contacts(m: &Message<'_>) -> Vec<String> {
    m.headers
        .contact
        .iter()
        .filter_map(|c| c.address().map(|a| a.to_string()))
        .collect()
}

fn authorization(user: &str, password: &str, algorithm: Algorithm, nonce: &str, nc: u32) -> String {
    let a1 = format!("{user}:{DOMAIN}:{password}");
    let ha1 = match algorithm {
        Algorithm::Md5 => hex::encode(md5::Md5::digest(a1.as_bytes())),
        Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(a1.as_bytes())),
    };
    let uri = format!("sip:{DOMAIN}");
    let response = client_response(algorithm, &ha1, nonce, nc, "0a4f113b", "REGISTER", &uri);
    format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, cnonce=\"0a4f113b\", qop=auth, nc={nc:08x}",
        algorithm.token()
    )
}

impl Harness {
    /// REGISTER `first` without credentials, take the challenge of
    /// `algorithm` from the 401, then send `then` answering it with
    /// `password`: the second request (credentials filled in) and its
    /// answer.
    fn register_answering(
        &mut self,
        from: SocketAddr,
        first: Register<'static>,
        mut then: Register<'static>,
        password: &str,
        algorithm: Algorithm,
    ) -> (Register<'static>, Message<'static>) {
        let r = self.ask(from, &first.text());
        assert_eq!(status_reason(&r).0, 401, "{r:?}");
        let (nonce, _) = challenge(&r, algorithm.token());
        then.auth = Some(authorization(then.user, password, algorithm, &nonce, 1));
        let answer = self.ask(from, &then.text());
        (then, answer)
    }
}

#[test]
fn registers_with_md5_and_sha256_then_unregisters_with_star() {
    let mut h = Harness::new(EdgeConfig::default());
    let phone = source(2, 5070);
    let r = h.ask(phone, &register("1001", "z9hG4bK-a1", 1).text());
    assert_eq!(status_reason(&r).0, 401);
    assert_eq!(algorithms(&r), ["MD5", "SHA-256"], "MD5 first by default");
    let (nonce, stale) = challenge(&r, "SHA-256");
    assert!(!stale);
    let mut reg = register("1001", "z9hG4bK-a2", 2);
    reg.auth = Some(authorization(
        "1001",
        "Right-Pass-1",
        Algorithm::Sha256,
        &nonce,
        1,
    ));
    let ok = h.ask(phone, &reg.text());
    assert_eq!(status_reason(&ok).0, 200, "{ok:?}");
    assert_eq!(contacts(&ok), ["<sip:1001@127.0.0.1:5070>;expires=600"]);
    assert_eq!(h.state(1), ExtensionState::Online);

    // The second account with MD5.
    let (_, ok) = h.register_answering(
        phone,
        register("1002", "z9hG4bK-b1", 1),
        register("1002", "z9hG4bK-b2", 2),
        "Right-Pass-2",
        Algorithm::Md5,
    );
    assert_eq!(status_reason(&ok).0, 200);

    // `*` with Expires: 0 removes every binding of 1001.
    let mut star = register("1001", "z9hG4bK-a4", 4);
    star.contact = "*";
    star.expires = Some(0);
    let (_, ok) = h.register_answering(
        phone,
        register("1001", "z9hG4bK-a3", 3),
        star,
        "Right-Pass-1",
        Algorithm::Md5,
    );
    assert_eq!(status_reason(&ok).0, 200);
    assert!(contacts(&ok).is_empty());
    assert_eq!(h.state(1), ExtensionState::Unavailable);
    assert_eq!(h.edge.binding_count(), 1, "1002 stays registered");
}

#[test]
fn a_retransmitted_request_gets_the_same_answer_and_the_transaction_ends_after_timer_j() {
    let mut h = Harness::new(EdgeConfig::default());
    let phone = source(2, 5070);
    let text = register("1001", "z9hG4bK-rt", 1).text();
    let first = h.send(phone, &text);
    let again = h.send(phone, &text);
    assert_eq!(
        first, again,
        "the retransmission is answered with the same bytes"
    );
    assert_eq!(h.edge.stats().retransmissions, 1);
    assert_eq!(h.edge.transactions().0, 1);
    h.tick(31_999);
    assert_eq!(h.edge.transactions().0, 1, "timer J is 64*T1 = 32 s on UDP");
    h.tick(1);
    assert_eq!(h.edge.transactions().0, 0);
}

#[test]
fn replayed_nonce_counts_stale_nonces_and_wrong_passwords() {
    let mut h = Harness::new(EdgeConfig::default());
    let phone = source(2, 5070);
    let (mut reg, ok) = h.register_answering(
        phone,
        register("1001", "z9hG4bK-1", 1),
        register("1001", "z9hG4bK-2", 2),
        "Right-Pass-1",
        Algorithm::Md5,
    );
    assert_eq!(status_reason(&ok).0, 200);
    let nonce = reg
        .auth
        .as_deref()
        .and_then(|a| a.split("nonce=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .expect("nonce")
        .to_string();
    // The same credentials again under a new branch: a replay.
    reg.branch = "z9hG4bK-3";
    reg.cseq = 3;
    let (status, reason) = status_reason(&h.ask(phone, &reg.text()));
    assert_eq!((status, reason.contains("replay")), (401, true), "{reason}");
    // The next nonce-count is fine.
    reg.branch = "z9hG4bK-4";
    reg.cseq = 4;
    reg.auth = Some(authorization(
        "1001",
        "Right-Pass-1",
        Algorithm::Md5,
        &nonce,
        2,
    ));
    assert_eq!(status_reason(&h.ask(phone, &reg.text())).0, 200);
    // Five minutes later the nonce is stale: 401 with stale=true, no failure counted.
    h.now += 300_001;
    reg.branch = "z9hG4bK-5";
    reg.cseq = 5;
    reg.auth = Some(authorization(
        "1001",
        "Right-Pass-1",
        Algorithm::Md5,
        &nonce,
        3,
    ));
    let r = h.ask(phone, &reg.text());
    assert_eq!(status_reason(&r).0, 401);
    assert!(challenge(&r, "MD5").1, "stale=true on an expired nonce");
    assert_eq!(h.edge.stats().auth_failures, 1, "only the replay counted");
}

#[test]
fn repeated_wrong_passwords_ban_the_source_until_the_ban_lifts() {
    let mut h = Harness::new(EdgeConfig {
        guard: GuardConfig {
            max_auth_failures: 3,
            ban_ms: 10_000,
            ..GuardConfig::default()
        },
        ..EdgeConfig::default()
    });
    let scanner = source(66, 5999);
    let phone = source(2, 5070);
    let mut statuses = Vec::new();
    for i in 0..4u32 {
        let r = h.ask(
            scanner,
            &register("1001", &format!("z9hG4bK-s{i}a"), 2 * i + 1).text(),
        );
        let (s, _) = status_reason(&r);
        if s == 403 {
            statuses.push(403);
            continue;
        }
        let (nonce, _) = challenge(&r, "MD5");
        let mut reg = register("1001", &format!("z9hG4bK-s{i}b"), 2 * i + 2);
        reg.auth = Some(authorization("1001", "guess", Algorithm::Md5, &nonce, 1));
        statuses.push(status_reason(&h.ask(scanner, &reg.text())).0);
    }
    assert_eq!(statuses, [401, 401, 403, 403], "the third failure bans");
    let (_, reason) = status_reason(&h.ask(scanner, &register("1001", "z9hG4bK-x", 20).text()));
    assert!(reason.contains("banned"), "{reason}");
    assert!(h.edge.is_banned(h.now, scanner.ip()));
    // Other sources are not affected.
    let mut other = register("1001", "z9hG4bK-p", 1);
    other.call_id = "phone-call";
    assert_eq!(status_reason(&h.ask(phone, &other.text())).0, 401);
    // Ten seconds later the ban has lifted.
    h.tick(10_000);
    assert!(!h.edge.is_banned(h.now, scanner.ip()));
    assert_eq!(
        status_reason(&h.ask(scanner, &register("1001", "z9hG4bK-y", 21).text())).0,
        401
    );
}

#[test]
fn a_flood_from_one_source_gets_one_503_then_silence() {
    let mut h = Harness::new(EdgeConfig {
        guard: GuardConfig {
            rate_per_second: 10,
            burst: 5,
            ..GuardConfig::default()
        },
        ..EdgeConfig::default()
    });
    let flood = source(77, 6000);
    let options = |i: u32| {
        format!(
            "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.77:6000;branch=z9hG4bK-o{i}\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:{DOMAIN}>\r\nCall-ID: o{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    for i in 0..5 {
        assert_eq!(status_reason(&h.ask(flood, &options(i))).0, 200);
    }
    let r = h.ask(flood, &options(5));
    assert_eq!(status_reason(&r).0, 503);
    assert_eq!(r.headers.get_all("Retry-After").next(), Some("1"));
    assert!(h.send(flood, &options(6)).is_empty(), "then silence");
    assert_eq!(h.edge.guard().rate_limited_total, 2);
    h.now += 100;
    assert_eq!(status_reason(&h.ask(flood, &options(7))).0, 200, "refilled");
}

#[test]
fn requests_the_edge_does_not_serve_get_the_status_their_rule_names() {
    let mut h = Harness::new(EdgeConfig::default());
    let peer = source(5, 5080);
    let req = |method: &str, uri: &str, extra: &str, branch: &str| {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5080;branch={branch}\r\nFrom: <sip:a@b>;tag=t{branch}\r\nTo: <sip:c@{DOMAIN}>\r\nCall-ID: {branch}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (
            req(
                "SUBSCRIBE",
                "sip:c@example.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-1",
            ),
            405,
            "Allow",
        ),
        (
            req(
                "FOO",
                "sip:c@example.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-2",
            ),
            501,
            "Allow",
        ),
        (
            req(
                "BYE",
                "sip:c@example.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-3",
            ),
            481,
            "",
        ),
        (
            req(
                "OPTIONS",
                "sip:c@example.test",
                "Max-Forwards: 70\r\nRequire: foo, bar\r\n",
                "z9hG4bK-4",
            ),
            420,
            "Unsupported",
        ),
        (
            req(
                "OPTIONS",
                "sip:c@example.test",
                "Max-Forwards: 0\r\n",
                "z9hG4bK-5",
            ),
            483,
            "",
        ),
        (
            req(
                "OPTIONS",
                "mailto:c@example.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-6",
            ),
            416,
            "",
        ),
        (
            req(
                "REGISTER",
                "sip:nowhere.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-7",
            ),
            404,
            "",
        ),
        (
            req(
                "INVITE",
                "sip:c@example.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-8",
            ),
            488,
            "",
        ),
        (
            req(
                "OPTIONS",
                "sip:example.test",
                "Max-Forwards: 0\r\n",
                "z9hG4bK-9",
            ),
            200,
            "Allow",
        ),
    ];
    for (text, expected, header) in cases {
        let r = if text.starts_with("INVITE") {
            // 100 Trying first, then the final answer.
            let out = h.send(peer, &text);
            assert_eq!(out.len(), 2);
            assert_eq!(
                status_reason(&Message::parse(&out[0].bytes).expect("100")).0,
                100
            );
            Message::parse(&out[1].bytes).expect("final").into_owned()
        } else {
            h.ask(peer, &text)
        };
        let (status, reason) = status_reason(&r);
        assert_eq!(status, expected, "{text}\n-> {status} {reason}");
        assert!(
            status == 200 || reason.contains(" - "),
            "a reason naming the rule: {reason}"
        );
        if header == "Unsupported" {
            assert_eq!(r.headers.unsupported, ["foo", "bar"]);
        }
        if header == "Allow" {
            assert!(
                r.headers.get_all(header).next().is_some(),
                "{header} in {r:?}"
            );
        }
    }
    // A merged request: same From tag, Call-ID and CSeq, other branch.
    let a = req(
        "OPTIONS",
        "sip:example.test",
        "Max-Forwards: 70\r\n",
        "z9hG4bK-m1",
    );
    let b = a.replace(
        "Via: SIP/2.0/UDP 127.0.0.5:5080;branch=z9hG4bK-m1",
        "Via: SIP/2.0/UDP 127.0.0.5:5080;branch=z9hG4bK-m2",
    );
    assert_eq!(status_reason(&h.ask(peer, &a)).0, 200);
    assert_eq!(status_reason(&h.ask(peer, &b)).0, 482);
    // ACK never gets an answer; garbage gets a 400 naming the fault when
    // there is a Via to answer along, and a bad response is dropped.
    assert!(h
        .send(
            peer,
            &req(
                "ACK",
                "sip:c@example.test",
                "Max-Forwards: 70\r\n",
                "z9hG4bK-ack"
            )
        )
        .is_empty());
    let garbage = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5;branch=z9hG4bK-g\r\nCSeq: nonsense\r\n\r\n";
    let out = h.send(peer, garbage);
    assert_eq!(out.len(), 1);
    let text = String::from_utf8_lossy(&out[0].bytes);
    // The answer copies the request's (broken) headers verbatim.
    assert!(text.starts_with("SIP/2.0 400 Bad Request - "), "{text}");
    assert!(text.contains("CSeq: nonsense"), "{text}");
    assert!(h.send(peer, "SIP/2.0 200 OK\r\nbroken\r\n\r\n").is_empty());
}

#[test]
fn registrar_refusals_name_their_rule_and_change_nothing() {
    let mut h = Harness::new(EdgeConfig::default());
    let phone = source(2, 5070);
    let mut cseq = 0;
    let mut authed = |h: &mut Harness, user: &str, mutate: &dyn Fn(&mut Register<'_>)| {
        cseq += 2;
        let r = h.ask(
            phone,
            &register(user, &format!("z9hG4bK-r{cseq}a"), cseq).text(),
        );
        let (nonce, _) = challenge(&r, "MD5");
        let mut reg = register(user, &format!("z9hG4bK-r{cseq}b"), cseq + 1);
        reg.auth = Some(authorization(
            user,
            if user == "1001" {
                "Right-Pass-1"
            } else {
                "Right-Pass-2"
            },
            Algorithm::Md5,
            &nonce,
            1,
        ));
        mutate(&mut reg);
        h.ask(phone, &reg.text())
    };
    let r = authed(&mut h, "1001", &|r| r.expires = Some(10));
    assert_eq!(status_reason(&r).0, 423);
    assert_eq!(r.headers.get_all("Min-Expires").next(), Some("60"));
    let r = authed(&mut h, "1001", &|r| {
        r.contact = "*";
        r.expires = Some(60);
    });
    assert_eq!(status_reason(&r).0, 400);
    // Credentials of 1001 for the address of record of 1002.
    let r = authed(&mut h, "1001", &|r| r.user = "1002");
    let (status, reason) = status_reason(&r);
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("may not register"), "{reason}");
    assert_eq!(h.edge.binding_count(), 0, "nothing was applied");
}

#[test]
fn keepalives_find_a_dead_phone_and_its_next_request_revives_it() {
    let t1 = 50;
    let mut h = Harness::new(EdgeConfig {
        timers: TimerConfig {
            t1_ms: t1,
            ..TimerConfig::default()
        },
        registrar: RegistrarConfig {
            keepalive_interval_ms: 5_000,
            ..RegistrarConfig::default()
        },
        ..EdgeConfig::default()
    });
    let phone = source(2, 5070);
    let (_, ok) = h.register_answering(
        phone,
        register("1001", "z9hG4bK-k1", 1),
        register("1001", "z9hG4bK-k2", 2),
        "Right-Pass-1",
        Algorithm::Md5,
    );
    assert_eq!(status_reason(&ok).0, 200);
    assert_eq!(h.state(1), ExtensionState::Online);
    // At 5 s an OPTIONS goes to the phone's source address.
    let out = h.tick(5_000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flow.remote, phone);
    let ping = Message::parse(&out[0].bytes)
        .expect("OPTIONS parses")
        .into_owned();
    assert_eq!(ping.method().as_str(), "OPTIONS");
    // Answered: stays online.
    let answer = Message::response_to(&ping, 200, "OK");
    let mut sink = Vec::new();
    h.edge
        .on_message(h.now, udp_flow(phone), &answer.to_bytes(), &mut sink);
    assert!(sink.is_empty());
    assert_eq!(
        h.edge.registrations_if_changed(h.now),
        None,
        "nothing changed"
    );
    // The next one is never answered: retransmitted per timer E, then timer
    // F (64*T1) declares the phone unreachable.
    let first = h.tick(5_000);
    assert_eq!(first.len(), 1, "the second keepalive");
    let mut retransmits = 0;
    for _ in 0..(64 * t1 / 10) {
        retransmits += h.tick(10).len();
    }
    assert!(
        retransmits >= 4,
        "timer E retransmits on UDP ({retransmits})"
    );
    assert_eq!(h.state(1), ExtensionState::Unavailable);
    assert_eq!(h.edge.stats().keepalives_failed, 1);
    // Any request from the phone's flow makes it reachable again.
    let options = "OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-back\r\nFrom: <sip:1001@example.test>;tag=b\r\nTo: <sip:example.test>\r\nCall-ID: back\r\nCSeq: 9 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(status_reason(&h.ask(phone, options)).0, 200);
    assert_eq!(h.state(1), ExtensionState::Online);
}

#[test]
fn a_closed_tcp_connection_makes_its_bindings_unavailable() {
    let mut h = Harness::new(EdgeConfig {
        digest: DigestConfig {
            challenges: Challenges::Sha256Only,
            ..DigestConfig::default()
        },
        ..EdgeConfig::default()
    });
    let flow = Flow {
        transport: FlowTransport::Tcp,
        remote: source(3, 40000),
        connection: Some(17),
    };
    let text = register("1002", "z9hG4bK-t1", 1)
        .text()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let out = h.send_on(flow, &text);
    let r = Message::parse(&out[0].bytes).expect("401").into_owned();
    assert_eq!(algorithms(&r), ["SHA-256"], "SHA-256 only");
    let (nonce, _) = challenge(&r, "SHA-256");
    let mut reg = register("1002", "z9hG4bK-t2", 2);
    reg.auth = Some(authorization(
        "1002",
        "Right-Pass-2",
        Algorithm::Sha256,
        &nonce,
        1,
    ));
    let out = h.send_on(flow, &reg.text().replace("SIP/2.0/UDP", "SIP/2.0/TCP"));
    assert_eq!(out[0].flow, flow, "answered on the same connection");
    assert_eq!(
        status_reason(&Message::parse(&out[0].bytes).expect("200")).0,
        200
    );
    assert_eq!(h.state(2), ExtensionState::Online);
    assert_eq!(
        h.edge.transactions().0,
        0,
        "reliable transports end at once"
    );
    let mut out = Vec::new();
    h.edge.connection_closed(h.now, 17, &mut out);
    assert_eq!(h.state(2), ExtensionState::Unavailable);
}
