#!/usr/bin/env bash
# tools/netns_cluster.sh — N "hosts" on one virtual switch, each its own network namespace.
#
# Owns: the namespaces NAME_sw (holding a bridge, the switch) and NAME_1 .. NAME_N
# (the hosts), one veth pair per host (NAME_hI in the host, NAME_pI on the bridge),
# host I at 192.0.2.(10+I)/24, and running commands inside a host. TEST-NET-1
# addresses exist only inside these namespaces: nothing is routed to or from the
# machine's own network.
# Must not touch: any namespace or interface it did not create (all prefixed NAME);
# the root namespace's interfaces and routes.
# Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN); `tools/netns.sh check` says whether it can run.
#
#   tools/netns_cluster.sh up NAME N          create the switch and N hosts (1 <= N <= 9)
#   tools/netns_cluster.sh down NAME          delete them (idempotent)
#   tools/netns_cluster.sh exec NAME I CMD... run CMD on host I
#
# Inside host I: YARD_NETNS_SELF=192.0.2.(10+I), YARD_NETNS_DEV=NAME_hI and
# UCX_NET_DEVICES=NAME_hI (UCX's tcp transport uses the host's link, not lo).
# NAME: 1-8 characters [a-z0-9] (interface names are limited to 15 characters).
set -euo pipefail

die() { echo "netns_cluster.sh: $*" >&2; exit 2; }
check_name() { [[ "${1:-}" =~ ^[a-z0-9]{1,8}$ ]] || die "NAME must be 1-8 characters [a-z0-9], got '${1:-}'"; }

do_down() {
  local n=$1
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${n}_([0-9]|sw)$" || true); do
    ip netns del "$ns" 2>/dev/null || true  # a namespace's veth ends go with it
  done
}

do_up() {
  local n=$1 count=$2
  [[ "$count" =~ ^[1-9]$ ]] || die "N must be 1-9, got '$count'"
  do_down "$n"
  ip netns add "${n}_sw"
  ip -n "${n}_sw" link add br0 type bridge
  ip -n "${n}_sw" link set br0 up
  ip -n "${n}_sw" link set lo up
  for i in $(seq "$count"); do
    ip netns add "${n}_$i"
    ip link add "${n}_h$i" type veth peer name "${n}_p$i"
    ip link set "${n}_h$i" netns "${n}_$i"
    ip link set "${n}_p$i" netns "${n}_sw"
    ip -n "${n}_sw" link set "${n}_p$i" master br0
    ip -n "${n}_sw" link set "${n}_p$i" up
    ip -n "${n}_$i" addr add "192.0.2.$((10 + i))/24" dev "${n}_h$i"
    ip -n "${n}_$i" link set lo up
    ip -n "${n}_$i" link set "${n}_h$i" up
  done
  for i in $(seq "$count"); do
    for _ in $(seq 50); do
      ip -n "${n}_$i" -br link show dev "${n}_h$i" | grep -q ' UP ' && break
      sleep 0.1
    done
  done
}

do_exec() {
  local n=$1 i=$2
  shift 2
  ip netns exec "${n}_$i" env YARD_NETNS_SELF="192.0.2.$((10 + i))" YARD_NETNS_DEV="${n}_h$i" \
    UCX_NET_DEVICES="${n}_h$i" "$@"
}

case "${1:-}" in
  up) check_name "${2:-}"; do_up "$2" "${3:-}" ;;
  down) check_name "${2:-}"; do_down "$2" ;;
  exec)
    check_name "${2:-}"
    [[ $# -ge 4 ]] || die "usage: netns_cluster.sh exec NAME I CMD..."
    n=$2 i=$3
    shift 3
    do_exec "$n" "$i" "$@"
    ;;
  *) die "usage: netns_cluster.sh up NAME N | down NAME | exec NAME I CMD..." ;;
esac
