//! Reading connections: each turn's budget of bytes and frames per connection,
//! decoding (through the connection's codec) and feeding complete frames to the
//! core one at a time, so that what the core answers to one frame (a switch to
//! sealed frames) applies to the next.

use super::conns::{CONN_TURN_BYTES, CONN_TURN_FRAMES, Conn, READ_LIMIT};
use super::{KEEP_CAPACITY, Shell};
use crate::node::{CloseReason, Input};
use crate::wire::{self, HEADER, MAX_HELLO};
use std::io::{self, Read};

/// Why a connection ended, from the error a read or write on it gave: a
/// reset (the peer's socket closed with input unread, as when its node exits)
/// apart from other errors.
pub(super) fn closed_by(e: &io::Error) -> CloseReason {
    if e.kind() == io::ErrorKind::ConnectionReset {
        CloseReason::Reset(e.to_string())
    } else {
        CloseReason::Error(e.to_string())
    }
}

impl Conn {
    /// Reads the socket into the read buffer, through `scratch`, until the buffer
    /// is at its limit, `bytes` (the turn's budget, counted down) are read, or the
    /// socket is drained: then it returns true. Drained is a read that would
    /// block, or one that returned less than asked (the socket held no more: a
    /// byte arriving later makes a new edge), which saves the read that would
    /// only say `EAGAIN`; but not once the poll said the peer closed its end,
    /// as that end must be read too. An end of stream or an error is kept in
    /// `ended`.
    fn fill(&mut self, scratch: &mut [u8], bytes: &mut usize) -> bool {
        // Until the Hello is in, no more than a Hello may be buffered.
        let limit = if self.first_done {
            READ_LIMIT
        } else {
            HEADER + MAX_HELLO
        };
        loop {
            let room = limit
                .saturating_sub(self.read_buf.len())
                .min(scratch.len())
                .min(*bytes);
            if room == 0 {
                return false;
            }
            match self.stream.read(&mut scratch[..room]) {
                Ok(0) => {
                    self.ended = Some(CloseReason::Eof);
                    return false;
                }
                Ok(n) => {
                    self.read_buf.extend_from_slice(&scratch[..n]);
                    *bytes -= n;
                    if n < room && !self.hup {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.ended = Some(closed_by(&e));
                    return false;
                }
            }
        }
    }
}

impl Shell {
    /// Reads a connection and feeds its complete frames, within this turn's
    /// budget: at most [`CONN_TURN_FRAMES`] frames and [`CONN_TURN_BYTES`] bytes,
    /// and what is left of [`TURN_FRAMES`](super::TURN_FRAMES). A connection read
    /// already this turn, or left with input when its budget ran out, is listed for
    /// the next turn.
    pub(super) fn read(&mut self, key: usize, generation: u32) {
        let Some(c) = self
            .conns
            .get_mut(key)
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        if c.served == self.turn || self.turn_frames == 0 {
            self.defer(key);
            return;
        }
        c.served = self.turn;
        let mut scratch = std::mem::take(&mut self.scratch);
        self.read_with(key, generation, &mut scratch);
        self.scratch = scratch;
    }

    /// Lists a connection for the next turn (once).
    fn defer(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.later
        {
            c.later = true;
            self.later.push((key, c.generation));
        }
    }

    fn read_with(&mut self, key: usize, generation: u32, scratch: &mut [u8]) {
        // The scratch buffer is lent out while feeding the core; a read from
        // inside a feed would get an empty one and never make progress.
        debug_assert!(!scratch.is_empty(), "read re-entered");
        if scratch.is_empty() {
            return;
        }
        let mut frames = CONN_TURN_FRAMES;
        let mut bytes = CONN_TURN_BYTES;
        let mut drained = false;
        loop {
            // Complete frames first, also before an EOF or an error: the peer
            // may have said Goodbye just before it closed.
            match self.deliver(key, generation, &mut frames) {
                Delivered::Gone => return,
                Delivered::Budget => return self.defer(key),
                Delivered::NeedMore => {}
            }
            let Some(c) = self
                .conns
                .get_mut(key)
                .filter(|c| c.generation == generation)
            else {
                return;
            };
            if let Some(reason) = c.ended.take() {
                return self.fail_now(key, reason);
            }
            if drained {
                return;
            }
            if bytes == 0 {
                // Maybe more in the socket, and no new edge will say so.
                return self.defer(key);
            }
            drained = c.fill(scratch, &mut bytes);
        }
    }

    /// Closes an open connection outside of carrying out outputs, and feeds why.
    /// The core hears of it at once: `Input::Closed` is fed before this returns.
    fn fail_now(&mut self, key: usize, reason: CloseReason) {
        self.fail(key, reason);
        self.drain();
    }

    /// Decodes and feeds the complete frames in a connection's read buffer, at
    /// most `frames` of them (counted down, and off the turn's budget).
    fn deliver(&mut self, key: usize, generation: u32, frames: &mut usize) -> Delivered {
        let mut used = 0;
        loop {
            if self.exiting {
                return Delivered::Gone;
            }
            let Some(c) = self
                .conns
                .get_mut(key)
                .filter(|c| c.generation == generation)
            else {
                return Delivered::Gone;
            };
            let rest = &c.read_buf[used..];
            let step = if *frames == 0 || self.turn_frames == 0 {
                Ok(None)
            } else {
                match wire::announced_len(rest) {
                    Some(n) if !c.first_done && n > MAX_HELLO => {
                        Err(CloseReason::Malformed(wire::WireError::FirstTooLong(n)))
                    }
                    _ => c.codec.decode(rest),
                }
            };
            match step {
                Ok(Some((msg, n))) => {
                    used += n;
                    c.first_done = true;
                    *frames -= 1;
                    self.turn_frames -= 1;
                    let conn = Shell::id(key, c);
                    self.feed(Input::Frame { conn, msg });
                }
                Ok(None) => {
                    // Consume once per batch, not once per frame.
                    c.read_buf.drain(..used);
                    if c.read_buf.is_empty() && c.read_buf.capacity() > KEEP_CAPACITY {
                        c.read_buf = Vec::new();
                    }
                    let spent = *frames == 0 || self.turn_frames == 0;
                    // Spent: frames may be left, or more in the socket. With
                    // nothing left of a connection that ended, close it now.
                    return if spent && !(c.read_buf.is_empty() && c.ended.is_some()) {
                        Delivered::Budget
                    } else {
                        Delivered::NeedMore
                    };
                }
                Err(reason) => {
                    self.fail_now(key, reason);
                    return Delivered::Gone;
                }
            }
        }
    }
}

/// What feeding a connection's buffered frames left.
enum Delivered {
    /// The connection is closed (or the node exits).
    Gone,
    /// The budget ran out: read it again next turn.
    Budget,
    /// No complete frame is left: read more.
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    /// A socket closed with input it had not read resets the connection: the
    /// other end's read says so, and that is a `Reset` (what a master killed
    /// with Pongs unread does to its voters), any other error an `Error`.
    #[test]
    fn a_peer_closed_with_input_unread_is_a_reset() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.write_all(b"a pong").expect("write");
        // The bytes are in the server's socket, unread (a blocking peek,
        // bounded by a read timeout).
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut probe = [0u8; 16];
        assert!(server.peek(&mut probe).expect("peek") > 0);
        drop(server);
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let err = loop {
            match client.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break e,
                Ok(n) => panic!("read {n} bytes, not a reset"),
            }
        };
        assert!(matches!(closed_by(&err), CloseReason::Reset(_)), "{err}");
        let other = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(matches!(closed_by(&other), CloseReason::Error(_)));
    }
}
