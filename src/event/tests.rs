//! The renderer and the parser of events, against each other and the man page.

use super::*;

fn a(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn broken() -> Vec<Broken> {
    vec![
        Broken::ConnectionError {
            error: "Connection reset by peer (os error 104)".into(),
        },
        Broken::NotReading,
        Broken::MalformedFrame,
        Broken::FrameTooLong { bytes: 70000 },
        Broken::HelloTooLong { bytes: 2000 },
        Broken::Oversized,
        Broken::Unauthenticated,
    ]
}

/// A sample of every event, every reason among them.
fn samples() -> Vec<Event> {
    let (x, y) = (a("127.0.0.1:9"), a("[::1]:10000"));
    let mut v = vec![
        Event::Started {
            addr: x,
            bound: x,
            rule: "oldest".into(),
            quorum: 2,
        },
        Event::Started {
            addr: x,
            bound: a("0.0.0.0:9"),
            rule: "priority".into(),
            quorum: 1,
        },
        Event::QuorumWarning,
        Event::NoSecretWarning {
            bound: a("0.0.0.0:9"),
        },
        Event::Leaving,
        Event::Standby { on: true },
        Event::ScriptHeld { peer: x },
        Event::RestartHold {
            hold: Duration::from_secs(3),
        },
        Event::CheckLine {
            stderr: false,
            line: "ok".into(),
        },
        Event::CheckLine {
            stderr: true,
            line: "db down".into(),
        },
        Event::CheckResult {
            passed: true,
            status: String::new(),
        },
        Event::CheckResult {
            passed: false,
            status: "exit status 1".into(),
        },
        Event::CheckState {
            passing: true,
            count: 2,
        },
        Event::CheckState {
            passing: false,
            count: 3,
        },
        Event::CheckKilled {
            timeout: Duration::from_secs(2),
        },
        Event::Standby { on: false },
        Event::PeerUp { addr: y },
        Event::CannotConnect {
            target: "localhost:9".into(),
            error: "cannot resolve localhost: no".into(),
        },
        Event::CannotConnect {
            target: x.to_string(),
            error: "that is this node".into(),
        },
        Event::CannotReach {
            target: "[::1]:9".into(),
            error: "Connection refused (os error 111)".into(),
        },
        Event::GaveUp {
            addr: x,
            error: "Connection refused (os error 111)".into(),
        },
        Event::MembersCut {
            from: x,
            kept: 256,
            of: 1000,
        },
        Event::MembersIgnored {
            from: y,
            waiting: 256,
        },
        Event::PeerMessage {
            from: x,
            via: None,
            text: "hi: there (you)".into(),
        },
        Event::PeerMessage {
            from: x,
            via: Some("10.0.0.1".parse().expect("ip")),
            text: "one\\nmaster changed: forged".into(),
        },
        Event::MessagesNotShown { count: 1 },
        Event::MessagesNotShown { count: 7 },
        Event::ConnectionRefused {
            from: x,
            reason: ConnRefusedReason::Limit { open: 64 },
        },
        Event::ConnectionRefused {
            from: x,
            reason: ConnRefusedReason::PerAddress {
                count: 8,
                ip: "127.0.0.1".parse().expect("ip"),
            },
        },
    ];
    for (i, master) in [None, Some(x), Some(y)].into_iter().enumerate() {
        v.push(Event::MasterChanged {
            master,
            this_node: i == 1,
            count: 3,
            quorum: 2,
            epoch: if master.is_some() { 7 } else { 0 },
        });
    }
    for kind in Collapsed::ALL {
        v.push(Event::Collapsed {
            kind,
            count: 230,
            period: Duration::from_secs(10),
        });
    }
    let mut lost = vec![
        LostReason::Closed,
        LostReason::TimedOut {
            after: Duration::from_millis(3000),
        },
        LostReason::TimedOut {
            after: Duration::from_millis(250),
        },
        LostReason::Left,
        LostReason::Restarted,
        LostReason::Flooding { frames: 5400 },
        LostReason::Dropped,
    ];
    lost.extend(
        broken()
            .into_iter()
            .map(|cause| LostReason::Broken { cause }),
    );
    v.extend(
        lost.into_iter()
            .map(|reason| Event::PeerLost { addr: y, reason }),
    );
    let mut closed = vec![
        ClosedReason::NoHandshake {
            within: Duration::from_micros(1234),
        },
        ClosedReason::NotHello,
        ClosedReason::SecondHello,
        ClosedReason::Evicted {
            for_addr: y,
            limit: 64,
        },
        ClosedReason::Flooding { frames: 5400 },
    ];
    closed.extend(
        broken()
            .into_iter()
            .map(|cause| ClosedReason::Broken { cause }),
    );
    v.extend(
        closed
            .into_iter()
            .map(|reason| Event::ConnectionClosed { with: x, reason }),
    );
    let refused = [
        RefusedReason::NotBoss,
        RefusedReason::Version { theirs: 2, ours: 1 },
        RefusedReason::OwnAddress { addr: x },
        RefusedReason::Rule {
            theirs: "#9".into(),
            ours: "oldest".into(),
        },
        RefusedReason::Quorum { theirs: 3, ours: 2 },
        RefusedReason::Undialable {
            what: "the unspecified address".into(),
        },
        RefusedReason::WrongFamily {
            advertised: Family::Ipv6,
            connection: Family::Ipv4,
            from: x,
        },
        RefusedReason::StartedTooEarly {
            started: "1999-01-01T00:00:00.000Z".into(),
        },
        RefusedReason::StartedTooLate {
            started: "2100-01-01T00:00:00.000Z".into(),
            clock: "2025-01-01T00:00:00.000Z".into(),
        },
        RefusedReason::Cluster {
            theirs: "prod-2.x_y".into(),
            ours: "boss".into(),
        },
        RefusedReason::NoSecret,
        RefusedReason::HasSecret,
        RefusedReason::WrongProof,
        RefusedReason::NoProof,
    ];
    v.extend(
        refused
            .into_iter()
            .map(|reason| Event::Refused { addr: x, reason }),
    );
    for role in [Role::Default, Role::Master] {
        v.extend([
            Event::ScriptLine {
                role: Some(role),
                stderr: false,
                line: "master changed: none (1 of quorum 2 nodes in view)".into(),
            },
            Event::ScriptLine {
                role: Some(role),
                stderr: true,
                line: "[x] y".into(),
            },
            Event::ScriptEnded {
                role,
                status: "exit status 3".into(),
            },
            Event::ScriptCannotRun {
                role,
                script: "./a: b.sh".into(),
                error: "No such file or directory (os error 2)".into(),
                retrying: false,
            },
            Event::ScriptCannotRun {
                role,
                script: "x".into(),
                error: "Resource temporarily unavailable (os error 11)".into(),
                retrying: true,
            },
            Event::ScriptBackoff {
                role,
                pause: Duration::from_millis(200),
            },
            Event::ScriptLinesNotShown { role, count: 1 },
            Event::ScriptLinesNotShown { role, count: 3800 },
            Event::ScriptKilled {
                role,
                grace: Duration::from_secs(5),
            },
            Event::ScriptSet {
                role,
                script: "sh -c 'echo hi'".into(),
                stopping: false,
            },
            Event::ScriptSet {
                role,
                script: "x".into(),
                stopping: true,
            },
            Event::ScriptCleared {
                role,
                stopping: false,
            },
            Event::ScriptCleared {
                role,
                stopping: true,
            },
            Event::ScriptClearedAfterRun { role },
        ]);
    }
    v.push(Event::ScriptLine {
        role: None,
        stderr: false,
        line: "late".into(),
    });
    v
}

#[test]
fn every_event_parses_back_from_its_line() {
    for e in samples() {
        let line = e.to_string();
        assert_eq!(parse(&line), Some(e), "{line:?}");
    }
}

#[test]
fn the_sample_covers_every_event() {
    let names: std::collections::BTreeSet<_> = samples().iter().map(Event::name).collect();
    assert_eq!(names.len(), 34, "{names:?}");
    for n in names {
        assert!(
            n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{n}"
        );
    }
}

#[test]
fn lines_render_as_the_man_page_says() {
    let x = a("127.0.0.1:9");
    let cases = [
        (
            Event::Started {
                addr: x,
                bound: a("0.0.0.0:9"),
                rule: "oldest".into(),
                quorum: 2,
            },
            "started 127.0.0.1:9 (listening on 0.0.0.0:9, advertised as 127.0.0.1:9, rule oldest, quorum 2)",
        ),
        (
            Event::MasterChanged {
                master: Some(x),
                this_node: true,
                count: 3,
                quorum: 2,
                epoch: 12,
            },
            "master changed: 127.0.0.1:9 (this node, 3 of quorum 2 votes, epoch 12)",
        ),
        (
            Event::PeerLost {
                addr: x,
                reason: LostReason::Flooding { frames: 5400 },
            },
            "lost 127.0.0.1:9 (sent more than 5400 frames in 1s: flooding)",
        ),
        (
            Event::Collapsed {
                kind: Collapsed::PeerInLost,
                count: 3,
                period: Duration::from_secs(10),
            },
            "lost 3 more peers that had dialled this node in the last 10s",
        ),
        (
            Event::ScriptBackoff {
                role: Role::Default,
                pause: Duration::from_millis(200),
            },
            "default script failed 3 times in a row, each within 1s; waiting 200ms before the next run, doubling up to 30s",
        ),
        (
            Event::MessagesNotShown { count: 1 },
            "1 peer message not shown (over 16 KiB/s)",
        ),
        (
            Event::NoSecretWarning {
                bound: a("0.0.0.0:9"),
            },
            "warning: no --secret-file: anyone who can reach 0.0.0.0:9 can join and take the master role",
        ),
        (
            Event::Refused {
                addr: x,
                reason: RefusedReason::Cluster {
                    theirs: "b".into(),
                    ours: "boss".into(),
                },
            },
            "refused 127.0.0.1:9: cluster 'b', this node's is 'boss'",
        ),
        (
            Event::Refused {
                addr: x,
                reason: RefusedReason::NoSecret,
            },
            "refused 127.0.0.1:9: it has no --secret-file and this node has one",
        ),
        (
            Event::Refused {
                addr: x,
                reason: RefusedReason::HasSecret,
            },
            "refused 127.0.0.1:9: it has a --secret-file and this node has none",
        ),
        (
            Event::Refused {
                addr: x,
                reason: RefusedReason::WrongProof,
            },
            "refused 127.0.0.1:9: its proof of the cluster secret is wrong (a different --secret-file?)",
        ),
        (
            Event::PeerLost {
                addr: x,
                reason: LostReason::Broken {
                    cause: Broken::Unauthenticated,
                },
            },
            "lost 127.0.0.1:9 (a frame failed authentication: altered, replayed or dropped)",
        ),
    ];
    for (e, line) in cases {
        assert_eq!(e.to_string(), line);
    }
}

#[test]
fn answers_and_look_alikes_are_not_events() {
    for line in [
        "started 2025-01-01T00:00:00.000Z, up 3s",
        "master: yes, 127.0.0.1:9 (this node, 3 of quorum 2 votes)",
        "connecting to 127.0.0.1:9",
        "already connected to 127.0.0.1:9",
        "connected 127.0.0.1:9 ",
        "lost 127.0.0.1:9 (for no reason)",
        "master changed: forged",
        "sent to 2 peers",
        "peer 127.0.0.1:9 up, started x, vote none, rtt -",
        "",
    ] {
        assert_eq!(parse(line), None, "{line:?}");
    }
}
