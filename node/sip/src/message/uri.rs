//! URIs: SIP and SIPS (RFC 3261 section 19.1) with IPv6 references
//! (RFC 5118), tel (RFC 3966, kept mostly opaque) and any other scheme kept
//! opaque.
//!
//! Invariant: user, password, parameters and headers hold the text exactly
//! as received (escapes kept); printing writes them back unchanged, so
//! `parse(print(u)) == u`. Comparison by RFC 3261 rules (unescaping,
//! case folding) is the caller's business; [`percent_decode`] helps.
//!
//! [`percent_decode`]: super::scanner::percent_decode

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::SyntaxError;
use super::scanner::{check_escaped, is_unreserved, parse_digits};
use super::{own, Param};

/// A host: a domain name or a literal address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A host name, case as received.
    Domain(Cow<'a, str>),
    /// An IPv4 literal.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference, printed in brackets.
    Ipv6(Ipv6Addr),
}

impl Host<'_> {
    /// Parses a host: `[v6]`, dotted IPv4 or a host name.
    pub fn parse(s: &str) -> Result<Host<'_>, SyntaxError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(SyntaxError("unterminated IPv6 reference"))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::Ipv6)
                .map_err(|_| SyntaxError("invalid IPv6 address"));
        }
        if s.is_empty() {
            return Err(SyntaxError("empty host"));
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s
                .parse::<Ipv4Addr>()
                .map(Host::Ipv4)
                .map_err(|_| SyntaxError("invalid IPv4 address"));
        }
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid || s.starts_with(['.', '-']) {
            return Err(SyntaxError("invalid host name"));
        }
        Ok(Host::Domain(Cow::Borrowed(s)))
    }

    /// The address, when the host is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }

    /// Whether this is the IPv4 limited broadcast address (RFC 4475 `bcast`).
    pub fn is_broadcast(&self) -> bool {
        matches!(self, Host::Ipv4(a) if a.is_broadcast())
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Domain(d) => Host::Domain(own(d)),
            Host::Ipv4(a) => Host::Ipv4(a),
            Host::Ipv6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]` where host may be an IPv6 reference.
pub(crate) fn parse_host_port(s: &str) -> Result<(Host<'_>, Option<u16>), SyntaxError> {
    let (host, port) = if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or(SyntaxError("unterminated IPv6 reference"))?;
        let (h, rest) = s.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err(SyntaxError("junk after IPv6 reference")),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

pub(crate) fn parse_port(p: &str) -> Result<u16, SyntaxError> {
    let value = parse_digits(p, "invalid port")?;
    u16::try_from(value).map_err(|_| SyntaxError("port out of range"))
}

/// RFC 3261 user characters, and `#` unescaped: phones send feature codes
/// such as `#300#` that way (baresip, many desk phones), and Kamailio and
/// Asterisk take them; the user part is only ever compared, never re-parsed.
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/#".contains(&b)
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,".contains(&b)
}

fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/?:+$=&".contains(&b)
}

fn is_uric(b: u8) -> bool {
    is_unreserved(b) || b";/?:@&=+$,[]#".contains(&b)
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, escapes kept.
    pub user: Option<Cow<'a, str>>,
    /// Password, escapes kept.
    pub password: Option<Cow<'a, str>>,
    /// Host.
    pub host: Host<'a>,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters in order, escapes kept.
    pub params: Vec<Param<'a>>,
    /// The headers component after `?`, raw.
    pub headers: Option<Cow<'a, str>>,
}

