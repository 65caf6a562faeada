#!/usr/bin/env bash
# Accord's benchmarks in one run, side by side on loopback (docs/PERFORMANCE.md):
#   1. an agent's Holder.Disclose called directly (one hop, the physical limit);
#   2. the same call relayed by nginx grpc_pass, mutual TLS on both sides;
#   3. the same query through accord-gateway, with policy and durable audit;
# each at concurrency 1 and 64, plus, to separate the gateway's own cost from
# the disk's, a second gateway whose audit log is on tmpfs (same code and
# fsyncs, but fsync costs nothing there), and the disk's fsync latency.
# Then HTTP/2 rapid reset against the gateway (tests/h2-attack as one
# organisation, resetting streams over connection after connection) while
# another organisation queries at 5 a second with 5 s deadlines: its success
# rate, the gateway's peak memory and what the attack cost the audit log.
# Then one statistics run over 10 agents of 100,000 engagements each
# (bench/statistics.sh, its own partnership on ports base + 1000). Then the
# micro-benchmarks (policy_bench, audit_bench, agent_bench when built). Every
# figure is printed as `BENCH <name> <value> <unit>`.
#
#   bench/run.sh [--quick] [--no-build] [--no-micro] [--no-stats]
#
# --quick     a short smoke run (few subjects, 2 s per measurement)
# --no-build  use the programs already in build/bin
# --no-micro  skip the micro-benchmarks
# --no-stats  skip the statistics benchmark (writing its stores takes a minute)
# Environment: ACCORD_BENCH_PORT_BASE (default 27000; the demo uses 17xxx),
# ACCORD_BENCH_DIR (default build/bench-run), ACCORD_BENCH_DURATION and
# ACCORD_BENCH_WARMUP (seconds per measurement), ACCORD_BENCH_FLOOD_SECONDS (the
# refused flood; default 60, 5 with --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
build=1
micro=1
stats=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --no-micro) micro=0 ;;
    --no-stats) stats=0 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if ((quick)); then
  subjects=300 duration=${ACCORD_BENCH_DURATION:-2} warmup=${ACCORD_BENCH_WARMUP:-1}
else
  subjects=3000 duration=${ACCORD_BENCH_DURATION:-15} warmup=${ACCORD_BENCH_WARMUP:-3}
fi
base=${ACCORD_BENCH_PORT_BASE:-27000}
# accordctl names the person acting on every call (docs/AGENT.md).
export ACCORD_USER="${ACCORD_USER:-bench}" ACCORD_ROLE="${ACCORD_ROLE:-it-lead}"
gateway_port=$((base + 443))
nginx_port=$((base + 444))
tmpfs_gateway_port=$((base + 445))
holder_port=$((base + 501))
local_port=$((base + 601))
holder=womens-centre
requester=police
cores=$(nproc)

