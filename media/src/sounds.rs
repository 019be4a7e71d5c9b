//! Reading recorded sounds: the bytes of a RIFF/WAVE file to the 8 kHz 16-bit PCM samples
//! that prompts are made of ([`parse_wav`]). Pure: the shell reads the file
//! (`shell::sounds`), this module only looks at bytes.
//!
//! Accepted: PCM (format tag 1, or `WAVE_FORMAT_EXTENSIBLE` with the PCM sub-format),
//! 16 bits, one channel, 8000 Hz, as Debian's Asterisk sound packages ship them. Chunks may
//! come in any order, odd-sized chunks carry their pad byte, and chunks other than `fmt `
//! and `data` (`LIST`, `fact`, `cue `, ...) are skipped. Anything else is refused with a
//! [`WavError`] that names what was found: sounds are never resampled, mixed down or
//! re-quantised here (convert them with sox beforehand).

/// Sample rate of every prompt.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is the first two bytes of the sub-format GUID.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Why the bytes of a file are not a usable sound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// The file does not start with `RIFF <size> WAVE`.
    #[error("not a RIFF/WAVE file (it starts with {found:?})")]
    NotRiffWave {
        /// The first (up to) 12 bytes, escaped.
        found: String,
    },
    /// A chunk says it is longer than what is left of the file.
    #[error("the {chunk:?} chunk at byte {offset} says {size} bytes, but only {left} follow")]
    Truncated {
        /// Chunk id.
        chunk: String,
        /// Where its header starts.
        offset: usize,
        /// The size it declares.
        size: u32,
        /// Bytes after its header.
        left: usize,
    },
    /// No `fmt ` chunk.
    #[error("no fmt chunk")]
    NoFormat,
    /// The `fmt ` chunk is shorter than its 16 mandatory bytes (or 40 when extensible).
    #[error("fmt chunk of {0} bytes is too short")]
    ShortFormat(usize),
    /// No `data` chunk.
    #[error("no data chunk")]
    NoData,
    /// Not linear PCM (A-law, mu-law, ADPCM, float, ...).
    #[error("format tag {0:#06x} is not PCM (1): only 16-bit linear PCM is loaded")]
    NotPcm(u16),
    /// Not 16 bits per sample.
    #[error("{0} bits per sample: only 16-bit PCM is loaded")]
    NotSixteenBit(u16),
    /// Not one channel.
    #[error("{0} channels: only mono is loaded")]
    NotMono(u16),
    /// Not 8000 Hz.
    #[error("{0} Hz: only 8000 Hz is loaded (sounds are not resampled)")]
    OtherRate(u32),
    /// The `data` chunk holds half a sample at its end.
    #[error("data chunk of {0} bytes is not a whole number of 16-bit samples")]
    OddData(usize),
    /// The `data` chunk is empty.
    #[error("data chunk holds no samples")]
    NoSamples,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// The samples of a PCM 16-bit little-endian mono 8 kHz RIFF/WAVE file, in order.
