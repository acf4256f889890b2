#!/usr/bin/env bash
# TLS decryption benchmark: `wirelint exchanges` vs `tshark` on the same recorded HTTPS
# capture with the same key log, in one run. Reports seconds, MB/s and peak RSS of each.
#
#   benches/tls.sh [CAPTURE.pcap KEYLOG]
#
# Without arguments it records (once, then reuses) target/bench-tls/mixed.pcap: real
# traffic on loopback from nginx (self-signed certificate) to curl writing SSLKEYLOGFILE,
# mixed HTTP/2 over TLS 1.3 and HTTP/1.1 over TLS 1.2 and 1.3, with bodies from 1 kB to
# 256 kB. Only 127.0.0.1 is contacted; every process started here is stopped by its PID.
#
# Needs: nginx, curl, tcpdump, tshark, /usr/bin/time (Debian packages), root (tcpdump on
# lo) for recording, and a release build (cargo build --release). Machines here are shared
# and noisy: compare within one run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WIRELINT:-$ROOT/target/release/wirelint}
OUT=$ROOT/target/bench-tls
CONNS=${CONNS:-12}          # connections of each kind
REQS=${REQS:-50}            # requests per connection
RATE=${RATE:-1M}            # per-connection rate cap, so tcpdump keeps up on a busy machine
PCAP=${1:-$OUT/mixed.pcap}
KEYS=${2:-$OUT/mixed.keys}

for tool in tshark /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "tls.sh: $tool is missing (apt-get install -y tshark time)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "tls.sh: $BIN is missing; run cargo build --release" >&2; exit 2; }

record() {
  for tool in nginx curl tcpdump openssl; do
    command -v "$tool" >/dev/null || { echo "tls.sh: $tool is missing (apt-get install -y nginx curl tcpdump)" >&2; exit 2; }
  done
  mkdir -p "$OUT"
  pids=()
  work=$(mktemp -d /tmp/wirelint-tls-bench.XXXXXX)
  chmod 755 "$work"
  cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  mkdir -p "$work/www"
  for kb in 1 16 64 256; do head -c $((kb * 1024)) /dev/urandom | base64 > "$work/www/f$kb.txt"; done
  echo '{"items":[1,2,3]}' > "$work/www/api.json"
  chmod -R a+rX "$work/www"
  cat > "$work/nginx.conf" <<CONF
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
worker_processes 2;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    root $work/www;
    keepalive_requests 10000;
    server { listen 127.0.0.1:18443 ssl http2; ssl_protocols TLSv1.3; location = /missing { return 404; } }
    server { listen 127.0.0.1:18444 ssl; ssl_protocols TLSv1.2 TLSv1.3; location = /missing { return 404; } }
}
CONF
  nginx -c "$work/nginx.conf"
  sleep 0.5
  # One curl config per connection: REQS URLs on one reused connection.
  local sizes=(f1.txt f16.txt api.json f64.txt missing f1.txt f256.txt api.json)
  for c in $(seq 1 "$CONNS"); do
    for kind in h2 h1; do
      : > "$work/$kind-$c.cfg"
      for r in $(seq 1 "$REQS"); do
        local f=${sizes[$(( (c + r) % ${#sizes[@]} ))]}
        if [ "$kind" = h2 ]; then
          echo "url = \"https://localhost:18443/$f\"" >> "$work/$kind-$c.cfg"
        else
          echo "url = \"https://localhost:18444/$f\"" >> "$work/$kind-$c.cfg"
        fi
        echo 'output = "/dev/null"' >> "$work/$kind-$c.cfg"
      done
    done
  done
  rm -f "$PCAP" "$KEYS"
  tcpdump -i lo -U -s 0 -B 65536 -w "$PCAP" 'tcp port 18443 or tcp port 18444' 2>/dev/null &
  pids+=($!)
  sleep 1
  local curls=()
  for c in $(seq 1 "$CONNS"); do
    SSLKEYLOGFILE="$KEYS" curl -sk --max-time 120 --limit-rate "$RATE" --http2 \
        --resolve localhost:18443:127.0.0.1 -K "$work/h2-$c.cfg" &
    curls+=($!)
    # Every other HTTP/1.1 connection on TLS 1.2.
    local v=--tlsv1.3
    [ $((c % 2)) -eq 0 ] && v="--tlsv1.2 --tls-max 1.2"
    # shellcheck disable=SC2086
    SSLKEYLOGFILE="$KEYS" curl -sk --max-time 120 --limit-rate "$RATE" --http1.1 $v \
        --resolve localhost:18444:127.0.0.1 -K "$work/h1-$c.cfg" &
    curls+=($!)
  done
  for p in "${curls[@]}"; do wait "$p" || true; done
  sleep 1
  kill "${pids[0]}"
  wait "${pids[0]}" 2>/dev/null || true
  pids=()
}

[ -f "$PCAP" ] && [ -f "$KEYS" ] || record

SIZE=$(stat -c %s "$PCAP")
MB=$(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "capture: $PCAP ($MB MB), key log: $KEYS ($(wc -l < "$KEYS") lines)"

# measure NAME CMD...: wall seconds, MB/s and peak RSS (GNU time), output lines.
measure() {
  local name=$1
  shift
  local t0 t1 secs rss lines
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$OUT/$name.rss" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  rss=$(awk '{ printf "%.0f", $1 / 1024 }' "$OUT/$name.rss")
  lines=$(wc -l < "$OUT/$name.out")
  echo "$name: ${secs}s, $(awk -v b="$SIZE" -v s="$secs" 'BEGIN { printf "%.1f", b / 1e6 / s }') MB/s, peak RSS ${rss} MB, $lines output lines"
  eval "${name//-/_}_secs=$secs"
}

measure wirelint "$BIN" exchanges --format jsonl --tls-keylog "$KEYS" "$PCAP"
tail -n 6 "$OUT/wirelint.err" | sed 's/^/  /'
measure tshark tshark -n -r "$PCAP" -o "tls.keylog_file:$KEYS" -Y 'http.request or http2.headers.method' \
    -T fields -e frame.number
# shellcheck disable=SC2154
echo "speed-up: $(awk -v a="$tshark_secs" -v b="$wirelint_secs" 'BEGIN { printf "%.1f", a / b }')x"
