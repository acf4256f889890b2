#!/usr/bin/env bash
# Records the TLS captures in captures/tls/ from real traffic on loopback: nginx with a
# self-signed certificate, curl writing its key log (SSLKEYLOGFILE), tcpdump on lo.
# Needs root (tcpdump on lo), nginx, openssl, curl, tcpdump, editcap (wireshark-common):
#   apt-get install -y nginx openssl curl tcpdump wireshark-common
# The output is not reproducible byte for byte (fresh keys, randoms and timestamps each
# run): re-recording changes every file, and the expected exchanges must be re-blessed.
#
# Usage: bash examples/record_tls.sh [OUT_DIR]   (default: captures/tls)
set -euo pipefail
out=$(realpath -m "${1:-captures/tls}")
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 755 "$work"
mkdir -p "$work/www"
printf '<!doctype html><title>wirelint</title><p>hello over TLS\n' > "$work/www/index.html"
printf '{"ok":true}\n' > "$work/www/data.json"
chmod -R a+rX "$work/www"

cat > "$work/nginx.conf" <<CONF
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
worker_processes 1;
events { worker_connections 64; }
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
    default_type text/html;
    types { application/json json; text/html html; }
    # TLS 1.3, HTTP/2.
    server {
        listen 127.0.0.1:8443 ssl http2;
        ssl_protocols TLSv1.3;
        location = /items { return 201 '{"id":1}\n'; }
        location = /boom { return 500; }
    }
    # TLS 1.2 AES-128-GCM, HTTP/1.1 only.
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;
        location = /items { return 201 '{"id":1}\n'; }
        location = /boom { return 500; }
    }
    # ChaCha20-Poly1305: TLS 1.3 and TLS 1.2, HTTP/1.1 only.
    server {
        listen 127.0.0.1:8445 ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;
        location = /items { return 201 '{"id":1}\n'; }
    }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.5

# record NAME PORT CURL_ARGS...: one capture with its own key log.
record() {
    local name=$1 port=$2
    shift 2
    rm -f "$out/$name.pcap" "$out/$name.keys"
    tcpdump -i lo -U -s 0 -w "$out/$name.pcap" "tcp port $port" 2>/dev/null &
    local tp=$!
    pids+=("$tp")
    sleep 1
    SSLKEYLOGFILE="$out/$name.keys" "$@" > /dev/null 2>&1 || true
    sleep 1
    kill "$tp"
    wait "$tp" 2>/dev/null || true
}

base=(curl -sk --max-time 10 --resolve localhost:8443:127.0.0.1 --resolve localhost:8444:127.0.0.1
      --resolve localhost:8445:127.0.0.1)

record tls13-h2 8443 "${base[@]}" --http2 \
    https://localhost:8443/ https://localhost:8443/data.json https://localhost:8443/missing \
    --next "${base[@]}" --http2 -X POST -H 'Content-Type: application/json' \
    --data '{"name":"widget","qty":3}' https://localhost:8443/items \
    --next "${base[@]}" --http2 https://localhost:8443/boom

record tls12-http1 8444 "${base[@]}" --http1.1 \
    https://localhost:8444/ https://localhost:8444/data.json https://localhost:8444/missing \
    --next "${base[@]}" --http1.1 -X POST -H 'Content-Type: application/json' \
    --data '{"name":"widget","qty":3}' https://localhost:8444/items \
    --next "${base[@]}" --http1.1 https://localhost:8444/boom

record tls-chacha 8445 "${base[@]}" --http1.1 --tlsv1.3 \
    --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256 https://localhost:8445/ \
    --next "${base[@]}" --http1.1 --tlsv1.2 --tls-max 1.2 \
    --ciphers ECDHE-ECDSA-CHACHA20-POLY1305 -X POST --data 'a=1' https://localhost:8445/items

# The same TLS 1.2 traffic with its keys inside the file (pcapng Decryption Secrets Block).
editcap --inject-secrets "tls,$out/tls12-http1.keys" -F pcapng "$out/tls12-http1.pcap" \
    "$out/tls12-embedded-secrets.pcapng"

ls -l "$out"
