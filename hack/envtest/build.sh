#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) from Go modules into $1,
# because no prebuilt download is reachable. Skips a binary that is already there.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

kube_version=v1.37.2
if [ ! -x "$out/kube-apiserver" ]; then
  echo "building kube-apiserver $kube_version (several minutes, once)"
  pkg=k8s.io/component-base/version
  ( cd "$here/kube-apiserver" && CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean" \
      -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver )
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
fi
if [ ! -x "$out/etcd" ]; then
  echo "building etcd (once)"
  ( cd "$here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
      -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3 )
  mv "$out/etcd.tmp" "$out/etcd"
fi
