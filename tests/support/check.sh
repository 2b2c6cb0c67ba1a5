# Sourced by the test command's shell checks that start a server of their
# own (tests/init/check.sh, examples/build-script/check-ts-cross-version.sh):
# `repo` and `target` (cargo's), `build_bins`, a scratch folder `tmp` removed on exit
# together with the server whose pid is in `server_pid`, `fail`, and
# `free_port`.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "error: $*" >&2; exit 1; }
# build_bins NAME... builds this repository's binaries of those names with
# the whole workspace's features, the resolution of the test command's other
# builds, so that what they built is reused (built per package, with `-p`,
# the generator and its dependencies were compiled again).
build_bins() {
  local args=() name
  for name in "$@"; do args+=(--bin "$name"); done
  cargo build --quiet --locked --manifest-path "$repo/Cargo.toml" --workspace --all-features "${args[@]}"
}
# A loopback port nobody listens on now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
