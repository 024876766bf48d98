//! Collapsing repeated console lines of one kind: the first few of a burst are
//! printed as they come, the rest only counted, and while they continue a summary
//! line (an [`Event::Collapsed`]) says how many there were (`refused 230948 connections in the last 10s`).
//! A flood of strangers cannot turn the console into a flood of lines.
//!
//! Pure, like the rest of the core: time comes in as `now`, and the owner arms a
//! timer for [`RateLog::next_due`] (a deadline exists only while something is
//! being counted, so an idle node stays idle).

use crate::event::{Collapsed, Event};
use crate::node::Time;
use std::time::Duration;

/// The kinds of line that are collapsed: those a stranger can cause at will.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A connection refused (connection limit, too many from one address), or
    /// the `Hello` of one this node did not dial.
    Refused,
    /// A connection closed for not completing its handshake in time.
    NoHandshake,
    /// A connection closed for a bad frame (malformed, not a Hello first, a
    /// second Hello) or an error before its handshake.
    BadFrame,
    /// A connection without a handshake closed to make room for a new one.
    Evicted,
    /// A new peer that dialled this node (and never was dialled by it): any
    /// stranger can complete a handshake under a made-up address.
    PeerIn,
    /// Such a peer lost.
    PeerInLost,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Refused,
        Kind::NoHandshake,
        Kind::BadFrame,
        Kind::Evicted,
        Kind::PeerIn,
        Kind::PeerInLost,
    ];

    /// Lines of this kind printed in full per period.
    pub fn burst(self) -> u32 {
        match self {
            Kind::PeerIn | Kind::PeerInLost => PEER_BURST,
            _ => BURST,
        }
    }

    /// The summary of `n` counted lines of this kind over `period`.
    fn summary(self, n: u64, period: Duration) -> Event {
        let kind = match self {
            Kind::Refused => Collapsed::Refused,
            Kind::NoHandshake => Collapsed::NoHandshake,
            Kind::BadFrame => Collapsed::BadFrame,
            Kind::Evicted => Collapsed::Evicted,
            Kind::PeerIn => Collapsed::PeerIn,
            Kind::PeerInLost => Collapsed::PeerInLost,
        };
        Event::Collapsed {
            kind,
            count: n,
            period,
        }
    }
}

/// Lines of one kind printed in full per period, before counting starts.
pub const BURST: u32 = 5;
/// The same for peers that dialled this node: a cluster booting at once makes
/// every node print one `connected` line per peer, and each of them must show
/// (at most 256 a period: 25 lines a second for a stranger who handshakes and
/// hangs up in a loop, against thousands before).
pub const PEER_BURST: u32 = 256;
/// The period of the count, and between two summaries.
pub const PERIOD: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default)]
struct State {
    /// Start of the current period; `None` when no line was seen lately.
    since: Option<Time>,
    /// Lines printed in full in this period.
    shown: u32,
    /// Lines counted (not printed) in this period.
    counted: u64,
    /// A summary was printed at the end of the last period: until a period
    /// passes with none, every line is counted.
    collapsing: bool,
}

/// The state of every [`Kind`].
#[derive(Clone, Debug, Default)]
pub struct RateLog {
    kinds: [State; 6],
}

impl RateLog {
    /// Whether a line of `kind` at `now` is printed (`true`) or only counted.
    pub fn allow(&mut self, now: Time, kind: Kind) -> bool {
        let k = &mut self.kinds[kind as usize];
        let over = k.since.is_none_or(|s| now >= s + PERIOD);
        if over && !k.collapsing && k.counted == 0 {
            k.since = Some(now);
            k.shown = 0;
        }
        if !k.collapsing && k.shown < kind.burst() {
            k.shown += 1;
            return true;
        }
        k.counted += 1;
        false
    }

    /// When the next summary is due, if anything is being counted.
    pub fn next_due(&self) -> Option<Time> {
        self.kinds
            .iter()
            .filter(|k| k.counted > 0 || k.collapsing)
            .filter_map(|k| k.since.map(|s| s + PERIOD))
            .min()
    }

