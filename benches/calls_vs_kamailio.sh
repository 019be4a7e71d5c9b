#!/usr/bin/env bash
# Queue calls per second through one Carillon node (`carillon demo`: a DID
# -> its queue -> an agent, media through the node's relay) beside Kamailio
# 5.6 as a stateful proxy with dialog tracking and rtpengine 10.5 anchoring
# the media (userspace forwarding), under the same SIPp load in the same
# run; and the time from a call's entry into the queue to its agent's
# INVITE leaving the node, from the node's own histogram
# (carillon_queue_offer_latency_seconds), at low and moderate rates.
# Servers are pinned to core 0 (Kamailio and rtpengine together), SIPp to
# core 1. Writes the generated parts of benches/CALLS_RESULTS.md (between
# the capacity and latency markers, each only when measured; the rest is
# kept).
#
# A call: a SIPp caller (benches/sipp/caller.xml) dials the DID with a
# PCMU offer; Carillon's queue answers 183 with early media and 200 when an
# agent answered, Kamailio relays the agent's 200; the caller then sends a
# 1 kHz PCMU tone (50 packets/s) for HOLD_MS and hangs up. The agents are
# AGENTS accounts registered with digest (benches/sipp/register_agent.xml)
# from the one SIPp that answers their calls at once and echoes their RTP
# (benches/sipp/agent.xml, -rtp_echo). Carillon: each agent is a user with
# a voice licence and a SIP phone, logged in and checked in to the queue
# through the admin API; the queue routes longest-idle, no after-call work,
# no recording. Kamailio (benches/kamailio/calls.cfg): the next agent in
# turn, looked up in usrloc, a dialog, rtpengine offer/answer/delete.
#
# Each run steps the call rate up through RATES: at each rate SIPp places
# rate x STEP_S calls (open loop: -r, -m, no limit on calls in flight); a
# call that has not been answered within 10 s fails (-recv_timeout). A step
# passes when at least 99.9 % of its calls succeed; a run stops at the
# first failed step. Server CPU per call is the server's user+system time
# (/proc/<pid>/stat, every thread and process: Carillon's one process;
# Kamailio's processes and rtpengine together) over the step divided by
# the calls that succeeded. Rates are the rates SIPp achieved (calls
# placed / time to place them). The table shows the median of RUNS runs,
# the systems taken in turn in each round.
#
# Needs Debian's kamailio, rtpengine-daemon and sip-tester
# (scripts/install-deps.sh --bench), curl, jq. Honours CARGO_TARGET_DIR
# (default: ./target). Settings, all optional, from the environment:
#   CALLS_BENCH_RATES ("300 350 400 450 500 600 700 800 900 1000"; empty:
#     no capacity steps)
#   CALLS_BENCH_RATES_CARILLON, CALLS_BENCH_RATES_KAMAILIO (each system's
#     own steps; default CALLS_BENCH_RATES)
#   CALLS_BENCH_RUNS (3)
#   CALLS_BENCH_STEP_S (6)     CALLS_BENCH_HOLD_MS (2000)
#   CALLS_BENCH_AGENTS (1400)   CALLS_BENCH_SYSTEMS ("carillon kamailio")
#   CALLS_BENCH_LATENCY ("1:40 50:8"; rate:seconds of calls, empty: none)
#   CALLS_BENCH_KAMAILIO_WORKERS (8, Kamailio's default)
#   CALLS_BENCH_PERF (unset; a rate of RATES: perf record -g of each server
#     during its steps at that rate, perf-*.data in the work directory, which
#     CALLS_BENCH_KEEP=1 keeps)
#   CALLS_BENCH_OUT (benches/CALLS_RESULTS.md)
#   CALLS_BENCH_BUILD (1; 0 uses the carillon binary already built)
#   CALLS_BENCH_CARILLON_BIN (<target>/release/carillon: another build to run)
#   CALLS_BENCH_KEEP (0; 1 keeps the work directory with every log)
set -euo pipefail
# One collation for sort and join, and bytes for awk's printf %c.
export LC_ALL=C
cd "$(dirname "$0")/.."
root="$PWD"
rates="${CALLS_BENCH_RATES-300 350 400 450 500 600 700 800 900 1000}"
runs="${CALLS_BENCH_RUNS:-3}"
step_s="${CALLS_BENCH_STEP_S:-6}"
hold_ms="${CALLS_BENCH_HOLD_MS:-2000}"
agents="${CALLS_BENCH_AGENTS:-1400}"
systems="${CALLS_BENCH_SYSTEMS:-carillon kamailio}"
latency_steps="${CALLS_BENCH_LATENCY-1:40 50:8}"
kamailio_workers="${CALLS_BENCH_KAMAILIO_WORKERS:-8}"
out="${CALLS_BENCH_OUT:-benches/CALLS_RESULTS.md}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
domain="demo.carillon.test"
did="+420225000100"
# Addresses: Carillon 127.0.0.81 (SIP :5060, admin :18481, Raft :18482,
# RTP 20000-39999); Kamailio 127.0.0.82:5060 and rtpengine 127.0.0.83
# (ng :22222, RTP 40000-59999); the agents' SIPp 127.0.0.84:5070 (RTP echo
# :7000) for Carillon and 127.0.0.85:5070 (:7100) for Kamailio; the
# callers' SIPp 127.0.0.86:5080 (RTP :8000). SIPp control ports 18871-18874.
carillon_ip=127.0.0.81
kamailio_ip=127.0.0.82
rtpengine_ip=127.0.0.83
caller_ip=127.0.0.86

