//! The SIP edge of a running `carillon demo` against bad and hostile input:
//! the RFC 4475/5118 torture corpus over UDP, a burst of requests, calls
//! that break a rule (each refused with a reason naming it), and TCP
//! connections that are oversize, slow or idle.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::raw::{final_answer, invite, PCMU_OFFER};
use common::sip_demo::{domain, SipDemo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TORTURE: &str = "../../shared/testdata/sip-torture";

/// A burst of requests over UDP, far more than the edge reads per wake-up
/// (65), each answered exactly once without a retransmission: no datagram
/// the node reads is dropped, and the socket buffer holds the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_udp_requests_is_answered_one_for_one() {
    const BURST: usize = 400;
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &["rate_per_second=1000000", "burst=1000000"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // The answers arrive while the burst is being sent: the client's own
    // buffer must hold them too.
    socket2::SockRef::from(&socket)
        .set_recv_buffer_size(4 << 20)
        .expect("client receive buffer");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let reader = {
        let socket = socket.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut answers: BTreeMap<String, usize> = BTreeMap::new();
            let mut buf = [0u8; 4096];
            while answers.values().sum::<usize>() < BURST {
                let Ok(n) = socket.recv(&mut buf) else { break };
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(text.starts_with("SIP/2.0 200"), "{text}");
                let call_id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: "))
                    .expect("Call-ID")
                    .to_string();
                *answers.entry(call_id).or_default() += 1;
            }
            answers
        })
    };
    for n in 0..BURST {
        let request = format!(
            "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-burst{n}\r\nFrom: <sip:a@b>;tag=b{n}\r\nTo: <sip:{0}>\r\nCall-ID: burst-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            demo.sip
        );
        socket.send_to(request.as_bytes(), demo.sip).expect("send");
    }
    let answers = reader.join().expect("reader");
    let missing: Vec<usize> = (0..BURST)
        .filter(|n| !answers.contains_key(&format!("burst-{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {BURST} requests unanswered (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        answers.values().all(|count| *count == 1),
        "each request answered once"
    );
    assert_eq!(demo.demo.terminate(), Some(0));
}

/// Calls that break a rule are refused with a status and a reason phrase
/// that names it: an unknown number, a malformed or codec-less offer, an
/// internal number without credentials, a flood from one source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_refused_with_the_rule_they_break() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &["rate_per_second=50", "burst=50"]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let good = PCMU_OFFER;
    let g729 = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5998 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let did = format!("sip:+420225000100@{}", demo.sip);
    let cases = [
        (
            invite(&format!("sip:+420111222333@{}", demo.sip), "unknown", good),
            404,
            "not a number served here",
        ),
        (
            invite(&format!("sip:999@{}", domain()), "unknown-internal", good),
            404,
            "neither a DID nor an internal number",
        ),
        (
            invite(&did, "malformed", "this is not SDP"),
            488,
            "malformed",
        ),
        (invite(&did, "codecless", g729), 488, "no G.711"),
        (
            invite(&format!("sip:101@{}", domain()), "internal", good),
            407,
            "internal numbers are authenticated",
        ),
    ];
    for (request, status, words) in cases {
        let (got, reason, text) = final_answer(&socket, demo.sip, &request);
        assert_eq!(got, status, "{reason}\n{request}");
        assert!(
            reason.contains(" - ") && reason.contains(words),
            "the reason names the rule: {reason}"
        );
        if status == 407 {
            assert!(
                text.contains("Proxy-Authenticate: Digest"),
                "a challenge: {text}"
            );
        }
    }
    // A flood from one source: the guard answers one 503, then silence.
    for n in 0..200 {
        let request = invite(
            &format!("sip:+420111222333@{}", demo.sip),
            &format!("flood-{n}"),
            good,
        );
        socket.send_to(request.as_bytes(), demo.sip).expect("send");
    }
    let mut buf = [0u8; 8192];
    let mut limited = 0;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    while let Ok(n) = socket.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("SIP/2.0 503") {
            assert!(text.contains("rate limit"), "{text}");
            limited += 1;
        }
    }
    assert_eq!(limited, 1, "one 503 for the flood, then silence");
    assert_eq!(demo.demo.terminate(), Some(0));
}

