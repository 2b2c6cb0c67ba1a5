#!/usr/bin/env bash
# The generated TypeScript folder of a contract is an npm package: pack it
# with `npm pack` and install the tarball (a copy, as from a registry) into a
# fresh project outside this repository; run the typed client in plain Node,
# no bundler, as an ES module (`node main.mjs`) and as CommonJS
# (`node main.cjs`) against examples/chat-server; type-check an import of
# every entry point with `tsc --strict`, check that a wrong payload is a type
# error, and build the project with Vite.
#
#   CHAT_SERVER_BIN=target/debug/chat-server tests/npm-package/check.sh
set -euo pipefail
# shellcheck source=tests/support/check.sh
source "$(dirname "$0")/../support/check.sh"

pkg="$repo/generated/ts/chat"
[ -x "${CHAT_SERVER_BIN:-}" ] || fail "set CHAT_SERVER_BIN to a built examples/chat-server"
CHAT_SERVER_BIN="$(realpath "$CHAT_SERVER_BIN")"
work="$tmp/consumer"
mkdir -p "$work"

# The consumer pins what this repository pins (so npm's cache serves it).
version() { node -p "require('$1').$2[process.argv[1]]" "$3"; }
root_pkg="$repo/package.json"
web_pkg="$repo/examples/chat-web/package.json"
cat >"$work/package.json" <<JSON
{
  "name": "consumer",
  "private": true,
  "type": "module",
  "devDependencies": {
    "@types/react": "$(version "$web_pkg" devDependencies @types/react)",
    "typescript": "$(version "$root_pkg" devDependencies typescript)",
    "vite": "$(version "$web_pkg" devDependencies vite)"
  },
  "dependencies": {
    "react": "$(version "$web_pkg" dependencies react)",
    "socket.io-client": "$(version "$root_pkg" devDependencies socket.io-client)"
  }
}
JSON
cd "$work"
npm install --no-audit --no-fund --prefer-offline --loglevel=error
# A tarball, as a registry serves it: a later `npm install` of anything else
# keeps it a copy (a folder installed with --install-links turns into a
# link then).
tarball="$(npm pack --silent --pack-destination "$tmp" "$pkg")"
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tmp/$tarball"
name="$(node -p "require('$pkg/package.json').name")"
# A later plain `npm install` must leave it a copy too.
npm install --no-audit --no-fund --prefer-offline --loglevel=error
if [ -L "node_modules/$name" ] || [ ! -f "node_modules/$name/esm/index.js" ] || [ ! -f "node_modules/$name/cjs/index.d.ts" ]; then
  echo "error: $name was not installed as a copy with its JavaScript and declarations" >&2
  exit 1
fi