for tool in kamailio kamcmd rtpengine sipp taskset curl jq md5sum; do
    command -v "$tool" >/dev/null || {
        echo "$tool is missing: run scripts/install-deps.sh --bench (Debian kamailio, rtpengine-daemon, sip-tester, curl, jq)" >&2
        exit 1
    }
done
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is missing (Debian time)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/calls-bench.XXXXXX")"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${CALLS_BENCH_KEEP:-0}" == 1 ]]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------- build
if [[ "${CALLS_BENCH_BUILD:-1}" == 1 ]]; then
    log "building carillon (release)"
    cargo build --release --locked -p carillon-node --bin carillon
fi
bin="${CALLS_BENCH_CARILLON_BIN:-$target/release/carillon}"

# ---------------------------------------------------------------- helpers
clk_tck="$(getconf CLK_TCK)"
# SIPp's socket buffers (its default is 64 KB): as large as the kernel
# allows, so that the generator drops as little as it can.
buffer="$(cat /proc/sys/net/core/rmem_max)"

# CPU ticks (user + system, every thread) of the given processes and their
# children.
cpu_ticks() {
    local total=0 pid
    for pid in "$@" $(for p in "$@"; do ps --ppid "$p" -o pid= 2>/dev/null; done); do
        [[ -r /proc/$pid/stat ]] || continue
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The 1 kHz tone the callers send (raw mu-law, 1 s, looped by SIPp).
LC_ALL=C awk 'function ulaw(s,   sign, e, mask, m) {
        sign = s < 0 ? 128 : 0; if (s < 0) s = -s
        if (s > 32635) s = 32635
        s += 132; e = 7; mask = 16384
        while (e > 0 && int(s / mask) % 2 == 0) { e--; mask /= 2 }
        m = int(s / 2 ^ (e + 3)) % 16
        return 255 - (sign + e * 16 + m)
    }
    BEGIN { for (n = 0; n < 8000; n++) printf "%c", ulaw(int(8000 * sin(2 * 3.14159265 * 1000 * n / 8000))) }' \
    >"$work/tone.pcmu"
[[ "$(stat -c %s "$work/tone.pcmu")" == 8000 ]] || { echo "could not write the tone" >&2; exit 1; }
printf 'SEQUENTIAL\n%s;\n' "$did" >"$work/calls.csv"

# The agents' accounts: agent1 ... agentN, the same for both systems.
echo SEQUENTIAL >"$work/agents.csv"
{
    echo "# Written by benches/calls_vs_kamailio.sh: username => HA1 (MD5)."
    echo "event_route[htable:mod-init] {"
} >"$work/creds.cfg"
for n in $(seq "$agents"); do
    password="Agent-Phone-$n!"
    echo "agent$n;[authentication username=agent$n password=$password];$domain;" >>"$work/agents.csv"
    ha1="$(printf '%s' "agent$n:$domain:$password" | md5sum | cut -d' ' -f1)"
    printf '\t$sht(creds=>agent%s) = "%s";\n' "$n" "$ha1" >>"$work/creds.cfg"
done
echo "}" >>"$work/creds.cfg"

# Registers every agent to $1 (ip:port) from $2 (ip), port 5070, then
# starts the agents' SIPp there, RTP echo on $3; its pid in $agent_pid.
start_agents() {
    local server="$1" ip="$2" media="$3" tag="$4" control="$5"
    (cd "$work" && timeout 120 taskset -c 1 sipp "$server" -sf "$root/benches/sipp/register_agent.xml" \
        -inf "$work/agents.csv" -i "$ip" -p 5070 -cp "$control" -t u1 -m "$agents" -r 500 -l 100 -buff_size "$buffer" \
        -nostdin -trace_err -error_file "$work/register-$tag.errors" >"$work/register-$tag.out" 2>&1) || {
        echo "$tag: registering the agents failed:" >&2
        tail -30 "$work/register-$tag.out" >&2
        exit 1
    }
    (cd "$work" && exec taskset -c 1 sipp -sf "$root/benches/sipp/agent.xml" -i "$ip" -p 5070 \
        -mp "$media" -rtp_echo -aa -cp "$control" -t u1 -buff_size "$buffer" -rtp_buffsize "$buffer" -nostdin -trace_err -error_file "$work/agents-$tag.errors" \
        -trace_stat -stf "$work/agents-$tag.csv" -fd 200ms >"$work/agents-$tag.out" 2>&1) &
    agent_pid=$!
    pids+=("$agent_pid")
}

# The machine's UDP counters (/proc/net/snmp): datagrams received, and
# those dropped for a full receive buffer.
udp_counters() { awk '/^Udp:/ && !seen { seen = 1; getline; print $2, $6 }' /proc/net/snmp; }

# Receive-buffer drops of every UDP socket of the bench's addresses
# (127.0.0.81-86), from /proc/net/udp: "ip:port drops" lines.
socket_drops() {
    awk 'function hex(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1; return v }
        NR > 1 {
            split($2, a, ":")
            ip = hex(substr(a[1], 7, 2)) "." hex(substr(a[1], 5, 2)) "." hex(substr(a[1], 3, 2)) "." hex(substr(a[1], 1, 2))
            if (ip ~ /^127\.0\.0\.8[1-6]$/) print ip ":" hex(a[2]), $NF
        }' /proc/net/udp | sort
}

