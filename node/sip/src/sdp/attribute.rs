//! SDP attributes (`a=` lines) that audio offer/answer needs.

use std::fmt;

/// Stream direction (RFC 4566 section 6, RFC 3264).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv`.
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer uses for an offered one (RFC 3264 6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type, 0 to 127.
    pub payload_type: u8,
    /// Encoding name (`PCMU`, `opus`, `telephone-event`).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate_hz: u32,
    /// Channels or other encoding parameters, as text.
    pub encoding_params: Option<String>,
}

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap`.
    RtpMap(RtpMap),
    /// `a=fmtp:<format> <parameters>`.
    Fmtp {
        /// The format (payload type) it applies to.
        format: String,
        /// Format parameters, as text.
        params: String,
    },
    /// `a=sendrecv` and friends.
    Direction(Direction),
    /// `a=rtcp:<port> [nettype addrtype address]` (RFC 3605).
    Rtcp {
        /// RTCP port.
        port: u16,
        /// Connection address, as text, when given.
        address: Option<String>,
    },
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// `a=ptime` in milliseconds.
    PtimeMs(u32),
    /// Any other attribute, or a typed one that does not follow its grammar.
    Other {
        /// Name.
        name: String,
        /// Value after `:`, when present.
        value: Option<String>,
    },
}

impl Attribute {
    /// Parses the text after `a=`; never fails (see [`Attribute::Other`]).
    pub fn parse(text: &str) -> Attribute {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        Self::typed(name, value).unwrap_or_else(|| Attribute::Other {
            name: name.into(),
            value: value.map(Into::into),
        })
    }

    fn typed(name: &str, value: Option<&str>) -> Option<Attribute> {
        Some(match (name, value) {
            ("sendrecv", None) => Attribute::Direction(Direction::SendRecv),
            ("sendonly", None) => Attribute::Direction(Direction::SendOnly),
            ("recvonly", None) => Attribute::Direction(Direction::RecvOnly),
            ("inactive", None) => Attribute::Direction(Direction::Inactive),
            ("rtcp-mux", None) => Attribute::RtcpMux,
            ("ptime", Some(v)) => Attribute::PtimeMs(canonical_number(v)?),
            ("rtpmap", Some(v)) => {
                let (pt, rest) = v.split_once(' ')?;
                let payload_type: u8 = canonical_number(pt)?;
                let mut parts = rest.splitn(3, '/');
                let encoding = parts.next().filter(|e| !e.is_empty() && !e.contains(' '))?;
                let clock_rate_hz = canonical_number(parts.next()?)?;
                let encoding_params = match parts.next() {
                    Some(p) if p.is_empty() || p.contains(' ') => return None,
                    other => other.map(str::to_string),
                };
                if payload_type > 127 {
                    return None;
                }
                Attribute::RtpMap(RtpMap {
                    payload_type,
                    encoding: encoding.into(),
                    clock_rate_hz,
                    encoding_params,
                })
            }
            ("fmtp", Some(v)) => {
                let (format, params) = v.split_once(' ')?;
                if format.is_empty() {
                    return None;
                }
                Attribute::Fmtp {
                    format: format.into(),
                    params: params.into(),
                }
            }
            ("rtcp", Some(v)) => {
                let (port, address) = match v.split_once(' ') {
                    Some((p, a)) if !a.is_empty() => (p, Some(a.to_string())),
                    Some(_) => return None,
                    None => (v, None),
                };
                Attribute::Rtcp {
                    port: canonical_number(port)?,
                    address,
                }
            }
            _ => return None,
        })
    }
}

/// Parses a decimal number only when printing it gives the same text, so
/// that the typed form prints back identically (`007` stays untyped).
fn canonical_number<T: std::str::FromStr + ToString>(s: &str) -> Option<T> {
    let v: T = s.parse().ok()?;
    (v.to_string() == s).then_some(v)
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(m) => {
                write!(
                    f,
                    "rtpmap:{} {}/{}",
                    m.payload_type, m.encoding, m.clock_rate_hz
                )?;
                if let Some(p) = &m.encoding_params {
                    write!(f, "/{p}")?;
                }
                Ok(())
            }
            Attribute::Fmtp { format, params } => write!(f, "fmtp:{format} {params}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Rtcp {
                port,
                address: Some(a),
            } => write!(f, "rtcp:{port} {a}"),
            Attribute::Rtcp {
                port,
                address: None,
            } => write!(f, "rtcp:{port}"),
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::PtimeMs(p) => write!(f, "ptime:{p}"),
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
            Attribute::Other { name, value: None } => f.write_str(name),
        }
    }
}
