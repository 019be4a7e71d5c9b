//! Input hygiene of free text (the front door): names and other one-line
//! text refuse every control character (C0, DEL and C1), descriptions
//! allow line breaks and tabs but no other control character, and neither
//! takes the Unicode bidirectional controls that reorder what a reader sees
//! (embeddings, overrides and isolates, U+202A-U+202E and U+2066-U+2069;
//! the "Trojan Source" characters). Every string field has a maximum
//! length in characters, named in the refusal with the field.

use super::refusal::{Checked, Refusal, RefusalCode};

/// One line of text (names, codes, labels).
pub const LINE: Text = Text {
    max_chars: 200,
    multiline: false,
};
/// A short identifier-like field (prompt and music names, codes).
pub const SHORT: Text = Text {
    max_chars: 64,
    multiline: false,
};
/// Free text over several lines (descriptions).
pub const DESCRIPTION: Text = Text {
    max_chars: 2_000,
    multiline: true,
};
/// An id a client chooses (queue entries, terminals).
pub const ID: Text = Text {
    max_chars: 128,
    multiline: false,
};
/// A URL.
pub const URL: Text = Text {
    max_chars: 2_048,
    multiline: false,
};

/// What a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    /// Most characters (Unicode scalar values).
    pub max_chars: usize,
    /// Line breaks (CR, LF) and tabs allowed.
    pub multiline: bool,
}

/// Whether `c` is a bidirectional embedding, override or isolate.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl Text {
    /// Checks `value` of the field `field`; the refusal names both the
    /// field and the rule.
    pub fn check(self, field: &str, value: &str) -> Checked<()> {
        let allowed = |c: char| self.multiline && matches!(c, '\n' | '\r' | '\t');
        if let Some((at, c)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !allowed(*c))
        {
            return Err(Refusal::new(
                RefusalCode::TextControlCharacter,
                format!(
                    "{field}: control character U+{:04X} at position {at} (no C0/C1 control \
                     characters{})",
                    u32::from(c),
                    if self.multiline {
                        " but line breaks and tabs"
                    } else {
                        ", no line breaks"
                    }
                ),
            ));
        }
        if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| is_bidi_control(*c)) {
            return Err(Refusal::new(
                RefusalCode::TextBidiControl,
                format!(
                    "{field}: bidirectional control U+{:04X} at position {at} (embeddings, \
                     overrides and isolates reorder what a reader sees)",
                    u32::from(c)
                ),
            ));
        }
        let chars = value.chars().count();
        if chars > self.max_chars {
            return Err(Refusal::new(
                RefusalCode::TextTooLong,
                format!("{field}: {chars} characters, at most {}", self.max_chars),
            ));
        }
        Ok(())
    }
}

/// [`Text::check`] for an optional field.
pub fn check_opt(text: Text, field: &str, value: Option<&str>) -> Checked<()> {
    value.map_or(Ok(()), |v| text.check(field, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_strings_name_their_rule() {
        let cases: &[(Text, &str, Option<RefusalCode>)] = &[
            (LINE, "Support Praha", None),
            (LINE, "Żółć Ěšč ünïcödé 日本", None),
            (
                LINE,
                "nul\u{0}inside",
                Some(RefusalCode::TextControlCharacter),
            ),
            (LINE, "bell\u{7}", Some(RefusalCode::TextControlCharacter)),
            (LINE, "del\u{7f}", Some(RefusalCode::TextControlCharacter)),
            (
                LINE,
                "c1\u{85}next-line",
                Some(RefusalCode::TextControlCharacter),
            ),
            (LINE, "c1\u{9b}csi", Some(RefusalCode::TextControlCharacter)),
            (LINE, "two\nlines", Some(RefusalCode::TextControlCharacter)),
            (LINE, "tab\there", Some(RefusalCode::TextControlCharacter)),
            (DESCRIPTION, "two\r\nlines\tand a tab", None),
            (
                DESCRIPTION,
                "but no\u{1b}[31m escape",
                Some(RefusalCode::TextControlCharacter),
            ),
            (
                LINE,
                "admin\u{202E}gpj.exe",
                Some(RefusalCode::TextBidiControl),
            ),
            (
                LINE,
                "\u{2066}isolate\u{2069}",
                Some(RefusalCode::TextBidiControl),
            ),
            (DESCRIPTION, "x\u{202A}", Some(RefusalCode::TextBidiControl)),
            // Marks (U+200E/F) do not reorder text on their own: allowed.
            (LINE, "שלום\u{200F}", None),
            (SHORT, &"a".repeat(64), None),
            (SHORT, &"a".repeat(65), Some(RefusalCode::TextTooLong)),
            // Characters, not bytes: 200 two-byte letters are one line.
            (LINE, &"ž".repeat(200), None),
            (LINE, &"ž".repeat(201), Some(RefusalCode::TextTooLong)),
        ];
        for (text, value, expected) in cases {
            let got = text.check("name", value).err();
            assert_eq!(
                got.as_ref().map(|r| r.code),
                *expected,
                "{value:?}: {got:?}"
            );
            if let Some(r) = got {
                assert!(
                    r.message.starts_with("V6: name: "),
                    "names the rule and the field: {}",
                    r.message
                );
            }
        }
    }
}