# Drops over a step from socket_drops samples ($2: every 0.5 s while it
# ran; sockets come and go) against the dump before it ($1), summed as
# "server generator_sip generator_rtp": the servers' sockets
# (127.0.0.81-83), SIPp's SIP sockets (:5070, :5080) and SIPp's RTP
# sockets (the rest).
drops_between() {
    awk 'NR == FNR { before[$1] = $2; next }
        NF == 2 { if (!($1 in top) || $2 > top[$1]) top[$1] = $2 }
        END {
            for (s in top) {
                d = top[s] - ((s in before) ? before[s] : 0); if (d < 0) d = 0
                split(s, a, ":")
                if (a[1] ~ /\.8[123]$/) server += d; else if (a[2] == 5070 || a[2] == 5080) sip += d; else rtp += d
            }
            printf "%d %d %d\n", server, sip, rtp
        }' "$1" "$2"
}

# Calls the agents' SIPp of system $1 has completed so far.
agent_calls() {
    awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { n = $col["SuccessfulCall(C)"] } END { print n + 0 }' "$work/agents-$1.csv"
}

# Waits (at most 45 s) until every server is quiet: less than 5 % of a
# core over a second (a failed step leaves calls that end later).
wait_quiet() {
    local all c0 c1
    all="$(for n in $systems; do echo "${server_pids[$n]:-}"; done)"
    for _ in $(seq 45); do
        c0="$(cpu_ticks $all)"
        sleep 1
        c1="$(cpu_ticks $all)"
        [[ $((c1 - c0)) -lt $((clk_tck / 20)) ]] && return
    done
    log "  the servers were still busy after 45 s"
}

# Stops (SIGSTOP) the servers of every system but $1 for a step, so that
# one's idle or left-over work is not charged to the other's step on the
# shared core; thaw_others continues them.
freeze_others() {
    local n
    for n in $systems; do
        [[ "$n" == "$1" ]] || kill -STOP ${server_pids[$n]:-} 2>/dev/null || true
    done
}
thaw_others() {
    local n
    for n in $systems; do
        kill -CONT ${server_pids[$n]:-} 2>/dev/null || true
    done
}

# One step: $2 calls/s for step_s seconds to system $1. Prints
# "achieved_rate ok failed cpu_us_per_call gen_cpu_percent rtt_p50 rtt_p99
# agent_calls udp_datagrams_per_call drops(server/generator SIP/generator
# RTP) server_cpu_percent".
run_step() {
    local name="$1" rate="$2" tag="$3" calls c0 c1 g0 g1 t0 t1 u0 u1 a0 a1
    calls=$((rate * step_s))
    rm -f "$work/caller-$tag".*
    freeze_others "$name"
    wait_quiet
    a0="$(agent_calls "$name")"
    socket_drops >"$work/drops-$tag.before"
    read -r -a u0 < <(udp_counters)
    c0="$(cpu_ticks ${server_pids[$name]})"
    g0="$(cpu_ticks "${agent_pids[$name]}")"
    t0="$(date +%s.%N)"
    local perf_pid="" sampler
    # Sockets come and go during the step: their drops are sampled (on the
    # generator's core).
    (while :; do socket_drops; sleep 0.5; done) >"$work/drops-$tag.samples" 2>/dev/null &
    sampler=$!
    taskset -pc 1 "$sampler" >/dev/null
    if [[ -n "${CALLS_BENCH_PERF:-}" && "$rate" == "${CALLS_BENCH_PERF}" ]]; then
        # Profile the server while the calls are placed and held.
        taskset -c 1 perf record -F 499 -g -o "$work/perf-$tag.data" \
            -p "$(for p in ${server_pids[$name]}; do echo "$p"; ps --ppid "$p" -o pid=; done | awk 'NF { printf "%s%s", sep, $1; sep = "," }')" -- sleep $((step_s + 2)) \
            >"$work/perf-$tag.out" 2>&1 &
        perf_pid=$!
    fi
    (cd "$work" && /usr/bin/time -f '%U %S' -o "$work/caller-$tag.time" \
        timeout $((step_s + 60)) taskset -c 1 sipp "${addr[$name]}" -sf "$root/benches/sipp/caller.xml" \
        -inf "$work/calls.csv" -i "$caller_ip" -p 5080 -mp 8000 -cp 18874 -t u1 \
        -d "$hold_ms" -r "$rate" -m "$calls" -l 1000000 -recv_timeout 10000 \
        -buff_size "$buffer" -rtp_buffsize "$buffer" \
        -nostdin -trace_stat -stf "$work/caller-$tag.csv" -fd 200ms \
        -trace_rtt -rtt_freq 1 -trace_err -error_file "$work/caller-$tag.errors" \
        >"$work/caller-$tag.out" 2>&1) || true
    [[ -z "$perf_pid" ]] || wait "$perf_pid" || true
    sleep 1
    t1="$(date +%s.%N)"
    c1="$(cpu_ticks ${server_pids[$name]})"
    g1="$(cpu_ticks "${agent_pids[$name]}")"
    read -r -a u1 < <(udp_counters)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    socket_drops >>"$work/drops-$tag.samples"
    a1="$(agent_calls "$name")"
    thaw_others
    local sockets
    sockets="$(drops_between "$work/drops-$tag.before" "$work/drops-$tag.samples" | tr ' ' '/')"
    local rtt
    rtt="$(ls "$work"/caller_*_rtt.csv 2>/dev/null | head -1 || true)"
    local p50=n/a p99=n/a
    if [[ -n "$rtt" ]]; then
        read -r p50 p99 < <(awk -F';' 'NR > 1 && $3 == 1 { print $2 }' "$rtt" | sort -n | awk '
            function at(q,   i) { i = int(NR * q + 0.5); if (i < 1) i = 1; return v[i] }
            { v[NR] = $1 }
            END { if (NR) printf "%.1f %.1f\n", at(0.5), at(0.99); else print "n/a n/a" }')
        mv "$rtt" "$work/caller-$tag.rtt.csv"
    fi
    awk -F';' -v calls="$calls" -v c="$((c1 - c0))" -v g="$((g1 - g0))" -v hz="$clk_tck" \
        -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        -v gen="$(cat "$work/caller-$tag.time" 2>/dev/null | tail -1)" -v p50="$p50" -v p99="$p99" \
        -v agent="$((a1 - a0))" -v udp="$((u1[0] - u0[0]))" -v drops="$sockets" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            split($col["CurrentTime"], t, "\t"); ts = t[3] + 0
            created = $col["OutgoingCall(C)"] + 0
            if (first == "" && created > 0) { first = ts; first_n = created }
            if (placed_at == "" && created >= calls) placed_at = ts
            ok = $col["SuccessfulCall(C)"] + 0; failed = $col["FailedCall(C)"] + 0
        }
        END {
            split(gen, u, " ")
            rate = (placed_at > first) ? (calls - first_n) / (placed_at - first) : 0
            cpu = ok ? c * 1e6 / hz / ok : 0
            printf "%.1f %d %d %.0f %.0f %s %s %d %.0f %s %.0f\n", rate, ok, failed, cpu, (u[1] + u[2] + g / hz) * 100 / wall,
                p50, p99, agent, ok ? udp / ok : 0, drops, c * 100 / hz / wall
        }' "$work/caller-$tag.csv"
}