impl<'a> SipUri<'a> {
    /// A URI with only a host.
    pub fn new(host: Host<'a>) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: None,
        }
    }

    fn parse(rest: &'a str, secure: bool, allow_headers: bool) -> Result<Self, SyntaxError> {
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                if user.is_empty() {
                    return Err(SyntaxError("empty user part"));
                }
                check_escaped(user, is_user_char, "invalid character in user part")?;
                if let Some(p) = password {
                    check_escaped(p, is_password_char, "invalid character in password")?;
                }
                (Some(Cow::Borrowed(user)), password.map(Cow::Borrowed))
            }
        };
        let (before_headers, headers) = match hostpart.split_once('?') {
            Some((b, h)) => (b, Some(h)),
            None => (hostpart, None),
        };
        if let Some(h) = headers {
            if !allow_headers {
                return Err(SyntaxError("URI headers not allowed here"));
            }
            check_escaped(h, is_header_char, "invalid character in URI headers")?;
        }
        let mut parts = before_headers.split(';');
        let hostport = parts.next().unwrap_or_default();
        let (host, port) = parse_host_port(hostport)?;
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if name.is_empty() {
                return Err(SyntaxError("empty URI parameter"));
            }
            check_escaped(name, is_param_char, "invalid character in URI parameter")?;
            if let Some(v) = value {
                if v.is_empty() {
                    return Err(SyntaxError("empty URI parameter value"));
                }
                check_escaped(v, is_param_char, "invalid character in URI parameter")?;
            }
            params.push(Param {
                name: Cow::Borrowed(name),
                value: value.map(Cow::Borrowed),
            });
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers: headers.map(Cow::Borrowed),
        })
    }

    /// Value of a URI parameter (name compared case-insensitively); `Some(None)`
    /// for a parameter without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        super::find_param(&self.params, name)
    }

    /// Whether the URI carries `lr` (loose routing).
    pub fn is_loose_router(&self) -> bool {
        self.param("lr").is_some()
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> SipUri<'static> {
        SipUri {
            secure: self.secure,
            user: self.user.map(own),
            password: self.password.map(own),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_iter().map(Param::into_owned).collect(),
            headers: self.headers.map(own),
        }
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// A `tel:` URI: the subscriber number and its parameters, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri<'a> {
    /// The telephone-subscriber part before the first `;`.
    pub number: Cow<'a, str>,
    /// Parameters in order.
    pub params: Vec<Param<'a>>,
}

/// Any URI a SIP message may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other scheme: kept opaque (RFC 4475 `unkscm`, `novelsc`, `unksm2`).
    Other {
        /// The scheme as received.
        scheme: Cow<'a, str>,
        /// Everything after the colon.
        opaque: Cow<'a, str>,
    },
}

impl<'a> Uri<'a> {
    /// Parses a URI. `allow_headers` is false where RFC 3261 forbids the
    /// `?headers` component (Request-URI, addr-spec outside angle brackets).
    pub fn parse(s: &'a str, allow_headers: bool) -> Result<Self, SyntaxError> {
        let colon = s.find(':').ok_or(SyntaxError("URI without scheme"))?;
        let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(SyntaxError("invalid URI scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            let secure = scheme.len() == 4;
            return SipUri::parse(rest, secure, allow_headers).map(Uri::Sip);
        }
        if rest.is_empty() {
            return Err(SyntaxError("empty URI"));
        }
        if scheme.eq_ignore_ascii_case("tel") {
            let mut parts = rest.split(';');
            let number = parts.next().unwrap_or_default();
            let number_ok = !number.is_empty()
                && number
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b));
            if !number_ok {
                return Err(SyntaxError("invalid telephone number"));
            }
            let mut params = Vec::new();
            for p in parts {
                let (name, value) = match p.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (p, None),
                };
                if name.is_empty() {
                    return Err(SyntaxError("empty tel parameter"));
                }
                check_escaped(
                    p,
                    |b| is_param_char(b) || b == b'=',
                    "invalid character in tel parameter",
                )?;
                params.push(Param {
                    name: Cow::Borrowed(name),
                    value: value.map(Cow::Borrowed),
                });
            }
            return Ok(Uri::Tel(TelUri {
                number: Cow::Borrowed(number),
                params,
            }));
        }
        check_escaped(rest, is_uric, "invalid character in URI")?;
        Ok(Uri::Other {
            scheme: Cow::Borrowed(scheme),
            opaque: Cow::Borrowed(rest),
        })
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The scheme, lower case for the known ones.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Uri<'static> {
        match self {
            Uri::Sip(u) => Uri::Sip(u.into_owned()),
            Uri::Tel(t) => Uri::Tel(TelUri {
                number: own(t.number),
                params: t.params.into_iter().map(Param::into_owned).collect(),
            }),
            Uri::Other { scheme, opaque } => Uri::Other {
                scheme: own(scheme),
                opaque: own(opaque),
            },
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => write!(f, "{u}"),
            Uri::Tel(t) => {
                write!(f, "tel:{}", t.number)?;
                for p in &t.params {
                    write!(f, ";{p}")?;
                }
                Ok(())
            }
            Uri::Other { scheme, opaque } => write!(f, "{scheme}:{opaque}"),
        }
    }
}
