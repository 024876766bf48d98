#!/usr/bin/env bash
# control.sh: nodes run as under a service manager, stdin from /dev/null (no
# console), and are driven only from outside with boss ctl, boss status and
# boss is-master over their control sockets: b and c join a with `boss ctl
# -c`, `boss status --json` names a on every node, is-master exits 0 on a and
# 1 elsewhere, a goes into standby and hands over to b, comes back, and leaves
# with `boss ctl -q` (status 0); then no node answers on its socket (exit 3).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# start_daemon NAME ARGS...: a node with stdin from /dev/null and its control
# socket at $TMP/NAME.sock; waits for its `started` line.
start_daemon() {
    local name=$1
    shift
    LOG[$name]=$TMP/$name.log
    (cd "$TMP" && exec "$BOSS" "$@" --control "$TMP/$name.sock") </dev/null >"${LOG[$name]}" 2>&1 &
    PID[$name]=$!
    local line
    line=$(wait_event "$name" 10 0 started) || fail "node $name did not start: $(cat "${LOG[$name]}")"
    ADDR[$name]=$(sed -E 's/^started ([^ ]+) .*/\1/' <<<"$line")
    PORT[$name]=${ADDR[$name]##*:}
    say "started $name at ${ADDR[$name]} (pid ${PID[$name]}), stdin /dev/null"
}

# ctl NAME WORDS...: boss ctl on NAME's socket; its output on stdout.
ctl() {
    local name=$1
    shift
    "$BOSS" ctl --control "$TMP/$name.sock" "$@"
}

# is_master NAME: boss is-master's exit status.
is_master() {
    local rc=0
    "$BOSS" is-master --control "$TMP/$1.sock" || rc=$?
    echo "$rc"
}

# master_json NAME: the master `boss status --json` names on NAME.
master_json() {
    "$BOSS" status --json --control "$TMP/$1.sock" |
        sed -E 's/.*"master":(null|"([^"]*)").*/\2/'
}

# agree_json WANT SECS NAME...: wait until every NAME's status names WANT.
agree_json() {
    local want=$1 secs=$2
    shift 2
    local deadline=$(($(now_ms) + secs * 1000)) name m ok
    while :; do
        ok=1
        for name in "$@"; do
            m=$(master_json "$name") || m='?'
            [[ $m == "$want" ]] || ok=0
        done
        ((ok)) && return 0
        if (($(now_ms) >= deadline)); then
            echo "agree_json: not all of $* name $want after ${secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

start_daemon a 127.0.0.1 0
start_daemon b 127.0.0.1 0
start_daemon c 127.0.0.1 0

for x in b c; do
    out=$(ctl $x -c 127.0.0.1 "${PORT[a]}") || fail "boss ctl -c on $x exited $?: $out"
    say "$x: $out"
done
agree_json "${ADDR[a]}" 10 a b c || fail "a, b, c do not agree on a"
say "boss status --json names a on a, b and c"

[[ $(is_master a) == 0 ]] || fail "boss is-master on a is not 0"
[[ $(is_master b) == 1 ]] || fail "boss is-master on b is not 1"
[[ $(is_master c) == 1 ]] || fail "boss is-master on c is not 1"
say "is-master: a 0, b 1, c 1"

out=$(ctl a standby on) || fail "boss ctl standby on exited $?"
say "a: $out"
agree_json "${ADDR[b]}" 10 a b c || fail "a did not hand over to b"
[[ $(is_master a) == 1 && $(is_master b) == 0 ]] || fail "is-master does not follow the handover"
"$BOSS" status --control "$TMP/a.sock" | grep -q "^role: .*(standby)" || fail "boss status on a does not show standby"
ctl a -standby off >/dev/null || fail "boss ctl -standby off exited $?"
agree_json "${ADDR[a]}" 10 a b c || fail "a did not take the role back"
say "standby on: b master; off: a again"

rc=0
out=$(ctl a -bogus) || rc=$?
[[ $rc == 2 ]] || fail "boss ctl -bogus exited $rc, expected 2 ($out)"

ctl a -q >/dev/null || fail "boss ctl -q exited $?"
wait_exit a 10 || fail "a did not exit after boss ctl -q"
[[ $EXIT_STATUS == 0 ]] || fail "a exited with status $EXIT_STATUS, expected 0"
[[ ! -e $TMP/a.sock ]] || fail "a left its control socket behind"
agree_json "${ADDR[b]}" 10 b c || fail "b and c do not agree on b after a left"
[[ $(is_master a) == 3 ]] || fail "boss is-master without a node is not 3"

pass "nodes without a console joined, handed over and left through boss ctl"
