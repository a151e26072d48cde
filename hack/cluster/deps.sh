#!/usr/bin/env bash
# Installs the cluster tier's system packages with apt-get when a command is missing:
# containerd, runc, the CNI plugins, iptables, conntrack, and ipset (kube-router, the
# enforcement test's NetworkPolicy enforcer, keeps its address sets there).
set -euo pipefail
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v ipset >/dev/null || missing+=(ipset)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: present"
  exit 0
fi
echo "installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
