#!/usr/bin/env bash
# image.sh REF BINARY [USER] [CMD]: packs BINARY as image REF (tarball cached under
# bin/cluster/images) and imports it into the cluster's containerd. Never pulls.
set -euo pipefail
source "$(dirname "$0")/env.sh"
ref=${1:?usage: image.sh REF BINARY [USER] [CMD]} binary=${2:?binary} user=${3:-} cmd=${4:-}
tool=$BIN/image-tool
if [ ! -x "$tool" ]; then
  ( cd "$root/hack/cluster/image" && CGO_ENABLED=0 go build -trimpath -o "$tool" . )
fi
mkdir -p "$BIN/images"
tarfile=$BIN/images/${ref//[:\/]/_}.tar
if [ ! -f "$tarfile" ] || [ "$binary" -nt "$tarfile" ]; then
  "$tool" --binary "$binary" --name "$ref" --out "$tarfile.tmp" --user "$user" --cmd "$cmd"
  mv "$tarfile.tmp" "$tarfile"
fi
"${CTR[@]}" images import "$tarfile" >/dev/null
log "image $ref imported"
