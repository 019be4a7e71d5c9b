//! Prompt material synthesised in code (nothing is downloaded): tones, ring-back, a beep,
//! DTMF tones, and a short melody for music on hold. All 16-bit PCM at 8 kHz.
//!
//! Synthesis is deterministic (no randomness, no clock) so tests can check exact lengths and
//! the frequencies present (Goertzel in the tests).

use crate::dtmf::Digit;

/// Sample rate of all material.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Samples per millisecond at 8 kHz.
pub const SAMPLES_PER_MS: usize = 8;
/// Default level: about -10 dBFS per tone, so two summed tones stay far from clipping.
pub const DEFAULT_AMPLITUDE: f64 = 0.3 * 32767.0 / 2.0;

/// Silence of `duration_ms`.
pub fn silence(duration_ms: u32) -> Vec<i16> {
    vec![0; duration_ms as usize * SAMPLES_PER_MS]
}

/// The sum of sines at `frequencies_hz`, each of `amplitude`, with 5 ms linear fade in and
/// out so the tone starts and stops without a click.
pub fn tone(frequencies_hz: &[f64], duration_ms: u32, amplitude: f64) -> Vec<i16> {
    let count = duration_ms as usize * SAMPLES_PER_MS;
    let fade = (5 * SAMPLES_PER_MS).min(count / 2).max(1);
    (0..count)
        .map(|n| {
            let t = n as f64 / f64::from(SAMPLE_RATE_HZ);
            let sum: f64 = frequencies_hz
                .iter()
                .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            let edge = n.min(count - 1 - n);
            let envelope = if edge < fade {
                edge as f64 / fade as f64
            } else {
                1.0
            };
            // Clamped to the sample range before the conversion.
            (sum * amplitude * envelope).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// One cadence of European ring-back: 425 Hz for 1 s, 4 s of silence (ETSI TR 101 041).
pub fn ringback_cadence() -> Vec<i16> {
    let mut out = tone(&[425.0], 1000, DEFAULT_AMPLITUDE);
    out.extend(silence(4000));
    out
}

/// A short 1 kHz beep (before recording, after an announcement).
pub fn beep() -> Vec<i16> {
    tone(&[1000.0], 200, DEFAULT_AMPLITUDE)
}

/// The DTMF tone of a digit for `duration_ms`.
pub fn dtmf_tone(digit: Digit, duration_ms: u32) -> Vec<i16> {
    let (low, high) = digit.frequencies_hz();
    tone(&[low, high], duration_ms, DEFAULT_AMPLITUDE)
}

/// A gentle melody for music on hold: a major arpeggio and back, each note 250 ms with a
/// fifth above it quietly, then a rest. About 2.5 s; loops well.
pub fn hold_melody() -> Vec<i16> {
    // C5 E5 G5 C6 G5 E5 C5 (equal temperament, A4 = 440 Hz).
    const NOTES_HZ: [f64; 7] = [523.25, 659.25, 783.99, 1046.50, 783.99, 659.25, 523.25];
    let mut out = Vec::new();
    for note in NOTES_HZ {
        out.extend(tone(&[note], 250, DEFAULT_AMPLITUDE));
        out.extend(silence(50));
    }
    out.extend(silence(400));
    out
}

/// Spoken-digit stand-ins for announcements ("you are caller number ..."): each digit is a
/// short tone pattern of its own (n beeps of 100 ms for n, ten for 0), so fragments can be
/// assembled and checked without recorded speech.
pub fn number_fragment(value: u8) -> Vec<i16> {
    let beeps = if value == 0 { 10 } else { value.min(9) };
    let mut out = Vec::new();
    for _ in 0..beeps {
        out.extend(tone(&[880.0], 100, DEFAULT_AMPLITUDE));
        out.extend(silence(60));
    }
    out.extend(silence(240));
    out
}

/// The built-in prompts, by name: what a relay offers before anything is configured.
pub fn builtin_prompts() -> Vec<(String, Vec<i16>)> {
    let mut prompts = vec![
        ("ringback".to_string(), ringback_cadence()),
        ("beep".to_string(), beep()),
        ("hold-music".to_string(), hold_melody()),
        ("silence-1s".to_string(), silence(1000)),
    ];
    for value in 0..=9u8 {
        prompts.push((format!("number-{value}"), number_fragment(value)));
    }
    prompts
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Relative power of `frequency_hz` in `samples` (Goertzel), normalised by length.
    pub(crate) fn power_at(samples: &[i16], frequency_hz: f64) -> f64 {
        let coefficient =
            2.0 * (2.0 * std::f64::consts::PI * frequency_hz / f64::from(SAMPLE_RATE_HZ)).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for sample in samples {
            let s0 = f64::from(*sample) + coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / (samples.len() as f64).powi(2)
    }

    #[test]
    fn lengths() {
        assert_eq!(silence(20).len(), 160);
        assert_eq!(beep().len(), 1600);
        assert_eq!(ringback_cadence().len(), 40_000);
        assert_eq!(hold_melody().len(), (7 * 300 + 400) * 8);
        assert_eq!(number_fragment(3).len(), (3 * 160 + 240) * 8);
        assert_eq!(builtin_prompts().len(), 14);
    }

    #[test]
    fn dtmf_tones_carry_their_two_frequencies() {
        for c in ['1', '5', '9', '0', '*', '#', 'D'] {
            let digit = Digit::from_char(c).expect("digit");
            let (low, high) = digit.frequencies_hz();
            let samples = dtmf_tone(digit, 100);
            let on_low = power_at(&samples, low);
            let on_high = power_at(&samples, high);
            let off = power_at(&samples, 1100.0);
            assert!(
                on_low > 50.0 * off && on_high > 50.0 * off,
                "{c}: {on_low} {on_high} {off}"
            );
        }
    }

    #[test]
    fn tones_do_not_clip_and_fade() {
        let samples = tone(&[697.0, 1209.0], 100, DEFAULT_AMPLITUDE);
        assert_eq!(samples[0], 0);
        assert!(samples.iter().all(|s| s.unsigned_abs() < 32000));
        assert!(samples.iter().any(|s| s.unsigned_abs() > 5000));
    }
}
