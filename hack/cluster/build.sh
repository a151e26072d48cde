#!/usr/bin/env bash
# Builds the cluster tier's binaries from Go modules into $1 (no prebuilt download is
# reachable): kubelet, kube-controller-manager, kube-scheduler, kube-proxy and kubectl as
# hack/envtest/build.sh builds kube-apiserver (same flags, so the Go build cache is shared),
# a small CoreDNS, and the helm CLI (a tool of the chart tests' module, test/helm). Skips a
# binary that is already there.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

kube_version=v1.37.2
pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
kube_cmds=(kube-scheduler kube-proxy kubectl kube-controller-manager kubelet)
total=$(( ${#kube_cmds[@]} + 2 ))
step=0

build() { # name moduledir ldflags package
  local name=$1 dir=$2 ldflags=$3 target=$4 start
  step=$((step + 1))
  if [ -x "$out/$name" ]; then
    echo "[$step/$total] $name: cached in $out"
    return
  fi
  echo "[$step/$total] building $name (minutes on 2 cores, once)"
  start=$SECONDS
  # go build is silent for minutes: say every 30 s that it still runs.
  ( while sleep 30; do echo "[$step/$total] $name: still building, $((SECONDS - start)) s"; done ) &
  local ticker=$!
  # The trap's status would be the script's: a ticker already gone must not fail the build.
  trap "kill $ticker 2>/dev/null || true" EXIT
  ( cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$target" )
  kill "$ticker" 2>/dev/null || true
  mv "$out/$name.tmp" "$out/$name"
  echo "[$step/$total] built $name in $((SECONDS - start)) s"
}

for c in "${kube_cmds[@]}"; do
  build "$c" "$here/kube" "$kube_ldflags" "k8s.io/kubernetes/cmd/$c"
done
build coredns "$here/coredns" "-s -w" .
helm_version=$(cd "$here/../../test/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
build helm "$here/../../test/helm" "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" helm.sh/helm/v4/cmd/helm
