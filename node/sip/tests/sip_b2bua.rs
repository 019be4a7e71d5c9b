//! The B2BUA through the edge, under injected time: inbound legs (progress,
//! answer, 2xx retransmission until ACK, no ACK, CANCEL before and after the
//! answer, hang-ups in each state, in-dialog requests) and outbound legs
//! (ringing, answer and ACK, 2xx retransmissions ACKed again, a CANCEL held
//! back until a provisional, a 2xx crossing our CANCEL, refusals and
//! timeouts). Each case feeds bytes as a transport would and checks what
//! the edge sends and which leg events it emits; every step ends with the
//! edge's invariants, and every leg ends exactly once.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use carillon_sip::b2bua::{DialRequest, EndReason, LegCommand, LegEvent, LegId};
use carillon_sip::edge::{udp_flow, Account, Accounts, Edge, EdgeConfig, EdgeOutput};
use carillon_sip::keys::TenantKey;
use carillon_sip::message::{Message, StartLine};
use carillon_sip::transaction::TimerConfig;

const SDP: &str = "v=0\r\no=caller 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
const RELAY_SDP: &str = "v=0\r\no=carillon 1 1 IN IP4 127.0.0.1\r\ns=carillon\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
const T1: u64 = 500;

struct NoAccounts;

impl Accounts for NoAccounts {
    fn tenant_for_domain(&self, _domain: &str) -> Option<TenantKey> {
        None
    }
    fn account(&self, _tenant: TenantKey, _username: &str) -> Option<Account> {
        None
    }
}

/// What one step sent (parsed) and the leg events it emitted.
#[derive(Debug, Default)]
struct Step {
    sent: Vec<(SocketAddr, Message<'static>)>,
    events: Vec<LegEvent>,
}

impl Step {
    /// `"100"`, `"INVITE"`, ... for each message sent, in order.
    fn names(&self) -> Vec<String> {
        self.sent.iter().map(|(_, m)| name(m)).collect()
    }

    fn only(&self, what: &str) -> &Message<'static> {
        let found: Vec<&Message<'static>> = self
            .sent
            .iter()
            .map(|(_, m)| m)
            .filter(|m| name(m) == what)
            .collect();
        assert_eq!(found.len(), 1, "one {what} in {:?}", self.names());
        found[0]
    }
}

fn name(m: &Message<'_>) -> String {
    match &m.start {
        StartLine::Response { status, .. } => status.to_string(),
        StartLine::Request { method, .. } => method.as_str().to_string(),
    }
}

struct Harness {
    edge: Edge<NoAccounts>,
    now: u64,
    ended: BTreeMap<LegId, EndReason>,
}

const CALLER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)),
    5070,
);
const PHONE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 8)),
    5080,
);

impl Harness {
    fn new() -> Self {
        Harness {
            edge: Edge::new(
                EdgeConfig {
                    timers: TimerConfig {
                        t1_ms: T1,
                        ..TimerConfig::default()
                    },
                    ..EdgeConfig::default()
                },
                NoAccounts,
                7,
                [3; 32],
            ),
            now: 1_000,
            ended: BTreeMap::new(),
        }
    }

    fn collect(&mut self, out: Vec<EdgeOutput>) -> Step {
        let mut step = Step::default();
        for o in out {
            match o {
                EdgeOutput::Transmit(t) => {
                    let m = Message::parse(&t.bytes).expect("the edge sends parseable messages");
                    step.sent.push((t.flow.remote, m.into_owned()));
                }
                EdgeOutput::Leg(e) => {
                    if let LegEvent::Ended { leg, reason } = &e {
                        assert!(
                            self.ended.insert(*leg, reason.clone()).is_none(),
                            "{leg} ended twice"
                        );
                    } else {
                        assert!(
                            !self.ended.contains_key(&e.leg()),
                            "an event after the end: {e:?}"
                        );
                    }
                    step.events.push(e);
                }
            }
        }
        self.edge.check_invariants();
        step
    }

    fn recv(&mut self, from: SocketAddr, message: &Message<'_>) -> Step {
        let mut out = Vec::new();
        self.edge
            .on_message(self.now, udp_flow(from), &message.to_bytes(), &mut out);
        self.collect(out)
    }

    fn recv_text(&mut self, from: SocketAddr, text: &str) -> Step {
        let m = Message::parse(text.as_bytes()).expect("test message parses");
        self.recv(from, &m)
    }

    fn command(&mut self, command: LegCommand) -> Step {
        let mut out = Vec::new();
        self.edge.leg_command(self.now, command, &mut out);
        self.collect(out)
    }

