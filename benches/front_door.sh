#!/usr/bin/env bash
# The front door's costs on one `carillon demo` node (benches/src/bin/front_door.rs):
# panel logins/s with argon2id beside refused attempts/s (429 before any password
# check), and REGISTER/s with digest over SIP/TLS beside plain UDP, with the node's
# CPU per request. The node runs on core 0, the generator on core 1 (each pins
# itself with taskset). Writes the generated part of benches/FRONT_DOOR_RESULTS.md.
#
# Options are passed on to the program: --runs N (3), --seconds S (5),
# --clients N (16 HTTP), --sip-clients N (32), --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "taskset is missing (Debian util-linux)" >&2; exit 1; }
cargo build --release -p carillon-node --bin carillon -p carillon-benches --bin front_door
target="${CARGO_TARGET_DIR:-$PWD/target}"
CARILLON_BIN="$target/release/carillon" "$target/release/front_door" "$@"
