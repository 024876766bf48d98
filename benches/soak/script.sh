#!/usr/bin/env bash
# The soak's script, for both roles: soak-script.sh ROLE LOG. Appends to LOG
# one line per event, `TIME ROLE EVENT EPOCH PID`, TIME from the shared wall
# clock ($EPOCHREALTIME, no fork): `start` once, `beat` every ~50 ms, `stop`
# from the SIGTERM trap (the node's stop signal and its death signal).
role=$1
log=$2
epoch=${BOSS_EPOCH:-0}
# A pipe nobody writes to: `read -t` on it is a sleep without a fork, and a
# trapped signal ends it at once.
exec {hold}<> <(:)
exec >>"$log" 2>&1
trap 'echo "$EPOCHREALTIME $role stop $epoch $$"; exit 0' TERM
echo "$EPOCHREALTIME $role start $epoch $$"
while :; do
    echo "$EPOCHREALTIME $role beat $epoch $$"
    read -r -t 0.05 -u "$hold" _
done
