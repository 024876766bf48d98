#!/usr/bin/env bash
# vip.sh: a virtual IP that follows the master (man boss, EXAMPLES), across
# network namespaces. Three node namespaces (a, b, c) and a client namespace
# (cl) on one bridge, addresses in a private /24 that exists only inside them,
# the virtual IP in the same /24. Each node runs boss at its default timings
# with the recipe's master script (tests/cluster/vip-master.sh, its own
# address and interface) and a tiny TCP responder on every address that
# answers with the node's name. The client opens a connection to VIP:PORT
# every 3 ms (each given 500 ms) and logs who answered. Then, RUNS times:
#   1. the master is killed with kill -9;
#   2. the VIP must answer from the new master within BOUND_MS; the figure is
#      the time from the kill until the first answer from it (the client's
#      clock, resolution ~3 ms), printed per run with min/median/max;
#   3. the old box must give the address back (its master script's trap
#      runs after the node's death: ip -n NS addr show), and from then on
#      the new master alone holds it: `ip addr` of the three is polled in a
#      loop all along, and `ip monitor` timestamps each add and delete;
#   4. the killed node is started again and rejoins.
# Between the new master's add and the old box's delete both may hold the
# address for a few ms (the old box's trap and the new master's script run at
# the same time): printed per run, from ip monitor's timestamps, against the
# add and against the new master's first answer.
# The announcement is the recipe's gratuitous ARP (arping, Debian's
# iputils-arping): without arping the test skips, since the client's ARP
# cache would keep the old box's MAC. Needs python3 (skips without).
# Needs root (ip netns). Skips when namespaces cannot be made,
# except under CI (CI=true), where that is a failure. The namespaces and
# everything in them are removed whatever happens.
# Then, with KEEPALIVED_RUNS=N, the same failover with keepalived instead of
# boss, N times at advert_int 1 and at 0.1 (see below).
# Env: RUNS (default 5), BOUND_MS (default 1000), KEEPALIVED_RUNS (default 0).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-5}
BOUND_MS=${BOUND_MS:-1000}
SUF="$$-$RANDOM"
NET="10.214.$((RANDOM % 200 + 20))"   # exists only inside our namespaces
VIP="$NET.100"
PORT=7100
NS_BR="boss-$SUF-br"
declare -A NS=([a]="boss-$SUF-a" [b]="boss-$SUF-b" [c]="boss-$SUF-c" [cl]="boss-$SUF-cl")
declare -A IP=([a]="$NET.1" [b]="$NET.2" [c]="$NET.3" [cl]="$NET.9")
CREATED=()   # namespaces to delete

remove_namespaces() {
    local ns pid
    for ns in "${CREATED[@]}"; do
        # The responders, the client, the monitors, whatever a master script
        # left: all of it runs inside our namespaces and goes with them.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || echo "warning: could not delete namespace $ns" >&2
    done
}
CLEANUP_HOOKS+=(remove_namespaces)

# The poller runs in this shell's namespace: stop it before the namespaces go.
POLLER=
stop_poller() { [[ -z $POLLER ]] || { kill "$POLLER" 2>/dev/null; wait "$POLLER" 2>/dev/null; } || true; }
CLEANUP_HOOKS=(stop_poller "${CLEANUP_HOOKS[@]}")

cannot() {
    if [[ ${CI:-} == true ]]; then
        fail "cannot create network namespaces under CI: $*"
    fi
    skip "cannot create network namespaces: $*"
}

# on NAME CMD...: run CMD inside NAME's namespace.
on() { ip netns exec "${NS[$1]}" "${@:2}"; }

# --- what it needs ---------------------------------------------------------
((EUID == 0)) || cannot "not root"
command -v ip >/dev/null || cannot "no ip command (iproute2)"
# (.ci/run installs both where they are missing.)
command -v arping >/dev/null || skip "no arping (Debian: apt-get install iputils-arping)"
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || skip "no python3"