# A Prometheus histogram's cumulative buckets from /metrics: "le count" lines.
buckets() {
    curl -sS "$admin_url/metrics" | awk -v name="$1" -v filter="$2" '
        index($0, name "_bucket{") == 1 && index($0, filter) {
            match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
            print (le == "+Inf" ? "inf" : le), $NF
        }'
}

# Quantiles q1 q2 (0-1) of the difference of two bucket dumps (after,
# before), interpolated inside a bucket as Prometheus' histogram_quantile
# does; in ms. Prints "count q1_ms q2_ms".
quantiles() {
    join <(sort "$2") <(sort "$1") | sort -g | awk -v q1="$3" -v q2="$4" '
        { le[NR] = $1; n[NR] = $3 - $2 }
        END {
            total = n[NR]
            if (total == 0) { print "0 n/a n/a"; exit }
            printf "%d", total
            split(q1 " " q2, qs, " ")
            for (k = 1; k <= 2; k++) {
                rank = qs[k] * total; lower = 0; below = 0
                for (i = 1; i <= NR; i++) {
                    if (n[i] >= rank) {
                        if (le[i] == "inf") { printf " >%.2f", lower * 1000; break }
                        share = (n[i] > below) ? (rank - below) / (n[i] - below) : 1
                        printf " %.2f", (lower + (le[i] - lower) * share) * 1000
                        break
                    }
                    lower = le[i]; below = n[i]
                }
            }
            print ""
        }'
}

declare -A addr server_pids agent_pids system_rates
for name in $systems; do
    var="CALLS_BENCH_RATES_${name^^}"
    system_rates[$name]="${!var-$rates}"
