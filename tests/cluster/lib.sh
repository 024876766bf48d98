# shellcheck shell=bash
# lib.sh: helpers for shell-scripted multi-node tests of boss.
#
# Source it from a test script:
#
#   #!/usr/bin/env bash
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"
#   start_node a 127.0.0.1 0 --heartbeat 50ms --timeout 300ms
#   start_node b 127.0.0.1 0 --join "${ADDR[a]}"
#   agree "${ADDR[a]}" 10 a b || fail "a and b do not agree on a"
#   pass "two nodes agree"
#
# Every node gets its console on a FIFO ($TMP/NAME.in, a writer fd kept open by
# this shell) and its stdout+stderr in $TMP/NAME.log, in a fresh temporary
# directory. The node runs with $TMP as its working directory, so scripts
# written there can be named ./script.sh. Per node NAME:
#   PID[NAME]  the process id (the boss process itself)
#   LOG[NAME]  its log file            FIFO[NAME]  its console FIFO
#   ADDR[NAME] its address ip:port, from its first line `started <addr> (...)`
#   PORT[NAME] the port of that address
# On exit (any exit), cleanup kills every process recorded here that is still
# running (and nothing else), runs the CLEANUP_HOOKS, and removes $TMP; when
# the test failed it first prints the tail of every node's log.
#
# KEEP_TMP=1 keeps $TMP (the logs) after the test, for a look at them.
#
# Exit status of a test: 0 passed, 77 skipped (skip), anything else failed.
# Every wait has a deadline; the deadlines are upper bounds, not delays.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BOSS=${BOSS:-target/release/boss}
[[ $BOSS == /* ]] || BOSS="$REPO/$BOSS"
if [[ ! -x $BOSS ]]; then
    echo "FAIL: boss binary not found at $BOSS (run: cargo build --release)" >&2
    exit 1
fi

TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/boss-cluster-$TEST_NAME.XXXXXX")
# The nodes' default control sockets ($XDG_RUNTIME_DIR/boss/PORT.sock) go
# in $TMP, and go with it: one directory per node (start_node), since nodes
# in network namespaces may share a port.
mkdir -m 700 "$TMP/run"
unset RUNTIME_DIRECTORY

declare -A PID=() LOG=() FIFO=() ADDR=() PORT=() FD=() STARTS=()
CLEANUP_HOOKS=()   # commands (function names) run by cleanup, after the kill

# say MSG: a line of the test's own narration, with a timestamp.
say() { printf '%s %s: %s\n' "$(date +%T.%3N)" "$TEST_NAME" "$*"; }

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

pass() {
    echo "PASS: $TEST_NAME${1:+: $1}"
    exit 0
}

fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    exit 1
}

# skip MSG: the test cannot run here (exit 77, counted as skipped by run.sh).
skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

# alive NAME: the node's process is running: it exists, has not exited (a
# zombie has) and is still this shell's child (so a pid reused by someone
# else's process after ours was reaped is never taken for ours).
alive() {
    local pid=${PID[$1]:-}
    [[ -n $pid ]] || return 1
    local stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }            # "state ppid ..."
    local -a f
    read -ra f <<<"$stat"
    [[ ${f[0]} != Z && ${f[1]} == "$$" ]]
}

cleanup() {
    local rc=$?
    set +e
    # No second cleanup, and none cut short: a TERM now (from `timeout`, or
    # an impatient user) must not leave processes or namespaces behind.
    trap - EXIT
    trap '' INT TERM
    # The logs as they were at the failure, before the cleanup adds to them.
    if ((rc != 0 && rc != 77)); then
        local f
        for f in "$TMP"/*.log; do
            [[ -e $f ]] || continue
            echo "---- $TEST_NAME failed (status $rc); tail of $(basename "$f"):" >&2
            tail -n 50 "$f" >&2
        done
    fi
    # Then the processes this test started (only those), then the hooks for
    # what else it set up (namespaces...).
    local name pid
    for name in "${!PID[@]}"; do
        pid=${PID[$name]}
        [[ -n $pid ]] || continue
        if alive "$name"; then
            kill -CONT "$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
        fi
        { wait "$pid"; } 2>/dev/null
    done
    local hook
    for hook in "${CLEANUP_HOOKS[@]}"; do "$hook"; done
    local fd
    for fd in "${FD[@]}"; do
        exec {fd}>&-
    done
    if [[ -n ${KEEP_TMP:-} ]]; then
        echo "KEEP_TMP: logs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_node NAME ARGS...: start `boss ARGS...` as node NAME and wait for its
# `started` line (10 s). With NETNS=ns set for the call, the node runs inside
# that network namespace (ip netns exec). Starting a name again (a restart)
# keeps the earlier log as NAME.N.log.
start_node() {
    local name=$1
    shift
    if [[ -n ${PID[$name]:-} ]] && alive "$name"; then
        fail "start_node $name: already running (pid ${PID[$name]})"
    fi
    local n=$((${STARTS[$name]:-0} + 1))
    STARTS[$name]=$n
    local log=$TMP/$name.log fifo=$TMP/$name.in
    [[ -e $log ]] && mv "$log" "$TMP/$name.$((n - 1)).log"
    [[ -p $fifo ]] || mkfifo "$fifo"
    if [[ -z ${FD[$name]:-} ]]; then
        local fd
        exec {fd}<>"$fifo"
        FD[$name]=$fd
    fi
    : >"$log"
    local -a wrap=()
    [[ -n ${NETNS:-} ]] && wrap=(ip netns exec "$NETNS")
    # The subshell closes the writer fds of every console (no node holds
    # another's console open), then execs: $! is the boss process itself.
    (
        for f in "${FD[@]}"; do exec {f}>&-; done
        cd "$TMP"
        export XDG_RUNTIME_DIR=$TMP/run/$name
        mkdir -p -m 700 "$XDG_RUNTIME_DIR"
        exec "${wrap[@]}" "$BOSS" "$@"
    ) <"$fifo" >"$log" 2>&1 &
    PID[$name]=$!
    LOG[$name]=$log
    FIFO[$name]=$fifo
    local line
    line=$(wait_event "$name" 10 0 started) || fail "node $name did not start: $(cat "$log")"
    local addr=${line#started }
    addr=${addr%% *}
    ADDR[$name]=$addr
    PORT[$name]=${addr##*:}
    say "started $name at $addr (pid ${PID[$name]})"
}

# re_quote TEXT: TEXT as an extended regex that matches it literally.
re_quote() {
    printf '%s' "$1" | sed 's/[][\\.^$*+?(){}|/]/\\&/g'
}

# event_re EVENT [ARG...]: the extended regex of one kind of event line (man
# boss, CONSOLE OUTPUT); the one place these tests spell the console's words.
#   started                       `started ADDR (…)`
#   master_changed [ADDR|none]    `master changed: …` (naming ADDR, or none)
#   peer_up ADDR                  `connected ADDR`
#   peer_lost ADDR [WHY]          `lost ADDR (…)`; WHY: closed, left, timed_out
#   script_line ROLE [TEXT]       `[ROLE] TEXT` (stdout); without TEXT any line
#                                 of ROLE, `[ROLE stderr] …` too
#   refused ADDR [WHY [THEIRS OURS]]  `refused ADDR: …`; WHY: cluster (with the
#                                 two cluster names, or any), wrong_proof
event_re() {
    local ev=$1
    shift
    case $ev in
    started) echo '^started [^ ]+ \(' ;;
    master_changed)
        case ${1:-} in
        '') echo '^master changed: ' ;;
        none) echo '^master changed: none \(' ;;
        *) echo "^master changed: $(re_quote "$1") \(" ;;
        esac
        ;;
    peer_up) echo "^connected $(re_quote "$1")\$" ;;
    peer_lost)
        local why
        case ${2:-} in
        '') why='.*' ;;
        closed | left) why=$2 ;;
        timed_out) why='timed out after [^)]*' ;;
        *) echo "event_re: unknown reason $2" >&2; return 1 ;;
        esac
        echo "^lost $(re_quote "$1") \($why\)\$"
        ;;
    script_line)
        if (($# > 1)); then
            echo "^\[$1\] $(re_quote "$2")\$"
        else
            echo "^\[$1( stderr)?\] "
        fi
        ;;
    refused)
        local why
        case ${2:-} in
        '') why='.*' ;;
        cluster)
            if (($# > 2)); then
                why="cluster '$(re_quote "$3")', this node's is '$(re_quote "$4")'"
            else
                why="cluster '[^']*', this node's is '[^']*'"
            fi
            ;;
        wrong_proof) why='its proof of the cluster secret is wrong .*' ;;
        *) echo "event_re: unknown reason $2" >&2; return 1 ;;
        esac
        echo "^refused $(re_quote "$1"): $why\$"
        ;;
    *) echo "event_re: unknown event $ev" >&2; return 1 ;;
    esac
}

# wait_event NAME SECS AFTER EVENT [ARG...]: wait_for the line of that event.
wait_event() {
    local name=$1 secs=$2 after=$3 re
    shift 3
    re=$(event_re "$@") || return 1
    wait_for "$name" "$re" "$secs" "$after"
}

# cmd NAME LINE: type LINE at NAME's console.
cmd() {
    printf '%s\n' "$2" >&"${FD[$1]}"
}

# lines NAME: the number of complete lines in NAME's log so far.
lines() {
    local n
    n=$(wc -l <"${LOG[$1]}")
    echo $((n))
}

# wait_for NAME REGEX SECS [AFTER]: wait until a line of NAME's log, after its
# first AFTER lines (default 0), matches the extended REGEX; print that line.
# Polls every 50 ms; returns 1 after SECS seconds, or as soon as the node has
# exited without printing it.
wait_for() {
    local name=$1 re=$2 secs=$3 after=${4:-0}
    local deadline=$(($(now_ms) + secs * 1000)) line
    while :; do
        local dead=0
        alive "$name" || dead=1
        # (no pipefail here: grep -m1 may stop reading early, and tail's
        # SIGPIPE must not turn a match into a miss)
        if line=$(set +o pipefail; tail -n "+$((after + 1))" "${LOG[$name]}" | grep -E -m1 -- "$re"); then
            printf '%s\n' "$line"
            return 0
        fi
        if ((dead)); then
            echo "wait_for $name /$re/: node exited first" >&2
            return 1
        fi
        if (($(now_ms) >= deadline)); then
            echo "wait_for $name /$re/: nothing within ${secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

# ask NAME LINE REGEX SECS: type LINE at NAME's console and wait for the first
# line matching REGEX printed after it; print that line.
ask() {
    local name=$1 line=$2 re=$3 secs=$4 n
    n=$(lines "$name")
    cmd "$name" "$line"
    wait_for "$name" "$re" "$secs" "$n"
}

# master_of NAME: ask NAME `-m`; print the address it names as master, or
# `none`. (says_yes tells whether it is master itself.)
master_of() {
    local ans
    ans=$(ask "$1" -m '^master: ' 10) || return 1
    case $ans in
    "master: yes, "*) ans=${ans#master: yes, } ;;
    "master: no, master is "*) ans=${ans#master: no, master is } ;;
    "master: no, no master"*) echo none; return 0 ;;
    *) echo "master_of $1: cannot parse: $ans" >&2; return 1 ;;
    esac
    echo "${ans%% *}"
}

# says_yes NAME: NAME answers `master: yes` to -m now.
says_yes() {
    local ans
    ans=$(ask "$1" -m '^master: ' 10) || return 1
    [[ $ans == "master: yes, "* ]]
}

# agree EXPECTED SECS NAME...: wait until every NAME names the same master;
# EXPECTED is an address, or `any` for any master but none. Prints the master.
agree() {
    local want=$1 secs=$2
    shift 2
    local deadline=$(($(now_ms) + secs * 1000)) name m first ok
    local -a seen
    while :; do
        first= seen=() ok=1
        for name in "$@"; do
            m=$(master_of "$name") || m='?'
            seen+=("$name=$m")
            [[ -z $first ]] && first=$m
            if [[ $m != "$first" || $m == none || $m == '?' ]]; then ok=0; fi
        done
        if ((ok)) && [[ $want == any || $want == "$first" ]]; then
            echo "$first"
            return 0
        fi
        if (($(now_ms) >= deadline)); then
            echo "agree: no agreement on ${want} within ${secs}s: ${seen[*]}" >&2
            return 1
        fi
        sleep 0.05
    done
}

# one_yes NAME...: exactly one of NAMEs answers `master: yes`; print its name.
one_yes() {
    local name yes=()
    for name in "$@"; do
        if says_yes "$name"; then yes+=("$name"); fi
    done
    if ((${#yes[@]} != 1)); then
        echo "one_yes: ${#yes[@]} nodes say master: yes (${yes[*]:-})" >&2
        return 1
    fi
    echo "${yes[0]}"
}

# wait_connections N SECS NAME...: wait until every NAME answers
# `connections: N` to -cn.
wait_connections() {
    local want=$1 secs=$2
    shift 2
    local deadline=$(($(now_ms) + secs * 1000)) name ans
    for name in "$@"; do
        while :; do
            ans=$(ask "$name" -cn '^connections: ' 10) || return 1
            [[ $ans == "connections: $want" ]] && break
            if (($(now_ms) >= deadline)); then
                echo "wait_connections: $name says '$ans', not $want, after ${secs}s" >&2
                return 1
            fi
            sleep 0.05
        done
    done
}

# name_of ADDR: the node name with that address.
name_of() {
    local name
    for name in "${!ADDR[@]}"; do
        [[ ${ADDR[$name]} == "$1" ]] && { echo "$name"; return 0; }
    done
    echo "?"
}

# kill_node NAME SIGNAL: send SIGNAL (KILL, STOP, CONT, TERM...) to NAME. For
# KILL, wait for the process to be gone and reap it.
kill_node() {
    local name=$1 sig=${2#-}
    alive "$name" || fail "kill_node $name: it is not running"
    say "kill -$sig $name (pid ${PID[$name]})"
    if [[ $sig == KILL || $sig == 9 ]]; then
        # Reap it at once (SIGKILL cannot be ignored): this also keeps bash's
        # "Killed" job notice out of the output.
        local rc=0
        { kill -KILL "${PID[$name]}" && wait "${PID[$name]}"; } 2>/dev/null || rc=$?
        EXIT_STATUS=$rc
    else
        kill "-$sig" "${PID[$name]}"
    fi
}

# wait_exit NAME SECS: wait until NAME's process has exited, reap it and set
# EXIT_STATUS to its exit status. Returns 1 if it is still running after SECS.
# Call it directly, not in $(...): only this shell can reap its children.
EXIT_STATUS=
wait_exit() {
    local name=$1 secs=$2
    local deadline=$(($(now_ms) + secs * 1000)) rc=0
    EXIT_STATUS=
    while alive "$name"; do
        if (($(now_ms) >= deadline)); then
            echo "wait_exit: $name still running after ${secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
    # (the braces keep bash's "Killed" job notice out of the output)
    { wait "${PID[$name]}"; } 2>/dev/null || rc=$?
    EXIT_STATUS=$rc
}

# first_match NAME REGEX [AFTER]: the line number (in the whole log) of the
# first line after AFTER matching REGEX, or nothing.
first_match() {
    local name=$1 re=$2 after=${3:-0} n
    n=$(set +o pipefail; tail -n "+$((after + 1))" "${LOG[$name]}" | grep -n -E -m1 -- "$re" | cut -d: -f1)
    [[ -n $n ]] && echo $((n + after))
    return 0
}

# new_secret: make a cluster secret file for --secret-file in $TMP (removed
# with it): 32 random bytes as 64 hex digits, readable by its owner only
# (boss refuses a file the group or others may read); print its path.
new_secret() {
    local f
    f=$(mktemp "$TMP/secret.XXXXXX")
    chmod 600 "$f"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f"
    echo "$f"
}