# --- the network -----------------------------------------------------------
err=$(ip netns add "$NS_BR" 2>&1) || cannot "ip netns add failed: $err"
CREATED+=("$NS_BR")
ip -n "$NS_BR" link set lo up
ip -n "$NS_BR" link add br0 type bridge
ip -n "$NS_BR" link set br0 up
for x in a b c cl; do
    ip netns add "${NS[$x]}" || fail "ip netns add ${NS[$x]} failed"
    CREATED+=("${NS[$x]}")
    on $x ip link set lo up
    on $x ip link add eth0 type veth peer name "v$x" netns "$NS_BR"
    on $x ip addr add "${IP[$x]}/24" dev eth0
    on $x ip link set eth0 up
    ip -n "$NS_BR" link set "v$x" master br0
    ip -n "$NS_BR" link set "v$x" up
done
# Many short connections from the client: room for their ports.
on cl sysctl -q -w net.ipv4.ip_local_port_range="1024 65000"
say "namespaces ${NS[*]} $NS_BR, network $NET.0/24, VIP $VIP"

# --- responders, monitors, client ------------------------------------------
cat >"$TMP/responder.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(128)
msg = (sys.argv[2] + "\n").encode()
while True:
    c, _ = s.accept()
    try:
        c.sendall(msg)
    except OSError:
        pass
    c.close()
EOF
cat >"$TMP/client.py" <<'EOF'
# client.py HOST PORT PERIOD TIMEOUT: a connection to HOST:PORT every PERIOD
# seconds, each given TIMEOUT; one line per attempt: START END ANSWER (ANSWER
# is the first line read, `-` for a refusal or nothing, `timeout`).
import selectors, socket, sys, time
host, port, period, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sel = selectors.DefaultSelector()
inflight = {}
out = sys.stdout
def done(s, what, t):
    out.write("%.6f %.6f %s\n" % (inflight[s][0], t, what))
    out.flush()
    sel.unregister(s)
    s.close()
    del inflight[s]
nxt = time.time()
while True:
    now = time.time()
    if now >= nxt:
        nxt = now + period
        if len(inflight) < 500:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((host, port))
            except BlockingIOError:
                pass
            except OSError:
                out.write("%.6f %.6f -\n" % (now, now))
                s.close()
                s = None
            if s is not None:
                inflight[s] = [now, b""]
                sel.register(s, selectors.EVENT_READ)
    for key, _ in sel.select(timeout=max(0.0, nxt - time.time())):
        s = key.fileobj
        try:
            d = s.recv(64)
        except BlockingIOError:
            continue
        except OSError:
            d = b""
        if d:
            inflight[s][1] += d
            if b"\n" not in inflight[s][1]:
                continue
        done(s, inflight[s][1].split(b"\n")[0].decode(errors="replace") or "-", time.time())
    now = time.time()
    for s in [s for s, v in inflight.items() if now - v[0] > limit]:
        done(s, "timeout", now)
EOF
# (Each started from a subshell, so not a job of this shell, and run without a
# shell function around it: it ends with its namespace, and no "Killed" notice
# says so.)
for x in a b c; do
    # A responder per node answering its name on every address it holds.
    (ip netns exec "${NS[$x]}" "$PY" "$TMP/responder.py" $PORT $x &)
    # Every add and delete of an address, timestamped by ip itself.
    (ip -n "${NS[$x]}" -ts monitor address >"$TMP/monitor-$x.txt" 2>&1 &)
done
# When the client learns a MAC for the VIP (kept for a look with KEEP_TMP).
(ip -n "${NS[cl]}" -ts monitor neigh >"$TMP/monitor-cl.txt" 2>&1 &)
for x in a b c; do
    deadline=$(($(now_ms) + 10000))
    until [[ $(on $x timeout 2 bash -c "exec 3<>/dev/tcp/${IP[$x]}/$PORT && head -n 1 <&3" 2>/dev/null) == "$x" ]]; do
        (($(now_ms) < deadline)) || fail "the responder of $x does not answer"
        sleep 0.05
    done
done

