#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) from Go modules into $1,
# because no prebuilt download is reachable. Skips a binary that is already there.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/gobuild.sh"
mkdir -p "$out"
out=$(cd "$out" && pwd)

kube_version=v1.37.2
if [ ! -x "$out/kube-apiserver" ]; then
  pkg=k8s.io/component-base/version
  gobuild "[1/2] kube-apiserver $kube_version" "$here/kube-apiserver" "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
    "-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
fi
if [ ! -x "$out/etcd" ]; then
  gobuild "[2/2] etcd" "$here/etcd" "$out/etcd" go.etcd.io/etcd/server/v3 "-s -w"
fi