    fn tick_to(&mut self, at: u64) -> Step {
        self.now = at;
        let mut out = Vec::new();
        self.edge.on_tick(self.now, &mut out);
        self.collect(out)
    }

    /// Advances in 10 ms steps up to `at`, gathering everything.
    fn run_to(&mut self, at: u64) -> Step {
        let mut all = Step::default();
        while self.now < at {
            let step = self.tick_to((self.now + 10).min(at));
            all.sent.extend(step.sent);
            all.events.extend(step.events);
        }
        all
    }

    fn dial(&mut self) -> (LegId, Message<'static>) {
        let mut out = Vec::new();
        let leg = self
            .edge
            .dial(
                self.now,
                DialRequest {
                    target: "sip:anna@127.0.0.8:5080".into(),
                    flow: udp_flow(PHONE),
                    to: "sip:anna@demo.test".into(),
                    from_user: "+420777123456".into(),
                    from_display: Some("Caller \"One\"".into()),
                    from_host: "demo.test".into(),
                    sdp: RELAY_SDP.into(),
                    headers: vec![("X-Queue".into(), "Support".into())],
                },
                &mut out,
            )
            .expect("room for a leg");
        let step = self.collect(out);
        assert_eq!(step.names(), ["INVITE"]);
        assert_eq!(step.sent[0].0, PHONE);
        (leg, step.sent[0].1.clone())
    }
}

fn invite(branch: &str) -> String {
    format!(
        "INVITE sip:+420225000100@demo.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+420777000001@carrier.test>;tag=c1\r\nTo: <sip:+420225000100@demo.test>\r\nCall-ID: call-{branch}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.9:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

/// The ACK (new branch), BYE or other in-dialog request from the caller.
fn caller_request(method: &str, answer: &Message<'_>, cseq: u32, branch: &str) -> String {
    let to_tag = answer.headers.to.tag().expect("the answer has our tag");
    let call_id = &answer.headers.call_id;
    let (cseq_method, body) = (method, "");
    format!(
        "{method} sip:carillon@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+420777000001@carrier.test>;tag=c1\r\nTo: <sip:+420225000100@demo.test>;tag={to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\nContent-Length: 0\r\n\r\n{body}"
    )
}

fn incoming(h: &mut Harness, branch: &str) -> LegId {
    let step = h.recv_text(CALLER, &invite(branch));
    assert_eq!(step.names(), ["100"]);
    match step.events.as_slice() {
        [LegEvent::Incoming { leg, invite, .. }] => {
            assert_eq!(invite.headers.call_id, format!("call-{branch}"));
            *leg
        }
        other => panic!("one Incoming event, got {other:?}"),
    }
}

#[test]
fn inbound_progress_answer_retransmits_until_ack_then_remote_bye() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "z9hG4bK-in1");
    let step = h.command(LegCommand::Progress {
        leg,
        status: 183,
        sdp: Some(RELAY_SDP.into()),
    });
    let early = step.only("183").clone();
    assert_eq!(early.body.as_ref(), RELAY_SDP.as_bytes(), "early media SDP");
    let tag = early.headers.to.tag().expect("tag").to_string();
    let step = h.command(LegCommand::Answer {
        leg,
        sdp: RELAY_SDP.into(),
    });
    let ok = step.only("200").clone();
    assert_eq!(
        ok.headers.to.tag(),
        Some(tag.as_str()),
        "one tag for the dialog"
    );
    assert!(!ok.headers.contact.is_empty(), "a 2xx carries our Contact");
    // Retransmitted at T1, 2T1, 4T1 while no ACK comes.
    let step = h.run_to(1_000 + 7 * T1);
    assert_eq!(step.names(), ["200", "200", "200"], "at T1, 2T1, 4T1");
    // A retransmitted INVITE is absorbed (the server transaction is in Accepted).
    assert!(h.recv_text(CALLER, &invite("z9hG4bK-in1")).sent.is_empty());
    let step = h.recv_text(CALLER, &caller_request("ACK", &ok, 1, "z9hG4bK-ack1"));
    assert!(step.sent.is_empty());
    assert_eq!(step.events, [LegEvent::Confirmed { leg }]);
    assert!(
        h.run_to(h.now + 10 * T1).sent.is_empty(),
        "no retransmission after the ACK"
    );
    let step = h.recv_text(CALLER, &caller_request("BYE", &ok, 2, "z9hG4bK-bye1"));
    assert_eq!(step.names(), ["200"]);
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::RemoteHangup
        }]
    );
    // The dialog is gone: another BYE gets 481.
    let step = h.recv_text(CALLER, &caller_request("BYE", &ok, 3, "z9hG4bK-bye2"));
    assert_eq!(step.names(), ["481"]);
    // A late command is ignored.
    assert!(h.command(LegCommand::Hangup { leg }).sent.is_empty());
}

