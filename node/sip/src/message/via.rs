//! The Via header (RFC 3261 section 20.42) with IPv6 sent-by and received
//! parameters (RFC 5118 sections 4.5 and 4.6).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use super::address::parse_params;
use super::error::SyntaxError;
use super::scanner::{is_token, Scanner};
use super::uri::{parse_port, Host};
use super::{find_param, own, Param};

/// The branch prefix of RFC 3261 transactions.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Transport named in a Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport<'a> {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other token, as received (RFC 4475 `transports`).
    Other(Cow<'a, str>),
}

impl<'a> Transport<'a> {
    /// Maps a token, case-insensitively, to a transport.
    pub fn from_token(t: &'a str) -> Self {
        const KNOWN: [(&str, Transport<'static>); 6] = [
            ("UDP", Transport::Udp),
            ("TCP", Transport::Tcp),
            ("TLS", Transport::Tls),
            ("SCTP", Transport::Sctp),
            ("WS", Transport::Ws),
            ("WSS", Transport::Wss),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(t))
            .map(|(_, tr)| tr)
            .unwrap_or(Transport::Other(Cow::Borrowed(t)))
    }

    /// Whether the transport is reliable (timers that are zero on TCP).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Canonical text.
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t,
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Transport<'static> {
        match self {
            Transport::Udp => Transport::Udp,
            Transport::Tcp => Transport::Tcp,
            Transport::Tls => Transport::Tls,
            Transport::Sctp => Transport::Sctp,
            Transport::Ws => Transport::Ws,
            Transport::Wss => Transport::Wss,
            Transport::Other(t) => Transport::Other(own(t)),
        }
    }
}

/// One Via value. Protocol is always `SIP/2.0` (anything else is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// Transport of the hop.
    pub transport: Transport<'a>,
    /// Host of sent-by.
    pub host: Host<'a>,
    /// Port of sent-by, when given.
    pub port: Option<u16>,
    /// Parameters in order (branch, received, rport, ...), values raw.
    pub params: Vec<Param<'a>>,
}

impl<'a> Via<'a> {
    /// A Via with a branch parameter.
    pub fn new(
        transport: Transport<'a>,
        host: Host<'a>,
        port: Option<u16>,
        branch: Cow<'a, str>,
    ) -> Self {
        Via {
            transport,
            host,
            port,
            params: vec![Param {
                name: Cow::Borrowed("branch"),
                value: Some(branch),
            }],
        }
    }

    /// Value of a parameter; `Some(None)` for one without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// Whether the branch makes this an RFC 3261 transaction: it starts with
    /// the magic cookie and has something after it (RFC 4475 `badbranch`:
    /// the bare cookie is treated as an RFC 2543 branch).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` address, with or without brackets (RFC 5118 4.5).
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.param("received").flatten()?;
        let bare = v
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(v);
        bare.parse().ok()
    }

    /// `rport` (RFC 3581): `Some(None)` when requested without a value,
    /// `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        match self.param("rport")? {
            None => Some(None),
            Some(v) => Some(parse_port(v).ok()),
        }
    }

    /// `sent-by` as text (`host[:port]`), as transaction keys use it.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    fn parse_at(s: &mut Scanner<'a>) -> Result<Self, SyntaxError> {
        s.skip_ws();
        let protocol = s.token("missing protocol name")?;
        if !s.eat_separator(b'/') {
            return Err(SyntaxError("expected '/' after protocol name"));
        }
        let version = s.token("missing protocol version")?;
        if !protocol.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(SyntaxError("protocol is not SIP/2.0"));
        }
        if !s.eat_separator(b'/') {
            return Err(SyntaxError("expected '/' before transport"));
        }
        let transport = Transport::from_token(s.token("missing transport")?);
        s.skip_ws();
        let host_text = if s.peek() == Some(b'[') {
            let start = s.pos();
            s.take_while(|b| b != b']');
            s.expect(b']', "unterminated IPv6 reference")?;
            s.slice(start, s.pos())
        } else {
            s.take_while(|b| is_token(b) && b != b'!' && b != b'%')
        };
        let host = Host::parse(host_text)?;
        let port = if s.eat_separator(b':') {
            Some(parse_port(s.take_while(|b| b.is_ascii_digit()))?)
        } else {
            None
        };
        let params = parse_params(s)?;
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    /// Parses a Via header value: one or more comma-separated values.
    pub fn parse_list(text: &'a str) -> Result<Vec<Self>, SyntaxError> {
        let mut s = Scanner::new(text);
        let mut out = Vec::new();
        loop {
            out.push(Self::parse_at(&mut s)?);
            s.skip_ws();
            if s.is_at_end() {
                return Ok(out);
            }
            s.expect(b',', "expected ',' or ';' after Via value")?;
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Via<'static> {
        Via {
            transport: self.transport.into_owned(),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_iter().map(Param::into_owned).collect(),
        }
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport.as_str(), self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}
