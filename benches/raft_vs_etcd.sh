#!/usr/bin/env bash
# Replicated writes/s and commit latency, Carillon (3 nodes) beside etcd 3.4
# (3 members), fsync on in both. Servers are pinned to core 0, the load
# generator to core 1. Needs Debian's etcd-server (scripts/install-deps.sh --bench).
# Honours CARGO_TARGET_DIR (default: ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v etcd >/dev/null || { echo "etcd is missing: run scripts/install-deps.sh --bench" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p carillon-node --bin carillon -p carillon-benches --bin raft_vs_etcd
CARILLON_BIN="$target/release/carillon" taskset -c 1 "$target/release/raft_vs_etcd" "$@"
