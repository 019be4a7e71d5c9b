//! The relay's view of SDP (RFC 4566/8866): the first usable audio stream of a remote
//! description, and the relay's answer or offer.
//!
//! Parsing is carillon-sip's (one SDP parser for the whole product): a description that
//! does not parse there is refused here with its reason. Read from it: the first `m=audio`
//! line with a non-zero port, the connection address (media level wins over session
//! level), `a=rtpmap`, `a=rtcp`, `a=rtcp-mux`, `a=ptime` and the direction. Written: one
//! audio stream with the G.711 laws both sides can do, in the offerer's order, plus
//! `telephone-event/8000` when offered, and `a=rtcp-mux` when offered, printed by the same
//! crate's `SessionDescription`.

use crate::g711::G711Law;
use carillon_sip::sdp::{
    Attribute, Connection, MediaDescription, Origin, RtpMap, SdpError as SyntaxError,
    SessionDescription,
};
use std::net::{IpAddr, SocketAddr};

pub use carillon_sip::sdp::Direction;

/// Most SDP lines the relay reads (a bound on work per description).
const MAX_LINES: usize = 512;

/// Why a remote description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// No `m=audio` line with a non-zero port.
    #[error("no active audio stream")]
    NoAudio,
    /// No usable `c=` line for the audio stream.
    #[error("no connection address for the audio stream")]
    NoConnection,
    /// The description does not parse, or a value the relay needs is unusable.
    #[error("malformed description: {0}")]
    Malformed(String),
    /// Neither PCMU nor PCMA is offered.
    #[error("no common codec (the relay needs PCMU or PCMA)")]
    NoCommonCodec,
    /// More lines than the relay reads.
    #[error("description longer than {MAX_LINES} lines")]
    TooLong,
}

impl From<SyntaxError> for SdpError {
    fn from(e: SyntaxError) -> Self {
        SdpError::Malformed(e.to_string())
    }
}

/// The audio stream of a remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAudio {
    /// Where the remote side says it receives RTP.
    pub rtp_addr: SocketAddr,
    /// Where it receives RTCP (`a=rtcp`, else RTP port + 1; the RTP address with mux).
    pub rtcp_addr: SocketAddr,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// G.711 laws offered, in the offerer's order of preference, with their payload types.
    pub codecs: Vec<(G711Law, u8)>,
    /// Payload type of `telephone-event/8000`, if offered.
    pub telephone_event: Option<u8>,
    /// Offered direction.
    pub direction: Direction,
    /// `a=ptime`, if given.
    pub ptime_ms: Option<u32>,
}

impl RemoteAudio {
    /// The law and payload type the relay sends to this side: the offerer's first G.711.
    pub fn preferred_codec(&self) -> Option<(G711Law, u8)> {
        self.codecs.first().copied()
    }

    /// The law carried by a payload type of this side, if it is G.711.
    pub fn law_of(&self, payload_type: u8) -> Option<G711Law> {
        self.codecs
            .iter()
            .find(|(_, pt)| *pt == payload_type)
            .map(|(law, _)| *law)
    }

    /// The payload type this side uses for a law, if it accepted it.
    pub fn payload_type_of(&self, law: G711Law) -> Option<u8> {
        self.codecs
            .iter()
            .find(|(l, _)| *l == law)
            .map(|(_, pt)| *pt)
    }
}

fn connection_ip(connection: &Connection) -> Result<IpAddr, SdpError> {
    if !connection.net_type.eq_ignore_ascii_case("IN") {
        return Err(SdpError::Malformed("network type is not IN".into()));
    }
    // A multicast TTL suffix ("/127") is not part of the address.
    let address = connection.address.split('/').next().unwrap_or_default();
    address
        .parse()
        .map_err(|_| SdpError::Malformed("connection address is not an IP address".into()))
}

