#!/usr/bin/env bash
# Brings up a one-node Kubernetes cluster on this machine (root): containerd, etcd, the
# control plane, kubelet, kube-proxy and CoreDNS. Idempotent: what runs is left running.
# Packets stay on the machine: see confine() and hack/cluster/README.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
start_time=$SECONDS

[ "$(id -u)" = 0 ] || { echo "make cluster needs root" >&2; exit 1; }
if [ -f "$LOCK" ] && [ "$(cat "$LOCK")" != "$STATE" ]; then
  echo "another cluster of this tier runs here (state $(cat "$LOCK")); one per machine" >&2
  exit 1
fi
mkdir -p "$STATE"/{logs,pids}
echo "$STATE" > "$LOCK"

# put FILE: writes stdin to FILE only when it differs (kube-proxy exits when its config
# file is rewritten).
put() {
  local tmp; tmp=$(mktemp); cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mkdir -p "$(dirname "$1")"; mv "$tmp" "$1"; fi
}

running() { [ -f "$STATE/pids/$1.pid" ] && kill -0 "$(cat "$STATE/pids/$1.pid")" 2>/dev/null; }

# launch NAME CMD...: starts CMD in the background, logging, unless it already runs.
# It inherits no descriptor but its standard ones: a lock its caller holds
# (`flock FILE make cluster`) would otherwise stay held for as long as it runs.
launch() {
  local name=$1; shift
  if running "$name"; then return; fi
  log "starting $name"
  ( close_fds; exec setsid "$@" >> "$STATE/logs/$name.log" 2>&1 < /dev/null ) &
  echo $! > "$STATE/pids/$name.pid"
}

close_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# wait_for WHAT SECONDS CMD...: bounded wait; on timeout names what and shows logs.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: timed out after ${limit}s waiting for $what; log tails:" >&2
      "$root/hack/cluster/logs.sh" >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "$what ready after $((SECONDS - start_time)) s"
}

save_sysctls() {
  [ -f "$STATE/sysctl.saved" ] && return
  for s in "${SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && echo "$s=$v"
  done > "$STATE/sysctl.saved.tmp"
  mv "$STATE/sysctl.saved.tmp" "$STATE/sysctl.saved"
  for d in /var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /usr/libexec/kubernetes; do
    [ -e "$d" ] || echo "$d"
  done > "$STATE/created-paths"
}

# confine keeps every packet of the cluster on this machine; it runs before any pod.
confine() {
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  ip addr show dev lo | grep -q " $NODE_IP/32" || ip addr add "$NODE_IP/32" dev lo
  # A pod's packet still addressed to a Service IP when routed was not translated by
  # kube-proxy (not yet synced, no endpoints): answered "prohibited" here.
  ip rule show | grep -q "from all to $SERVICE_RANGE iif $BRIDGE prohibit" ||
    ip rule add pref 90 iif "$BRIDGE" to "$SERVICE_RANGE" prohibit
  # The host's own packets to a Service IP (agents on the host network call the ingest
  # Service) are routed before kube-proxy's NAT: by the pod bridge, not the default route,
  # so one that is not translated (a Service between endpoints) stays on this machine.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" up
  ip route show "$SERVICE_RANGE" | grep -q "dev $BRIDGE" || ip route add "$SERVICE_RANGE" dev "$BRIDGE"
  # Pod, node and outside addresses nobody has are never sent by the default route:
  # the bridge's /24, the node's local address and the tests' /30s are more specific.
  for r in "$POD_RANGE" "$NODE_RANGE" "$OUTSIDE_RANGE"; do
    ip route show type prohibit | grep -q "^prohibit $r" || ip route add prohibit "$r"
  done
  # The guard: anything from the pod bridge or range leaving by another interface than
  # the bridge, loopback or a test's outside namespace is logged and dropped; host
  # packets still addressed to a Service IP after kube-proxy's NAT likewise.
  iptables -t mangle -N "$GUARD" 2>/dev/null || true
  iptables -t mangle -F "$GUARD"
  iptables -t mangle -A "$GUARD" -o "$BRIDGE" -j RETURN
  iptables -t mangle -A "$GUARD" -o lo -j RETURN
  iptables -t mangle -A "$GUARD" -o "$OUTSIDE_IF_PREFIX+" -j RETURN
  iptables -t mangle -A "$GUARD" -m limit --limit 10/min -j LOG --log-prefix "$GUARD drop: "
  iptables -t mangle -A "$GUARD" -j DROP
  for m in "-i $BRIDGE" "-s $POD_RANGE"; do
    # shellcheck disable=SC2086
    iptables -t mangle -C FORWARD $m -j "$GUARD" 2>/dev/null || iptables -t mangle -I FORWARD 1 $m -j "$GUARD"
  done
  iptables -N "$GUARD-OUT" 2>/dev/null || true
  iptables -F "$GUARD-OUT"
  iptables -A "$GUARD-OUT" -d "$SERVICE_RANGE" -o "$BRIDGE" -j RETURN
  iptables -A "$GUARD-OUT" -d "$SERVICE_RANGE" -m limit --limit 10/min -j LOG --log-prefix "$GUARD-OUT drop: "
  iptables -A "$GUARD-OUT" -d "$SERVICE_RANGE" -j DROP
  # Appended: kube-proxy prepends its own jump, so a Service without endpoints is rejected
  # by kube-proxy first and only a packet kube-proxy does not know reaches the guard.
  iptables -C OUTPUT -j "$GUARD-OUT" 2>/dev/null || iptables -A OUTPUT -j "$GUARD-OUT"
  put "$STATE/resolv.conf" <<<"nameserver 127.0.0.1"
}

