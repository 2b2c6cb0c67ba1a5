#!/usr/bin/env bash
# build.rs generation, end to end through cargo: a change to the contract
# changes the build, a contract error fails it with file:line:column and
# JSON path, and the server alone (no client) compiles too.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
contract="$tmp/notes.contract.json"
# With the whole workspace's features (the example's bin selects what is
# built), as the test command's other builds: with `-p build-script-example`
# alone the runtime and its dependencies resolved other features and were
# all compiled again.
build() { cargo build --quiet --locked --workspace --all-features --bin notes-server-v1-1 "$@"; }
fail() { echo "error: $*" >&2; exit 1; }

cp examples/build-script/notes.contract.json "$contract"
NOTES_CONTRACT="$contract" build || fail "a copy of the contract does not build"

# The event renamed: the handler's `add_note` is no longer the trait's.
sed -i 's/"add_note"/"create_note"/' "$contract"
if NOTES_CONTRACT="$contract" build 2>"$tmp/renamed.log"; then
  fail "renaming add_note in the contract did not change the build"
fi
grep -q 'method `add_note` is not a member of trait `NotesHandler`' "$tmp/renamed.log" ||
  { cat "$tmp/renamed.log" >&2; fail "the rebuild failed for another reason"; }

# A bad contract: the build fails with the diagnostic, place and path.
printf '{"contract": "notes", "version": "1.0.0",\n "namespaces": {"/notes": {"clientEvents": {"Add": {}}}}}\n' >"$contract"
if NOTES_CONTRACT="$contract" build 2>"$tmp/bad.log"; then
  fail "a bad contract built"
fi
grep -qF "$contract:2:45: /namespaces/\"/notes\"/clientEvents/Add: event name \`Add\` must be a snake_case identifier" "$tmp/bad.log" ||
  { cat "$tmp/bad.log" >&2; fail "the build error lacks the diagnostic"; }

NOTES_CLIENT=off build || fail "the server alone does not build"
build || fail "the committed contract does not build"
echo "ok: build.rs generation follows the contract"