# holders: the nodes that hold the VIP now, as one word ("-" for none).
holders() {
    local x h=
    for x in a b c; do
        if on $x ip -o -4 addr show dev eth0 | grep -q " $VIP/"; then h+=$x; fi
    done
    echo "${h:--}"
}
# The poller: one line `START_US END_US NODE HELD` (HELD 1 or 0) per look at
# one node's addresses, the three in turn, without pause. A look at one node
# is atomic; a round of three is not, so two holders are inferred only where
# that is sound (see below).
poll_holders() {
    local x t h
    while :; do
        for x in a b c; do
            t=${EPOCHREALTIME/./} h=0
            if ip -n "${NS[$x]}" -o -4 addr show dev eth0 2>/dev/null | grep -q " $VIP/"; then h=1; fi
            echo "$t ${EPOCHREALTIME/./} $x $h"
        done
    done
}
poll_holders >"$TMP/holders.txt" &
POLLER=$!
(ip netns exec "${NS[cl]}" "$PY" "$TMP/client.py" "$VIP" $PORT 0.003 0.5 >"$TMP/client.txt" &)

# --- the nodes -------------------------------------------------------------
MS="$REPO/tests/cluster/vip-master.sh"
start() {
    local x=$1 others=()
    local y
    for y in a b c; do [[ $y == "$x" ]] || others+=(--join "${IP[$y]}:7000"); done
    NETNS=${NS[$x]} start_node $x "${IP[$x]}" 7000 "${others[@]}" --master-script "$MS $VIP/24 eth0"
}
start a
start b
start c
wait_connections 2 10 a b c || fail "no full mesh"
m=$(agree any 10 a b c) || fail "a, b, c do not agree on a master"
say "all agree on $(name_of "$m")"

# answered_by NAME AFTER_US: the END time (µs) of the first answer from NAME
# that started after AFTER_US, or nothing.
answered_by() {
    awk -v who="$1" -v after="$2" '$3 == who && $1 * 1e6 > after { printf "%.0f\n", $2 * 1e6; exit }' "$TMP/client.txt"
}

# mon_time NAME added|Deleted AFTER_US: when (µs) ip monitor first saw the
# VIP added to or deleted from NAME's eth0 after AFTER_US, or nothing.
mon_time() {
    "$PY" - "$TMP/monitor-$1.txt" "$2" "$3" "$VIP" <<'EOF'
import datetime, re, sys
f, kind, after, vip = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for line in open(f):
    m = re.match(r"\[([^\]]+)\] (Deleted )?\d+: \S+\s+inet ([\d.]+)/", line)
    if m and m.group(3) == vip and (m.group(2) is not None) == (kind == "Deleted"):
        t = round(datetime.datetime.fromisoformat(m.group(1)).timestamp() * 1e6)
        if t > after:
            print(t)
            break
EOF
}

# dec1 US: microseconds as milliseconds with one decimal and a sign.
dec1() { awk -v u="$1" 'BEGIN { printf "%+.1f", u / 1000 }'; }

# wait_held NAME SECS: wait until NAME alone holds the VIP and the client has
# had an answer from it.
wait_held() {
    local x=$1 deadline=$(($(now_ms) + $2 * 1000)) t
    t=${EPOCHREALTIME/./}
    until [[ $(holders) == "$x" && -n $(answered_by "$x" "$t") ]]; do
        (($(now_ms) < deadline)) || fail "$x does not hold the VIP alone and answer on it (holders: $(holders))"
        sleep 0.02
    done
}