done
# ---------------------------------------------------------------- Carillon
start_carillon() {
    log "starting the Carillon demo on $carillon_ip (core 0)"
    mkdir -p "$work/carillon"
    taskset -c 0 "$bin" demo --dir "$work/carillon" \
        --admin-addr "$carillon_ip:18481" --raft-addr "$carillon_ip:18482" \
        --sip-addr "$carillon_ip:5060" --ws-addr "$carillon_ip:0" --rtp-ports 20000-39999 \
        --sip-tls-addr "$carillon_ip:5061" --wss-addr "$carillon_ip:0" --https-addr "$carillon_ip:0" \
        --sip-option rate_per_second=1000000 --sip-option burst=1000000 \
        >"$work/carillon.out" 2>"$work/carillon.log" &
    carillon_pid=$!
    pids+=("$carillon_pid")
    for _ in $(seq 600); do
        [[ -s "$work/carillon/demo.json" ]] && jq -e .tenant_id "$work/carillon/demo.json" >/dev/null 2>&1 && break
        kill -0 "$carillon_pid" 2>/dev/null || { cat "$work/carillon.log" >&2; exit 1; }
        sleep 0.1
    done
    demo="$work/carillon/demo.json"
    admin_url="$(jq -r .admin_url "$demo")"
    tenant="$(jq -r .tenant_id "$demo")"
    [[ "$(jq -r .sip_domain "$demo")" == "$domain" ]] || { echo "the demo's SIP domain is not $domain" >&2; exit 1; }
    queue="$(jq -r --arg d "$did" '.queues[] | select(.dids | index($d)) | .id' "$demo")"
    [[ -n "$queue" ]] || { echo "no demo queue has the DID $did" >&2; exit 1; }
    admin="$(login admin)"
    operator="$(login operator)"
    base="/api/v1/tenants/$tenant"

    log "the queue of $did: longest idle, early media, no after-call work, no recording"
    spec="$(api GET "$base/queues/$queue" "$admin" | jq -c 'del(.id) | .strategy = {kind: "longest_idle"}
        | .required_skills = [] | .relaxations = [] | .wrap_up_s = 0 | .answer = "early_media"
        | .recording = "off" | .announce_position = false | .announce_estimated_wait = false
        | .callbacks_enabled = false | .periodic_announcement = null')"
    api PUT "$base/queues/$queue" "$admin" "$spec" | jq -e '.id' >/dev/null ||
        { echo "the queue's settings were refused" >&2; exit 1; }

    log "adding $agents agents (user, voice licence, SIP phone) through the admin API"
    api POST "$base/licences/purchases" "$operator" "{\"kind\": \"voice\", \"count\": $agents}" >/dev/null
    api POST "$base/licences/device-packages" "$operator" "{\"count\": $((agents / 10 + 1))}" >/dev/null
    export admin_url base admin queue
    # Eight at a time: each is a replicated ledger write.
    seq "$agents" | xargs -P 8 -I{} bash -c '
        set -euo pipefail
        n=$1
        call() {
            local code
            code=$(curl -sS -o "$2.json" -w "%{http_code}" -X POST "$admin_url$base/$1" \
                -H "authorization: Bearer $admin" -H "content-type: application/json" -d "$3")
            [[ "$code" == 20? ]] || { echo "agent $n: $1: HTTP $code $(cat "$2.json")" >&2; exit 255; }
        }
        tmp=$(mktemp)
        call users "$tmp" "{\"kind\": \"contact_centre\", \"roles\": [\"agent\"], \"full_name\": \"Bench Agent $n\", \"login\": \"bench.agent.$n\", \"panel_access\": true, \"login_queues\": [$queue]}"
        user=$(jq -r .id "$tmp.json")
        call licences/assignments "$tmp" "{\"user\": $user, \"kind\": \"voice\"}"
        call devices "$tmp" "{\"kind\": \"sip_phone\", \"name\": \"agent$n\", \"owner\": $user, \"sip_username\": \"agent$n\", \"short_number\": \"$((7000 + n))\", \"sip_password\": \"Agent-Phone-$n!\"}"
        echo "$user $(jq -r .id "$tmp.json")"
        rm -f "$tmp" "$tmp.json"
    ' _ {} >"$work/carillon-agents.txt"
    [[ "$(wc -l <"$work/carillon-agents.txt")" == "$agents" ]] || { echo "not every agent was created" >&2; exit 1; }

    log "registering the agents' phones to Carillon"
    start_agents "$carillon_ip:5060" 127.0.0.84 7000 carillon 18871
    agent_pids[carillon]="$agent_pid"
    for _ in $(seq 300); do
        online="$(api GET "$base/extensions" "$admin" | jq '[.[] | select(.state == "online")] | length')"
        [[ "$online" -ge "$agents" ]] && break
        sleep 0.2
    done
    [[ "$online" -ge "$agents" ]] || { echo "only $online of $agents phones online" >&2; exit 1; }

    log "logging the agents in (checked in to the queue at login)"
    xargs -P 8 -L 1 bash -c '
        code=$(curl -sS -o /dev/null -w "%{http_code}" -X POST "$admin_url$base/users/$0/session/login" \
            -H "authorization: Bearer $admin" -H "content-type: application/json" -d "{\"terminal\": \"phone-$1\"}")
        [[ "$code" == 200 ]] || { echo "login of user $0: HTTP $code" >&2; exit 255; }
    ' <"$work/carillon-agents.txt"
    addr[carillon]="$carillon_ip:5060"
    server_pids[carillon]="$carillon_pid"
}

login() {
    local password token
    password="$(jq -r --arg l "$1" '.users[] | select(.login == $l) | .password' "$demo")"
    for _ in $(seq 50); do
        token="$(curl -sS -X POST "$admin_url/api/v1/auth/login" -H 'content-type: application/json' \
            -d "$(jq -nc --arg l "$1" --arg p "$password" '{login: $l, password: $p}')" | jq -r '.token // empty')" || true
        [[ -n "$token" ]] && { echo "$token"; return; }
        sleep 0.2
    done
    echo "cannot log in as $1" >&2
    exit 1
}

