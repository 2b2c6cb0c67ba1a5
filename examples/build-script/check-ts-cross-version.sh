#!/usr/bin/env bash
# A TypeScript client generated from version 1.0 of the notes contract
# against a server of version 1.1, which added an optional `author` to the
# ack of `add_note` and to the `note_added` event: the old client gets its
# ack and its event (received data is not checked against the old types, so
# a property it does not know is simply there).
set -euo pipefail
# shellcheck source=tests/support/check.sh
source "$(dirname "$0")/../../tests/support/check.sh"

build_bins evcontract notes-server-v1-1
"$target/debug/evcontract" generate "$repo/examples/build-script/notes.contract.json" --out "$tmp/gen" --no-config >/dev/null

# An ESM project next to the generated 1.0 typings, with this repository's
# socket.io-client.
ln -s "$repo/node_modules" "$tmp/node_modules"
printf '{"type":"module"}\n' >"$tmp/package.json"
cat >"$tmp/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
    "strict": true, "skipLibCheck": true, "outDir": "out", "types": ["node"]
  },
  "include": ["client.ts", "gen/ts/notes/*.ts"]
}
JSON
cat >"$tmp/client.ts" <<'TS'
import { NotesClient } from "./gen/ts/notes/notes.client.js";

const client = NotesClient.connect({ url: `http://127.0.0.1:${process.env.PORT}`, reconnection: false, transports: ["websocket"] });
const fail = (why: string): never => {
  console.error(why);
  process.exit(1);
};
const timer = setTimeout(() => fail("timed out"), 15000);
await new Promise<void>((resolve, reject) => {
  client.socket.once("connect", () => resolve());
  client.socket.once("connect_error", reject);
});
const heard = new Promise<{ id: number; text: string }>((resolve) => client.on("note_added", resolve));
const ack = await client.addNote({ text: "hello" });
if (ack.id !== 1) fail(`ack: ${JSON.stringify(ack)}`);
const note = await heard;
if (note.id !== 1 || note.text !== "hello") fail(`note_added: ${JSON.stringify(note)}`);
// The 1.1 server did send the property 1.0 does not know.
if ((ack as unknown as { author?: string }).author !== "anonymous") fail(`no author in ${JSON.stringify(ack)}`);
clearTimeout(timer);
client.disconnect();
console.log("ok: a 1.0 TypeScript client reads what a 1.1 server adds");
TS
(cd "$tmp" && node "$repo/node_modules/typescript/bin/tsc" -p .) || fail "the 1.0 client does not compile"

port="$(free_port)"
PORT="$port" "$target/debug/notes-server-v1-1" 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
(cd "$tmp" && PORT="$port" node out/client.js) || { cat "$tmp/server.log" >&2; fail "the 1.0 client failed against the 1.1 server"; }