/// Reads from `stream` until EOF or `within`; whether the server closed it.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 4096];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn tcp_options(addr: SocketAddr, stream: &mut tokio::net::TcpStream, n: u32) -> String {
    let text = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-tcp{n}\r\nFrom: <sip:t@x>;tag=t{n}\r\nTo: <sip:{addr}>\r\nCall-ID: tcp-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_oversize_slow_and_idle_connections_are_cut_without_harming_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(
        dir.path(),
        &[
            "message_deadline_s=1",
            "idle_timeout_s=2",
            "max_connections=5",
        ],
    )
    .await;
    let addr = demo.sip;
    let connect = || tokio::net::TcpStream::connect(addr);
    let mut good = connect().await.expect("connect");
    assert!(tcp_options(addr, &mut good, 1)
        .await
        .starts_with("SIP/2.0 200"));
    // Slow: half a request, then nothing.
    let mut slow = connect().await.expect("connect");
    slow.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK-s\r\n")
        .await
        .expect("write");
    // Oversize: 70 KB of header lines without an end.
    let mut big = connect().await.expect("connect");
    let mut junk = b"OPTIONS sip:x SIP/2.0\r\n".to_vec();
    while junk.len() < 70 * 1024 {
        junk.extend_from_slice(
            b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    let _ = big.write_all(&junk).await;
    assert!(
        closed_within(&mut big, Duration::from_secs(3)).await,
        "oversize input is cut"
    );
    assert!(
        tcp_options(addr, &mut good, 2)
            .await
            .starts_with("SIP/2.0 200"),
        "others unharmed"
    );
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "slow input is cut"
    );
    // Connection limit: `good` plus four more fill the five places.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect().await.expect("connect"));
    }
    let mut sixth = connect().await.expect("the kernel accepts");
    assert!(
        closed_within(&mut sixth, Duration::from_secs(2)).await,
        "the sixth is refused"
    );
    assert!(tcp_options(addr, &mut good, 3)
        .await
        .starts_with("SIP/2.0 200"));
    // Idle ones are closed after 2 s.
    for mut c in held {
        assert!(
            closed_within(&mut c, Duration::from_secs(4)).await,
            "idle connections are cut"
        );
    }
    assert!(demo.metric("carillon_sip_connections_cut_total").await >= 6.0);
    assert!(demo.metric("carillon_sip_connections_refused_total").await >= 1.0);
    assert_eq!(demo.demo.terminate(), Some(0));
}