# Admin API call: method path token [json]
api() {
    local args=(-sS -X "$1" "$admin_url$2" -H "authorization: Bearer $3")
    if [[ $# -ge 4 ]]; then
        args+=(-H 'content-type: application/json' -d "$4")
    fi
    curl "${args[@]}"
}

# ---------------------------------------------------------------- Kamailio
start_kamailio() {
    local dir="$work/kamailio"
    mkdir -p "$dir"
    cp "$root/benches/kamailio/calls.cfg" "$work/creds.cfg" "$dir/"
    log "starting rtpengine on $rtpengine_ip (core 0, userspace, one thread)"
    taskset -c 0 rtpengine --config-file=none --foreground --log-stderr --log-level=4 \
        --table=-1 --num-threads=1 --interface="$rtpengine_ip" --listen-ng="$rtpengine_ip:22222" \
        --port-min=40000 --port-max=59999 --delete-delay=0 --timeout=60 \
        >"$work/rtpengine.log" 2>&1 &
    rtpengine_pid=$!
    pids+=("$rtpengine_pid")
    log "starting Kamailio on $kamailio_ip (core 0, $kamailio_workers UDP workers)"
    (cd "$dir" && exec taskset -c 0 kamailio -f "$dir/calls.cfg" -A "CTLSOCK=\"unix:$dir/ctl\"" \
        -A "RTPENGINE=\"udp:$rtpengine_ip:22222\"" -A "DID=\"$did\"" -A "AGENTS=$agents" \
        -l "udp:$kamailio_ip:5060" -n "$kamailio_workers" -m 1024 -M 16 -DD -E -w "$dir" \
        >"$dir/kamailio.log" 2>&1) &
    kamailio_pid=$!
    pids+=("$kamailio_pid")
    for _ in $(seq 100); do
        [[ -S "$dir/ctl" ]] && kamcmd -s "unix:$dir/ctl" core.version >/dev/null 2>&1 && break
        kill -0 "$kamailio_pid" 2>/dev/null || { cat "$dir/kamailio.log" >&2; exit 1; }
        sleep 0.1
    done
    kill -0 "$rtpengine_pid" 2>/dev/null || { cat "$work/rtpengine.log" >&2; exit 1; }
    log "registering the agents' phones to Kamailio"
    start_agents "$kamailio_ip:5060" 127.0.0.85 7100 kamailio 18872
    agent_pids[kamailio]="$agent_pid"
    local registered
    registered="$(kamcmd -s "unix:$dir/ctl" stats.get_statistics usrloc: | awk '$1 == "usrloc:location_users" { print $3 }')"
    [[ "$registered" == "$agents" ]] || { echo "Kamailio holds $registered of $agents agents" >&2; exit 1; }
    addr[kamailio]="$kamailio_ip:5060"
    server_pids[kamailio]="$kamailio_pid $rtpengine_pid"
}

for name in $systems; do
    case "$name" in
        carillon) start_carillon ;;
        kamailio) start_kamailio ;;
        *) echo "unknown system $name" >&2; exit 1 ;;
    esac
done

# Idle CPU of each server (keepalives, timers, heartbeats), 5 s.
declare -A idle
for name in $systems; do
    c0="$(cpu_ticks ${server_pids[$name]})"
    sleep 5
    c1="$(cpu_ticks ${server_pids[$name]})"
    idle[$name]="$(awk -v t=$((c1 - c0)) -v hz="$clk_tck" 'BEGIN { printf "%.1f", t * 100 / hz / 5 }')"
    log "$name idle: ${idle[$name]} % of a core"
done

# Warm-up: 40 calls at 10/s each, not counted.
for name in $systems; do
    log "warm-up: $name, 40 calls at 10/s"
    saved_step="$step_s"
    step_s=4
    read -r _ ok failed _ < <(run_step "$name" 10 "warmup-$name")
    step_s="$saved_step"
    log "  $ok ok, $failed failed"
    [[ "$ok" -ge 39 ]] || { echo "$name: the warm-up calls failed; see $work (CALLS_BENCH_KEEP=1 keeps it)" >&2; tail -20 "$work/caller-warmup-$name.out" >&2; exit 1; }
done

# ---------------------------------------------------------------- latency
declare -A lat_runs lat_all
latency_rows=""
if [[ " $systems " == *" carillon "* && -n "$latency_steps" ]]; then
    metric=carillon_queue_offer_latency_seconds
    for round in $(seq "$runs"); do
        for pair in $latency_steps; do
            rate="${pair%%:*}"
            seconds="${pair##*:}"
            tag="latency-$rate-$round"
            buckets "$metric" "" >"$work/$tag.before"
            buckets carillon_raft_request_duration_seconds 'kind="write"' >"$work/$tag.raft-before"
            saved_step="$step_s"
            step_s="$seconds"
            read -r achieved ok failed _ _ rp50 rp99 _ < <(run_step carillon "$rate" "$tag")
            step_s="$saved_step"
            buckets "$metric" "" >"$work/$tag.after"
            buckets carillon_raft_request_duration_seconds 'kind="write"' >"$work/$tag.raft-after"
            read -r count p50 p99 < <(quantiles "$work/$tag.after" "$work/$tag.before" 0.5 0.99)
            read -r wcount wp50 wp99 < <(quantiles "$work/$tag.raft-after" "$work/$tag.raft-before" 0.5 0.99)
            log "latency round $round, $rate calls/s: $count offers, p50 $p50 ms, p99 $p99 ms (ledger writes: $wcount, p50 $wp50 ms, p99 $wp99 ms); $ok ok, $failed failed"
            lat_runs[$rate]+="$p50/$p99 "
            latency_rows+="| $rate | $round | $achieved | $ok / $failed | $count | $p50 | $p99 | $wcount | $wp50 | $wp99 | $rp50 | $rp99 |
"
            # Pooled over the runs: the sum of the differences.
            if [[ -f "$work/latency-$rate.pool" ]]; then
                join <(sort "$work/latency-$rate.pool") <(join <(sort "$work/$tag.before") <(sort "$work/$tag.after")) |
                    awk '{ print $1, $2 + $4 - $3 }' >"$work/latency-$rate.pool.new"
                mv "$work/latency-$rate.pool.new" "$work/latency-$rate.pool"
            else
                join <(sort "$work/$tag.before") <(sort "$work/$tag.after") | awk '{ print $1, $3 - $2 }' >"$work/latency-$rate.pool"
            fi
        done
    done
    awk '{ print $1, 0 }' "$work/latency-${latency_steps%%:*}.pool" >"$work/zero.pool"