#[test]
fn inbound_2xx_without_ack_is_retransmitted_up_to_t2_then_bye() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "z9hG4bK-in2");
    let ok = h
        .command(LegCommand::Answer {
            leg,
            sdp: RELAY_SDP.into(),
        })
        .only("200")
        .clone();
    let step = h.run_to(1_000 + 64 * T1 + 10);
    let retransmissions = step.names().iter().filter(|n| *n == "200").count();
    // T1 doubling to T2 (4 s): 0.5, 1.5, 3.5, 7.5, 11.5, ..., 31.5 s, then
    // the BYE at 64*T1 = 32 s.
    assert_eq!(retransmissions, 10, "{:?}", step.names());
    assert_eq!(step.names().last().map(String::as_str), Some("BYE"));
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::NoAck
        }]
    );
    let bye = step.only("BYE");
    assert_eq!(bye.headers.call_id, ok.headers.call_id);
    assert_eq!(
        bye.headers.from.tag(),
        ok.headers.to.tag(),
        "our tag is From now"
    );
    assert_eq!(h.edge.b2bua().stats().no_ack, 1);
}

#[test]
fn inbound_cancel_before_the_answer_gets_487_and_after_it_only_200() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "z9hG4bK-in3");
    h.command(LegCommand::Progress {
        leg,
        status: 180,
        sdp: None,
    });
    let cancel = invite("z9hG4bK-in3")
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let cancel = cancel
        .split("Content-Type")
        .next()
        .expect("head")
        .to_string()
        + "Content-Length: 0\r\n\r\n";
    let step = h.recv_text(CALLER, &cancel);
    assert_eq!(step.names(), ["200", "487"]);
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::RemoteHangup
        }]
    );
    // The answer that comes too late is ignored.
    assert!(h
        .command(LegCommand::Answer {
            leg,
            sdp: RELAY_SDP.into()
        })
        .sent
        .is_empty());

    let leg = incoming(&mut h, "z9hG4bK-in4");
    h.command(LegCommand::Answer {
        leg,
        sdp: RELAY_SDP.into(),
    });
    let cancel = cancel.replace("z9hG4bK-in3", "z9hG4bK-in4");
    let step = h.recv_text(CALLER, &cancel);
    assert_eq!(step.names(), ["200"], "the answered call goes on");
    assert!(step.events.is_empty());
    assert!(h.edge.b2bua().has_leg(leg));
}

