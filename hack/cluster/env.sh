# Shared settings of the cluster tier's scripts (sourced, not run).
# The ranges are private, used by nothing else on the machine, and each gets a prohibit
# rule or route so a packet addressed to one never follows the default route out.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${CLUSTER_BIN:-$root/bin/cluster}
K8S=${CLUSTER_K8S:-$root/bin/k8s}
STATE=${CLUSTER_STATE:-$BIN/state}
NODE=im-node
NODE_IP=10.200.0.1
NODE_RANGE=10.200.0.0/24
POD_RANGE=10.201.0.0/16
POD_SUBNET=10.201.0.0/24
POD_GATEWAY=10.201.0.1
SERVICE_RANGE=10.202.0.0/16
API_SERVICE_IP=10.202.0.1
DNS_IP=10.202.0.10
# Hosts the tests place in network namespaces of their own, as "outside" servers.
OUTSIDE_RANGE=10.203.0.0/24
BRIDGE=imbr0
# Interfaces the tests create toward outside namespaces start with this.
OUTSIDE_IF_PREFIX=imout
GUARD=IM-GUARD
LOCK=/run/intent-mapper-cluster.lock
KUBECONFIG_ADMIN=$STATE/pki/admin.kubeconfig
CTR=(ctr --address "$STATE/containerd/containerd.sock" -n k8s.io)
# Host settings the tier or its components change; saved before and restored after.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

log() { printf '%s cluster: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# stop_pid NAME [SECONDS]: stops the process $STATE/pids/NAME.pid names by TERM, a
# bounded wait (the API server can take a minute), then KILL; removes the PID file.
stop_pid() {
  local f=$STATE/pids/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 "${2:-90}"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { log "$1 ignored TERM; killing"; kill -KILL "$pid"; }
  fi
  rm -f "$f"
}
