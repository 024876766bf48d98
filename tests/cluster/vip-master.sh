#!/bin/sh
# vip-master ADDRESS/PREFIX DEVICE: a master script (boss -ms) that holds a
# virtual IP address while its node is master and gives it back when it is
# stopped: SIGTERM when the node loses the role, leaves, or dies (even of
# kill -9), or SIGINT. `vip-master down ADDRESS/PREFIX DEVICE` only removes
# it (for systemd's ExecStopPost=). The announcement needs arping (Debian:
# iputils-arping); without it the address is held all the same.
# (The recipe of man boss, EXAMPLES; tests/cluster/vip.sh runs this copy.)
if [ "$1" = down ]; then
    ip address del "$2" dev "$3" 2>/dev/null
    exit 0
fi
VIP=$1 DEV=$2
if [ -z "$VIP" ] || [ -z "$DEV" ]; then
    echo "usage: vip-master ADDRESS/PREFIX DEVICE" >&2
    exit 2
fi
pids=
release() {
    trap - TERM INT EXIT
    # The death signal reaches this shell alone: end its jobs here.
    [ -z "$pids" ] || kill $pids 2>/dev/null
    ip address del "$VIP" dev "$DEV" 2>/dev/null && echo "released $VIP"
}
trap 'release; exit 0' TERM INT
trap release EXIT
ip address replace "$VIP" dev "$DEV" || exit 1
if command -v arping >/dev/null 2>&1; then
    # Gratuitous ARP: neighbours that cached another box for the address
    # learn this one. In the background, so that a stop is not held up.
    arping -q -U -c 3 -I "$DEV" "${VIP%/*}" &
    pids=$!
else
    echo "arping not found (iputils-arping): $VIP not announced"
fi
echo "holding $VIP on $DEV"
# The shell runs a trap only between commands: wait on a background sleep.
sleep infinity &
pids="$pids $!"
wait $!