    /// The summaries due at `now`, appended to `out`. A kind still counting
    /// starts its next period; one that stayed quiet for a period prints in
    /// full again.
    pub fn summaries(&mut self, now: Time, out: &mut Vec<Event>) {
        for kind in Kind::ALL {
            let k = &mut self.kinds[kind as usize];
            let Some(since) = k.since else {
                continue;
            };
            if !(k.counted > 0 || k.collapsing) || now < since + PERIOD {
                continue;
            }
            if k.counted > 0 {
                out.push(kind.summary(std::mem::take(&mut k.counted), PERIOD));
                k.collapsing = true;
                k.since = Some(since + PERIOD);
                if now >= since + PERIOD + PERIOD {
                    // A late timer (a frozen node): count from now.
                    k.since = Some(now);
                }
            } else {
                *k = State::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Time {
        Duration::from_secs(n)
    }

    fn lines(out: &[Event]) -> Vec<String> {
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_few_lines_print_and_arm_nothing() {
        let mut r = RateLog::default();
        for i in 0..BURST {
            assert!(r.allow(s(u64::from(i)), Kind::Refused));
        }
        assert_eq!(r.next_due(), None, "nothing counted: no timer");
        // A new period prints in full again.
        assert!(r.allow(s(20), Kind::Refused));
        assert_eq!(r.next_due(), None);
    }

    #[test]
    fn a_burst_is_counted_and_summed_up_while_it_lasts() {
        let mut r = RateLog::default();
        let printed = (0..1000).filter(|_| r.allow(s(1), Kind::Refused)).count();
        assert_eq!(printed, BURST as usize);
        assert_eq!(r.next_due(), Some(s(11)));
        let mut out = Vec::new();
        r.summaries(s(10), &mut out);
        assert!(out.is_empty(), "not due yet");
        r.summaries(s(11), &mut out);
        assert_eq!(lines(&out), ["refused 995 connections in the last 10s"]);
        // Still going: every line counted, the next summary a period later.
        assert!(!r.allow(s(12), Kind::Refused));
        assert!(!r.allow(s(13), Kind::Refused));
        assert_eq!(r.next_due(), Some(s(21)));
        out.clear();
        r.summaries(s(21), &mut out);
        assert_eq!(lines(&out), ["refused 2 connections in the last 10s"]);
        // A quiet period ends the collapse, with no line and no timer after.
        assert_eq!(r.next_due(), Some(s(31)));
        out.clear();
        r.summaries(s(31), &mut out);
        assert!(out.is_empty());
        assert_eq!(r.next_due(), None);
        assert!(r.allow(s(40), Kind::Refused), "prints in full again");
    }

    #[test]
    fn a_cluster_of_peers_dialling_in_is_said_in_full() {
        let mut r = RateLog::default();
        // 200 nodes booting at once: every `connected` line shows.
        assert!((0..200).all(|_| r.allow(s(1), Kind::PeerIn)));
        assert!((0..200).all(|_| r.allow(s(1), Kind::PeerInLost)));
        assert_eq!(r.next_due(), None);
        // A stranger handshaking in a loop is counted past the burst.
        let printed = (0..1000).filter(|_| r.allow(s(2), Kind::PeerIn)).count();
        assert_eq!(printed, (PEER_BURST - 200) as usize);
    }

    #[test]
    fn kinds_are_counted_apart() {
        let mut r = RateLog::default();
        for _ in 0..(BURST + 3) {
            r.allow(s(0), Kind::NoHandshake);
        }
        assert!(r.allow(s(0), Kind::Evicted));
        assert!(r.allow(s(0), Kind::BadFrame));
        let mut out = Vec::new();
        r.summaries(s(10), &mut out);
        assert_eq!(
            lines(&out),
            ["closed 3 connections with no handshake in the last 10s"]
        );
    }

    #[test]
    fn a_slightly_late_summary_keeps_the_beat() {
        // A summary a few seconds late (a busy turn) does not shift the periods:
        // the next one is still due a period after the end of the last.
        let mut r = RateLog::default();
        for _ in 0..(BURST + 1) {
            r.allow(s(1), Kind::BadFrame);
        }
        let mut out = Vec::new();
        r.summaries(s(15), &mut out);
        assert_eq!(
            lines(&out),
            ["closed 1 connections on protocol or socket errors in the last 10s"]
        );
        assert!(!r.allow(s(16), Kind::BadFrame));
        assert_eq!(r.next_due(), Some(s(21)));
        out.clear();
        r.summaries(s(20), &mut out);
        assert!(out.is_empty(), "not due yet");
        r.summaries(s(21), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_late_summary_restarts_the_period_from_now() {
        let mut r = RateLog::default();
        for _ in 0..(BURST + 1) {
            r.allow(s(0), Kind::Evicted);
        }
        let mut out = Vec::new();
        r.summaries(s(100), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(r.next_due(), Some(s(110)));
    }
}