figures=() overlaps=() looks_all=0
for run in $(seq 1 "$RUNS"); do
    m=$(agree any 10 a b c) || fail "run $run: a, b, c do not agree on a master"
    old=$(name_of "$m")
    [[ $old != "?" ]] || fail "run $run: the master $m is none of a, b, c"
    wait_held "$old" 10
    survivors=()
    for x in a b c; do [[ $x == "$old" ]] || survivors+=("$x"); done
    sleep 0.2   # a steady stream of answers from the old master before the kill
    say "run $run: kill -9 of $old (pid ${PID[$old]})"
    t0=${EPOCHREALTIME/./}
    kill -KILL "${PID[$old]}"
    { wait "${PID[$old]}"; } 2>/dev/null || true
    new=$(agree any 10 "${survivors[@]}") || fail "run $run: ${survivors[*]} do not agree on a new master"
    new=$(name_of "$new")
    # The VIP answers from the new master.
    deadline=$(($(now_ms) + BOUND_MS + 2000))
    t1=
    until [[ -n $t1 ]]; do
        t1=$(answered_by "$new" "$t0")
        [[ -n $t1 ]] && break
        (($(now_ms) < deadline)) || fail "run $run: the VIP did not answer from $new"
        sleep 0.02
    done
    ms=$(((t1 - t0) / 1000))
    ((ms <= BOUND_MS)) || fail "run $run: the VIP answered from $new only $ms ms after the kill (bound $BOUND_MS ms)"
    # The old box gave the address back: its master script's trap ran.
    deadline=$(($(now_ms) + 2000))
    while on "$old" ip -o -4 addr show dev eth0 | grep -q " $VIP/"; do
        (($(now_ms) < deadline)) || fail "run $run: $old still holds $VIP 2 s after its node was killed"
        sleep 0.02
    done
    # When the kernel says it happened (ip monitor): the old box's delete of
    # the VIP and the new master's add, after the kill.
    t_del=$(mon_time "$old" Deleted "$t0")
    t_add=$(mon_time "$new" added "$t0")
    [[ -n $t_del && -n $t_add ]] || fail "run $run: ip monitor did not see $old delete and $new add the VIP"
    # The handover is over once the old box has let go: from then on the new
    # master alone holds the address, without a break until the next kill, so
    # any look begun since that finds it on another box is a moment when two
    # held it.
    two=$(awk -v from="$t_del" -v new="$new" '$1 >= from && $3 != new && $4 == 1' "$TMP/holders.txt")
    [[ -z $two ]] || fail "run $run: another box held the VIP after the handover: $two"
    [[ $(holders) == "$new" ]] || fail "run $run: after the handover the VIP is held by $(holders), expected $new alone"
    looks=$(awk -v from="$t0" '$1 >= from' "$TMP/holders.txt" | wc -l)
    looks_all=$((looks_all + looks))
    overlaps+=("$old>$new $(dec1 $((t_del - t_add)))/$(dec1 $((t_del - t1)))")
    say "run $run: kill -9 of $old; the VIP answered from $new after $ms ms; $old let go $(dec1 $((t_del - t0))) ms after the kill, $(dec1 $((t_del - t_add))) ms after $new took it"
    figures+=("$ms")
    # The killed node comes back and rejoins.
    start "$old"
    wait_connections 2 10 a b c || fail "run $run: no full mesh after $old came back"
done

