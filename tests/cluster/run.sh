#!/usr/bin/env bash
# run.sh: run every cluster test script (tests/cluster/*.sh but lib.sh,
# vip-master.sh, a master script vip.sh runs, and this one), one after the
# other, and print a summary; the last line is
# exactly `N passed, M failed`. Exit status 0 when none failed (skipped tests,
# exit 77, are neither). Builds target/release/boss first if it is missing.
# Usage: tests/cluster/run.sh [TEST.sh...]     (default: all of them)
# Env: BOSS (the binary, default target/release/boss from the repo root),
#      TEST_TIMEOUT (seconds a test may take, default 120), CI, KEEP_TMP.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."

BOSS=${BOSS:-target/release/boss}
if [[ ! -x $BOSS ]]; then
    echo "building $BOSS (cargo build --release)"
    cargo build --release
fi
export BOSS

tests=()
if (($#)); then
    for t in "$@"; do tests+=("$HERE/$(basename "$t")"); done
else
    for t in "$HERE"/*.sh; do
        case $(basename "$t") in lib.sh | run.sh | vip-master.sh) continue ;; esac
        tests+=("$t")
    done
fi

passed=0 failed=0 skipped=0 failures=()
start=$SECONDS
for t in "${tests[@]}"; do
    name=$(basename "$t")
    t0=$SECONDS
    echo "==> $name"
    rc=0
    timeout --kill-after=10 "${TEST_TIMEOUT:-120}" bash "$t" || rc=$?
    case $rc in
    0) passed=$((passed + 1)); result=passed ;;
    77) skipped=$((skipped + 1)); result=skipped ;;
    124) failed=$((failed + 1)); failures+=("$name"); result="FAILED (timed out)" ;;
    *) failed=$((failed + 1)); failures+=("$name"); result="FAILED (status $rc)" ;;
    esac
    echo "<== $name: $result in $((SECONDS - t0))s"
done

echo
((skipped == 0)) || echo "$skipped skipped"
((failed == 0)) || echo "failed: ${failures[*]}"
echo "total time $((SECONDS - start))s"
echo "$passed passed, $failed failed"
((failed == 0))
