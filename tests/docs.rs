//! Keeps the man page, `--help`, the console's `-h` and the README in step with
//! the code: a flag, command, exit status or console line that is not
//! documented fails here.

use std::process::Command;

fn man() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/boss.1");
    // roff escapes dashes; compare in plain text.
    std::fs::read_to_string(path)
        .expect("man/boss.1 is readable")
        .replace("\\-", "-")
}

fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_boss"))
        .arg("--help")
        .output()
        .expect("boss --help runs");
    assert!(out.status.success(), "boss --help exits 0");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Every `--long-flag` that `--help` lists.
fn long_flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-h, ")
                .or_else(|| l.strip_prefix("-V, "))
                .unwrap_or(l);
            let flag = l.split([' ', ',']).next()?;
            (flag.starts_with("--") && flag.len() > 2).then(|| flag.to_string())
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// The man page's section `name`, up to the next `.SH`.
fn section(man: &str, name: &str) -> String {
    let start = man
        .find(&format!(".SH {name}"))
        .unwrap_or_else(|| panic!("man page has no {name} section"));
    let rest = &man[start + 4..];
    rest[..rest.find("\n.SH ").unwrap_or(rest.len())].to_string()
}

#[test]
fn every_flag_is_in_the_man_page_options() {
    let help = help();
    let flags = long_flags(&help);
    assert!(
        flags.len() >= 15,
        "found too few flags in --help: {flags:?}"
    );
    let options = section(&man(), "OPTIONS");
    for f in &flags {
        assert!(
            options.contains(&format!(".B {f}"))
                || options.contains(&format!(".BR {f}"))
                || options.contains(&format!("\", \" {f}"))
                || options.contains(&format!("\" {f}")),
            "{f} is in --help but not an item of the man page's OPTIONS"
        );
    }
    // The original's script form too.
    for f in ["-ds", "-ms"] {
        assert!(
            options.contains(&format!(".B {f} ")),
            "{f} missing from OPTIONS"
        );
    }
}

#[test]
fn every_man_page_flag_exists() {
    let flags = long_flags(&help());
    let options = section(&man(), "OPTIONS");
    for line in options
        .lines()
        .filter(|l| l.starts_with(".B --") || l.starts_with(".BR --"))
    {
        let flag = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .trim_matches('"')
            .trim_end_matches(',');
        assert!(
            flags.iter().any(|f| f == flag),
            "the man page documents {flag}, which --help does not list"
        );
    }
}

#[test]
fn every_console_command_is_in_the_man_page_and_the_readme() {
    let commands = section(&man(), "CONSOLE COMMANDS");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for (usage, _) in boss::command::COMMANDS {
        let cmd = usage.split_whitespace().next().unwrap_or(usage);
        assert!(
            commands.contains(&format!(".B {cmd}\n")) || commands.contains(&format!(".B {cmd} ")),
            "console command {cmd} is not an item of the man page's CONSOLE COMMANDS"
        );
        assert!(
            readme.contains(&format!("`{cmd}")),
            "console command {cmd} is not in README.md"
        );
    }
}

#[test]
fn every_client_subcommand_is_in_the_synopsis_its_section_and_the_readme() {
    let man = man();
    let synopsis = section(&man, "SYNOPSIS");
    let subcommands = section(&man, "CLIENT SUBCOMMANDS");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let help = help();
    for sub in boss::client::SUBCOMMANDS {
        assert!(
            synopsis.contains(&format!(".B boss {sub}\n")),
            "boss {sub} is not in the man page's SYNOPSIS"
        );
        assert!(
            subcommands.contains(&format!(".B boss {sub}")),
            "boss {sub} is not an item of the man page's CLIENT SUBCOMMANDS"
        );
        assert!(
            readme.contains(&format!("boss {sub}")),
            "boss {sub} is not in README.md"
        );
        assert!(
            help.contains(&format!("boss {sub}")),
            "boss {sub} is not in --help"
        );
    }
}

#[test]
fn every_control_request_and_state_key_is_in_the_man_page() {
    let man = man();
    let socket = section(&man, "CONTROL SOCKET");
    for r in boss::shell::control::REQUESTS {
        assert!(
            socket.contains(&format!(".B {r}\n")) || socket.contains(&format!(".B {r} ")),
            "request {r} is not an item of the man page's CONTROL SOCKET"
        );
    }
    let state = tag_words(&section(&man, "STATE FILE"));
    for k in boss::shell::state::KEYS {
        assert!(
            state.iter().any(|t| t == k),
            "state file key {k} is not an item of the man page's STATE FILE"
        );
    }
}