fi

# ---------------------------------------------------------------- load
declare -A best cpu_at_best cpu_at_rate passes_at_rate
step_rows=""
for round in $(seq "$runs"); do
    for name in $systems; do
        passed=""
        for rate in ${system_rates[$name]}; do
            log "round $round: $name, $rate calls/s for $step_s s"
            tag="$name-$round-$rate"
            if [[ "$name" == carillon ]]; then
                buckets carillon_queue_offer_latency_seconds "" >"$work/$tag.offers-before"
                buckets carillon_raft_request_duration_seconds 'kind="write"' >"$work/$tag.raft-before"
            fi
            read -r achieved ok failed cpu gen rp50 rp99 answered udp drops busy < <(run_step "$name" "$rate" "$tag")
            stages="- | - | - | -"
            if [[ "$name" == carillon ]]; then
                buckets carillon_queue_offer_latency_seconds "" >"$work/$tag.offers-after"
                buckets carillon_raft_request_duration_seconds 'kind="write"' >"$work/$tag.raft-after"
                read -r _ op50 op99 < <(quantiles "$work/$tag.offers-after" "$work/$tag.offers-before" 0.5 0.99)
                read -r _ wp50 wp99 < <(quantiles "$work/$tag.raft-after" "$work/$tag.raft-before" 0.5 0.99)
                stages="$op50 | $op99 | $wp50 | $wp99"
            fi
            calls=$((rate * step_s))
            verdict="$(awk -v ok="$ok" -v n="$calls" 'BEGIN { print (ok >= 0.999 * n) ? "pass" : "FAIL" }')"
            log "  achieved $achieved calls/s, $ok ok, $failed failed of $calls ($answered answered by the agents): $verdict; server CPU $cpu us per call, $busy % of core 0; generator $gen % of core 1; INVITE->200 p50 $rp50 ms p99 $rp99 ms; queue entry -> agent INVITE p50 | p99 | ledger write p50 | p99 (ms): $stages; $udp UDP datagrams received per call; receive drops at the servers / SIPp SIP / SIPp RTP sockets $drops"
            step_rows+="| $name | $round | $rate | $achieved | $ok / $failed | $answered | $verdict | $cpu | $busy | $gen | $rp50 | $rp99 | $stages | $udp | $drops |
"
            if [[ "$verdict" == pass ]]; then
                passed="$achieved $cpu"
                cpu_at_rate["$name $rate"]+="$cpu "
                passes_at_rate["$name $rate"]=$((${passes_at_rate["$name $rate"]:-0} + 1))
            else
                break
            fi
        done
        read -r b c <<<"${passed:-0 n/a}"
        best[$name]+="$b "
        cpu_at_best[$name]+="$c "
    done
done

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "n/a" }'; }
cpu_model="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
machine="Machine: $(nproc) cores, $cpu_model; $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg).
$(kamailio -v | head -1 | sed 's/^version: //'); rtpengine $(rtpengine --version 2>&1 | head -1 | sed 's/^Version: //'); $(sipp -v 2>&1 | awk '/SIPp v/ { print $1, $2; exit }'); $(rustc --version)."
command="Command: \`benches/calls_vs_kamailio.sh\` with CALLS_BENCH_RATES=\"$rates\"$(for n in $systems; do [[ "${system_rates[$n]}" == "$rates" ]] || echo -n " CALLS_BENCH_RATES_${n^^}=\"${system_rates[$n]}\""; done) CALLS_BENCH_RUNS=$runs CALLS_BENCH_STEP_S=$step_s CALLS_BENCH_HOLD_MS=$hold_ms CALLS_BENCH_AGENTS=$agents CALLS_BENCH_SYSTEMS=\"$systems\" CALLS_BENCH_LATENCY=\"$latency_steps\" CALLS_BENCH_KAMAILIO_WORKERS=$kamailio_workers."

# Replaces the part of $out between the markers named $1 with file $2
# (appends it when the markers are not there yet).
replace_part() {
    local part="$1" file="$2"
    if [[ -f "$out" ]] && grep -q "<!-- $part:begin" "$out"; then
        awk -v gen="$file" -v part="$part" '
            index($0, "<!-- " part ":begin") { while ((getline line < gen) > 0) print line; skip = 1; next }
            index($0, "<!-- " part ":end") { skip = 0; next }
            !skip' "$out" >"$out.new"
        mv "$out.new" "$out"
    else
        cat "$file" >>"$out"
    fi
    sed -n "/<!-- $part:begin/,/<!-- $part:end/p" "$out"
}

if [[ -n "$step_rows" ]]; then
    declare -A med_best med_cpu med_common
    table="| system | highest calls/s with >= 99.9 % success (median) | per run | server CPU per call at that rate, us (median) | per run | idle CPU, % of a core |