say() { printf '\n== %s\n' "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

# --- build ------------------------------------------------------------------
has_agent_bench=0
grep -q "agent_bench" agent/CMakeLists.txt 2>/dev/null && has_agent_bench=1
if ((build)); then
  say "Building (RelWithDebInfo, -DACCORD_BENCH=ON)"
  targets="accord-gateway accord-agent accordctl loadgen h2-attack"
  ((stats)) && targets+=" stats_fixture"
  ((micro)) && targets+=" policy_bench audit_bench"
  ((micro && has_agent_bench)) && targets+=" agent_bench"
  ACCORD_BUILD_TARGETS="$targets" scripts/build.sh -DACCORD_BENCH=ON >&2
fi
bin="$root/build/bin"
for p in accord-gateway accord-agent accordctl loadgen h2-attack; do
  [[ -x "$bin/$p" ]] || die "$bin/$p is missing; run without --no-build"
done

# --- nginx ------------------------------------------------------------------
nginx_bin=$(command -v nginx || true)
if [[ -z "$nginx_bin" && -x /usr/sbin/nginx ]]; then nginx_bin=/usr/sbin/nginx; fi
if [[ -z "$nginx_bin" ]]; then
  say "Installing Debian's nginx (nginx-light)"
  if [[ $EUID -eq 0 ]]; then
    apt-get install -y nginx-light >&2 || { apt-get update >&2 && apt-get install -y nginx-light >&2; }
  else
    sudo apt-get install -y nginx-light >&2
  fi
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
fi

# --- a fresh partnership on loopback ----------------------------------------
for port in $gateway_port $nginx_port $tmpfs_gateway_port $holder_port $local_port; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is in use; set ACCORD_BENCH_PORT_BASE to another base"
  fi
done
run=${ACCORD_BENCH_DIR:-$root/build/bench-run}
rm -rf "$run"
mkdir -p "$run/state" "$run/logs" "$run/keys" "$run/nginx"
chmod 700 "$run" "$run/keys"
ex=deploy/examples
sed -E "s/127\.0\.0\.1:17([0-9]{3})/127.0.0.1:$((base / 1000))\1/" \
  "$ex/partnership.textproto" >"$run/partnership.textproto"
cp -r "$ex/agreements" "$run/agreements"
shift_ports() { sed -E "s/127\.0\.0\.1:17([0-9]{3})/127.0.0.1:$((base / 1000))\1/" "$1" >"$2"; }
# The benchmark measures the relay, not the per-organisation rate limit: the
# example's limit is lifted (all the load comes from one organisation).
shift_ports "$ex/config/gateway.textproto" "$run/gateway.textproto.limited"
sed '/^rate_limit /d' "$run/gateway.textproto.limited" >"$run/gateway.textproto"
shift_ports "$ex/config/agent-$holder.textproto" "$run/agent.textproto"
grep -q "127.0.0.1:$gateway_port" "$run/gateway.textproto" || die "gateway port not set"
shm=$(mktemp -d /dev/shm/accord-bench-XXXXXX)
sed -e "s|127.0.0.1:$gateway_port|127.0.0.1:$tmpfs_gateway_port|" \
  -e "s|^audit_db: .*|audit_db: \"$shm/gateway-audit.db\"|" \
  "$run/gateway.textproto" >"$run/gateway-tmpfs.textproto"
grep -q "127.0.0.1:$holder_port" "$run/agent.textproto" || die "holder port not set"

say "Creating a fresh PKI (deploy/pki/make-pki.sh) in $run/pki"
deploy/pki/make-pki.sh --partnership "$run/partnership.textproto" --out "$run/pki" \
  >"$run/logs/pki.log" 2>&1 || { cat "$run/logs/pki.log" >&2; die "make-pki.sh failed"; }
for k in linkage "pseudonym-$holder"; do
  (umask 077 && openssl rand -hex 32 >"$run/keys/$k.key")
done

pids=()
nginx_pid=""
stop_all() {
  if [[ -n "$nginx_pid" ]]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; fi
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${pids[@]+"${pids[@]}"} $nginx_pid; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$shm"
}
trap stop_all EXIT

wait_for() { # wait_for LOG TEXT PID
  for _ in $(seq 1 400); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.05
  done
  cat "$1" >&2
  die "timed out waiting for '$2' in $1"
}

say "Starting the $holder agent (holder API :$holder_port)"
"$bin/accord-agent" --config "$run/agent.textproto" >"$run/logs/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_for "$run/logs/agent.log" "local API on port" "$agent_pid"

say "Loading $subjects synthetic subjects through the agent's local API (accordctl)"
"$bin/loadgen" --write-dataset "$run/dataset.textproto" --subjects "$subjects"
load_start=$(date +%s.%N)
"$bin/accordctl" agent load "$run/dataset.textproto" --pki "$run/pki" --as "org-$holder" \
  --agent "127.0.0.1:$local_port" >&2
load_end=$(date +%s.%N)

say "Starting accord-gateway (:$gateway_port, policy and durable audit)"
"$bin/accord-gateway" --config "$run/gateway.textproto" >"$run/logs/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for "$run/logs/gateway.log" "serving" "$gateway_pid"
"$bin/accord-gateway" --config "$run/gateway-tmpfs.textproto" >"$run/logs/gateway-tmpfs.log" 2>&1 &
tmpfs_gateway_pid=$!
pids+=("$tmpfs_gateway_pid")
wait_for "$run/logs/gateway-tmpfs.log" "serving" "$tmpfs_gateway_pid"

say "Starting nginx grpc_pass (:$nginx_port, $cores workers, mutual TLS both sides)"
user_line=""
[[ $EUID -eq 0 ]] && user_line="user root;"
cat >"$run/nginx.conf" <<EOF
# Generated by bench/run.sh: nginx relaying gRPC to the agent, in the
# gateway's place (its certificate on both sides), no policy, no audit.
$user_line
worker_processes $cores;
daemon off;
pid $run/nginx/nginx.pid;
error_log $run/logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run/nginx/body;
  proxy_temp_path $run/nginx/proxy;
  fastcgi_temp_path $run/nginx/fastcgi;
  uwsgi_temp_path $run/nginx/uwsgi;
  scgi_temp_path $run/nginx/scgi;
  upstream agent {
    server 127.0.0.1:$holder_port;
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$nginx_port ssl http2;
    ssl_protocols TLSv1.3;
    ssl_certificate $run/pki/gateway.pem;
    ssl_certificate_key $run/pki/gateway.key;
    ssl_client_certificate $run/pki/ca.pem;
    ssl_crl $run/pki/crl.pem;
    ssl_verify_client on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    http2_max_concurrent_streams 256;
    location / {
      grpc_pass grpcs://agent;
      grpc_ssl_protocols TLSv1.3;
      grpc_ssl_certificate $run/pki/gateway.pem;
      grpc_ssl_certificate_key $run/pki/gateway.key;
      grpc_ssl_trusted_certificate $run/pki/ca.pem;
      grpc_ssl_verify on;
      grpc_ssl_name localhost;
      grpc_ssl_session_reuse on;
    }
  }
}
EOF
"$nginx_bin" -t -c "$run/nginx.conf" -p "$run/nginx/" -e "$run/logs/nginx-error.log" \
  >"$run/logs/nginx-test.log" 2>&1 || { cat "$run/logs/nginx-test.log" >&2; die "nginx config rejected"; }
