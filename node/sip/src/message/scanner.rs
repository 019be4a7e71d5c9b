//! A byte cursor over an unfolded header value (or a start line) and the
//! character classes of the RFC 3261 grammar.
//!
//! Invariant: the cursor only stops on ASCII delimiters or at the end, so
//! every slice it returns lies on UTF-8 character boundaries.

use super::error::SyntaxError;

/// `token` characters (RFC 3261 section 25.1).
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `unreserved` characters: alphanumerics and marks.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Characters of a Call-ID `word`.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~()<>:\\\"/[]?{}".contains(&b)
}

/// Whitespace inside an unfolded line.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// Checks that every byte of `s` is allowed by `allowed` or is part of a
/// `%HH` escape.
pub(crate) fn check_escaped(
    s: &str,
    allowed: impl Fn(u8) -> bool,
    reason: &'static str,
) -> Result<(), SyntaxError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(SyntaxError("truncated %-escape"))?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(SyntaxError("invalid %-escape"));
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return Err(SyntaxError(reason));
        }
    }
    Ok(())
}

/// Parses `1*DIGIT` into a u64, refusing overflow.
pub(crate) fn parse_digits(s: &str, reason: &'static str) -> Result<u64, SyntaxError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError(reason));
    }
    s.parse::<u64>()
        .map_err(|_| SyntaxError("number out of range"))
}

/// Cursor over one line of text.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Scanner { input, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        debug_assert!(
            self.input.is_char_boundary(pos),
            "scanner positions stay on char boundaries"
        );
        self.pos = pos;
    }

    pub(crate) fn slice(&self, from: usize, to: usize) -> &'a str {
        &self.input[from..to]
    }

    pub(crate) fn is_at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace, then consumes `b` if it is next (SWS around a
    /// separator); restores the position when it is not.
    pub(crate) fn eat_separator(&mut self, b: u8) -> bool {
        let start = self.pos;
        self.skip_ws();
        if self.eat(b) {
            self.skip_ws();
            true
        } else {
            self.pos = start;
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, reason: &'static str) -> Result<(), SyntaxError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(SyntaxError(reason))
        }
    }

    /// Consumes ASCII bytes while `pred` holds.
    pub(crate) fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && pred(b)) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// A non-empty token.
    pub(crate) fn token(&mut self, reason: &'static str) -> Result<&'a str, SyntaxError> {
        let t = self.take_while(is_token);
        if t.is_empty() {
            Err(SyntaxError(reason))
        } else {
            Ok(t)
        }
    }

    /// A quoted string starting at the cursor; returns the raw content
    /// between the quotes, escapes kept.
    pub(crate) fn quoted(&mut self) -> Result<&'a str, SyntaxError> {
        self.expect(b'"', "expected quoted string")?;
        let start = self.pos;
        let bytes = self.input.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    let content = &self.input[start..self.pos];
                    self.pos += 1;
                    return Ok(content);
                }
                b'\\' => {
                    let escaped = bytes.get(self.pos + 1).copied();
                    match escaped {
                        Some(e) if e < 0x80 && e != b'\r' && e != b'\n' => self.pos += 2,
                        _ => return Err(SyntaxError("invalid escape in quoted string")),
                    }
                }
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.pos += 1,
                _ => return Err(SyntaxError("control character in quoted string")),
            }
        }
        Err(SyntaxError("unterminated quoted string"))
    }
}

/// Removes one level of quoted-pair escaping from quoted-string content.
pub fn unescape_quoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `%HH` escapes; invalid escapes are kept literally and bytes
/// that do not form UTF-8 are replaced.
pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
