//! A TCP proxy between real nodes that can, on command, tamper with one frame
//! after the handshake (past [`UNTOUCHED_FRAMES`]): flip one bit of its body,
//! send the frame before it again after it (a replay), or drop it; or flip one
//! bit of a proof of the handshake ([`PROOF_FRAME`]). It cuts the byte stream into whole frames by their length prefix
//! (4 bytes, big-endian, see `boss::wire`), so it acts on one frame exactly.
//!
//! Each [`Proxy`] listens on a port of its own and forwards every connection to
//! one node; a node started with `--advertise` set to its proxy's address is
//! reached through it by every other node, dials and redials alike. Proxies
//! made with one [`Tamper`] share its one armed fault: the first frame on any
//! of their connections that it fits takes it.
//!
//! Plain std threads, two per connection (one per direction) and one per
//! listener. Dropping a proxy stops them all: it shuts every socket down and
//! wakes its listener with a connection of its own.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Frames of each direction that are never touched: the handshake's two (the
/// `Hello` and the proof), and the first four after it, so that a fault lands
/// on a connection in steady use (heartbeats), never on a duplicate that is
/// being resolved (those carry a few frames and are closed).
pub const UNTOUCHED_FRAMES: u64 = 2 + 4;

/// The index of the proof among a direction's frames (after the `Hello`).
pub const PROOF_FRAME: u64 = 1;

/// Longest frame the proxy forwards (more than any node sends): a longer
/// length prefix ends the connection, as it would at a node.
const MAX_BODY: usize = 1 << 20;

/// What to do to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flip one bit in the middle of its body.
    Flip,
    /// Forward it, then send the frame before it (of the same direction) again.
    Replay,
    /// Do not forward it.
    Drop,
    /// Flip one bit in the middle of the proof ([`PROOF_FRAME`]) of the next
    /// connection, in either direction.
    FlipProof,
}

/// Where a fault was applied: the proxy's target node received the frame
/// (`to_target`), or the node that dialled the proxy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub fault: Fault,
    pub to_target: bool,
    /// The address of the proxy that applied it.
    pub proxy: SocketAddr,
}

#[derive(Default)]
struct TamperState {
    armed: Option<Fault>,
    applied: Vec<Applied>,
    /// Connections open through the proxies.
    open: usize,
}

/// The fault armed for a set of proxies, and the faults they applied.
#[derive(Default)]
pub struct Tamper {
    state: Mutex<TamperState>,
    changed: Condvar,
}

impl Tamper {
    fn lock(&self) -> MutexGuard<'_, TamperState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms `fault` for the next frame after the handshake, on any connection;
    /// the ticket to wait for it with ([`Tamper::wait_applied`]).
    pub fn arm(&self, fault: Fault) -> usize {
        let mut st = self.lock();
        st.armed = Some(fault);
        st.applied.len()
    }

