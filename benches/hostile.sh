#!/usr/bin/env bash
# Hostile and heavy captures (issue 10): generates each class at a size, runs
# `wirelint analyze` (default database, in a fresh temporary directory) and `wirelint
# exchanges` on it, and prints wall time, peak RSS and exit status per run.
#
#   benches/hostile.sh [SIZE_FACTOR] [--scaling] [--only CLASS[,CLASS…]] [--keep]
#
# SIZE_FACTOR (default 1, may be fractional: 0.01) scales the default sizes:
#
#   syn        1,000,000 SYNs to port 80 from distinct clients within 10 s
#   halfopen     100,000 connections sending half a request head, left open (100 s)
#   pipelined    100,000 pipelined requests on one connection, then their responses
#   fragments  1,000,000 IPv4 fragments: trains, some overlapping, teardrop, incomplete
#   nocrlf        10,000 connections sending a request line without CRLF, then FIN
#   gzipbomb           2 responses of ~1 MB gzip inflating to 1 GiB (Content-Encoding
#                        gzip; Transfer-Encoding gzip, chunked)
#   longurls      10,000 POSTs to 16 KiB request-targets answered 201 with as long a
#                        Location (long strings for every message, brief and stateful table)
#   manyheaders    2,000 GETs with 2,000 header fields each (~52 KiB heads; per-field work)
#   tinysegments     100 GETs with a 12 KiB request-target and 40 KiB of head, sent one byte
#                        per TCP segment (4M segments: per-segment work must not grow)
#   h2streams         64 h2c connections, each opening 512 POST streams with 8 KiB of body
#                        that never end (held stream state: 256 MiB of bodies in all)
#   hpackbomb      1,000 h2c GETs whose 16 KiB header block refers 12,000 times to one
#                        4,000-octet HPACK table entry (48 MB of fields each), answered 204
#
# --scaling runs every class at N and 2N and prints time(2N)/time(N) (target ≤ 2.2).
# Every run is bounded by `timeout` ($TIMEOUT s, default 300): a hang shows as TIMEOUT.
# Targets on a 2-core machine: < 60 s and < 256 MiB peak RSS at factor 1.
#
# Needs a release build of wirelint and of the generator; built here if missing:
#   cargo build --release --bin wirelint --example make_hostile
# The machines here are shared: compare numbers within one run.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WIRELINT:-$ROOT/target/release/wirelint}
GEN=${MAKE_HOSTILE:-$ROOT/target/release/examples/make_hostile}
TIMEOUT=${TIMEOUT:-300}
FACTOR=1
SCALING=0
KEEP=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scaling) SCALING=1 ;;
    --keep) KEEP=1 ;;
    --only) ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *)
      if [[ $1 =~ ^[0-9]*\.?[0-9]+$ ]]; then FACTOR=$1
      else echo "hostile.sh: unknown argument $1 (see --help)" >&2; exit 2; fi ;;
  esac
  shift
done

[ -x /usr/bin/time ] || { echo "hostile.sh: /usr/bin/time is missing (apt-get install -y time)" >&2; exit 2; }
if [ ! -x "$BIN" ] || [ ! -x "$GEN" ]; then
  (cd "$ROOT" && cargo build --release --bin wirelint --example make_hostile) || exit 2
fi

