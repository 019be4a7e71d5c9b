//! G.711 companding (ITU-T G.711): A-law and mu-law, 8-bit codes <-> 16-bit linear PCM.
//!
//! Both laws are computed with bit operations (segment = position of the highest set bit),
//! not tables, so there is nothing to keep in sync. Linear samples are 16-bit; A-law uses
//! the top 13 bits and mu-law the top 14, as the recommendation specifies.
//!
//! Invariant: for every code `c`, `encode(decode(c)) == c`, except the mu-law "negative
//! zero" 0x7F, which decodes to 0 and so re-encodes as 0xFF.

/// The two G.711 laws, with their static RTP payload types (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// mu-law, payload type 0, "PCMU" (North America, Japan).
    MuLaw,
    /// A-law, payload type 8, "PCMA" (Europe and most of the world).
    ALaw,
}

impl G711Law {
    /// The static RTP payload type of this law.
    pub fn static_payload_type(self) -> u8 {
        match self {
            G711Law::MuLaw => 0,
            G711Law::ALaw => 8,
        }
    }

    /// The SDP encoding name (`a=rtpmap:<pt> <name>/8000`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            G711Law::MuLaw => "PCMU",
            G711Law::ALaw => "PCMA",
        }
    }

    /// The code for a linear value of zero (what silence is made of).
    pub fn silence_code(self) -> u8 {
        match self {
            G711Law::MuLaw => 0xFF,
            G711Law::ALaw => 0xD5,
        }
    }

    /// Encodes one linear sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            G711Law::MuLaw => linear_to_mulaw(sample),
            G711Law::ALaw => linear_to_alaw(sample),
        }
    }

    /// Decodes one code.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            G711Law::MuLaw => mulaw_to_linear(code),
            G711Law::ALaw => alaw_to_linear(code),
        }
    }

    /// Encodes a block of linear samples.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        samples.iter().map(|s| self.encode_sample(*s)).collect()
    }

    /// Encodes samples as the 20 ms frames (160 codes) a relay sends them
    /// in, the last one padded with silence.
    pub fn frames(self, samples: &[i16]) -> Vec<Vec<u8>> {
        samples
            .chunks(160)
            .map(|chunk| {
                let mut frame = self.encode(chunk);
                frame.resize(160, self.silence_code());
                frame
            })
            .collect()
    }

    /// Decodes a block of codes.
    pub fn decode(self, codes: &[u8]) -> Vec<i16> {
        codes.iter().map(|c| self.decode_sample(*c)).collect()
    }

    /// Re-encodes a block from this law into `target` (decode then encode; exact for
    /// every value A-law and mu-law share).
    pub fn transcode(self, codes: &[u8], target: G711Law) -> Vec<u8> {
        if self == target {
            return codes.to_vec();
        }
        codes
            .iter()
            .map(|c| target.encode_sample(self.decode_sample(*c)))
            .collect()
    }
}

/// mu-law bias: added before the segment search so that segment 0 starts at 0.
const MULAW_BIAS: i32 = 0x84;
/// Largest magnitude mu-law can represent before the bias is added.
const MULAW_CLIP: i32 = 32635;

/// Index of the highest set bit of a positive value (0 for 1).
fn highest_bit(value: i32) -> i32 {
    debug_assert!(value > 0, "highest_bit of a non-positive value");
    31 - value.leading_zeros() as i32
}

/// Encodes a 16-bit linear sample as mu-law.
pub fn linear_to_mulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample);
    let sign: i32 = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    magnitude = magnitude.min(MULAW_CLIP) + MULAW_BIAS;
    // magnitude is in [0x84, 0x7FFF]: the highest bit is 7..=14, segment 0..=7.
    let segment = highest_bit(magnitude) - 7;
    let mantissa = (magnitude >> (segment + 3)) & 0x0F;
    // The field is exactly 8 bits wide; the truncation is the encoding.
    !((sign | (segment << 4) | mantissa) as u8)
}

/// Decodes a mu-law code to 16-bit linear (range -32124..=32124).
pub fn mulaw_to_linear(code: u8) -> i16 {
    let inverted = i32::from(!code);
    let segment = (inverted >> 4) & 0x07;
    let mantissa = inverted & 0x0F;
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << segment) - MULAW_BIAS;
    let value = if inverted & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    };
    // |value| <= 32124, always within i16.
    value as i16
}

/// Encodes a 16-bit linear sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes; negative values are one's-complemented so that
    // -1 and 0 land in the same (smallest) interval of opposite signs.
    let value = i32::from(sample) >> 3;
    let (magnitude, mask) = if value >= 0 {
        (value, 0xD5_i32)
    } else {
        (-value - 1, 0x55_i32)
    };
    let code = if magnitude < 32 {
        // Segment 0 has the same step as segment 1 (2, in 13-bit units).
        (magnitude >> 1) & 0x0F
    } else {
        // magnitude <= 4095: the highest bit is 5..=11, segment 1..=7.
        let segment = highest_bit(magnitude) - 4;
        (segment << 4) | ((magnitude >> segment) & 0x0F)
    };
    ((code ^ mask) & 0xFF) as u8
}

