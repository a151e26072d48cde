#!/usr/bin/env bash
# image.sh REF BINARY [USER] [CMD] [ALSO]: packs BINARY (the entrypoint) and the
# comma-separated binaries ALSO (at /NAME) as image REF (tarball cached under
# bin/cluster/images) and imports it into the cluster's containerd. Never pulls.
set -euo pipefail
source "$(dirname "$0")/env.sh"
ref=${1:?usage: image.sh REF BINARY [USER] [CMD] [ALSO]} binary=${2:?binary} user=${3:-} cmd=${4:-} also=${5:-}
tool=$BIN/image-tool
if [ ! -x "$tool" ] || [ "$root/hack/cluster/image/main.go" -nt "$tool" ]; then
  ( cd "$root/hack/cluster/image" && CGO_ENABLED=0 go build -trimpath -o "$tool" . )
fi
mkdir -p "$BIN/images"
tarfile=$BIN/images/${ref//[:\/]/_}.tar
stale=
for f in "$binary" ${also//,/ }; do [ "$f" -nt "$tarfile" ] && stale=1; done
if [ ! -f "$tarfile" ] || [ -n "$stale" ]; then
  "$tool" --binary "$binary" --name "$ref" --out "$tarfile.tmp" --user "$user" --cmd "$cmd" --also "$also"
  mv "$tarfile.tmp" "$tarfile"
fi
"${CTR[@]}" images import "$tarfile" >/dev/null
log "image $ref imported"
