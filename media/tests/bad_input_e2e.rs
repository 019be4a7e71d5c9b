//! End to end: bad input is dropped or refused, counted and visible through the control
//! API; the relay keeps running and relaying.

mod common;

use carillon_media::rtp::{build_packet, OutgoingHeader};
use common::{addr, offer, start_relay};
use std::net::UdpSocket;
use std::time::Duration;

fn rtp(sequence: u16, payload_type: u8) -> Vec<u8> {
    let header = OutgoingHeader {
        marker: false,
        payload_type,
        sequence,
        timestamp: u32::from(sequence) * 160,
        ssrc: 0x1234,
    };
    build_packet(header, &[0x55; 160])
}

fn receive_all(socket: &UdpSocket) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buffer = [0u8; 2048];
    while let Ok((len, _)) = socket.recv_from(&mut buffer) {
        out.push(buffer[..len].to_vec());
    }
    out
}

#[tokio::test]
async fn bad_packets_are_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(
        "127.0.0.41",
        "30400-30499",
        "127.0.0.41:19141",
        dir.path(),
        &[],
    );
    let phone_a = UdpSocket::bind("127.0.0.42:31000").expect("phone a");
    let phone_b = UdpSocket::bind("127.0.0.43:31000").expect("phone b");
    let spoofer = UdpSocket::bind("127.0.0.44:31000").expect("spoofer");
    relay.create_session("s1").await;
    let relay_a = relay
        .add_leg("s1", "a", phone_a.local_addr().expect("a"))
        .await;
    relay
        .add_leg("s1", "b", phone_b.local_addr().expect("b"))
        .await;

    phone_a.send_to(&rtp(1, 0), relay_a).expect("send");
    let mut truncated = rtp(2, 0);
    truncated[0] |= 0x0F; // 15 CSRCs announced, 60 bytes that are not there
    truncated.truncate(40);
    let mut version_one = rtp(3, 0);
    version_one[0] = (version_one[0] & 0x3F) | 0x40;
    let bad: Vec<Vec<u8>> = vec![
        vec![0x80, 0x00, 0x01],
        truncated,
        version_one,
        vec![0x80; 1600],
        Vec::new(),
    ];
    for datagram in &bad {
        phone_a.send_to(datagram, relay_a).expect("send");
    }
    phone_a.send_to(&rtp(4, 96), relay_a).expect("send"); // not negotiated
    for sequence in 5..8 {
        spoofer.send_to(&rtp(sequence, 0), relay_a).expect("spoof");
    }
    phone_a.send_to(&rtp(9, 0), relay_a).expect("send");
    // RTCP from A's RTCP port (RTP + 1, same IP as the latched source) to the leg's RTCP
    // port passes through, unchanged, to B's RTCP port.
    let phone_a_rtcp = UdpSocket::bind("127.0.0.42:31001").expect("phone a rtcp");
    let phone_b_rtcp = UdpSocket::bind("127.0.0.43:31001").expect("phone b rtcp");
    let receiver_report = [0x80, 201, 0, 1, 0, 0, 0x12, 0x34];
    let relay_a_rtcp = std::net::SocketAddr::new(relay_a.ip(), relay_a.port() + 1);
    phone_a_rtcp
        .send_to(&receiver_report, relay_a_rtcp)
        .expect("send rtcp");
    assert_eq!(receive_all(&phone_b_rtcp), vec![receiver_report.to_vec()]);
    let received = receive_all(&phone_b);
    assert_eq!(
        received,
        vec![rtp(1, 0), rtp(9, 0)],
        "only the valid packets went through"
    );

    let view = relay.session("s1").await;
    let counters = &view["legs"][0]["counters"];
    assert_eq!(counters["dropped_malformed"], 5, "{view}");
    assert_eq!(counters["dropped_unknown_payload_type"], 1);
    assert_eq!(counters["dropped_foreign_source"], 3);
    assert_eq!(view["legs"][0]["packets"], 2);
    assert_eq!(counters["rtcp_packets"], 1);
    assert_eq!(view["legs"][0]["latched"], "127.0.0.42:31000");
    let load = relay.load().await;
    assert_eq!(load["counters"]["dropped_malformed"], 5, "{load}");
    assert_eq!(load["counters"]["dropped_foreign_source"], 3);
    assert_eq!(load["counters"]["dropped_other"], 1);
    assert_eq!(load["counters"]["datagrams_dropped"], 9);
    assert_eq!(load["counters"]["datagrams_received"], 12);
    let mut relay = relay;
    assert!(relay.guard.is_running(), "no panic");
}

