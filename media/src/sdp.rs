//! Just enough SDP (RFC 4566/8866) for a G.711 relay: read the first usable audio stream of
//! a remote description, and write the relay's answer.
//!
//! Read: the `m=audio` line (port, payload types), the connection address (media level
//! wins over session level), `a=rtpmap`, `a=rtcp`, `a=rtcp-mux`, `a=ptime` and the
//! direction attributes. Written: one audio stream with the G.711 laws both sides can do,
//! in the offerer's order, plus `telephone-event/8000` when offered, and `a=rtcp-mux` when
//! offered. Lines we do not need are skipped; lines we need and cannot read are refusals.
//!
//! Boundary: the SIP edge (in `node/`) has its own SDP module for the signalling side; this
//! one only serves the relay and stays independent of it.

use crate::g711::G711Law;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Most SDP lines we look at (a bound on work per description).
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
    /// A line we need could not be read.
    #[error("malformed line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// Neither PCMU nor PCMA is offered.
    #[error("no common codec (the relay needs PCMU or PCMA)")]
    NoCommonCodec,
    /// More lines than the relay reads.
    #[error("description longer than {MAX_LINES} lines")]
    TooLong,
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendReceive,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    ReceiveOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendReceive => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::ReceiveOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer uses for this offered direction (RFC 3264 6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendReceive => Direction::SendReceive,
            Direction::SendOnly => Direction::ReceiveOnly,
            Direction::ReceiveOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
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

fn malformed(line: usize, reason: &'static str) -> SdpError {
    SdpError::Malformed { line, reason }
}

fn parse_connection(value: &str, line: usize) -> Result<IpAddr, SdpError> {
    // c=IN IP4 192.0.2.1 (a multicast TTL suffix "/127" is dropped)
    let mut fields = value.split_whitespace();
    if fields.next() != Some("IN") {
        return Err(malformed(line, "network type is not IN"));
    }
    let _address_type = fields.next().ok_or(malformed(line, "no address type"))?;
    let address = fields.next().ok_or(malformed(line, "no address"))?;
    let address = address.split('/').next().unwrap_or(address);
    address
        .parse()
        .map_err(|_| malformed(line, "connection address is not an IP address"))
}

/// Reads the first active audio stream of a description.
pub fn parse_remote(sdp: &str) -> Result<RemoteAudio, SdpError> {
    let mut session_addr: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut seen_media = false;
    let mut found: Option<AudioBuilder> = None;
    let mut current: Option<AudioBuilder> = None;
    for (index, raw) in sdp.lines().enumerate() {
        if index >= MAX_LINES {
            return Err(SdpError::TooLong);
        }
        let line = index + 1;
        let raw = raw.trim_end_matches('\r');
        let Some((kind, value)) = raw.split_once('=') else {
            if raw.trim().is_empty() {
                continue;
            }
            return Err(malformed(line, "not a type=value line"));
        };
        match kind {
            "m" => {
                if let Some(done) = current.take() {
                    found.get_or_insert(done);
                }
                seen_media = true;
                let mut fields = value.split_whitespace();
                in_audio = fields.next() == Some("audio") && found.is_none();
                if in_audio {
                    let port_field = fields.next().ok_or(malformed(line, "no port"))?;
                    let port_text = port_field.split('/').next().unwrap_or(port_field);
                    let port: u16 = port_text
                        .parse()
                        .map_err(|_| malformed(line, "port is not a number"))?;
                    let _proto = fields.next().ok_or(malformed(line, "no protocol"))?;
                    let mut payload_types = Vec::new();
                    for format in fields {
                        let pt: u8 = format
                            .parse()
                            .ok()
                            .filter(|pt| *pt < 128)
                            .ok_or(malformed(line, "payload type is not 0..=127"))?;
                        payload_types.push(pt);
                    }
                    if port == 0 {
                        in_audio = false; // rejected or disabled stream
                    } else {
                        current = Some(AudioBuilder::new(port, payload_types));
                    }
                }
            }
            "c" => {
                let addr = parse_connection(value, line)?;
                match current.as_mut() {
                    Some(audio) if in_audio => audio.connection = Some(addr),
                    _ if !seen_media => session_addr = Some(addr),
                    _ => {}
                }
            }
            "a" if in_audio => {
                if let Some(audio) = current.as_mut() {
                    audio.attribute(value, line)?;
                }
            }
            _ => {}
        }
    }
    if let Some(done) = current.take() {
        found.get_or_insert(done);
    }
    found.ok_or(SdpError::NoAudio)?.finish(session_addr)
}

#[derive(Debug)]
struct AudioBuilder {
    port: u16,
    payload_types: Vec<u8>,
    connection: Option<IpAddr>,
    rtpmaps: Vec<(u8, String, u32)>,
    rtcp_port: Option<u16>,
    rtcp_mux: bool,
    direction: Direction,
    ptime_ms: Option<u32>,
}

impl AudioBuilder {
    fn new(port: u16, payload_types: Vec<u8>) -> Self {
        AudioBuilder {
            port,
            payload_types,
            connection: None,
            rtpmaps: Vec::new(),
            rtcp_port: None,
            rtcp_mux: false,
            direction: Direction::SendReceive,
            ptime_ms: None,
        }
    }

    fn attribute(&mut self, value: &str, line: usize) -> Result<(), SdpError> {
        let (name, rest) = value.split_once(':').unwrap_or((value, ""));
        match name {
            "rtpmap" => {
                // a=rtpmap:<pt> <encoding>/<clock>[/<channels>]
                let (pt, encoding) = rest
                    .split_once(' ')
                    .ok_or(malformed(line, "rtpmap without encoding"))?;
                let pt: u8 = pt
                    .trim()
                    .parse()
                    .map_err(|_| malformed(line, "rtpmap payload type"))?;
                let mut parts = encoding.trim().split('/');
                let name = parts.next().unwrap_or("").to_ascii_uppercase();
                let clock: u32 = parts
                    .next()
                    .and_then(|c| c.parse().ok())
                    .ok_or(malformed(line, "rtpmap clock rate"))?;
                self.rtpmaps.push((pt, name, clock));
            }
            "rtcp" => {
                let port = rest.split_whitespace().next().unwrap_or("");
                self.rtcp_port = Some(port.parse().map_err(|_| malformed(line, "rtcp port"))?);
            }
            "rtcp-mux" => self.rtcp_mux = true,
            "ptime" => self.ptime_ms = rest.trim().parse().ok(),
            "sendrecv" => self.direction = Direction::SendReceive,
            "sendonly" => self.direction = Direction::SendOnly,
            "recvonly" => self.direction = Direction::ReceiveOnly,
            "inactive" => self.direction = Direction::Inactive,
            _ => {}
        }
        Ok(())
    }

    fn finish(self, session_addr: Option<IpAddr>) -> Result<RemoteAudio, SdpError> {
        let ip = self
            .connection
            .or(session_addr)
            .ok_or(SdpError::NoConnection)?;
        let mut codecs = Vec::new();
        let mut telephone_event = None;
        for pt in &self.payload_types {
            let mapped = self.rtpmaps.iter().find(|(p, _, _)| p == pt);
            let law = match (pt, mapped) {
                (_, Some((_, name, 8000))) if name == "PCMU" => Some(G711Law::MuLaw),
                (_, Some((_, name, 8000))) if name == "PCMA" => Some(G711Law::ALaw),
                (_, Some((_, name, 8000))) if name == "TELEPHONE-EVENT" => {
                    telephone_event.get_or_insert(*pt);
                    None
                }
                (0, None) => Some(G711Law::MuLaw),
                (8, None) => Some(G711Law::ALaw),
                _ => None,
            };
            if let Some(law) = law {
                if !codecs.iter().any(|(l, _)| *l == law) {
                    codecs.push((law, *pt));
                }
            }
        }
        if codecs.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let rtp_addr = SocketAddr::new(ip, self.port);
        let rtcp_addr = if self.rtcp_mux {
            rtp_addr
        } else {
            SocketAddr::new(ip, self.rtcp_port.unwrap_or(self.port.wrapping_add(1)))
        };
        Ok(RemoteAudio {
            rtp_addr,
            rtcp_addr,
            rtcp_mux: self.rtcp_mux,
            codecs,
            telephone_event,
            direction: self.direction,
            ptime_ms: self.ptime_ms,
        })
    }
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
    /// Writes the description (CRLF line ends).
    pub fn render(&self) -> String {
        let family = if self.ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut formats: Vec<u8> = self.codecs.iter().map(|(_, pt)| *pt).collect();
        formats.extend(self.telephone_event);
        let format_list: Vec<String> = formats.iter().map(u8::to_string).collect();
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = write!(out, "v=0\r\n");
        let _ = write!(
            out,
            "o=carillon {} {} IN {family} {}\r\n",
            self.session_id, self.version, self.ip
        );
        let _ = write!(out, "s=carillon\r\nc=IN {family} {}\r\nt=0 0\r\n", self.ip);
        let _ = write!(
            out,
            "m=audio {} RTP/AVP {}\r\n",
            self.rtp_port,
            format_list.join(" ")
        );
        for (law, pt) in &self.codecs {
            let _ = write!(out, "a=rtpmap:{pt} {}/8000\r\n", law.encoding_name());
        }
        if let Some(pt) = self.telephone_event {
            let _ = write!(
                out,
                "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
            );
        }
        let _ = write!(out, "a=ptime:20\r\n");
        if self.rtcp_mux {
            let _ = write!(out, "a=rtcp-mux\r\n");
        } else {
            let _ = write!(out, "a=rtcp:{}\r\n", self.rtp_port.wrapping_add(1));
        }
        let _ = write!(out, "a={}\r\n", self.direction.attribute());
        out
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

    fn check(sdp: &str, expected: Result<(&str, &str), SdpError>) {
        let got = parse_remote(sdp).map(|a| (a.rtp_addr.to_string(), a.rtcp_addr.to_string()));
        let expected = expected.map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(got, expected, "{sdp:?}");
    }

    #[test]
    fn data_driven_cases() {
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 0\n",
            Ok(("192.0.2.7:5000", "192.0.2.7:5001")),
        );
        check(
            "v=0\nm=audio 5000 RTP/AVP 0\nc=IN IP6 2001:db8::1\na=rtcp:6000\n",
            Ok(("[2001:db8::1]:5000", "[2001:db8::1]:6000")),
        );
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 0 RTP/AVP 0\n",
            Err(SdpError::NoAudio),
        );
        check("v=0\nm=audio 5000 RTP/AVP 0\n", Err(SdpError::NoConnection));
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 18\n",
            Err(SdpError::NoCommonCodec),
        );
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 9\na=rtpmap:9 PCMU/8000\n",
            Ok(("192.0.2.7:5000", "192.0.2.7:5001")),
        );
        check(
            "v=0\nc=IN IP4 nowhere\nm=audio 5000 RTP/AVP 0\n",
            Err(SdpError::Malformed {
                line: 2,
                reason: "connection address is not an IP address",
            }),
        );
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 99999 RTP/AVP 0\n",
            Err(SdpError::Malformed {
                line: 3,
                reason: "port is not a number",
            }),
        );
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 300\n",
            Err(SdpError::Malformed {
                line: 3,
                reason: "payload type is not 0..=127",
            }),
        );
        check(
            "garbage",
            Err(SdpError::Malformed {
                line: 1,
                reason: "not a type=value line",
            }),
        );
        check("", Err(SdpError::NoAudio));
        // Second audio stream ignored, first one wins.
        check(
            "v=0\nc=IN IP4 192.0.2.7\nm=audio 5000 RTP/AVP 0\nm=audio 7000 RTP/AVP 0\n",
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
