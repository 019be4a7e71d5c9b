#!/usr/bin/env bash
# REGISTER/s with digest authentication, Carillon's SIP edge (one demo node)
# beside Kamailio 5.6 as a registrar with in-memory locations and
# credentials, on the same machine, SIPp as the load; plus memory per
# registration and the SIP codec's parse+print throughput (criterion).
# Servers are pinned to core 0, SIPp to core 1. Writes the generated part
# of benches/SIP_RESULTS.md (between its markers; the rest is kept).
#
# A registration is one full digest exchange: REGISTER, 401, REGISTER with
# MD5 credentials (qop=auth), 200 (benches/sipp/register.xml). Both servers
# hold the same N accounts, answer from one worker on one core, keep a
# transaction per request (retransmissions absorbed) and check nonce
# counts. Each run: SIPp keeps LIMIT registrations in flight (closed loop,
# no rate cap) for SECONDS; the rate is successful registrations/s after a
# 2 s warm-up, a run with a failed call counts as failed, and the table
# shows the median of RUNS runs, servers taken in turn in each round.
#
# Needs Debian's kamailio and sip-tester (scripts/install-deps.sh --bench),
# curl, jq. Honours CARGO_TARGET_DIR (default: ./target). Settings, all
# optional, from the environment:
#   SIP_BENCH_ACCOUNTS (1000)  SIP_BENCH_RUNS (3)  SIP_BENCH_SECONDS (10)
#   SIP_BENCH_LIMIT (100)      SIP_BENCH_OUT (benches/SIP_RESULTS.md)
#   SIP_BENCH_CODEC (1; 0 skips the criterion bench)
#   SIP_BENCH_BUILD (1; 0 uses the carillon binary already built)
#   SIP_BENCH_KEEP (0; 1 keeps the work directory with every log)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
accounts="${SIP_BENCH_ACCOUNTS:-1000}"
runs="${SIP_BENCH_RUNS:-3}"
seconds="${SIP_BENCH_SECONDS:-10}"
limit="${SIP_BENCH_LIMIT:-100}"
out="${SIP_BENCH_OUT:-benches/SIP_RESULTS.md}"
codec="${SIP_BENCH_CODEC:-1}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
domain="demo.carillon.test"
sipp_ip="127.0.0.53"
warmup=2

for tool in kamailio kamcmd sipp taskset curl jq md5sum; do
    command -v "$tool" >/dev/null || {
        echo "$tool is missing: run scripts/install-deps.sh --bench (Debian kamailio, sip-tester, curl, jq)" >&2
        exit 1
    }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/sip-bench.XXXXXX")"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${SIP_BENCH_KEEP:-0}" == 1 ]]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------- build
if [[ "${SIP_BENCH_BUILD:-1}" == 1 ]]; then
    log "building carillon (release)"
    cargo build --release -p carillon-node --bin carillon
fi
bin="$target/release/carillon"

codec_rows=""
if [[ "$codec" == 1 ]]; then
    log "codec micro benchmark (criterion), pinned to core 0"
    taskset -c 0 cargo bench -p carillon-benches --bench sip_codec -- \
        --warm-up-time 1 --measurement-time 4 --noplot >"$work/criterion.txt" 2>&1 ||
        { cat "$work/criterion.txt" >&2; exit 1; }
    for case in register/parse register/print register/parse_print \
        invite_sdp/parse invite_sdp/print invite_sdp/parse_print sdp/parse_print; do
        dir="$target/criterion/$case/new"
        ns="$(jq '.median.point_estimate' "$dir/estimates.json")"
        bytes="$(jq '.throughput.Bytes' "$dir/benchmark.json")"
        codec_rows+="$(awk -v c="$case" -v ns="$ns" -v b="$bytes" 'BEGIN {
            printf "| %s | %d | %.2f | %.0f | %.0f |\n", c, b, ns / 1000, 1e9 / ns, b * 1e3 / ns }')"$'\n'
    done
fi

# ---------------------------------------------------------------- helpers
clk_tck="$(getconf CLK_TCK)"