/// The words of the item tags (the line after each `.TP`) of a man section.
fn tag_words(section: &str) -> Vec<String> {
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .flat_map(|w| {
            w[1].trim_start_matches(".BR")
                .trim_start_matches(".B")
                .replace("\", \"", " ")
                .split_whitespace()
                .map(|t| t.trim_matches('"').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_status_json_field_is_in_the_man_page() {
    use boss::node::{PeerStatus, Role, ScriptStatus, Status};
    let status = Status {
        schema: 1,
        node: "127.0.0.1:9000".parse().unwrap(),
        cluster: "boss".into(),
        role: Role::Default,
        master: None,
        epoch: 0,
        no_master: None,
        vote: None,
        votes: 0,
        quorum: 2,
        in_view: 1,
        standby: false,
        rule: "oldest".into(),
        priority: 0,
        started: String::new(),
        uptime_ms: 0,
        leaving: false,
        peers: vec![PeerStatus {
            addr: String::new(),
            link: "up",
            started: None,
            master: false,
            vote: None,
            standby: false,
            rtt_ms: None,
            state: None,
        }],
        script: ScriptStatus {
            state: "idle",
            role: None,
            default_script: None,
            master_script: None,
            looping: true,
        },
    };
    let json = serde_json::to_value(&status).unwrap();
    let schema = section(&man(), "STATUS JSON");
    let tags = tag_words(&schema);
    for field in json.as_object().unwrap().keys() {
        assert!(
            tags.contains(field),
            "status field {field} is not an item of the man page's STATUS JSON"
        );
    }
    // The fields of a peer and of the script are named in their items' text.
    let nested = [&json["peers"][0], &json["script"]];
    for obj in nested {
        for field in obj.as_object().unwrap().keys() {
            assert!(
                schema.contains(&format!("\\fB{field}\\fR")),
                "status field {field} is not in the man page's STATUS JSON"
            );
        }
    }
}

#[test]
fn every_exit_status_is_documented() {
    let help = help();
    let tail = &help[help
        .find("Exit status:")
        .expect("--help lists the exit statuses")..];
    let codes: Vec<&str> = tail
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(codes, ["0", "1", "2", "3"], "--help exit statuses");
    let man = section(&man(), "EXIT STATUS");
    for c in codes {
        assert!(
            man.contains(&format!(".B {c}\n")),
            "exit status {c} is not in the man page"
        );
    }
}

#[test]
fn the_man_page_renders_without_warnings() {
    // groff-base ships with the machine image; .ci/run installs it where missing.
    let out = Command::new("groff")
        .args(["-man", "-ww", "-z"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/man/boss.1"))
        .output()
        .expect("groff runs (apt-get install groff-base)");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.trim().is_empty(),
        "groff warns: {warnings}"
    );
}

// ----- CONSOLE OUTPUT against the source -----

/// The calls whose first argument is a line the node prints: a core output, the
/// core's `say` helper for console answers, the shell's `console.line` and
/// `main`'s `error_line` on stderr. (rustfmt may break `self.console.line(` over
/// lines, so the shell's form is matched as `.line(`.) A line built into a
/// variable first and then passed (`say(line)`, the `-m` answers) is not seen.
const CONSOLE_CALLS: [&str; 4] = ["Output::Console(", "say(", ".line(", "error_line("];

/// The one renderer of events, `impl fmt::Display for Event` in src/event.rs:
/// each `write!(f, …)` and `f.write_str(…)` in it writes a console line or
/// its start (a line written in parts names its fixed words first).
const EVENT_RENDERER: (&str, &str) = ("event.rs", "impl fmt::Display for Event {");

/// Marks the answers to a mistyped console command, wherever they are built:
/// each ends by pointing to `-h`.
const HINT_PLACEHOLDER: &str = "{HINT}";

/// The source files of the crate, tests left out: `src/**/*.rs` without
/// `*_tests.rs` and `tests.rs`, each cut where its `#[cfg(test)] mod` begins,
/// named by their path under `src/`.
fn sources() -> Vec<(String, String)> {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut dirs = vec![root.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("src/ is readable") {
            let p = e.expect("a src/ entry").path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name.ends_with("_tests.rs") || name == "tests.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("a source file is readable");
            let code = without_test_module(&text).to_string();
            let rel = p.strip_prefix(root).expect("under src/");
            files.push((rel.to_string_lossy().into_owned(), code));
        }
    }
    files.sort();
    files
}

/// `code` up to its unit-test module (a `#[cfg(test)]` that opens a `mod`,
/// maybe after more attributes); a `#[cfg(test)]` on anything else does not
/// cut the file short.
fn without_test_module(code: &str) -> &str {
    let opens_a_mod = |after: &str| {
        after
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("#["))
            .is_some_and(|l| l.starts_with("mod "))
    };
    code.match_indices("#[cfg(test)]")
        .find(|(at, attr)| opens_a_mod(&code[at + attr.len()..]))
        .map_or(code, |(at, _)| &code[..at])
}

/// The string literal that `code` starts with (after blanks, a `&` and a
/// `format!(`), unescaped; `None` when the argument is not a literal, say a
/// variable. A raw string `r"…"` is not used for console lines and not parsed.
fn leading_literal(code: &str) -> Option<String> {
    let code = code.trim_start().trim_start_matches('&');
    let code = code.strip_prefix("format!(").unwrap_or(code).trim_start();
    let mut chars = code.strip_prefix('"')?.chars().peekable();
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(text),
            '\\' => match chars.next()? {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                // A line continuation: the next line's leading blanks are skipped.
                '\n' => while chars.next_if(|c| c.is_whitespace()).is_some() {},
                other => text.push(other),
            },
            c => text.push(c),
        }
    }
    None
}

/// Every console-line format string in `code`: the literal first argument of
/// each console call, and every literal that ends with the hint to `-h`.
fn console_formats(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for call in CONSOLE_CALLS {
        for (at, _) in code.match_indices(call) {
            // A call by name must not be the tail of a longer name (`essay(`).
            let before = code[..at].chars().next_back();
            if call.starts_with(char::is_alphabetic)
                && before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            found.extend(leading_literal(&code[at + call.len()..]));
        }
    }
    for (at, _) in code.match_indices("format!(") {
        found.extend(leading_literal(&code[at..]).filter(|f| f.contains(HINT_PLACEHOLDER)));
    }
    found
}

/// The format strings of the event renderer in `code` (see [`EVENT_RENDERER`]):
/// the literal of each `write!(f, …)` and `.write_str(…)` in its body.
fn renderer_formats(code: &str) -> Vec<String> {
    let Some(start) = code.find(EVENT_RENDERER.1) else {
        return Vec::new();
    };
    // Its body ends at the brace that closes the impl (the braces of format
    // placeholders pair up too).
    let body = &code[start..];
    let mut depth = 0usize;
    let end = body.char_indices().find_map(|(i, c)| {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        None
    });
    let body = &body[..end.unwrap_or(body.len())];
    let mut found = Vec::new();
    for (at, call) in body.match_indices("write!(") {
        let args = body[at + call.len()..].trim_start();
        if let Some(rest) = args.strip_prefix('f').map(str::trim_start) {
            found.extend(rest.strip_prefix(',').and_then(leading_literal));
        }
    }
    for (at, call) in body.match_indices(".write_str(") {
        found.extend(leading_literal(&body[at + call.len()..]));
    }
    found
}

/// The fixed words that identify a console line: the first run of literal text
/// between placeholders that holds a word (two letters or more), without the
/// punctuation and blanks around it. `lost {addr} ({reason})` gives `lost`;
/// `{} script ended with {status}` gives `script ended with`; `[{role}] {}`
/// gives nothing, and is not checked.
fn fixed_words(format: &str) -> Option<String> {
    // Placeholders are `{…}`; `{{` and `}}` are literal braces.
    let plain = format.replace("{{", "\u{1}").replace("}}", "\u{2}");
    let mut runs = Vec::new();
    let mut rest = plain.as_str();
    while let Some(open) = rest.find('{') {
        runs.push(&rest[..open]);
        rest = rest[open..]
            .find('}')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    runs.push(rest);
    let has_word = |s: &str| {
        s.split(|c: char| !c.is_alphabetic())
            .any(|w| w.chars().count() >= 2)
    };
    runs.into_iter()
        .map(|r| r.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|r| has_word(r))
        .map(|r| r.replace('\u{1}', "{").replace('\u{2}', "}"))
}

/// The arguments of a roff request line: blank-separated words, or quoted
/// strings that may hold blanks.
fn roff_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    while chars.peek().is_some() {
        while chars.next_if(|c| *c == ' ').is_some() {}
        let arg: String = if chars.next_if_eq(&'"').is_some() {
            chars.by_ref().take_while(|c| *c != '"').collect()
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ' ')).collect()
        };
        out.push(arg);
    }
    out
}

