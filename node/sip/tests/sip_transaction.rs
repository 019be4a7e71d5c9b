//! Data-driven tests of the four transaction machines (RFC 3261 section
//! 17): each case is a script of timed inputs and the exact outputs each
//! one must produce, run by one `check()` helper, over UDP and over a
//! reliable transport. Default timers: T1 = 500 ms, T2 = 4 s, T4 = 5 s,
//! 64*T1 = 32 s, D = 32 s.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use carillon_sip::message::{Message, Method};
use carillon_sip::transaction::{
    ClientInput, ClientInvite, ClientNonInvite, Millis, Output, ServerInput, ServerInvite,
    ServerNonInvite, Timer, TimerConfig, TransactionKey,
};

fn request(method: &str) -> Message<'static> {
    let text = format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP client.example.com:5060;branch=z9hG4bKtx1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: call-1@client.example.com\r\n\
         CSeq: 7 {method}\r\n\
         Route: <sip:proxy.example.com;lr>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Message::parse(text.as_bytes()).unwrap().into_owned()
}

fn response(to: &Message<'_>, status: u16) -> Message<'static> {
    let mut r = Message::response_to(to, status, "Reason");
    if status > 100 {
        r.headers.to.set_tag(Cow::Borrowed("b1"));
    }
    r
}

#[allow(clippy::enum_variant_names)] // the four RFC 3261 transaction kinds
enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

#[derive(Clone, Copy)]
#[allow(clippy::enum_variant_names)] // the four RFC 3261 transaction kinds
enum Kind {
    ClientInvite,
    ClientNonInvite,
    ServerInvite,
    ServerNonInvite,
}

fn render(outputs: &[Output]) -> String {
    let name = |m: &Message<'_>| match m.status() {
        Some(s) => s.to_string(),
        None => m.method().to_string(),
    };
    let parts: Vec<String> = outputs
        .iter()
        .map(|o| match o {
            Output::Send(m) => format!("send {}", name(m)),
            Output::Deliver(m) => format!("tu {}", name(m)),
            Output::Schedule { timer, at } => format!("{timer:?}@{}", at.0),
            Output::Timeout => "timeout".into(),
            Output::TransportFailed => "transport failed".into(),
            Output::Terminated => "terminated".into(),
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn timer(letter: &str) -> Timer {
    match letter {
        "A" => Timer::A,
        "B" => Timer::B,
        "D" => Timer::D,
        "E" => Timer::E,
        "F" => Timer::F,
        "G" => Timer::G,
        "H" => Timer::H,
        "I" => Timer::I,
        "J" => Timer::J,
        "K" => Timer::K,
        "L" => Timer::L,
        other => panic!("unknown timer {other}"),
    }
}

/// Runs `script`: one step per line, `<ms> <input> => <outputs>`, where
/// input is `start`, `fire X`, `recv <status|METHOD>`, `tu <status>` or
/// `transport error`, and outputs are rendered by [`render`].
fn check(kind: Kind, reliable: bool, script: &str) {
    let config = TimerConfig::default();
    let method = match kind {
        Kind::ClientInvite | Kind::ServerInvite => "INVITE",
        Kind::ClientNonInvite | Kind::ServerNonInvite => "OPTIONS",
    };
    let original = request(method);
    let mut machine: Option<Machine> = None;
    for (n, line) in script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let (step, expected) = line
            .split_once("=>")
            .unwrap_or_else(|| panic!("bad script line {line}"));
        let (time, input) = step.trim().split_once(' ').unwrap();
        let now = Millis(time.parse().unwrap());
        let input = input.trim();
        let outputs = if input == "start" {
            assert!(machine.is_none(), "start twice");
            let req = original.clone();
            let (m, out) = match kind {
                Kind::ClientInvite => {
                    let (m, o) = ClientInvite::start(now, req, reliable, config);
                    (Machine::ClientInvite(m), o)
                }
                Kind::ClientNonInvite => {
                    let (m, o) = ClientNonInvite::start(now, req, reliable, config);
                    (Machine::ClientNonInvite(m), o)
                }
                Kind::ServerInvite => {
                    let (m, o) = ServerInvite::start(now, req, reliable, config);
                    (Machine::ServerInvite(m), o)
                }
                Kind::ServerNonInvite => {
                    let (m, o) = ServerNonInvite::start(now, req, reliable, config);
                    (Machine::ServerNonInvite(m), o)
                }
            };
            machine = Some(m);
            out
        } else {
            let m = machine.as_mut().expect("script must start with 'start'");
            let (verb, arg) = input.split_once(' ').unwrap();
            let client_input = match (verb, arg) {
                ("fire", t) => Some(ClientInput::TimerFired(timer(t))),
                ("transport", "error") => Some(ClientInput::TransportError),
                ("recv", code) if code.parse::<u16>().is_ok() => Some(ClientInput::Response(
                    Box::new(response(&original, code.parse().unwrap())),
                )),
                _ => None,
            };
            let server_input = || match (verb, arg) {
                ("fire", t) => ServerInput::TimerFired(timer(t)),
                ("transport", "error") => ServerInput::TransportError,
                ("recv", "ACK") => {
                    let mut ack = request("ACK");
                    ack.headers.to.set_tag(Cow::Borrowed("b1"));
                    ServerInput::Request(Box::new(ack))
                }
                ("recv", method) => ServerInput::Request(Box::new(request(method))),
                ("tu", code) => {
                    ServerInput::Respond(Box::new(response(&original, code.parse().unwrap())))
                }
                _ => panic!("bad input {input}"),
            };
            match m {
                Machine::ClientInvite(m) => m.handle(now, client_input.expect("client input")),
                Machine::ClientNonInvite(m) => m.handle(now, client_input.expect("client input")),
                Machine::ServerInvite(m) => m.handle(now, server_input()),
                Machine::ServerNonInvite(m) => m.handle(now, server_input()),
            }
        };
        match machine.as_ref() {
            Some(Machine::ClientInvite(m)) => m.check_invariants(),
            Some(Machine::ClientNonInvite(m)) => m.check_invariants(),
            Some(Machine::ServerInvite(m)) => m.check_invariants(),
            Some(Machine::ServerNonInvite(m)) => m.check_invariants(),
            None => {}
        }
        assert_eq!(render(&outputs), expected.trim(), "step {} `{line}`", n + 1);
    }
}

const UDP: bool = false;
const TCP: bool = true;

#[test]
fn client_invite_timer_a_doubles_without_cap_and_timer_b_times_out() {
    check(
        Kind::ClientInvite,
        UDP,
        "
        0 start         => send INVITE, A@500, B@32000
        400 fire A      => -
        500 fire A      => send INVITE, A@1500
        1500 fire A     => send INVITE, A@3500
        3500 fire A     => send INVITE, A@7500
        7500 fire A     => send INVITE, A@15500
        15500 fire A    => send INVITE, A@31500
        31500 fire A    => send INVITE, A@63500
        32000 fire B    => timeout, terminated
        63500 fire A    => -
        63600 recv 200  => -
    ",
    );
}

#[test]
fn client_invite_provisional_stops_retransmissions_and_non_2xx_is_acked_until_timer_d() {
    check(
        Kind::ClientInvite,
        UDP,
        "
        0 start         => send INVITE, A@500, B@32000
        100 recv 180    => tu 180
        500 fire A      => -
        600 recv 183    => tu 183
        1000 recv 486   => tu 486, send ACK, D@33000
        2000 recv 486   => send ACK
        2100 recv 180   => -
        32000 fire B    => -
        33000 fire D    => terminated
    ",
    );
}

#[test]
fn client_invite_2xx_goes_to_the_tu_and_ends_the_transaction() {
    check(
        Kind::ClientInvite,
        UDP,
        "
        0 start         => send INVITE, A@500, B@32000
        100 recv 200    => tu 200, terminated
        200 recv 200    => -
    ",
    );
}

#[test]
fn client_invite_over_tcp_has_no_timer_a_and_zero_timer_d() {
    check(
        Kind::ClientInvite,
        TCP,
        "
        0 start         => send INVITE, B@32000
        500 fire A      => -
        900 recv 603    => tu 603, send ACK, terminated
    ",
    );
    check(
        Kind::ClientInvite,
        TCP,
        "
        0 start         => send INVITE, B@32000
        32000 fire B    => timeout, terminated
    ",
    );
}

#[test]
fn client_invite_transport_error() {
    check(
        Kind::ClientInvite,
        UDP,
        "
        0 start               => send INVITE, A@500, B@32000
        10 transport error    => transport failed, terminated
        500 fire A            => -
    ",
    );
}

#[test]
fn client_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() {
    check(
        Kind::ClientNonInvite,
        UDP,
        "
        0 start         => send OPTIONS, E@500, F@32000
        500 fire E      => send OPTIONS, E@1500
        1500 fire E     => send OPTIONS, E@3500
        3500 fire E     => send OPTIONS, E@7500
        7500 fire E     => send OPTIONS, E@11500
        11500 fire E    => send OPTIONS, E@15500
        15500 fire E    => send OPTIONS, E@19500
        32000 fire F    => timeout, terminated
        32001 recv 200  => -
    ",
    );
}

#[test]
fn client_non_invite_proceeding_retransmits_every_t2_and_timer_k_absorbs() {
    check(
        Kind::ClientNonInvite,
        UDP,
        "
        0 start         => send OPTIONS, E@500, F@32000
        200 recv 100    => tu 100
        500 fire E      => send OPTIONS, E@4500
        4500 fire E     => send OPTIONS, E@8500
        5000 recv 200   => tu 200, K@10000
        5100 recv 200   => -
        8500 fire E     => -
        10000 fire K    => terminated
    ",
    );
}

#[test]
fn client_non_invite_over_tcp_has_no_timer_e_and_zero_timer_k() {
    check(
        Kind::ClientNonInvite,
        TCP,
        "
        0 start         => send OPTIONS, F@32000
        100 recv 404    => tu 404, terminated
    ",
    );
    check(
        Kind::ClientNonInvite,
        TCP,
        "
        0 start         => send OPTIONS, F@32000
        200 recv 100    => tu 100
        32000 fire F    => timeout, terminated
    ",
    );
}

#[test]
fn server_invite_absorbs_retransmissions_timer_g_caps_at_t2_ack_and_timer_i() {
    check(
        Kind::ServerInvite,
        UDP,
        "
        0 start         => tu INVITE, send 100
        100 recv INVITE => send 100
        200 tu 180      => send 180
        300 recv INVITE => send 180
        1000 tu 486     => send 486, G@1500, H@33000
        1500 fire G     => send 486, G@2500
        2500 fire G     => send 486, G@4500
        4500 fire G     => send 486, G@8500
        8500 fire G     => send 486, G@12500
        9000 recv INVITE => send 486
        10000 recv ACK  => I@15000
        10100 recv ACK  => -
        10200 recv INVITE => -
        12500 fire G    => -
        15000 fire I    => terminated
    ",
    );
}

#[test]
fn server_invite_timer_h_gives_up_waiting_for_the_ack() {
    check(
        Kind::ServerInvite,
        UDP,
        "
        0 start         => tu INVITE, send 100
        1000 tu 500     => send 500, G@1500, H@33000
        33000 fire H    => timeout, terminated
        33001 recv ACK  => -
    ",
    );
}

#[test]
fn server_invite_2xx_is_accepted_until_timer_l() {
    // RFC 6026: INVITE retransmissions after the 2xx are absorbed, the TU's
    // 2xx retransmissions go out, an ACK that matches goes to the TU, and
    // timer L ends it; a response after that is ignored.
    check(
        Kind::ServerInvite,
        UDP,
        "
        0 start         => tu INVITE, send 100
        100 tu 200      => send 200, L@32100
        200 recv INVITE => -
        600 tu 200      => send 200
        700 tu 486      => -
        800 recv ACK    => tu ACK
        32100 fire L    => terminated
        32200 tu 200    => -
    ",
    );
    check(
        Kind::ServerInvite,
        TCP,
        "
        0 start         => tu INVITE, send 100
        100 tu 200      => send 200, L@32100
        32100 fire L    => terminated
    ",
    );
}

#[test]
fn server_invite_over_tcp_has_no_timer_g_and_zero_timer_i() {
    check(
        Kind::ServerInvite,
        TCP,
        "
        0 start         => tu INVITE, send 100
        1000 tu 486     => send 486, H@33000
        1200 recv ACK   => terminated
    ",
    );
    check(
        Kind::ServerInvite,
        TCP,
        "
        0 start         => tu INVITE, send 100
        1000 tu 486     => send 486, H@33000
        33000 fire H    => timeout, terminated
    ",
    );
}

#[test]
fn server_non_invite_absorbs_retransmissions_and_timer_j() {
    check(
        Kind::ServerNonInvite,
        UDP,
        "
        0 start          => tu OPTIONS
        100 recv OPTIONS => -
        200 tu 100       => send 100
        300 recv OPTIONS => send 100
        400 tu 200       => send 200, J@32400
        500 recv OPTIONS => send 200
        600 tu 500       => -
        32400 fire J     => terminated
    ",
    );
}

#[test]
fn server_non_invite_over_tcp_has_zero_timer_j() {
    check(
        Kind::ServerNonInvite,
        TCP,
        "
        0 start          => tu OPTIONS
        400 tu 200       => send 200, terminated
        500 recv OPTIONS => -
    ",
    );
}

#[test]
fn server_transport_errors_end_the_transaction() {
    check(
        Kind::ServerNonInvite,
        UDP,
        "
        0 start               => tu OPTIONS
        400 tu 200            => send 200, J@32400
        500 transport error   => transport failed, terminated
    ",
    );
    check(
        Kind::ServerInvite,
        UDP,
        "
        0 start               => tu INVITE, send 100
        5 transport error     => transport failed, terminated
    ",
    );
}

#[test]
fn configurable_timers() {
    let config = TimerConfig {
        t1_ms: 100,
        t2_ms: 300,
        t4_ms: 1000,
        timer_d_ms: 32_000,
    };
    let (mut m, out) = ClientNonInvite::start(Millis(0), request("OPTIONS"), false, config);
    assert_eq!(render(&out), "send OPTIONS, E@100, F@6400");
    assert_eq!(
        render(&m.handle(Millis(100), ClientInput::TimerFired(Timer::E))),
        "send OPTIONS, E@300"
    );
    assert_eq!(
        render(&m.handle(Millis(300), ClientInput::TimerFired(Timer::E))),
        "send OPTIONS, E@600"
    );
    assert_eq!(
        render(&m.handle(Millis(600), ClientInput::TimerFired(Timer::E))),
        "send OPTIONS, E@900"
    );
}

#[test]
fn ack_for_a_non_2xx_follows_rfc3261_17_1_1_3() {
    let invite = request("INVITE");
    let (mut m, _) = ClientInvite::start(Millis(0), invite.clone(), false, TimerConfig::default());
    let out = m.handle(
        Millis(10),
        ClientInput::Response(Box::new(response(&invite, 404))),
    );
    let Output::Send(ack) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(*ack.method(), Method::Ack);
    assert_eq!(ack.request_uri(), invite.request_uri());
    assert_eq!(ack.headers.via, invite.headers.via[..1]);
    assert_eq!(ack.headers.to.tag(), Some("b1"));
    assert_eq!(ack.headers.cseq.number, 7);
    assert_eq!(ack.headers.route, invite.headers.route);
    // Same transaction as the INVITE on the server side.
    assert_eq!(
        TransactionKey::for_server(ack),
        TransactionKey::for_server(&invite)
    );
    assert_eq!(
        TransactionKey::for_client_response(&response(&invite, 404)),
        TransactionKey::for_client_request(&invite)
    );
}

#[test]
fn transaction_keys() {
    let invite = request("INVITE");
    let cancel = request("CANCEL");
    assert_ne!(
        TransactionKey::for_server(&invite),
        TransactionKey::for_server(&cancel),
        "CANCEL is its own transaction"
    );
    // RFC 2543 matching: no cookie in the branch.
    let mut old = invite.clone();
    old.headers.via[0].params.clear();
    let mut old_ack = request("ACK");
    old_ack.headers.via[0].params.clear();
    old_ack.headers.to.set_tag(Cow::Borrowed("b1"));
    let key = TransactionKey::for_server(&old).unwrap();
    assert!(matches!(key, TransactionKey::Rfc2543 { .. }));
    assert_eq!(
        Some(key),
        TransactionKey::for_server(&old_ack),
        "ACK matches the INVITE despite the To tag"
    );
    let mut other = old.clone();
    other.headers.cseq.number = 8;
    assert_ne!(
        TransactionKey::for_server(&other),
        TransactionKey::for_server(&old)
    );
}
