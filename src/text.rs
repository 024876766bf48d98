//! Small pure helpers for console text: escaping untrusted text and formatting
//! times. No clock reads: times come in as arguments.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

/// Characters that change how text is shown without being shown themselves:
/// every format character (Unicode category Cf: bidi embeddings, overrides and
/// isolates, zero-width characters, the soft hyphen, tags, …), the line and
/// paragraph separators, and blank fillers that look like nothing. Inclusive
/// ranges, sorted.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound and piastre marks above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x115F, 0x1160),   // Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),   // Khmer inherent vowels
    (0x180B, 0x180F),   // Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),   // zero-width space, non-joiner, joiner; LRM, RLM
    (0x2028, 0x2029),   // line and paragraph separators
    (0x202A, 0x202E),   // bidi embeddings and overrides
    (0x2060, 0x2064),   // word joiner, invisible operators
    (0x2066, 0x206F),   // bidi isolates, deprecated format characters
    (0x3164, 0x3164),   // Hangul filler
    (0xFE00, 0xFE0F),   // variation selectors
    (0xFEFF, 0xFEFF),   // zero-width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),   // halfwidth Hangul filler
    (0xFFF9, 0xFFFB),   // interlinear annotation
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0001, 0xE0001), // language tag
    (0xE0020, 0xE007F), // tag characters
    (0xE0100, 0xE01EF), // variation selectors supplement
];

/// Whether `c` is one of [`INVISIBLE`].
fn invisible(c: char) -> bool {
    let c = c as u32;
    INVISIBLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `s` with every control character (`\n`, `\t`, `\x1b`, `\u{9b}`, …) and every
/// invisible or bidi format character (`\u{202e}`, `\u{200b}`, …) escaped, so
/// text from a peer or a script can never move the cursor, reorder what is
/// shown, hide a part of itself or forge a console line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The first µs since the Unix epoch that RFC 3339 (four-digit years) cannot
/// write: 10000-01-01T00:00:00Z.
pub const RFC3339_END: u64 = 253_402_300_800_000_000;

/// A wall-clock time given as µs since the Unix epoch, in RFC 3339 (UTC, ms).
/// Total: a time past year 9999 (only a peer's bad clock or a lie) is written
/// as seconds since the epoch instead.
pub fn rfc3339(micros: u64) -> String {
    if micros >= RFC3339_END {
        return format!(
            "{}.{:06}s after 1970-01-01T00:00:00Z",
            micros / 1_000_000,
            micros % 1_000_000
        );
    }
    let t = UNIX_EPOCH + Duration::from_micros(micros);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A duration for people: `3h 2m 1s`, `250ms`, `1.234ms` below one millisecond
/// precision is dropped above one second.
pub fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    } else if d >= Duration::from_millis(10) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}ms", d.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_control_character() {
        assert_eq!(escape("a\nb\tc\x1b[31m\\"), "a\\nb\\tc\\x1b[31m\\\\");
        assert_eq!(escape("\u{9b}x\u{7f}"), "\\u{9b}x\\x7f");
        assert_eq!(escape("grüß dich"), "grüß dich");
        for b in 0u8..0x20 {
            let e = escape(&(b as char).to_string());
            assert!(e.starts_with('\\'), "{b}: {e}");
        }
    }

    #[test]
    fn escapes_bidi_and_invisible_characters() {
        // A right-to-left override would show "evil.exe" as "exe.live"; zero-width
        // and isolate characters would hide or reorder parts of a line.
        assert_eq!(escape("a\u{202e}b"), "a\\u{202e}b");
        for c in [
            '\u{ad}',
            '\u{61c}',
            '\u{180e}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{206f}',
            '\u{feff}',
            '\u{fff9}',
            '\u{110bd}',
            '\u{1343f}',
            '\u{1bca0}',
            '\u{1d173}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e007f}',
            '\u{3164}',
        ] {
            let e = escape(&format!("x{c}y"));
            assert_eq!(e, format!("x\\u{{{:x}}}y", c as u32), "U+{:04X}", c as u32);
        }
        // Neighbours of the ranges are ordinary text.
        for c in [
            '\u{ac}', '\u{ae}', '\u{2010}', '\u{2027}', '\u{2065}', '\u{2070}', 'é', '中',
        ] {
            assert_eq!(escape(&c.to_string()), c.to_string(), "U+{:04X}", c as u32);
        }
        // The table is sorted and its ranges do not overlap (the search needs it).
        for w in INVISIBLE.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:x?}");
        }
    }

    #[test]
    fn every_time_formats_without_panicking() {
        for micros in [
            0,
            1,
            RFC3339_END - 1,
            RFC3339_END,
            u64::MAX / 2,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let s = rfc3339(micros);
            assert!(!s.is_empty());
        }
        assert_eq!(rfc3339(RFC3339_END - 1), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339(u64::MAX),
            "18446744073709.551615s after 1970-01-01T00:00:00Z"
        );
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(u64::MAX),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert!(!human(d).is_empty());
        }
    }

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123_456), "2023-11-14T22:13:20.123Z");
        assert_eq!(human(Duration::from_secs(3723)), "1h 2m 3s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_micros(1234)), "1.234ms");
    }
}
