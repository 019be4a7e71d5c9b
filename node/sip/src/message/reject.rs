//! Stateless answers to requests that fail to parse (RFC 3261 8.2.2, 16.3,
//! RFC 4475 section 3.1.2): 400 with a reason phrase naming the problem,
//! 505 for an unsupported version, 513 for an oversized message.
//!
//! Boundary: the answer copies Via, From, To, Call-ID and CSeq as raw text
//! from the request (they may be the malformed ones); responses that fail to
//! parse are never answered, only dropped.

use std::fmt::Write as _;

use super::address::NameAddr;
use super::error::ParseError;
use super::framing::split;
use super::parse::canonical_name;
use super::reason_phrase;
use super::scanner::is_token_str;

/// Longest reason phrase produced, in bytes.
pub const MAX_REASON_BYTES: usize = 160;

/// A response built from raw header text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatelessResponse {
    /// Status code (400, 505 or 513).
    pub status: u16,
    /// Reason phrase (only characters RFC 3261 allows in one).
    pub reason: String,
    /// Header lines (canonical name, raw value), Via first, in request order.
    pub headers: Vec<(&'static str, String)>,
}

impl StatelessResponse {
    /// The response in wire form, with `Content-Length: 0`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        let _ = write!(out, "SIP/2.0 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }
}

fn reason_char_allowed(c: char) -> bool {
    !c.is_ascii() || c.is_ascii_alphanumeric() || " \t;/?:@&=+$,-_.!~*'()".contains(c)
}

/// Builds the stateless answer to a request `input` that failed with
/// `error`, or `None` when there is not enough to answer: the input is a
/// response, its start line is not a request line, it could not be split
/// into header lines at all, or it has no Via to send the answer along.
/// `to_tag` is added to To when the request's To parses and has no tag.
pub fn reject_response(
    input: &[u8],
    error: &ParseError,
    to_tag: &str,
) -> Option<StatelessResponse> {
    let raw = split(input).ok()?;
    let method = raw.start_line.split(' ').next()?;
    if !is_token_str(method)
        || raw
            .start_line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        return None;
    }
    let status = error.status_code();
    let reason = match status {
        400 => {
            let text: String = format!("Bad Request - {error}")
                .chars()
                .map(|c| if reason_char_allowed(c) { c } else { ' ' })
                .collect();
            let mut end = text.len().min(MAX_REASON_BYTES);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_string()
        }
        other => reason_phrase(other).to_string(),
    };
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    for wanted in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let mut values = raw
            .headers
            .iter()
            .filter(|h| canonical_name(h.name) == Some(wanted));
        if wanted == "Via" {
            headers.extend(values.map(|h| ("Via", h.value.to_string())));
            continue;
        }
        let Some(first) = values.next() else { continue };
        let mut value = first.value.to_string();
        if wanted == "To" && !to_tag.is_empty() {
            if let Ok(mut to) = NameAddr::parse(&first.value) {
                if to.tag().is_none() {
                    to.set_tag(to_tag.into());
                    value = to.to_string();
                }
            }
        }
        headers.push((wanted, value));
    }
    if !headers.iter().any(|(n, _)| *n == "Via") {
        return None;
    }
    Some(StatelessResponse {
        status,
        reason,
        headers,
    })
}
