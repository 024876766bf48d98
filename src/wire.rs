//! The wire protocol: [`Msg`] and its framing (4-byte big-endian length, then a
//! postcard body). Pure: encodes into and decodes from caller-owned buffers, never
//! touches a socket. On an authenticated connection the shell seals each body
//! after the `Hello`s (see [`crate::auth#protocol`]); this module knows only the
//! plain body and leaves room for the seal ([`MAX_BODY`]).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// First field of every `Hello`: "BOSS".
pub const MAGIC: u32 = 0x424f_5353;
/// Protocol version; a peer with another version is refused. Version 2 added
/// the cluster name, the handshake nonce, the secret flag and `Proof`.
pub const VERSION: u16 = 2;
/// Largest frame body accepted (the length prefix's limit), sealed or not.
pub const MAX_FRAME: usize = 64 * 1024;
/// Largest message body encoded: a sealed body is [`crate::auth::TAG`] bytes
/// longer, and must still fit in [`MAX_FRAME`].
pub const MAX_BODY: usize = MAX_FRAME - crate::auth::TAG;
/// Most bytes of a cluster name (`--cluster`).
pub const MAX_CLUSTER: usize = 64;
/// Length prefix size.
pub const HEADER: usize = 4;
/// Largest first frame accepted on a connection: the first frame must be a
/// `Hello`, a few dozen bytes, so a longer one is refused before it is buffered.
pub const MAX_HELLO: usize = 1024;

/// What a node is, as its peers see it. `addr` is its identity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Advertised listen address: the address peers dial, and the node's identity.
    pub addr: SocketAddr,
    /// Start time, wall clock, microseconds since the Unix epoch.
    pub started: u64,
    /// Priority for the `priority` rule (higher wins).
    pub priority: u32,
}

/// The earliest start time a node accepts, its own or a peer's, in µs since the
/// Unix epoch: 2000-01-01T00:00:00Z. A clock before it is not set.
pub const EARLIEST_START: u64 = 946_684_800_000_000;
/// The first start time a node no longer accepts: 10000-01-01T00:00:00Z, past
/// what RFC 3339 (and so the console) can write.
pub const START_END: u64 = crate::text::RFC3339_END;
/// How far a peer's start time may be ahead of this node's own clock: the clocks
/// of two machines differ, but not by a day.
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(24 * 60 * 60);

/// Checks the wall clock a node reads at start, in µs since the Unix epoch
/// (negative before it). `Ok` is the node's start time; `Err` the one line
/// saying why the node must not start: a node with a clock before 2000 or past
/// year 9999 would win or lose every `oldest` election for a wrong reason.
pub fn check_clock(micros: i128) -> Result<u64, String> {
    let whole = |m: u128| format!("{}.{:06}s", m / 1_000_000, m % 1_000_000);
    let said = if micros < 0 {
        format!(
            "{} before 1970-01-01T00:00:00Z",
            whole(micros.unsigned_abs())
        )
    } else {
        match u64::try_from(micros) {
            Ok(m) if (EARLIEST_START..START_END).contains(&m) => return Ok(m),
            Ok(m) if m < EARLIEST_START => {
                format!("{}, before 2000-01-01", crate::text::rfc3339(m))
            }
            Ok(m) => format!("{}, past year 9999", crate::text::rfc3339(m)),
            Err(_) => format!(
                "{} after 1970-01-01T00:00:00Z, past year 9999",
                whole(micros.unsigned_abs())
            ),
        }
    };
    Err(format!(
        "the system clock says {said}, which cannot be right; set the clock"
    ))
}

