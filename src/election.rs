//! The election rules as total orders on [`NodeInfo`], and the vote function.
//! Pure: no clock, no IO. The order is total because every rule ends with the
//! address, and no two nodes of one mesh share an address.

use crate::wire::NodeInfo;
use std::cmp::Ordering;
use std::net::SocketAddr;

/// Which node of a view should be master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// The earliest start time wins (the original's default).
    Oldest,
    /// The latest start time wins.
    Youngest,
    /// The highest `--priority` wins, then the oldest.
    Priority,
    /// The smallest address wins.
    Address,
}

impl Rule {
    pub const ALL: [Rule; 4] = [Rule::Oldest, Rule::Youngest, Rule::Priority, Rule::Address];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Oldest => "oldest",
            Rule::Youngest => "youngest",
            Rule::Priority => "priority",
            Rule::Address => "address",
        }
    }

    /// The code carried in `Hello`.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Rule> {
        Rule::ALL.get(code as usize).copied()
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// `Less` means `a` is the better master. Total: ties end at the address.
    pub fn cmp(self, a: &NodeInfo, b: &NodeInfo) -> Ordering {
        let by_rule = match self {
            Rule::Oldest => a.started.cmp(&b.started),
            Rule::Youngest => b.started.cmp(&a.started),
            Rule::Priority => b.priority.cmp(&a.priority).then(a.started.cmp(&b.started)),
            Rule::Address => Ordering::Equal,
        };
        by_rule.then(a.addr.cmp(&b.addr))
    }

    /// The best node of a non-empty iterator, `None` if it is empty.
    pub fn best<'a>(self, nodes: impl IntoIterator<Item = &'a NodeInfo>) -> Option<&'a NodeInfo> {
        nodes.into_iter().min_by(|a, b| self.cmp(a, b))
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One member of a view as the vote function sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub info: NodeInfo,
    /// Whether it announces itself master.
    pub master: bool,
    /// Whether it may be master (not in standby).
    pub eligible: bool,
}

