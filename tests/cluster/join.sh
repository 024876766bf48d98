#!/usr/bin/env bash
# join.sh: three nodes form a full mesh, the third joining through a node that
# is not the master. B dials A (-c ip port), C dials B (-c ip:port); C learns
# of A from B's member list and dials it. Every node ends with 2 connections
# and names A, the oldest, as master; A alone says `master: yes`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_node a 127.0.0.1 0
start_node b 127.0.0.1 0
start_node c 127.0.0.1 0

# B dials A, in the original's two-word form.
ask b "-c 127.0.0.1 ${PORT[a]}" "$(event_re peer_up "${ADDR[a]}")" 10 >/dev/null ||
    fail "b did not connect to a"
wait_event b 10 0 master_changed "${ADDR[a]}" >/dev/null || fail "b did not name a as master"

# C dials B only, in the ip:port form; it must end connected to A too.
n=$(lines c)
cmd c "-c ${ADDR[b]}"
wait_event c 10 "$n" peer_up "${ADDR[b]}" >/dev/null || fail "c did not connect to b"
wait_event c 10 "$n" peer_up "${ADDR[a]}" >/dev/null || fail "c did not learn of a through b"
wait_event a 10 0 peer_up "${ADDR[c]}" >/dev/null || fail "a did not see c"

wait_connections 2 10 a b c || fail "not a full mesh"
agree "${ADDR[a]}" 10 a b c >/dev/null || fail "the nodes do not all name a"
yes=$(one_yes a b c) || fail "not exactly one node says master: yes"
[[ $yes == a ]] || fail "$yes says master: yes, expected a"

pass "a, b (via a) and c (via b) form a mesh of 3 and all name a"
