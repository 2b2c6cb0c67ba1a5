#!/usr/bin/env bash
# `evcontract init` end to end: a new project outside this repository is
# generated, is current (`generate --check`), builds without warnings, and
# its server answers a real socket.io-client: an acked `say_hello`, the
# `hello` broadcast, and INVALID_PAYLOAD for an empty name.
set -euo pipefail
# shellcheck source=tests/support/check.sh
source "$(dirname "$0")/../support/check.sh"

evcontract="$target/debug/evcontract"
build_bins evcontract
# No flags, as a new user runs it: with no release on crates.io the CLI
# points the project at the runtime of the checkout it was built from, and
# says so.
"$evcontract" init "$tmp/hello-world" >"$tmp/init.log"
grep -q "depends on the runtime of the checkout" "$tmp/init.log" || { cat "$tmp/init.log" >&2; fail "init did not say where the runtime comes from"; }
grep -q "runtime-path = \"$repo/runtime\"" "$tmp/hello-world/evcontract.toml" || fail "init did not point the project at this checkout's runtime"
proj="$tmp/hello-world"
for f in schemas/hello_world.contract.json schemas/contract.schema.json evcontract.toml \
  server/src/main.rs generated/rust/hello_world/src/lib.rs generated/ts/hello_world/package.json \
  .github/workflows/contract.yml; do
  [ -f "$proj/$f" ] || fail "init wrote no $f"
done
grep -q '"\$schema": "./contract.schema.json"' "$proj/schemas/hello_world.contract.json" ||
  fail "the starter contract has no \$schema"
# A second init into the same folder refuses and changes nothing.
if "$evcontract" init "$proj" >/dev/null 2>&1; then fail "init overwrote a project"; fi

(cd "$proj" && "$evcontract" generate --check) || fail "a fresh project is not current"
rustfmt --edition 2024 --check "$proj/server/src/main.rs" || fail "the server is not rustfmt-clean"

# Built as a new user builds it: no lock file (the newest compatible
# dependencies, which is how `rustls`'s deprecation of its ring provider
# showed up), warnings denied below. This repository's target folder keeps
# what the two resolutions share from being built twice.
cat >>"$proj/Cargo.toml" <<'TOML'

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
TOML
# (Warnings are read from the output: RUSTFLAGS would rebuild every dependency.)
(cd "$proj" && CARGO_TARGET_DIR="$target" cargo build -p hello-world-server --message-format short 2>"$tmp/build.log") ||
  { cat "$tmp/build.log" >&2; fail "the new project does not build"; }
if grep -E "^(warning|error)" "$tmp/build.log" | grep -v "^warning: .*generated [0-9]* warning" >&2; then
  fail "the new project builds with warnings"
fi

port="$(free_port)"
PORT="$port" "$target/debug/hello-world-server" 2>"$tmp/server.log" &
server_pid=$!
NODE_PATH="$repo/node_modules" PORT="$port" node - <<'JS' || { cat "$tmp/server.log" >&2; fail "the server did not answer as its contract says"; }
const { io } = require("socket.io-client");
const url = `http://127.0.0.1:${process.env.PORT}/greetings`;
const deadline = Date.now() + 20000;
function connect() {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], reconnection: false, timeout: 2000 });
    s.on("connect", () => resolve(s));
    s.on("connect_error", (e) => { s.close(); reject(e); });
  });
}
(async () => {
  let socket;
  for (;;) {
    try { socket = await connect(); break; } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const heard = new Promise((resolve) => socket.on("hello", resolve));
  const ack = await socket.timeout(5000).emitWithAck("say_hello", { name: "Ada" });
  if (!ack.success || ack.data.text !== "Hello, Ada!") throw new Error("ack: " + JSON.stringify(ack));
  const hello = await heard;
  if (hello.text !== "Hello, Ada!") throw new Error("hello: " + JSON.stringify(hello));
  const bad = await socket.timeout(5000).emitWithAck("say_hello", { name: "" });
  if (bad.success || bad.code !== "INVALID_PAYLOAD" || bad.details.path !== "/name") throw new Error("bad: " + JSON.stringify(bad));
  socket.close();
  console.log("ok: the server of a new project answers socket.io-client");
})().catch((e) => { console.error(e); process.exit(1); });
JS