/// Reads the first active audio stream of a description.
pub fn parse_remote(sdp: &str) -> Result<RemoteAudio, SdpError> {
    if sdp.lines().filter(|l| !l.trim().is_empty()).count() > MAX_LINES {
        return Err(SdpError::TooLong);
    }
    let description = SessionDescription::parse(sdp)?;
    let audio = description
        .media
        .iter()
        .find(|m| m.media == "audio")
        .filter(|m| m.port != 0)
        .ok_or(SdpError::NoAudio)?;
    let connection = audio
        .connection
        .as_ref()
        .or(description.connection.as_ref())
        .ok_or(SdpError::NoConnection)?;
    let ip = connection_ip(connection)?;
    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for format in &audio.formats {
        let pt: u8 = format
            .parse()
            .ok()
            .filter(|pt| *pt < 128)
            .ok_or_else(|| SdpError::Malformed("payload type is not 0..=127".into()))?;
        let law = match (pt, audio.rtpmap(pt)) {
            (_, Some(map)) if map.clock_rate_hz == 8000 => {
                match map.encoding.to_ascii_uppercase().as_str() {
                    "PCMU" => Some(G711Law::MuLaw),
                    "PCMA" => Some(G711Law::ALaw),
                    "TELEPHONE-EVENT" => {
                        telephone_event.get_or_insert(pt);
                        None
                    }
                    _ => None,
                }
            }
            (0, None) => Some(G711Law::MuLaw),
            (8, None) => Some(G711Law::ALaw),
            _ => None,
        };
        if let Some(law) = law {
            if !codecs.iter().any(|(l, _)| *l == law) {
                codecs.push((law, pt));
            }
        }
    }
    if codecs.is_empty() {
        return Err(SdpError::NoCommonCodec);
    }
    let rtcp_mux = audio.rtcp_mux();
    let rtp_addr = SocketAddr::new(ip, audio.port);
    let rtcp_port = audio.attributes.iter().find_map(|a| match a {
        Attribute::Rtcp { port, .. } => Some(*port),
        _ => None,
    });
    let rtcp_addr = if rtcp_mux {
        rtp_addr
    } else {
        SocketAddr::new(ip, rtcp_port.unwrap_or(audio.port.wrapping_add(1)))
    };
    Ok(RemoteAudio {
        rtp_addr,
        rtcp_addr,
        rtcp_mux,
        codecs,
        telephone_event,
        direction: audio.direction().unwrap_or(Direction::SendRecv),
        ptime_ms: audio.ptime_ms(),
    })
}

/// What the relay puts in its answer for one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    /// Address the relay advertises.
    pub ip: IpAddr,
    /// Local RTP port of the leg.
    pub rtp_port: u16,
    /// `o=` session id (decimal digits; from the caller, no clock here).
    pub session_id: u64,
    /// `o=` version, bumped on each change.
    pub version: u64,
    /// Laws and payload types, in order.
    pub codecs: Vec<(G711Law, u8)>,
    /// telephone-event payload type, if any.
    pub telephone_event: Option<u8>,
    /// Answer rtcp-mux.
    pub rtcp_mux: bool,
    /// Direction attribute.
    pub direction: Direction,
}

impl LocalAnswer {
    /// The description, as carillon-sip's `SessionDescription`.
    pub fn description(&self) -> SessionDescription {
        let mut formats: Vec<u8> = self.codecs.iter().map(|(_, pt)| *pt).collect();
        formats.extend(self.telephone_event);
        let mut attributes: Vec<Attribute> = self
            .codecs
            .iter()
            .map(|(law, pt)| {
                Attribute::RtpMap(RtpMap {
                    payload_type: *pt,
                    encoding: law.encoding_name().into(),
                    clock_rate_hz: 8000,
                    encoding_params: None,
                })
            })
            .collect();
        if let Some(pt) = self.telephone_event {
            attributes.push(Attribute::RtpMap(RtpMap {
                payload_type: pt,
                encoding: "telephone-event".into(),
                clock_rate_hz: 8000,
                encoding_params: None,
            }));
            attributes.push(Attribute::Fmtp {
                format: pt.to_string(),
                params: "0-16".into(),
            });
        }
        attributes.push(Attribute::PtimeMs(20));
        attributes.push(if self.rtcp_mux {
            Attribute::RtcpMux
        } else {
            Attribute::Rtcp {
                port: self.rtp_port.wrapping_add(1),
                address: None,
            }
        });
        attributes.push(Attribute::Direction(self.direction));
        let connection = Connection::new(self.ip);
        SessionDescription {
            origin: Origin {
                username: "carillon".into(),
                session_id: self.session_id.to_string(),
                session_version: self.version.to_string(),
                net_type: connection.net_type.clone(),
                addr_type: connection.addr_type.clone(),
                address: self.ip.to_string(),
            },
            session_name: "carillon".into(),
            connection: Some(connection),
            timing: vec![(0, 0)],
            attributes: Vec::new(),
            media: vec![MediaDescription {
                media: "audio".into(),
                port: self.rtp_port,
                port_count: None,
                protocol: "RTP/AVP".into(),
                formats: formats.iter().map(u8::to_string).collect(),
                connection: None,
                attributes,
                other: Vec::new(),
            }],
            other: Vec::new(),
        }
    }

    /// Writes the description (CRLF line ends).
    pub fn render(&self) -> String {
        self.description().to_string()
    }
}