/// What the node answers to each torture message over UDP: the final
/// status, or `None` for nothing (responses are dropped; nothing goes to
/// a broadcast address).
fn expected_over_udp(name: &str) -> Option<Option<u16>> {
    let e = match name {
        // RFC 4475 3.1.1 valid messages: parsed, then served by method.
        // wsinv carries a To tag: an in-dialog request for no dialog here.
        "rfc4475__wsinv.dat" => Some(481),
        // Valid INVITEs to numbers no tenant has: 404 naming the number.
        "rfc4475__esc01.dat" | "rfc4475__longreq.dat" => Some(404),
        "rfc4475__intmeth.dat" | "rfc4475__esc02.dat" => Some(501),
        "rfc4475__escnull.dat" | "rfc4475__dblreq.dat" => Some(401),
        "rfc4475__lwsdisp.dat" | "rfc4475__semiuri.dat" | "rfc4475__transports.dat" => Some(200),
        "rfc4475__mpart01.dat" => Some(405),
        "rfc4475__unreason.dat" | "rfc4475__noreason.dat" => None,
        // 3.1.2 invalid: 400 (505 for the version), responses dropped.
        "rfc4475__badinv01.dat"
        | "rfc4475__clerr.dat"
        | "rfc4475__ncl.dat"
        | "rfc4475__scalar02.dat"
        | "rfc4475__quotbal.dat"
        | "rfc4475__ltgtruri.dat"
        | "rfc4475__lwsruri.dat"
        | "rfc4475__lwsstart.dat"
        | "rfc4475__trws.dat"
        | "rfc4475__escruri.dat"
        | "rfc4475__baddate.dat"
        | "rfc4475__regbadct.dat"
        | "rfc4475__badaspec.dat"
        | "rfc4475__baddn.dat"
        | "rfc4475__mismatch01.dat"
        | "rfc4475__mismatch02.dat" => Some(400),
        "rfc4475__badvers.dat" => Some(505),
        "rfc4475__scalarlg.dat" | "rfc4475__bigcode.dat" => None,
        // 3.2 and 3.4.
        "rfc4475__badbranch.dat" => Some(200),
        "rfc4475__inv2543.dat" => Some(404),
        // 3.3 application layer.
        "rfc4475__insuf.dat" | "rfc4475__multi01.dat" | "rfc4475__mcl01.dat" => Some(400),
        "rfc4475__unkscm.dat" | "rfc4475__novelsc.dat" => Some(416),
        "rfc4475__unksm2.dat"
        | "rfc4475__regaut01.dat"
        | "rfc4475__cparam01.dat"
        | "rfc4475__cparam02.dat"
        | "rfc4475__regescrt.dat" => Some(401),
        "rfc4475__bext01.dat" => Some(420),
        "rfc4475__invut.dat" => Some(415),
        "rfc4475__bcast.dat" => None,
        "rfc4475__zeromf.dat" => Some(483),
        "rfc4475__sdp01.dat" => Some(406),
        // RFC 5118: parsed (domains other than example.com are not served).
        "rfc5118__ipv6-good" | "rfc5118__port-ambiguous" | "rfc5118__port-unambiguous" => Some(404),
        "rfc5118__ipv6-correct-abnf-2-colons" | "rfc5118__via-received-param-no-delim" => Some(200),
        // Offers without G.711 audio (G.726 only) are not acceptable here.
        "rfc5118__ipv4-mapped-ipv6" | "rfc5118__ipv6-in-sdp" => Some(488),
        "rfc5118__mult-ip-in-sdp" => Some(404),
        "rfc5118__mult-ip-in-header" | "rfc5118__via-received-param-with-delim" => Some(481),
        "rfc5118__ipv6-bad" => Some(400),
        // RFC 5118 4.4: decided in the codec's deviation list (rejected).
        "rfc5118__ipv6-bug-abnf-3-colons" => Some(400),
        _ => return None,
    };
    Some(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_torture_corpus_over_udp_gets_the_answers_of_the_table_and_the_node_stays_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = SipDemo::start(dir.path(), &[]).await;
    // The corpus registers to example.com: a tenant serves that domain.
    let (status, body) = demo
        .api
        .call(
            Some(&demo.operator),
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": "Torture", "sip_domain": "example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join(TORTURE);
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (../shared must sit beside the project)",
                corpus.display()
            )
        })
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("rfc"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 61, "the whole corpus");
    let mut wrong = Vec::new();
    for name in &names {
        let expected = expected_over_udp(name).unwrap_or_else(|| panic!("{name} has a verdict"));
        let bytes = std::fs::read(corpus.join(name)).expect("read");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.send_to(&bytes, demo.sip).expect("send");
        socket
            .set_read_timeout(Some(Duration::from_millis(if expected.is_none() {
                400
            } else {
                2_000
            })))
            .expect("timeout");
        let mut last_final = None;
        let mut buf = vec![0u8; 70_000];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            let status: u16 = text
                .get(8..11)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{name}: an answer is a response: {text}"));
            if status >= 200 {
                last_final = Some(status);
                socket
                    .set_read_timeout(Some(Duration::from_millis(150)))
                    .expect("timeout");
            }
        }
        if last_final != expected {
            wrong.push(format!("{name}: expected {expected:?}, got {last_final:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "answers differ from the table:\n{}",
        wrong.join("\n")
    );
    // Still up: OPTIONS answered, API healthy.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let ping = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-after\r\nFrom: <sip:a@b>;tag=a\r\nTo: <sip:{0}>\r\nCall-ID: after\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        demo.sip
    );
    socket.send_to(ping.as_bytes(), demo.sip).expect("send");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).expect("the node still answers");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
    let health = reqwest::get(format!("{}/healthz", demo.api.url))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert!(demo.metric("carillon_sip_parse_errors_total").await >= 20.0);
    assert_eq!(demo.demo.terminate(), Some(0));
}
