//! Typed values of the simpler headers: methods, CSeq, Call-ID,
//! Max-Forwards, Expires, Content-Type, option tags, Date and the
//! authentication headers.

use std::borrow::Cow;
use std::fmt;

use super::address::parse_params;
use super::error::SyntaxError;
use super::scanner::{is_token, is_token_str, is_word, parse_digits, Scanner};
use super::{find_param, own, Param};

/// A request method. Methods are case-sensitive tokens; any token is legal
/// (extension methods, RFC 4475 `intmeth`).
///
/// Invariant: `Extension` never holds the text of a known method; build
/// methods with [`Method::from_token`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// OPTIONS.
    Options,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// REGISTER.
    Register,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// UPDATE (RFC 3311).
    Update,
    /// Any other token.
    Extension(Cow<'a, str>),
}

const KNOWN_METHODS: [(&str, Method<'static>); 14] = [
    ("INVITE", Method::Invite),
    ("ACK", Method::Ack),
    ("OPTIONS", Method::Options),
    ("BYE", Method::Bye),
    ("CANCEL", Method::Cancel),
    ("REGISTER", Method::Register),
    ("PRACK", Method::Prack),
    ("SUBSCRIBE", Method::Subscribe),
    ("NOTIFY", Method::Notify),
    ("PUBLISH", Method::Publish),
    ("INFO", Method::Info),
    ("REFER", Method::Refer),
    ("MESSAGE", Method::Message),
    ("UPDATE", Method::Update),
];

impl<'a> Method<'a> {
    /// Maps a token (case-sensitive) to a method.
    pub fn from_token(t: &'a str) -> Result<Self, SyntaxError> {
        if !is_token_str(t) {
            return Err(SyntaxError("method is not a token"));
        }
        Ok(KNOWN_METHODS
            .into_iter()
            .find(|(name, _)| *name == t)
            .map(|(_, m)| m)
            .unwrap_or(Method::Extension(Cow::Borrowed(t))))
    }

    /// The method's text.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Extension(t) => t,
            known => KNOWN_METHODS
                .iter()
                .find(|(_, m)| m == known)
                .map(|(n, _)| *n)
                .unwrap_or_default(),
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Method<'static> {
        match self {
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Options => Method::Options,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Register => Method::Register,
            Method::Prack => Method::Prack,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Publish => Method::Publish,
            Method::Info => Method::Info,
            Method::Refer => Method::Refer,
            Method::Message => Method::Message,
            Method::Update => Method::Update,
            Method::Extension(t) => Method::Extension(own(t)),
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CSeq header: a 32-bit sequence number and a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (RFC 3261: less than 2^31 when chosen, up to 2^32-1 accepted).
    pub number: u32,
    /// Method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let mut s = Scanner::new(text);
        s.skip_ws();
        let digits = s.take_while(|b| b.is_ascii_digit());
        let number = parse_digits(digits, "missing sequence number")?;
        let number =
            u32::try_from(number).map_err(|_| SyntaxError("sequence number exceeds 2^32-1"))?;
        let before_ws = s.pos();
        s.skip_ws();
        if s.pos() == before_ws {
            return Err(SyntaxError("expected whitespace after sequence number"));
        }
        let method = Method::from_token(s.token("missing method")?)?;
        s.skip_ws();
        if !s.is_at_end() {
            return Err(SyntaxError("unexpected text after method"));
        }
        Ok(CSeq { number, method })
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> CSeq<'static> {
        CSeq {
            number: self.number,
            method: self.method.into_owned(),
        }
    }
}

impl fmt::Display for CSeq<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

/// Checks a Call-ID: `word [ "@" word ]`.
pub fn check_call_id(text: &str) -> Result<(), SyntaxError> {
    let (a, b) = match text.split_once('@') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let word_ok = |w: &str| !w.is_empty() && w.bytes().all(is_word);
    if word_ok(a) && b.is_none_or(word_ok) {
        Ok(())
    } else {
        Err(SyntaxError("invalid Call-ID"))
    }
}

/// Parses Max-Forwards (`1*DIGIT`, at most 255; leading zeros allowed).
pub fn parse_max_forwards(text: &str) -> Result<u8, SyntaxError> {
    let v = parse_digits(text, "not a number")?;
    u8::try_from(v).map_err(|_| SyntaxError("value exceeds 255"))
}

/// Parses delta-seconds; values beyond 2^32-1 are clamped to it, as RFC
/// 4475 (`scalar02`) suggests for expiry values.
pub fn parse_delta_seconds(text: &str) -> Result<u32, SyntaxError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError("not a number"));
    }
    Ok(text
        .parse::<u64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(u32::MAX))
}

