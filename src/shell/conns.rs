//! Connection IO: the slab of sockets with their read and write buffers,
//! dialling, accepting, writing within the write limits, and the ways a connection ends.

use super::codec::Codec;
use super::{CONN_BASE, KEEP_CAPACITY, READ_CHUNK, Shell};
use crate::node::{CloseReason, ConnId, Input, SessionKeys};
use crate::wire::{self, HEADER, MAX_FRAME};
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Most unconsumed bytes a connection may hold: one whole frame plus one read.
/// After its complete frames are decoded at most one partial frame is left, so
/// there is always room for the next read.
pub(super) const READ_LIMIT: usize = HEADER + MAX_FRAME + READ_CHUNK;
/// Bytes queued for a peer that does not read, before it is dropped: two of the
/// largest frames (a `-msg` text each) and room for the small ones. The
/// protocol's other messages are a few dozen bytes.
const WRITE_LIMIT: usize = 2 * (HEADER + MAX_FRAME) + 16 * 1024;
/// Bytes queued over all connections at most; past it the connection with the
/// largest queue is dropped as one that does not read.
pub(super) const TOTAL_WRITE_LIMIT: usize = 4 * 1024 * 1024;
/// Frames fed from one connection per loop turn at most; the rest wait for the
/// next turn, so one busy peer cannot starve the timers and the other sources.
pub(super) const CONN_TURN_FRAMES: usize = 64;
/// Bytes read from one connection per loop turn at most.
pub(super) const CONN_TURN_BYTES: usize = READ_CHUNK;
/// Connections accepted per loop turn at most; the rest of the backlog waits
/// for the next turn.
const TURN_ACCEPTS: usize = 256;

/// What a slab entry is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A dial of this address, not yet connected; the core knows no `ConnId` yet.
    Dialing(SocketAddr),
    /// A connection the core knows (accepted, or dialled and connected).
    Open,
    /// Closed by the core while the node is leaving: kept only so the exit flush
    /// can still deliver its `Goodbye`.
    Closing,
}

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) generation: u32,
    pub(super) kind: Kind,
    /// Received bytes not yet decoded: at most one partial frame between reads.
    pub(super) read_buf: Vec<u8>,
    /// Encoded frames not yet written.
    pub(super) write_buf: Vec<u8>,
    /// Registered with WRITABLE interest (kept only while `write_buf` is not empty).
    pub(super) writable: bool,
    /// Listed in `Shell::dirty`: frames were queued and await the end-of-input flush.
    pub(super) dirty: bool,
    /// A first frame (the peer's `Hello`) was decoded: until then a frame may be
    /// at most [`MAX_HELLO`] long.
    pub(super) first_done: bool,
    /// The loop turn it was last read in: read at most once per turn.
    pub(super) served: u64,
    /// Listed in `Shell::later`: its turn's budget ran out with input left.
    pub(super) later: bool,
    /// The peer ended the connection (EOF, error) while frames it sent before
    /// were still waiting for a turn's budget: closed once they are fed.
    pub(super) ended: Option<CloseReason>,
    /// Plain frames, or sealed ones once the core handed the keys.
    pub(super) codec: Codec,
    /// The poll said the peer closed its end or an error waits: read on to
    /// the end or the error, a short read does not mean drained then.
    pub(super) hup: bool,
}

impl Shell {
    /// The slab key of `id` if it still names the connection the core means.
    fn open_key(&self, id: ConnId) -> Option<usize> {
        let key = id.index as usize;
        self.conns
            .get(key)
            .filter(|c| c.generation == id.generation && c.kind == Kind::Open)
            .map(|_| key)
    }

    pub(super) fn id(key: usize, c: &Conn) -> ConnId {
        ConnId {
            index: key as u32,
            generation: c.generation,
        }
    }