"$nginx_bin" -c "$run/nginx.conf" -p "$run/nginx/" -e "$run/logs/nginx-error.log" &
nginx_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$run/logs/nginx-error.log" >&2; die "nginx exited"; }
  sleep 0.05
done

# --- the side-by-side measurements -------------------------------------------
agreements=$(ls "$run"/agreements/*.textproto | paste -sd, -)
declare -A result
measure() { # measure LABEL TARGET ADDRESS CONCURRENCY [extra flags]
  local label=$1 target=$2 address=$3 c=$4
  shift 4
  local channels=$((c < 4 ? c : 4))
  local line
  line=$("$bin/loadgen" --target "$target" --address "$address" --pki "$run/pki" \
    --partnership "$run/partnership.textproto" --agreements "$agreements" \
    --linkage-key "$run/keys/linkage.key" --requester "$requester" --holder "$holder" \
    --subjects "$subjects" --concurrency "$c" --channels "$channels" \
    --duration "$duration" --warmup "$warmup" "$@" 2>>"$run/logs/loadgen.log")
  echo "$line" >&2
  echo "$line" >>"$run/logs/loadgen.log"
  local kv
  for kv in $line; do
    [[ "$kv" == *=* ]] && result["$label.c$c.${kv%%=*}"]="${kv#*=}"
  done
  local errors=${result["$label.c$c.errors"]}
  ((errors == 0)) || echo "run.sh: $label at c$c: $errors errors (see $run/logs/loadgen.log)" >&2
}

say "Measuring: ${duration}s per run after ${warmup}s warm-up; load: $(cut -d' ' -f1-3 /proc/loadavg)"
load_before=$(cut -d' ' -f1 /proc/loadavg)
fsync=$("$bin/loadgen" --fsync-probe "$run/state")
for kv in $fsync; do [[ "$kv" == *=* ]] && result["disk.${kv%%=*}"]="${kv#*=}"; done
for c in 1 64; do
  measure direct direct "127.0.0.1:$holder_port" "$c" --watch-pid "$agent_pid"
  measure nginx nginx "127.0.0.1:$nginx_port" "$c"
  measure gateway gateway "127.0.0.1:$gateway_port" "$c" --watch-pid "$gateway_pid"
  measure gateway_tmpfs_audit gateway "127.0.0.1:$tmpfs_gateway_port" "$c" \
    --watch-pid "$tmpfs_gateway_pid"
done
load_after=$(cut -d' ' -f1 /proc/loadavg)
rss_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$gateway_pid/status")
audit_rows=$(sqlite3 "$run/state/gateway-audit.db" "select count(*) from entries" 2>/dev/null || echo -1)

# --- HTTP/2 rapid reset while another organisation queries -------------------
attack_s=$((quick ? 3 : 10))
attacker=law-centre
say "Rapid reset: org-$attacker resets streams for ${attack_s}s while $requester queries at 5/s"
rss_now() { awk '/^VmRSS:/ {print $2}' "/proc/$gateway_pid/status"; }
attack_audit_before=$(sqlite3 "$run/state/gateway-audit.db" "select count(*) from entries" 2>/dev/null || echo -1)
attack_rss_before=$(rss_now)
"$bin/h2-attack" --address "127.0.0.1:$gateway_port" --ca "$run/pki/ca.pem" \
  --cert "$run/pki/org-$attacker.pem" --key "$run/pki/org-$attacker.key" \
  --mode rapid-reset --duration "$attack_s" --reconnect >"$run/logs/h2-attack.log" 2>&1 &
attack_pid=$!
( peak=0
  while kill -0 "$attack_pid" 2>/dev/null; do
    r=$(rss_now); ((r > peak)) && peak=$r
    sleep 0.05
  done
  echo "$peak" >"$run/logs/h2-attack-peak-rss-kb" ) &
sampler_pid=$!
steady=$("$bin/loadgen" --target gateway --address "127.0.0.1:$gateway_port" --pki "$run/pki" \
  --partnership "$run/partnership.textproto" --agreements "$agreements" \
  --linkage-key "$run/keys/linkage.key" --requester "$requester" --holder "$holder" \
  --subjects "$subjects" --rate 5 --deadline 5 --warmup 0 --duration "$attack_s" \
  2>>"$run/logs/loadgen.log")
echo "$steady" >&2
wait "$attack_pid" || true
wait "$sampler_pid" || true
cat "$run/logs/h2-attack.log" >&2
for kv in $steady $(grep '^h2-attack ' "$run/logs/h2-attack.log"); do
  [[ "$kv" == *=* ]] && result["attack.${kv%%=*}"]="${kv#*=}"
done
attack_peak_kb=$(cat "$run/logs/h2-attack-peak-rss-kb")
sleep 1  # what the attack left to audit
attack_audit_after=$(sqlite3 "$run/state/gateway-audit.db" "select count(*) from entries" 2>/dev/null || echo -1)

# --- a flood of refused calls --------------------------------------------------
# Queries naming a purpose the partnership does not know, at full rate (the
# bench lifts the rate limit): every one is refused after admission, and the
# refusal log bounds what the flood adds to the audit log (docs/AUDIT.md).
flood_s=${ACCORD_BENCH_FLOOD_SECONDS:-$((quick ? 5 : 60))}
say "Refused flood: $requester queries with an unknown purpose for ${flood_s}s at 64 in flight"
audit_sql() { sqlite3 "$run/state/gateway-audit.db" "$1" 2>/dev/null || echo -1; }
flood_seq_before=$(audit_sql "select coalesce(max(seq), 0) from entries")
flood=$("$bin/loadgen" --target gateway --address "127.0.0.1:$gateway_port" --pki "$run/pki" \
  --partnership "$run/partnership.textproto" --agreements "$agreements" \
  --linkage-key "$run/keys/linkage.key" --requester "$requester" --holder "$holder" \
  --subjects "$subjects" --purpose no-such-purpose --concurrency 64 --channels 4 \
  --warmup 0 --duration "$flood_s" 2>>"$run/logs/loadgen.log")
echo "$flood" >&2
for kv in $flood; do [[ "$kv" == *=* ]] && result["flood.${kv%%=*}"]="${kv#*=}"; done
sleep 2  # the summaries of the last interval
flood_entries=$(audit_sql "select count(*) from entries where seq > $flood_seq_before")
flood_bytes=$(audit_sql "select coalesce(sum(length(leaf)), 0) from entries where seq > $flood_seq_before")

bench() { printf 'BENCH %s %s %s\n' "$1" "$2" "$3"; }
r() { echo "${result[$1]}"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

say "Results"
bench bench_machine_cores "$cores" count
bench bench_load_avg_before "$load_before" load
bench bench_load_avg_after "$load_after" load
bench agent_import_accordctl_rows_per_s \
  "$(awk -v n="$subjects" -v a="$load_start" -v b="$load_end" 'BEGIN { printf "%.0f", 3 * n / (b - a) }')" rows/s
bench disk_fsync_p50_us "$(r disk.fsync_p50_us)" us
bench disk_fsync_p99_us "$(r disk.fsync_p99_us)" us
for c in 1 64; do
  for t in direct nginx gateway gateway_tmpfs_audit; do
    bench "${t}_qps_c$c" "$(r "$t.c$c.qps")" req/s
    for p in p50 p90 p99 p999; do bench "${t}_${p}_us_c$c" "$(r "$t.c$c.${p}_us")" us; done
    bench "${t}_errors_c$c" "$(r "$t.c$c.errors")" count
  done
  bench "gateway_over_nginx_qps_c$c" "$(div "$(r gateway.c$c.qps)" "$(r nginx.c$c.qps)")" ratio
  bench "gateway_over_direct_qps_c$c" "$(div "$(r gateway.c$c.qps)" "$(r direct.c$c.qps)")" ratio
  bench "nginx_over_direct_qps_c$c" "$(div "$(r nginx.c$c.qps)" "$(r direct.c$c.qps)")" ratio
  bench "gateway_tmpfs_audit_over_direct_qps_c$c" \
    "$(div "$(r gateway_tmpfs_audit.c$c.qps)" "$(r direct.c$c.qps)")" ratio
  bench "gateway_cpu_s_per_1k_c$c" "$(r "gateway.c$c.server_cpu_s_per_1k")" s
  bench "agent_cpu_s_per_1k_c$c" "$(r "direct.c$c.server_cpu_s_per_1k")" s
done
bench gateway_added_p50_us_c1 "$(sub "$(r gateway.c1.p50_us)" "$(r direct.c1.p50_us)")" us
bench nginx_added_p50_us_c1 "$(sub "$(r nginx.c1.p50_us)" "$(r direct.c1.p50_us)")" us
bench gateway_tmpfs_audit_added_p50_us_c1 \
  "$(sub "$(r gateway_tmpfs_audit.c1.p50_us)" "$(r direct.c1.p50_us)")" us
bench gateway_rss_mb "$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')" MB
bench gateway_audit_entries "$audit_rows" count
bench rapid_reset_other_org_success_pct "$(r attack.success_pct)" percent
bench rapid_reset_other_org_p99_us "$(r attack.p99_us)" us
bench rapid_reset_gateway_rss_mb "$(awk -v k="$attack_peak_kb" 'BEGIN { printf "%.1f", k / 1024 }')" MB
bench rapid_reset_gateway_rss_before_mb "$(awk -v k="$attack_rss_before" 'BEGIN { printf "%.1f", k / 1024 }')" MB
bench rapid_reset_streams "$(r attack.streams)" count
bench rapid_reset_connections_closed "$(r attack.closed_by_server)" count
bench rapid_reset_audit_entries "$((attack_audit_after - attack_audit_before))" count
bench refusal_flood_refused_per_s "$(div "$(r flood.errors)" "$flood_s")" req/s
bench refusal_flood_audit_entries "$flood_entries" count
bench refusal_flood_audit_kb_per_min \
  "$(awk -v b="$flood_bytes" -v s="$flood_s" 'BEGIN { printf "%.1f", b / 1024 * 60 / s }')" KB/min

# Stop the servers before the micro-benchmarks so they run on idle cores.
stop_all
trap - EXIT
nginx_pid=""
pids=()

# --- statistics ------------------------------------------------------------------
if ((stats)); then
  say "Statistics: bench/statistics.sh"
  stats_args=(--no-build)
  ((quick)) && stats_args+=(--quick)
  bench/statistics.sh "${stats_args[@]}" 2>"$run/logs/statistics.log" ||
    { tail -30 "$run/logs/statistics.log" >&2; die "bench/statistics.sh failed"; }
fi

# --- micro-benchmarks --------------------------------------------------------
if ((micro)); then
  bench_args=()
  ((quick)) && bench_args=(--benchmark_min_time=0.05)
  for b in policy_bench audit_bench agent_bench; do
    if [[ ! -x "$bin/$b" ]]; then
      say "$b not built; skipped"
      continue
    fi
    say "Running $b"
    "$bin/$b" ${bench_args[@]+"${bench_args[@]}"} >"$run/logs/$b.log" 2>&1 ||
      { tail -20 "$run/logs/$b.log" >&2; die "$b failed"; }
    grep '^BENCH ' "$run/logs/$b.log" || true
  done
fi
say "Done (logs in $run/logs)"
