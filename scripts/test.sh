#!/usr/bin/env bash
# Runs every test of the project: formatting, lints (warnings denied, which
# also compiles the generated crates and golden files), the generated-files
# gate, the Rust test suites, and the TypeScript type checks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "npm ci (typescript, socket.io-client)"
npm ci --no-audit --no-fund --loglevel=error

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied, all targets and features)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "evcontract generate --check (generated/ and schemas/contract.schema.json are current)"
cargo run --quiet --locked -- generate --check

step "tsc --noEmit --strict (generated typings, golden typings, type tests)"
npx tsc -p tsconfig.json

step "cargo test"
cargo test --workspace --all-features --locked

step "end-to-end: examples/chat-server driven by socket.io-client (node --test)"
cargo build --locked -p chat-server
export CHAT_SERVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/chat-server"
npx tsc -p tsconfig.e2e.json
echo '{"type":"commonjs"}' > target/e2e-js/package.json
node --test target/e2e-js/tests/e2e/