    /// Registers `stream` and stores it; its key is its token.
    fn insert(
        &mut self,
        mut stream: TcpStream,
        kind: Kind,
        interest: Interest,
    ) -> io::Result<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut stream, Token(CONN_BASE + key), interest)?;
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        entry.insert(Conn {
            stream,
            generation,
            kind,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            writable: interest.is_writable(),
            dirty: false,
            first_done: false,
            served: 0,
            later: false,
            hup: false,
            ended: None,
            codec: Codec::Plain,
        });
        if self.lowat {
            set_lowat(&self.conns[key], true);
        }
        Ok(key)
    }

    /// Drops a slab entry and its socket; no input follows.
    /// The core does not hear of it: a dial has no `ConnId` yet, and a closed one is gone for it.
    pub(super) fn remove(&mut self, key: usize) {
        let Some(mut c) = self.conns.try_remove(key) else {
            return;
        };
        self.queued -= c.write_buf.len();
        let _ = self.poll.registry().deregister(&mut c.stream);
        if let Kind::Dialing(addr) = c.kind
            && self.dials.get(&addr) == Some(&key)
        {
            self.dials.remove(&addr);
        }
        if self.accept_stalled {
            // A descriptor was freed: the connections waiting in the backlog
            // may be acceptable now.
            self.accept_retry = true;
        }
    }

    /// Drops an open connection and tells the core why.
    /// The core hears of it: `Input::Closed`, fed once the outputs in hand are carried out.
    pub(super) fn fail(&mut self, key: usize, reason: CloseReason) {
        if let Some(c) = self.conns.get(key) {
            let conn = Shell::id(key, c);
            self.remove(key);
            self.pending.push_back(Input::Closed { conn, reason });
        }
    }

    pub(super) fn dial(&mut self, addr: SocketAddr) {
        let old = self.dials.remove(&addr);
        debug_assert!(old.is_none(), "two dials of {addr} in flight");
        if let Some(key) = old {
            self.remove(key);
        }
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                self.pending.push_back(Input::DialFailed {
                    addr,
                    error: e.to_string(),
                });
                return;
            }
        };
        // WRITABLE says the connect finished; READABLE|error says it failed.
        match self.insert(
            stream,
            Kind::Dialing(addr),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            Ok(key) => {
                self.dials.insert(addr, key);
            }
            Err(e) => self.pending.push_back(Input::DialFailed {
                addr,
                error: e.to_string(),
            }),
        }
    }

    /// Seals every later frame of a connection with `keys`, and opens every
    /// later frame read from it. The shell feeds frames one at a time and
    /// carries out every output of a frame before it decodes the next, so the
    /// frames after the peer's `Hello` are the first opened, and the frames
    /// after this output the first sealed.
    pub(super) fn secure(&mut self, id: ConnId, keys: &SessionKeys) {
        if let Some(key) = self.open_key(id) {
            self.conns[key].codec.secure(keys);
            if self.lowat {
                set_lowat(&self.conns[key], true);
            }
        }
    }

    /// Follows the core's [`Node::defers_reads`](crate::node::Node::defers_reads)
    /// after each turn: while it holds, every connection's receive low-water
    /// mark lies above a lone Pong (set on each new one too), and every
    /// connection is read before the timers run; after, it is back to one byte.
    pub(super) fn sync_lowat(&mut self) {
        let want = self.node.defers_reads();
        if want != self.lowat {
            self.lowat = want;
            for (_, c) in &self.conns {
                set_lowat(c, want);
            }
        }
    }

    /// Reads every open connection (before the timers run, while reads are
    /// deferred): the Pongs left waiting by the low-water mark.
    pub(super) fn read_waiting(&mut self) {
        let open: Vec<(usize, u32)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.kind == Kind::Open)
            .map(|(k, c)| (k, c.generation))
            .collect();
        for (key, generation) in open {
            if self.exiting {
                return;
            }
            self.read(key, generation);
        }
    }

    /// Queues a frame; it is written when the outputs of this input are done.
    pub(super) fn send(&mut self, id: ConnId, msg: &wire::Msg) {
        let Some(key) = self.open_key(id) else {
            return; // a stale id: that connection is gone
        };
        let c = &mut self.conns[key];
        let before = c.write_buf.len();
        if let Err(e) = c.codec.encode(msg, &mut c.write_buf) {
            let to = c.stream.peer_addr();
            let to = to.map_or_else(|_| id.to_string(), |a| a.to_string());
            self.console.line(&format!("not sent to {to}: {e}"));
            return;
        }
        self.queued += c.write_buf.len() - before;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push((key, c.generation));
        }
        if c.write_buf.len() > WRITE_LIMIT {
            // Before calling it a peer that does not read, give the socket a chance.
            self.flush(key);
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.write_buf.len() > WRITE_LIMIT)
            {
                self.fail(key, CloseReason::Overflow);
            }
        }
        self.bound_total();
    }

    /// Past [`TOTAL_WRITE_LIMIT`], drops the connection with the largest queue
    /// (after a last chance to write) until the total fits.
    pub(super) fn bound_total(&mut self) {
        while self.queued > TOTAL_WRITE_LIMIT {
            let Some(key) = self
                .conns
                .iter()
                .max_by_key(|(_, c)| c.write_buf.len())
                .map(|(k, _)| k)
            else {
                return;
            };
            self.flush(key);
            if self.queued <= TOTAL_WRITE_LIMIT {
                return;
            }
            match self.conns.get(key).map(|c| c.kind) {
                Some(Kind::Open) => self.fail(key, CloseReason::Overflow),
                Some(_) => self.remove(key),
                None => {}
            }
        }
    }

    /// Writes every connection that has queued frames.
    pub(super) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for (key, generation) in dirty.drain(..) {
            if let Some(c) = self.conns.get_mut(key)
                && c.generation == generation
                && c.dirty
            {
                c.dirty = false;
                self.flush(key);
            }
        }
        self.dirty = dirty;
    }

    /// Writes what it can of a connection's buffer and keeps WRITABLE interest
    /// only while something is left; a write error closes it.
    pub(super) fn flush(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let kind = c.kind;
        let before = c.write_buf.len();
        let written = write_out(c);
        self.queued -= before - c.write_buf.len();
        let result = written.and_then(|()| {
            let want = !c.write_buf.is_empty();
            if want != c.writable {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                self.poll
                    .registry()
                    .reregister(&mut c.stream, Token(CONN_BASE + key), interest)?;
                c.writable = want;
            }
            Ok(())
        });
        if let Err(e) = result {
            match kind {
                Kind::Open => self.fail(key, super::reading::closed_by(&e)),
                _ => self.remove(key),
            }
        }
    }

    /// The core is done with a connection: one non-blocking flush, then close.
    /// The core does not hear of it: it asked for the close (`Output::Close`).
    pub(super) fn close(&mut self, id: ConnId) {
        let Some(key) = self.open_key(id) else {
            return;
        };
        let c = &mut self.conns[key];
        let before = c.write_buf.len();
        let flushed = write_out(c);
        self.queued -= before - c.write_buf.len();
        if flushed.is_ok() && !c.write_buf.is_empty() && self.node.is_leaving() {
            // Leaving: its Goodbye is still queued. `Exit` follows in this batch,
            // and the exit flush gives it a bounded time to go out.
            c.kind = Kind::Closing;
            return;
        }
        discard_input(&mut c.stream, &mut [0u8; 512]);
        self.remove(key);
    }

    pub(super) fn conn_event(&mut self, key: usize, ev: &Event) {
        let Some(c) = self.conns.get_mut(key) else {
            return; // closed earlier in this batch
        };
        if ev.is_read_closed() || ev.is_error() {
            c.hup = true;
        }
        let generation = c.generation;
        match c.kind {
            Kind::Dialing(addr) => {
                if !self.dial_event(key, addr) {
                    return;
                }
                // Connected: the peer's Hello may be waiting already.
                self.read(key, generation);
            }
            Kind::Closing => {}
            Kind::Open => {
                if ev.is_writable() {
                    self.flush(key);
                    // A write error closed it: tell the core now.
                    self.drain();
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read(key, generation);
                }
            }
        }
    }

    /// A dialling socket became ready: connected, failed, or neither yet (readiness
    /// is a hint). Returns whether it is now an open connection.
    fn dial_event(&mut self, key: usize, addr: SocketAddr) -> bool {
        let c = &mut self.conns[key];
        let status = match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match c.stream.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
                Err(e) => Err(e),
            },
        };
        let status = status.and_then(|()| {
            // Failover latency matters more than packet count.
            c.stream.set_nodelay(true)?;
            self.poll.registry().reregister(
                &mut c.stream,
                Token(CONN_BASE + key),
                Interest::READABLE,
            )
        });
        match status {
            Ok(()) => {
                c.kind = Kind::Open;
                c.writable = false;
                let conn = Shell::id(key, c);
                if self.dials.get(&addr) == Some(&key) {
                    self.dials.remove(&addr);
                }
                self.feed(Input::Connected { conn, addr });
                true
            }
            Err(e) => {
                self.remove(key);
                self.feed(Input::DialFailed {
                    addr,
                    error: e.to_string(),
                });
                false
            }
        }
    }

    /// Accepts until WouldBlock, or [`TURN_ACCEPTS`] in a turn; each new
    /// connection is one input.
    pub(super) fn accept(&mut self) {
        let mut budget = TURN_ACCEPTS;
        while !self.exiting {
            if budget == 0 {
                self.accept_later = true;
                return;
            }
            budget -= 1;
            match self.listener.accept() {
                Ok((stream, from)) => {
                    // Failover latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    match self.insert(stream, Kind::Open, Interest::READABLE) {
                        Ok(key) => {
                            let conn = Shell::id(key, &self.conns[key]);
                            self.feed(Input::Accepted { conn, from });
                        }
                        Err(e) => self
                            .console
                            .line(&format!("cannot take the connection from {from}: {e}")),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The backlog is empty: whatever stalled us is over.
                    self.accept_stalled = false;
                    return;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // EMFILE and friends: say so once per stall (until the backlog
                    // is empty again), and stop until a descriptor frees up or
                    // another connection arrives, instead of spinning on a backlog
                    // we cannot take.
                    if !self.accept_stalled {
                        self.console
                            .line(&format!("cannot accept a connection: {e}"));
                    }
                    self.accept_stalled = true;
                    return;
                }
            }
        }
    }
}

