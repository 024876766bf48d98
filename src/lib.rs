//! boss ("Who is the Boss?"): equal nodes join a full TCP mesh and elect one master.
//!
//! Every node runs the same binary. Nodes dial each other (`--join` at start,
//! `-c` at the console), tell each other their peers until each is connected to
//! every other, and agree on one master: the best node by a rule (the oldest, by
//! default) that holds a quorum of votes. The master runs a master script, every
//! other node a default script, so a service that must run on exactly one machine
//! follows the master. Each node has a console on stdin and stdout. The man page
//! (`man/boss.1`) is the user's reference; this page is the design.
//!
//! # Where things are
//!
//! - **The core**, pure and deterministic: [`node`] (the state machine,
//!   [`Node`]), [`election`] (the rules and the vote), [`timer`] (the timer
//!   wheel), [`wire`] (messages and framing), [`command`] (console commands),
//!   [`ratelog`] (collapsing lines a stranger can cause), [`text`] (escaping,
//!   time formats) and [`config`] (the settings, [`Config`]).
//! - **The shell**, all the IO: [`shell`] (the mio loop, connections, the
//!   console), [`script`] (the script child and its pipes),
//!   [`shell::resolve`] (host-name lookups) and what serves the outside
//!   ([`shell::control`], the control socket; the notify hook, the state file,
//!   systemd's notifications; see [Operating from outside](crate#operating-from-outside)).
//! - **The command line**: [`cli`] (flags, help text, checks), the `boss`
//!   binary (`src/main.rs`: binding, the open-files limit, exit statuses) and
//!   its client subcommands ([`client`]: `boss status`, `is-master`, `ctl`,
//!   `watch`).
//! - [`rng`]: the one seeded generator of the simulator, the randomized tests
//!   and the benchmark.
//!
//! Only the shell reads clocks, touches sockets or spawns processes, so the tests
//! drive the core directly, many nodes at once, through a simulated network.
//!
//! The rest of this page is the design, one section each: [Shape](crate#shape)
//! (how the parts fit), [Event loop](crate#event-loop), [Wire
//! protocol](crate#wire-protocol), [Failure detection and
//! reconnect](crate#failure-detection-and-reconnect), [Election](crate#election),
//! [Scripts](crate#scripts), [Operating from
//! outside](crate#operating-from-outside), [Invariants](crate#invariants) and
//! [Defaults](crate#defaults). The code links to them by these anchors
//! (`crate#election`); where the code and this page disagree, one is wrong.
//!
//! # Shape
//!
//! A pure core inside an IO shell:
//!
//! ```text
//!           stdin lines ─┐                            ┌─> console lines
//!  listen + peer sockets ┤    ┌─────────────────┐     ├─> frames to peers
//!        script pipes ───┼──> │    mio shell    │ ──> ├─> dial / close
//!    host-name lookups ──┤    │ (src/shell/)    │     ├─> spawn / signal script
//!  signals (SIGCHLD,     │    └───────┬─────────┘     └─> look a name up
//!  SIGINT, SIGTERM, …) ──┘            │ handle(now, Input) / handle_timeout(now)
//!                                     │ poll_timeout() -> next deadline
//!                              ┌──────▼───────┐
//!                              │  Node core   │  pure: no sockets, no clock,
//!                              │ (src/node/)  │  no processes, no randomness;
//!                              │ + timer wheel│  owns every timer
//!                              └──────┬───────┘
//!                                     │ Vec<Output>
//! ```
//!
//! - The **core** ([`Node`]) is a deterministic state machine. It never reads a
//!   clock, touches a socket, spawns a process or draws a random number: time
//!   comes in as `now` (a [`Time`], monotonic, from an origin the caller chooses),
//!   everything it wants done goes out as an [`Output`]; what it reports as
//!   it happens is a typed [`event::Event`] (stable names and fields), which
//!   the shell prints as one console line. Membership, handshakes,
//!   heartbeats, failure detection, reconnects, the election, the script role and
//!   the console commands live here, and so does the timer wheel
//!   ([`timer::TimerWheel`], a 10 ms tick, deadlines rounded up so nothing fires
//!   early): every timer is policy. Each timer has one owner among the core's
//!   files, which arms, re-arms, stops and handles it; `handle_timeout` only
//!   hands each timer that fires to its owner, and a leave stops them all in
//!   one place (but the script's). clippy.toml forbids `Instant::now`; the
//!   shell's one clock is the single exception.
//! - The **shell** ([`shell`]) owns the `mio::Poll`, the listen socket, a
//!   slab of connections (socket, read buffer, write buffer), stdin, stdout, the
//!   one script child and its two pipes ([`script`]), the host-name lookups
//!   ([`shell::resolve`]) and the signal source. It reads the clock once per loop turn,
//!   turns readiness into [`Input`]s and carries out every [`Output`]. It decides
//!   nothing and has no timers of its own, but for three plain deadlines of
//!   IO: the flush at exit, a control client's time to send its request, and
//!   the notify hook's run (see [Operating from outside](crate#operating-from-outside)).
//! - Because the core is pure, a deterministic simulator (`tests/sim/`) drives
//!   many `Node`s through a fake network from a seed (delays, resets, crashes,
//!   freezes, one-way and two-way partitions, restarts, clock offsets, console
//!   commands, script children) and checks the [invariants](crate#invariants)
//!   after every step.
//!
//! **Calling order**, for the shell and the simulator alike:
//!
//! 1. [`Node::new`] with a [`Config`], then [`Node::start`] once.
//! 2. Each loop turn: read the clock once; call [`Node::handle_timeout`] first (a
//!    node thawed after a freeze must notice its lost peers before it acts on
//!    anything else), then [`Node::handle`] for each input. Carry out every output
//!    before the next input; inputs that carrying them out produces (a failed
//!    dial, an overflowing write buffer) are fed afterwards, never re-entrantly.
//! 3. Wait no longer than [`Node::poll_timeout`]; `None` means nothing is due.
//!
//! Connections are named by a [`ConnId`]: the shell's slab key plus a generation,
//! so a reused slot never receives what was meant for its previous occupant. After
//! `Output::Close` no input follows for that connection; `Input::Closed` reports
//! only the ends the core did not ask for.
//!
//! # Event loop
//!
//! One thread, one `mio::Poll`. Tokens: the listener (0), stdin (1), the signal
//! source (2: SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2), the script's
//! stdout (3) and stderr (4) pipes, stdout (5, watched for room only while console
//! output waits), one token per connection (6 plus its slab key), the notify
//! hook's two pipes, the control socket's listener and one per control client
//! (far above any connection's, from `usize::MAX / 4`), and one per host-name
//! lookup (above those, from `usize::MAX / 2`).
//!
//! **No busy loop, no periodic tick.** The poll waits until the core's next
//! deadline ([`Node::poll_timeout`]), rounded up to whole milliseconds so a
//! sub-millisecond remainder never becomes a zero timeout; an idle node sleeps in
//! `poll`. It polls without waiting only while a source still holds input that a
//! turn's budget left over (mio is edge-triggered, so no new event would say so).
//!
//! **Each turn**, in this order:
//!
//! 1. `poll` (at most 256 events).
//! 2. Read the clock once; while the node defers reads ([`Node::defers_reads`])
//!    and a timer is due, read every connection; run [`Node::handle_timeout`],
//!    however busy the sockets are: a master that cannot run its timers cannot
//!    give up its role.
//! 3. The IO events in the order `poll` gave them: accept, stdin lines, signals,
//!    lookups, connections (dials that completed, reads, writes). After every
//!    input, carry out all its outputs; frames queued by one input leave in one
//!    write at its end.
//! 4. The connections an earlier turn's budget left with input.
//! 5. Each script pipe once, within its budget.
//! 6. A deferred `accept` (budget spent, or a stalled accept with a descriptor
//!    freed since).
//! 7. The notify hook's pipes (within their budget) and its deadline; the
//!    control clients' queued answers and their request deadline.
//! 8. Write the console.
//!
//! **Bounded shares per source.** Per turn: a connection is read once, feeds at
//! most 64 frames and 64 KiB; all connections together feed at most 2,048 frames;
//! the listener accepts at most 256; each script pipe gives at most 64 KiB. What
//! is left is served next turn. Readiness is a hint: reads, writes and accepts go
//! until `WouldBlock` (or the budget), `Interrupted` is retried.
//!
//! **Bounded buffers.** A connection's read buffer holds at most one frame plus
//! one read; before its first frame (the `Hello`) arrives, at most a `Hello`'s
//! limit. Its write buffer holds at most two of the largest frames plus 16 KiB: a
//! peer that does not read is dropped (`not reading: write buffer full`). All
//! write buffers together hold at most 4 MiB; past that the largest queue is
//! dropped. Console output never blocks: stdout is non-blocking, at most 1 MiB
//! waits for it, the rest is dropped and counted
//! (`N console lines dropped: stdout not reading`). A console line longer than
//! 64 KiB is discarded whole; script lines longer than 4,096 bytes are split.
//!
//! **Other rules of the shell** (failed accepts, the open-files limit, stdin's
//! end, SIGHUP/SIGUSR1/SIGUSR2, the exit flush): see [`shell`].
//!
//! # Operating from outside
//!
//! What other programs and operators see of a running node, all in the shell
//! and fed by the core's outputs: the core stays pure.
//!
//! - **The control socket** ([`shell::control`]): a Unix stream socket, one more
//!   source in the poll. A client sends one request line; `status` and `ctl`
//!   become [`Input::Control`] (a [`node::ClientId`] names the client as a
//!   [`ConnId`] names a connection), answered by [`Output::Answer`],
//!   [`Output::Done`] and [`Output::Status`] for that client only; `watch`
//!   gets every [`Output::Event`]; `is-master` is answered from the last
//!   [`Output::Summary`]. Bounded: 16 clients, a 4,096-byte request within
//!   2 s, 256 KiB queued per client (a watcher over it is dropped, so a stalled
//!   watcher never slows the node). The 2 s is a shell deadline of IO: while a
//!   client owes its request, the poll waits no longer than it; an idle node
//!   still sleeps.
//! - **The client subcommands** ([`client`]) are the same binary: blocking
//!   clients of that socket, found by [`shell::runtime`]'s default paths.
//! - **On every [`Output::Summary`]** (the role, the master or standby
//!   changed, and once at start) the shell rewrites the state file
//!   (`--state-file`, temp file and rename), sends systemd its `STATUS=`, and
//!   queues the notify hook (`--notify`, when the role or the master changed).
//! - **The notify hook** is a second child beside the script, run like it (its
//!   own process group, dying with the node), one run at a time, reaped on
//!   SIGCHLD; its kill after `--notify-timeout` is the shell's third deadline.
//! - **systemd** (`NOTIFY_SOCKET`): `READY=1` after `started`, `STOPPING=1` on
//!   the `leaving` event, `WATCHDOG=1` on [`Output::Watchdog`], which the core's
//!   own timer sends every half of `WATCHDOG_USEC` (`Config::watchdog`).
//!
//! # Wire protocol
//!
//! **Framing** ([`wire`]): a 4-byte big-endian length, then a postcard-encoded
//! [`wire::Msg`]. A body is at most [`wire::MAX_FRAME`] (64 KiB); the first frame
//! of a connection at most [`wire::MAX_HELLO`] (1 KiB), checked from its length
//! prefix before it is buffered. A longer length, a body that does not decode
//! exactly (trailing bytes included), or a first frame that is not a `Hello`
//! closes that connection with one console line; the node keeps running. Both
//! sides send their `Hello` first. A connection that has not completed its
//! handshake within the handshake timeout is closed (`no handshake within …`).
//!
//! **Messages**:
//!
//! - `Hello { magic, version, node, rule, quorum, cluster, nonce, auth, serial }`:
//!   `magic` is "BOSS", `version` the protocol version ([`wire::VERSION`], 5:
//!   since `Hello` has `serial`, the count of the sender's earlier `Hello`s);
//!   it stays variant 0 with `magic`, `version` and `node` first, so a `Hello`
//!   of another version (version 1's has no `cluster`, `nonce`, `auth`) is read
//!   that far and refused clearly. `node`
//!   is a [`wire::NodeInfo`]: `addr`, the advertised listen address and the node's
//!   identity; `started`, its start time (wall clock, µs since the Unix epoch);
//!   `priority`. A `Hello` is **refused** with one line (`refused ADDR: why`) and
//!   the connection closed when the magic or version differ, when it
//!   claims this node's own address, when the rule, quorum, cluster name or
//!   secret flag differ from this node's, when its address is one no node can dial (unspecified, port 0,
//!   multicast, broadcast) or of another family than the connection, or when its
//!   start time is before 2000, past year 9999 or more than a day ahead of this
//!   node's clock. Every field is checked before anything it claims is shown or
//!   used. A refused dial is not retried: the operator must fix it (a wrong
//!   proof aside, see below).
//! - `Members(addrs)`: sent right after the handshake on every new connection,
//!   and by a master when its peers change ([vouched
//!   links](crate#failure-detection-and-reconnect)):
//!   every peer the sender is connected to. The receiver dials the ones it lacks,
//!   so any connected graph becomes a full mesh within one round trip, whichever
//!   node a newcomer dialled. What a list can make a node dial is bounded: the
//!   first 256 addresses of a list (one line says a list was cut, once);
//!   addresses no node can have, this node's own and known peers are skipped; at
//!   most 256 learnt addresses are wanted at once, in room of their own that
//!   never crowds out `--join` addresses, lost peers or `-c` targets; at most 32
//!   dials are in flight (24 for learnt addresses, which also wait behind the
//!   others); learnt addresses are dialled at most 50 a second after a burst of
//!   256. With more than 32 learnt addresses wanted, one that failed twice is
//!   dropped without a line; fewer are retried like a lost peer.
//! - `State { seq, vote, master, eligible, epoch, tied, script, held, ack }`:
//!   sent after the handshake and to every peer on every change of the
//!   sender's vote, master flag, eligibility (`eligible`: not in standby, see
//!   [the election](crate#election)), epoch (`epoch`, `tied`: see
//!   [epochs](crate#epochs)) or `script`/`held` ([scripts](crate#scripts)). `seq` grows with
//!   every change, so a stale state (one that travelled on a connection since
//!   replaced) is ignored, though its `ack` still counts. `ack` is the newest
//!   `seq` of the receiver's that the sender has applied (see
//!   [vote release](crate#election)).
//! - `Ping(t)` / `Pong(t)`: the heartbeat; `t` is the pinger's clock in µs, echoed
//!   back. A Pong gives the round-trip time shown by `-cl` and confirms the
//!   voter's vote (see [the election](crate#election)).
//! - `Text(s)`: a `-msg` broadcast, shown as `message from ADDR: text` with
//!   control characters escaped, plus `(connection from IP)` when the connection
//!   comes from another host than the address claims. Rate-limited over all
//!   peers together: a burst of 64 KiB, then 16 KiB a second, each text counting at least 256
//!   bytes; the rest is counted and said every 2 s.
//! - `Goodbye`: clean shutdown. Peers drop the sender at once and do not redial
//!   it, not even a `--join` address (when it starts again, it dials them).
//! - `Lost`: the sender, its master script alive, drops the receiver: a silent
//!   loss ([scripts](crate#scripts)); on a connection older than another open
//!   one (a smaller `serial`), the end of that connection only.
//! - `Proof(p)`: with a cluster secret, each side's first frame after the
//!   `Hello`s (see below).
//!
//! **Authenticated handshake** (`--cluster`, `--secret-file`; the protocol and
//! its cryptography in [`auth`](crate::auth#protocol)). Version 2's `Hello`
//! also carries the cluster name (`--cluster`, default `boss`; checked by
//! [`wire::is_cluster_name`]), a fresh 32-byte nonce per connection (from
//! [`auth::NonceSource`], seeded by the shell from the OS, by the simulator
//! from its seed: the core stays pure) and whether the sender has a secret. A
//! `Hello` of another cluster, or with a secret where this node has none (or
//! the reverse), is refused with one line that says which. With a secret on
//! both sides, each end derives the connection's keys from the secret, the
//! cluster name and both `Hello`s as encoded (the decoder accepts a `Hello`
//! only in its one encoding, so both ends hash the same bytes by encoding the
//! values again), hands the frame keys to the shell
//! ([`Output::Secure`]) and sends its `Proof`. The
//! connection stays in its handshake until the peer's `Proof` checks: any
//! other frame first is refused, nothing the peer said (`Members`, `State`,
//! `Text`) is applied before, and only then is the peer up. From the shell's
//! `Secure` on, every frame it writes on that connection is sealed and every
//! frame it reads is opened before it is decoded (`src/shell/codec.rs`); the
//! shell feeds one frame at a time and carries out each frame's outputs before
//! decoding the next, so the switch falls exactly after the `Hello`s, whatever
//! the per-turn budgets. A frame that does not open closes the connection: the
//! first (the peer's proof) reads as a wrong secret (`refused ADDR: its proof
//! of the cluster secret is wrong (a different --secret-file?)`), a later one
//! as `lost ADDR (a frame failed authentication: altered, replayed or
//! dropped)`. The refusals of this paragraph are said at most once a minute
//! per address ([`node::REFUSAL_EVERY`]); a peer refused for its proof is
//! redialled like an unreachable one, so a cluster heals by itself once every
//! node has the same secret. A message body is at most [`wire::MAX_BODY`], so
//! that sealed (16 bytes longer) it still fits [`wire::MAX_FRAME`]. Without a
//! secret the connection stays plain, as in version 1.
//!
//! A second `Hello` closes the connection as a bad frame. **Flood limit**: a
//! connection may send 5,000 frames a second plus four per heartbeat, a rate a
//! correct node never reaches; past it the connection (and the peer) is dropped,
//! and the peer is not redialled.
//!
//! **Connection limit** (`--max-connections`) and the console lines strangers
//! can cause (the oldest stranger from the busiest IP address is evicted; the
//! lines are collapsed by [`ratelog`]): `src/node/strangers.rs`.
//!
//! **Duplicate connections** (two nodes that dial each other at once): only the
//! node with the smaller address closes them, once the one it keeps is confirmed; it keeps the
//! one the other opened last (greatest `serial`). Closing one is not a peer loss. Why: `src/node/duplicates.rs`.
//!
//! # Failure detection and reconnect
//!
//! A peer is **lost** when its last connection ends (EOF, socket error, bad
//! frame, write buffer full), when nothing was heard from it for the timeout,
//! on `Goodbye` or `Lost`, when it floods, or when a `Hello` with its address
//! and a later start time arrives (it restarted: the old process is gone, the
//! new one is a new peer; an earlier one is a dead instance's, late, and only
//! that connection closes). The console says `lost ADDR (why)`.
//!
//! **Heartbeats** (the one rule, `ping_due`): a node voting for itself pings
//! every peer each heartbeat, all in one round (one wake-up), so the votes it
//! counts stay confirmed. Any other node pings a peer silent for a **quiet
//! time** (the timeout less a heartbeat, at least 1.5 heartbeats, at most the
//! timeout less a quarter; again every heartbeat while unanswered): never on a
//! live link to the master, whose Pings come every heartbeat; between two
//! non-masters the lower address pings (the other half a heartbeat later),
//! along with its Pong to a master's Ping when due within half a heartbeat.
//! So a link between non-masters must answer within a heartbeat.
//!
//! **Vouched links.** Under a master, non-masters leave the links between them
//! to it: a node that votes for a live peer announcing itself master neither
//! pings nor times out a peer that votes for another node and that the
//! master's latest `Members` names. The master hears every peer each
//! heartbeat, and with its next round sends its `Members` to every peer again
//! whenever its peers or the votes for it changed. A link stops being vouched
//! for when the master is lost, its list no longer names the peer, or either
//! end votes for itself: that peer is pinged at once and lost unless it
//! answers within a heartbeat. So a voter that falls silent is lost by the
//! master after the timeout and by the other voters a heartbeat or two later,
//! and one that fell silent with the master a heartbeat after it; `-cl` shows
//! the last round trip measured on such a link.
//!
//! **Pongs with the next round.** A master leaves its peers' lone Pongs
//! unread until its next timer: while it is master, every connection's
//! receive low-water mark lies one byte above the longest Pong frame
//! ([`wire::PONG_FRAME_MAX`]), so a `State` (always longer), an EOF or an
//! error wakes it at once, and the shell reads every connection before the
//! timers run. One round in eight ([`node::TIMED_ROUNDS`]) is read as it comes
//! and times the round trip `-cl` shows. A short `-msg` text goes to a master
//! with a Ping, which together wake it. Idle, the master wakes once per
//! heartbeat, a voter once; a voter silent after its last Pong is lost up to a
//! heartbeat later than it would be otherwise.
//! Each peer has one timer (none while vouched for), armed at the earlier of
//! its next ping and its timeout, re-armed lazily (not on every frame), and
//! before the node sleeps ([`Node::poll_timeout`]) if it would only re-arm.
//! Every [`Node::handle_timeout`] first drops the peers silent past the timeout.
//!
//! **Reconnect.** A peer lost without `Goodbye`, without a restart and without
//! flooding is redialled after 100 ms, the wait doubling to 5 s, until it answers
//! or the `--forget` time (60 s) has passed (`gave up on ADDR`); a `--join`
//! address is redialled for ever, every 500 ms at most until it was reached once,
//! and its outage is said once (`cannot reach ADDR yet (…); retrying`). A peer
//! that only ever dialled in is redialled as a learnt address (in their room,
//! share and rate): any stranger can claim an address and hang up. A live
//! peer's `Members` naming an address that waits for its redial (a healed
//! link) brings the redial forward to 100 ms, its backoff new, once per 100 ms. A dial that
//! takes longer than the handshake timeout counts as failed. `-c ADDR` dials once
//! and says how it ended. Host names (`--join name:port`, `-c name port`) are
//! looked up by child processes ([`shell::resolve`]): at most [`node::MAX_LOOKUPS`] at
//! once, 64 names wanted at most, a lookup killed after 5 s; up to 8 of a name's
//! addresses are dialled one at a time until one completes a handshake; a
//! `--join` name is looked up again on every round and when its peer is lost.
//!
//! # Election
//!
//! Each node's **view** is itself plus every peer with a live, handshaken
//! connection. The **rule** ([`election::Rule`]: `oldest`, the default,
//! `youngest`, `priority`, `address`) is a total order on [`wire::NodeInfo`]:
//! every rule ends with the smaller address, so no two nodes are ever equal. All
//! nodes of a cluster must use one rule and one quorum (the `Hello` checks it).
//!
//! - **Vote** ([`election::vote`]): for the incumbent, the best *eligible* node
//!   of the view that announces `master: true`; or, with no incumbent and at
//!   least `quorum` nodes in view, for the best eligible node of the view; else
//!   for nobody.
//! - **Eligibility and standby**: a node in standby (`--standby`, the console's
//!   `-standby on`, `boss ctl standby on`) says `eligible: false` in its `State`.
//!   It still votes and counts toward the quorum, but no node votes for it, and
//!   it is no incumbent, not even to itself: a master that enters standby votes
//!   for the best eligible node at once (a handover, with or without
//!   `--no-preempt`, through the vote release below). With no eligible node in
//!   view there is no master, and `-m` says so.
//! - **Health check** (`--check`, [`node`]'s `check.rs`): a node is eligible
//!   only while its check passes, as well as out of standby. The check runs at
//!   start and then every `--check-interval` (from the start of one run to the
//!   next; never two at once; killed at `--check-timeout`, which counts as a
//!   failure). The first result decides at once (a node with a check starts
//!   ineligible and waits for one run, not `--rise` runs); after that `--fall`
//!   failures in a row make it ineligible, `--rise` passes eligible again. A
//!   change is sent in `State` like standby, and a master that becomes
//!   ineligible hands over in the same step. The shell runs the check as a
//!   second child beside the script ([`script::Script`]: its own process
//!   group, stdin from /dev/null, dying with the node), with `BOSS_NODE` and
//!   `BOSS_ROLE` added to the node's environment; its two pipes have tokens
//!   of their own (from `usize::MAX / 8`) and are read like the script's, at
//!   most 16 KiB each per turn; every SIGCHLD tries both children. At exit
//!   the check's group is killed and not waited for: a check stuck in the
//!   kernel must not hold a leaving node. With no eligible node in view, `-m`
//!   says `all in standby` on a node without a check and `none eligible` on
//!   one with a check (a peer's `State` tells whether it is eligible, not
//!   why).
//! - **Master**: a node that votes for itself and holds at least `quorum` votes,
//!   its own included. It announces it in `State`. `quorum` defaults to 2, so a
//!   lone node is never master; quorum 1 gets a warning at start.
//! - **Preemption**: a master that sees a better node in its view steps down
//!   (votes for it) unless `--no-preempt`; among several announced masters all
//!   but the best step down regardless.
//! - **Join gating**: a node does not vote for itself before each `--join`
//!   address and name was tried once (reached, or its attempt failed or timed
//!   out): a better node may be among them.
//! - **Vote release with acknowledgement.** A node that moves its vote away from a
//!   live peer X votes for nobody until X has applied the withdrawal (a `State`
//!   from X whose `ack` reaches the withdrawing `seq`) or X is gone. A node that
//!   applies a `State` voting for nobody, or moving a vote away from itself,
//!   answers with its own `State` even when nothing of its own changed. Else one
//!   vote could be counted by its old and its new holder at once.
//! - **Confirmed votes and the Votes timer.** A node counts a peer's vote for
//!   itself only while it is confirmed: the peer answered a Ping of ours sent less
//!   than a timeout ago (the end rounded down to the wheel's tick, less the
//!   wheel's rounding: one tick, [`timer::TimerWheel::rounding`]).
//!   Votes present but not yet confirmed are pinged at once. While master, a
//!   `Votes` timer fires when the confirmed votes would fall below the quorum, and
//!   every `handle_timeout` checks it first too, so a master behind a slow or
//!   one-way link gives up the role before its voters can vote for another node,
//!   whatever the delays: a voter re-votes only after timing the master out or
//!   after the master applied its withdrawal. [`Node::is_master_at`] says what a
//!   (possibly frozen) node may still claim at a given instant; the simulator's
//!   safety check uses it.
//! - **The lease**: when a node times out the peer it voted for, or whose
//!   release it awaits (no EOF, no `Goodbye`), it votes for nobody for 30 ms
//!   (a tick of rounding plus 20 ms): that peer counted the vote only while a
//!   Ping this node heard after it was sent confirmed it, so it stopped before
//!   this node's timeout ended. A silent master is replaced a timeout after
//!   its last Ping; after EOF or `Goodbye`, within milliseconds.
//!
//! A node re-evaluates after every change of its view or of a peer's state; a
//! change of its vote or master flag bumps its `seq` and is sent to every peer.
//! Each node says `master changed: …` when the master it names (itself, or the
//! best peer announcing itself master) changes, and the script follows the role.
//!
//! # Epochs
//!
//! Every master term has a number, its epoch (`BOSS_EPOCH`, `-m`, `master
//! changed`, the status). The rule, as Raft makes its terms unique by the
//! votes that elect them:
//! - Each node keeps `promised`, the highest epoch it proposed or promised; it
//!   never goes down while the node runs, and with `--state-dir` it is stored
//!   durably ([`Output::Promise`], write, fsync, rename) before the `State`
//!   that carries it is sent, and read back at start.
//! - A node that votes for itself is a candidate with an epoch above every
//!   epoch it has seen (its own `promised` and every peer's `State`). It keeps
//!   that epoch while no peer reports a greater one nor votes for it without
//!   a promise at it (a master keeps it for its whole term); else it proposes
//!   a greater one.
//!   A master that loses its role ends its term: its next candidacy has a new
//!   epoch.
//! - A node votes for another as before (see the election), but the vote is a
//!   *promise* (`tied` in `State`) only at that node's candidate epoch, and only
//!   if that epoch is above `promised` (or is the one it already promised to
//!   it). A candidate counts a vote only if it is a promise at its own epoch.
//! - A master that sees another master with a greater epoch steps down.
//!
//! So with a majority quorum two terms' quorums share a voter, which promised
//! the later term a greater epoch than the earlier: epochs grow across terms
//! and are never shared (the simulator's `Epoch` invariant). Without
//! `--state-dir` a restarted node remembers no promise, so uniqueness holds only
//! while a majority of the nodes that promised stay up.
//!
//! # Scripts
//!
//! **Roles.** While master a node runs the master script, otherwise the default
//! script: one child at a time ([`script`]), run directly (no shell) in its own
//! process group, stdin from /dev/null, told when the node dies
//! (`PR_SET_PDEATHSIG`, see below), with `BOSS_ROLE`, `BOSS_SELF`, `BOSS_MASTER` and `BOSS_EPOCH` added to its environment. The
//! script follows the role once at the end of each input and of each timer batch,
//! so a role that flips and flips back within one step starts and stops nothing;
//! role changes in a burst collapse to the last one. A new `-ds`/`-ms` replaces a
//! running script of its role at once.
//!
//! **Handover.** Two master scripts never run at once with a majority quorum
//! (the simulator's `MasterScripts`), outside a frozen node (the epoch covers
//! it), a reset or a one-way partition (the old master closes on voters that
//! still hear it, and they take the close for its end):
//! - `State` says `script: true` while the sender's master script runs or
//!   stops, and from just before it starts: a master starts it only once a
//!   quorum (itself included) answered a Ping sent after that `State`, so a
//!   master cut off as it starts has voters that know (or no script). A new
//!   master starts its own only once every live peer has sent its `State` and
//!   none says so ([`event::Event::ScriptHeld`] says it waits).
//! - `held` relays a node other than the receiver whose master script may run
//!   as the sender knows first hand (its peer's `script`, or the hold below);
//!   a new master also waits while a peer relays one it has no connection to
//!   (a dial crawling, a broken route): a majority quorum shares a voter with
//!   the old master's, who knows.
//! - A leaving master (`-q`, SIGTERM) first leaves the running (not eligible:
//!   the role moves at once) and stops its script; only when it is reaped does
//!   it say `Goodbye` and exit. Preemption, standby and a failing check stop
//!   the script the same way, and the `State` that follows says it ended.
//! - EOF, a reset (ECONNRESET: a master killed with Pongs unread) or `Goodbye`
//!   from a peer means its script is gone (it died with its node, or was
//!   reaped); a node alive with its script says `Lost` before it closes on a
//!   peer. A peer whose script ran, lost silently, may run it until its votes
//!   expired and its kill grace passed: a node holds its master script for a
//!   heartbeat, the lease's margin and the kill grace after such a loss, and a
//!   voter that loses its master that way holds its vote (the lease) the kill
//!   grace longer, so no new master is elected before.
//! - A node restarted with `--state-dir` (a promise stored) is not eligible and
//!   votes for nobody for the kill grace and the timeout
//!   ([`event::Event::RestartHold`]): it may have been the one voter the next
//!   quorum shares with the old master's, and forgot that master's script.
//!
//! **Loop and sleep.** When a script ends, the node waits `-sslp` (1 s) and runs
//! it again (`-loop 1`), or clears it (`-loop 0`). A script that keeps failing
//! within 1 s of its start waits longer: after 3 such runs in a row, twice the
//! sleep (at least 100 ms) doubling up to 30 s (never below the sleep), with one
//! line. A failure status is said once until it changes or a run succeeds.
//!
//! **Stop with grace.** On a role change, a new script, or the node leaving, the
//! script's process group gets SIGTERM, then SIGKILL after the kill grace (2 s,
//! `… did not stop within …: killed`); once it is reaped the role's script starts
//! at once. A leaving node exits only after its script was reaped.
//!
//! **Start failures.** A script that can never start (not found, not executable)
//! gives one line and is cleared. A transient failure (EMFILE, ENFILE, EAGAIN,
//! ENOMEM, ETXTBSY) is retried after 100 ms, doubling up to 10 s, said once until a start works.
//!
//! **Output rate.** Script lines are relayed as `[role] line` or
//! `[role stderr] line`, escaped: a burst of 200, then 200 lines a second; the
//! rest is dropped, counted and said every 2 s and once more when the script ends.
//!
//! **Death signal.** The script gets SIGTERM when its node dies, even of
//! SIGKILL: its trap runs, so a master script can give back what it holds (a
//! virtual IP) with no node left to stop it. SIGTERM, not SIGKILL, has a price:
//! a script that ignores it outlives a killed node, and nobody sends SIGKILL
//! after a grace. The signal reaches the script process alone, not its group: a
//! background job ends only if the script's trap ends it. The health check and
//! the notify hook hold nothing to give back; theirs is SIGKILL.
//!
//! Known limit: a frozen node (SIGSTOP, a stalled VM) cannot stop its script while frozen,
//! and the others elect a new master after the timeout.
//!
//! # Invariants
//!
//! Checked by name by the simulator (`tests/sim/invariants.rs`) and, where a process shows
//! them, by the process tests:
//!
//! 1. **Agreement**: once faults stop and the live nodes form one connected
//!    component of at least `quorum` nodes, within a bounded time every node of it
//!    names the same master, and that master considers itself master (checked with
//!    `PeersLive`, `Reconnect` and `Mesh`: every component is a full mesh).
//! 2. **Rule**: that master is the best live node by the rule; with
//!    `--no-preempt`, a live member that considers itself master.
//! 3. **Lone**: a component smaller than `quorum` has no master; at every step a
//!    master has at least `quorum - 1` peers (and `MasterQuorum`: it votes for
//!    itself and holds `quorum` votes in its view).
//! 4. **Safety with a majority quorum**: with `2 × quorum > n`, at most one node
//!    is master at any instant, through crashes, freezes, silent failures,
//!    partitions and heals; a frozen node counts as master only if
//!    [`Node::is_master_at`] its own clock. Exempt (and counted): two masters
//!    within `timeout + heartbeat + backoff_max` of a connection reset injected by
//!    the network itself, and a master still holding a connection of a restarted
//!    node's previous instance.
//! 5. **No loss of control**: no panic on any input (`Panic`); connections and
//!    timers per node bounded (`Bounded`); every connection the shell would hold
//!    is one the core tracks (`ConnAccounting`); outputs keep the [`Output`]
//!    contract (`ConnProtocol`, `DialProtocol`, `OutputProtocol`, `ScriptProtocol`,
//!    `Wire`); no `Exit` while the script runs (`Orphan`); a running script is of
//!    the node's role (`ScriptRole`); no vote flapping (`Churn`). The script process
//!    never outlives its node: a leaving node stops it before it exits, and a
//!    killed node's script gets its death signal (SIGTERM, `PR_SET_PDEATHSIG`;
//!    the process tests), so only a script that ignores it stays.
//!
//! With a cluster secret, the intruder worlds of the simulator check one more
//! (`Intruder`): a machine without the secret never completes a handshake, so
//! never holds or casts a counted vote and is never named master, and no
//! honest node dials an address only it announced.
//!
//! 6. **Standby and health**: a node in standby, or whose check makes it
//!    ineligible, is never master once it has applied the change (`Standby`,
//!    `Eligible` in the simulator): it steps down in the same step; and a node
//!    whose check keeps failing is ineligible within `--fall` runs (`Health`).
//!
//! 7. **Epochs** with a majority quorum: every master term begun has an epoch
//!    greater than every term begun before it (`Epoch`), nodes restarting with
//!    their stored promise.
//!
//! # Defaults
//!
//! The settings of [`Config::new`], each set by a flag (see the man page):
//!
//! | what | flag | default |
//! | --- | --- | --- |
//! | heartbeat interval | `--heartbeat` | 250 ms |
//! | peer timeout | `--timeout` | 1 s |
//! | handshake timeout (and dial timeout) | `--handshake-timeout` | 2 s |
//! | forget a lost peer | `--forget` | 60 s (`--join`: never) |
//! | quorum | `--quorum` | 2 |
//! | rule | `--rule` | oldest |
//! | priority (rule `priority`) | `--priority` | 0 |
//! | preemption | `--no-preempt` | on |
//! | script sleep / loop | `--sleep`, `--no-loop`, `-sslp`, `-loop` | 1 s / on |
//! | script kill grace | `--kill-grace` | 2 s |
//! | health check / its interval / its timeout | `--check`, `--check-interval`, `--check-timeout` | none / 2 s / 2 s |
//! | check passes to rise / failures to fall | `--rise`, `--fall` | 2 / 2 |
//! | connections at once | `--max-connections` | 1024 (capped to the open-files limit less 64) |
//! | cluster name | `--cluster` | boss |
//! | cluster secret | `--secret-file` | none (a warning when listening beyond loopback) |
//! | control socket / its mode | `--control`, `--control-mode` | one per listen port in the runtime directory / 0600 |
//! | notify hook's time limit | `--notify-timeout` | 10 s |
//!
//! Fixed limits:
//!
//! | what | value |
//! | --- | --- |
//! | reconnect backoff (a setting without a flag) | 100 ms doubling to 5 s |
//! | frame body / first frame | 64 KiB (a message 64 KiB less 16, room for the seal) / 1 KiB |
//! | a refusal for the cluster, the secret or the proof | once a minute per address |
//! | timer tick / vote lease | 10 ms / 30 ms (a tick + 20 ms) |
//! | `--join` retry until first reached / member list taken / learnt addresses wanted | at most every 500 ms / 256 / 256 |
//! | dials in flight (learnt) / learnt dial rate | 32 (24) / 50 per s after a burst of 256 |
//! | open connections per peer / handshaking per IP, from half the limit on | 4 / 8 |
//! | frames per connection per second / lookups in flight / names wanted / lookup timeout / addresses per round | 5,000 + 4 per heartbeat / 4 / 64 / 5 s / 8 |
//! | per turn: frames per connection / bytes per connection / frames in all / accepts / bytes per script pipe | 64 / 64 KiB / 2,048 / 256 / 64 KiB |
//! | write buffer per connection / in all / console backlog | 2 × (64 KiB + 4) + 16 KiB / 4 MiB / 1 MiB |
//! | console line / script line ([`shell::MAX_CONSOLE_LINE`], [`script::MAX_SCRIPT_LINE`]) | 64 KiB / 4,096 bytes |
//! | script lines relayed / peers' texts shown | burst 200, then 200 per s / burst 64 KiB, then 16 KiB per s |
//! | health check: lines shown per run / bytes read per pipe per turn | 10 / 16 KiB |
//! | collapsed stranger lines | 5 per kind per 10 s (peers that dialled in: 256), then a summary |
//! | failing script backoff / transient start retry | after 3 runs under 1 s: doubling up to 30 s / 100 ms doubling to 10 s |
//! | exit flush (frames, console) / control clients / request line / request within / queued per client | 300 ms each / 16 / 4,096 bytes / 2 s / 256 KiB |
//! | notify hook: changes waiting / lines shown per run | 16 / 100 |

pub mod auth;
pub mod cli;
pub mod client;
pub mod command;
pub mod config;
pub mod election;
pub mod event;
pub mod node;
pub mod ratelog;
pub mod rng;
pub mod script;
pub mod shell;
pub mod text;
pub mod timer;
pub mod wire;

pub use config::Config;
pub use node::{ConnId, Input, Node, Output, Time};
