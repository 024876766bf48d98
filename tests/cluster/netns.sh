#!/usr/bin/env bash
# netns.sh: three hosts, for real: one network namespace per node (a, b, c),
# each with a veth link to a Linux bridge in a fourth namespace, addresses in
# a private /24 that exists only inside these namespaces; one boss per
# namespace on the fixed port 7000, all started with --join for the other
# two. Then:
#   1. the three agree on one master (a, the oldest);
#   2. the master's link is cut (ip link set eth0 down inside its namespace):
#      b and c time it out and elect b; the cut-off node, alone and below the
#      quorum of 2, prints `master changed: none` and is master no more;
#   3. the link is restored: the nodes find each other again, all agree on
#      one master and exactly one says `master: yes`.
# Needs root (ip netns). Skips when namespaces cannot be made, except under
# CI (CI=true), where that is a failure. The namespaces and everything in them
# are removed whatever happens.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUF="$$-$RANDOM"
NET="10.213.$((RANDOM % 200 + 20))"   # exists only inside our namespaces
NS_BR="boss-$SUF-br"
declare -A NS=([a]="boss-$SUF-a" [b]="boss-$SUF-b" [c]="boss-$SUF-c")
declare -A IP=([a]="$NET.1" [b]="$NET.2" [c]="$NET.3")
CREATED=()   # namespaces to delete

remove_namespaces() {
    local ns pid
    for ns in "${CREATED[@]}"; do
        # Whatever still runs inside our namespaces (the nodes were killed
        # by pid already; this catches anything they left) goes with them.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || echo "warning: could not delete namespace $ns" >&2
    done
}
CLEANUP_HOOKS+=(remove_namespaces)

cannot() {
    if [[ ${CI:-} == true ]]; then
        fail "cannot create network namespaces under CI: $*"
    fi
    skip "cannot create network namespaces: $*"
}

# on NAME CMD...: run CMD inside NAME's namespace.
on() { ip netns exec "${NS[$1]}" "${@:2}"; }

# --- the network -----------------------------------------------------------
((EUID == 0)) || cannot "not root"
command -v ip >/dev/null || cannot "no ip command (iproute2)"
err=$(ip netns add "$NS_BR" 2>&1) || cannot "ip netns add failed: $err"
CREATED+=("$NS_BR")
ip -n "$NS_BR" link set lo up
ip -n "$NS_BR" link add br0 type bridge
ip -n "$NS_BR" link set br0 up
for x in a b c; do
    ip netns add "${NS[$x]}" || fail "ip netns add ${NS[$x]} failed"
    CREATED+=("${NS[$x]}")
    on $x ip link set lo up
    # The veth pair is born with one end in each namespace: no interface of
    # this test ever exists in the host's namespace.
    on $x ip link add eth0 type veth peer name "v$x" netns "$NS_BR"
    on $x ip addr add "${IP[$x]}/24" dev eth0
    on $x ip link set eth0 up
    ip -n "$NS_BR" link set "v$x" master br0
    ip -n "$NS_BR" link set "v$x" up
done
say "namespaces ${NS[*]} $NS_BR, network $NET.0/24"

# --- the nodes -------------------------------------------------------------
opts=(--heartbeat 50ms --timeout 300ms)
NETNS=${NS[a]} start_node a "${IP[a]}" 7000 "${opts[@]}" --join "${IP[b]}:7000" --join "${IP[c]}:7000"
NETNS=${NS[b]} start_node b "${IP[b]}" 7000 "${opts[@]}" --join "${IP[a]}:7000" --join "${IP[c]}:7000"
NETNS=${NS[c]} start_node c "${IP[c]}" 7000 "${opts[@]}" --join "${IP[a]}:7000" --join "${IP[b]}:7000"

wait_connections 2 10 a b c || fail "no full mesh"
m=$(agree any 10 a b c) || fail "a, b, c do not agree on a master"
[[ $m == "${ADDR[a]}" ]] || fail "all name $m, expected a (the oldest)"
yes=$(one_yes a b c) || fail "not exactly one master"
[[ $yes == a ]] || fail "$yes says master: yes, expected a"
say "all agree on a"

# --- cut the master's link -------------------------------------------------
declare -A mark=([a]=$(lines a) [b]=$(lines b) [c]=$(lines c))
say "cut a's link"
on a ip link set eth0 down
for x in b c; do
    wait_event $x 10 "${mark[$x]}" peer_lost "${ADDR[a]}" timed_out >/dev/null || fail "$x did not time a out"
done
agree "${ADDR[b]}" 10 b c >/dev/null || fail "b and c do not agree on b with a cut off"
yes=$(one_yes b c) || fail "not exactly one master among b and c"
[[ $yes == b ]] || fail "$yes says master: yes, expected b"
wait_event a 10 "${mark[a]}" master_changed none >/dev/null || fail "a, cut off, did not give up being master"
[[ $(master_of a) == none ]] || fail "a, cut off, still names a master"
say "b and c agree on b; a names none"

# --- restore it ------------------------------------------------------------
mark=([a]=$(lines a) [b]=$(lines b) [c]=$(lines c))
say "restore a's link"
on a ip link set eth0 up
# Redial backoff is at most 5 s: 15 s is a generous upper bound.
wait_connections 2 15 a b c || fail "no full mesh after the link came back"
m=$(agree any 15 a b c) || fail "a, b, c do not agree on one master after the heal"
yes=$(one_yes a b c) || fail "not exactly one node says master: yes after the heal"
[[ ${ADDR[$yes]} == "$m" ]] || fail "$yes says master: yes, but all name $m"

pass "a cut off: b elected, a none; link back: all agree on $(name_of "$m")"