/// Decodes an A-law code to 16-bit linear (range -32256..=32256).
pub fn alaw_to_linear(code: u8) -> i16 {
    let toggled = i32::from(code ^ 0x55);
    let mantissa = (toggled & 0x0F) << 4;
    let segment = (toggled >> 4) & 0x07;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        _ => (mantissa + 0x108) << (segment - 1),
    };
    let value = if toggled & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    };
    // |value| <= 32256, always within i16.
    value as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference points: decoder outputs of ITU-T G.711 Tables 1 and 2 (scaled to 16 bits,
    /// as in the G.191 software tools) and the encoder's clipping and zero codes.
    #[test]
    fn known_values() {
        let cases: &[(G711Law, u8, i16)] = &[
            (G711Law::MuLaw, 0xFF, 0),
            (G711Law::MuLaw, 0x7F, 0),
            (G711Law::MuLaw, 0xFE, 8),
            (G711Law::MuLaw, 0x7E, -8),
            (G711Law::MuLaw, 0xEF, 132),
            (G711Law::MuLaw, 0x80, 32124),
            (G711Law::MuLaw, 0x00, -32124),
            (G711Law::ALaw, 0xD5, 8),
            (G711Law::ALaw, 0x55, -8),
            (G711Law::ALaw, 0xD4, 24),
            (G711Law::ALaw, 0xC5, 264),
            (G711Law::ALaw, 0xAA, 32256),
            (G711Law::ALaw, 0x2A, -32256),
        ];
        for (law, code, linear) in cases {
            assert_eq!(
                law.decode_sample(*code),
                *linear,
                "{law:?} decode {code:#04x}"
            );
        }
        let encodes: &[(G711Law, i16, u8)] = &[
            (G711Law::MuLaw, 0, 0xFF),
            (G711Law::MuLaw, i16::MAX, 0x80),
            (G711Law::MuLaw, i16::MIN, 0x00),
            (G711Law::MuLaw, -1, 0x7F),
            (G711Law::ALaw, 0, 0xD5),
            (G711Law::ALaw, -1, 0x55),
            (G711Law::ALaw, i16::MAX, 0xAA),
            (G711Law::ALaw, i16::MIN, 0x2A),
        ];
        for (law, linear, code) in encodes {
            assert_eq!(law.encode_sample(*linear), *code, "{law:?} encode {linear}");
        }
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
            if code != 0x7F {
                assert_eq!(
                    linear_to_mulaw(mulaw_to_linear(code)),
                    code,
                    "mu-law {code:#04x}"
                );
            }
        }
    }

    #[test]
    fn decoders_are_monotonic_per_sign() {
        for law in [G711Law::ALaw, G711Law::MuLaw] {
            let mut values: Vec<i16> = (0..=255u8).map(|c| law.decode_sample(c)).collect();
            values.sort_unstable();
            values.dedup();
            // 256 codes, mu-law has two zeros.
            let expected = if law == G711Law::MuLaw { 255 } else { 256 };
            assert_eq!(values.len(), expected, "{law:?} distinct levels");
        }
    }

    #[test]
    fn transcode_identity_and_cross() {
        let pcm: Vec<i16> = (-40..40).map(|i| i * 800).collect();
        let alaw = G711Law::ALaw.encode(&pcm);
        assert_eq!(G711Law::ALaw.transcode(&alaw, G711Law::ALaw), alaw);
        let mulaw = G711Law::ALaw.transcode(&alaw, G711Law::MuLaw);
        for (a, u) in alaw.iter().zip(&mulaw) {
            let diff = (i32::from(alaw_to_linear(*a)) - i32::from(mulaw_to_linear(*u))).abs();
            assert!(diff <= 1100, "transcoding error {diff}");
        }
    }

    proptest! {
        #[test]
        fn quantisation_error_is_bounded(sample in any::<i16>()) {
            for law in [G711Law::ALaw, G711Law::MuLaw] {
                let back = i32::from(law.decode_sample(law.encode_sample(sample)));
                let s = i32::from(sample);
                let bound = 16 + s.abs() / 16;
                prop_assert!((back - s).abs() <= bound, "{:?} {} -> {}", law, s, back);
                // The sign survives (zero may come back as +-8).
                prop_assert!(s.abs() < 16 || back.signum() == s.signum());
            }
        }

        #[test]
        fn companding_is_monotonic(a in any::<i16>(), b in any::<i16>()) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            for law in [G711Law::ALaw, G711Law::MuLaw] {
                prop_assert!(law.decode_sample(law.encode_sample(low))
                    <= law.decode_sample(law.encode_sample(high)));
            }
        }
    }
}
