#!/usr/bin/env bash
# Stops the cluster make cluster started (by PID), removes its rules, routes and state,
# and restores every host setting it changed.
set -uo pipefail
source "$(dirname "$0")/env.sh"
[ "$(id -u)" = 0 ] || { echo "make cluster-down needs root" >&2; exit 1; }
if [ -f "$LOCK" ] && [ "$(cat "$LOCK")" != "$STATE" ]; then
  echo "the cluster here belongs to $(cat "$LOCK"), not $STATE: not touching it" >&2
  exit 1
fi

# The enforcement test's kube-router, if a test left it: its chains and sets too.
"$(dirname "$0")/kube-router.sh" stop || true
# Pods first, while the kubelet and containerd still run, so their sandboxes and veths go.
if [ -f "$STATE/pids/kubelet.pid" ] && [ -x "$BIN/kubectl" ]; then
  "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" delete pods --all --all-namespaces \
    --grace-period=1 --timeout=60s >/dev/null 2>&1 || true
fi
for c in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c"; done
# Sandboxes the kubelet left: stop them through containerd before it goes.
if [ -S "$STATE/containerd/containerd.sock" ]; then
  for t in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s KILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks delete -f "$t" >/dev/null 2>&1; done
fi
stop_pid containerd
# Processes left in the kubelet's cgroups (containers whose shim outlived containerd).
for f in /sys/fs/cgroup/*/intent-mapper-cluster; do
  [ -d "$f" ] || continue
  find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r p; do kill -KILL "$p" 2>/dev/null; done
  break
done
# Shims that outlived containerd.
for p in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $STATE/" 2>/dev/null); do
  kill -KILL "$p" 2>/dev/null
done

# Pod network namespaces containerd could not remove (it names them cni-*; it is the only
# containerd here, one cluster per machine).
for n in /var/run/netns/cni-*; do
  [ -e "$n" ] || continue
  umount -l "$n" 2>/dev/null; rm -f "$n"
done
[ -f "$STATE/netns-mounted" ] && umount /run/netns 2>/dev/null
[ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
# The kubelet's own chains, which kube-proxy's cleanup leaves.
for ipt in iptables ip6tables; do
  "$ipt" -D INPUT -j KUBE-FIREWALL 2>/dev/null; "$ipt" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
  for t in filter nat mangle; do
    for c in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      "$ipt" -t "$t" -F "$c" 2>/dev/null; "$ipt" -t "$t" -X "$c" 2>/dev/null
    done
  done
done
iptables -t mangle -D FORWARD -i "$BRIDGE" -j "$GUARD" 2>/dev/null
iptables -t mangle -D FORWARD -s "$POD_RANGE" -j "$GUARD" 2>/dev/null
iptables -t mangle -F "$GUARD" 2>/dev/null; iptables -t mangle -X "$GUARD" 2>/dev/null
iptables -D OUTPUT -j "$GUARD-OUT" 2>/dev/null
iptables -F "$GUARD-OUT" 2>/dev/null; iptables -X "$GUARD-OUT" 2>/dev/null
while ip rule del pref 90 iif "$BRIDGE" to "$SERVICE_RANGE" prohibit 2>/dev/null; do :; done
for r in "$POD_RANGE" "$NODE_RANGE" "$OUTSIDE_RANGE"; do ip route del prohibit "$r" 2>/dev/null; done
ip route del "$SERVICE_RANGE" dev "$BRIDGE" 2>/dev/null
ip link del "$BRIDGE" 2>/dev/null
ip addr del "$NODE_IP/32" dev lo 2>/dev/null

# Mounts the kubelet and containerd left under the state directory.
grep " $STATE/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
for h in /sys/fs/cgroup/*/intent-mapper-cluster; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
done

if [ -f "$STATE/sysctl.saved" ]; then
  while IFS= read -r kv; do sysctl -qw "$kv"; done < "$STATE/sysctl.saved"
  log "host settings restored: $(tr '\n' ' ' < "$STATE/sysctl.saved")"
fi
if [ -f "$STATE/created-paths" ]; then
  while IFS= read -r d; do rm -rf "$d"; done < "$STATE/created-paths"
fi
rm -rf "$STATE"
rm -f "$LOCK"
log "cluster down"