/// Why `addr` cannot be a node's advertised address (one a peer can dial), if
/// it cannot: the unspecified address, port 0, a multicast or broadcast address.
pub fn undialable(addr: SocketAddr) -> Option<&'static str> {
    let ip = addr.ip().to_canonical();
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if addr.port() == 0 {
        Some("port 0")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Whether `name` can be a cluster name (`--cluster`): 1 to [`MAX_CLUSTER`]
/// bytes of ASCII letters, digits, `.`, `_` and `-`. So a name can be shown on
/// the console as it is and never holds anything to escape.
pub fn is_cluster_name(name: &str) -> bool {
    (1..=MAX_CLUSTER).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One message between two nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Sent first by both sides. Must stay variant 0 with `magic`, `version`
    /// and `node` first, so any other version can still be recognised and
    /// refused clearly (see [`decode`]).
    Hello {
        magic: u32,
        version: u16,
        node: NodeInfo,
        /// The election rule (`Rule as u8`): both sides must agree.
        rule: u8,
        /// The quorum: both sides must agree.
        quorum: u16,
        /// The cluster name (`--cluster`): both sides must agree. Checked by
        /// [`is_cluster_name`] before it is shown.
        cluster: String,
        /// A fresh nonce for this connection (see [`crate::auth#protocol`]).
        nonce: [u8; crate::auth::NONCE],
        /// Whether the sender has a cluster secret: both sides must agree.
        auth: bool,
    },
    /// Every peer the sender is connected to; the receiver dials the ones it lacks.
    Members(Vec<SocketAddr>),
    /// The sender's vote and whether it is master. `seq` grows with every change,
    /// so the newest state wins whichever connection of a pair carried it.
    State {
        seq: u64,
        vote: Option<SocketAddr>,
        master: bool,
        /// The newest `seq` of the receiver's that the sender has applied.
        ack: u64,
    },
    /// Heartbeat; the payload is echoed in `Pong`.
    Ping(u64),
    /// Answer to `Ping`, echoing its payload (the sender's clock in µs).
    Pong(u64),
    /// A `-msg` broadcast.
    Text(String),
    /// Clean shutdown: drop the sender at once and do not reconnect.
    Goodbye,
    /// The sender's proof that it knows the cluster secret and saw this
    /// connection's handshake: its first frame after the `Hello`s when both
    /// sides have a secret (see [`crate::auth#protocol`]).
    Proof([u8; crate::auth::PROOF]),
}

/// Why a frame could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The length prefix exceeds [`MAX_FRAME`].
    TooLong(usize),
    /// The body is not a valid `Msg` (or a `Hello` not in its one encoding).
    Malformed,
    /// A message too large to encode within [`MAX_BODY`].
    Oversized,
    /// The first frame of a connection (the `Hello`) exceeds [`MAX_HELLO`].
    FirstTooLong(usize),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::TooLong(n) => {
                write!(f, "frame of {n} bytes exceeds the {MAX_FRAME} byte limit")
            }
            WireError::Malformed => write!(f, "malformed frame"),
            WireError::Oversized => write!(f, "message too large to send"),
            WireError::FirstTooLong(n) => write!(
                f,
                "first frame of {n} bytes exceeds the {MAX_HELLO} byte limit of a Hello"
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Appends one frame holding `msg` to `out`. On error `out` is left as it was.
pub fn encode(msg: &Msg, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let res = postcard::to_extend(msg, std::mem::take(out));
    match res {
        Ok(buf) => {
            *out = buf;
            let len = out.len() - start - HEADER;
            if len > MAX_BODY {
                out.truncate(start);
                return Err(WireError::Oversized);
            }
            out[start..start + HEADER].copy_from_slice(&(len as u32).to_be_bytes());
            Ok(())
        }
        Err(_) => Err(WireError::Oversized),
    }
}

/// The body of a frame holding `msg` (no length prefix): what is sealed, and
/// for a `Hello` what the handshake transcript hashes.
pub fn body(msg: &Msg) -> Result<Vec<u8>, WireError> {
    let body = postcard::to_allocvec(msg).map_err(|_| WireError::Oversized)?;
    if body.len() > MAX_BODY {
        return Err(WireError::Oversized);
    }
    Ok(body)
}

/// What every `Hello` of every version starts with (after its variant tag).
#[derive(Deserialize)]
struct HelloHead {
    magic: u32,
    version: u16,
    node: NodeInfo,
}

/// The message in a whole frame body. A `Hello` of this version must name a
/// valid cluster ([`is_cluster_name`]) and be the one encoding of its value (decoded, encoded again and compared), so both
/// ends of a connection hash the same bytes for it by encoding it again (see
/// [`crate::auth#protocol`]). A `Hello` of another version (its magic,
/// version and node read, the rest not) comes back with the other fields
/// empty: it is refused for its version before anything else is read.
pub fn decode_body(body: &[u8]) -> Result<Msg, WireError> {
    match postcard::take_from_bytes::<Msg>(body) {
        // Trailing bytes inside a frame are as wrong as missing ones.
        Ok((msg @ Msg::Hello { .. }, [])) => {
            let named = matches!(&msg, Msg::Hello { cluster, .. } if is_cluster_name(cluster));
            if named && postcard::to_allocvec(&msg).ok().as_deref() == Some(body) {
                Ok(msg)
            } else {
                Err(WireError::Malformed)
            }
        }
        Ok((msg, [])) => Ok(msg),
        _ => other_version(body).ok_or(WireError::Malformed),
    }
}

/// A `Hello` of another protocol version, as far as every version agrees.
fn other_version(body: &[u8]) -> Option<Msg> {
    let (&tag, rest) = body.split_first()?;
    if tag != 0 {
        return None;
    }
    let (head, _) = postcard::take_from_bytes::<HelloHead>(rest).ok()?;
    (head.magic != MAGIC || head.version != VERSION).then_some(Msg::Hello {
        magic: head.magic,
        version: head.version,
        node: head.node,
        rule: 0,
        quorum: 0,
        cluster: String::new(),
        nonce: [0; crate::auth::NONCE],
        auth: false,
    })
}

/// The length a frame at the start of `buf` announces, once its prefix is there.
pub fn announced_len(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; HEADER] = buf.get(..HEADER)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

/// Decodes the first complete frame in `buf`. `Ok(None)`: more bytes are needed.
/// `Ok(Some((msg, used)))`: `used` bytes form that frame. An error means the stream
/// is broken and the connection must be closed.
pub fn decode(buf: &[u8]) -> Result<Option<(Msg, usize)>, WireError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLong(len));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let msg = decode_body(&buf[HEADER..HEADER + len])?;
    Ok(Some((msg, HEADER + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(port: u16) -> NodeInfo {
        NodeInfo {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            started: 1_700_000_000_000_000,
            priority: 7,
        }
    }

    fn all_msgs() -> Vec<Msg> {
        vec![
            Msg::Hello {
                magic: MAGIC,
                version: VERSION,
                node: info(1),
                rule: 0,
                quorum: 2,
                cluster: "boss".into(),
                nonce: [7; 32],
                auth: false,
            },
            Msg::Hello {
                magic: MAGIC,
                version: VERSION,
                node: NodeInfo {
                    addr: "[::1]:9".parse().unwrap(),
                    started: 0,
                    priority: u32::MAX,
                },
                rule: 3,
                quorum: 9,
                cluster: "x".repeat(MAX_CLUSTER),
                nonce: [0xff; 32],
                auth: true,
            },
            Msg::Members(vec![
                info(1).addr,
                info(2).addr,
                "[fe80::1]:80".parse().unwrap(),
            ]),
            Msg::Members(vec![]),
            Msg::State {
                seq: 0,
                vote: None,
                master: false,
                ack: 0,
            },
            Msg::State {
                seq: u64::MAX,
                vote: Some(info(3).addr),
                master: true,
                ack: 7,
            },
            Msg::Ping(0),
            Msg::Pong(u64::MAX),
            Msg::Text(String::new()),
            Msg::Text("héllo\n\x1b[31m".into()),
            Msg::Goodbye,
            Msg::Proof([0xa5; 32]),
        ]
    }

    #[test]
    fn a_clock_that_cannot_be_right_is_refused() {
        assert_eq!(
            check_clock(1_700_000_000_000_000),
            Ok(1_700_000_000_000_000)
        );
        assert_eq!(check_clock(EARLIEST_START as i128), Ok(EARLIEST_START));
        assert_eq!(check_clock(START_END as i128 - 1), Ok(START_END - 1));
        for (micros, says) in [
            (0, "1970-01-01T00:00:00.000Z, before 2000-01-01"),
            (
                EARLIEST_START as i128 - 1,
                "1999-12-31T23:59:59.999Z, before 2000-01-01",
            ),
            (-1_500_000, "1.500000s before 1970-01-01T00:00:00Z"),
            (i128::MIN, "before 1970-01-01T00:00:00Z"),
            (
                START_END as i128,
                "after 1970-01-01T00:00:00Z, past year 9999",
            ),
            (u64::MAX as i128, "past year 9999"),
            (i128::MAX, "after 1970-01-01T00:00:00Z"),
        ] {
            let e = check_clock(micros).unwrap_err();
            assert!(e.starts_with("the system clock says "), "{micros}: {e}");
            assert!(e.contains(says), "{micros}: {e}");
            assert!(e.ends_with("; set the clock"), "{micros}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn undialable_addresses() {
        for bad in [
            "0.0.0.0:7000",
            "[::]:7000",
            "[::ffff:0.0.0.0]:7000",
            "10.0.0.1:0",
            "224.0.0.1:7000",
            "[ff02::1]:7000",
            "[::ffff:239.1.1.1]:7000",
            "255.255.255.255:7000",
        ] {
            assert!(undialable(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in ["10.0.0.1:7000", "[::1]:7000", "[fe80::1]:9", "127.0.0.1:1"] {
            assert_eq!(undialable(good.parse().unwrap()), None, "{good}");
        }
    }

    #[test]
    fn every_message_round_trips() {
        let mut buf = Vec::new();
        for m in all_msgs() {
            encode(&m, &mut buf).unwrap();
        }
        let mut at = 0;
        for m in all_msgs() {
            let (got, used) = decode(&buf[at..]).unwrap().unwrap();
            assert_eq!(got, m);
            at += used;
        }
        assert_eq!(at, buf.len());
        assert_eq!(decode(&buf[at..]), Ok(None));
    }

    #[test]
    fn every_hello_fits_the_first_frame_limit() {
        for m in all_msgs() {
            if let Msg::Hello { .. } = m {
                let mut buf = Vec::new();
                encode(&m, &mut buf).unwrap();
                // The longest (an IPv6 address, every number at its widest, the
                // longest cluster name) leaves the limit plenty of room.
                assert!(buf.len() - HEADER <= MAX_HELLO / 4, "{} bytes", buf.len());
                assert_eq!(announced_len(&buf), Some(buf.len() - HEADER));
            }
        }
        assert_eq!(announced_len(&[0, 0, 1]), None);
    }

    #[test]
    fn partial_frames_need_more_bytes() {
        let mut buf = Vec::new();
        encode(&Msg::Text("abc".into()), &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn oversized_length_is_an_error() {
        let len = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert_eq!(decode(&len), Err(WireError::TooLong(MAX_FRAME + 1)));
        assert_eq!(
            decode(&[0xff; 4]),
            Err(WireError::TooLong(u32::MAX as usize))
        );
    }

    #[test]
    fn a_frame_of_exactly_the_limit_goes_through_and_one_byte_more_does_not() {
        // The body of a `Text` is its tag, its length and its bytes: find the text
        // length whose body is exactly MAX_BODY bytes.
        let body_len = |text_len: usize| {
            let mut buf = Vec::new();
            encode(&Msg::Text("x".repeat(text_len)), &mut buf).unwrap();
            buf.len() - HEADER
        };
        let overhead = body_len(MAX_FRAME / 2) - MAX_FRAME / 2;
        let at_limit = Msg::Text("x".repeat(MAX_BODY - overhead));
        let mut buf = Vec::new();
        encode(&at_limit, &mut buf).unwrap();
        assert_eq!(buf.len(), HEADER + MAX_BODY);
        assert_eq!(announced_len(&buf), Some(MAX_BODY));
        assert_eq!(
            decode(&buf),
            Ok(Some((at_limit.clone(), HEADER + MAX_BODY)))
        );
        assert_eq!(body(&at_limit).map(|b| b.len()), Ok(MAX_BODY));
        // Sealed, it is a frame of exactly MAX_FRAME: room was left for the tag.
        assert_eq!(MAX_BODY + crate::auth::TAG, MAX_FRAME);

        let mut buf = Vec::new();
        let over = Msg::Text("x".repeat(MAX_BODY - overhead + 1));
        assert_eq!(encode(&over, &mut buf), Err(WireError::Oversized));
        assert_eq!(body(&over), Err(WireError::Oversized));
        assert!(buf.is_empty());
        // A plain frame up to MAX_FRAME is still read (the limit is the prefix's).
        let long = Msg::Text("x".repeat(MAX_FRAME - overhead));
        let mut f = (MAX_FRAME as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&postcard::to_allocvec(&long).unwrap());
        assert_eq!(decode(&f), Ok(Some((long, HEADER + MAX_FRAME))));
        // A frame that announces one byte more is refused before its body arrives.
        let mut f = (MAX_FRAME as u32 + 1).to_be_bytes().to_vec();
        f.extend_from_slice(&[0; 16]);
        assert_eq!(decode(&f), Err(WireError::TooLong(MAX_FRAME + 1)));
    }

    #[test]
    fn a_long_text_is_carried() {
        // A console line may hold up to 64 KiB, so a `-msg` text of 60,000 bytes
        // must fit in one frame.
        let m = Msg::Text("é".repeat(30_000));
        let mut buf = Vec::new();
        encode(&m, &mut buf).unwrap();
        assert_eq!(decode(&buf), Ok(Some((m, buf.len()))));
    }

    #[test]
    fn errors_read_as_one_line_each() {
        for (e, want) in [
            (
                WireError::TooLong(70_000),
                "frame of 70000 bytes exceeds the 65536 byte limit",
            ),
            (WireError::Malformed, "malformed frame"),
            (WireError::Oversized, "message too large to send"),
            (
                WireError::FirstTooLong(2_000),
                "first frame of 2000 bytes exceeds the 1024 byte limit of a Hello",
            ),
        ] {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn oversized_message_is_not_encoded() {
        let mut buf = vec![1, 2, 3];
        assert_eq!(
            encode(&Msg::Text("x".repeat(MAX_BODY + 1)), &mut buf),
            Err(WireError::Oversized)
        );
        assert_eq!(buf, vec![1, 2, 3]);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        // An unknown variant tag.
        assert_eq!(decode(&[0, 0, 0, 1, 200]), Err(WireError::Malformed));
        // An empty body.
        assert_eq!(decode(&[0, 0, 0, 0]), Err(WireError::Malformed));
        // A valid message with a trailing byte inside the frame.
        let mut buf = Vec::new();
        encode(&Msg::Goodbye, &mut buf).unwrap();
        buf[3] += 1;
        buf.push(0);
        assert_eq!(decode(&buf), Err(WireError::Malformed));
        // Every strict prefix of a body, framed as if complete.
        let mut whole = Vec::new();
        encode(&all_msgs()[0], &mut whole).unwrap();
        let body = &whole[HEADER..];
        for cut in 0..body.len() {
            let mut f = (cut as u32).to_be_bytes().to_vec();
            f.extend_from_slice(&body[..cut]);
            assert_eq!(decode(&f), Err(WireError::Malformed), "cut at {cut}");
        }
    }

    fn hello() -> Msg {
        all_msgs().swap_remove(0)
    }

    #[test]
    fn a_hello_is_accepted_only_in_its_one_encoding() {
        let body = body(&hello()).unwrap();
        assert_eq!(decode_body(&body), Ok(hello()));
        // The same value with an over-long varint (the version, 2, as 0x82
        // 0x00): it may read as the same value, but it is not the bytes the
        // sender hashed.
        assert_eq!(VERSION, 2);
        let at = body.iter().position(|&b| b == 2).unwrap();
        let mut long = body[..at].to_vec();
        long.extend_from_slice(&[0x82, 0x00]);
        long.extend_from_slice(&body[at + 1..]);
        assert_eq!(decode_body(&long), Err(WireError::Malformed));
        // A trailing byte.
        let mut more = body.clone();
        more.push(0);
        assert_eq!(decode_body(&more), Err(WireError::Malformed));
        // A cluster name that is not one.
        let Msg::Hello {
            magic,
            version,
            node,
            rule,
            quorum,
            nonce,
            auth,
            ..
        } = hello()
        else {
            unreachable!()
        };
        for cluster in ["", "a b", "\u{1b}[31m"] {
            let bad = Msg::Hello {
                magic,
                version,
                node,
                rule,
                quorum,
                cluster: cluster.into(),
                nonce,
                auth,
            };
            let bytes = postcard::to_allocvec(&bad).unwrap();
            assert_eq!(
                decode_body(&bytes),
                Err(WireError::Malformed),
                "{cluster:?}"
            );
        }
    }

    #[test]
    fn a_hello_of_version_1_is_read_for_its_refusal() {
        // Version 1's Hello: magic, version, node, rule, quorum, nothing more.
        #[derive(Serialize)]
        enum V1 {
            Hello {
                magic: u32,
                version: u16,
                node: NodeInfo,
                rule: u8,
                quorum: u16,
            },
        }
        let v1 = postcard::to_allocvec(&V1::Hello {
            magic: MAGIC,
            version: 1,
            node: info(5),
            rule: 0,
            quorum: 2,
        })
        .unwrap();
        let Ok(Msg::Hello {
            magic,
            version,
            node,
            ..
        }) = decode_body(&v1)
        else {
            panic!("a version-1 Hello is read as a Hello");
        };
        assert_eq!((magic, version, node), (MAGIC, 1, info(5)));
        // A Hello of this version that does not decode is malformed, not
        // another version.
        let mut cut = body(&hello()).unwrap();
        cut.pop();
        assert_eq!(decode_body(&cut), Err(WireError::Malformed));
    }

    #[test]
    fn cluster_names() {
        for good in ["boss", "a", "prod-db.2_x", &"z".repeat(MAX_CLUSTER)] {
            assert!(is_cluster_name(good), "{good}");
        }
        for bad in [
            "",
            " ",
            "a b",
            "a/b",
            "é",
            "a\n",
            &"z".repeat(MAX_CLUSTER + 1),
        ] {
            assert!(!is_cluster_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn seeded_random_bytes_never_panic() {
        // A fixed seed, so a failure replays.
        let mut rng = crate::rng::Rng::new(0x5eed);
        let mut next = || rng.next_u64();
        let mut ok = 0;
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 && !body.is_empty() {
                body[0] %= 8; // a valid tag more often
            }
            let mut f = (len as u32).to_be_bytes().to_vec();
            f.extend_from_slice(&body);
            match decode(&f) {
                Ok(Some((m, used))) => {
                    assert_eq!(used, f.len());
                    // Whatever decoded must encode again.
                    let mut again = Vec::new();
                    encode(&m, &mut again).unwrap();
                    ok += 1;
                }
                Ok(None) => panic!("a complete frame must decode or fail"),
                Err(_) => {}
            }
        }
        assert!(ok > 0, "some random bodies should be valid messages");
    }
}
