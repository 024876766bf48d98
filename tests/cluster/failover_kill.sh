#!/usr/bin/env bash
# failover_kill.sh: the master dies (kill -9). Its kernel closes its sockets,
# so the survivors see `lost <A> (closed)` at once and elect the oldest
# survivor, B; all agree and B alone says `master: yes`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_node a 127.0.0.1 0
start_node b 127.0.0.1 0 --join "${ADDR[a]}"
start_node c 127.0.0.1 0 --join "${ADDR[a]}"

wait_connections 2 10 a b c || fail "no full mesh"
agree "${ADDR[a]}" 10 a b c >/dev/null || fail "a, b, c do not agree on a"

declare -A mark=([b]=$(lines b) [c]=$(lines c))
kill_node a KILL
for x in b c; do
    wait_event $x 10 "${mark[$x]}" peer_lost "${ADDR[a]}" closed >/dev/null || fail "$x did not see a close"
    wait_event $x 10 "${mark[$x]}" master_changed "${ADDR[b]}" >/dev/null || fail "$x did not name b"
done
agree "${ADDR[b]}" 10 b c >/dev/null || fail "b and c do not agree on b"
yes=$(one_yes b c) || fail "not exactly one master"
[[ $yes == b ]] || fail "$yes says master: yes, expected b"

pass "after kill -9 of master a, b and c agree on b, the oldest survivor"