#[test]
fn inbound_hangups_in_each_state() {
    let mut h = Harness::new();
    // Unanswered: 480 naming why.
    let leg = incoming(&mut h, "z9hG4bK-in5");
    let step = h.command(LegCommand::Hangup { leg });
    assert_eq!(step.names(), ["480"]);
    let reason = match &step.sent[0].1.start {
        StartLine::Response { reason, .. } => reason.to_string(),
        StartLine::Request { .. } => unreachable!(),
    };
    assert!(reason.contains(" - "), "{reason}");
    // Refused with a rule and extra headers.
    let leg = incoming(&mut h, "z9hG4bK-in6");
    let step = h.command(LegCommand::Reject {
        leg,
        status: 404,
        reason: "Not Found - +420225000100 is not a number of this tenant".into(),
        headers: vec![("Retry-After".into(), "60".into())],
    });
    assert_eq!(step.names(), ["404"]);
    assert_eq!(
        step.sent[0].1.headers.get_all("Retry-After").next(),
        Some("60")
    );
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::LocalHangup
        }]
    );
    // Answered, not yet ACKed: the BYE waits for the ACK.
    let leg = incoming(&mut h, "z9hG4bK-in7");
    let ok = h
        .command(LegCommand::Answer {
            leg,
            sdp: RELAY_SDP.into(),
        })
        .only("200")
        .clone();
    assert!(h.command(LegCommand::Hangup { leg }).sent.is_empty());
    let step = h.recv_text(CALLER, &caller_request("ACK", &ok, 1, "z9hG4bK-ack7"));
    assert_eq!(step.names(), ["BYE"]);
    let bye = step.only("BYE").clone();
    let answer = Message::response_to(&bye, 200, "OK");
    let step = h.recv(CALLER, &answer);
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn inbound_in_dialog_requests() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "z9hG4bK-in8");
    let ok = h
        .command(LegCommand::Answer {
            leg,
            sdp: RELAY_SDP.into(),
        })
        .only("200")
        .clone();
    h.recv_text(CALLER, &caller_request("ACK", &ok, 1, "z9hG4bK-ack8"));
    // re-INVITE: 200 with our description, and the new one is passed on.
    let reinvite = caller_request("INVITE", &ok, 2, "z9hG4bK-re8").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:caller@127.0.0.9:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        ),
    );
    let step = h.recv_text(CALLER, &reinvite);
    assert_eq!(step.names(), ["100", "200"]);
    assert_eq!(step.only("200").body.as_ref(), RELAY_SDP.as_bytes());
    assert_eq!(
        step.events,
        [LegEvent::Reoffered {
            leg,
            sdp: SDP.into()
        }]
    );
    let info = caller_request("INFO", &ok, 3, "z9hG4bK-info8").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n",
    );
    let step = h.recv_text(CALLER, &info);
    assert_eq!(step.names(), ["200"]);
    assert!(
        matches!(&step.events[..], [LegEvent::Info { content_type, .. }] if content_type == "application/dtmf-relay")
    );
    assert_eq!(
        h.recv_text(CALLER, &caller_request("OPTIONS", &ok, 4, "z9hG4bK-o8"))
            .names(),
        ["200"]
    );
    assert_eq!(
        h.recv_text(CALLER, &caller_request("SUBSCRIBE", &ok, 5, "z9hG4bK-s8"))
            .names(),
        ["405"]
    );
    // CSeq going backwards: 500.
    assert_eq!(
        h.recv_text(CALLER, &caller_request("OPTIONS", &ok, 2, "z9hG4bK-o9"))
            .names(),
        ["500"]
    );
    // Our hang-up of a confirmed leg is a BYE in the dialog.
    let step = h.command(LegCommand::Hangup { leg });
    let bye = step.only("BYE");
    assert!(bye.headers.cseq.number >= 1);
    assert_eq!(
        step.sent[0].0, CALLER,
        "in-dialog requests go back on the caller's flow"
    );
}

fn phone_response(
    invite: &Message<'_>,
    status: u16,
    tag: &str,
    sdp: Option<&str>,
) -> Message<'static> {
    let mut r = Message::response_to(invite, status, "Reason");
    if status > 100 {
        r.headers
            .to
            .set_tag(std::borrow::Cow::Owned(tag.to_string()));
    }
    if (180..300).contains(&status) {
        let text = "Contact: <sip:anna@127.0.0.8:5080>\r\n";
        let parsed = Message::parse(
            format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n{text}Content-Length: 0\r\n\r\n").as_bytes(),
        )
        .expect("contact parses")
        .into_owned();
        r.headers.contact = parsed.headers.contact;
    }
    if let Some(sdp) = sdp {
        r.headers.content_type = Message::parse(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("ct parses")
        .into_owned()
        .headers
        .content_type;
        r.body = std::borrow::Cow::Owned(sdp.as_bytes().to_vec());
    }
    r.into_owned()
}

#[test]
fn outbound_ringing_answer_ack_and_remote_bye() {
    let mut h = Harness::new();
    let (leg, invite) = h.dial();
    assert_eq!(invite.body.as_ref(), RELAY_SDP.as_bytes());
    assert_eq!(invite.headers.get_all("X-Queue").next(), Some("Support"));
    assert_eq!(
        invite.headers.from.uri.to_string(),
        "sip:+420777123456@demo.test"
    );
    // Timer A retransmits the INVITE until something is heard.
    assert_eq!(h.run_to(1_000 + T1).names(), ["INVITE"]);
    let step = h.recv(PHONE, &phone_response(&invite, 180, "p1", None));
    assert!(step.sent.is_empty());
    assert_eq!(
        step.events,
        [LegEvent::Progress {
            leg,
            status: 180,
            sdp: None
        }]
    );
    assert!(
        h.run_to(h.now + 4 * T1).sent.is_empty(),
        "no retransmission after a provisional"
    );
    let ok = phone_response(&invite, 200, "p1", Some(SDP));
    let step = h.recv(PHONE, &ok);
    assert_eq!(step.names(), ["ACK"]);
    let ack = step.only("ACK").clone();
    assert_ne!(
        ack.top_via().and_then(|v| v.branch()),
        invite.top_via().and_then(|v| v.branch()),
        "the ACK of a 2xx is a new transaction"
    );
    assert_eq!(
        ack.request_uri().map(|u| u.to_string()).as_deref(),
        Some("sip:anna@127.0.0.8:5080")
    );
    assert_eq!(
        step.events,
        [LegEvent::Answered {
            leg,
            sdp: Some(SDP.into())
        }]
    );
    // A retransmitted 2xx is ACKed again.
    assert_eq!(h.recv(PHONE, &ok).names(), ["ACK"]);
    // The phone hangs up.
    let bye = format!(
        "BYE sip:carillon@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.8:5080;branch=z9hG4bK-pb\r\nMax-Forwards: 70\r\nFrom: <sip:anna@demo.test>;tag=p1\r\nTo: {};tag={}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        "<sip:+420777123456@demo.test>",
        invite.headers.from.tag().expect("our tag"),
        invite.headers.call_id
    );
    let step = h.recv_text(PHONE, &bye);
    assert_eq!(step.names(), ["200"]);
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::RemoteHangup
        }]
    );
}

