#!/usr/bin/env bash
# Relayed G.711 calls per core: Carillon's media relay (one relay thread,
# `carillon-relay`, whose engine is one thread) beside rtpengine 10.5 (userspace only:
# --table=-1, --num-threads=1), both pinned to core 0, driven in the same run
# by one generator (benches/src/bin/media_vs_rtpengine.rs) pinned to core 1.
# Needs Debian's rtpengine-daemon (scripts/install-deps.sh --bench).
# Honours CARGO_TARGET_DIR (default: ./target). Extra arguments go to the
# generator (--calls 100,250,... --runs 3 --seconds 8 ...). The generator's
# output is also written to $MEDIA_BENCH_OUT (default: <target>/media_vs_rtpengine.txt).
# Results and their reading: benches/MEDIA_RESULTS.md.
#
# MEDIA_BENCH_CPU_SHARE=50 caps each relay at 50 % of core 0 (see below);
# MEDIA_BENCH_COALESCE_US sets Carillon's --wake-coalesce-us (default 200).
#
# Addresses: Carillon relay 127.0.0.71 (ports 30000-39999, control :19171),
# rtpengine 127.0.0.72 (ports 40000-49999, ng :22222), generator sides
# 127.0.0.73 and 127.0.0.74.
#
# Scheduling: the kernel groups tasks by session (autogroup), so on a machine
# shared with other sessions' builds each session gets an equal share of a core
# whatever its nice value. The benchmark therefore runs in a session of its own
# and raises that session's weight (/proc/self/autogroup) to
# $MEDIA_BENCH_AUTOGROUP_NICE (default -10; empty: leave it), the same for both
# relays and the generator, for the duration of the run only.
set -euo pipefail
if [ -z "${MEDIA_BENCH_SESSION:-}" ]; then
    # Re-run in a new session; the inner script writes its pid to a file so that
    # a signal here is passed on to it by pid (it then stops what it started).
    pidfile="$(mktemp)"
    MEDIA_BENCH_SESSION=1 MEDIA_BENCH_PIDFILE="$pidfile" setsid "$0" "$@" &
    waiter=$!
    stop_inner() {
        local inner
        inner="$(cat "$pidfile" 2>/dev/null || true)"
        if [ -n "$inner" ]; then kill -TERM "$inner" 2>/dev/null || true; fi
    }
    trap stop_inner INT TERM
    status=0
    for _ in $(seq 10); do
        wait "$waiter" && status=0 || status=$?
        kill -0 "$waiter" 2>/dev/null || break
    done
    rm -f "$pidfile"
    exit "$status"
fi
if [ -n "${MEDIA_BENCH_PIDFILE:-}" ]; then echo "$$" >"$MEDIA_BENCH_PIDFILE"; fi
cd "$(dirname "$0")/.."
command -v rtpengine >/dev/null || { echo "rtpengine is missing: run scripts/install-deps.sh --bench" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="${MEDIA_BENCH_OUT:-$target/media_vs_rtpengine.txt}"
nice -n 5 cargo build --release --locked -p carillon-media --bin carillon-relay
nice -n 5 cargo build --release --locked -p carillon-benches --bin media_vs_rtpengine

if [ -n "${MEDIA_BENCH_AUTOGROUP_NICE--10}" ] && [ -w /proc/self/autogroup ]; then
    echo "${MEDIA_BENCH_AUTOGROUP_NICE--10}" >/proc/self/autogroup || true
fi
echo "scheduling: $(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')" >&2

# Optional CPU share of each relay: MEDIA_BENCH_CPU_SHARE=50 gives each relay (all its
# threads) 50 % of core 0 through a CFS quota (cgroup v1 cpu controller, 10 ms period).
# On a machine where the generator's core fills up before a relay's, this makes each
# relay run out of CPU first, so "most calls sustained" measures the relays again (per
# that share of a core).
share="${MEDIA_BENCH_CPU_SHARE:-}"
if [ -n "$share" ]; then
    case "$share" in
        '' | *[!0-9]*) echo "MEDIA_BENCH_CPU_SHARE must be a whole percentage, 1-100" >&2; exit 1 ;;
    esac
    if [ "$share" -lt 1 ] || [ "$share" -gt 100 ]; then
        echo "MEDIA_BENCH_CPU_SHARE must be a whole percentage, 1-100" >&2
        exit 1
    fi
    [ -w /sys/fs/cgroup/cpu ] || { echo "MEDIA_BENCH_CPU_SHARE needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu, writable (root)" >&2; exit 1; }
