//! The SIP edge of a running `carillon demo`, from the outside: SIPp
//! registering the demo accounts (UDP and TCP, right and wrong passwords,
//! the ban and its end, OPTIONS), baresip registering and unregistering, a
//! WebSocket client (RFC 7118), and keepalives finding a dead phone.
//! Extension state is read from the admin API. (Protection against bad and
//! hostile input is `sip_protection.rs`.)
//!
//! Needs SIPp (Debian `sip-tester`) and baresip (Debian `baresip`):
//! `scripts/install-deps.sh` installs both; a test fails, naming the
//! package, when one is missing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::sip_demo::{domain, errors_of, injection, scenario, sipp, sipp_counts, SipDemo};
use common::sipp::{require, Guarded};
use futures_util::{SinkExt, StreamExt};
use md5::Digest as _;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_the_demo_accounts_1000_times_over_udp_then_over_tcp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &[]).await;
    let accounts = demo.accounts_up_to(100).await;
    assert_eq!(accounts.len(), 100);
    let csv = injection(dir.path(), "accounts.csv", &accounts);
    let before = demo.metric("carillon_sip_registrations_total").await;
    let (code, out) = sipp(
        dir.path(),
        demo.sip,
        &[
            "-sf",
            &scenario("register.xml"),
            "-inf",
            &csv.display().to_string(),
            "-m",
            "1000",
            "-r",
            "250",
            "-l",
            "100",
            "-i",
            "127.0.0.2",
            "-t",
            "u1",
        ],
    );
    assert_eq!(
        code,
        0,
        "all 1000 registrations succeed:\n{out}\n{}",
        errors_of(dir.path())
    );
    demo.wait_metric("carillon_sip_registrations_total", before + 1000.0)
        .await;
    demo.wait_metric("carillon_sip_bindings", 100.0).await;
    let extensions = demo.extensions().await;
    for (user, _) in &accounts {
        let e = &extensions[user];
        assert_eq!(e["state"], "online", "{user}: {e}");
        let b = &e["bindings"][0];
        assert_eq!(b["transport"], "udp");
        assert!(
            b["source"].as_str().unwrap_or("").starts_with("127.0.0.2:"),
            "{b}"
        );
        assert_eq!(b["user_agent"], "SIPp");
    }

    // The same over TCP: 100 more registrations on one connection.
    let (code, out) = sipp(
        dir.path(),
        demo.sip,
        &[
            "-sf",
            &scenario("register.xml"),
            "-inf",
            &csv.display().to_string(),
            "-m",
            "100",
            "-r",
            "100",
            "-i",
            "127.0.0.4",
            "-t",
            "t1",
        ],
    );
    assert_eq!(
        code,
        0,
        "registrations over TCP:\n{out}\n{}",
        errors_of(dir.path())
    );
    // Registrations reach the API within a publish period (100-250 ms).
    let mut tcp = 0;
    for _ in 0..30 {
        tcp = demo
            .extensions()
            .await
            .values()
            .filter(|e| {
                e["bindings"]
                    .as_array()
                    .is_some_and(|b| b.iter().any(|b| b["transport"] == "tcp"))
            })
            .count();
        if tcp == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tcp, 100, "every account has a TCP contact now");
    demo.wait_metric("carillon_sip_connections_accepted_total", 1.0)
        .await;
    assert_eq!(demo.demo.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_get_401_then_a_ban_that_lifts_and_options_are_answered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &["max_auth_failures=3", "ban_s=4"]).await;
    let accounts = demo.accounts();
    let wrong: Vec<(String, String)> = accounts
        .iter()
        .map(|(u, _)| (u.clone(), "Wrong-Guess-1!".to_string()))
        .collect();
    let csv = injection(dir.path(), "wrong.csv", &wrong);
    let (code, out) = sipp(
        dir.path(),
        demo.sip,
        &[
            "-sf",
            &scenario("register_wrong.xml"),
            "-inf",
            &csv.display().to_string(),
            "-m",
            "8",
            "-l",
            "1",
            "-i",
            "127.0.0.3",
            "-trace_counts",
        ],
    );
    assert_eq!(code, 0, "{out}\n{}", errors_of(dir.path()));
    let counts = sipp_counts(dir.path(), "register_wrong_");
    assert_eq!(counts["1_401_Recv"], 3, "three challenges: {counts:?}");
    assert_eq!(
        counts["4_401_Recv"], 2,
        "two wrong guesses answered 401: {counts:?}"
    );
    assert_eq!(
        counts["5_403_Recv"], 1,
        "the third wrong guess bans: {counts:?}"
    );
    assert_eq!(
        counts["2_403_Recv"], 5,
        "a banned source gets 403 at once: {counts:?}"
    );
    demo.wait_metric("carillon_sip_banned_sources", 1.0).await;
    demo.wait_metric("carillon_sip_auth_failures_total", 3.0)
        .await;

    // A right password from another address is not affected by the ban.
    let right = injection(dir.path(), "right.csv", &accounts[..1]);
    let register = |source: &str| {
        sipp(
            dir.path(),
            demo.sip,
            &[
                "-sf",
                &scenario("register.xml"),
                "-inf",
                &right.display().to_string(),
                "-m",
                "1",
                "-i",
                source,
            ],
        )
    };
    let (code, out) = register("127.0.0.5");
    assert_eq!(code, 0, "{out}");
    // From the banned address even the right password is refused...
    let (code, _) = register("127.0.0.3");
    assert_ne!(code, 0, "a banned source cannot register");
    // ...until the ban lifts (4 s).
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let (code, out) = register("127.0.0.3");
    assert_eq!(
        code,
        0,
        "the ban has lifted: {out}\n{}",
        errors_of(dir.path())
    );
    demo.wait_metric("carillon_sip_banned_sources", 0.0).await;

    let (code, out) = sipp(
        dir.path(),
        demo.sip,
        &[
            "-sf",
            &scenario("options.xml"),
            "-m",
            "100",
            "-r",
            "100",
            "-i",
            "127.0.0.6",
        ],
    );
    assert_eq!(code, 0, "100 OPTIONS answered 200:\n{out}");
    assert_eq!(demo.demo.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_stops_answering_keepalives_becomes_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &["keepalive_interval_s=1", "t1_ms=50"]).await;
    let accounts = demo.accounts();
    let csv = injection(dir.path(), "one.csv", &accounts[1..2]);
    // SIPp registers, then exits: nothing answers at its address any more.
    let (code, out) = sipp(
        dir.path(),
        demo.sip,
        &[
            "-sf",
            &scenario("register.xml"),
            "-inf",
            &csv.display().to_string(),
            "-m",
            "1",
            "-i",
            "127.0.0.7",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let user = &accounts[1].0;
    demo.wait_state(user, "online", Duration::from_secs(2))
        .await;
    // Keepalive every second; an unanswered one times out after 64*T1 = 3.2 s.
    let e = demo
        .wait_state(user, "unavailable", Duration::from_secs(15))
        .await;
    assert_eq!(e["bindings"][0]["reachable"], false, "{e}");
    assert!(demo.metric("carillon_sip_keepalives_failed_total").await >= 1.0);
    assert_eq!(demo.demo.terminate(), Some(0));
}

/// A loopback port that is free for both UDP and TCP right now.
fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("an ephemeral UDP port");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP in 100 tries")
}

