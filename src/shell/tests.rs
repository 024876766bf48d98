use super::console::{Line, Lines, MAX_CONSOLE_LINE};
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn poll_timeout_rounds_up_to_whole_milliseconds() {
    assert_eq!(wait_for(None, ms(5)), None);
    assert_eq!(wait_for(Some(ms(10)), ms(4)), Some(ms(6)));
    assert_eq!(
        wait_for(Some(ms(10)), ms(9) + Duration::from_micros(999)),
        Some(ms(1)),
        "a sub-millisecond remainder must not become a zero timeout"
    );
    assert_eq!(wait_for(Some(ms(10)), ms(10)), Some(ms(0)));
    assert_eq!(wait_for(Some(ms(10)), ms(30)), Some(ms(0)));
}

fn split(chunks: &[&[u8]]) -> Vec<Line> {
    let mut lines = Lines::default();
    let mut out = Vec::new();
    for c in chunks {
        lines.push(c, &mut out);
    }
    lines.finish(&mut out);
    out
}

fn text(s: &str) -> Line {
    Line::Text(s.into())
}

#[test]
fn lines_split_on_newline_and_drop_carriage_returns() {
    assert_eq!(split(&[b"-m\n-cn\r\n"]), vec![text("-m"), text("-cn")]);
    assert_eq!(
        split(&[b"-m", b"sg hi\r", b"\n-q"]),
        vec![text("-msg hi"), text("-q")]
    );
    assert_eq!(split(&[b"\n\n"]), vec![text(""), text("")]);
    assert_eq!(split(&[b""]), vec![]);
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(split(&[b"-msg \xff!\n"]), vec![text("-msg \u{fffd}!")]);
}

#[test]
fn a_line_at_the_limit_is_kept_and_a_longer_one_dropped_whole() {
    let at = vec![b'a'; MAX_CONSOLE_LINE];
    let got = split(&[&at, b"\r\n-m\n"]);
    assert_eq!(
        got,
        vec![Line::Text("a".repeat(MAX_CONSOLE_LINE)), text("-m")]
    );

    let over = vec![b'b'; MAX_CONSOLE_LINE + 1];
    assert_eq!(split(&[&over, b"\n-m\n"]), vec![Line::TooLong, text("-m")]);

    // Reported once, as soon as it is too long, however many reads it spans.
    let chunk = vec![b'c'; MAX_CONSOLE_LINE / 2];
    let got = split(&[&chunk, &chunk, &chunk, &chunk, b"tail\n-t\n"]);
    assert_eq!(got, vec![Line::TooLong, text("-t")]);

    // A too-long last line without a newline is not fed at EOF either.
    assert_eq!(split(&[&over]), vec![Line::TooLong]);
}
