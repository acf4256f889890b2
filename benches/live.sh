#!/usr/bin/env bash
# Live-capture benchmarks on loopback, against a local nginx driven by wrk. Only 127.0.0.1
# is contacted; every process started here is stopped by its PID.
#
#   benches/live.sh keepup [SECONDS_PER_STEP]   highest request rate with zero drops,
#                                               wirelint sniff vs tcpdump -w /dev/null
#   benches/live.sh soak [MINUTES]              RSS of sniff under steady load with fast
#                                               connection churn, sampled every 10 s
#                                               (start, peak, end)
#
# Environment: NETNS=1 runs everything inside a network namespace of its own (its own
# loopback, deleted at the end), so other traffic on the host's lo neither disturbs nor
# is recorded; SYN_RATE=N adds a SYN flood during the soak: hping3 sends N SYNs/s from
# random source addresses to the server port (half-open connections that never finish).
#
# Needs: nginx, wrk, tcpdump (Debian packages; hping3 for SYN_RATE), root or CAP_NET_RAW
# (root for NETNS), and a release build (cargo build --release). Machines here are shared
# and noisy: compare within one run.
# SNIFF_ARGS adds arguments to every `wirelint sniff` (e.g. SNIFF_ARGS=--no-packet-store).
set -euo pipefail

if [ "${NETNS:-0}" = 1 ] && [ -z "${WL_IN_NETNS:-}" ]; then
  ns=wirelint-bench-$$
  ip netns add "$ns"
  trap 'ip netns delete "$ns" 2>/dev/null || true' EXIT
  ip netns exec "$ns" ip link set lo up
  WL_IN_NETNS=$ns ip netns exec "$ns" bash "$0" "$@"
  exit $?
fi

MODE=${1:-keepup}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WIRELINT:-$ROOT/target/release/wirelint}
PORT=${PORT:-18188}
CONNS=${CONNS:-100}
WORK=$(mktemp -d /tmp/wirelint-live-bench.XXXXXX)
PIDS=()

tools=(nginx wrk tcpdump)
[ -n "${SYN_RATE:-}" ] && tools+=(hping3)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "live.sh: $tool is missing (apt-get install -y nginx wrk tcpdump)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "live.sh: $BIN is missing; run cargo build --release" >&2; exit 2; }

cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- a small nginx on 127.0.0.1:$PORT: JSON API answers (one of them wrong), a static page
mkdir -p "$WORK/www/static"
head -c 4096 /dev/zero | tr '\0' 'x' > "$WORK/www/static/page.html"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fastcgi;
  uwsgi_temp_path $WORK/uwsgi;
  scgi_temp_path $WORK/scgi;
  keepalive_requests 1000;
  server {
    listen 127.0.0.1:$PORT backlog=1024;
    root $WORK/www;
    location /api/item/ { default_type application/json; return 200 '{"id":1,"name":"widget"}'; }
    location = /api/created { default_type application/json; return 201 '{"id":7}'; }
    location / { try_files \$uri =404; }
  }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.3

# Runs wrk for $1 seconds at a per-connection delay of $2 ms; prints completed requests.
load() {
  WL_DELAY_MS=$2 wrk -t1 -c"$CONNS" -d"$1"s --timeout 5s -s "$ROOT/benches/live-rate.lua" \
    "http://127.0.0.1:$PORT" > "$WORK/wrk.out" 2>&1 || true
  awk '/requests in/ {print $1}' "$WORK/wrk.out"
}

# Starts sniff in the background; waits until it captures.
start_sniff() {
  rm -f "$WORK"/sniff.db*
  # shellcheck disable=SC2086 # SNIFF_ARGS is split into arguments on purpose
  "$BIN" sniff -i lo --filter "tcp port $PORT" --db "$WORK/sniff.db" -q --log-format json ${SNIFF_ARGS:-} \
    > /dev/null 2> "$WORK/sniff.log" &
  SNIFF=$!
  PIDS+=("$SNIFF")
  for _ in $(seq 100); do grep -q capturing "$WORK/sniff.log" && return; sleep 0.1; done
  echo "live.sh: sniff did not start:" >&2; cat "$WORK/sniff.log" >&2; exit 2
}

stop_sniff() {
  kill -TERM "$SNIFF"; wait "$SNIFF" || true
}

# A JSON number from the last log line that has it.
logged() { grep -o "\"$1\":[0-9]*" "$WORK/sniff.log" | tail -1 | cut -d: -f2; }