# CPU ticks (user + system) of a process and its children.
cpu_ticks() {
    local total=0 pid
    for pid in "$1" $(ps --ppid "$1" -o pid= 2>/dev/null); do
        [[ -r /proc/$pid/stat ]] || continue
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

# Proportional set size, KiB, of a process and its children (PSS splits
# Kamailio's shared memory between its processes instead of counting it
# once per process, as RSS would).
pss_kib() {
    local total=0 pid
    for pid in "$1" $(ps --ppid "$1" -o pid= 2>/dev/null); do
        [[ -r /proc/$pid/smaps_rollup ]] || continue
        total=$((total + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")))
    done
    echo "$total"
}

# Kamailio shared memory in use (bytes), through its control socket.
shm_used() {
    kamcmd -s "unix:$1" core.shmmem | awk '/real_used:/ { print $2 }'
}

# Admin API call: method path token [json]
api() {
    local args=(-sS -X "$1" "$admin_url$2" -H "authorization: Bearer $3")
    if [[ $# -ge 4 ]]; then
        args+=(-H 'content-type: application/json' -d "$4")
    fi
    curl "${args[@]}"
}

# Runs SIPp against ip:port from core 1; extra arguments follow.
# Leaves $work/sipp-<tag>.{csv,out}.
run_sipp() {
    local tag="$1" addr="$2"
    shift 2
    rm -f "$work/sipp-$tag.csv"
    (cd "$work" && timeout $((seconds + 60)) taskset -c 1 sipp "$addr" \
        -sf "$root/benches/sipp/register.xml" -inf "$work/accounts.csv" \
        -i "$sipp_ip" -p 0 -t u1 -nostdin -trace_stat -fd 1 -stf "$work/sipp-$tag.csv" \
        "$@" >"$work/sipp-$tag.out" 2>&1) || true
}

# From a SIPp statistics file: rate after warm-up, successful, failed,
# retransmissions (cumulative at the end).
sipp_figures() {
    awk -F';' -v warm="$warmup" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            split($col["CurrentTime"], t, "\t"); ts = t[3] + 0
            s = $col["SuccessfulCall(C)"] + 0
            if (start == "") start = ts
            if (w0 == "" && ts - start >= warm) { w0 = ts; s0 = s }
            last = ts; sl = s; fl = $col["FailedCall(C)"] + 0; rl = $col["Retransmissions(C)"] + 0
        }
        END {
            rate = (last > w0) ? (sl - s0) / (last - w0) : 0
            printf "%.0f %d %d %d\n", rate, sl, fl, rl
        }' "$1"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- Carillon
log "starting the Carillon demo on 127.0.0.51 (core 0)"
mkdir -p "$work/carillon"
taskset -c 0 "$bin" demo --dir "$work/carillon" \
    --admin-addr 127.0.0.51:18451 --raft-addr 127.0.0.51:18452 \
    --sip-addr 127.0.0.51:5060 --ws-addr 127.0.0.51:0 \
    --sip-tls-addr 127.0.0.51:5061 --wss-addr 127.0.0.51:0 --https-addr 127.0.0.51:0 \
    --sip-option rate_per_second=1000000 --sip-option burst=1000000 \
    >"$work/carillon.out" 2>"$work/carillon.log" &
carillon_pid=$!
pids+=("$carillon_pid")
for _ in $(seq 300); do
    [[ -s "$work/carillon/demo.json" ]] && jq -e .tenant_id "$work/carillon/demo.json" >/dev/null 2>&1 && break
    kill -0 "$carillon_pid" 2>/dev/null || { cat "$work/carillon.log" >&2; exit 1; }
    sleep 0.1
done
demo="$work/carillon/demo.json"
admin_url="$(jq -r .admin_url "$demo")"
tenant="$(jq -r .tenant_id "$demo")"
[[ "$(jq -r .sip_domain "$demo")" == "$domain" ]] || { echo "the demo's SIP domain is not $domain" >&2; exit 1; }
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
admin="$(login admin)"
operator="$(login operator)"
base="/api/v1/tenants/$tenant"
api POST "$base/licences/device-packages" "$operator" "{\"count\": $((accounts / 10 + 2))}" >/dev/null

log "creating $accounts SIP accounts (Carillon's ledger, Kamailio's htable)"
: >"$work/devices.txt"
echo SEQUENTIAL >"$work/accounts.csv"
{
    echo "# Written by benches/sip_vs_kamailio.sh: username => HA1 (MD5)."
    echo "event_route[htable:mod-init] {"
} >"$work/creds.cfg"
for n in $(seq "$accounts"); do
    user="$(printf 'bench-%05d' "$n")"
    password="$(printf 'Bench-Pass-%05d!' "$n")"
    jq -nc --arg u "$user" --arg p "$password" --arg s "$((5000 + n))" \
        '{kind: "sip_phone", name: $u, sip_username: $u, short_number: $s, sip_password: $p}' >>"$work/devices.txt"
    echo "$user;[authentication username=$user password=$password];$domain;" >>"$work/accounts.csv"
    ha1="$(printf '%s' "$user:$domain:$password" | md5sum | cut -d' ' -f1)"
    printf '\t$sht(creds=>%s) = "%s";\n' "$user" "$ha1" >>"$work/creds.cfg"
done
echo "}" >>"$work/creds.cfg"
export admin_url base admin
# Four at a time: each is a replicated ledger write.
tr '\n' '\0' <"$work/devices.txt" | xargs -0 -P 4 -I{} sh -c \
    'code=$(curl -sS -o /dev/null -w "%{http_code}" -X POST "$admin_url$base/devices" -H "authorization: Bearer $admin" -H "content-type: application/json" -d "$1"); [ "$code" = 201 ] || { echo "device: HTTP $code for $1" >&2; exit 255; }' _ {}

# ---------------------------------------------------------------- Kamailio
# name ip workers stateful(1/0)
kamailio_variants=(
    "kamailio-c1 127.0.0.52 1 1"
    "kamailio-c2 127.0.0.54 2 1"
    "kamailio-c1-stateless 127.0.0.55 1 0"
)
declare -A addr pid ctl
addr[carillon]="127.0.0.51:5060"
pid[carillon]="$carillon_pid"
targets=(carillon)
for variant in "${kamailio_variants[@]}"; do
    read -r name ip workers stateful <<<"$variant"
    dir="$work/$name"
    mkdir -p "$dir"
    cp "$root/benches/kamailio/registrar.cfg" "$work/creds.cfg" "$dir/"
    defines=(-A "CTLSOCK=\"unix:$dir/ctl\"")
    [[ "$stateful" == 1 ]] && defines+=(-A WITH_TM)
    log "starting $name on $ip (core 0, $workers UDP worker(s))"
    (cd "$dir" && exec taskset -c 0 kamailio -f "$dir/registrar.cfg" "${defines[@]}" \
        -l "udp:$ip:5060" -n "$workers" -m 6144 -M 16 -DD -E -w "$dir" \
        >"$dir/kamailio.log" 2>&1) &
    pid[$name]=$!
    pids+=("${pid[$name]}")
    ctl[$name]="$dir/ctl"
    addr[$name]="$ip:5060"
    targets+=("$name")
done
for name in "${targets[@]:1}"; do
    for _ in $(seq 100); do
        [[ -S "${ctl[$name]}" ]] && kamcmd -s "unix:${ctl[$name]}" core.version >/dev/null 2>&1 && break
        kill -0 "${pid[$name]}" 2>/dev/null || { cat "$work/$name/kamailio.log" >&2; exit 1; }
        sleep 0.1
    done
    loaded="$(kamcmd -s "unix:${ctl[$name]}" htable.stats | awk '/all:/ { print $2; exit }')"
    [[ "$loaded" == "$accounts" ]] || { echo "$name loaded $loaded credentials, not $accounts" >&2; exit 1; }
done

# ---------------------------------------------------------------- memory
# Every account registers once, at a moderate rate, on a server that has
# seen no registration yet.
declare -A pss0 pss1 pss2 shm0 shm1 shm2
sleep 2
for name in "${targets[@]}"; do
    pss0[$name]="$(pss_kib "${pid[$name]}")"
    [[ "$name" == carillon ]] || shm0[$name]="$(shm_used "${ctl[$name]}")"
    log "memory: $name registers each of the $accounts accounts once"
    run_sipp "fill-$name" "${addr[$name]}" -m "$accounts" -r 2000 -l 100 -timeout 60s
    read -r _ ok failed _ < <(sipp_figures "$work/sipp-fill-$name.csv")
    if [[ "$ok" != "$accounts" || "$failed" != 0 ]]; then
        echo "$name: $ok of $accounts registrations succeeded ($failed failed):" >&2
        tail -40 "$work/sipp-fill-$name.out" >&2
        exit 1
    fi
    sleep 1
    pss1[$name]="$(pss_kib "${pid[$name]}")"
    [[ "$name" == carillon ]] || shm1[$name]="$(shm_used "${ctl[$name]}")"
done
log "waiting 35 s for the registrations' transactions to end (Timer J 32 s)"
sleep 35
for name in "${targets[@]}"; do
    pss2[$name]="$(pss_kib "${pid[$name]}")"
    [[ "$name" == carillon ]] || shm2[$name]="$(shm_used "${ctl[$name]}")"
done

# ---------------------------------------------------------------- load
declare -A rates cpus fails retrans
for round in $(seq "$runs"); do
    for name in "${targets[@]}"; do
        log "round $round: $name, $seconds s, $limit in flight"
        c0="$(cpu_ticks "${pid[$name]}")"
        run_sipp "$name-$round" "${addr[$name]}" -r 1000000 -l "$limit" -timeout "${seconds}s"
        c1="$(cpu_ticks "${pid[$name]}")"
        read -r rate ok failed re < <(sipp_figures "$work/sipp-$name-$round.csv")
        cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$clk_tck" -v n="$ok" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
        log "  $rate registrations/s, $ok ok, $failed failed, $re retransmissions, $cpu_us us CPU each"
        if [[ "$failed" != 0 || "$ok" == 0 ]]; then
            fails[$name]=$((${fails[$name]:-0} + 1))
        else
            rates[$name]+="$rate "
            cpus[$name]+="$cpu_us "
        fi
        retrans[$name]=$((${retrans[$name]:-0} + re))
    done
done

# ---------------------------------------------------------------- report
baseline="kamailio-c1"
declare -A med_rate med_cpu
for name in "${targets[@]}"; do
    med_rate[$name]="$(tr ' ' '\n' <<<"${rates[$name]:-}" | awk 'NF' | median)"
    med_cpu[$name]="$(tr ' ' '\n' <<<"${cpus[$name]:-}" | awk 'NF' | median)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "n/a" }'; }
per_reg() { awk -v a="$1" -v b="$2" -v n="$accounts" -v k="$3" 'BEGIN { printf "%.0f", (b - a) * k / n }'; }

table="| server | REGISTER/s (median) | runs (REGISTER/s) | failed runs | retransmissions | server CPU per registration (us) | PSS per registration, 1 s / 35 s after (bytes) | Kamailio shm per registration, 1 s / 35 s after (bytes) |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |
"
for name in "${targets[@]}"; do
    shm="-"
    if [[ "$name" != carillon ]]; then
        shm="$(per_reg "${shm0[$name]}" "${shm1[$name]}" 1) / $(per_reg "${shm0[$name]}" "${shm2[$name]}" 1)"
    fi
    table+="| $name | ${med_rate[$name]} | ${rates[$name]:-none} | ${fails[$name]:-0} | ${retrans[$name]} | ${med_cpu[$name]} | $(per_reg "${pss0[$name]}" "${pss1[$name]}" 1024) / $(per_reg "${pss0[$name]}" "${pss2[$name]}" 1024) | $shm |
"
done
rate_ratio="$(ratio "${med_rate[carillon]}" "${med_rate[$baseline]}")"
cpu_ratio="$(ratio "${med_cpu[$baseline]}" "${med_cpu[carillon]}")"

cpu_model="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
generated="$(mktemp)"
{
    echo "<!-- generated:begin (benches/sip_vs_kamailio.sh rewrites this part) -->"
    echo "## Latest run: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`benches/sip_vs_kamailio.sh\` with SIP_BENCH_ACCOUNTS=$accounts SIP_BENCH_RUNS=$runs SIP_BENCH_SECONDS=$seconds SIP_BENCH_LIMIT=$limit."
    echo
    echo "**Carillon / Kamailio (baseline $baseline), REGISTER/s: $rate_ratio.** Server CPU per registration, Kamailio / Carillon (above 1 means Carillon spends less): $cpu_ratio."
    echo
    echo "$table"
    if [[ -n "$codec_rows" ]]; then
        echo "SIP codec (criterion, median, one thread on core 0):"
        echo
        echo "| case | bytes | us per message | messages/s | MB/s |"
        echo "| --- | ---: | ---: | ---: | ---: |"
        printf '%s' "$codec_rows"
        echo
    fi
    echo "Machine: $(nproc) cores, $cpu_model; $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "$(kamailio -v | head -1 | sed 's/^version: //'); $(sipp -v 2>&1 | awk '/SIPp v/ { print $1, $2; exit }'); $(rustc --version)."
    echo "<!-- generated:end -->"
} >"$generated"
if [[ -f "$out" ]] && grep -q '<!-- generated:begin' "$out"; then
    awk -v gen="$generated" '
        /<!-- generated:begin/ { while ((getline line < gen) > 0) print line; skip = 1; next }
        /<!-- generated:end/ { skip = 0; next }
        !skip' "$out" >"$out.new"
    mv "$out.new" "$out"
else
    cp "$generated" "$out"
fi
rm -f "$generated"
cat "$out" | sed -n '/generated:begin/,/generated:end/p'
log "results written to $out"