fn baresip_config(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir).expect("baresip dir");
    std::fs::write(
        dir.join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\nmodule_app account.so\nsip_listen 127.0.0.1:{port}\naudio_player ausine,\naudio_source ausine,nothing\naudio_alert ausine,\n"
        ),
    )
    .expect("baresip config");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_is_online_and_unregisters_over_udp_and_tcp() {
    let bin = require("baresip", "baresip");
    let dir = tempfile::tempdir().expect("temp dir");
    // baresip 1.0 (libre 1.0) gives up on a 401 that carries any non-MD5
    // challenge, so this node offers MD5 only (see the README).
    let demo = SipDemo::start(dir.path(), &["digest=\"md5-only\""]).await;
    let accounts = demo.accounts();
    for (transport, (user, password)) in [("udp", &accounts[1]), ("tcp", &accounts[2])] {
        // baresip needs its own listening port, free for UDP and TCP alike;
        // if another process takes it first baresip cannot start, so a start
        // that never registers is retried on another port (each attempt's
        // log is kept and shown).
        let mut attempts = Vec::new();
        let (mut child, e) = loop {
            let home = dir
                .path()
                .join(format!("baresip-{transport}-{}", attempts.len()));
            baresip_config(&home, free_udp_and_tcp_port());
            std::fs::write(
                home.join("accounts"),
                format!(
                    "<sip:{user}@{};transport={transport}>;auth_pass={password};outbound=\"sip:{};transport={transport}\";regint=600\n",
                    domain(),
                    demo.sip
                ),
            )
            .expect("accounts");
            let log = std::fs::File::create(home.join("baresip.log")).expect("log");
            let child = Command::new(&bin)
                .arg("-f")
                .arg(&home)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start baresip");
            let mut child = Guarded(child);
            match demo
                .try_wait_state(user, "online", Duration::from_secs(15))
                .await
            {
                Ok(e) => break (child, e),
                Err(e) => {
                    let exited = child.0.try_wait().ok().flatten();
                    attempts.push(format!(
                        "attempt {}: {user} not online ({e}); baresip exited: {exited:?}; baresip.log:\n{}",
                        attempts.len() + 1,
                        std::fs::read_to_string(home.join("baresip.log")).unwrap_or_default()
                    ));
                    eprintln!("{}", attempts.last().expect("pushed"));
                    assert!(
                        attempts.len() < 3,
                        "baresip never registered over {transport}:\n{}\nnode log:\n{}",
                        attempts.join("\n"),
                        std::fs::read_to_string(&demo.demo.log).unwrap_or_default()
                    );
                }
            }
        };
        assert_eq!(e["bindings"][0]["transport"], transport, "{e}");
        assert!(
            e["bindings"][0]["user_agent"]
                .as_str()
                .unwrap_or("")
                .starts_with("baresip"),
            "{e}"
        );
        // SIGTERM: baresip unregisters (Expires: 0) on its way out.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let e = demo
            .wait_state(user, "unavailable", Duration::from_secs(15))
            .await;
        assert_eq!(
            e["bindings"],
            json!([]),
            "unregistered, not merely unreachable: {e}"
        );
        let _ = child.0.wait();
    }
    assert_eq!(demo.demo.terminate(), Some(0));
}

