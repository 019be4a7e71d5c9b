//! Codec behaviour beyond the torture corpus: limits, stream framing,
//! datagram framing, multipart bodies, builders and SDP.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use carillon_sip::message::{
    frame_stream, reject_response, split_multipart, Framing, Message, ParseError, MAX_HEADER_COUNT,
    MAX_LINE_BYTES, MAX_MESSAGE_BYTES,
};
use carillon_sip::sdp::{Attribute, Direction, SessionDescription};

const OPTIONS: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 5\r\n\r\nhello";

#[test]
fn stream_framing_waits_for_whole_messages_and_skips_keepalives() {
    let bytes = OPTIONS.as_bytes();
    assert_eq!(frame_stream(b""), Ok(Framing::Incomplete));
    assert_eq!(
        frame_stream(b"\r\n\r\nOPT"),
        Ok(Framing::KeepAlive { len: 4 })
    );
    for cut in [1, 40, bytes.len() - 6, bytes.len() - 1] {
        assert_eq!(
            frame_stream(&bytes[..cut]),
            Ok(Framing::Incomplete),
            "cut at {cut}"
        );
    }
    let mut two = bytes.to_vec();
    two.extend_from_slice(bytes);
    assert_eq!(
        frame_stream(&two),
        Ok(Framing::Complete { len: bytes.len() })
    );
    let m = Message::parse(&two[..bytes.len()]).unwrap();
    assert_eq!(&m.body[..], b"hello");
    let no_length = OPTIONS.replace("Content-Length: 5\r\n", "");
    assert_eq!(
        frame_stream(no_length.as_bytes()),
        Err(ParseError::MissingContentLength)
    );
    let huge = OPTIONS.replace("Content-Length: 5", "Content-Length: 99999999");
    assert!(matches!(
        frame_stream(huge.as_bytes()),
        Err(ParseError::TooLarge { .. })
    ));
    let endless = vec![b'a'; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        frame_stream(&endless),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn datagram_framing() {
    // Extra octets after Content-Length are ignored; too few is an error.
    let mut extra = OPTIONS.as_bytes().to_vec();
    extra.extend_from_slice(b"garbage");
    assert_eq!(&Message::parse(&extra).unwrap().body[..], b"hello");
    let short = &OPTIONS.as_bytes()[..OPTIONS.len() - 2];
    assert_eq!(
        Message::parse(short),
        Err(ParseError::BodyTruncated {
            declared_bytes: 5,
            available_bytes: 3
        })
    );
    // Leading CRLFs are ignored (RFC 3261 7.5).
    let led = format!("\r\n\r\n{OPTIONS}");
    assert!(Message::parse(led.as_bytes()).is_ok());
    assert_eq!(Message::parse(b""), Err(ParseError::Empty));
    assert_eq!(
        Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\n"),
        Err(ParseError::NoEndOfHeaders)
    );
}

#[test]
fn limits_are_enforced_with_clear_errors() {
    let big = vec![b'x'; MAX_MESSAGE_BYTES + 1];
    assert_eq!(
        Message::parse(&big),
        Err(ParseError::TooLarge {
            size_bytes: MAX_MESSAGE_BYTES + 1,
            max_bytes: MAX_MESSAGE_BYTES
        })
    );
    let long_line = OPTIONS.replace(
        "Call-ID: c1",
        &format!("Call-ID: {}", "c".repeat(MAX_LINE_BYTES)),
    );
    assert_eq!(
        Message::parse(long_line.as_bytes()),
        Err(ParseError::LineTooLong {
            max_bytes: MAX_LINE_BYTES
        })
    );
    let many = OPTIONS
        .replace(
            "Call-ID: c1\r\n",
            &"X-A: 1\r\n".repeat(MAX_HEADER_COUNT + 1),
        )
        .replace("CSeq", "Call-ID: c1\r\nCSeq");
    assert_eq!(
        Message::parse(many.as_bytes()),
        Err(ParseError::TooManyHeaders {
            max: MAX_HEADER_COUNT
        })
    );
    let not_utf8 = OPTIONS
        .replace("Call-ID: c1", "Call-ID: c1\r\nX-B: \u{1}")
        .into_bytes();
    let mut not_utf8 = not_utf8;
    let at = not_utf8.iter().position(|b| *b == 1).unwrap();
    not_utf8[at] = 0xff;
    assert_eq!(Message::parse(&not_utf8), Err(ParseError::NotUtf8));
    // The oversized request gets 513 when it can be split at all.
    let e = Message::parse(&big).unwrap_err();
    assert_eq!(e.status_code(), 513);
}

#[test]
fn responses_to_requests_copy_the_transaction_headers() {
    let request = Message::parse(OPTIONS.as_bytes()).unwrap();
    let response = Message::response_to(&request, 200, "OK");
    let text = String::from_utf8(response.to_bytes()).unwrap();
    assert_eq!(
        text,
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    // A bad response is dropped, never answered.
    let bad = b"SIP/2.0 99 Nope\r\nVia: SIP/2.0/UDP h\r\n\r\n";
    let e = Message::parse(bad).unwrap_err();
    assert_eq!(reject_response(bad, &e, "t"), None);
}

#[test]
fn multipart_bodies_split_by_boundary() {
    let body = b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\none\r\n--b1  \r\n\r\ntwo\r\n--b1--\r\nepilogue";
    let parts = split_multipart(body, "b1").unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        (parts[0].header("content-type"), parts[0].body),
        (Some("text/plain"), &b"one"[..])
    );
    assert_eq!((parts[1].headers.len(), parts[1].body), (0, &b"two"[..]));
    assert!(split_multipart(b"--b1\r\n\r\nunterminated", "b1").is_err());
    assert!(split_multipart(body, "").is_err());
}

const OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 198.51.100.1\r\n\
s=call\r\n\
c=IN IP4 198.51.100.1\r\n\
b=AS:64\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp:49171 IN IP4 198.51.100.1\r\n\
a=rtcp-mux\r\n\
a=sendonly\r\n\
a=x-unknown:kept\r\n";

#[test]
fn sdp_audio_offer_parses_typed_and_prints_back() {
    let sdp = SessionDescription::parse(OFFER).unwrap();
    let audio = sdp.audio().unwrap();
    assert_eq!((audio.port, audio.protocol.as_str()), (49170, "RTP/AVP"));
    assert_eq!(audio.formats, ["0", "8", "101"]);
    assert_eq!(audio.rtpmap(8).unwrap().encoding, "PCMA");
    assert_eq!(audio.rtpmap(101).unwrap().clock_rate_hz, 8000);
    assert_eq!(audio.ptime_ms(), Some(20));
    assert!(audio.rtcp_mux());
    assert_eq!(audio.direction(), Some(Direction::SendOnly));
    assert_eq!(
        audio.direction().map(Direction::answer),
        Some(Direction::RecvOnly)
    );
    assert!(audio.attributes.contains(&Attribute::Fmtp {
        format: "101".into(),
        params: "0-16".into()
    }));
    assert!(audio.attributes.contains(&Attribute::Other {
        name: "x-unknown".into(),
        value: Some("kept".into())
    }));
    assert_eq!(
        sdp.connection.as_ref().unwrap().ip(),
        Some("198.51.100.1".parse().unwrap())
    );
    assert_eq!(
        sdp.to_string(),
        OFFER,
        "canonical input prints back byte for byte"
    );
    // LF line ends are accepted; IPv6 connections too.
    let v6 = OFFER
        .replace("\r\n", "\n")
        .replace("IN IP4 198.51.100.1", "IN IP6 2001:db8::1");
    let parsed = SessionDescription::parse(&v6).unwrap();
    assert_eq!(
        parsed.connection.unwrap().ip(),
        Some("2001:db8::1".parse().unwrap())
    );
}

#[test]
fn sdp_errors() {
    assert!(SessionDescription::parse("v=1\r\n").is_err());
    assert!(
        SessionDescription::parse("v=0\r\no=- 1 2 IN IP4 h\r\ns=x\r\n").is_err(),
        "t= missing"
    );
    assert!(SessionDescription::parse("v=0\r\nbogus\r\n").is_err());
    assert!(SessionDescription::parse(
        "v=0\r\no=- 1 2 IN IP4 h\r\ns=x\r\nt=0 0\r\nm=audio port RTP/AVP 0\r\n"
    )
    .is_err());
    assert!(SessionDescription::parse(
        "v=0\r\no=- 1 2 IN IP4 h\r\ns=x\r\nc=IN IP4 2001:db8::1\r\nt=0 0\r\n"
    )
    .is_err());
}

#[test]
fn feature_codes_with_a_raw_hash_are_taken_and_other_raw_characters_are_not() {
    let request = |uri: &str| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             From: <sip:a@d>;tag=1\r\nTo: <{uri}>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    for uri in ["sip:404#@d", "sip:%23300%23@d", "sip:#300#@d"] {
        let text = request(uri);
        let m = Message::parse(text.as_bytes()).unwrap();
        let printed = String::from_utf8(m.to_bytes()).unwrap();
        assert!(printed.contains(&format!("INVITE {uri} SIP/2.0")), "{uri}");
    }
    for uri in ["sip:40 4@d", "sip:4<04@d", "sip:4\"04@d"] {
        let text = request(uri);
        assert!(Message::parse(text.as_bytes()).is_err(), "{uri}");
    }
}