WORK=$(mktemp -d /tmp/wirelint-hostile.XXXXXX)
cleanup() { [ "$KEEP" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

CLASSES=(syn halfopen pipelined fragments nocrlf gzipbomb longurls manyheaders tinysegments h2streams hpackbomb)
declare -A BASE=([syn]=1000000 [halfopen]=100000 [pipelined]=100000 [fragments]=1000000 [nocrlf]=10000 [gzipbomb]=2 [longurls]=10000 [manyheaders]=2000 [tinysegments]=100 [h2streams]=64 [hpackbomb]=1000)
declare -A MIN=([gzipbomb]=2)

size_of() { # class factor
  awk -v b="${BASE[$1]}" -v f="$2" -v m="${MIN[$1]:-1}" \
    'BEGIN { n = int(b * f + 0.5); if (n < m) n = m; print n }'
}

# run LABEL CMD… : runs under timeout in a fresh directory (so `analyze` writes its default
# ./wirelint.db there); sets R_TIME R_RSS_MIB R_STATUS R_LINES (stdout lines).
run() {
  local label=$1; shift
  local dir="$WORK/run-$label"
  mkdir -p "$dir"
  (cd "$dir" && /usr/bin/time -f '%e %M' -o "$dir/time" \
      timeout -k 10 "$TIMEOUT" "$@" >"$dir/stdout" 2>"$dir/stderr")
  local code=$?
  local t rss
  read -r t rss < <(tail -n 1 "$dir/time")
  R_TIME=$t
  R_RSS_MIB=$(awk -v k="${rss:-0}" 'BEGIN { printf "%.0f", k / 1024 }')
  R_LINES=$(wc -l < "$dir/stdout")
  case $code in
    0) R_STATUS=ok ;;
    124|137) R_STATUS=TIMEOUT; R_TIME=">$TIMEOUT" ;;
    *) R_STATUS="exit $code" ;;
  esac
  # keep the run summary (last lines of stderr) for the log, drop the rest
  tail -n 8 "$dir/stderr" > "$WORK/$label.summary"
  rm -rf "$dir"
}

declare -A TIMES
printf '%-10s %9s %8s | %9s %8s %-8s | %9s %8s %-8s %8s\n' \
  class N file_MB analyze_s RSS_MiB status exch_s RSS_MiB status exchanges
measure() { # class n
  local class=$1 n=$2
  local pcap="$WORK/$class-$n.pcap"
  "$GEN" "$class" "$n" "$pcap" 2>"$WORK/gen.log" || { echo "generator failed: $(cat "$WORK/gen.log")" >&2; return; }
  local mb
  mb=$(awk -v s="$(stat -c %s "$pcap")" 'BEGIN { printf "%.1f", s / 1048576 }')
  run "analyze-$class-$n" "$BIN" analyze --fail-on never "$pcap"
  local at=$R_TIME ar=$R_RSS_MIB as=$R_STATUS
  run "exchanges-$class-$n" "$BIN" exchanges "$pcap"
  printf '%-10s %9s %8s | %9s %8s %-8s | %9s %8s %-8s %8s\n' \
    "$class" "$n" "$mb" "$at" "$ar" "$as" "$R_TIME" "$R_RSS_MIB" "$R_STATUS" "$R_LINES"
  TIMES[$class-$n-analyze]=$at
  TIMES[$class-$n-exchanges]=$R_TIME
  rm -f "$pcap"
}

for class in "${CLASSES[@]}"; do
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$class,"* ]]; then continue; fi
  n=$(size_of "$class" "$FACTOR")
  measure "$class" "$n"
  if [ "$SCALING" = 1 ]; then
    measure "$class" $((2 * n))
  fi
done

if [ "$SCALING" = 1 ]; then
  echo
  printf '%-10s %9s %14s %14s\n' class N analyze_2N/N exchanges_2N/N
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ />/ || b ~ />/ || a + 0 == 0) print "-"; else printf "%.2f", b / a }'; }
  for class in "${CLASSES[@]}"; do
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$class,"* ]]; then continue; fi
    n=$(size_of "$class" "$FACTOR")
    printf '%-10s %9s %14s %14s\n' "$class" "$n" \
      "$(ratio "${TIMES[$class-$n-analyze]}" "${TIMES[$class-$((2 * n))-analyze]}")" \
      "$(ratio "${TIMES[$class-$n-exchanges]}" "${TIMES[$class-$((2 * n))-exchanges]}")"
  done
fi

if [ "$KEEP" = 1 ]; then
  echo; echo "run summaries (stderr tails) in $WORK/*.summary" >&2
fi