fi

work="$(mktemp -d)"
pids=()
cgroups=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        # Bounded wait for each process we started, then a hard stop.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    for dir in "${cgroups[@]}"; do
        rmdir "$dir" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Puts process $2 (every thread) in a cgroup of its own with $share % of a core.
limit_cpu() {
    [ -n "$share" ] || return 0
    local dir="/sys/fs/cgroup/cpu/media-bench-$1-$$"
    mkdir "$dir"
    cgroups+=("$dir")
    echo 10000 >"$dir/cpu.cfs_period_us"
    echo $((share * 100)) >"$dir/cpu.cfs_quota_us"
    echo "$2" >"$dir/cgroup.procs"
}

# Carillon: one relay thread (the HTTP API's two idle workers share core 0 with it).
taskset -c 0 "$target/release/carillon-relay" --bind-ip 127.0.0.71 --ports 30000-39999 \
    --control 127.0.0.71:19171 --recordings-dir "$work/recordings" \
    --wake-coalesce-us "${MEDIA_BENCH_COALESCE_US:-200}" --ignore-stdin >"$work/carillon.log" 2>&1 &
carillon_pid=$!
pids+=("$carillon_pid")
limit_cpu carillon "$carillon_pid"

# rtpengine: userspace forwarding only (no kernel table), one worker thread, no
# config file, sessions freed at once on delete.
taskset -c 0 rtpengine --config-file=none --foreground --log-stderr --log-level=4 \
    --table=-1 --num-threads=1 --interface=127.0.0.72 --listen-ng=127.0.0.72:22222 \
    --port-min=40000 --port-max=49999 --delete-delay=0 --timeout=60 \
    >"$work/rtpengine.log" 2>&1 &
rtpengine_pid=$!
pids+=("$rtpengine_pid")
limit_cpu rtpengine "$rtpengine_pid"

for _ in $(seq 100); do
    grep -q '^ready' "$work/carillon.log" 2>/dev/null && break
    kill -0 "$carillon_pid" 2>/dev/null || { cat "$work/carillon.log" >&2; exit 1; }
    sleep 0.1
done
grep -q '^ready' "$work/carillon.log" || { echo "carillon-relay not ready" >&2; cat "$work/carillon.log" >&2; exit 1; }
kill -0 "$rtpengine_pid" 2>/dev/null || { cat "$work/rtpengine.log" >&2; exit 1; }

echo "rtpengine: $(rtpengine --version 2>&1 | head -1); carillon-relay pid $carillon_pid, rtpengine pid $rtpengine_pid; CPU share of each relay: ${share:-100} % of core 0${share:+ (CFS quota)}" | tee "$out"
# The generator runs in the background so that a signal stops everything at once.
taskset -c 1 "$target/release/media_vs_rtpengine" \
    --carillon-pid "$carillon_pid" --carillon-control http://127.0.0.71:19171 \
    --rtpengine-pid "$rtpengine_pid" --rtpengine-ng 127.0.0.72:22222 "$@" >"$work/generator.out" &
generator_pid=$!
pids=("$generator_pid" "${pids[@]}")
status=0
wait "$generator_pid" || status=$?
tee -a "$out" <"$work/generator.out"
echo "written to $out (generator exit status $status)"
exit "$status"
