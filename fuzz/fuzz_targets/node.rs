//! The core `Node` driven by a sequence of inputs decoded from the fuzzer's
//! bytes: a node with settings drawn from them (quorum, rule, scripts, health
//! check, secret, `--join`), and a few made-up peers that connect, are
//! dialled, send `Hello`s (with a valid proof of the secret when the fuzzer
//! says so), `State`s, `Members`, pings, texts, goodbyes and raw garbage, and
//! close; console lines and control requests; the script's and the check's
//! lines and ends; host-name lookups answered; time moving on, monotonic and
//! bounded. Checked after every input: no panic, the output contract (see
//! `boss_fuzz::Contract`: nothing sent after a close, dials and lookups
//! answered once, one script at a time, every control request answered once,
//! nothing after `Exit`), every connection and timer accounted for, what a
//! peer can grow bounded, and no timer left due after `handle_timeout`.

#![no_main]

use boss::auth::{Keys, Role as End, Secret};
use boss::config::{HostPort, NonceSeed, ScriptSpec};
use boss::election::Rule;
use boss::node::{ClientId, CloseReason, Request};
use boss::wire::{self, MAGIC, Msg, NodeInfo, VERSION, WireError};
use boss::{Config, ConnId, Input, Node, Output};
use boss_fuzz::Contract;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const WALL: u64 = 1_750_000_000_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const MAX_CONNS: usize = 16;
/// Inputs per run: enough for a mesh to form, fail and form again.
const MAX_STEPS: usize = 400;

/// Whether to print every input and its outputs (`BOSS_FUZZ_TRACE=1`), to
/// read what a crashing input did.
fn trace() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BOSS_FUZZ_TRACE").is_some())
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 7000))
}

/// The fuzzer's bytes, read as choices; once they run out every choice is
/// the first (the run then ends).
struct Fz<'a>(Unstructured<'a>);

impl<'a> Fz<'a> {
    fn below(&mut self, n: usize) -> usize {
        self.0.choose_index(n).unwrap_or(0)
    }
    fn int(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.int_in_range(lo..=hi).unwrap_or(lo)
    }
    fn bool(&mut self) -> bool {
        self.0.arbitrary().unwrap_or(false)
    }
    /// True once in `n`.
    fn one_in(&mut self, n: u8) -> bool {
        self.0.ratio(1, n).unwrap_or(false)
    }
    fn u64(&mut self) -> u64 {
        self.0.arbitrary().unwrap_or(0)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        self.0.bytes(n).map(<[u8]>::to_vec).unwrap_or_default()
    }
    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max)).into_owned()
    }
    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())].clone()
    }
    /// One of the node's made-up peers (2 to 5), itself (1), or any address.
    fn addr(&mut self) -> SocketAddr {
        match self.below(8) {
            0 => SocketAddr::from((self.0.arbitrary::<[u8; 4]>().unwrap_or_default(), {
                self.0.arbitrary::<u16>().unwrap_or(0)
            })),
            1 => addr(1),
            k => addr(2 + (k as u8 - 2) % 4),
        }
    }
}

/// A console line: a real command with values from the fuzzer, or any text.
fn line(f: &mut Fz) -> String {
    let peer = f.addr();
    match f.below(24) {
        0 => "-h".into(),
        1 => "-m".into(),
        2 => "-t".into(),
        3 => "-cn".into(),
        4 => "-cl".into(),
        5 => format!("-msg {}", f.text(40)),
        6 => "-ds /bin/sleep 5".into(),
        7 => "-ms /usr/bin/service up".into(),
        8 => "-ds".into(),
        9 => "-ms".into(),
        10 => format!("-loop {}", f.below(2)),
        11 => format!("-sslp {}", f.int(0, 3000) as f64 / 1000.0),
        12 => "-standby on".into(),
        13 => "-standby off".into(),
        14 => "-standby".into(),
        15 => "-q".into(),
        16 | 17 => format!("-c {} {}", peer.ip(), peer.port()),
        18 => format!("-c {peer}"),
        19 => format!("-c peer{}.example {}", f.below(3), 7000),
        _ => f.text(60),
    }
}

/// Per connection: whether the node dialled it, and the two `Hello`s once
/// sent (the node's, the peer's): what a valid proof is computed from.
#[derive(Default)]
struct Conn {
    dialled: bool,
    ours: Option<Msg>,
    theirs: Option<Msg>,
}

struct World<'a> {
    f: Fz<'a>,
    node: Node,
    cfg: Config,
    contract: Contract,
    conns: BTreeMap<ConnId, Conn>,
    now: Duration,
    next_conn: u32,
    next_client: u32,
    seq: u64,
}

