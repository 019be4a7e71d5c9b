//! Addresses in From, To, Contact, Route and Record-Route: `name-addr` or
//! `addr-spec` followed by header parameters (RFC 3261 section 20.10).
//!
//! Invariant: a parsed [`NameAddr`] prints with angle brackets (always legal,
//! and it keeps URI parameters apart from header parameters), so the
//! canonical form of `sip:a@b;tag=1` is `<sip:a@b>;tag=1`.

use std::borrow::Cow;
use std::fmt;

use super::error::SyntaxError;
use super::scanner::{is_token, is_ws, unescape_quoted, Scanner};
use super::uri::Uri;
use super::{find_param, own, Param};

/// The display name before `<uri>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayName<'a> {
    /// One or more tokens separated by whitespace, as received.
    Tokens(Cow<'a, str>),
    /// Content of a quoted string, escapes kept.
    Quoted(Cow<'a, str>),
}

impl DisplayName<'_> {
    /// The name as a user would read it (escapes removed).
    pub fn text(&self) -> String {
        match self {
            DisplayName::Tokens(t) => t.to_string(),
            DisplayName::Quoted(q) => unescape_quoted(q),
        }
    }
}

/// An address with optional display name and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name, when given.
    pub display_name: Option<DisplayName<'a>>,
    /// The address.
    pub uri: Uri<'a>,
    /// Header parameters (`;tag=...`, `;expires=...`), values raw (quoted
    /// values keep their quotes).
    pub params: Vec<Param<'a>>,
}

impl<'a> NameAddr<'a> {
    /// An address without display name or parameters.
    pub fn new(uri: Uri<'a>) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Vec::new(),
        }
    }

    /// Value of a header parameter; `Some(None)` for one without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// Sets (or replaces) the `tag` parameter.
    pub fn set_tag(&mut self, tag: Cow<'a, str>) {
        self.params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        self.params.push(Param {
            name: Cow::Borrowed("tag"),
            value: Some(tag),
        });
    }

    /// The `expires` parameter of a Contact; values beyond `u32::MAX` are
    /// clamped (RFC 4475 `scalar02`), malformed ones read as absent.
    pub fn expires(&self) -> Option<u32> {
        let v = self.param("expires").flatten()?;
        super::header_values::parse_delta_seconds(v).ok()
    }

    /// The `q` parameter of a Contact in thousandths (`q=0.33` is 330).
    pub fn q_thousandths(&self) -> Option<u16> {
        let v = self.param("q").flatten()?;
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole: u16 = match int {
            "0" => 0,
            "1" => 1,
            _ => return None,
        };
        let mut thousandths = 0u16;
        for (i, b) in frac.bytes().enumerate() {
            thousandths += u16::from(b - b'0') * [100, 10, 1][i];
        }
        let q = whole * 1000 + thousandths;
        (q <= 1000).then_some(q)
    }

    /// Parses one address at the cursor, including its parameters; stops
    /// before a `,` or at the end.
    pub(crate) fn parse_at(s: &mut Scanner<'a>) -> Result<Self, SyntaxError> {
        s.skip_ws();
        let mut display_name = None;
        let bracketed;
        if s.peek() == Some(b'"') {
            display_name = Some(DisplayName::Quoted(Cow::Borrowed(s.quoted()?)));
            s.skip_ws();
            bracketed = true;
        } else if s.peek() == Some(b'<') {
            bracketed = true;
        } else {
            // Either display-name tokens followed by `<`, or an addr-spec.
            let start = s.pos();
            let mut end = start;
            while s.peek().is_some_and(is_token) {
                s.take_while(is_token);
                end = s.pos();
                s.skip_ws();
            }
            if end > start && s.peek() == Some(b'<') {
                display_name = Some(DisplayName::Tokens(Cow::Borrowed(s.slice(start, end))));
                bracketed = true;
            } else {
                s.set_pos(start);
                bracketed = false;
            }
        }
        let uri_text = if bracketed {
            s.expect(b'<', "expected '<' after display name")?;
            let text = s.take_while(|b| b != b'>');
            s.expect(b'>', "unterminated '<'")?;
            text
        } else {
            s.take_while(|b| b != b';' && b != b',' && !is_ws(b))
        };
        if uri_text.is_empty() {
            return Err(SyntaxError("empty address"));
        }
        let uri = Uri::parse(uri_text, bracketed)?;
        let params = parse_params(s)?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// Parses a header holding exactly one address (From, To).
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let mut s = Scanner::new(text);
        let addr = Self::parse_at(&mut s)?;
        s.skip_ws();
        if !s.is_at_end() {
            return Err(SyntaxError("unexpected text after address"));
        }
        Ok(addr)
    }

    /// Parses a comma-separated list of addresses (Route, Record-Route).
    pub fn parse_list(text: &'a str) -> Result<Vec<Self>, SyntaxError> {
        let mut s = Scanner::new(text);
        let mut out = Vec::new();
        loop {
            out.push(Self::parse_at(&mut s)?);
            s.skip_ws();
            if s.is_at_end() {
                return Ok(out);
            }
            s.expect(b',', "expected ',' between addresses")?;
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            display_name: self.display_name.map(|d| match d {
                DisplayName::Tokens(t) => DisplayName::Tokens(own(t)),
                DisplayName::Quoted(q) => DisplayName::Quoted(own(q)),
            }),
            uri: self.uri.into_owned(),
            params: self.params.into_iter().map(Param::into_owned).collect(),
        }
    }
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.display_name {
            Some(DisplayName::Tokens(t)) => write!(f, "{t} ")?,
            Some(DisplayName::Quoted(q)) => write!(f, "\"{q}\" ")?,
            None => {}
        }
        write!(f, "<{}>", self.uri)?;
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

