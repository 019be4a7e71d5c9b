//! RTP and RTCP packet classification, validation and in-place header rewriting.
//!
//! Parsing of the fixed RTP header goes through `rtp-rs`; around it we add the checks a relay
//! needs before it trusts a datagram: version 2, minimum length, CSRC list and header
//! extension within bounds, padding length within the payload, and RTCP demultiplexing by
//! packet type 200..=204 (RFC 5761 section 4) when RTP and RTCP share a port.
//!
//! Invariant: [`classify`] never panics, whatever the bytes; every rejection is a value.

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError};

/// The RTP fixed header length.
pub const RTP_HEADER_LEN: usize = 12;
/// The RTCP common header length (version, count, type, length, sender SSRC).
pub const RTCP_HEADER_LEN: usize = 8;
/// Largest datagram the relay accepts (Ethernet MTU minus IP/UDP headers, with margin).
pub const MAX_DATAGRAM_LEN: usize = 1500;

/// What a validated datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// An RTP media packet.
    Rtp(RtpHeader),
    /// An RTCP (compound) packet.
    Rtcp(RtcpHeader),
}

/// The fields of a validated RTP header that the relay uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit (start of a talkspurt for audio; start of an event for RFC 4733).
    pub marker: bool,
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp, in the payload's clock.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Offset of the payload in the datagram.
    pub payload_offset: usize,
    /// Payload length, padding excluded.
    pub payload_len: usize,
}

impl RtpHeader {
    /// The payload bytes of `datagram`, which must be the datagram this header came from.
    pub fn payload<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram
            .get(self.payload_offset..self.payload_offset + self.payload_len)
            .unwrap_or(&[])
    }
}

/// The first header of a validated RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// Packet type of the first packet (200 SR, 201 RR, 202 SDES, 203 BYE, 204 APP).
    pub packet_type: u8,
    /// SSRC of the sender of the first packet.
    pub sender_ssrc: u32,
}

/// Why a datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the smallest header.
    #[error("datagram of {0} bytes is too short for RTP or RTCP")]
    TooShort(usize),
    /// Longer than any datagram the relay forwards.
    #[error("datagram of {0} bytes is too long")]
    TooLong(usize),
    /// Version field is not 2.
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// The CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header needs {header_len} bytes but the datagram has {datagram_len}")]
    HeaderTruncated {
        /// Bytes the header claims.
        header_len: usize,
        /// Bytes present.
        datagram_len: usize,
    },
    /// The padding count is zero or longer than the payload.
    #[error("invalid RTP padding length {0}")]
    BadPadding(u8),
    /// An RTCP length field points past the end of the datagram.
    #[error("RTCP length field exceeds the datagram")]
    RtcpTruncated,
}

/// True when the second byte marks an RTCP packet (types 200..=204; RFC 5761 section 4).
pub fn looks_like_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(200..=204))
}

/// Validates a datagram and says whether it is RTP or RTCP.
pub fn classify(datagram: &[u8]) -> Result<Packet, PacketError> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(PacketError::TooLong(datagram.len()));
    }
    let first = *datagram.first().ok_or(PacketError::TooShort(0))?;
    let version = first >> 6;
    if version != 2 {
        return Err(PacketError::BadVersion(version));
    }
    if looks_like_rtcp(datagram) {
        return parse_rtcp(datagram).map(Packet::Rtcp);
    }
    parse_rtp(datagram).map(Packet::Rtp)
}

/// Validates an RTP packet (RTCP packet types are not RTP; see [`classify`]).
pub fn parse_rtp(datagram: &[u8]) -> Result<RtpHeader, PacketError> {
    let reader = RtpReader::new(datagram).map_err(|error| match error {
        RtpReaderError::BufferTooShort(len) => PacketError::TooShort(len),
        RtpReaderError::UnsupportedVersion(version) => PacketError::BadVersion(version),
        RtpReaderError::HeadersTruncated {
            header_len,
            buffer_len,
        } => PacketError::HeaderTruncated {
            header_len,
            datagram_len: buffer_len,
        },
        RtpReaderError::PaddingLengthInvalid(len) => PacketError::BadPadding(len),
    })?;
    let payload_offset = reader.payload_offset();
    // rtp-rs accepts padding that eats exactly the whole payload area; recompute the
    // payload length ourselves with the padding included, so no slice can go negative.
    let padding = usize::from(reader.padding().unwrap_or(0));
    let after_header = datagram.len().saturating_sub(payload_offset);
    if padding > after_header {
        return Err(PacketError::BadPadding(reader.padding().unwrap_or(0)));
    }
    Ok(RtpHeader {
        marker: reader.mark(),
        payload_type: reader.payload_type(),
        sequence: u16::from(reader.sequence_number()),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        payload_offset,
        payload_len: after_header - padding,
    })
}

