//! The fake TCP network. It models what TCP promises and nothing more: frames on
//! one direction of one connection arrive in order (FIFO), after a random delay;
//! a close reaches the other end as EOF after the frames already in flight;
//! nothing comes back to the closer. Dials go through a SYN ([`Attempt`]): it is
//! refused, lost in a partition, or makes a [`Link`]. Partitions hold frames (see
//! `faults`); what reaches a node is delivered as its input.

use crate::invariants::Failure;
use crate::world::{World, addr_of, slot_of};
use boss::node::{CloseReason, ConnId, Input, Time};
use boss::wire::Msg;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// Most items in flight on one direction of one connection. Frames pile up
/// only while a receiver is frozen or slow, or a partition holds them, and the
/// sender times the peer out within `timeout`: a few dozen heartbeats at most.
const MAX_QUEUE: usize = 256;

/// Per-node connection ids with a generation, as the shell's slab would give.
#[derive(Default)]
pub(crate) struct IdAlloc {
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl IdAlloc {
    fn alloc(&mut self) -> ConnId {
        if let Some(index) = self.free.pop() {
            ConnId {
                index,
                generation: self.generations[index as usize],
            }
        } else {
            self.generations.push(0);
            ConnId {
                index: self.generations.len() as u32 - 1,
                generation: 0,
            }
        }
    }

    fn free(&mut self, id: ConnId) {
        self.generations[id.index as usize] += 1;
        self.free.push(id.index);
    }
}

#[derive(Debug)]
pub(crate) struct End {
    pub(crate) slot: usize,
    /// The incarnation of the node at this end.
    pub(crate) inc: u32,
    conn: ConnId,
    /// The node may still get input for it (not closed by it, no close delivered).
    pub(crate) live: bool,
    /// Its `Accepted`/`Connected` was delivered.
    pub(crate) announced: bool,
}

#[derive(Debug)]
pub(crate) enum Item {
    Accepted(SocketAddr),
    Connected(SocketAddr),
    Frame(Msg),
    Eof,
    Reset,
}

/// One TCP connection: `ends[0]` dialled, `ends[1]` accepted. `q[i]` holds what
/// travels to `ends[i]`, in order.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) ends: [End; 2],
    pub(crate) q: [VecDeque<(Time, Item)>; 2],
    last: [Time; 2],
    pub(crate) reset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The SYN is on its way; it arrives at `at`.
    Syn,
    /// Refused: `DialFailed` reaches the dialer at `at`.
    Refused,
    /// Connected: the `Connected` item travels on this link.
    Linked(u64),
    /// The SYN was lost in a partition: silence until the dialer cancels.
    Lost,
}

#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) from: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) at: Time,
    pub(crate) stage: Stage,
}

impl World {
    /// Whatever `from` sends to `to` is held (or, for a SYN, lost).
    pub(crate) fn cut(&self, from: usize, to: usize) -> bool {
        let (f, t) = (&self.slots[from], &self.slots[to]);
        f.group != t.group
            || (f.oneway == 1 && t.oneway == 2)
            || self
                .severed
                .iter()
                .any(|&(a, b)| (a, b) == (from, to) || (b, a) == (from, to))
    }

    pub(crate) fn delay(&mut self, from: usize, to: usize) -> Duration {
        let mut d = self.rng.duration(self.p.delay.0, self.p.delay.1);
        for x in [from, to] {
            if self.now < self.slots[x].slow_until {
                let extra = self.slots[x].slow_extra;
                d += self.rng.duration(Duration::ZERO, extra);
            }
        }
        d
    }

    /// Queues `item` to `ends[i]` of link `l`, after everything already queued.
    pub(crate) fn push(&mut self, l: u64, i: usize, item: Item) -> Result<(), Failure> {
        let link = &self.links[&l];
        if !link.ends[i].live || (link.reset && !matches!(item, Item::Reset)) {
            self.stats.dropped += 1;
            return Ok(());
        }
        let (from, to) = (link.ends[1 - i].slot, link.ends[i].slot);
        let d = if matches!(item, Item::Accepted(_)) {
            Duration::ZERO // the kernel accepted it as the SYN arrived
        } else {
            self.delay(from, to)
        };
        let link = self.links.get_mut(&l).expect("link");
        let at = (self.now + d).max(link.last[i]);
        link.last[i] = at;
        link.q[i].push_back((at, item));
        self.stats.max_queue = self.stats.max_queue.max(link.q[i].len());
        let link = self.links.get_mut(&l).expect("link");
        if link.q[i].len() > MAX_QUEUE {
            let len = link.q[i].len();
            return Err(self.fail(
                "Bounded",
                format!("{len} items in flight to n{} on link {l}", to + 1),
            ));
        }
        Ok(())
    }

    /// The node at `ends[i]` closed it (or died, or cancelled the dial): it gets
    /// nothing more; the other end gets EOF after what is in flight.
    pub(crate) fn close_end(&mut self, l: u64, i: usize) -> Result<(), Failure> {
        let link = self.links.get_mut(&l).expect("link");
        let end = &mut link.ends[i];
        if !end.live {
            return Ok(());
        }
        end.live = false;
        let (s, conn) = (end.slot, end.conn);
        if end.announced {
            self.slots[s].announced -= 1;
        }
        link.q[i].clear();
        let other_live = link.ends[1 - i].live;
        self.slots[s].ends.remove(&conn);
        self.slots[s].ids.free(conn);
        if other_live {
            self.push(l, 1 - i, Item::Eof)?;
        }
        self.gc(l);
        Ok(())
    }