/// Parses a comma-separated list of option tags (Require, Supported, ...).
/// An empty value yields an empty list.
pub fn parse_option_tags(text: &str) -> Result<Vec<Cow<'_, str>>, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|t| {
            let t = t.trim_matches([' ', '\t']);
            if is_token_str(t) {
                Ok(Cow::Borrowed(t))
            } else {
                Err(SyntaxError("option tag is not a token"))
            }
        })
        .collect()
}

/// Checks an RFC 1123 date in GMT, as SIP requires:
/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 4475 `baddate` uses EST).
pub fn check_date(text: &str) -> Result<(), SyntaxError> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let bad = SyntaxError("not an RFC 1123 date in GMT");
    let parts: Vec<&str> = text.split(' ').collect();
    let [day, dd, month, yyyy, time, zone] = parts.as_slice() else {
        return Err(bad);
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = time.split(':').count() == 3 && time.split(':').all(|p| digits(p, 2));
    let ok = day.strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && digits(dd, 2)
        && MONTHS.contains(month)
        && digits(yyyy, 4)
        && time_ok
        && *zone == "GMT";
    if ok {
        Ok(())
    } else {
        Err(bad)
    }
}

/// A media type with parameters (Content-Type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Top-level type, case as received.
    pub kind: Cow<'a, str>,
    /// Subtype, case as received.
    pub subtype: Cow<'a, str>,
    /// Parameters, values raw (quoted ones keep their quotes).
    pub params: Vec<Param<'a>>,
}

impl<'a> MediaType<'a> {
    /// Parses `type "/" subtype *( ";" parameter )`.
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let mut s = Scanner::new(text);
        s.skip_ws();
        let kind = s.token("missing media type")?;
        if !s.eat_separator(b'/') {
            return Err(SyntaxError("expected '/' in media type"));
        }
        let subtype = s.token("missing media subtype")?;
        let params = parse_params(&mut s)?;
        s.skip_ws();
        if !s.is_at_end() {
            return Err(SyntaxError("unexpected text after media type"));
        }
        Ok(MediaType {
            kind: Cow::Borrowed(kind),
            subtype: Cow::Borrowed(subtype),
            params,
        })
    }

    /// Whether this is `kind/subtype`, compared case-insensitively.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// A parameter value with quotes removed.
    pub fn param(&self, name: &str) -> Option<String> {
        let v = find_param(&self.params, name).flatten()?;
        Some(super::unquote(v))
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> MediaType<'static> {
        MediaType {
            kind: own(self.kind),
            subtype: own(self.subtype),
            params: self.params.into_iter().map(Param::into_owned).collect(),
        }
    }
}

impl fmt::Display for MediaType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.subtype)?;
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

/// Credentials or a challenge: `scheme auth-param *( "," auth-param )`
/// (Authorization, Proxy-Authorization, WWW-Authenticate,
/// Proxy-Authenticate). Unknown schemes are kept (RFC 4475 `regaut01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthValue<'a> {
    /// Scheme (`Digest`, ...), case as received.
    pub scheme: Cow<'a, str>,
    /// Parameters; values raw (quoted ones keep their quotes).
    pub params: Vec<Param<'a>>,
}

impl<'a> AuthValue<'a> {
    /// Parses one credentials or challenge value.
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let mut s = Scanner::new(text);
        s.skip_ws();
        let scheme = s.token("missing authentication scheme")?;
        let mut params = Vec::new();
        s.skip_ws();
        while !s.is_at_end() {
            let name = s.token("missing parameter name")?;
            if !s.eat_separator(b'=') {
                return Err(SyntaxError("expected '=' after parameter name"));
            }
            let value = if s.peek() == Some(b'"') {
                let start = s.pos();
                s.quoted()?;
                s.slice(start, s.pos())
            } else {
                let v = s.take_while(|b| is_token(b) || b == b'/' || b == b':' || b == b'=');
                if v.is_empty() {
                    return Err(SyntaxError("empty parameter value"));
                }
                v
            };
            params.push(Param {
                name: Cow::Borrowed(name),
                value: Some(Cow::Borrowed(value)),
            });
            if !s.eat_separator(b',') {
                s.skip_ws();
                if !s.is_at_end() {
                    return Err(SyntaxError("expected ',' between parameters"));
                }
            }
        }
        if params.is_empty() {
            return Err(SyntaxError("no authentication parameters"));
        }
        Ok(AuthValue {
            scheme: Cow::Borrowed(scheme),
            params,
        })
    }

    /// A parameter value with quotes removed.
    pub fn param(&self, name: &str) -> Option<String> {
        let v = find_param(&self.params, name).flatten()?;
        Some(super::unquote(v))
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> AuthValue<'static> {
        AuthValue {
            scheme: own(self.scheme),
            params: self.params.into_iter().map(Param::into_owned).collect(),
        }
    }
}

impl fmt::Display for AuthValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, p) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
