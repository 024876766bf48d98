//! The control socket's request parser (`boss::shell::control::parse_request`)
//! on a client's line as the shell reads it: up to the first newline, at most
//! `MAX_REQUEST` bytes, UTF-8 or refused. No panic; an error is one line with
//! nothing unescaped in it; a `ctl` request carries a trimmed, non-empty
//! console line, which the console parser then takes.

#![no_main]

use boss::shell::control::{self, Ask, MAX_REQUEST, REQUESTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = match data.iter().position(|b| *b == b'\n') {
        Some(end) => &data[..end],
        None => data,
    };
    if line.len() >= MAX_REQUEST {
        return;
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    match control::parse_request(line) {
        Ok(Ask::Ctl(cmd)) => {
            assert!(line.starts_with("ctl "), "{line:?}");
            assert!(!cmd.is_empty() && cmd.trim() == cmd, "{cmd:?}");
            let _ = boss::command::parse(&cmd);
        }
        Ok(ask) => {
            let bare = line.strip_suffix('\r').unwrap_or(line);
            assert!(REQUESTS.contains(&bare), "{line:?} is {ask:?}");
        }
        Err(e) => {
            assert!(!e.chars().any(char::is_control), "{line:?}: {e:?}");
        }
    }
});
