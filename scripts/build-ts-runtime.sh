#!/usr/bin/env bash
# Compiles the TypeScript client runtime (templates/ts/runtime/lib.ts and
# hooks.ts, the same in every generated package) with the repository's
# pinned tsc into JavaScript and declarations, ES modules in esm/ and
# CommonJS in cjs/ (the declarations, the same for both, once in esm/); evcontract embeds the results (a compiled snapshot) and
# writes them beside each contract's generated modules.
#
#   scripts/build-ts-runtime.sh           rewrite templates/ts/runtime/{esm,cjs}
#   scripts/build-ts-runtime.sh --check   fail when they differ from a fresh compile
set -euo pipefail
cd "$(dirname "$0")/../templates/ts/runtime"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for kind in esm cjs; do
  npx --no-install tsc -p "tsconfig.$kind.json" --outDir "$out/$kind"
  # contract.ts only stands in for each package's own contract module.
  rm -f "$out/$kind"/contract.js "$out/$kind"/contract.d.ts
done
if [ "${1:-}" = "--check" ]; then
  if ! diff -r esm "$out/esm" >&2 || ! diff -r cjs "$out/cjs" >&2; then
    echo "error: templates/ts/runtime/{esm,cjs} are stale: run scripts/build-ts-runtime.sh and commit them" >&2
    exit 1
  fi
  echo "ok: templates/ts/runtime/{esm,cjs} match lib.ts and hooks.ts"
else
  rm -rf esm cjs
  cp -r "$out/esm" "$out/cjs" .
fi
