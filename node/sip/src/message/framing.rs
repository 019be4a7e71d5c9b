//! First parsing stage: limits, the end of the header section, header lines
//! (with folding) and stream framing. Nothing here interprets a header value
//! except Content-Length for stream framing.
//!
//! Invariant: every loop here is bounded by the input length, which is
//! itself bounded by [`MAX_MESSAGE_BYTES`].

use std::borrow::Cow;

use super::error::{ParseError, SyntaxError};
use super::scanner::{is_token_str, is_ws, parse_digits};

/// Largest message accepted, headers and body together. Above the largest
/// UDP payload; TCP senders must split nothing larger (RFC 3261 18.1.1
/// wants anything near the MTU on a congestion-controlled transport anyway).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Most header lines (after unfolding) in one message.
pub const MAX_HEADER_COUNT: usize = 256;

/// Longest start line or unfolded header line, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// One header line: name as received (trimmed) and value trimmed, with
/// folds replaced by the whitespace that follows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHeader<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: Cow<'a, str>,
}

/// A message split into start line, header lines and the octets after the
/// empty line.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage<'a> {
    pub(crate) start_line: &'a str,
    pub(crate) headers: Vec<RawHeader<'a>>,
    pub(crate) rest: &'a [u8],
}

/// Where the blank line that ends the headers starts, if there is one.
pub(crate) fn find_end_of_headers(input: &[u8]) -> Option<usize> {
    memchr::memmem::find(input, b"\r\n\r\n")
}

fn skip_leading_crlf(input: &[u8]) -> usize {
    let mut i = 0;
    while input.get(i..i + 2) == Some(b"\r\n") {
        i += 2;
    }
    i
}

/// Splits a whole message (a datagram or a framed stream message).
pub(crate) fn split(input: &[u8]) -> Result<RawMessage<'_>, ParseError> {
    if input.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge {
            size_bytes: input.len(),
            max_bytes: MAX_MESSAGE_BYTES,
        });
    }
    // RFC 3261 7.5: CRLFs before the start line are ignored.
    let input = &input[skip_leading_crlf(input)..];
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    let end = find_end_of_headers(input).ok_or(ParseError::NoEndOfHeaders)?;
    let head = std::str::from_utf8(&input[..end]).map_err(|_| ParseError::NotUtf8)?;
    let (start_line, headers) = split_head(head)?;
    Ok(RawMessage {
        start_line,
        headers,
        rest: &input[end + 4..],
    })
}

/// Splits the header section (without the final empty line).
fn split_head(head: &str) -> Result<(&str, Vec<RawHeader<'_>>), ParseError> {
    let mut lines = LineIter { text: head, pos: 0 };
    let (start_line, _) = lines.next().ok_or(ParseError::Empty)?;
    check_line(start_line)?;
    let mut headers: Vec<RawHeader<'_>> = Vec::new();
    // Byte range in `head` of the logical line being collected.
    let mut current: Option<(usize, usize)> = None;
    for (line, offset) in lines {
        check_line(line)?;
        if line.as_bytes().first().copied().is_some_and(is_ws) {
            match current.as_mut() {
                Some((_, end)) => *end = offset + line.len(),
                None => {
                    return Err(ParseError::HeaderLine(SyntaxError(
                        "continuation line before any header",
                    )))
                }
            }
        } else {
            if let Some((from, to)) = current.take() {
                headers.push(header_line(&head[from..to])?);
            }
            current = Some((offset, offset + line.len()));
        }
        if headers.len() >= MAX_HEADER_COUNT {
            return Err(ParseError::TooManyHeaders {
                max: MAX_HEADER_COUNT,
            });
        }
    }
    if let Some((from, to)) = current {
        headers.push(header_line(&head[from..to])?);
    }
    Ok((start_line, headers))
}