write_configs() {
  local c=$STATE/containerd
  put "$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$c/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/im-pause:1"
  restrict_oom_score_adj = true
  # Pods run as non-root users and may serve on ports under 1024 (the tutorial's nginx:80).
  enable_unprivileged_ports = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML
  put "$STATE/cni/net.d/10-intent-mapper.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "intent-mapper-cluster",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": false,
      "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "$POD_RANGE"}, {"dst": "$SERVICE_RANGE"}, {"dst": "$NODE_RANGE"}, {"dst": "$OUTSIDE_RANGE"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  local k=$KUBECONFIG_ADMIN
  put "$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /intent-mapper-cluster
oomScoreAdj: 0
address: $NODE_IP
healthzBindAddress: $NODE_IP
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
volumePluginDir: $STATE/volume-plugins
containerRuntimeEndpoint: unix://$STATE/containerd/containerd.sock
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
protectKernelDefaults: false
serializeImagePulls: false
YAML
  put "$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $k}
mode: iptables
clusterCIDR: $POD_RANGE
hostnameOverride: $NODE
bindAddress: $NODE_IP
healthzBindAddress: $NODE_IP:10256
metricsBindAddress: $NODE_IP:10249
nodePortAddresses: [$NODE_IP/32]
oomScoreAdj: 0
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

# cgroup_root gives the kubelet a cgroup v1 root of its own in every hierarchy.
cgroup_root() {
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] && [ ! -L "${h%/}" ] || continue
    mkdir -p "$h/intent-mapper-cluster" 2>/dev/null || continue
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" > "$h/intent-mapper-cluster/cpuset.cpus"
      cat "$h/cpuset.mems" > "$h/intent-mapper-cluster/cpuset.mems"
    fi
  done
}

api() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# netns_dir makes /run/netns a shared mount point before containerd puts pods' network
# namespaces there, as `ip netns add` would: when the tests' first `ip netns add` does it
# later, its bind mount hides every earlier pod's namespace mount, and those pods never
# finish terminating ("remove netns: device or resource busy").
netns_dir() {
  mkdir -p /run/netns
  if ! mountpoint -q /run/netns; then
    mount --bind /run/netns /run/netns
    touch "$STATE/netns-mounted"
  fi
  mount --make-shared /run/netns
}

start_components() {
  local p=$STATE/pki k=$KUBECONFIG_ADMIN
  netns_dir
  launch containerd containerd --config "$STATE/containerd/config.toml"
  wait_for containerd 60 "${CTR[@]}" version
  "$root/hack/cluster/image.sh" im-pause:1 "$BIN/pause"
  "$root/hack/cluster/image.sh" im-coredns:v1.15.0 "$BIN/coredns"
  launch etcd "$K8S/etcd" --name "$NODE" --data-dir "$STATE/etcd" \
    --listen-client-urls "http://$NODE_IP:2379" --advertise-client-urls "http://$NODE_IP:2379" \
    --listen-peer-urls "http://$NODE_IP:2380" --initial-advertise-peer-urls "http://$NODE_IP:2380" \
    --initial-cluster "$NODE=http://$NODE_IP:2380" --listen-metrics-urls "http://$NODE_IP:2381"
  launch kube-apiserver "$K8S/kube-apiserver" --etcd-servers "http://$NODE_IP:2379" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
    --cert-dir "$STATE/apiserver" \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --client-ca-file "$p/ca.crt" --service-cluster-ip-range "$SERVICE_RANGE" \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --allow-privileged \
    --kubelet-client-certificate "$p/admin.crt" --kubelet-client-key "$p/admin.key" \
    --kubelet-preferred-address-types InternalIP
  wait_for kube-apiserver 120 api get --raw /readyz
  launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$k" \
    --authentication-kubeconfig "$k" --authorization-kubeconfig "$k" --bind-address "$NODE_IP" \
    --service-cluster-ip-range "$SERVICE_RANGE" --cluster-cidr "$POD_RANGE" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --use-service-account-credentials --leader-elect=false \
    --flex-volume-plugin-dir "$STATE/volume-plugins"
  launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$k" \
    --authentication-kubeconfig "$k" --authorization-kubeconfig "$k" --bind-address "$NODE_IP" \
    --leader-elect=false
  launch kubelet "$BIN/kubelet" --config "$STATE/kubelet/config.yaml" --kubeconfig "$k" \
    --hostname-override "$NODE" --node-ip "$NODE_IP" --root-dir "$STATE/kubelet/root" \
    --cert-dir "$STATE/kubelet/pki"
  launch kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"
  wait_for "node $NODE" 120 api wait --for=condition=Ready "node/$NODE" --timeout=1s
}

start_dns() {
  api apply --server-side --force-conflicts -f - >/dev/null < <(sed "s/DNS_IP/$DNS_IP/" "$root/hack/cluster/coredns.yaml")
  wait_for CoreDNS 120 api -n kube-system wait --for=condition=Available deployment/coredns --timeout=1s
}

log "state in $STATE"
"$root/hack/cluster/deps.sh"
[ -x "$K8S/kube-apiserver" ] && [ -x "$K8S/etcd" ] || { echo "cluster: $K8S lacks kube-apiserver or etcd: run make envtest-assets" >&2; exit 1; }
"$root/hack/cluster/build.sh" "$BIN"
[ -x "$BIN/pause" ] || ( cd "$root/hack/cluster/image" && CGO_ENABLED=0 go build -trimpath -o "$BIN/pause" ./pause )
save_sysctls
confine
"$root/hack/cluster/pki.sh"
write_configs
cgroup_root
start_components
start_dns
log "cluster up in $((SECONDS - start_time)) s"
echo "KUBECONFIG=$KUBECONFIG_ADMIN"
