//! The faults, drawn from a seeded generator, and the two that run in a thread
//! of their own: a stranger's junk connections and a peer that streams frames.
//! Both open their sockets from the stranger's namespace (a thread may enter
//! a network namespace of its own).

use crate::wall;
use boss::wire::{self, Msg, NodeInfo};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// SplitMix64: small, seeded, the same sequence for the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    Kill,
    Stop,
    Quit,
    Link,
    Junk,
    Stream,
    Stall,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Kill,
        Kind::Stop,
        Kind::Quit,
        Kind::Link,
        Kind::Junk,
        Kind::Stream,
        Kind::Stall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill -9 + restart",
            Kind::Stop => "SIGSTOP + SIGCONT",
            Kind::Quit => "-q + restart",
            Kind::Link => "link cut + heal",
            Kind::Junk => "junk connections",
            Kind::Stream => "streaming peer",
            Kind::Stall => "stdout stall",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Kind::Kill => "kill9",
            Kind::Stop => "stop",
            Kind::Quit => "quit",
            Kind::Link => "link",
            Kind::Junk => "junk",
            Kind::Stream => "stream",
            Kind::Stall => "stall",
        }
    }

    /// Whether the node is out of the cluster while the fault lasts.
    pub fn takes_down(self) -> bool {
        matches!(self, Kind::Kill | Kind::Stop | Kind::Quit | Kind::Link)
    }
}

/// Where the stranger's threads open their sockets.
#[derive(Clone)]
pub struct Stranger {
    /// The namespace to enter; `None`: the host's.
    pub ns: Option<String>,
    pub ip: IpAddr,
    pub quorum: u16,
}

impl Stranger {
    fn enter(&self) -> Result<(), String> {
        match &self.ns {
            Some(ns) => crate::net::enter(&crate::net::ns_file(ns)?),
            None => Ok(()),
        }
    }
}

/// What a stranger thread did, for the report.
#[derive(Default, Debug)]
pub struct Done {
    pub connections: usize,
    pub bytes: usize,
    pub frames: usize,
    pub error: Option<String>,
}

/// `count` connections to `target`, two in three sending a few random bytes,
/// the others nothing (a handshake that never comes), all held until `hold`
/// seconds have passed, then closed.
pub fn junk(
    stranger: Stranger,
    target: SocketAddr,
    count: usize,
    hold: f64,
    seed: u64,
) -> JoinHandle<Done> {
    thread::spawn(move || {
        let mut done = Done::default();
        if let Err(e) = stranger.enter() {
            done.error = Some(e);
            return done;
        }
        let mut rng = Rng::new(seed);
        let until = wall() + hold;
        let mut held = Vec::new();
        for _ in 0..count {
            if wall() >= until {
                break;
            }
            match TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
                Ok(mut s) => {
                    let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
                    let n = if rng.below(3) == 0 {
                        0
                    } else {
                        1 + rng.below(300)
                    };
                    if n > 0 && s.write_all(&rng.bytes(n)).is_ok() {
                        done.bytes += n;
                    }
                    done.connections += 1;
                    held.push(s);
                }
                Err(e) => {
                    done.error.get_or_insert_with(|| format!("connect: {e}"));
                }
            }
        }
        while wall() < until {
            thread::sleep(Duration::from_millis(20));
        }
        done
    })
}

/// How a streaming peer floods, chosen per fault.
#[derive(Clone, Copy, Debug)]
pub enum Flood {
    Pings,
    States,
    Garbage,
}

/// A hand-made peer: connects to `target`, sends a valid `Hello` (its address
/// in the stranger's namespace, never eligible, voting for nobody), then
/// frames of `flood` as fast as the node takes them for `secs` seconds,
/// connecting again (a new `Hello`) whenever the node closes.
pub fn stream(
    stranger: Stranger,
    target: SocketAddr,
    flood: Flood,
    secs: f64,
    seed: u64,
) -> JoinHandle<Done> {
    thread::spawn(move || {
        let mut done = Done::default();
        if let Err(e) = stranger.enter() {
            done.error = Some(e);
            return done;
        }
        let mut rng = Rng::new(seed);
        let until = wall() + secs;
        let me = SocketAddr::new(stranger.ip, 20_000 + rng.below(20_000) as u16);
        let mut seq = 1u64;
        while wall() < until {
            let Ok(mut s) = TcpStream::connect_timeout(&target, Duration::from_millis(500)) else {
                thread::sleep(Duration::from_millis(100));
                continue;
            };
            done.connections += 1;
            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
            let hello = Msg::Hello {
                magic: wire::MAGIC,
                version: wire::VERSION,
                node: NodeInfo {
                    addr: me,
                    started: (wall() * 1e6) as u64,
                    priority: 0,
                },
                rule: boss::election::Rule::Oldest.code(),
                quorum: stranger.quorum,
                cluster: "boss".into(),
                nonce: [0; 32],
                auth: false,
                serial: 0,
            };
            let mut buf = Vec::new();
            if wire::encode(&hello, &mut buf).is_err() || s.write_all(&buf).is_err() {
                continue;
            }
            'conn: while wall() < until {
                buf.clear();
                let mut frames = 0;
                while buf.len() < 16 * 1024 {
                    let msg = match flood {
                        Flood::Pings => Msg::Ping(rng.next()),
                        Flood::States | Flood::Garbage => {
                            seq += 1;
                            Msg::State {
                                seq,
                                vote: None,
                                master: false,
                                eligible: false,
                                epoch: 0,
                                tied: false,
                                script: false,
                                held: None,
                                ack: 0,
                            }
                        }
                    };
                    let start = buf.len();
                    if wire::encode(&msg, &mut buf).is_err() {
                        break 'conn;
                    }
                    if matches!(flood, Flood::Garbage) {
                        // Keep the length, scramble the body.
                        for b in &mut buf[start + wire::HEADER..] {
                            *b = rng.next() as u8;
                        }
                    }
                    frames += 1;
                }
                match s.write_all(&buf) {
                    Ok(()) => {
                        done.frames += frames;
                        done.bytes += buf.len();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break 'conn,
                }
            }
            // Closed by the node (a flood, a bad frame): a little later, again.
            thread::sleep(Duration::from_millis(100));
        }
        done
    })
}