    /// Waits until the fault armed with `ticket` was applied (at most
    /// `timeout`), and says where.
    pub fn wait_applied(&self, ticket: usize, timeout: Duration) -> Result<Applied, String> {
        let deadline = crate::common::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(a) = st.applied.get(ticket) {
                return Ok(*a);
            }
            let left = deadline.saturating_duration_since(crate::common::now());
            if left.is_zero() {
                return Err(format!(
                    "the proxy did not apply {:?} within {timeout:?}",
                    st.armed
                ));
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until exactly `n` connections are open through the proxies, at
    /// most `timeout`. Two nodes that lost each other both redial, and the
    /// duplicate is closed once the kept one is confirmed: a fault must wait
    /// for that, or it could hit the duplicate and nothing else.
    pub fn wait_open(&self, n: usize, timeout: Duration) -> Result<(), String> {
        let deadline = crate::common::now() + timeout;
        let mut st = self.lock();
        while st.open != n {
            let left = deadline.saturating_duration_since(crate::common::now());
            if left.is_zero() {
                return Err(format!(
                    "{} connections open through the proxies after {timeout:?}, not {n}",
                    st.open
                ));
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    fn opened(&self) {
        self.lock().open += 1;
        self.changed.notify_all();
    }

    fn closed(&self) {
        let mut st = self.lock();
        st.open = st.open.saturating_sub(1);
        drop(st);
        self.changed.notify_all();
    }

    /// If a fault is armed and can be applied to frame `index` of a direction
    /// (`len` bytes long, with a frame before it to replay or not), takes it.
    fn take(&self, index: u64, len: usize, can_replay: bool) -> Option<Fault> {
        let mut st = self.lock();
        let fits = match st.armed? {
            Fault::FlipProof => index == PROOF_FRAME && len > 0,
            Fault::Flip => index >= UNTOUCHED_FRAMES && len > 0,
            Fault::Replay => index >= UNTOUCHED_FRAMES && can_replay,
            Fault::Drop => index >= UNTOUCHED_FRAMES,
        };
        if fits { st.armed.take() } else { None }
    }

    fn record(&self, a: Applied) {
        self.lock().applied.push(a);
        self.changed.notify_all();
    }
}

/// What the threads of a forwarding proxy share.
struct Shared {
    addr: SocketAddr,
    target: SocketAddr,
    tamper: Arc<Tamper>,
    stop: AtomicBool,
    /// Every socket of every connection, to shut down when the proxy stops.
    sockets: Mutex<Vec<TcpStream>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    /// Connections accepted so far, and a bell for each new one.
    accepted: Mutex<usize>,
    accepted_more: Condvar,
}

/// A listener that forwards every connection to one node.
pub struct Proxy {
    addr: SocketAddr,
    tamper: Arc<Tamper>,
    /// Until [`Proxy::forward_to`].
    listener: Option<TcpListener>,
    /// From [`Proxy::forward_to`] on: the threads' state and the accept loop.
    running: Option<(Arc<Shared>, JoinHandle<()>)>,
}

impl Proxy {
    /// Binds a port of its own on 127.0.0.1 (port 0). Nothing is forwarded
    /// before [`Proxy::forward_to`]: a dial waits in the listen backlog.
    pub fn bind(tamper: &Arc<Tamper>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        Proxy {
            addr,
            tamper: Arc::clone(tamper),
            listener: Some(listener),
            running: None,
        }
    }

    /// Where nodes dial it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.running.as_ref().map_or(0, |(s, _)| *lock(&s.accepted))
    }

    /// Waits until it has accepted at least `n` connections, at most `timeout`.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> Result<(), String> {
        let Some((s, _)) = &self.running else {
            return Err("the proxy forwards nothing yet".into());
        };
        let deadline = crate::common::now() + timeout;
        let mut accepted = lock(&s.accepted);
        while *accepted < n {
            let left = deadline.saturating_duration_since(crate::common::now());
            if left.is_zero() {
                return Err(format!(
                    "the proxy accepted {} connections within {timeout:?}, not {n}",
                    *accepted
                ));
            }
            accepted = s
                .accepted_more
                .wait_timeout(accepted, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    /// Starts forwarding every connection to `target`.
    pub fn forward_to(&mut self, target: SocketAddr) {
        let Some(listener) = self.listener.take() else {
            panic!("forward_to called twice");
        };
        let shared = Arc::new(Shared {
            addr: self.addr,
            target,
            tamper: Arc::clone(&self.tamper),
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
            accepted: Mutex::new(0),
            accepted_more: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(&listener, &s));
        self.running = Some((shared, accept));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let Some((s, accept)) = self.running.take() else {
            return;
        };
        {
            let sockets = lock(&s.sockets);
            s.stop.store(true, Ordering::SeqCst);
            for sock in sockets.iter() {
                let _ = sock.shutdown(Shutdown::Both);
            }
        }
        // Wakes the blocked accept; it sees `stop` and ends.
        let _ = TcpStream::connect(s.addr);
        let _ = accept.join();
        let pumps: Vec<JoinHandle<()>> = lock(&s.pumps).drain(..).collect();
        for p in pumps {
            let _ = p.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let Ok((inbound, _)) = listener.accept() else {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        };
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        *lock(&shared.accepted) += 1;
        shared.accepted_more.notify_all();
        let Ok(outbound) = TcpStream::connect(shared.target) else {
            continue; // the node is gone: the dialler sees the connection end
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let clones = (
            inbound.try_clone(),
            outbound.try_clone(),
            outbound.try_clone(),
            inbound.try_clone(),
        );
        let (Ok(in_r), Ok(out_w), Ok(out_r), Ok(in_w)) = clones else {
            continue;
        };
        {
            let mut sockets = lock(&shared.sockets);
            // Checked under the lock that Drop shuts sockets down under, so no
            // connection is left running after the proxy stopped.
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            sockets.push(inbound);
            sockets.push(outbound);
        }
        shared.tamper.opened();
        // Set by the first of the two pumps to end, which closes both ways.
        let ended = Arc::new(AtomicBool::new(false));
        let (s1, s2) = (Arc::clone(shared), Arc::clone(shared));
        let (e1, e2) = (Arc::clone(&ended), ended);
        let up = thread::spawn(move || pump(in_r, out_w, true, &s1, &e1));
        let down = thread::spawn(move || pump(out_r, in_w, false, &s2, &e2));
        lock(&shared.pumps).extend([up, down]);
    }
}

/// Forwards whole frames from `from` to `to` until either end closes; applies
/// the armed fault to the first frame after the handshake that can take it.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    to_target: bool,
    shared: &Shared,
    ended: &AtomicBool,
) {
    let mut index = 0u64;
    let mut previous: Option<Vec<u8>> = None;
    loop {
        let mut header = [0u8; 4];
        if from.read_exact(&mut header).is_err() {
            break;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_BODY {
            break;
        }
        let mut frame = header.to_vec();
        frame.resize(4 + len, 0);
        if from.read_exact(&mut frame[4..]).is_err() {
            break;
        }
        let mut send = vec![frame.clone()];
        let fault = shared.tamper.take(index, len, previous.is_some());
        match fault {
            Some(Fault::Flip | Fault::FlipProof) => send[0][4 + len / 2] ^= 0x01,
            Some(Fault::Replay) => send.extend(previous.take()),
            Some(Fault::Drop) => send.clear(),
            None => {}
        }
        if let Some(fault) = fault {
            shared.tamper.record(Applied {
                fault,
                to_target,
                proxy: shared.addr,
            });
        }
        if index >= UNTOUCHED_FRAMES {
            previous = Some(frame);
        }
        index += 1;
        let bytes: Vec<u8> = send.concat();
        if !bytes.is_empty() && to.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    if !ended.swap(true, Ordering::SeqCst) {
        shared.tamper.closed();
    }
}