| --- | ---: | --- | ---: | --- | ---: |
"
    for name in $systems; do
        med_best[$name]="$(tr ' ' '\n' <<<"${best[$name]}" | awk 'NF' | median)"
        med_cpu[$name]="$(tr ' ' '\n' <<<"${cpu_at_best[$name]}" | awk 'NF && $1 != "n/a"' | median)"
        table+="| $name | ${med_best[$name]} | ${best[$name]}| ${med_cpu[$name]} | ${cpu_at_best[$name]}| ${idle[$name]} |
"
    done
    generated="$(mktemp)"
    {
        echo "<!-- capacity:begin (benches/calls_vs_kamailio.sh rewrites this part) -->"
        echo "### Calls per second: latest run $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "$command"
        echo
        if [[ " $systems " == *" carillon "* && " $systems " == *" kamailio "* ]]; then
            echo "**Carillon / Kamailio+rtpengine, calls/s at >= 99.9 % success: $(ratio "${med_best[carillon]}" "${med_best[kamailio]}").** Server CPU per call at each one's highest passing rate, Kamailio+rtpengine / Carillon (above 1 means Carillon spends less): $(ratio "${med_cpu[kamailio]}" "${med_cpu[carillon]}")."
            echo
        fi
        echo "$table"
        # The highest rate every system passed in every run: CPU per call
        # there, where neither is past its limit.
        common=""
        for rate in $(tr ' ' '\n' <<<"${system_rates[*]}" | awk 'NF' | sort -n | uniq); do
            all=1
            for name in $systems; do
                [[ "${passes_at_rate["$name $rate"]:-0}" == "$runs" ]] || all=0
            done
            [[ "$all" == 1 ]] && common="$rate"
        done
        if [[ -n "$common" ]]; then
            line="Server CPU per call at $common calls/s asked, the highest rate every system passed in every run (median of the runs):"
            for name in $systems; do
                med_common[$name]="$(tr ' ' '\n' <<<"${cpu_at_rate["$name $common"]}" | awk 'NF' | median)"
                line+=" $name ${med_common[$name]} us (${cpu_at_rate["$name $common"]% });"
            done
            if [[ " $systems " == *" carillon "* && " $systems " == *" kamailio "* ]]; then
                line+=" **Kamailio+rtpengine / Carillon: $(ratio "${med_common[kamailio]}" "${med_common[carillon]}")**"
            fi
            echo "${line%;}."
            echo
        fi
        echo "Every step (a run stops at its first failed step; CPU per call is over the calls that succeeded; agents: calls the agents' SIPp completed; server and generator CPU: over the whole step (placing the calls, their last $((hold_ms / 1000)) s, 1 s more), % of one core; generator: both SIPp processes; INVITE -> 200 as the callers saw it, SIPp's whole milliseconds; queue entry -> agent INVITE and ledger writes (Carillon only): its histograms over the step, as in the latency part below; UDP: the machine's datagrams received per successful call over the step, about 300 when the media flows both ways through the relay (2 s x 50 packets/s x 3 hops received by a reader: caller -> relay, relay -> agent, agent -> relay; the fourth, relay -> caller, lands on the callers' RTP socket, which SIPp never reads, so that about 100 per call are dropped there); receive-buffer drops per socket (/proc/net/udp) over the step, at the servers' sockets / SIPp's SIP sockets / SIPp's RTP sockets:"
        echo
        echo "| system | run | calls/s asked | achieved | calls ok / failed | agents | verdict | server CPU per call (us) | server CPU (% of core 0) | generator CPU (% of core 1) | caller INVITE -> 200 p50 (ms) | p99 (ms) | queue entry -> agent INVITE p50 (ms) | p99 (ms) | ledger write p50 (ms) | p99 (ms) | UDP datagrams per call | drops: servers / SIPp SIP / SIPp RTP |"
        echo "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s' "$step_rows"
        echo
        echo "$machine"
        echo "<!-- capacity:end -->"
    } >"$generated"
    replace_part capacity "$generated"
    rm -f "$generated"
fi

if [[ -n "$latency_rows" ]]; then
    pooled="Pooled over the runs (the histograms' differences summed):"
    for pair in $latency_steps; do
        rate="${pair%%:*}"
        read -r count p50 p99 < <(quantiles "$work/latency-$rate.pool" "$work/zero.pool" 0.5 0.99)
        pooled+=" **at $rate calls/s, $count offers, p50 $p50 ms, p99 $p99 ms**;"
    done
    generated="$(mktemp)"
    {
        echo "<!-- latency:begin (benches/calls_vs_kamailio.sh rewrites this part) -->"
        echo "### Queue entry to agent INVITE: latest run $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "$command"
        echo
        echo "${pooled%;}."
        echo
        echo "Each run: Carillon's carillon_queue_offer_latency_seconds, the difference of /metrics before and after it, quantiles interpolated inside buckets as histogram_quantile does; ledger writes: carillon_raft_request_duration_seconds{kind=\"write\"} over the same run (every write, not only the offers'); INVITE -> 200 as the callers saw it (SIPp's whole milliseconds):"
        echo
        echo "| calls/s | run | achieved calls/s | calls ok / failed | offers timed | queue entry -> agent INVITE p50 (ms) | p99 (ms) | ledger writes | write p50 (ms) | write p99 (ms) | caller INVITE -> 200 p50 (ms) | p99 (ms) |"
        echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s' "$latency_rows"
        echo
        echo "$machine"
        echo "<!-- latency:end -->"
    } >"$generated"
    replace_part latency "$generated"
    rm -f "$generated"
fi
log "results written to $out"