pub fn parse_wav(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotRiffWave {
            found: escaped(&bytes[..bytes.len().min(12)]),
        });
    }
    // The RIFF size is not trusted (writers that stream leave it wrong); chunks are read
    // to the end of the bytes.
    let mut format: Option<&[u8]> = None;
    let mut data: Option<&[u8]> = None;
    let mut offset = 12usize;
    // Bound: each chunk advances the offset by at least 8 bytes.
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let size = u32_at(bytes, offset + 4);
        let body_start = offset + 8;
        let left = bytes.len() - body_start;
        let Some(body) = usize::try_from(size)
            .ok()
            .filter(|size| *size <= left)
            .map(|size| &bytes[body_start..body_start + size])
        else {
            return Err(WavError::Truncated {
                chunk: escaped(id),
                offset,
                size,
                left,
            });
        };
        match id {
            b"fmt " if format.is_none() => format = Some(body),
            b"data" if data.is_none() => data = Some(body),
            // LIST, fact, cue, a second fmt or data ...: not ours.
            _ => {}
        }
        // An odd-sized chunk is followed by a pad byte (the last one may lack it).
        offset = body_start + body.len() + body.len() % 2;
    }
    let format = format.ok_or(WavError::NoFormat)?;
    if format.len() < 16 {
        return Err(WavError::ShortFormat(format.len()));
    }
    let mut tag = u16_at(format, 0);
    if tag == FORMAT_EXTENSIBLE {
        // cbSize (2), valid bits (2), channel mask (4), then the sub-format GUID.
        if format.len() < 40 {
            return Err(WavError::ShortFormat(format.len()));
        }
        tag = u16_at(format, 24);
    }
    let channels = u16_at(format, 2);
    let rate_hz = u32_at(format, 4);
    let bits = u16_at(format, 14);
    if tag != FORMAT_PCM {
        return Err(WavError::NotPcm(tag));
    }
    if bits != 16 {
        return Err(WavError::NotSixteenBit(bits));
    }
    if channels != 1 {
        return Err(WavError::NotMono(channels));
    }
    if rate_hz != SAMPLE_RATE_HZ {
        return Err(WavError::OtherRate(rate_hz));
    }
    let data = data.ok_or(WavError::NoData)?;
    if data.len() % 2 != 0 {
        return Err(WavError::OddData(data.len()));
    }
    if data.is_empty() {
        return Err(WavError::NoSamples);
    }
    Ok(data
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A `fmt ` chunk body: tag, channels, rate, bits (block align and byte rate follow).
    fn format(tag: u16, channels: u16, rate_hz: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut body = Vec::new();
        body.extend(tag.to_le_bytes());
        body.extend(channels.to_le_bytes());
        body.extend(rate_hz.to_le_bytes());
        body.extend((rate_hz * u32::from(align)).to_le_bytes());
        body.extend(align.to_le_bytes());
        body.extend(bits.to_le_bytes());
        body
    }

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend((body.len() as u32 + 4).to_le_bytes());
        out.extend(b"WAVE");
        out.extend(body);
        out
    }

    fn pcm(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    const SAMPLES: [i16; 5] = [0, 1, -1, i16::MAX, i16::MIN];

    fn mono_8k() -> Vec<u8> {
        format(1, 1, 8000, 16)
    }

    /// Data-driven: each case's bytes and what `parse_wav` must say.
    fn check(name: &str, bytes: &[u8], expected: Result<Vec<i16>, WavError>) {
        assert_eq!(parse_wav(bytes), expected, "{name}");
    }

    #[test]
    fn accepted_layouts() {
        let good = Ok(SAMPLES.to_vec());
        let list = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00sox\x00\x00");
        let odd_list = chunk(b"LIST", b"INFOx"); // 5 bytes: a pad byte follows
        let mut extensible = format(FORMAT_EXTENSIBLE, 1, 8000, 16);
        extensible.extend(22u16.to_le_bytes()); // cbSize
        extensible.extend(16u16.to_le_bytes()); // valid bits
        extensible.extend(4u32.to_le_bytes()); // channel mask
        extensible.extend(1u16.to_le_bytes()); // KSDATAFORMAT_SUBTYPE_PCM
        extensible.extend(b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71");
        let mut wrong_riff_size =
            riff(&[chunk(b"fmt ", &mono_8k()), chunk(b"data", &pcm(&SAMPLES))]);
        wrong_riff_size[4..8].copy_from_slice(&0u32.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "plain",
                riff(&[chunk(b"fmt ", &mono_8k()), chunk(b"data", &pcm(&SAMPLES))]),
            ),
            (
                "LIST before and after fmt",
                riff(&[
                    list.clone(),
                    chunk(b"fmt ", &mono_8k()),
                    list,
                    chunk(b"data", &pcm(&SAMPLES)),
                ]),
            ),
            (
                "odd chunk with its pad byte",
                riff(&[
                    chunk(b"fmt ", &mono_8k()),
                    odd_list.clone(),
                    chunk(b"data", &pcm(&SAMPLES)),
                ]),
            ),
            (
                "data before fmt",
                riff(&[chunk(b"data", &pcm(&SAMPLES)), chunk(b"fmt ", &mono_8k())]),
            ),
            (
                "fmt of 18 bytes (cbSize 0)",
                riff(&[
                    chunk(b"fmt ", &[mono_8k(), vec![0, 0]].concat()),
                    chunk(b"data", &pcm(&SAMPLES)),
                ]),
            ),
            (
                "extensible PCM",
                riff(&[chunk(b"fmt ", &extensible), chunk(b"data", &pcm(&SAMPLES))]),
            ),
            (
                "a last odd chunk without its pad byte",
                [
                    riff(&[chunk(b"fmt ", &mono_8k()), chunk(b"data", &pcm(&SAMPLES))]),
                    odd_list[..odd_list.len() - 1].to_vec(),
                ]
                .concat(),
            ),
            ("RIFF size left at 0 by a streaming writer", wrong_riff_size),
        ];
        for (name, bytes) in cases {
            check(name, &bytes, good.clone());
        }
    }

    #[test]
    fn refusals_name_what_was_found() {
        let data = chunk(b"data", &pcm(&SAMPLES));
        let with_format = |fmt: Vec<u8>| riff(&[chunk(b"fmt ", &fmt), data.clone()]);
        let mut truncated = with_format(mono_8k());
        truncated.truncate(truncated.len() - 1);
        let mut extensible_alaw = format(FORMAT_EXTENSIBLE, 1, 8000, 16);
        extensible_alaw.extend([22, 0, 16, 0, 4, 0, 0, 0, 6, 0]);
        extensible_alaw.extend([0u8; 14]);
        let cases: Vec<(&str, Vec<u8>, WavError)> = vec![
            (
                "an MP3 file",
                b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00\xff".to_vec(),
                WavError::NotRiffWave {
                    found: "ID3\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00".into(),
                },
            ),
            (
                "RIFF but AVI",
                b"RIFF\x04\x00\x00\x00AVI ".to_vec(),
                WavError::NotRiffWave {
                    found: "RIFF\\x04\\x00\\x00\\x00AVI ".into(),
                },
            ),
            (
                "empty",
                Vec::new(),
                WavError::NotRiffWave { found: "".into() },
            ),
            (
                "truncated data",
                truncated,
                WavError::Truncated {
                    chunk: "data".into(),
                    offset: 36,
                    size: 10,
                    left: 9,
                },
            ),
            (
                "no fmt",
                riff(std::slice::from_ref(&data)),
                WavError::NoFormat,
            ),
            (
                "no data",
                riff(&[chunk(b"fmt ", &mono_8k())]),
                WavError::NoData,
            ),
            (
                "short fmt",
                with_format(mono_8k()[..14].to_vec()),
                WavError::ShortFormat(14),
            ),
            (
                "A-law",
                with_format(format(6, 1, 8000, 8)),
                WavError::NotPcm(6),
            ),
            (
                "mu-law",
                with_format(format(7, 1, 8000, 8)),
                WavError::NotPcm(7),
            ),
            (
                "float",
                with_format(format(3, 1, 8000, 32)),
                WavError::NotPcm(3),
            ),
            (
                "extensible A-law",
                with_format(extensible_alaw),
                WavError::NotPcm(6),
            ),
            (
                "8-bit PCM",
                with_format(format(1, 1, 8000, 8)),
                WavError::NotSixteenBit(8),
            ),
            (
                "24-bit PCM",
                with_format(format(1, 1, 8000, 24)),
                WavError::NotSixteenBit(24),
            ),
            (
                "stereo",
                with_format(format(1, 2, 8000, 16)),
                WavError::NotMono(2),
            ),
            (
                "16 kHz",
                with_format(format(1, 1, 16000, 16)),
                WavError::OtherRate(16000),
            ),
            (
                "44.1 kHz",
                with_format(format(1, 1, 44100, 16)),
                WavError::OtherRate(44100),
            ),
            (
                "half a sample",
                riff(&[chunk(b"fmt ", &mono_8k()), chunk(b"data", &[1, 2, 3])]),
                WavError::OddData(3),
            ),
            (
                "no samples",
                riff(&[chunk(b"fmt ", &mono_8k()), chunk(b"data", &[])]),
                WavError::NoSamples,
            ),
        ];
        for (name, bytes, error) in cases {
            check(name, &bytes, Err(error));
        }
    }

    #[test]
    fn messages_say_what_was_found() {
        assert_eq!(
            WavError::OtherRate(16000).to_string(),
            "16000 Hz: only 8000 Hz is loaded (sounds are not resampled)"
        );
        assert_eq!(
            WavError::NotPcm(6).to_string(),
            "format tag 0x0006 is not PCM (1): only 16-bit linear PCM is loaded"
        );
        assert_eq!(
            WavError::NotMono(2).to_string(),
            "2 channels: only mono is loaded"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_or_read_never_a_panic(
            riff_header in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = if riff_header { b"RIFF\0\0\0\0WAVE".to_vec() } else { Vec::new() };
            bytes.extend(body);
            let _ = parse_wav(&bytes);
        }

        #[test]
        fn samples_come_out_whatever_the_chunk_order(
            samples in proptest::collection::vec(any::<i16>(), 1..400),
            extras in proptest::collection::vec(
                (prop::sample::select(vec![*b"LIST", *b"fact", *b"cue ", *b"JUNK"]),
                 proptest::collection::vec(any::<u8>(), 0..9)),
                0..4,
            ),
            data_first in any::<bool>(),
            split in 0usize..5,
        ) {
            let mut chunks: Vec<Vec<u8>> = extras.iter().map(|(id, body)| chunk(id, body)).collect();
            let (fmt, data) = (chunk(b"fmt ", &mono_8k()), chunk(b"data", &pcm(&samples)));
            let (first, second) = if data_first { (data, fmt) } else { (fmt, data) };
            let at = split.min(chunks.len());
            chunks.insert(at, second);
            chunks.insert(at, first);
            prop_assert_eq!(parse_wav(&riff(&chunks)), Ok(samples));
        }
    }
}
