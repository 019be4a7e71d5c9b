//! SIP codec throughput: parse, print, and parse then print, of a typical
//! REGISTER with digest credentials and of an INVITE with an SDP audio offer
//! (as a softphone sends them), plus the SDP body alone. Criterion reports
//! bytes per second; `benches/sip_vs_kamailio.sh` turns the median time per
//! message into messages/s and MB/s for `benches/SIP_RESULTS.md`.
//!
//! Run: `cargo bench -p carillon-benches --bench sip_codec`.

use carillon_sip::message::Message;
use carillon_sip::sdp::SessionDescription;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// A REGISTER answering a digest challenge (the second request of every
/// registration in the side-by-side benchmark).
const REGISTER: &str = "REGISTER sip:demo.carillon.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1---7f3c2a9e1b;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:5001@192.168.1.20:5060;rinstance=8f2c6b1d0e9a7c54;transport=UDP>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0015651a3c2f>\"\r\n\
To: \"Agent 5001\" <sip:5001@demo.carillon.test>\r\n\
From: \"Agent 5001\" <sip:5001@demo.carillon.test>;tag=4b1f7c2e\r\n\
Call-ID: 9fQ2xY7kLmN4pR8sT1vW3z@192.168.1.20\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, outbound, gruu\r\n\
User-Agent: Zoiper rv2.10.20.6\r\n\
Authorization: Digest username=\"5001\",realm=\"demo.carillon.test\",nonce=\"MTcwMDAwMDAwMDAwMDpkZWFkYmVlZmNhZmU=\",uri=\"sip:demo.carillon.test\",response=\"6629fae49393a05397450978507c4ef1\",cnonce=\"0a4f113b\",nc=00000001,qop=auth,algorithm=MD5\r\n\
Content-Length: 0\r\n\r\n";

/// The SDP audio offer of [`INVITE`].
const SDP: &str = "v=0\r\n\
o=- 3912345678 3912345678 IN IP4 192.168.1.20\r\n\
s=Carillon bench\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
m=audio 40002 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// An INVITE with [`SDP`] as its body.
fn invite() -> String {
    format!(
        "INVITE sip:2000@demo.carillon.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1---1a2b3c4d5e;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:5001@192.168.1.20:5060;transport=UDP>\r\n\
To: <sip:2000@demo.carillon.test>\r\n\
From: \"Agent 5001\" <sip:5001@demo.carillon.test>;tag=8c7d6e5f\r\n\
Call-ID: Jk3Lm9Np2Qr5St8Uv1Wx4Yz@192.168.1.20\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Content-Type: application/sdp\r\n\
Supported: replaces, norefersub, timer\r\n\
Session-Expires: 1800\r\n\
User-Agent: Zoiper rv2.10.20.6\r\n\
Proxy-Authorization: Digest username=\"5001\",realm=\"demo.carillon.test\",nonce=\"MTcwMDAwMDAwMDAwMDpkZWFkYmVlZmNhZmU=\",uri=\"sip:2000@demo.carillon.test\",response=\"0b6d2c8d3a1e4f5a6b7c8d9e0f1a2b3c\",cnonce=\"7e1f2a3b\",nc=00000001,qop=auth,algorithm=MD5\r\n\
Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn codec(c: &mut Criterion) {
    let invite = invite();
    for (name, text) in [("register", REGISTER), ("invite_sdp", invite.as_str())] {
        let bytes = text.as_bytes();
        let parsed = Message::parse(bytes).expect("the sample parses");
        // The printed form must parse back to the same message, or the
        // figures measure something else than a working codec.
        let printed = parsed.to_bytes();
        assert_eq!(
            Message::parse(&printed).expect("the printed sample parses"),
            parsed
        );
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("parse", |b| {
            b.iter(|| Message::parse(black_box(bytes)).map(|m| m.headers.cseq.number))
        });
        group.bench_function("print", |b| b.iter(|| black_box(&parsed).to_bytes()));
        group.bench_function("parse_print", |b| {
            b.iter(|| Message::parse(black_box(bytes)).map(|m| m.to_bytes()))
        });
        group.finish();
    }
    let mut group = c.benchmark_group("sdp");
    group.throughput(Throughput::Bytes(SDP.len() as u64));
    group.bench_function("parse_print", |b| {
        b.iter(|| SessionDescription::parse(black_box(SDP)).map(|s| s.to_string()))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
