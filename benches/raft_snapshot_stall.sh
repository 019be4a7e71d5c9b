#!/usr/bin/env bash
# Write stalls while a three-node Carillon cluster takes snapshots of a large
# ledger: nodes pinned to core 0, the load generator to core 1. Options are
# passed on (`--runs`, `--seconds`, `--fill-seconds`; see --help).
# Honours CARGO_TARGET_DIR (default: ./target) and CARILLON_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p carillon-node --bin carillon -p carillon-benches --bin raft_snapshot_stall
CARILLON_BIN="${CARILLON_BIN:-$target/release/carillon}" taskset -c 1 "$target/release/raft_snapshot_stall" "$@"
