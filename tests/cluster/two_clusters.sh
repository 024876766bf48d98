#!/usr/bin/env bash
# two_clusters.sh: two clusters on one host, red and blue, each with its own
# --cluster name and its own --secret-file, and nodes told about the other
# cluster's ports too (--join across, and -c at a console). Each cluster
# forms on its own and elects its own master (its oldest node: red1, blue1);
# every connection across is refused on both sides with
# `refused ADDR: cluster 'THEIRS', this node's is 'OURS'`, so the two never
# merge, and each node holds exactly one connection (its cluster's other node).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

red=$(new_secret)
blue=$(new_secret)
[[ $(stat -c %a "$red") == 600 ]] || fail "the secret file is not mode 600"

start_node red1 127.0.0.1 0 --cluster red --secret-file "$red"
# blue1 is told of red1: refused, and it must still become blue's master.
start_node blue1 127.0.0.1 0 --cluster blue --secret-file "$blue" --join "${ADDR[red1]}"
start_node red2 127.0.0.1 0 --cluster red --secret-file "$red" \
    --join "${ADDR[red1]}" --join "${ADDR[blue1]}"
start_node blue2 127.0.0.1 0 --cluster blue --secret-file "$blue" \
    --join "${ADDR[blue1]}" --join "${ADDR[red2]}"
# And one dial across at a console.
cmd red1 "-c ${ADDR[blue2]}"

# Every dial across is refused on both ends, with both names.
for pair in "blue1 red1" "red2 blue1" "blue2 red2" "red1 blue2"; do
    read -r from to <<<"$pair"
    from_cluster=${from%[0-9]} to_cluster=${to%[0-9]}
    wait_event "$from" 10 0 refused "${ADDR[$to]}" cluster "$to_cluster" "$from_cluster" >/dev/null ||
        fail "$from did not refuse $to (its dial across)"
    wait_event "$to" 10 0 refused "${ADDR[$from]}" cluster "$from_cluster" "$to_cluster" >/dev/null ||
        fail "$to did not refuse $from (a dial from the other cluster)"
done
say "every dial across the clusters was refused on both ends"

agree "${ADDR[red1]}" 10 red1 red2 >/dev/null || fail "red does not agree on red1"
agree "${ADDR[blue1]}" 10 blue1 blue2 >/dev/null || fail "blue does not agree on blue1"
wait_connections 1 10 red1 red2 blue1 blue2 || fail "a node holds a connection across"
yes=$(one_yes red1 red2) || fail "not exactly one master in red"
[[ $yes == red1 ]] || fail "$yes says master: yes in red, expected red1"
yes=$(one_yes blue1 blue2) || fail "not exactly one master in blue"
[[ $yes == blue1 ]] || fail "$yes says master: yes in blue, expected blue1"

# No node ever connected to one of the other cluster.
for name in red1 red2 blue1 blue2; do
    for other in red1 red2 blue1 blue2; do
        [[ ${name%[0-9]} == "${other%[0-9]}" ]] && continue
        if [[ -n $(first_match "$name" "$(event_re peer_up "${ADDR[$other]}")") ]]; then
            fail "$name connected to $other of the other cluster"
        fi
    done
done

pass "red and blue on one host: each elects its own master, every link across refused"
