//! Writes the committed seed corpus, `fuzz/seeds/<target>/`, for the
//! targets whose inputs are made of real things: frames, a peer's side of a
//! handshake, console lines and control requests. (The `node` target's seeds
//! are inputs a fuzzing run found, as its bytes are choices, not messages.)
//!
//! cargo +nightly run --manifest-path fuzz/Cargo.toml --example seeds

use boss::election::Rule;
use boss::shell::control::REQUESTS;
use boss::wire::{self, MAGIC, Msg, NodeInfo, VERSION};
use std::net::SocketAddr;
use std::path::Path;

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 7000))
}

fn hello(auth: bool) -> Msg {
    Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr: addr(2),
            started: 1_750_000_000_000_000 - 5_000_000,
            priority: 0,
        },
        rule: Rule::Oldest.code(),
        quorum: 2,
        cluster: "boss".into(),
        nonce: [3; 32],
        auth,
        serial: 0,
    }
}

fn state(seq: u64, vote: SocketAddr) -> Msg {
    Msg::State {
        seq,
        vote: Some(vote),
        master: false,
        eligible: true,
        epoch: 1,
        tied: true,
        script: false,
        held: None,
        ack: 1,
    }
}

fn frames(msgs: &[Msg]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in msgs {
        wire::encode(m, &mut buf).expect("a seed frame encodes");
    }
    buf
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("the seed folder");
    std::fs::write(d.join(name), bytes).expect("a seed file");
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let one = [
        ("hello", hello(false)),
        ("hello-auth", hello(true)),
        ("state", state(3, addr(2))),
        ("members", Msg::Members(vec![addr(3), addr(4)])),
        ("ping", Msg::Ping(1_750_000_000_000_000)),
        ("pong", Msg::Pong(42)),
        ("text", Msg::Text("hello from n2".into())),
        ("goodbye", Msg::Goodbye),
        ("lost", Msg::Lost),
        ("proof", Msg::Proof([9; 32])),
    ];
    for (name, m) in &one {
        write(&dir, "frame", name, &frames(std::slice::from_ref(m)));
    }
    let session = [
        hello(false),
        state(1, addr(2)),
        Msg::Members(vec![addr(3)]),
        Msg::Ping(7),
        Msg::Pong(7),
        state(2, addr(1)),
        Msg::Text("hi".into()),
        Msg::Goodbye,
    ];
    write(&dir, "frame", "session", &frames(&session));
    write(&dir, "handshake", "hello", &frames(&[hello(false)]));
    write(&dir, "handshake", "hello-auth", &frames(&[hello(true)]));
    write(&dir, "handshake", "session", &frames(&session));
    write(
        &dir,
        "handshake",
        "hello-auth-proof",
        &frames(&[hello(true), Msg::Proof([9; 32])]),
    );
    let lines = [
        "-h",
        "-m",
        "-t",
        "-cn",
        "-cl",
        "-c 10.0.0.2 7000",
        "-c [::1]:7000",
        "-c db1.example 7000",
        "-msg  hello   world ",
        "-ds sh -c 'echo \"hi there\"; sleep 1'",
        "-ms /usr/local/bin/vip up eth0",
        "-ds",
        "-loop 0",
        "-sslp 2.5",
        "-standby on",
        "standby",
        "-q",
    ];
    for (k, l) in lines.iter().enumerate() {
        write(
            &dir,
            "console",
            &format!("line{k:02}"),
            format!("{l}\n").as_bytes(),
        );
    }
    for (k, r) in REQUESTS.iter().enumerate() {
        let r = if *r == "ctl" {
            "ctl -c 10.0.0.3 7000"
        } else {
            r
        };
        write(
            &dir,
            "control",
            &format!("request{k}"),
            format!("{r}\n").as_bytes(),
        );
    }
    write(&dir, "control", "ctl-msg-crlf", b"ctl -msg hi\r\n");
}
