#!/usr/bin/env bash
# tools/netns.sh — two network namespaces joined by a veth pair, for multi-host tests.
#
# Owns: creating/deleting the namespaces NAME_a and NAME_b, the veth pair NAME_va
# (in NAME_a, 192.0.2.1/24) <-> NAME_vb (in NAME_b, 192.0.2.2/24), and running
# commands inside them. The addresses are TEST-NET-1 and exist only inside these
# two namespaces: nothing is routed to or from the host's own network.
# Must not touch: any namespace or interface it did not create (everything it makes
# is prefixed with NAME); the host's root-namespace interfaces and routes.
# Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN); `check` says whether it can run.
#
#   tools/netns.sh check                   exit 0 when `ip netns add` is permitted here
#   tools/netns.sh up NAME                 create both namespaces and the link
#   tools/netns.sh down NAME               delete them (idempotent)
#   tools/netns.sh exec NAME a|b CMD...    run CMD in one side
#   tools/netns.sh run NAME 'CMD_B' 'CMD_A'
#       up; CMD_B in the background in NAME_b; CMD_A in the foreground in NAME_a;
#       waits for CMD_A, then at most YARD_NETNS_GRACE_S (default 3) s for CMD_B (a server still running then is
#       terminated and its status ignored); down; exits with CMD_A's status, or CMD_B's
#       when CMD_A passed and CMD_B failed by itself. Cleans up on every exit path.
#
# Inside each side these are exported: YARD_NETNS_SELF (this side's address),
# YARD_NETNS_PEER (the other side's), YARD_NETNS_DEV (this side's veth) and
# UCX_NET_DEVICES=$YARD_NETNS_DEV so UCX's tcp transport uses the veth, not lo.
# NAME: 1-10 characters [a-z0-9] (interface names are limited to 15 characters).
set -euo pipefail

addr_a=192.0.2.1
addr_b=192.0.2.2

die() { echo "netns.sh: $*" >&2; exit 2; }

check_name() {
  [[ "${1:-}" =~ ^[a-z0-9]{1,10}$ ]] || die "NAME must be 1-10 characters [a-z0-9], got '${1:-}'"
}

do_check() {
  command -v ip >/dev/null || { echo "netns.sh: 'ip' (iproute2) not installed" >&2; return 1; }
  local probe="yardprobe$$"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "netns.sh: 'ip netns add' not permitted here" >&2
    return 1
  fi
  local ok=0
  ip link add "${probe:0:10}x" type veth peer name "${probe:0:10}y" 2>/dev/null || ok=1
  ip link del "${probe:0:10}x" 2>/dev/null || true
  ip netns del "$probe"
  [[ $ok == 0 ]] || echo "netns.sh: veth pairs not permitted here" >&2
  return $ok
}

do_down() {
  local n=$1
  ip netns del "${n}_a" 2>/dev/null || true  # deleting a namespace deletes its veth end, and the pair with it
  ip netns del "${n}_b" 2>/dev/null || true
  ip link del "${n}_va" 2>/dev/null || true  # in case `up` failed before moving the ends
}

do_up() {
  local n=$1
  do_down "$n"
  ip netns add "${n}_a"
  ip netns add "${n}_b"
  ip link add "${n}_va" type veth peer name "${n}_vb"
  ip link set "${n}_va" netns "${n}_a"
  ip link set "${n}_vb" netns "${n}_b"
  ip -n "${n}_a" addr add "$addr_a/24" dev "${n}_va"
  ip -n "${n}_b" addr add "$addr_b/24" dev "${n}_vb"
  for s in a b; do
    ip -n "${n}_$s" link set lo up
    ip -n "${n}_$s" link set "${n}_v$s" up
  done
  # veth reports UP once both ends are up (within milliseconds); no ping needed.
  for _ in $(seq 50); do
    if ip -n "${n}_a" -br link show dev "${n}_va" | grep -q ' UP ' &&
       ip -n "${n}_b" -br link show dev "${n}_vb" | grep -q ' UP '; then
      return 0
    fi
    sleep 0.1
  done
  die "veth link ${n}_va <-> ${n}_vb did not come up"
}

do_exec() {
  local n=$1 side=$2
  shift 2
  local self peer
  case "$side" in
    a) self=$addr_a peer=$addr_b ;;
    b) self=$addr_b peer=$addr_a ;;
    *) die "side must be a or b, got '$side'" ;;
  esac
  ip netns exec "${n}_$side" env YARD_NETNS_SELF="$self" YARD_NETNS_PEER="$peer" YARD_NETNS_DEV="${n}_v$side" \
    UCX_NET_DEVICES="${n}_v$side" "$@"
}

cmd=${1:-}
case "$cmd" in
  check) do_check ;;
  up) check_name "${2:-}"; do_up "$2" ;;
  down) check_name "${2:-}"; do_down "$2" ;;
  exec)
    check_name "${2:-}"
    [[ $# -ge 4 ]] || die "usage: netns.sh exec NAME a|b CMD..."
    n=$2 side=$3
    shift 3
    do_exec "$n" "$side" "$@"
    ;;
  run)
    check_name "${2:-}"
    [[ $# -eq 4 ]] || die "usage: netns.sh run NAME 'CMD_B' 'CMD_A'"
    n=$2
    trap 'do_down "$n"' EXIT
    trap 'exit 130' INT TERM
    do_up "$n"
    do_exec "$n" b bash -c "$3" &
    pid_b=$!
    rc_a=0
    do_exec "$n" a bash -c "$4" || rc_a=$?
    rc_b=0
    for _ in $(seq $((${YARD_NETNS_GRACE_S:-3} * 10))); do
      kill -0 "$pid_b" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid_b" 2>/dev/null; then
      kill -TERM "$pid_b" 2>/dev/null || true
      echo "netns.sh: side b still running ${YARD_NETNS_GRACE_S:-3} s after side a finished; terminated" >&2
      wait "$pid_b" 2>/dev/null || true
    else
      wait "$pid_b" || rc_b=$?
    fi
    if [[ $rc_a != 0 ]]; then exit "$rc_a"; fi
    exit "$rc_b"
    ;;
  *) die "usage: netns.sh check | up NAME | down NAME | exec NAME a|b CMD... | run NAME 'CMD_B' 'CMD_A'" ;;
esac
