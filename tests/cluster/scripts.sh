#!/usr/bin/env bash
# scripts.sh: the master runs the master script, the others the default one.
# Each node gets `--sleep 0.05 -ds ./d.sh -ms ./m.sh` (scripts written into
# the test's directory, which is the nodes' working directory; each prints
# its role and node). The master's log shows `[master]` lines, the others'
# only `[default]` lines; after kill -9 of the master the new master's log
# shows `[master]` lines and the third node keeps running the default script.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cat >"$TMP/d.sh" <<'SH'
#!/bin/sh
echo "default script on $BOSS_SELF, role $BOSS_ROLE, master ${BOSS_MASTER:-none}"
SH
cat >"$TMP/m.sh" <<'SH'
#!/bin/sh
echo "master script on $BOSS_SELF, role $BOSS_ROLE"
SH
chmod +x "$TMP/d.sh" "$TMP/m.sh"

scripts=(--sleep 0.05 -ds ./d.sh -ms ./m.sh)
start_node a 127.0.0.1 0 "${scripts[@]}"
start_node b 127.0.0.1 0 --join "${ADDR[a]}" "${scripts[@]}"
start_node c 127.0.0.1 0 --join "${ADDR[a]}" "${scripts[@]}"

agree "${ADDR[a]}" 10 a b c >/dev/null || fail "a, b, c do not agree on a"
wait_event a 10 0 script_line master "master script on ${ADDR[a]}, role master" >/dev/null ||
    fail "a, the master, runs no master script"
declare -A mark=()
for x in b c; do
    mark[$x]=$(lines $x)
    # a fresh [default] line after the agreement: the default script goes on.
    wait_event $x 10 "${mark[$x]}" script_line default "default script on ${ADDR[$x]}, role default, master ${ADDR[a]}" >/dev/null ||
        fail "$x does not run the default script"
done
for x in b c; do
    if grep -E "$(event_re script_line master)" "${LOG[$x]}"; then fail "$x, not master, ran the master script"; fi
done

kill_node a KILL
wait_event b 10 "${mark[b]}" script_line master "master script on ${ADDR[b]}, role master" >/dev/null ||
    fail "b, the new master, runs no master script"
agree "${ADDR[b]}" 10 b c >/dev/null || fail "b and c do not agree on b"
mark[c]=$(lines c)
wait_event c 10 "${mark[c]}" script_line default "default script on ${ADDR[c]}, role default, master ${ADDR[b]}" >/dev/null ||
    fail "c does not run the default script under master b"
if grep -E "$(event_re script_line master)" "${LOG[c]}"; then fail "c, never master, ran the master script"; fi
# Once b runs the master script, its default script is over.
mb=$(first_match b "$(event_re script_line master)" "${mark[b]}")
if tail -n "+$((mb + 1))" "${LOG[b]}" | grep -E "$(event_re script_line default)"; then
    fail "b ran the default script after it became master"
fi

pass "master a ran [master], b and c [default]; after kill -9 of a, b ran [master]"
