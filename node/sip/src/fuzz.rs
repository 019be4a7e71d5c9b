//! Oracles for fuzzing the SIP codec: each takes arbitrary bytes, runs them
//! through the codec the way the edge does, and asserts the codec's
//! documented invariants. They are called by the cargo-fuzz targets in
//! `fuzz/` and by the bounded, seeded run of `tests/sip_fuzz.rs` in CI.
//!
//! Invariants checked (a violation panics with a message naming it):
//! - nothing panics, whatever the input;
//! - a parsed message has a Via, a request's CSeq method equals its method,
//!   and the body lies inside the input;
//! - printing reaches a fixed point: `parse(print(m)) == m` and
//!   `print(parse(print(m))) == print(m)`, and the printed form frames on a
//!   stream as exactly one message, with as many header lines as the parser
//!   counted against the limit;
//! - a request that fails to parse gets, when the codec builds one, a
//!   stateless answer with the error's status code, Via first, that frames
//!   as one message and parses as a response with a To tag, unless one of
//!   the header values copied from the request is itself the malformed one;
//! - stream framing never claims more bytes than it was given, agrees with
//!   itself on the message alone and on the message less one byte, and
//!   agrees with the parser on where the body ends;
//! - multipart parts lie inside the body; SDP (the whole input, a body or
//!   a body part) that parses prints and re-parses to a fixed point.
//!
//! Boundary: these are checks of the codec alone; no transaction or dialog
//! state is involved.

use super::message::{
    find_end_of_headers, frame_stream, reject_response, Framing, Message, ParseError,
    MAX_HEADER_COUNT, MAX_LINE_BYTES, MAX_MESSAGE_BYTES,
};
use super::sdp::SessionDescription;

/// The To tag the oracle asks stateless answers to carry.
const ANSWER_TO_TAG: &str = "fuzz1";

/// Runs one datagram through the codec (parse, print, re-parse; or the
/// stateless answer) and asserts the invariants in the module docs.
pub fn check_datagram(bytes: &[u8]) {
    match Message::parse(bytes) {
        Ok(message) => check_message(&message, bytes),
        Err(error) => check_rejection(bytes, &error),
    }
    // The SDP parser on its own, so that a fuzzer reaches it without first
    // building a valid SIP message around it.
    check_sdp(bytes);
}

/// Runs a stream buffer through framing (keep-alives, Content-Length) and
/// each framed message through [`check_datagram`]'s checks, as the TCP
/// and WebSocket shells do, until the buffer is used up, incomplete or
/// broken.
pub fn check_stream(bytes: &[u8]) {
    let mut rest = bytes;
    // Each round consumes at least one byte or stops.
    for _ in 0..=bytes.len() {
        match frame_stream(rest) {
            Ok(Framing::Incomplete) => {
                assert!(
                    rest.len() < MAX_MESSAGE_BYTES,
                    "a buffer of {} bytes is neither a message nor too large",
                    rest.len()
                );
                return;
            }
            Ok(Framing::KeepAlive { len }) => {
                assert!(
                    len > 0 && len <= rest.len() && len % 2 == 0,
                    "keep-alive of {len} bytes claimed from a buffer of {}",
                    rest.len()
                );
                assert!(
                    rest[..len].chunks(2).all(|pair| pair == b"\r\n"),
                    "keep-alive bytes are not CRLF pairs"
                );
                rest = &rest[len..];
            }
            Ok(Framing::Complete { len }) => {
                assert!(
                    len <= rest.len(),
                    "framing claimed {len} bytes from a buffer of {}",
                    rest.len()
                );
                check_framed(&rest[..len]);
                rest = &rest[len..];
            }
            Err(error) => {
                // The shell answers what it can, then closes the connection.
                check_rejection(rest, &error);
                return;
            }
        }
    }
    unreachable!("stream framing made no progress on {} bytes", rest.len());
}

