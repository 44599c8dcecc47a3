#!/usr/bin/env bash
# tests/examples_test.sh BUILD_DIR — runs the Node.js examples (examples/nats-agent,
# examples/openai-tools) against a real `yard up` (mock engine, embedded nats-server
# with its generated per-component users). Their npm packages (nats, @msgpack/msgpack,
# openai) are installed into BUILD_DIR/examples-npm on first use. Exit 0 = pass,
# 77 = skipped (no node/npm, or the npm registry cannot be reached).
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
skip() { echo "examples_test: SKIP: $*"; exit 77; }
fail() { echo "examples_test: FAIL: $*" >&2; [ -f "$work/up.log" ] && tail -40 "$work/up.log" >&2; exit 1; }
command -v node >/dev/null || skip "node is not installed"
command -v npm >/dev/null || skip "npm is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' || skip "node >= 18 is needed"
work=$(mktemp -d)
up_pid=""
cleanup() { [ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Packages: one install per example folder, kept in the build tree between runs.
for ex in nats-agent openai-tools; do
  dir="$build/examples-npm/$ex"
  mkdir -p "$dir"
  cp "$src/examples/$ex/package.json" "$src/examples/$ex/"*.mjs "$dir/"
  if [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && timeout 180 npm install --no-audit --no-fund --loglevel=error --fetch-retries=1 \
        --fetch-timeout=30000 > "$work/npm-$ex.log" 2>&1) || { rm -rf "$dir/node_modules"; skip "npm install failed for $ex (offline?): $(tail -3 "$work/npm-$ex.log")"; }
  fi
done

# A cluster: two mock workers, a free HTTP port and a free NATS port.
"$build/bin/yard" up --workers 2 --engine mock --http-port 0 --nats-port 0 --log-level warn > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 300); do
  grep -q "Ctrl-C to stop" "$work/up.log" && break
  kill -0 "$up_pid" 2>/dev/null || fail "yard up exited"
  sleep 0.1
done
grep -q "Ctrl-C to stop" "$work/up.log" || fail "yard up did not come up"
http=$(grep -o 'OpenAI API : http://127.0.0.1:[0-9]*/v1' "$work/up.log" | head -1 | sed 's/.*: //')
nats=$(grep -o 'NATS       : nats://[^ ]*' "$work/up.log" | head -1 | sed 's/.*: //')
pwfile=$(grep -o 'password in [^,]*' "$work/up.log" | head -1 | sed 's/password in //')
[ -n "$http" ] && [ -n "$nats" ] && [ -n "$pwfile" ] || fail "cannot read the endpoints from yard up's output"
for _ in $(seq 1 100); do
  curl -sf "${http%/v1}/health" >/dev/null && break
  sleep 0.1
done

echo "== nats-agent"
(cd "$build/examples-npm/nats-agent" && NATS_URL="$nats" NATS_USER=client NATS_PASSWORD_FILE="$pwfile" \
   timeout 60 node agent.mjs) > "$work/nats-agent.log" 2>&1 || { cat "$work/nats-agent.log" >&2; fail "nats-agent"; }
cat "$work/nats-agent.log"
grep -q "finish_reason: tool_calls" "$work/nats-agent.log" || fail "nats-agent saw no tool call"
grep -q "yard-router/" "$work/nats-agent.log" || fail "nats-agent did not discover the router through \$SRV"

echo "== openai-tools"
(cd "$build/examples-npm/openai-tools" && OPENAI_BASE_URL="$http" timeout 90 node chat.mjs) > "$work/openai.log" 2>&1 \
  || { cat "$work/openai.log" >&2; fail "openai-tools"; }
cat "$work/openai.log"
grep -q "json_schema reply:" "$work/openai.log" || fail "openai-tools did not finish"
echo "examples_test: PASS"
