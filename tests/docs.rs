//! Keeps the man page, `--help`, the console's `-h` and the README in step with
//! the code: a flag, command or exit status that is not documented fails here.

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
