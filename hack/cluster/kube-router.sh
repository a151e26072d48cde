#!/usr/bin/env bash
# kube-router.sh start|stop: runs kube-router's network-policy controller on this machine
# as the cluster's NetworkPolicy enforcer, for the enforcement test only. kube-router
# v2.1.0 has reported security flaws: it is built for this test and never shipped.
#   start  starts it (firewall only: no routing, no service proxy), logging to
#          $STATE/logs/kube-router.log, and waits until its chains are in iptables;
#   stop   stops it by PID and removes every iptables chain and ipset it made, then
#          fails if one is left. Safe to run when it never ran (down.sh does).
set -uo pipefail
source "$(dirname "$0")/env.sh"
name=kube-router
pidfile=$STATE/pids/$name.pid
# Its chains and sets: KUBE-ROUTER-{INPUT,FORWARD,OUTPUT} jumped to from the built-in
# chains, a chain per policy and per guarded pod, and address sets per policy.
chain_re='^(KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)'
set_re='^(KUBE-SRC-|KUBE-DST-)'

chains() { iptables -S 2>/dev/null | awk '$1 == "-N" {print $2}' | grep -E "$chain_re"; }
sets() { ipset list -n 2>/dev/null | grep -E "$set_re"; }

start() {
  [ -x "$BIN/$name" ] || { echo "$BIN/$name missing: make cluster builds it" >&2; exit 1; }
  command -v ipset >/dev/null || { echo "ipset missing: hack/cluster/deps.sh installs it" >&2; exit 1; }
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name already runs (pid $(cat "$pidfile"))" >&2
    exit 1
  fi
  mkdir -p "$STATE/logs" "$STATE/pids"
  log "starting $name (network policies only)"
  # No health or metrics listener: nothing of it listens on the machine.
  setsid "$BIN/$name" --run-firewall=true --run-router=false --run-service-proxy=false \
    --kubeconfig "$KUBECONFIG_ADMIN" --hostname-override "$NODE" \
    --service-cluster-ip-range "$SERVICE_RANGE" --health-port 0 --metrics-port 0 --v 1 \
    >> "$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 60); do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$name exited; its log:" >&2
      tail -n 40 "$STATE/logs/$name.log" >&2
      exit 1
    fi
    if iptables -S FORWARD | grep -q -- '-j KUBE-ROUTER-FORWARD'; then
      log "$name enforces (pid $(cat "$pidfile"))"
      exit 0
    fi
    sleep 1
  done
  echo "$name did not install its chains in 60 s; its log:" >&2
  tail -n 40 "$STATE/logs/$name.log" >&2
  exit 1
}

stop() {
  stop_pid "$name" 30
  # kube-router --cleanup-config of v2.1.0 leaves the policy chains (it cleans with an
  # empty controller) and flushes every IPVS service on the machine: remove exactly its
  # own chains and sets instead. Jumps first, then rules, then the chains, then the sets
  # the rules referred to.
  for c in INPUT FORWARD OUTPUT; do
    iptables -S "$c" 2>/dev/null | grep -E -- "-j KUBE-ROUTER-$c( |\$)" | sed 's/^-A /-D /' |
      while read -r rule; do eval "iptables $rule"; done
  done
  for c in $(chains); do iptables -F "$c"; done
  for c in $(chains); do iptables -X "$c"; done
  for s in $(sets); do ipset destroy "$s"; done
  local left
  left="$(chains) $(sets)"
  if [ -n "${left// /}" ] || iptables-save | grep -q KUBE-ROUTER; then
    echo "$name left: $left $(iptables-save | grep KUBE-ROUTER)" >&2
    exit 1
  fi
  log "$name stopped; none of its chains or sets left"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
