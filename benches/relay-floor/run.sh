#!/usr/bin/env bash
# Runs one relay-floor variant pinned to core 0 against the generator pinned to core 1
# for 9 s, then stops the relay by pid. Usage: run.sh MODE CALLS [MODE ARGS...]
#   run.sh epoll 900          run.sh epoll 900 200          run.sh uring 900 64 200
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/relay-floor"
mode=$1; calls=$2; shift 2
out="$(mktemp)"
taskset -c 0 "$bin" "$mode" "$calls" "$@" >"$out" 2>&1 &
relay=$!
trap 'kill "$relay" 2>/dev/null || true; rm -f "$out"' EXIT
sleep 0.5
taskset -c 1 "$bin" gen "$calls" 9
kill "$relay"; wait "$relay" 2>/dev/null || true
# The first figure covers the start; the next ones are steady.
tail -n +2 "$out" | head -3
