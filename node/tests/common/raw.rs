//! Hand-written SIP over UDP, for answers a scripted client cannot expect
//! (refusals and their reason phrases).

use std::net::{SocketAddr, UdpSocket};

/// Sends `request` over UDP and returns the status and reason of the first
/// final response to it (provisional ones are skipped), and its text.
pub fn final_answer(socket: &UdpSocket, to: SocketAddr, request: &str) -> (u16, String, String) {
    socket.send_to(request.as_bytes(), to).expect("send");
    let mut buf = [0u8; 8192];
    for _ in 0..20 {
        let n = socket.recv(&mut buf).expect("an answer within the timeout");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let line = text.lines().next().unwrap_or("").to_string();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status >= 200 {
            let reason = line.splitn(3, ' ').nth(2).unwrap_or("").to_string();
            return (status, reason, text);
        }
    }
    panic!("no final answer to:\n{request}");
}

/// An INVITE of `uri` from a carrier's caller, with `body` as its offer.
pub fn invite(uri: &str, call_id: &str, body: &str) -> String {
    invite_from(uri, call_id, "sip:+420777000001@carrier.test", body)
}

/// An INVITE of `uri` from `from`, with `body` as its offer.
pub fn invite_from(uri: &str, call_id: &str, from: &str, body: &str) -> String {
    format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-{call_id}\r\nFrom: <{from}>;tag={call_id}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5999>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A PCMU offer from 127.0.0.1:5998.
pub const PCMU_OFFER: &str = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5998 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