/// Checks one message that framing says is complete.
fn check_framed(message: &[u8]) {
    let len = message.len();
    let head_end = find_end_of_headers(message)
        .map(|i| i + 4)
        .unwrap_or_else(|| panic!("a framed message of {len} bytes has no end of headers"));
    assert_eq!(
        frame_stream(message),
        Ok(Framing::Complete { len }),
        "framing the message alone gives another answer"
    );
    assert_eq!(
        frame_stream(&message[..len - 1]),
        Ok(Framing::Incomplete),
        "framing the message less its last byte gives another answer"
    );
    match Message::parse(message) {
        Ok(parsed) => {
            assert_eq!(
                parsed.body.len(),
                len - head_end,
                "framing and parsing disagree on where the body ends"
            );
            check_message(&parsed, message);
        }
        Err(error) => {
            assert!(
                !matches!(
                    error,
                    ParseError::BodyTruncated { .. }
                        | ParseError::Duplicate("Content-Length")
                        | ParseError::Header {
                            name: "Content-Length",
                            ..
                        }
                ),
                "framing accepted a Content-Length that parsing rejects: {error}"
            );
            check_rejection(message, &error);
        }
    }
}

/// Checks a parsed message against its invariants and the print fixed point.
fn check_message(message: &Message<'_>, input: &[u8]) {
    assert!(!message.headers.via.is_empty(), "parsed message has no Via");
    if message.is_request() {
        assert_eq!(
            message.method(),
            &message.headers.cseq.method,
            "request method differs from the CSeq method"
        );
    }
    assert!(
        within(&message.body, input),
        "the body does not lie inside the input"
    );
    let printed = message.to_bytes();
    // The header-count limit is checked on the canonical form's line count,
    // which `printed_line_count` derives beside `Display`: it must match
    // what printing writes.
    let head_end = find_end_of_headers(&printed)
        .unwrap_or_else(|| panic!("the printed form has no end of headers"));
    let header_lines = memchr::memmem::find_iter(&printed[..head_end + 2], b"\r\n").count() - 1;
    assert_eq!(
        message.headers.printed_line_count(),
        header_lines,
        "printed_line_count differs from the lines printing writes"
    );
    match Message::parse(&printed) {
        Ok(reparsed) => {
            assert_eq!(&reparsed, message, "parse(print(m)) != m");
            assert_eq!(reparsed.to_bytes(), printed, "print is not a fixed point");
        }
        Err(error) => panic!(
            "the printed form does not parse ({error}):\n{}",
            String::from_utf8_lossy(&printed)
        ),
    }
    assert_eq!(
        frame_stream(&printed),
        Ok(Framing::Complete { len: printed.len() }),
        "the printed form does not frame as one stream message"
    );
    if let Some(Ok(parts)) = message.multipart_parts() {
        for part in &parts {
            assert!(
                within(part.body, &message.body),
                "a multipart part does not lie inside the body"
            );
            check_sdp(part.body);
        }
    }
    check_sdp(&message.body);
}

/// Checks the stateless answer to an input that failed with `error`.
fn check_rejection(input: &[u8], error: &ParseError) {
    let status = error.status_code();
    assert!(
        matches!(status, 400 | 505 | 513),
        "{error} maps to status {status}"
    );
    let Some(answer) = reject_response(input, error, ANSWER_TO_TAG) else {
        return;
    };
    assert_eq!(
        answer.status, status,
        "answer status differs from the error's"
    );
    assert_eq!(
        answer.headers.first().map(|(name, _)| *name),
        Some("Via"),
        "answer does not start with Via"
    );
    assert!(
        !answer
            .reason
            .bytes()
            .any(|b| b.is_ascii_control() && b != b'\t'),
        "control character in the reason phrase {:?}",
        answer.reason
    );
    let wire = answer.to_bytes();
    let framed = frame_stream(&wire);
    if !exceeds_limits(&wire, framed.as_ref().err()) {
        assert_eq!(
            framed,
            Ok(Framing::Complete { len: wire.len() }),
            "the stateless answer does not frame as one message"
        );
    }
    match Message::parse(&wire) {
        Ok(response) => {
            assert_eq!(
                response.status(),
                Some(status),
                "answer parses as another status"
            );
            assert!(response.body.is_empty(), "answer has a body");
            assert!(
                response.headers.to.tag().is_some(),
                "answer's To has no tag"
            );
        }
        Err(e) => assert!(
            copied_value_is_malformed(&e)
                || exceeds_limits(&wire, Some(&e))
                || echoed_via_list_is_too_long(&answer.headers, &e),
            "the stateless answer does not parse ({e}), and not because of a copied value:\n{}",
            String::from_utf8_lossy(&wire)
        ),
    }
}