/// Characters of an unquoted header parameter value: token, host (with
/// IPv6 references) and the bare IPv6 form of `received` (RFC 5118 4.5).
fn is_param_value_char(b: u8) -> bool {
    is_token(b) || b == b':' || b == b'[' || b == b']'
}

/// Parses `*( SEMI generic-param )` at the cursor; SWS around `;` and `=`
/// is allowed. Quoted values keep their quotes.
pub(crate) fn parse_params<'a>(s: &mut Scanner<'a>) -> Result<Vec<Param<'a>>, SyntaxError> {
    let mut params = Vec::new();
    while s.eat_separator(b';') {
        let name = s.token("empty parameter")?;
        let value = if s.eat_separator(b'=') {
            if s.peek() == Some(b'"') {
                let start = s.pos();
                s.quoted()?;
                Some(Cow::Borrowed(s.slice(start, s.pos())))
            } else {
                let v = s.take_while(is_param_value_char);
                if v.is_empty() {
                    return Err(SyntaxError("empty parameter value"));
                }
                Some(Cow::Borrowed(v))
            }
        } else {
            None
        };
        params.push(Param {
            name: Cow::Borrowed(name),
            value,
        });
    }
    Ok(params)
}

/// One Contact value: `*` or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removing all bindings).
    Wildcard,
    /// An address with its contact parameters.
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses a Contact header value: `*` or a list of addresses.
    pub fn parse_list(text: &'a str) -> Result<Vec<Self>, SyntaxError> {
        if text.trim() == "*" {
            return Ok(vec![Contact::Wildcard]);
        }
        Ok(NameAddr::parse_list(text)?
            .into_iter()
            .map(Contact::Address)
            .collect())
    }

    /// The address, unless this is the wildcard.
    pub fn address(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Wildcard => None,
            Contact::Address(a) => Some(a),
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Contact<'static> {
        match self {
            Contact::Wildcard => Contact::Wildcard,
            Contact::Address(a) => Contact::Address(a.into_owned()),
        }
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Wildcard => f.write_str("*"),
            Contact::Address(a) => write!(f, "{a}"),
        }
    }
}