fn check_line(line: &str) -> Result<(), ParseError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(ParseError::LineTooLong {
            max_bytes: MAX_LINE_BYTES,
        });
    }
    if line.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(ParseError::HeaderLine(SyntaxError(
            "bare CR or LF in header section",
        )));
    }
    Ok(())
}

/// Lines of the header section with their byte offsets.
struct LineIter<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (&'a str, usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos > self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let len = memchr::memmem::find(rest.as_bytes(), b"\r\n").unwrap_or(rest.len());
        self.pos = start + len + 2;
        Some((&rest[..len], start))
    }
}

fn header_line(logical: &str) -> Result<RawHeader<'_>, ParseError> {
    if logical.len() > MAX_LINE_BYTES {
        return Err(ParseError::LineTooLong {
            max_bytes: MAX_LINE_BYTES,
        });
    }
    let colon = logical
        .find(':')
        .ok_or(ParseError::HeaderLine(SyntaxError("missing ':'")))?;
    let name = logical[..colon].trim_end_matches([' ', '\t']);
    if !is_token_str(name) {
        return Err(ParseError::HeaderLine(SyntaxError(
            "header name is not a token",
        )));
    }
    let value = logical[colon + 1..].trim_matches([' ', '\t', '\r', '\n']);
    let value = if value.contains('\r') {
        Cow::Owned(value.replace("\r\n", ""))
    } else {
        Cow::Borrowed(value)
    };
    Ok(RawHeader { name, value })
}

/// What a stream buffer holds at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not enough bytes yet to know.
    Incomplete,
    /// The buffer starts with this many bytes of CRLF keep-alives
    /// (RFC 5626 section 3.5.1); drop them.
    KeepAlive {
        /// Bytes to drop.
        len: usize,
    },
    /// A whole message occupies the first `len` bytes; pass them to
    /// [`super::Message::parse`].
    Complete {
        /// Bytes of the message.
        len: usize,
    },
}

/// Finds the first message in a stream buffer. A stream message must carry
/// Content-Length (RFC 3261 18.3).
pub fn frame_stream(buffer: &[u8]) -> Result<Framing, ParseError> {
    let crlf = skip_leading_crlf(buffer);
    if crlf > 0 {
        return Ok(Framing::KeepAlive { len: crlf });
    }
    if buffer.is_empty() || buffer == b"\r" {
        return Ok(Framing::Incomplete);
    }
    let window = &buffer[..buffer.len().min(MAX_MESSAGE_BYTES)];
    let Some(end) = find_end_of_headers(window) else {
        if buffer.len() >= MAX_MESSAGE_BYTES {
            return Err(ParseError::TooLarge {
                size_bytes: buffer.len(),
                max_bytes: MAX_MESSAGE_BYTES,
            });
        }
        return Ok(Framing::Incomplete);
    };
    let head = std::str::from_utf8(&buffer[..end]).map_err(|_| ParseError::NotUtf8)?;
    let (_, headers) = split_head(head)?;
    let mut lengths = headers.iter().filter(|h| {
        h.name.eq_ignore_ascii_case("content-length") || h.name.eq_ignore_ascii_case("l")
    });
    let declared = lengths.next().ok_or(ParseError::MissingContentLength)?;
    if lengths.next().is_some() {
        return Err(ParseError::Duplicate("Content-Length"));
    }
    let body_len =
        parse_digits(&declared.value, "not a number").map_err(|reason| ParseError::Header {
            name: "Content-Length",
            reason,
        })?;
    let total = usize::try_from(body_len)
        .ok()
        .and_then(|b| b.checked_add(end + 4));
    match total {
        Some(t) if t <= MAX_MESSAGE_BYTES => Ok(if buffer.len() >= t {
            Framing::Complete { len: t }
        } else {
            Framing::Incomplete
        }),
        _ => Err(ParseError::TooLarge {
            size_bytes: usize::try_from(body_len)
                .unwrap_or(usize::MAX)
                .saturating_add(end + 4),
            max_bytes: MAX_MESSAGE_BYTES,
        }),
    }
}
