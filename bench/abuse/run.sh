#!/usr/bin/env bash
# The abuse measurements of README "Limits and abuse" against a release
# build of examples/chat-server on loopback: 1 MB handshake versions, one
# account's room hog and join/leave churn, slow POST bodies, and a 10 s
# Redis freeze between two nodes. Each prints one JSON line; all of them go
# to bench/abuse/results.json. Takes about 2 minutes after the build.
#
#   bench/abuse/run.sh [OUT.json]     # needs node (npm ci), redis-server and curl; default bench/abuse/results.json
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --quiet -p chat-server
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/chat-server"
SECRET="abuse-measurements"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_http() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# start_server NAME [ENV=VALUE...]: sets $port, $metrics and $pid.
start_server() {
  local name=$1; shift
  port=$(free_port); metrics=$(free_port)
  env JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$port" METRICS_ADDR="127.0.0.1:$metrics" RUST_LOG=warn "$@" \
    "$BIN" 2>"$work/$name.log" &
  pid=$!; pids+=("$pid")
  wait_http "http://127.0.0.1:$port/healthz"
}

out="${1:-bench/abuse/results.json}"
echo "{" >"$out.tmp"

start_server versions CONTRACT_MISMATCH=allow
echo "\"versions\": $(node bench/abuse/versions.mjs "http://127.0.0.1:$port" "$pid" "http://127.0.0.1:$metrics/metrics" 300)," >>"$out.tmp"
kill "$pid"

start_server fanout
echo "\"fanout\": $(node bench/abuse/fanout.mjs "http://127.0.0.1:$port" "$pid" "$SECRET")," >>"$out.tmp"
kill "$pid"

start_server slow
echo "\"slow_posts\": $(node bench/abuse/slow_posts.mjs 127.0.0.1 "$port" 60)," >>"$out.tmp"
kill "$pid"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!; pids+=("$redis_pid")
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.05; done
start_server node-a REDIS_URL="redis://127.0.0.1:$redis_port" REDIS_PREFIX=abuse
a=$port
start_server node-b REDIS_URL="redis://127.0.0.1:$redis_port" REDIS_PREFIX=abuse
b=$port
echo "\"redis_freeze\": $(node bench/abuse/stall.mjs "http://127.0.0.1:$a" "http://127.0.0.1:$b" "$redis_pid" "$SECRET" 10)" >>"$out.tmp"
echo "}" >>"$out.tmp"
node -e 'const fs=require("fs");const f=process.argv[1];fs.writeFileSync(f,JSON.stringify(JSON.parse(fs.readFileSync(f+".tmp","utf8")),null,2)+"\n");fs.unlinkSync(f+".tmp")' "$out"
cat "$out"