/// Whether an answer's parse error comes from a header value copied as
/// received (the answer may have to echo a malformed request's headers).
fn copied_value_is_malformed(error: &ParseError) -> bool {
    const COPIED: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];
    match error {
        ParseError::Header { name, .. } => COPIED.contains(name),
        ParseError::Missing(name) => COPIED[1..].contains(name),
        _ => false,
    }
}

/// Whether a header-count error on an answer can come from the Via values
/// it echoes: the parser counts each value of a comma list as a line (as
/// it prints them), so a request whose Via lines hold more than the limit
/// of values gives an answer that says so too. The answer's other headers
/// are at most four single lines, so the Via lines must hold at least
/// `MAX_HEADER_COUNT - 4` values; a value count is at most the number of
/// Via lines plus their commas.
fn echoed_via_list_is_too_long(headers: &[(&str, String)], error: &ParseError) -> bool {
    if !matches!(error, ParseError::TooManyHeaders { .. }) {
        return false;
    }
    let most_values: usize = headers
        .iter()
        .filter(|(name, _)| *name == "Via")
        .map(|(_, value)| 1 + value.bytes().filter(|b| *b == b',').count())
        .sum();
    most_values + 4 > MAX_HEADER_COUNT
}

/// Whether `error` is a limit error that `wire` really exceeds. An answer
/// echoes up to all of a request's Via lines under their full names, so a
/// request at the limits can give an answer beyond them.
fn exceeds_limits(wire: &[u8], error: Option<&ParseError>) -> bool {
    let head = find_end_of_headers(wire).map_or(wire, |end| &wire[..end]);
    let mut lines = head.split(|b| *b == b'\n');
    match error {
        Some(ParseError::TooLarge { .. }) => wire.len() > MAX_MESSAGE_BYTES,
        Some(ParseError::TooManyHeaders { .. }) => lines.count() - 1 > MAX_HEADER_COUNT,
        Some(ParseError::LineTooLong { .. }) => lines.any(|l| l.len() > MAX_LINE_BYTES + 1),
        _ => false,
    }
}

/// Checks the SDP fixed point when `bytes` parse as a session description.
fn check_sdp(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(description) = SessionDescription::parse(text) else {
        return;
    };
    let printed = description.to_string();
    match SessionDescription::parse(&printed) {
        Ok(reparsed) => {
            assert_eq!(reparsed, description, "SDP parse(print(d)) != d");
            assert_eq!(
                reparsed.to_string(),
                printed,
                "SDP print is not a fixed point"
            );
        }
        Err(e) => panic!("printed SDP does not parse ({e}):\n{printed}"),
    }
}

/// Whether `inner` is a sub-slice of `outer` (same memory), as zero-copy
/// parsing promises for bodies and body parts.
fn within(inner: &[u8], outer: &[u8]) -> bool {
    let outer_range = outer.as_ptr_range();
    let inner_range = inner.as_ptr_range();
    inner.is_empty()
        || (outer_range.start <= inner_range.start && inner_range.end <= outer_range.end)
}
