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
}

/// What a node decides about a view: whom to vote for, and whether to step down.
///
/// `me` is the deciding node (with its own current master flag); `peers` the other
/// members of its view. Rules, in order:
/// 1. If some member announces master, vote for the best such member (the
///    incumbent) — except that a master which sees a better node steps down when
///    `preempt` is set, and a master which sees a better *announced* master always
///    steps down; stepping down means voting for that better node.
/// 2. Otherwise, if the view has at least `quorum` members, vote for its best one.
/// 3. Otherwise vote for nobody.
pub fn vote(
    rule: Rule,
    me: Member,
    peers: &[Member],
    quorum: usize,
    preempt: bool,
) -> Option<SocketAddr> {
    let all = || std::iter::once(&me).chain(peers.iter());
    let incumbent = rule.best(all().filter(|m| m.master).map(|m| &m.info));
    let best = rule.best(all().map(|m| &m.info));
    match incumbent {
        Some(inc) if inc.addr == me.info.addr => {
            // We are the best announced master. Keep the role unless preempting.
            match best {
                Some(b) if preempt && b.addr != me.info.addr => Some(b.addr),
                _ => Some(me.info.addr),
            }
        }
        Some(inc) => Some(inc.addr),
        None if all().count() >= quorum => best.map(|b| b.addr),
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

    /// Every view of up to 4 nodes (each member master or not), every rule,
    /// quorum 1 to 4, with and without preemption: the vote obeys the rules above.
    #[test]
    fn vote_over_all_small_views() {
        let pool = [
            node(1, 30, 2),
            node(2, 10, 1),
            node(3, 20, 3),
            node(4, 10, 3),
        ];
        let mut checked = 0;
        for size in 1..=4usize {
            for masters in 0..(1u32 << size) {
                let members: Vec<Member> = (0..size)
                    .map(|i| Member {
                        info: pool[i],
                        master: masters & (1 << i) != 0,
                    })
                    .collect();
                for rule in Rule::ALL {
                    for quorum in 1..=4 {
                        for preempt in [false, true] {
                            for me_i in 0..size {
                                let me = members[me_i];
                                let peers: Vec<Member> = members
                                    .iter()
                                    .enumerate()
                                    .filter(|(i, _)| *i != me_i)
                                    .map(|(_, m)| *m)
                                    .collect();
                                let got = vote(rule, me, &peers, quorum, preempt);
                                let best = rule.best(members.iter().map(|m| &m.info)).unwrap().addr;
                                let best_master =
                                    rule.best(members.iter().filter(|m| m.master).map(|m| &m.info));
                                let want = match best_master {
                                    Some(inc) if inc.addr == me.info.addr && preempt => Some(best),
                                    Some(inc) => Some(inc.addr),
                                    None if size >= quorum => Some(best),
                                    None => None,
                                };
                                assert_eq!(
                                    got, want,
                                    "rule {rule} q {quorum} pre {preempt} view {members:?} me {me_i}"
                                );
                                // Never a vote for a node outside the view.
                                if let Some(v) = got {
                                    assert!(members.iter().any(|m| m.info.addr == v));
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
        assert!(checked > 1000);
    }

    #[test]
    fn agreeing_views_elect_one_node() {
        // With one shared view and no master, every member votes for the same node.
        let members: Vec<Member> = [node(9, 5, 0), node(8, 5, 0), node(7, 6, 0)]
            .iter()
            .map(|&info| Member {
                info,
                master: false,
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