#[test]
fn outbound_cancel_waits_for_a_provisional_and_ends_with_the_487() {
    let mut h = Harness::new();
    let (leg, invite) = h.dial();
    assert!(
        h.command(LegCommand::Hangup { leg }).sent.is_empty(),
        "no CANCEL before a provisional"
    );
    let step = h.recv(PHONE, &phone_response(&invite, 180, "p2", None));
    assert_eq!(step.names(), ["CANCEL"]);
    assert!(
        step.events.is_empty(),
        "the ringing is not reported once hung up"
    );
    let cancel = step.only("CANCEL").clone();
    assert_eq!(
        cancel.top_via().and_then(|v| v.branch()),
        invite.top_via().and_then(|v| v.branch())
    );
    assert!(h
        .recv(PHONE, &Message::response_to(&cancel, 200, "OK"))
        .sent
        .is_empty());
    let step = h.recv(PHONE, &phone_response(&invite, 487, "p2", None));
    assert_eq!(step.names(), ["ACK"], "the transaction ACKs the 487");
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn outbound_answer_crossing_our_cancel_is_acked_and_ended_with_bye() {
    let mut h = Harness::new();
    let (leg, invite) = h.dial();
    h.recv(PHONE, &phone_response(&invite, 180, "p3", None));
    assert_eq!(h.command(LegCommand::Hangup { leg }).names(), ["CANCEL"]);
    let step = h.recv(PHONE, &phone_response(&invite, 200, "p3", Some(SDP)));
    assert_eq!(step.names(), ["ACK", "BYE"]);
    assert!(
        step.events.is_empty(),
        "no Answered for a leg being hung up"
    );
    let bye = step.only("BYE").clone();
    let step = h.recv(PHONE, &Message::response_to(&bye, 200, "OK"));
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn outbound_refusals_and_timeouts_end_the_leg_as_rejected() {
    let mut h = Harness::new();
    let (leg, invite) = h.dial();
    let step = h.recv(PHONE, &phone_response(&invite, 486, "p4", None));
    assert_eq!(step.names(), ["ACK"]);
    assert!(matches!(
        &step.events[..],
        [LegEvent::Ended { leg: l, reason: EndReason::Rejected { status: 486, .. } }] if *l == leg
    ));
    // Nothing heard at all: timer B after 64*T1.
    let (leg, _) = h.dial();
    let step = h.run_to(h.now + 64 * T1 + 10);
    assert!(step.names().iter().all(|n| n == "INVITE"));
    assert!(matches!(
        &step.events[..],
        [LegEvent::Ended { leg: l, reason: EndReason::Rejected { status: 408, .. } }] if *l == leg
    ));
    // Ringing forever after our CANCEL was answered: given up after 64*T1.
    let (leg, invite) = h.dial();
    h.recv(PHONE, &phone_response(&invite, 180, "p5", None));
    let cancel = h.command(LegCommand::Hangup { leg }).only("CANCEL").clone();
    h.recv(PHONE, &Message::response_to(&cancel, 200, "OK"));
    let step = h.run_to(h.now + 64 * T1 + 10);
    assert_eq!(
        step.events,
        [LegEvent::Ended {
            leg,
            reason: EndReason::LocalHangup
        }]
    );
    assert_eq!(
        h.edge.transactions(),
        (0, 0),
        "nothing left behind: {:?}",
        h.edge.transactions()
    );
    assert_eq!(h.edge.b2bua().leg_count(), 0);
    let counts: HashMap<&str, usize> = h.ended.values().fold(HashMap::new(), |mut m, r| {
        *m.entry(match r {
            EndReason::Rejected { .. } => "rejected",
            _ => "other",
        })
        .or_default() += 1;
        m
    });
    assert_eq!(counts.get("rejected"), Some(&2));
}
