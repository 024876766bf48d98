#!/usr/bin/env bash
# failover_stop.sh: the master freezes (kill -STOP). Its sockets stay open, so
# the others only notice the silence: after --timeout (300 ms here) they print
# `lost <A> (timed out ...)` and, one heartbeat later (the vote lease), elect
# B. When A is continued (kill -CONT) it must first drop its master status
# (`master changed: none` or another master, never going on as master), then
# rejoin; the rule may re-elect it (it is the oldest). At the end all three
# agree on one master and exactly one says `master: yes`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

opts=(--heartbeat 50ms --timeout 300ms)
start_node a 127.0.0.1 0 "${opts[@]}"
start_node b 127.0.0.1 0 "${opts[@]}" --join "${ADDR[a]}"
start_node c 127.0.0.1 0 "${opts[@]}" --join "${ADDR[a]}"

wait_connections 2 10 a b c || fail "no full mesh"
agree "${ADDR[a]}" 10 a b c >/dev/null || fail "a, b, c do not agree on a"

declare -A mark=([a]=$(lines a) [b]=$(lines b) [c]=$(lines c))
t0=$(now_ms)
kill_node a STOP
for x in b c; do
    wait_event $x 10 "${mark[$x]}" peer_lost "${ADDR[a]}" timed_out >/dev/null ||
        fail "$x did not time a out"
    wait_event $x 10 "${mark[$x]}" master_changed "${ADDR[b]}" >/dev/null ||
        fail "$x did not elect b"
    # The new master comes after the loss, not before: nobody votes while
    # the frozen master may still count itself master.
    lost=$(first_match $x "$(event_re peer_lost "${ADDR[a]}")" "${mark[$x]}")
    elected=$(first_match $x "$(event_re master_changed "${ADDR[b]}")" "${mark[$x]}")
    ((lost < elected)) || fail "$x named b (line $elected) before it lost a (line $lost)"
done
t1=$(now_ms)
say "b elected $((t1 - t0)) ms after the STOP"
((t1 - t0 >= 300)) || fail "b was elected $((t1 - t0)) ms after the STOP, before the 300 ms timeout"
agree "${ADDR[b]}" 10 b c >/dev/null || fail "b and c do not agree on b while a is frozen"
yes=$(one_yes b c) || fail "not exactly one master among b and c"
[[ $yes == b ]] || fail "$yes says master: yes, expected b"

# Thaw A. The first master line it prints after the thaw must give up its
# own master status.
mark[a]=$(lines a)
kill_node a CONT
line=$(wait_event a 10 "${mark[a]}" master_changed) || fail "a did not notice it lost its master status"
if [[ $line =~ $(event_re master_changed "${ADDR[a]}") ]]; then
    fail "a went on as master after the thaw: $line"
fi
say "a after the thaw: $line"

m=$(agree any 10 a b c) || fail "a, b, c do not agree on one master after the thaw"
yes=$(one_yes a b c) || fail "not exactly one node says master: yes"
[[ ${ADDR[$yes]} == "$m" ]] || fail "$yes says master: yes, but all name $m"
wait_connections 2 10 a b c || fail "no full mesh after the thaw"

pass "STOP: b elected after $((t1 - t0)) ms; CONT: a gave up, then all agree on $(name_of "$m")"
