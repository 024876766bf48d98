//! One connection's frame codec: plain frames until the core hands the
//! connection's keys ([`Output::Secure`](crate::Output::Secure)), sealed frames
//! after (see [`crate::auth#protocol`]). A frame is always a 4-byte big-endian
//! length and a body; sealed, the body is the plain body sealed, [`TAG`] bytes
//! longer, and the length prefix counts the sealed body.

use crate::auth::{AuthError, Opener, Sealer, TAG};
use crate::node::{CloseReason, SessionKeys};
use crate::wire::{self, HEADER, MAX_FRAME, Msg, WireError};

/// How one connection's frames are written and read.
#[derive(Debug, Default)]
pub(super) enum Codec {
    /// Plain frames: before the handshake's keys, or without a secret.
    #[default]
    Plain,
    /// Every frame sealed by this end and opened from the other.
    Sealed { sealer: Sealer, opener: Opener },
}

/// Why a frame could not be written.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SendError {
    /// The message does not fit in a frame.
    Wire(WireError),
    /// The sealer refused (its counter is spent).
    Seal(AuthError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Wire(e) => e.fmt(f),
            SendError::Seal(e) => e.fmt(f),
        }
    }
}

impl Codec {
    /// The receive low-water mark of a connection whose lone `Pong` may wait
    /// unread (see `Node::defers_reads`): one byte more than the longest Pong
    /// frame, sealed or not, so any longer frame still wakes the loop.
    pub(super) fn pong_lowat(&self) -> usize {
        match self {
            Codec::Plain => wire::PONG_FRAME_MAX + 1,
            Codec::Sealed { .. } => wire::PONG_FRAME_MAX + TAG + 1,
        }
    }

    /// From now on, frames are sealed and opened with `keys`.
    pub(super) fn secure(&mut self, keys: &SessionKeys) {
        *self = Codec::Sealed {
            sealer: keys.sealer(),
            opener: keys.opener(),
        };
    }

    /// Appends one frame holding `msg` to `out`; on error `out` is as it was.
    pub(super) fn encode(&mut self, msg: &Msg, out: &mut Vec<u8>) -> Result<(), SendError> {
        match self {
            Codec::Plain => wire::encode(msg, out).map_err(SendError::Wire),
            Codec::Sealed { sealer, .. } => {
                let body = wire::body(msg).map_err(SendError::Wire)?;
                let sealed = sealer.seal(&body).map_err(SendError::Seal)?;
                // `wire::body` leaves room for the tag: this always fits.
                debug_assert!(sealed.len() <= MAX_FRAME);
                out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
                out.extend_from_slice(&sealed);
                Ok(())
            }
        }
    }

