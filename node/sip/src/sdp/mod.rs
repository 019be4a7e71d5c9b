//! Session descriptions (RFC 4566) as used for audio offer/answer
//! (RFC 3264): origin, connection, timing, media lines with payload types,
//! and the attributes rtpmap, fmtp, direction, rtcp, rtcp-mux and ptime.
//! Any other line or attribute is kept as text.
//!
//! Invariants:
//! - [`SessionDescription::parse`] accepts CRLF or LF line ends; printing
//!   uses CRLF and the RFC 4566 line order; untyped lines are kept in order
//!   within their place in that order, so `parse(print(d)) == d`.
//! - A typed attribute whose value does not follow its grammar is kept as
//!   [`Attribute::Other`], never dropped.

mod attribute;

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

pub use attribute::{Attribute, Direction, RtpMap};

/// Most lines in one description.
pub const MAX_SDP_LINES: usize = 1024;

/// Why a text is not a session description.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The first line is not `v=0`.
    #[error("first line is not v=0")]
    Version,
    /// A line is not `<letter>=<value>`.
    #[error("line {line} is not <type>=<value>")]
    Line {
        /// 1-based line number.
        line: usize,
    },
    /// A mandatory line (o, s, t) is missing.
    #[error("missing {0}= line")]
    Missing(char),
    /// A typed line does not follow its grammar.
    #[error("malformed {kind}= line: {reason}")]
    Malformed {
        /// Line type.
        kind: char,
        /// What was wrong.
        reason: &'static str,
    },
    /// More than [`MAX_SDP_LINES`] lines.
    #[error("more than {MAX_SDP_LINES} lines")]
    TooManyLines,
}

/// An untyped line, e.g. `b=AS:64` or `i=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpLine {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// Position of untyped session-level lines in the RFC 4566 order.
fn session_rank(kind: char) -> u8 {
    match kind {
        'i' | 'u' | 'e' | 'p' => 0, // before c=
        'b' => 1,                   // after c=, before t=
        'r' | 'z' | 'k' => 2,       // after t=
        _ => 3,                     // unknown: before a=
    }
}

/// `o=username sess-id sess-version nettype addrtype address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id (numeric text).
    pub session_id: String,
    /// Session version (numeric text; incremented on each new offer).
    pub session_version: String,
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Address or host name.
    pub address: String,
}

/// `c=nettype addrtype address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Address (multicast ones may carry `/ttl`).
    pub address: String,
}

impl Connection {
    /// A unicast `IN` connection for an address.
    pub fn new(ip: IpAddr) -> Self {
        let addr_type = if ip.is_ipv4() { "IP4" } else { "IP6" };
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type.into(),
            address: ip.to_string(),
        }
    }

    /// The address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    fn parse(value: &str) -> Result<Self, SdpError> {
        let bad = SdpError::Malformed {
            kind: 'c',
            reason: "expected 'nettype addrtype address'",
        };
        let mut fields = value.split(' ');
        let (Some(n), Some(a), Some(addr), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad);
        };
        if n.is_empty() || a.is_empty() || addr.is_empty() {
            return Err(bad);
        }
        let ip_part = addr.split('/').next().unwrap_or_default();
        let family_ok = match a {
            "IP4" => ip_part.parse::<std::net::Ipv6Addr>().is_err(),
            "IP6" => ip_part.parse::<std::net::Ipv4Addr>().is_err(),
            _ => true,
        };
        if !family_ok {
            return Err(SdpError::Malformed {
                kind: 'c',
                reason: "address does not match address type",
            });
        }
        Ok(Connection {
            net_type: n.into(),
            addr_type: a.into(),
            address: addr.into(),
        })
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, ...).
    pub media: String,
    /// Transport port (0 rejects the stream).
    pub port: u16,
    /// Number of ports after `/`, when given.
    pub port_count: Option<u16>,
    /// Protocol (`RTP/AVP`, `RTP/SAVP`, ...).
    pub protocol: String,
    /// Formats: RTP payload types for RTP protocols.
    pub formats: Vec<String>,
    /// Media-level connection.
    pub connection: Option<Connection>,
    /// Attributes in order.
    pub attributes: Vec<Attribute>,
    /// Untyped lines (i, b, k, unknown), in order.
    pub other: Vec<SdpLine>,
}

impl MediaDescription {
    fn parse(value: &str) -> Result<Self, SdpError> {
        let bad = |reason| SdpError::Malformed { kind: 'm', reason };
        let mut fields = value.split(' ');
        let media = fields
            .next()
            .filter(|m| !m.is_empty())
            .ok_or(bad("missing media type"))?;
        let port_text = fields.next().ok_or(bad("missing port"))?;
        let (port, port_count) = match port_text.split_once('/') {
            Some((p, n)) => (
                p,
                Some(n.parse::<u16>().map_err(|_| bad("invalid port count"))?),
            ),
            None => (port_text, None),
        };
        let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
        let protocol = fields
            .next()
            .filter(|p| !p.is_empty())
            .ok_or(bad("missing protocol"))?;
        let formats: Vec<String> = fields.map(str::to_string).collect();
        if formats.is_empty() || formats.iter().any(String::is_empty) {
            return Err(bad("missing or empty format"));
        }
        Ok(MediaDescription {
            media: media.into(),
            port,
            port_count,
            protocol: protocol.into(),
            formats,
            connection: None,
            attributes: Vec::new(),
            other: Vec::new(),
        })
    }