fn ha1_sha256(user: &str, password: &str) -> String {
    hex::encode(sha2::Sha256::digest(
        format!("{user}:{}:{password}", domain()).as_bytes(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_registers_with_sha256_and_its_close_makes_it_unavailable() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as Ws;
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &["digest=\"sha256-first\""]).await;
    let (user, password) = demo.accounts()[3].clone();
    let mut request = demo
        .ws_url
        .clone()
        .into_client_request()
        .expect("ws request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().expect("header"));
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connects");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"sip"[..]),
        "RFC 7118: the server selects the sip subprotocol"
    );
    let register = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-ws{cseq};rport\r\nFrom: <sip:{user}@{d}>;tag=ws1\r\nTo: <sip:{user}@{d}>\r\nCall-ID: ws-call\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:{user}@df7jal23ls0d.invalid;transport=ws>;expires=300\r\nUser-Agent: carillon-ws-test\r\n{auth}Content-Length: 0\r\n\r\n",
            d = domain()
        )
    };
    ws.send(Ws::Text(register(1, "").into()))
        .await
        .expect("send");
    let challenge = match ws.next().await {
        Some(Ok(Ws::Text(t))) => t.to_string(),
        other => panic!("a 401 over WebSocket, got {other:?}"),
    };
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let first = challenge
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate:"))
        .expect("a challenge");
    assert!(
        first.contains("algorithm=SHA-256"),
        "SHA-256 first: {first}"
    );
    let nonce = first
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("nonce");
    let uri = format!("sip:{}", domain());
    let response = carillon_sip::digest::client_response(
        carillon_sip::digest::Algorithm::Sha256,
        &ha1_sha256(&user, &password),
        nonce,
        1,
        "ws-cnonce",
        "REGISTER",
        &uri,
    );
    let auth = format!(
        "Authorization: Digest username=\"{user}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, cnonce=\"ws-cnonce\", qop=auth, nc=00000001\r\n",
        domain()
    );
    ws.send(Ws::Text(register(2, &auth).into()))
        .await
        .expect("send");
    let ok = match ws.next().await {
        Some(Ok(Ws::Text(t))) => t.to_string(),
        other => panic!("a 200 over WebSocket, got {other:?}"),
    };
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let e = demo
        .wait_state(&user, "online", Duration::from_secs(3))
        .await;
    assert_eq!(e["bindings"][0]["transport"], "ws", "{e}");
    ws.close(None).await.expect("close");
    drop(ws);
    let e = demo
        .wait_state(&user, "unavailable", Duration::from_secs(5))
        .await;
    assert_eq!(e["bindings"][0]["reachable"], false, "{e}");
    assert_eq!(demo.demo.terminate(), Some(0));
}