/// Sets a connection's receive low-water mark: above a lone Pong while reads
/// are deferred, else one byte. An EOF or an error wakes the loop whatever the
/// mark. A failure (none is expected on an open socket) only leaves the mark
/// as it was: a Pong then wakes the loop, or waits for the next timer.
fn set_lowat(c: &Conn, defer: bool) {
    let bytes = if defer { c.codec.pong_lowat() } else { 1 };
    let bytes = nix::libc::c_int::try_from(bytes).unwrap_or(1);
    // SAFETY: the descriptor is the connection's open socket for the whole
    // call, and the option value points to a c_int of the length given.
    let _ = unsafe {
        nix::libc::setsockopt(
            c.stream.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_RCVLOWAT,
            (&raw const bytes).cast(),
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
}

/// Writes from the front of `c.write_buf` until it is empty or the socket is full.
fn write_out(c: &mut Conn) -> io::Result<()> {
    let mut sent = 0;
    let result = loop {
        if sent == c.write_buf.len() {
            break Ok(());
        }
        match c.stream.write(&c.write_buf[sent..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // Consume once per flush, not once per write.
    c.write_buf.drain(..sent);
    if c.write_buf.is_empty() && c.write_buf.capacity() > KEEP_CAPACITY {
        c.write_buf = Vec::new();
    }
    result
}

/// Reads and drops what the peer sent, a bounded amount: closing a socket with
/// unread input sends RST instead of FIN, and an RST can destroy the frames we
/// just queued (a Goodbye) before the peer reads them.
pub(super) fn discard_input(stream: &mut TcpStream, sink: &mut [u8]) {
    for _ in 0..64 {
        match stream.read(sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