impl World<'_> {
    /// Handles one input and carries out its outputs, then feeds what
    /// carrying them out produced (a script that cannot start).
    fn feed(&mut self, input: Input) {
        let request = match &input {
            Input::Control { client, request } => Some((*client, request.clone())),
            _ => None,
        };
        let mut out = Vec::new();
        if trace() {
            eprintln!("{:?} <- {input:?}", self.now);
        }
        self.node.handle(self.now, input, &mut out);
        if trace() {
            eprintln!("   -> {out:?}");
        }
        self.carry_out(&out, request.as_ref().map(|(c, r)| (*c, r)));
    }

    fn timeout(&mut self, now: Duration) {
        self.now = now;
        let mut out = Vec::new();
        self.node.handle_timeout(now, &mut out);
        if trace() {
            eprintln!("{now:?} timeout -> {out:?}");
        }
        self.carry_out(&out, None);
        if let Some(d) = self.node.poll_timeout() {
            assert!(d > now, "a timer due at {d:?} is left at {now:?}");
        }
    }

    fn carry_out(&mut self, out: &[Output], request: Option<(ClientId, &Request)>) {
        self.contract.outputs(out, request);
        for o in out {
            match o {
                Output::Send(c, m @ Msg::Hello { .. }) => {
                    if let Some(conn) = self.conns.get_mut(c) {
                        assert!(conn.ours.is_none(), "two Hellos on {c}");
                        conn.ours = Some(m.clone());
                    }
                }
                Output::Close(c) => {
                    self.conns.remove(c);
                }
                _ => {}
            }
        }
        self.contract.state(&mut self.node, self.now, MAX_CONNS);
        if self.cfg.secret.is_some() {
            // Only a peer that proved the secret is one.
            assert!(self.node.peers().len() <= self.conns.len());
        }
        if self.contract.exited {
            return;
        }
        if self.contract.started_script && self.f.one_in(4) {
            self.contract.script = None;
            let transient = self.f.bool();
            self.feed(Input::ScriptFailed {
                error: "No such file or directory (os error 2)".into(),
                transient,
            });
        } else if self.contract.started_check && self.f.one_in(4) {
            self.contract.check = None;
            self.feed(Input::CheckFailed {
                error: "Permission denied (os error 13)".into(),
            });
        }
    }

    fn open(&mut self, dialled: bool) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId {
            index: self.next_conn % 8,
            generation: self.next_conn,
        };
        self.contract.conns.insert(conn, false);
        self.conns.insert(
            conn,
            Conn {
                dialled,
                ..Conn::default()
            },
        );
        conn
    }

    fn pick_conn(&mut self) -> Option<ConnId> {
        let open: Vec<ConnId> = self.conns.keys().copied().collect();
        (!open.is_empty()).then(|| self.f.pick(&open))
    }

    fn hello(&mut self) -> Msg {
        let f = &mut self.f;
        let odd = f.one_in(16);
        Msg::Hello {
            magic: if odd && f.bool() {
                f.u64() as u32
            } else {
                MAGIC
            },
            version: if odd && f.bool() {
                f.u64() as u16
            } else {
                VERSION
            },
            node: NodeInfo {
                addr: f.addr(),
                started: if odd && f.bool() {
                    f.u64()
                } else {
                    WALL - 5_000_000 + f.int(0, 10_000_000)
                },
                priority: f.below(4) as u32,
            },
            rule: if odd && f.bool() {
                f.below(6) as u8
            } else {
                self.cfg.rule.code()
            },
            quorum: if odd && f.bool() {
                f.below(5) as u16
            } else {
                self.cfg.quorum
            },
            cluster: if odd && f.bool() {
                f.text(8)
            } else {
                self.cfg.cluster.clone()
            },
            nonce: f.0.arbitrary().unwrap_or_default(),
            auth: self.cfg.secret.is_some() != (odd && f.bool()),
            serial: if f.bool() { f.int(0, 4) } else { f.u64() },
        }
    }

    /// The peer's proof on `conn`: valid when both `Hello`s are known and
    /// the fuzzer says so.
    fn proof(&mut self, conn: ConnId) -> [u8; 32] {
        let valid = self.f.below(4) != 0;
        if let (true, Some(secret), Some(c)) = (valid, &self.cfg.secret, self.conns.get(&conn))
            && let (Some(ours), Some(theirs)) = (&c.ours, &c.theirs)
            && let (Ok(ours), Ok(theirs)) = (wire::body(ours), wire::body(theirs))
        {
            let (dialler, acceptor, end) = if c.dialled {
                (ours, theirs, End::Acceptor)
            } else {
                (theirs, ours, End::Dialler)
            };
            return Keys::derive(secret, &self.cfg.cluster, &dialler, &acceptor, end).proof();
        }
        self.f.0.arbitrary().unwrap_or_default()
    }

    fn msg(&mut self, conn: ConnId) -> Result<Msg, WireError> {
        let me = addr(1);
        Ok(match self.f.below(16) {
            0 | 1 => self.hello(),
            2 => Msg::Proof(self.proof(conn)),
            3..=6 => {
                let f = &mut self.f;
                self.seq += f.int(0, 2);
                let vote = match f.below(4) {
                    0 => None,
                    1 => Some(me),
                    _ => Some(f.addr()),
                };
                Msg::State {
                    seq: if f.one_in(16) { f.u64() } else { self.seq },
                    vote,
                    master: f.bool(),
                    eligible: !f.one_in(4),
                    epoch: if f.one_in(16) { f.u64() } else { f.int(0, 6) },
                    tied: f.bool(),
                    script: f.one_in(4),
                    held: match f.below(6) {
                        0 => Some(me),
                        1 => Some(f.addr()),
                        _ => None,
                    },
                    ack: if f.one_in(8) { f.u64() } else { f.int(0, 40) },
                }
            }
            7 => {
                let n = self.f.below(6);
                Msg::Members((0..n).map(|_| self.f.addr()).collect())
            }
            8 | 9 => Msg::Ping(self.f.u64()),
            10 => Msg::Pong(self.f.u64()),
            11 => Msg::Text(self.f.text(80)),
            12 => Msg::Goodbye,
            13 => Msg::Lost,
            _ => {
                let body = self.f.bytes(64);
                wire::decode_body(&body)?
            }
        })
    }

    fn step(&mut self) {
        match self.f.below(20) {
            0 | 1 => {
                let at = self.now + Duration::from_millis(self.f.int(0, 500));
                self.timeout(at);
            }
            2 => {
                let next = self.node.poll_timeout().unwrap_or(self.now);
                self.timeout(next.max(self.now));
            }
            3 => {
                let at = self.now + Duration::from_millis(self.f.int(0, 30_000));
                self.timeout(at);
            }
            4 => {
                let conn = self.open(false);
                let ip = self.f.addr().ip();
                let from = SocketAddr::new(ip, 40000 + self.f.below(100) as u16);
                self.feed(Input::Accepted { conn, from });
            }
            5 | 6 => {
                let dials: Vec<SocketAddr> = self.contract.dials.iter().copied().collect();
                if dials.is_empty() {
                    return;
                }
                let addr = self.f.pick(&dials);
                self.contract.dials.remove(&addr);
                if self.f.one_in(3) {
                    let error = "Connection refused (os error 111)".into();
                    self.feed(Input::DialFailed { addr, error });
                } else {
                    let conn = self.open(true);
                    self.feed(Input::Connected { conn, addr });
                }
            }
            7..=11 => {
                let Some(conn) = self.pick_conn() else {
                    return;
                };
                // Only what crosses the wire reaches the core: the message
                // framed and read back as the shell reads it.
                let read = self.msg(conn).and_then(|msg| {
                    let mut buf = Vec::new();
                    wire::encode(&msg, &mut buf)?;
                    Ok(wire::decode(&buf)?.map(|(m, _)| m))
                });
                match read {
                    Ok(Some(msg)) => {
                        if let (Msg::Hello { .. }, Some(c)) = (&msg, self.conns.get_mut(&conn)) {
                            c.theirs.get_or_insert_with(|| msg.clone());
                        }
                        self.feed(Input::Frame { conn, msg })
                    }
                    Ok(None) => unreachable!("a whole frame is there"),
                    Err(e) => self.close(conn, CloseReason::Malformed(e)),
                }
            }
            12 => {
                let Some(conn) = self.pick_conn() else {
                    return;
                };
                let reason = match self.f.below(6) {
                    0 => CloseReason::Eof,
                    1 => CloseReason::Reset("Connection reset by peer (os error 104)".into()),
                    2 => CloseReason::Overflow,
                    3 => CloseReason::Unauthenticated,
                    4 => CloseReason::Error("No route to host (os error 113)".into()),
                    _ => CloseReason::Malformed(WireError::Malformed),
                };
                self.close(conn, reason);
            }
            13 => {
                let l = line(&mut self.f);
                self.feed(Input::Line(l));
            }
            14 => {
                self.next_client += 1;
                let client = ClientId {
                    index: self.next_client % 4,
                    generation: self.next_client,
                };
                let request = if self.f.bool() {
                    Request::Status
                } else {
                    Request::Command(line(&mut self.f))
                };
                self.feed(Input::Control { client, request });
            }
            15 | 16 => {
                if self.contract.script.is_none() {
                    return;
                }
                if self.f.bool() {
                    let (stderr, line) = (self.f.bool(), self.f.text(80));
                    self.feed(Input::ScriptLine { stderr, line });
                } else {
                    self.contract.script = None;
                    let success = self.f.bool();
                    let status = if success {
                        "exit status 0"
                    } else {
                        "exit status 3"
                    };
                    self.feed(Input::ScriptExited {
                        success,
                        status: status.into(),
                    });
                }
            }
            17 => {
                if self.contract.check.is_none() {
                    return;
                }
                if self.f.one_in(3) {
                    let (stderr, line) = (self.f.bool(), self.f.text(80));
                    self.feed(Input::CheckLine { stderr, line });
                } else {
                    self.contract.check = None;
                    let success = self.f.bool();
                    let status = if success {
                        "exit status 0"
                    } else {
                        "exit status 1"
                    };
                    self.feed(Input::CheckExited {
                        success,
                        status: status.into(),
                    });
                }
            }
            18 => {
                let asked: Vec<(String, u16)> = self.contract.lookups.iter().cloned().collect();
                if asked.is_empty() {
                    return;
                }
                let (name, port) = self.f.pick(&asked);
                self.contract.lookups.remove(&(name.clone(), port));
                let result = if self.f.one_in(3) {
                    Err("no such host".into())
                } else {
                    let n = self.f.below(4);
                    // The shell gives every address the name's port.
                    Ok((0..n)
                        .map(|_| SocketAddr::new(self.f.addr().ip(), port))
                        .collect())
                };
                self.feed(Input::Resolved { name, port, result });
            }
            _ => {
                if self.f.one_in(8) {
                    self.feed(Input::Shutdown);
                }
            }
        }
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.contract.conns.remove(&conn);
        self.conns.remove(&conn);
        self.feed(Input::Closed { conn, reason });
    }
}

