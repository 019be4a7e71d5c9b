#!/usr/bin/env bash
# Runs both cargo-fuzz targets of the SIP codec for SECONDS each (default 60),
# one after the other, seeding each corpus from the torture corpus in
# ../shared/testdata/sip-torture (copied at run time, not committed) and from
# corpus-regressions/. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). CI does not call this; its short run
# is the stable test node/tests/sip_fuzz.rs.
#
# Usage: fuzz/run.sh [SECONDS]   (extra libFuzzer flags in FUZZ_FLAGS)
set -euo pipefail

seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
torture="$here/../../shared/testdata/sip-torture"
cd "$here"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz on nightly is needed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
if [ ! -d "$torture" ]; then
    echo "the torture corpus is expected at $torture" >&2
    exit 2
fi

status=0
for target in sip_datagram sip_stream; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    cp -f "$torture"/rfc* "$corpus"/
    cp -f corpus-regressions/* "$corpus"/ 2>/dev/null || true
    echo "== $target: ${seconds}s, corpus $corpus ($(ls "$corpus" | wc -l) files)"
    # -max_len: above the largest torture file (3.5 KB) and MAX_LINE_BYTES.
    if ! cargo +nightly fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=16384 -timeout=10 \
        -dict=sip.dict -print_final_stats=1 ${FUZZ_FLAGS:-}; then
        echo "== $target: FAILED; the reproducer is in fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
