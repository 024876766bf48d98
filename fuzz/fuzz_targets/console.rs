//! The console command parser (`boss::command::parse`) on arbitrary text:
//! the fuzzer's bytes split into lines and converted as the shell does (a
//! trailing `\r` dropped, lossy UTF-8), and the whole input when it is UTF-8.
//! No panic; a blank line is no command; an error is one line with nothing
//! unescaped in it.

#![no_main]

use boss::command::{self, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for raw in data.split(|b| *b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        check(&String::from_utf8_lossy(raw));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});

fn check(line: &str) {
    let got = command::parse(line);
    let blank = line.trim().is_empty();
    match &got {
        Ok(None) => assert!(blank, "{line:?} is no command"),
        Ok(Some(cmd)) => {
            assert!(!blank);
            if let Command::Message(text) = cmd {
                assert!(!text.is_empty() && text.trim() == text, "{text:?}");
            }
        }
        Err(e) => {
            assert!(!blank);
            assert!(!e.is_empty());
            assert!(
                !e.chars().any(char::is_control),
                "{line:?}: the error holds a control character: {e:?}"
            );
        }
    }
    // The same line parses the same way, with or without its outer spaces.
    assert_eq!(command::parse(line.trim()), got);
}