fn config(f: &mut Fz) -> Config {
    let mut cfg = Config::new(addr(1), WALL);
    cfg.quorum = 1 + f.below(3) as u16;
    cfg.rule = f.pick(&Rule::ALL);
    cfg.preempt = f.bool();
    cfg.priority = f.below(4) as u32;
    cfg.max_conns = MAX_CONNS;
    cfg.nonce_seed = NonceSeed([7; 32]);
    if f.one_in(3) {
        cfg.secret = Some(Secret::from_bytes(SECRET).expect("a long secret"));
    }
    let spec = |p: &str| ScriptSpec {
        program: p.into(),
        args: vec!["--fuzz".into()],
    };
    if f.bool() {
        cfg.default_script = Some(spec("/bin/default"));
    }
    if f.bool() {
        cfg.master_script = Some(spec("/bin/master"));
    }
    cfg.script_loop = f.bool();
    if f.one_in(3) {
        cfg.check = Some(spec("/bin/check"));
        cfg.check_interval = Duration::from_millis(500);
        cfg.check_timeout = Duration::from_millis(400);
        cfg.rise = 1 + f.below(2) as u32;
        cfg.fall = 1 + f.below(2) as u32;
    }
    if f.one_in(4) {
        cfg.watchdog = Some(Duration::from_secs(1));
    }
    cfg.standby = f.one_in(6);
    cfg.epoch_floor = f.int(0, 3);
    for k in 2..6 {
        if f.bool() {
            cfg.join.push(addr(k));
        }
    }
    if f.one_in(4) {
        cfg.join_names.push(HostPort {
            host: "peers.example".into(),
            port: 7000,
        });
    }
    cfg
}

fuzz_target!(|data: &[u8]| {
    let mut f = Fz(Unstructured::new(data));
    let cfg = config(&mut f);
    let mut world = World {
        f,
        node: Node::new(cfg.clone()),
        cfg,
        contract: Contract::default(),
        conns: BTreeMap::new(),
        now: Duration::from_secs(1),
        next_conn: 0,
        next_client: 0,
        seq: 1,
    };
    let mut out = Vec::new();
    world.node.start(world.now, &mut out);
    world.carry_out(&out, None);
    for _ in 0..MAX_STEPS {
        if world.f.0.is_empty() || world.contract.exited {
            break;
        }
        world.step();
    }
});
