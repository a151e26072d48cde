#!/usr/bin/env bash
# Builds the cluster tier's binaries from Go modules into $1 (no prebuilt download is
# reachable): kubelet, kube-controller-manager, kube-scheduler, kube-proxy and kubectl as
# hack/envtest/build.sh builds kube-apiserver (same flags, so the Go build cache is shared),
# a small CoreDNS, kube-router, the NetworkPolicy enforcer of the enforcement test
# (test use only: v2.1.0 has reported security flaws; never shipped), and the helm CLI
# (a tool of the chart tests' module, test/helm). Skips a binary that is already there.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/gobuild.sh"
mkdir -p "$out"
out=$(cd "$out" && pwd)

kube_version=v1.37.2
pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
kube_cmds=(kube-scheduler kube-proxy kubectl kube-controller-manager kubelet)
total=$(( ${#kube_cmds[@]} + 3 ))
step=0

build() { # name moduledir ldflags package
  local name=$1 dir=$2 ldflags=$3 target=$4
  step=$((step + 1))
  if [ -x "$out/$name" ]; then
    echo "[$step/$total] $name: cached in $out"
    return
  fi
  gobuild "[$step/$total] $name" "$dir" "$out/$name" "$target" "$ldflags"
}

for c in "${kube_cmds[@]}"; do
  build "$c" "$here/kube" "$kube_ldflags" "k8s.io/kubernetes/cmd/$c"
done
build coredns "$here/coredns" "-s -w" .
build kube-router "$here/kube-router" "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v2.1.0" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
helm_version=$(cd "$here/../../test/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
build helm "$here/../../test/helm" "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" helm.sh/helm/v4/cmd/helm