    /// The first complete frame at the start of `buf`: `Ok(None)` while more
    /// bytes are needed, else the message and the bytes it used. An error
    /// means the connection must be closed for that reason. A sealed frame is
    /// opened only once complete, so the counter moves once per frame.
    pub(super) fn decode(&mut self, buf: &[u8]) -> Result<Option<(Msg, usize)>, CloseReason> {
        match self {
            Codec::Plain => wire::decode(buf).map_err(CloseReason::Malformed),
            Codec::Sealed { opener, .. } => {
                let Some(len) = wire::announced_len(buf) else {
                    return Ok(None);
                };
                if len > MAX_FRAME {
                    return Err(CloseReason::Malformed(WireError::TooLong(len)));
                }
                let Some(sealed) = buf.get(HEADER..HEADER + len) else {
                    return Ok(None);
                };
                if len < TAG {
                    return Err(CloseReason::Unauthenticated);
                }
                let body = opener
                    .open(sealed)
                    .map_err(|_| CloseReason::Unauthenticated)?;
                let msg = wire::decode_body(&body).map_err(CloseReason::Malformed)?;
                Ok(Some((msg, HEADER + len)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Keys, Role, Secret};

    fn keys(secret: &[u8], dialler: &[u8]) -> (SessionKeys, SessionKeys) {
        let secret = Secret::from_bytes(secret).unwrap();
        let d = Keys::derive(&secret, "boss", dialler, b"acceptor hello", Role::Dialler);
        let a = Keys::derive(&secret, "boss", dialler, b"acceptor hello", Role::Acceptor);
        (SessionKeys::from(d), SessionKeys::from(a))
    }

    fn pair() -> (Codec, Codec) {
        let (d, a) = keys(b"0123456789abcdef", b"dialler hello");
        let (mut dc, mut ac) = (Codec::default(), Codec::default());
        dc.secure(&d);
        ac.secure(&a);
        (dc, ac)
    }

    fn msgs() -> Vec<Msg> {
        vec![
            Msg::Proof([3; 32]),
            Msg::Members(vec!["10.0.0.1:7000".parse().unwrap()]),
            Msg::Ping(7),
            Msg::Text("é".repeat(1000)),
            Msg::Goodbye,
        ]
    }

    fn frames(codec: &mut Codec, msgs: &[Msg]) -> Vec<Vec<u8>> {
        msgs.iter()
            .map(|m| {
                let mut buf = Vec::new();
                codec.encode(m, &mut buf).unwrap();
                buf
            })
            .collect()
    }

    #[test]
    fn plain_frames_are_the_wire_s() {
        let mut c = Codec::default();
        for m in msgs() {
            let (mut ours, mut wires) = (Vec::new(), Vec::new());
            c.encode(&m, &mut ours).unwrap();
            wire::encode(&m, &mut wires).unwrap();
            assert_eq!(ours, wires);
            assert_eq!(c.decode(&ours), Ok(Some((m, ours.len()))));
        }
    }

    #[test]
    fn sealed_frames_open_in_order_and_hide_the_body() {
        let (mut d, mut a) = pair();
        let sent = frames(&mut d, &msgs());
        let stream: Vec<u8> = sent.concat();
        let mut at = 0;
        for (m, f) in msgs().into_iter().zip(&sent) {
            let mut plain = Vec::new();
            wire::encode(&m, &mut plain).unwrap();
            assert_eq!(f.len(), plain.len() + TAG);
            if let Msg::Text(t) = &m {
                let seen = String::from_utf8_lossy(f);
                assert!(!seen.contains(&t[..20]), "the text travels sealed");
            }
            // Byte by byte: nothing opens before the frame is whole.
            for cut in at..at + f.len() {
                assert_eq!(a.decode(&stream[at..cut]), Ok(None));
            }
            assert_eq!(a.decode(&stream[at..]), Ok(Some((m, f.len()))));
            at += f.len();
        }
        // And the other direction, with its own keys and counter.
        let back = frames(&mut a, &[Msg::Pong(7)]);
        assert_eq!(d.decode(&back[0]), Ok(Some((Msg::Pong(7), back[0].len()))));
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let (mut d, _) = pair();
        let f = frames(&mut d, &[Msg::Text("hello".into())]).remove(0);
        for bit in HEADER * 8..f.len() * 8 {
            let mut bad = f.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (_, mut a) = pair();
            assert_eq!(
                a.decode(&bad),
                Err(CloseReason::Unauthenticated),
                "bit {bit}"
            );
        }
        // A flip in the length prefix: a frame that is not there yet, too
        // long, or cut short (and so does not open).
        for bit in 0..HEADER * 8 {
            let mut bad = f.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (_, mut a) = pair();
            let got = a.decode(&bad);
            assert!(
                matches!(
                    got,
                    Ok(None)
                        | Err(CloseReason::Unauthenticated)
                        | Err(CloseReason::Malformed(WireError::TooLong(_)))
                ),
                "bit {bit}: {got:?}"
            );
        }
    }

    #[test]
    fn replayed_reordered_dropped_and_foreign_frames_are_refused() {
        let m = msgs();
        // Replayed: the same frame again.
        let (mut d, mut a) = pair();
        let f = frames(&mut d, &m);
        assert!(a.decode(&f[0]).unwrap().is_some());
        assert_eq!(a.decode(&f[0]), Err(CloseReason::Unauthenticated));
        // Dropped (or reordered): the second first.
        let (mut d, mut a) = pair();
        let f = frames(&mut d, &m);
        assert_eq!(a.decode(&f[1]), Err(CloseReason::Unauthenticated));
        // A failed frame changes nothing: the right one still opens.
        assert_eq!(a.decode(&f[0]), Ok(Some((m[0].clone(), f[0].len()))));
        // Reflected: our own frame sent back to us.
        let (mut d, _) = pair();
        let f = frames(&mut d, &m);
        let (mut d2, _) = pair();
        assert_eq!(d2.decode(&f[0]), Err(CloseReason::Unauthenticated));
        // From another connection (another handshake): other keys.
        let (other, _) = keys(b"0123456789abcdef", b"another dialler hello");
        let mut o = Codec::default();
        o.secure(&other);
        let f = frames(&mut o, &m);
        let (_, mut a) = pair();
        assert_eq!(a.decode(&f[0]), Err(CloseReason::Unauthenticated));
        // With another secret.
        let (wrong, _) = keys(b"another secret!!", b"dialler hello");
        let mut w = Codec::default();
        w.secure(&wrong);
        let f = frames(&mut w, &m);
        let (_, mut a) = pair();
        assert_eq!(a.decode(&f[0]), Err(CloseReason::Unauthenticated));
        // A plain frame where a sealed one is due.
        let mut plain = Vec::new();
        wire::encode(&Msg::Ping(1), &mut plain).unwrap();
        let (_, mut a) = pair();
        assert_eq!(a.decode(&plain), Err(CloseReason::Unauthenticated));
    }

    #[test]
    fn the_largest_message_fits_sealed() {
        let overhead = wire::body(&Msg::Text(String::new())).unwrap().len() + 2;
        let m = Msg::Text("x".repeat(wire::MAX_BODY - overhead));
        assert_eq!(wire::body(&m).unwrap().len(), wire::MAX_BODY);
        let (mut d, mut a) = pair();
        let f = frames(&mut d, std::slice::from_ref(&m)).remove(0);
        assert_eq!(f.len(), HEADER + MAX_FRAME);
        assert_eq!(a.decode(&f), Ok(Some((m, f.len()))));
        // One byte more is not sent, and nothing is appended.
        let over = Msg::Text("x".repeat(wire::MAX_BODY - overhead + 1));
        let mut buf = vec![1];
        assert_eq!(
            d.encode(&over, &mut buf),
            Err(SendError::Wire(WireError::Oversized))
        );
        assert_eq!(buf, [1]);
        // A sealed frame announcing more than the limit is refused before
        // its body arrives.
        let (_, mut a) = pair();
        let long = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert_eq!(
            a.decode(&long),
            Err(CloseReason::Malformed(WireError::TooLong(MAX_FRAME + 1)))
        );
    }
}