# --- the figures -----------------------------------------------------------
sorted=$(printf '%s\n' "${figures[@]}" | sort -n)
n=${#figures[@]}
min=$(head -n1 <<<"$sorted") max=$(tail -n1 <<<"$sorted") med=$(sed -n "$(((n + 1) / 2))p" <<<"$sorted")
say "kill -9 of the master until the VIP answers from the new master: ${figures[*]} ms (min $min, median $med, max $max; $n runs)"
# Per handover, from ip monitor: the old box's delete after the new master's
# add (positive: both held the VIP that long) / after the new master's first
# answer (positive: the client had it from the new master while the old box
# still held it).
say "the old box let go, ms after the new master took the VIP / after its first answer: ${overlaps[*]}"
say "ip addr polled $looks_all times (one box a look) from the kills on; never two holders after the old box let go"
declare -A PRIO=([a]=150 [b]=100 [c]=50)
start_ka() {
    local x=$1 adv=$2
    cat >"$TMP/ka-$x.conf" <<EOF
global_defs {
    router_id $x
    vrrp_version 3
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority ${PRIO[$x]}
    advert_int $adv
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
}
EOF
    (ip netns exec "${NS[$x]}" keepalived -n -l -D -P -f "$TMP/ka-$x.conf" -p "$TMP/ka-$x.pid" -r "$TMP/vrrp-$x.pid" >"$TMP/ka-$x.log" 2>&1 &)
}
kill_ka() { # kill -9 every keepalived process in x's namespace at once
    local x=$1 pids=()
    local p
    for p in $(ip netns pids "${NS[$x]}"); do
        [[ $(cat /proc/$p/comm 2>/dev/null) == keepalived ]] && pids+=("$p")
    done
    ((${#pids[@]})) || return 0
    # Frozen first, so that none can react to another's death (the VRRP
    # child would send a priority-0 advert when its parent goes): a box that
    # dies.
    kill -STOP "${pids[@]}" 2>/dev/null
    kill -KILL "${pids[@]}" 2>/dev/null
    local deadline=$(($(now_ms) + 5000))
    for p in "${pids[@]}"; do
        while [[ -e /proc/$p ]] && [[ $(awk '{print $3}' /proc/$p/stat 2>/dev/null) != Z ]]; do
            (($(now_ms) < deadline)) || break
            sleep 0.01
        done
    done
    rm -f "$TMP/ka-$x.pid" "$TMP/vrrp-$x.pid"
}

# --- keepalived, for comparison (KEEPALIVED_RUNS=N) --------------------------
# The same namespaces, responders and client; keepalived (VRRP version 3, so
# that advert_int may be below 1 s) on a, b, c with priorities 150, 100, 50 and
# the VIP as its virtual_ipaddress, at advert_int 1 (its default) and 0.1.
# Per run: all three start afresh, a takes the VIP, then every keepalived
# process of a is frozen and killed with kill -9 at once (a box that dies: no
# process of it may send a last advert); the figure is the time until the VIP
# answers from b. keepalived does not give the address back after SIGKILL: the
# old box still holds it, which is printed, not asserted.
keepalived_figures() {
    local x
    for x in a b c; do
        kill_node $x TERM
        wait_exit $x 10 || fail "$x did not leave"
    done
    [[ $(holders) == - ]] || fail "the VIP is still held by $(holders) after the nodes left"
    local adv run t t0 t1 deadline ms figs
    for adv in 1 0.1; do
        figs=()
        for run in $(seq 1 "$KEEPALIVED_RUNS"); do
            for x in a b c; do kill_ka $x; done
            for x in a b c; do on $x ip addr del "$VIP/24" dev eth0 2>/dev/null || true; done
            for x in a b c; do start_ka $x "$adv"; done
            deadline=$(($(now_ms) + 30000))
            t=${EPOCHREALTIME/./}
            until [[ $(holders) == a && -n $(answered_by a "$t") ]]; do
                (($(now_ms) < deadline)) || fail "keepalived, advert_int $adv: a does not hold the VIP (holders: $(holders))"
                sleep 0.05
            done
            sleep 1   # steady adverts from a before the kill
            t0=${EPOCHREALTIME/./}
            kill_ka a
            deadline=$(($(now_ms) + 30000))
            until t1=$(answered_by b "$t0") && [[ -n $t1 ]]; do
                (($(now_ms) < deadline)) || fail "keepalived, advert_int $adv: the VIP did not answer from b"
                sleep 0.02
            done
            ms=$(((t1 - t0) / 1000))
            figs+=("$ms")
            say "keepalived advert_int $adv, run $run: the VIP answered from b after $ms ms; held by $(holders) now"
        done
        sorted=$(printf '%s\n' "${figs[@]}" | sort -n)
        say "keepalived advert_int $adv: kill -9 of the master until the VIP answers from the new master: ${figs[*]} ms (median $(sed -n "$(((${#figs[@]} + 1) / 2))p" <<<"$sorted"))"
    done
    for x in a b c; do kill_ka $x; done
}
if ((${KEEPALIVED_RUNS:-0} > 0)); then
    command -v keepalived >/dev/null || fail "KEEPALIVED_RUNS set, but no keepalived (apt-get install keepalived)"
    keepalived_figures
else
    say "keepalived comparison not run (KEEPALIVED_RUNS=3 runs it; needs keepalived)"
fi

pass "$n failovers; VIP back from the new master after min $min, median $med, max $max ms; the old box always gave it back"
