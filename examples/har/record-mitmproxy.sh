#!/usr/bin/env bash
# Records captures/har/mitmproxy.har: curl through mitmdump (mitmproxy's `hardump` option)
# to inventory_server.py, everything on 127.0.0.1. Needs curl and `pip install mitmproxy`
# (MITMDUMP=path/to/mitmdump if it is not on PATH).
#   bash examples/har/record-mitmproxy.sh captures/har/mitmproxy.har
set -euo pipefail
out=$(realpath -m "${1:-har-mitmproxy.har}")
here=$(cd "$(dirname "$0")" && pwd)
mitmdump=${MITMDUMP:-mitmdump}
tmp=$(mktemp -d)
server_pid= proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

python3 "$here/inventory_server.py" >"$tmp/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$mitmdump" -q --listen-host 127.0.0.1 -p "$proxy_port" --set hardump="$out" \
  --set confdir="$tmp/mitm" >"$tmp/mitm.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null -x "http://127.0.0.1:$proxy_port" "http://127.0.0.1:$port/ready" && break
  sleep 0.2
done

base="http://127.0.0.1:$port"
c() { curl -s -o /dev/null --max-time 5 -x "http://127.0.0.1:$proxy_port" "$@"; }
c "$base/v2/items" -H 'Accept-Encoding: deflate'
c "$base/v2/items" -H 'Content-Type: application/json' --data '{"sku":"A-2"}'
c "$base/v2/items" -H 'Content-Type: application/json' --data '{"sku":'
c "$base/v2/items/9"
c "$base/v2/old"
c "$base/v2/maintenance"
c "$base/v2/blob"
c "$base/v2/cookies"
c -I "$base/v2/items/9"
c "$base/v2/login" --data-urlencode 'user=ada' --data-urlencode 'password=lovelace'
c -X OPTIONS "$base/v2/items" -H 'Origin: http://app.test' -H 'Access-Control-Request-Method: POST'

kill -INT "$proxy_pid"   # mitmdump writes the HAR when it shuts down
wait "$proxy_pid" || true
proxy_pid=
echo "wrote $out"
