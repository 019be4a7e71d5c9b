#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks formatting and
# lints, builds the carillon binary (the cluster tests run it as a process)
# and runs every test with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --locked -p carillon-node --bin carillon
cargo nextest run --workspace --locked --profile ci "$@"