/// Validates the structure of an RTCP compound packet: every packet's length field stays
/// inside the datagram and every packet has version 2.
pub fn parse_rtcp(datagram: &[u8]) -> Result<RtcpHeader, PacketError> {
    if datagram.len() < RTCP_HEADER_LEN {
        return Err(PacketError::TooShort(datagram.len()));
    }
    let mut offset = 0usize;
    // Bound: each iteration advances by at least 4 bytes.
    while offset < datagram.len() {
        let header = datagram
            .get(offset..offset + 4)
            .ok_or(PacketError::RtcpTruncated)?;
        if header[0] >> 6 != 2 {
            return Err(PacketError::BadVersion(header[0] >> 6));
        }
        let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
        offset += (words + 1) * 4;
        if offset > datagram.len() {
            return Err(PacketError::RtcpTruncated);
        }
    }
    Ok(RtcpHeader {
        packet_type: datagram[1],
        sender_ssrc: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
    })
}

/// Overwrites SSRC, sequence number and timestamp of a validated RTP packet in place.
pub fn rewrite_header(datagram: &mut [u8], ssrc: u32, sequence: u16, timestamp: u32) {
    assert!(
        datagram.len() >= RTP_HEADER_LEN,
        "rewrite_header is only called on validated RTP packets"
    );
    datagram[2..4].copy_from_slice(&sequence.to_be_bytes());
    datagram[4..8].copy_from_slice(&timestamp.to_be_bytes());
    datagram[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Overwrites the payload type (keeping the marker bit) of a validated RTP packet.
pub fn rewrite_payload_type(datagram: &mut [u8], payload_type: u8) {
    assert!(
        datagram.len() >= RTP_HEADER_LEN && payload_type < 128,
        "rewrite_payload_type needs a validated packet and a 7-bit type"
    );
    datagram[1] = (datagram[1] & 0x80) | payload_type;
}

/// Fields of an RTP packet the relay generates (prompts, DTMF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
}

/// Builds an RTP packet (no CSRC, no extension, no padding).
pub fn build_packet(header: OutgoingHeader, payload: &[u8]) -> Vec<u8> {
    assert!(header.payload_type < 128, "payload types are 7 bits");
    let builder = RtpPacketBuilder::new()
        .payload_type(header.payload_type)
        .marked(header.marker)
        .sequence(header.sequence.into())
        .ssrc(header.ssrc)
        .timestamp(header.timestamp)
        .payload(payload);
    let mut buffer = vec![0u8; builder.target_length()];
    // Sizes are right by construction and the payload type was checked above.
    let written = builder.build_into_unchecked(&mut buffer);
    buffer.truncate(written);
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(first: u8, payload_type: u8, tail: &[u8]) -> Vec<u8> {
        let mut bytes = vec![
            first,
            payload_type,
            0x12,
            0x34,
            0,
            0,
            0x03,
            0x20,
            1,
            2,
            3,
            4,
        ];
        bytes.extend_from_slice(tail);
        bytes
    }

    fn check(bytes: &[u8], expected: Result<&str, PacketError>) {
        let got = classify(bytes);
        match (got, expected) {
            (Ok(Packet::Rtp(h)), Ok("rtp")) => {
                assert_eq!(h.sequence, 0x1234);
                assert_eq!(h.timestamp, 800);
                assert_eq!(h.ssrc, 0x0102_0304);
            }
            (Ok(Packet::Rtcp(_)), Ok("rtcp")) => {}
            (Err(e), Err(want)) => assert_eq!(e, want, "{bytes:02x?}"),
            (got, want) => panic!("{bytes:02x?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn classification_table() {
        check(&packet(0x80, 0, &[0xFF; 160]), Ok("rtp"));
        check(&packet(0x80, 0x80 | 8, &[]), Ok("rtp"));
        check(&[0x80, 0, 1], Err(PacketError::TooShort(3)));
        check(&[], Err(PacketError::TooShort(0)));
        check(&packet(0x40, 0, &[0; 4]), Err(PacketError::BadVersion(1)));
        check(&packet(0x00, 0, &[0; 4]), Err(PacketError::BadVersion(0)));
        // Two CSRCs announced, one present.
        check(
            &packet(0x82, 0, &[0, 0, 0, 1]),
            Err(PacketError::HeaderTruncated {
                header_len: 20,
                datagram_len: 16,
            }),
        );
        // Extension header of 2 words, only 1 present.
        check(
            &packet(0x90, 0, &[0xBE, 0xDE, 0, 2, 0, 0, 0, 0]),
            Err(PacketError::HeaderTruncated {
                header_len: 24,
                datagram_len: 20,
            }),
        );
        // Padding longer than what follows the header.
        check(
            &packet(0xA0, 0, &[1, 2, 9]),
            Err(PacketError::BadPadding(9)),
        );
        check(
            &packet(0xA0, 0, &[1, 2, 0]),
            Err(PacketError::BadPadding(0)),
        );
        check(&vec![0x80; 2000], Err(PacketError::TooLong(2000)));
        // RTCP receiver report, 1 word after the header word: 8 bytes.
        check(&[0x80, 201, 0, 1, 9, 9, 9, 9], Ok("rtcp"));
        check(
            &[0x80, 201, 0, 7, 9, 9, 9, 9],
            Err(PacketError::RtcpTruncated),
        );
        check(&[0x80, 200, 0, 1], Err(PacketError::TooShort(4)));
        // Compound: RR + SDES with a bad version in the second packet.
        check(
            &[0x80, 201, 0, 1, 9, 9, 9, 9, 0x40, 202, 0, 0],
            Err(PacketError::BadVersion(1)),
        );
    }

    #[test]
    fn padding_is_excluded_from_the_payload() {
        let bytes = packet(0xA0, 0, &[7, 7, 7, 0, 0, 3]);
        let Ok(Packet::Rtp(header)) = classify(&bytes) else {
            panic!("padded packet rejected")
        };
        assert_eq!(header.payload(&bytes), &[7, 7, 7]);
    }

    #[test]
    fn build_then_parse_and_rewrite() {
        let header = OutgoingHeader {
            marker: true,
            payload_type: 8,
            sequence: 65535,
            timestamp: 0xFFFF_FF00,
            ssrc: 0xCAFE_BABE,
        };
        let mut bytes = build_packet(header, &[0xD5; 160]);
        let parsed = parse_rtp(&bytes).expect("built packet parses");
        assert!(parsed.marker);
        assert_eq!(parsed.payload_type, 8);
        assert_eq!(parsed.payload(&bytes), &[0xD5; 160][..]);
        rewrite_header(&mut bytes, 7, 3, 9);
        rewrite_payload_type(&mut bytes, 0);
        let parsed = parse_rtp(&bytes).expect("rewritten packet parses");
        assert_eq!((parsed.ssrc, parsed.sequence, parsed.timestamp), (7, 3, 9));
        assert_eq!(parsed.payload_type, 0);
        assert!(parsed.marker);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Packet::Rtp(header)) = classify(&bytes) {
                prop_assert!(header.payload_offset + header.payload_len <= bytes.len());
                prop_assert_eq!(header.payload(&bytes).len(), header.payload_len);
            }
        }

        #[test]
        fn version_two_headers_with_noise(tail in proptest::collection::vec(any::<u8>(), 0..64),
                                          first in 0x80u8..0xC0, second in any::<u8>()) {
            let mut bytes = vec![first, second];
            bytes.extend(tail);
            let _ = classify(&bytes);
        }
    }
}
