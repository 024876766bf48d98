//! The trace: one line per step of a world, when tracing (the determinism test,
//! failure replays, `dump_trace`), and how inputs and messages are written in it.

use crate::world::World;
use boss::node::{Input, Time};
use boss::wire::Msg;
use std::fmt::Write as _;

pub fn fmt_time(t: Time) -> String {
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
}

impl World {
    pub(crate) fn trace_line(&mut self, slot: Option<usize>, f: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_mut() {
            let who = slot.map_or_else(|| "world".to_string(), |s| format!("n{}", s + 1));
            trace.push(format!("{:>12} {who:>5} {}", fmt_time(self.now), f()));
        }
    }

    /// The last `n` trace lines, one string.
    pub fn tail(&self, n: usize) -> String {
        let mut s = String::new();
        if let Some(t) = &self.trace {
            for line in &t[t.len().saturating_sub(n)..] {
                let _ = writeln!(s, "{line}");
            }
        }
        s
    }
}

pub(crate) fn describe_msg(m: &Msg) -> String {
    match m {
        Msg::Hello { node, .. } => format!(
            "Hello({} started={} prio={})",
            node.addr, node.started, node.priority
        ),
        other => format!("{other:?}"),
    }
}

pub(crate) fn describe_input(i: &Input) -> String {
    match i {
        Input::Frame { conn, msg } => format!("{conn} {}", describe_msg(msg)),
        other => format!("{other:?}"),
    }
}