# Plain Node, no bundler: the same program as an ES module and as CommonJS.
client_program() {
  cat <<JS
const url = process.env.CHAT_URL;
const token = async (user) => {
  const res = await fetch(\`\${url}/dev/token?user=\${user}\`);
  if (!res.ok) throw new Error("no token: " + res.status);
  return res.text();
};
async function main() {
  const options = (user) => ({ url, token: () => token(user), transports: ["websocket"], reconnection: false });
  const alice = ChatClient.connect(options("alice"));
  const bob = ChatClient.connect(options("bob"));
  const threadId = "node-" + process.pid + "-" + MODULE_KIND;
  const heard = new Promise((resolve) => bob.on("new_message", (m) => resolve(m)));
  await bob.joinThread({ threadId });
  await alice.joinThread({ threadId });
  const sent = await alice.sendMessage({ threadId, content: "hello from " + MODULE_KIND });
  const got = await heard;
  if (got.message.id !== sent.id || got.message.content !== "hello from " + MODULE_KIND) {
    throw new Error("bob heard " + JSON.stringify(got) + " for " + JSON.stringify(sent));
  }
  try {
    await alice.sendMessage({ threadId, content: "" });
    throw new Error("an empty message was accepted");
  } catch (e) {
    if (!(e instanceof AckError) || e.code !== "INVALID_PAYLOAD") throw e;
  }
  if (!ERROR_CODES.includes("UNAVAILABLE") || CONTRACT.name !== "chat") throw new Error("contract data missing");
  alice.disconnect();
  bob.disconnect();
  console.log(MODULE_KIND + ": ok, message " + sent.id);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
JS
}
{
  echo "import { AckError, CONTRACT, ChatClient, ERROR_CODES } from \"$name/chat.client\";"
  echo 'const MODULE_KIND = "esm";'
  client_program
} >main.mjs
{
  echo "const { AckError, CONTRACT, ChatClient, ERROR_CODES } = require(\"$name/chat.client\");"
  echo 'const MODULE_KIND = "cjs";'
  client_program
} >main.cjs
port="$(free_port)"
PORT="$port" HEALTH_INTERVAL_MS=60000 "$CHAT_SERVER_BIN" 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
for program in main.mjs main.cjs; do
  echo "node $program"
  CHAT_URL="http://127.0.0.1:$port" timeout 60 node "$program" || { cat "$tmp/server.log" >&2; fail "node $program failed"; }
done

mkdir -p src
cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "lib": ["ES2022", "DOM"],
    "strict": true,
    "noEmit": true,
    "skipLibCheck": true,
    "types": []
  },
  "include": ["src"]
}
JSON
cat >src/main.ts <<TS
import { chat, health } from "$name";
import type { SendMessage } from "$name/chat";
import { ChatClient, ERROR_CODES } from "$name/chat.client";
import { HealthClient } from "$name/health.client";
import { useChatSocket } from "$name/react";

const payload: SendMessage = { threadId: "t1", content: "hello" };
const namespaces: string[] = [chat.NAMESPACE, health.NAMESPACE];
export async function send(client: ChatClient): Promise<string> {
  const message = await client.sendMessage(payload);
  return message.id;
}
// Used at run time, so that the bundle must carry the client and its
// socket.io-client underneath.
const client = ChatClient.connect({ url: location.origin, token: "t" });
client.on("new_message", (m) => {
  document.title = m.message.content;
});
void send(client);
Object.assign(window, { hooks: [useChatSocket], health: HealthClient });
document.title = namespaces.join(" ") + " " + Object.keys(ERROR_CODES).length;
TS
cat >index.html <<'HTML'
<!doctype html>
<html><body><script type="module" src="/src/main.ts"></script></body></html>
HTML

echo "tsc --strict: an import of every entry point of $name"
npx tsc -p .

# The types are the contract's, not `any`: a wrong payload must not compile.
cat >src/wrong.ts <<TS
import type { SendMessage } from "$name/chat";
export const wrong: SendMessage = { threadId: 1, content: "x" };
TS
if npx tsc -p . >wrong.log 2>&1; then
  echo "error: a payload of the wrong type compiled against $name" >&2
  exit 1
fi
grep -q "TS2322" wrong.log || { cat wrong.log >&2; exit 1; }
rm src/wrong.ts

echo "tsc --strict under NodeNext: the ES module and the CommonJS entry points of $name, declarations checked"
mkdir -p node
cat >node/esm.mts <<TS
import { ChatClient, type SendMessage } from "$name/chat.client";
import { useChatSocket } from "$name/react";
export const make = (url: string): ChatClient => ChatClient.connect({ url });
export const payload: SendMessage = { threadId: "t", content: "c" };
export const hook = useChatSocket;
TS
sed 's/esm/cjs/' node/esm.mts >node/cjs.cts
cat >tsconfig.node.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": []
  },
  "files": ["node/esm.mts", "node/cjs.cts"]
}
JSON
npx tsc -p tsconfig.node.json --traceResolution >trace.log || { grep -v "^=\|^[A-Z]" trace.log >&2; fail "tsc failed under NodeNext"; }
for kind in esm cjs; do
  grep -q "successfully resolved to '.*/node_modules/$name/$kind/chat.client.d.ts'" trace.log ||
    fail "tsc did not resolve the $kind declarations of $name"
done

echo "vite build"
npx vite build --logLevel warn
for needle in send_message new_message websocket; do
  grep -rq "$needle" dist/assets || { echo "error: the bundle lacks \`$needle\`" >&2; exit 1; }
done
echo "ok: $name installs, type-checks and builds outside this repository"