keepup() {
  local secs=${1:-10}
  echo "# $CONNS connections, ${secs}s per step; rate = connections × 1000 / delay"
  printf '%-8s %10s %10s | %10s %8s %8s %5s | %10s %8s %5s\n' delay_ms target req/s \
    sniff_ex kdrop idrop ok tcpdump kdrop ok
  for delay in 100 50 20 10 5 4 3 2 1 0; do
    local target=max
    [ "$delay" -gt 0 ] && target=$((CONNS * 1000 / delay))
    start_sniff
    local reqs; reqs=$(load "$secs" "$delay")
    sleep 1
    stop_sniff
    local ex kd id
    ex=$(logged stored_exchanges); kd=$(logged kernel_dropped); id=$(logged internal_dropped)
    local ok=no
    [ "${kd:-1}" = 0 ] && [ "${id:-1}" = 0 ] && [ "${ex:-0}" -ge "${reqs:-1}" ] && ok=yes

    tcpdump -i lo -B 32768 -s 262144 -w /dev/null "tcp port $PORT" 2> "$WORK/tcpdump.log" &
    local td=$!; PIDS+=("$td")
    sleep 1
    local reqs2; reqs2=$(load "$secs" "$delay")
    sleep 0.5
    kill -INT "$td"; wait "$td" || true
    local tdrop; tdrop=$(awk '/dropped by kernel/ {print $1}' "$WORK/tcpdump.log")
    local tok=no; [ "${tdrop:-1}" = 0 ] && tok=yes
    printf '%-8s %10s %10s | %10s %8s %8s %5s | %10s %8s %5s\n' "$delay" "$target" \
      "$((reqs / secs))" "$ex" "$kd" "$id" "$ok" "$((reqs2 / secs))" "$tdrop" "$tok"
  done
}

soak() {
  local minutes=${1:-10}
  local secs=$((minutes * 60))
  start_sniff
  # Steady load in the background for the whole soak: about 2,000 requests/s, closing
  # connections every 5 requests (about 400 new connections/s), so that every bounded
  # structure keyed by connection (flow table, stateful rules' windows of 50,000) reaches
  # its cap within the first minutes: after that, RSS must stay flat.
  WL_CLOSE_EVERY=${CLOSE_EVERY:-5} WL_DELAY_MS=50 wrk -t1 -c"$CONNS" -d"$secs"s --timeout 5s -s "$ROOT/benches/live-rate.lua" \
    "http://127.0.0.1:$PORT" > "$WORK/wrk.out" 2>&1 &
  local w=$!; PIDS+=("$w")
  if [ -n "${SYN_RATE:-}" ]; then
    # hping3's -i is the interval between packets in microseconds; bounded by timeout.
    timeout "$secs" hping3 -q -S --rand-source -p "$PORT" -i "u$((1000000 / SYN_RATE))" \
      127.0.0.1 > "$WORK/hping3.log" 2>&1 &
    PIDS+=("$!")
    echo "# SYN flood: $SYN_RATE SYNs/s from random sources to port $PORT for ${secs}s"
  fi
  # rss = anon (heap, stacks) + file (the binary, libpcap's ring) + shmem, from /proc/PID/status
  echo "# seconds rss_kib anon_kib file_kib shmem_kib"
  local start=$SECONDS peak=0 first=""
  while kill -0 "$w" 2>/dev/null; do
    local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$SNIFF/status")
    echo "$((SECONDS - start)) $rss $(awk '/^Rss(Anon|File|Shmem):/ {printf "%s ", $2}' "/proc/$SNIFF/status")"
    [ -z "$first" ] && first=$rss
    [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 10
  done
  local end; end=$(awk '/VmRSS/ {print $2}' "/proc/$SNIFF/status")
  stop_sniff
  echo "# RSS KiB: start $first, peak $peak, end $end; wrk: $(awk '/requests in/' "$WORK/wrk.out")"
  echo "# sniff: exchanges $(logged stored_exchanges), kernel drops $(logged kernel_dropped), internal drops $(logged internal_dropped)"
  echo "# packet store: flagged connections $(logged flagged_connections), evicted $(logged evicted_connections), over the per-connection cap $(logged over_connection_cap) packets"
  if command -v sqlite3 >/dev/null; then
    echo "# run findings (rule: message):"
    sqlite3 "$WORK/sniff.db" "SELECT '#   ' || rule || ': ' || message FROM findings WHERE exchange_id IS NULL" ||
      echo "#   (could not read $WORK/sniff.db)"
  fi
}

case "$MODE" in
  keepup) keepup "${2:-10}" ;;
  soak) soak "${2:-10}" ;;
  *) echo "usage: $0 keepup [SECONDS] | soak [MINUTES]" >&2; exit 2 ;;
esac