    fn gc(&mut self, l: u64) {
        let link = &self.links[&l];
        if !link.ends[0].live && !link.ends[1].live && link.q.iter().all(|q| q.is_empty()) {
            self.links.remove(&l);
        }
    }

    pub(crate) fn deliver(&mut self, l: u64, i: usize) -> Result<(), Failure> {
        let link = self.links.get_mut(&l).expect("link");
        let (_, item) = link.q[i].pop_front().expect("item");
        let end = &mut link.ends[i];
        let (s, conn) = (end.slot, end.conn);
        let mut closed = false;
        let input = match item {
            Item::Accepted(from) => {
                end.announced = true;
                self.slots[s].announced += 1;
                if self.slots[s].node.as_ref().is_some_and(|n| n.is_leaving()) {
                    self.stats.ignored_while_leaving += 1;
                }
                Input::Accepted { conn, from }
            }
            Item::Connected(addr) => {
                end.announced = true;
                self.slots[s].announced += 1;
                if self.slots[s].node.as_ref().is_some_and(|n| n.is_leaving()) {
                    self.stats.ignored_while_leaving += 1;
                }
                self.attempts
                    .retain(|a| !(a.from == s && a.stage == Stage::Linked(l)));
                Input::Connected { conn, addr }
            }
            Item::Frame(msg) => {
                if msg == Msg::Goodbye {
                    // A peer that said goodbye is not redialled.
                    let from = link.ends[1 - i].slot;
                    if let Some(k) = self.slots[s].knows.get_mut(from) {
                        *k = false;
                    }
                }
                Input::Frame { conn, msg }
            }
            Item::Eof => {
                closed = true;
                Input::Closed {
                    conn,
                    reason: CloseReason::Eof,
                }
            }
            Item::Reset => {
                closed = true;
                Input::Closed {
                    conn,
                    reason: CloseReason::Error("reset".into()),
                }
            }
        };
        if closed {
            let link = self.links.get_mut(&l).expect("link");
            link.ends[i].live = false;
            link.q[i].clear();
            self.slots[s].announced -= 1;
            self.slots[s].ends.remove(&conn);
            self.slots[s].ids.free(conn);
            self.gc(l);
        }
        self.run_node(s, Some(input))
    }

    pub(crate) fn attempt(&mut self, k: usize) -> Result<(), Failure> {
        let (from, addr, stage) = {
            let a = &self.attempts[k];
            (a.from, a.addr, a.stage)
        };
        match stage {
            Stage::Syn => {
                let target = slot_of(addr).filter(|&t| t < self.p.n);
                match target {
                    Some(t) if self.slots[t].node.is_some() => self.connect(k, t)?,
                    _ => {
                        let d = self.delay(target.unwrap_or(from), from);
                        let a = &mut self.attempts[k];
                        a.stage = Stage::Refused;
                        a.at = self.now + d;
                    }
                }
                Ok(())
            }
            Stage::Refused => {
                self.attempts.remove(k);
                self.run_node(
                    from,
                    Some(Input::DialFailed {
                        addr,
                        error: "connection refused".into(),
                    }),
                )
            }
            Stage::Linked(_) | Stage::Lost => unreachable!("{stage:?} has no event"),
        }
    }

    /// The SYN of attempt `k` reaches the node of slot `t`, which is up: lost in
    /// a partition, or a new link with both ends queued their announcements.
    fn connect(&mut self, k: usize, t: usize) -> Result<(), Failure> {
        let (from, addr) = (self.attempts[k].from, self.attempts[k].addr);
        if self.cut(from, t) {
            self.trace_line(Some(from), || format!("SYN to {addr} lost"));
            self.attempts[k].stage = Stage::Lost;
            return Ok(());
        }
        let l = self.next_link;
        self.next_link += 1;
        let dconn = self.slots[from].ids.alloc();
        let aconn = self.slots[t].ids.alloc();
        self.next_port = if self.next_port >= 60999 {
            40000
        } else {
            self.next_port + 1
        };
        let src = SocketAddr::new(addr_of(from).ip(), self.next_port);
        let incs = (self.slots[from].inc, self.slots[t].inc);
        let end = |slot, inc, conn| End {
            slot,
            inc,
            conn,
            live: true,
            announced: false,
        };
        self.links.insert(
            l,
            Link {
                ends: [end(from, incs.0, dconn), end(t, incs.1, aconn)],
                q: [VecDeque::new(), VecDeque::new()],
                last: [self.now; 2],
                reset: false,
            },
        );
        self.slots[from].ends.insert(dconn, (l, 0));
        self.slots[t].ends.insert(aconn, (l, 1));
        self.trace_line(Some(from), || {
            format!(
                "connect {addr}: link {l}, {dconn} here, {aconn} at n{}",
                t + 1
            )
        });
        self.push(l, 1, Item::Accepted(src))?;
        self.push(l, 0, Item::Connected(addr))?;
        self.attempts[k].stage = Stage::Linked(l);
        Ok(())
    }
}