#[tokio::test]
async fn bad_requests_are_refused_with_stable_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Four port pairs: 30500, 30502, 30504, 30506.
    let mut relay = start_relay(
        "127.0.0.45",
        "30500-30507",
        "127.0.0.45:19145",
        dir.path(),
        &[],
    );
    let phone = addr("127.0.0.46:31000");
    let problem = |answer: &common::Answer, status: u16, code: &str| {
        assert_eq!(answer.status, status, "{}", answer.text);
        assert_eq!(answer.content_type, "application/problem+json");
        assert_eq!(answer.json["code"], code, "{}", answer.text);
        assert_eq!(answer.json["status"], status);
    };
    use reqwest::Method;

    // Unknown sessions, on every route that names one.
    let body = serde_json::json!({ "remote_sdp": offer(phone) }).to_string();
    let unknown = [
        relay.get("/sessions/nope").await,
        relay
            .request(Method::PUT, "/sessions/nope/legs/a", Some(body.clone()))
            .await,
        relay.get("/sessions/nope/legs/a/local-sdp").await,
        relay
            .post(
                "/sessions/nope/legs/a/play",
                serde_json::json!({ "prompt": "beep" }),
            )
            .await,
        relay
            .post(
                "/sessions/nope/legs/a/dtmf",
                serde_json::json!({ "digits": "1" }),
            )
            .await,
        relay
            .post(
                "/sessions/nope/recording",
                serde_json::json!({ "action": "start", "by": "x" }),
            )
            .await,
        relay.request(Method::DELETE, "/sessions/nope", None).await,
    ];
    for answer in &unknown {
        problem(answer, 404, "UNKNOWN_SESSION");
    }

    // Malformed bodies and fields.
    problem(
        &relay
            .request(Method::POST, "/sessions", Some("{".into()))
            .await,
        400,
        "BAD_REQUEST",
    );
    problem(
        &relay
            .post("/sessions", serde_json::json!({ "id": "x" }))
            .await,
        400,
        "BAD_REQUEST",
    );
    problem(
        &relay
            .post("/sessions", serde_json::json!({ "session_id": "" }))
            .await,
        400,
        "BAD_REQUEST",
    );
    relay.create_session("s1").await;
    problem(
        &relay
            .post("/sessions", serde_json::json!({ "session_id": "s1" }))
            .await,
        409,
        "SESSION_EXISTS",
    );
    let bad_sdp =
        serde_json::json!({ "remote_sdp": "v=0\r\nm=video 9 RTP/AVP 96\r\n" }).to_string();
    problem(
        &relay
            .request(Method::PUT, "/sessions/s1/legs/a", Some(bad_sdp))
            .await,
        422,
        "BAD_SDP",
    );
    relay.add_leg("s1", "a", phone).await;
    problem(
        &relay
            .post(
                "/sessions/s1/legs/a/play",
                serde_json::json!({ "prompt": "no-such" }),
            )
            .await,
        404,
        "UNKNOWN_PROMPT",
    );
    problem(
        &relay
            .post(
                "/sessions/s1/legs/z/play",
                serde_json::json!({ "prompt": "beep" }),
            )
            .await,
        404,
        "UNKNOWN_LEG",
    );
    problem(
        &relay
            .post(
                "/sessions/s1/legs/a/dtmf",
                serde_json::json!({ "digits": "1x" }),
            )
            .await,
        400,
        "BAD_REQUEST",
    );
    problem(
        &relay
            .post(
                "/sessions/s1/recording",
                serde_json::json!({ "action": "stop", "by": "x" }),
            )
            .await,
        409,
        "RECORDING_NOT_ACTIVE",
    );
    problem(&relay.get("/no/such/route").await, 404, "NOT_FOUND");
    let played = relay
        .post(
            "/sessions/s1/legs/a/play",
            serde_json::json!({ "music_on_hold": "hold-music" }),
        )
        .await;
    assert_eq!(played.status, 204, "{}", played.text);
    let local = relay.get("/sessions/s1/legs/a/local-sdp").await;
    assert_eq!(local.status, 200);
    assert_eq!(local.content_type, "application/sdp");
    assert!(local.text.contains("a=rtpmap:0 PCMU/8000"));

    // Pool exhaustion: 4 pairs; s1 holds one.
    relay.create_session("s2").await;
    for leg in ["a", "b"] {
        relay.add_leg("s2", leg, phone).await;
    }
    // A bare SDP in, the answer as a bare SDP out.
    let bare = relay
        .http
        .put(format!("{}/sessions/s2/legs/c", relay.base))
        .header("content-type", "application/sdp")
        .body(offer(phone))
        .send()
        .await
        .expect("answer");
    assert_eq!(bare.status(), 200);
    assert_eq!(bare.headers()["content-type"], "application/sdp");
    let answer = bare.text().await.expect("sdp");
    assert!(
        answer.starts_with("v=0\r\n") && answer.contains("a=rtpmap:101 telephone-event/8000"),
        "{answer}"
    );
    let exhausted = relay
        .request(Method::PUT, "/sessions/s1/legs/b", Some(body.clone()))
        .await;
    problem(&exhausted, 409, "PORT_POOL_EXHAUSTED");
    let load = relay.load().await;
    assert_eq!(load["port_pairs_free"], 0);
    assert_eq!(load["counters"]["refused_pool_exhausted"], 1);
    assert_eq!(load["counters"]["refused_unknown_session"], 7);
    assert_eq!(load["counters"]["refused_bad_sdp"], 1);
    let removed = relay.request(Method::DELETE, "/sessions/s2", None).await;
    assert_eq!(
        removed.json["released_rtp_ports"]
            .as_array()
            .expect("ports")
            .len(),
        3
    );
    relay.add_leg("s1", "b", phone).await;
    assert!(relay.guard.is_running(), "no panic");
}
