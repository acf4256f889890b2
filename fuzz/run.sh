#!/usr/bin/env bash
# Runs coverage-guided fuzz targets (cargo-fuzz / libFuzzer) for a bounded time, at low
# priority, and records executions and CPU time per run in fuzz/runs.tsv.
#
#   fuzz/run.sh TARGET SECONDS     one target
#   fuzz/run.sh T1,T2,... SECONDS  several targets in turn, SECONDS each
#   fuzz/run.sh all SECONDS        every target in turn, SECONDS each
#   fuzz/run.sh list               the targets
#
# NO_BUILD=1 runs the binaries already built in fuzz/target instead of `cargo fuzz run`,
# which would rebuild them whenever the sources change; two runs of different targets can
# then share the machine without rebuilding under each other (the build's commit is logged).
# FUZZ_TARGET_DIR (default fuzz/target) builds and runs elsewhere: a new build can then be
# made and run while older binaries are still fuzzing.
# Needs cargo-fuzz (cargo install cargo-fuzz --locked). The toolchain is stable, so
# libFuzzer's nightly flags are enabled with RUSTC_BOOTSTRAP=1. SANITIZER (default none:
# the library's only unsafe code is the file mapping, and without ASan runs are about twice
# as fast) may be address. The corpus lives in fuzz/corpus/TARGET (seed it with
# python3 fuzz/seed_corpora.py); crashes, hangs and OOMs land in fuzz/artifacts/TARGET/,
# to minimise with: RUSTC_BOOTSTRAP=1 cargo fuzz tmin --sanitizer none TARGET FILE
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
TARGETS=(capture_pcap capture_pcapng decode http_head http_chunked reassembly session pipeline hpack har config_toml rule_toml)
SANITIZER=${SANITIZER:-none}
export RUSTC_BOOTSTRAP=1

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
if [ "$1" = list ]; then printf '%s\n' "${TARGETS[@]}"; exit 0; fi
[ $# -eq 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage
command -v cargo-fuzz >/dev/null || { echo "run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 2; }

if [ "$1" = all ]; then
  selected=("${TARGETS[@]}")
else
  IFS=, read -r -a selected <<<"$1"
  for t in "${selected[@]}"; do
    [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "run.sh: unknown target $t (fuzz/run.sh list)" >&2; exit 2; }
  done
fi
SECONDS_EACH=$2

[ -d corpus ] || python3 seed_corpora.py
TARGET_DIR=${FUZZ_TARGET_DIR:-$HERE/target}
BIN_DIR="$TARGET_DIR/x86_64-unknown-linux-gnu/release"
if [ "${NO_BUILD:-0}" = 1 ]; then
  for t in "${selected[@]}"; do
    [ -x "$BIN_DIR/$t" ] || { echo "run.sh: NO_BUILD=1 but $BIN_DIR/$t is not built (fuzz/run.sh TARGET 0 builds it)" >&2; exit 2; }
  done
else
  # Build first, so that the CPU time recorded below is fuzzing only. The commit is taken
  # before the build reads the sources, "+dirty" when a source had changes (runs.tsv, which
  # runs append to, does not count).
  built_at=$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$HERE/.." diff --quiet HEAD -- . ':!fuzz/runs.tsv' 2>/dev/null || built_at="$built_at+dirty"
  nice -n 10 cargo fuzz build --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR" || exit 2
  echo "$built_at" > "$BIN_DIR/BUILT_AT"
fi
mkdir -p logs
[ -f runs.tsv ] || printf 'date\ttarget\tseconds\texecutions\tcpu_seconds\tresult\n' > runs.tsv

status=0
for t in "${selected[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # Per run (time and PID): runs of one target may overlap (two builds, or two cores).
  log="logs/$t-$(date -u +%Y%m%dT%H%M%S)-$$.log"
  cpu_file="${log%.log}.cpu"
  [ "$SECONDS_EACH" -gt 0 ] || continue
  echo "binaries built at $(cat "$BIN_DIR/BUILT_AT" 2>/dev/null || echo unknown)" >"$log"
  flags=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="artifacts/$t/")
  if [ "${NO_BUILD:-0}" = 1 ]; then
    run=("$BIN_DIR/$t" "${flags[@]}" "corpus/$t")
  else
    run=(cargo fuzz run --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR" "$t" "corpus/$t" -- "${flags[@]}")
  fi
  /usr/bin/time -f '%U %S' -o "$cpu_file" nice -n "${NICE:-10}" "${run[@]}" >>"$log" 2>&1
  code=$?
  read -r user sys < <(tail -n 1 "$cpu_file")
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  if [ "$code" = 0 ]; then
    result=clean
  else
    result="FOUND (exit $code; $(grep -m1 -o 'artifacts/[^ ]*' "$log" || echo "see $log"))"
    status=1
  fi
  # scratch capture files of finished runs (a running target rewrites its own every input)
  find /dev/shm /tmp -maxdepth 1 -name 'wirelint-fuzz-*.cap' -mmin +1 -delete 2>/dev/null
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$SECONDS_EACH" "${execs:-?}" "$cpu" "$result" | tee -a runs.tsv
done
exit $status
