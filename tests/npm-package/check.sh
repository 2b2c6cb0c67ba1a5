#!/usr/bin/env bash
# The generated TypeScript folder of a contract is an npm package: install it
# (copied, as from a registry) into a fresh project outside this repository,
# type-check an import of every entry point with `tsc --strict`, check that a
# wrong payload is a type error, and build the project with Vite.
#
#   tests/npm-package/check.sh [PACKAGE_DIR]     (default generated/ts/chat)
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
pkg="$(cd "${1:-$repo/generated/ts/chat}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

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
# --install-links copies the folder (as `npm pack` would) instead of linking
# it, so nothing resolves back into this repository.
npm install --no-audit --no-fund --prefer-offline --loglevel=error --install-links "$pkg"
name="$(node -p "require('$pkg/package.json').name")"
if [ -L "node_modules/$name" ] || [ ! -f "node_modules/$name/index.ts" ]; then
  echo "error: $name was not copied into node_modules" >&2
  exit 1
fi

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

echo "vite build"
npx vite build --logLevel warn
for needle in send_message new_message websocket; do
  grep -rq "$needle" dist/assets || { echo "error: the bundle lacks \`$needle\`" >&2; exit 1; }
done
echo "ok: $name installs, type-checks and builds outside this repository"