/// What a node decides about a view: whom to vote for, and whether to step down.
///
/// `me` is the deciding node (with its own current master flag); `peers` the other
/// members of its view. Only *eligible* members (not in standby) can be chosen;
/// every member counts toward the quorum. Rules, in order:
/// 1. If some eligible member announces master, vote for the best such member
///    (the incumbent) — except that a master which sees a better eligible node
///    steps down when `preempt` is set, and a master which sees a better
///    *announced* master always steps down; stepping down means voting for that
///    better node. A master that is not eligible is no incumbent, not even to
///    itself: it hands over at once, with or without `preempt`.
/// 2. Otherwise, if the view has at least `quorum` members, vote for its best
///    eligible one (nobody when none is eligible).
/// 3. Otherwise vote for nobody.
pub fn vote(
    rule: Rule,
    me: Member,
    peers: &[Member],
    quorum: u16,
    preempt: bool,
) -> Option<SocketAddr> {
    let all = || std::iter::once(&me).chain(peers.iter());
    let eligible = || all().filter(|m| m.eligible);
    let incumbent = rule.best(eligible().filter(|m| m.master).map(|m| &m.info));
    let best = rule.best(eligible().map(|m| &m.info));
    match incumbent {
        Some(inc) if inc.addr == me.info.addr => {
            // We are the best announced master. Keep the role unless preempting.
            match best {
                Some(b) if preempt && b.addr != me.info.addr => Some(b.addr),
                _ => Some(me.info.addr),
            }
        }
        Some(inc) => Some(inc.addr),
        None if all().count() >= usize::from(quorum) => best.map(|b| b.addr),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16, started: u64, priority: u32) -> NodeInfo {
        NodeInfo {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            started,
            priority,
        }
    }

    #[test]
    fn rules_order_as_documented() {
        let old = node(3, 10, 1);
        let young = node(1, 20, 9);
        assert_eq!(Rule::Oldest.cmp(&old, &young), Ordering::Less);
        assert_eq!(Rule::Youngest.cmp(&old, &young), Ordering::Greater);
        assert_eq!(Rule::Priority.cmp(&old, &young), Ordering::Greater);
        assert_eq!(Rule::Address.cmp(&old, &young), Ordering::Greater);
        // Ties go to the smaller address under every rule.
        let twin = node(2, 10, 1);
        for r in Rule::ALL {
            assert_eq!(r.cmp(&twin, &old), Ordering::Less, "{r}");
            assert_eq!(r.cmp(&old, &old), Ordering::Equal, "{r}");
        }
        // Priority ties fall back to the oldest.
        assert_eq!(
            Rule::Priority.cmp(&node(5, 1, 4), &node(4, 2, 4)),
            Ordering::Less
        );
    }

    #[test]
    fn rule_names_and_codes_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
            assert_eq!(Rule::from_code(r.code()), Some(r));
        }
        assert_eq!(Rule::from_code(4), None);
        assert_eq!(Rule::from_name("eldest"), None);
    }

    #[test]
    fn rules_display_as_their_command_line_names() {
        // Messages name a rule as the user writes it after `--rule`.
        let shown: Vec<String> = Rule::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(shown, ["oldest", "youngest", "priority", "address"]);
        assert_eq!(format!("rule {}", Rule::Priority), "rule priority");
    }

    /// The best node of a non-empty view under `rule`, worked out straight from the
    /// documented rules and independently of [`Rule::cmp`] and [`Rule::best`]: keep
    /// the nodes that do best on the rule's first criterion, then on its second, and
    /// let the smallest address win among those left.
    fn documented_best(rule: Rule, view: &[NodeInfo]) -> SocketAddr {
        fn keep_top(left: &mut Vec<NodeInfo>, score: impl Fn(&NodeInfo) -> i128) {
            let top = left.iter().map(&score).max().expect("a non-empty view");
            left.retain(|n| score(n) == top);
        }
        let mut left = view.to_vec();
        let earliest = |n: &NodeInfo| -i128::from(n.started);
        let latest = |n: &NodeInfo| i128::from(n.started);
        let highest = |n: &NodeInfo| i128::from(n.priority);
        match rule {
            Rule::Oldest => keep_top(&mut left, earliest),
            Rule::Youngest => keep_top(&mut left, latest),
            Rule::Priority => {
                keep_top(&mut left, highest);
                keep_top(&mut left, earliest);
            }
            Rule::Address => {}
        }
        let mut winner = left[0].addr;
        for n in &left[1..] {
            if n.addr < winner {
                winner = n.addr;
            }
        }
        winner
    }

    #[test]
    fn documented_best_follows_the_rules() {
        // A check of the oracle itself, on hand-worked views.
        let a = node(4, 10, 1);
        let b = node(3, 20, 5);
        let c = node(2, 20, 5);
        let d = node(1, 30, 2);
        let view = [a, b, c, d];
        assert_eq!(documented_best(Rule::Oldest, &view), a.addr);
        assert_eq!(documented_best(Rule::Youngest, &view), d.addr);
        assert_eq!(documented_best(Rule::Priority, &view), c.addr);
        assert_eq!(documented_best(Rule::Address, &view), d.addr);
        // Equal start times: the smaller address.
        assert_eq!(documented_best(Rule::Oldest, &[b, c]), c.addr);
        assert_eq!(documented_best(Rule::Youngest, &[b, c]), c.addr);
        // Equal priorities: the oldest, then the smaller address.
        let e = node(9, 15, 5);
        assert_eq!(documented_best(Rule::Priority, &[b, e, c]), e.addr);
    }

    /// Every view of up to 5 nodes from two pools (each member master or not),
    /// every rule, quorum 1 to 5, with and without preemption: the vote obeys the
    /// rules above, with the best nodes taken from [`documented_best`].
    #[test]
    fn vote_over_all_small_views() {
        // Listed in an order that no rule follows, with ties in start time, in
        // priority, and in both, so that every tie-break decides some view.
        let pools = [
            [
                node(1, 30, 2),
                node(2, 10, 1),
                node(3, 20, 3),
                node(4, 10, 3),
                node(5, 30, 2),
            ],
            [
                node(9, 20, 4),
                node(7, 40, 4),
                node(8, 20, 4),
                node(6, 40, 0),
                node(5, 10, 0),
            ],
        ];
        let mut checked = 0;
        for pool in pools {
            for size in 1..=pool.len() {
                for (masters, eligible) in
                    (0..(1u32 << size)).flat_map(|m| (0..(1u32 << size)).map(move |e| (m, e)))
                {
                    let members: Vec<Member> = (0..size)
                        .map(|i| Member {
                            info: pool[i],
                            master: masters & (1 << i) != 0,
                            eligible: eligible & (1 << i) != 0,
                        })
                        .collect();
                    let infos: Vec<NodeInfo> = members
                        .iter()
                        .filter(|m| m.eligible)
                        .map(|m| m.info)
                        .collect();
                    let announced: Vec<NodeInfo> = members
                        .iter()
                        .filter(|m| m.master && m.eligible)
                        .map(|m| m.info)
                        .collect();
                    for rule in Rule::ALL {
                        let best = (!infos.is_empty()).then(|| documented_best(rule, &infos));
                        let incumbent =
                            (!announced.is_empty()).then(|| documented_best(rule, &announced));
                        for quorum in 1..=pool.len() {
                            for preempt in [false, true] {
                                for me_i in 0..size {
                                    let me = members[me_i];
                                    let peers: Vec<Member> = members
                                        .iter()
                                        .enumerate()
                                        .filter(|(i, _)| *i != me_i)
                                        .map(|(_, m)| *m)
                                        .collect();
                                    let q = u16::try_from(quorum).expect("a small pool");
                                    let got = vote(rule, me, &peers, q, preempt);
                                    let want = match incumbent {
                                        Some(inc) if inc == me.info.addr && preempt => best,
                                        Some(inc) => Some(inc),
                                        None if size >= quorum => best,
                                        None => None,
                                    };
                                    assert_eq!(
                                        got, want,
                                        "rule {rule} q {quorum} pre {preempt} view {members:?} me {me_i}"
                                    );
                                    // Never a vote for a node outside the view,
                                    // nor for one in standby.
                                    if let Some(v) = got {
                                        assert!(
                                            members.iter().any(|m| m.info.addr == v && m.eligible)
                                        );
                                    }
                                    // A view without masters and below quorum votes for nobody.
                                    if masters == 0 && size < quorum {
                                        assert_eq!(got, None);
                                    }
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000);
    }

    #[test]
    fn agreeing_views_elect_one_node() {
        // With one shared view and no master, every member votes for the same node.
        let members: Vec<Member> = [node(9, 5, 0), node(8, 5, 0), node(7, 6, 0)]
            .iter()
            .map(|&info| Member {
                info,
                master: false,
                eligible: true,
            })
            .collect();
        for rule in Rule::ALL {
            let votes: Vec<_> = (0..3)
                .map(|i| {
                    let peers: Vec<Member> = members
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, m)| *m)
                        .collect();
                    vote(rule, members[i], &peers, 2, true)
                })
                .collect();
            assert!(
                votes.iter().all(|v| v.is_some() && *v == votes[0]),
                "{rule}: {votes:?}"
            );
        }
    }
}
