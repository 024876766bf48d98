#!/usr/bin/env bash
# restart.sh: a node is killed and restarted under the same address. The
# master A is killed with -9 (B takes over), then a new process is started on
# A's address (the port A got the first time, given explicitly) with
# `--join B`. It is a new node to the others (same address, new start time,
# so now the youngest): all three end connected to each other and agree on B.
# Then the non-master C is restarted the same way, joining with -c at the
# console, and the cluster agrees again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_node a 127.0.0.1 0
start_node b 127.0.0.1 0 --join "${ADDR[a]}"
start_node c 127.0.0.1 0 --join "${ADDR[a]}"
wait_connections 2 10 a b c || fail "no full mesh"
agree "${ADDR[a]}" 10 a b c >/dev/null || fail "a, b, c do not agree on a"

# Restart the master.
old=${ADDR[a]}
declare -A mark=([b]=$(lines b) [c]=$(lines c))
kill_node a KILL
agree "${ADDR[b]}" 10 b c >/dev/null || fail "b and c do not agree on b after a died"
start_node a 127.0.0.1 "${PORT[a]}" --join "${ADDR[b]}"
[[ ${ADDR[a]} == "$old" ]] || fail "a restarted as ${ADDR[a]}, not $old"
for x in b c; do
    wait_event $x 10 "${mark[$x]}" peer_up "${ADDR[a]}" >/dev/null || fail "$x did not reconnect to the new a"
done
wait_connections 2 10 a b c || fail "no full mesh after a's restart"
agree "${ADDR[b]}" 10 a b c >/dev/null || fail "a, b, c do not agree on b after a's restart"
yes=$(one_yes a b c) || fail "not exactly one master after a's restart"
[[ $yes == b ]] || fail "$yes says master: yes, expected b"
say "a restarted at $old; all agree on b"

# Restart a node that is not master; it joins with -c at its console.
old=${ADDR[c]}
mark=([a]=$(lines a) [b]=$(lines b))
kill_node c KILL
for x in a b; do
    wait_event $x 10 "${mark[$x]}" peer_lost "${ADDR[c]}" closed >/dev/null || fail "$x did not see c close"
done
start_node c 127.0.0.1 "${PORT[c]}"
[[ ${ADDR[c]} == "$old" ]] || fail "c restarted as ${ADDR[c]}, not $old"
cmd c "-c ${ADDR[a]}"
wait_connections 2 10 a b c || fail "no full mesh after c's restart"
agree "${ADDR[b]}" 10 a b c >/dev/null || fail "a, b, c do not agree on b after c's restart"
yes=$(one_yes a b c) || fail "not exactly one master after c's restart"
[[ $yes == b ]] || fail "$yes says master: yes, expected b"

pass "master a and then c restarted on their old addresses; all agree on b"