    /// The rtpmap of a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(m) if m.payload_type == payload_type => Some(m),
            _ => None,
        })
    }

    /// The stream's direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    /// The `a=ptime` value in milliseconds.
    pub fn ptime_ms(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::PtimeMs(p) => Some(*p),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes.contains(&Attribute::RtcpMux)
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (may be empty in practice, RFC 5118 `mult-ip-in-sdp`).
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// `t=` lines as (start, stop).
    pub timing: Vec<(u64, u64)>,
    /// Session-level attributes.
    pub attributes: Vec<Attribute>,
    /// Media sections.
    pub media: Vec<MediaDescription>,
    /// Untyped session-level lines, in canonical order (see module docs).
    pub other: Vec<SdpLine>,
}

impl SessionDescription {
    /// Parses a description.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            if lines.len() >= MAX_SDP_LINES {
                return Err(SdpError::TooManyLines);
            }
            let mut chars = line.chars();
            match (chars.next(), chars.next()) {
                (Some(kind), Some('=')) if kind.is_ascii_lowercase() => {
                    lines.push((kind, &line[2..]))
                }
                _ => return Err(SdpError::Line { line: i + 1 }),
            }
        }
        let mut iter = lines.into_iter();
        if iter.next() != Some(('v', "0")) {
            return Err(SdpError::Version);
        }
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut timing = Vec::new();
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        let mut other = Vec::new();
        for (kind, value) in iter {
            if let Some(m) = media.last_mut() {
                match kind {
                    'm' => media.push(MediaDescription::parse(value)?),
                    'c' if m.connection.is_none() => m.connection = Some(Connection::parse(value)?),
                    'a' => m.attributes.push(Attribute::parse(value)),
                    _ => m.other.push(SdpLine {
                        kind,
                        value: value.into(),
                    }),
                }
                continue;
            }
            match kind {
                'o' if origin.is_none() => origin = Some(parse_origin(value)?),
                's' if session_name.is_none() => session_name = Some(value.to_string()),
                'c' if connection.is_none() => connection = Some(Connection::parse(value)?),
                't' => timing.push(parse_timing(value)?),
                'a' => attributes.push(Attribute::parse(value)),
                'm' => media.push(MediaDescription::parse(value)?),
                _ => other.push(SdpLine {
                    kind,
                    value: value.into(),
                }),
            }
        }
        if timing.is_empty() {
            return Err(SdpError::Missing('t'));
        }
        other.sort_by_key(|l| session_rank(l.kind));
        for m in &mut media {
            m.other.sort_by_key(|l| u8::from(l.kind != 'i'));
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Missing('o'))?,
            session_name: session_name.ok_or(SdpError::Missing('s'))?,
            connection,
            timing,
            attributes,
            media,
            other,
        })
    }

    /// The first `m=audio` section.
    pub fn audio(&self) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.media == "audio")
    }
}

fn parse_origin(value: &str) -> Result<Origin, SdpError> {
    let fields: Vec<&str> = value.split(' ').collect();
    let [username, session_id, session_version, net_type, addr_type, address] = fields.as_slice()
    else {
        return Err(SdpError::Malformed {
            kind: 'o',
            reason: "expected six fields",
        });
    };
    if fields.iter().any(|f| f.is_empty()) {
        return Err(SdpError::Malformed {
            kind: 'o',
            reason: "empty field",
        });
    }
    Ok(Origin {
        username: username.to_string(),
        session_id: session_id.to_string(),
        session_version: session_version.to_string(),
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

fn parse_timing(value: &str) -> Result<(u64, u64), SdpError> {
    let bad = SdpError::Malformed {
        kind: 't',
        reason: "expected 'start stop'",
    };
    let (a, b) = value.split_once(' ').ok_or(bad.clone())?;
    match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(bad),
    }
}

fn write_lines(
    f: &mut fmt::Formatter<'_>,
    lines: &[SdpLine],
    pred: impl Fn(&SdpLine) -> bool,
) -> fmt::Result {
    for l in lines.iter().filter(|l| pred(l)) {
        write!(f, "{}={}\r\n", l.kind, l.value)?;
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        write_lines(f, &self.other, |l| session_rank(l.kind) == 0)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_lines(f, &self.other, |l| session_rank(l.kind) == 1)?;
        for (start, stop) in &self.timing {
            write!(f, "t={start} {stop}\r\n")?;
        }
        write_lines(f, &self.other, |l| session_rank(l.kind) >= 2)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.protocol)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            write_lines(f, &m.other, |l| l.kind == 'i')?;
            if let Some(c) = &m.connection {
                write!(f, "c={c}\r\n")?;
            }
            write_lines(f, &m.other, |l| l.kind != 'i')?;
            for a in &m.attributes {
                write!(f, "a={a}\r\n")?;
            }
        }
        Ok(())
    }
}