/// The answer to a remote description: the offered G.711 laws (offer order), the offered
/// telephone-event payload type, rtcp-mux when offered, and the matching direction.
pub fn answer_for(
    remote: &RemoteAudio,
    ip: IpAddr,
    rtp_port: u16,
    session_id: u64,
    version: u64,
) -> LocalAnswer {
    LocalAnswer {
        ip,
        rtp_port,
        session_id,
        version,
        codecs: remote.codecs.clone(),
        telephone_event: remote.telephone_event,
        rtcp_mux: remote.rtcp_mux,
        direction: remote.direction.answer(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 198.51.100.1\r\ns=-\r\n\
c=IN IP4 198.51.100.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\nc=IN IP4 198.51.100.9\r\n\
m=audio 49170 RTP/AVP 8 0 101 18\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=rtpmap:18 G729/8000\r\na=ptime:20\r\na=rtcp-mux\r\na=sendonly\r\n";

    #[test]
    fn reads_an_offer() {
        let audio = parse_remote(OFFER).expect("offer parses");
        assert_eq!(audio.rtp_addr, "198.51.100.1:49170".parse().expect("addr"));
        assert_eq!(audio.rtcp_addr, audio.rtp_addr, "rtcp-mux");
        assert_eq!(audio.codecs, vec![(G711Law::ALaw, 8), (G711Law::MuLaw, 0)]);
        assert_eq!(audio.telephone_event, Some(101));
        assert_eq!(audio.direction, Direction::SendOnly);
        assert_eq!(audio.ptime_ms, Some(20));
    }

    const HEAD: &str = "v=0\no=- 1 1 IN IP4 192.0.2.7\ns=-\nt=0 0\n";

    fn check(body: &str, expected: Result<(&str, &str), SdpError>) {
        let sdp = format!("{HEAD}{body}");
        let sdp = sdp.as_str();
        let got = parse_remote(sdp).map(|a| (a.rtp_addr.to_string(), a.rtcp_addr.to_string()));
        let expected = expected.map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(got, expected, "{sdp:?}");
    }

    #[test]
    fn data_driven_cases() {
        check(
            "c=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 0\n",
            Ok(("192.0.2.7:5000", "192.0.2.7:5001")),
        );
        check(
            "m=audio 5000 RTP/AVP 0\nc=IN IP6 2001:db8::1\na=rtcp:6000\n",
            Ok(("[2001:db8::1]:5000", "[2001:db8::1]:6000")),
        );
        check(
            "c=IN IP4 192.0.2.7\nm=audio 0 RTP/AVP 0\n",
            Err(SdpError::NoAudio),
        );
        check("m=audio 5000 RTP/AVP 0\n", Err(SdpError::NoConnection));
        check(
            "c=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 18\n",
            Err(SdpError::NoCommonCodec),
        );
        check(
            "c=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 9\na=rtpmap:9 PCMU/8000\n",
            Ok(("192.0.2.7:5000", "192.0.2.7:5001")),
        );
        check(
            "c=IN IP4 nowhere\nm=audio 5000 RTP/AVP 0\n",
            Err(SdpError::Malformed(
                "connection address is not an IP address".into(),
            )),
        );
        check(
            "c=IN IP4 192.0.2.7\nm=audio 99999 RTP/AVP 0\n",
            Err(SdpError::Malformed(
                "malformed m= line: invalid port".into(),
            )),
        );
        check(
            "c=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 300\n",
            Err(SdpError::Malformed("payload type is not 0..=127".into())),
        );
        assert_eq!(
            parse_remote("garbage"),
            Err(SdpError::Malformed("line 1 is not <type>=<value>".into()))
        );
        assert_eq!(
            parse_remote("v=0\nc=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 0\n"),
            Err(SdpError::Malformed("missing t= line".into())),
            "the mandatory lines are required"
        );
        check("", Err(SdpError::NoAudio));
        // Second audio stream ignored, first one wins.
        check(
            "c=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 0\nm=audio 7000 RTP/AVP 0\n",
            Ok(("192.0.2.7:5000", "192.0.2.7:5001")),
        );
    }

    #[test]
    fn too_long_is_refused() {
        let sdp = "a=x\n".repeat(MAX_LINES + 1);
        assert_eq!(parse_remote(&sdp), Err(SdpError::TooLong));
    }

    #[test]
    fn answer_renders_and_reparses() {
        let remote = parse_remote(OFFER).expect("offer parses");
        let answer = answer_for(&remote, "203.0.113.5".parse().expect("ip"), 30000, 42, 1);
        let text = answer.render();
        assert!(text.contains("m=audio 30000 RTP/AVP 8 0 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(text.contains("a=rtcp-mux\r\n"));
        assert!(text.contains("a=recvonly\r\n"));
        let back = parse_remote(&text).expect("answer parses");
        assert_eq!(back.rtp_addr, "203.0.113.5:30000".parse().expect("addr"));
        assert_eq!(back.codecs, remote.codecs);
        assert_eq!(back.telephone_event, Some(101));
    }
}
