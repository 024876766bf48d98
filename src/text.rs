//! Small pure helpers for console text: escaping untrusted text and formatting
//! times. No clock reads: times come in as arguments.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

/// `s` with every control character escaped (`\n`, `\t`, `\x1b`, `\u{9b}`, …), so
/// text from a peer or a script can never move the cursor or forge a console line.
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
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A wall-clock time given as µs since the Unix epoch, in RFC 3339 (UTC, ms).
pub fn rfc3339(micros: u64) -> String {
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
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123_456), "2023-11-14T22:13:20.123Z");
        assert_eq!(human(Duration::from_secs(3723)), "1h 2m 3s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_micros(1234)), "1.234ms");
    }
}
