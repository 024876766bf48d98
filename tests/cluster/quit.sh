#!/usr/bin/env bash
# quit.sh: the master leaves cleanly with -q. It prints `leaving` and exits 0;
# its peers print `lost <A> (left)`, re-elect at once (B, the oldest left) and
# do not redial it: -cl on them no longer lists A.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_node a 127.0.0.1 0
start_node b 127.0.0.1 0 --join "${ADDR[a]}"
start_node c 127.0.0.1 0 --join "${ADDR[a]}"

wait_connections 2 10 a b c || fail "no full mesh"
agree "${ADDR[a]}" 10 a b c >/dev/null || fail "a, b, c do not agree on a"

declare -A mark=([b]=$(lines b) [c]=$(lines c))
ask a -q '^leaving$' 10 >/dev/null || fail "a did not say leaving"
wait_exit a 10 || fail "a did not exit after -q"
[[ $EXIT_STATUS == 0 ]] || fail "a exited with status $EXIT_STATUS after -q, expected 0"
say "a exited with status 0"

for x in b c; do
    wait_event $x 10 "${mark[$x]}" peer_lost "${ADDR[a]}" left >/dev/null ||
        fail "$x did not print lost a (left)"
    wait_event $x 10 "${mark[$x]}" master_changed "${ADDR[b]}" >/dev/null ||
        fail "$x did not elect b"
done
agree "${ADDR[b]}" 10 b c >/dev/null || fail "b and c do not agree on b"
yes=$(one_yes b c) || fail "not exactly one master"
[[ $yes == b ]] || fail "$yes says master: yes, expected b"
wait_connections 1 10 b c || fail "b and c are not each other's only peer"

# A peer that left is not redialled: -cl lists no line for it (a redial would
# show as `peer <A> down, retry in ...`). An absence needs a window to show
# in: the first redial of a lost peer comes after 100 ms, so look after 500.
# (-cn after -cl marks the end of the -cl answer.)
sleep 0.5
for x in b c; do
    n=$(lines $x)
    cmd $x -cl
    ask $x -cn '^connections: ' 10 >/dev/null || fail "$x did not answer"
    if tail -n "+$((n + 1))" "${LOG[$x]}" | grep -F -- "${ADDR[a]}"; then
        fail "$x still lists a, which left"
    fi
done

pass "a left with -q (status 0); b and c saw it leave and agree on b"
