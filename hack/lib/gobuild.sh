# gobuild LABEL MODULEDIR OUT TARGET [LDFLAGS]: go build TARGET of the module in
# MODULEDIR into OUT, saying every 30 s how many of its packages are compiled, since
# a cold build is minutes of silence otherwise. Sourced, not run.
gobuild() {
  local label=$1 dir=$2 out=$3 target=$4 ldflags=${5:-} start=$SECONDS total
  total=$(cd "$dir" && go list -deps "$target" | wc -l)
  echo "$label: building, up to $total packages to compile (minutes on 2 cores when the Go cache is cold)"
  ( cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" "$target" 2>&1 ) |
    _gobuild_progress "$label" "$total" "$start"
  mv "$out.tmp" "$out"
  echo "$label: built in $((SECONDS - start)) s"
}

# _gobuild_progress counts the package paths go build -v prints, passes on anything
# else (downloads, errors), and says how far it is every 30 s, lines or not.
_gobuild_progress() {
  local label=$1 total=$2 start=$3 n=0 last=$SECONDS line rc
  while :; do
    if IFS= read -r -t 30 line; then
      case $line in
        "" | *" "* | *:*) echo "$line" ;;
        *) n=$((n + 1)) ;;
      esac
    else
      rc=$?
      [ "$rc" -gt 128 ] || break # end of output
    fi
    if [ $((SECONDS - last)) -ge 30 ]; then
      echo "$label: $n of up to $total packages compiled, $((SECONDS - start)) s"
      last=$SECONDS
    fi
  done
}