/// One roff line as it reads in plain text: `.B` and `.I` set their arguments
/// apart with blanks, the alternating-font requests (`.BI`, `.BR`, ...) join
/// theirs without; font escapes are dropped and `\e` is a backslash.
fn roff_text(line: &str) -> String {
    let (request, args) = line.split_once(' ').unwrap_or((line, ""));
    let text = match request {
        ".B" | ".I" => roff_args(args).join(" "),
        ".BI" | ".BR" | ".IB" | ".IR" | ".RB" | ".RI" => roff_args(args).concat(),
        _ => line.to_string(),
    };
    let text = ["\\fB", "\\fI", "\\fR", "\\fP", "\\&"]
        .iter()
        .fold(text, |t, esc| t.replace(esc, ""))
        .replace("\\e", "\\");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The item tags of the man page's CONSOLE OUTPUT (the line after each `.TP`
/// or `.TQ`), in plain text.
fn console_output_tags() -> Vec<String> {
    let section = section(&man(), "CONSOLE OUTPUT");
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|w| matches!(w[0].trim(), ".TP" | ".TQ"))
        .map(|w| roff_text(w[1]))
        .collect()
}

#[test]
fn every_console_line_is_in_the_man_page_console_output() {
    let tags = console_output_tags();
    let mut checked = 0;
    let mut missing = Vec::new();
    let mut renderer = 0;
    for (file, code) in sources() {
        let mut formats = console_formats(&code);
        if file == EVENT_RENDERER.0 {
            let rendered = renderer_formats(&code);
            renderer = rendered.len();
            formats.extend(rendered);
        }
        for format in formats {
            let Some(words) = fixed_words(&format) else {
                continue;
            };
            checked += 1;
            // A line that begins with its fixed words must have a tag that
            // begins with them too (after the `boss: ` of a line on stderr).
            let at_start = format.starts_with(&words);
            let documented = tags.iter().any(|t| {
                let t = t.strip_prefix("boss: ").unwrap_or(t);
                if at_start {
                    t.starts_with(&words)
                } else {
                    t.contains(&words)
                }
            });
            if !documented {
                missing.push(format!("src/{file}: \"{format}\" (looked for \"{words}\")"));
            }
        }
    }
    // The scan itself must keep working: today it finds over 50 lines, over
    // 25 of them in the event renderer.
    assert!(checked >= 50, "found only {checked} console lines in src/");
    assert!(
        renderer >= 25,
        "found only {renderer} lines in the event renderer of src/{}",
        EVENT_RENDERER.0
    );
    assert!(
        missing.is_empty(),
        "console lines missing from the item tags of the man page's CONSOLE OUTPUT:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_console_line_scan_reads_the_forms_used_in_src() {
    let code = r#"
        out.push(Output::Console(format!(
            "closed connection with {who}: no handshake within {}",
            human(d)
        )));
        out.push(Output::Console("leaving".into()));
        self.console
            .line(&format!("cannot accept a connection: {e}"));
        say(line);
        essay("not a console line");
        Err(format!("usage: -loop <1|0>; {HINT}"))
        let x = format!("exit status {code}");
    "#;
    assert_eq!(
        console_formats(code),
        [
            "closed connection with {who}: no handshake within {}",
            "leaving",
            "cannot accept a connection: {e}",
            "usage: -loop <1|0>; {HINT}",
        ]
    );
    let renderer = r#"
        impl fmt::Display for Event {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Event::Leaving => f.write_str("leaving"),
                    Event::PeerUp { addr } => write!(f, "connected {addr}"),
                    Event::ScriptKilled { role, grace } => write!(
                        f,
                        "{} script did not stop within {}: killed",
                        role.name(),
                        human(*grace)
                    ),
                }
            }
        }
        impl fmt::Display for Other {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("not a line")
            }
        }
    "#;
    assert_eq!(
        renderer_formats(renderer),
        [
            "connected {addr}",
            "{} script did not stop within {}: killed",
            "leaving"
        ]
    );
    assert_eq!(
        fixed_words("lost {addr} ({reason})").as_deref(),
        Some("lost")
    );
    assert_eq!(
        fixed_words("{} script ended with {status}").as_deref(),
        Some("script ended with")
    );
    assert_eq!(
        fixed_words("'{}' is not a port number (0-65535); {HINT}").as_deref(),
        Some("is not a port number (0-65535")
    );
    assert_eq!(fixed_words("[{role}{stream}] {}"), None);
    assert_eq!(
        without_test_module(
            "a\n#[cfg(test)]\nfn f() {}\nb\n#[cfg(test)]\n#[path = \"x.rs\"]\nmod tests;\n"
        ),
        "a\n#[cfg(test)]\nfn f() {}\nb\n"
    );
    assert_eq!(
        roff_text(r#".BI "lost " addr " (" why )"#),
        "lost addr (why)"
    );
    assert_eq!(roff_text(".B no connections"), "no connections");
    assert_eq!(
        roff_text(r#".B "usage: \-c <ip> <port>""#.replace("\\-", "-").as_str()),
        "usage: -c <ip> <port>"
    );
}
