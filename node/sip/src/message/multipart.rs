//! Splitting `multipart/*` bodies (RFC 2046 section 5.1) into parts.

use super::error::SyntaxError;

/// Most parts accepted in one body.
pub const MAX_BODY_PARTS: usize = 64;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart<'a> {
    /// Header lines of the part as (name, value), trimmed.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The part's content.
    pub body: &'a [u8],
}

impl BodyPart<'_> {
    /// Value of the part's header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Splits `body` by `boundary`. The preamble and epilogue are dropped; a
/// body without the closing delimiter is an error.
pub fn split_multipart<'a>(
    body: &'a [u8],
    boundary: &str,
) -> Result<Vec<BodyPart<'a>>, SyntaxError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(SyntaxError("invalid multipart boundary"));
    }
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    // The first delimiter may start the body without a preceding CRLF.
    let mut pos = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        memchr::memmem::find(body, delimiter.as_bytes())
            .ok_or(SyntaxError("multipart boundary not found"))?
            + delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then CRLF.
        let padding = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        let after = rest[padding..]
            .strip_prefix(b"\r\n")
            .ok_or(SyntaxError("junk after multipart boundary"))?;
        let start = body.len() - after.len();
        let end = memchr::memmem::find(after, delimiter.as_bytes())
            .ok_or(SyntaxError("multipart body without closing boundary"))?;
        parts.push(parse_part(&after[..end])?);
        if parts.len() > MAX_BODY_PARTS {
            return Err(SyntaxError("too many multipart parts"));
        }
        pos = start + end + delimiter.len();
    }
}

fn parse_part(part: &[u8]) -> Result<BodyPart<'_>, SyntaxError> {
    // A part with no headers starts with CRLF directly.
    let (head, content) = if part.starts_with(b"\r\n") {
        (&part[..0], &part[2..])
    } else {
        match memchr::memmem::find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => return Err(SyntaxError("multipart part without header end")),
        }
    };
    let head =
        std::str::from_utf8(head).map_err(|_| SyntaxError("multipart headers are not UTF-8"))?;
    let mut headers = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(SyntaxError("multipart header without ':'"))?;
        headers.push((name.trim(), value.trim()));
    }
    Ok(BodyPart {
        headers,
        body: content,
    })
}
