#!/usr/bin/env bash
# Builds every libFuzzer target of fuzz/ with clang (ASan + UBSan) and runs each for a while,
# two at a time.
#   bash fuzz/run.sh [SECONDS] [BUILD_DIR] [TARGET...]
# SECONDS per target (default 30); BUILD_DIR default build-fuzz (git-ignored); TARGETs
# default all (json safetensors idx idx_gzip cifar checkpoint_metadata image). Seeds come from
# fuzz/corpus/<target> (never written to); new inputs go to BUILD_DIR/corpus/<target>, so a
# second run continues where the first stopped; a crash leaves its input in
# BUILD_DIR/artifacts/ and fails the script. FUZZ_CXX picks the compiler (default
# clang++-14: Debian 12's clang; .ci/setup installs it with its runtimes).
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ_DIR")"
SECONDS_EACH="${1:-30}"
BUILD="${2:-$ROOT/build-fuzz}"
shift $(( $# < 2 ? $# : 2 ))
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then TARGETS=(json safetensors idx idx_gzip cifar checkpoint_metadata image); fi
CXX="${FUZZ_CXX:-clang++-14}"

# The largest input each target gets: room for a few tensors, IDX arrays, CIFAR records
# (3073 bytes each), metadata lines, small pictures.
max_len() {
  case "$1" in
    json | safetensors) echo 4096 ;;
    idx | idx_gzip) echo 4096 ;;
    cifar) echo 10000 ;;
    checkpoint_metadata) echo 2048 ;;
    image) echo 8192 ;;
    *) echo "fuzz/run.sh: unknown target $1" >&2; exit 2 ;;
  esac
}

mkdir -p "$BUILD/artifacts"
# No -fopenmp: the parsers need no threads, and OpenMP under clang would need libomp.
FLAGS=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/include" -Wall -Wextra)
echo "fuzz/run.sh: building ${TARGETS[*]} with $("$CXX" --version | head -1)"
pids=()
for t in "${TARGETS[@]}"; do
  max_len "$t" >/dev/null
  # Two compilers at a time (2 cores); each target is one translation unit.
  if [ "${#pids[@]}" -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  extra=()
  if [ "$t" = image ]; then  # stb_image under ASan only (fuzz/stb_image.cpp says why)
    "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address -I"$ROOT/include" -c "$FUZZ_DIR/stb_image.cpp" \
      -o "$BUILD/stb_image.o"
    extra=("$BUILD/stb_image.o")
  fi
  "$CXX" "${FLAGS[@]}" "$FUZZ_DIR/fuzz_$t.cpp" "${extra[@]}" -o "$BUILD/fuzz_$t" -lz &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# fuzz TARGET: one target for SECONDS_EACH, its output in BUILD/fuzz_TARGET.log.
fuzz() {
  local dict=()
  mkdir -p "$BUILD/corpus/$1"
  if [ -f "$FUZZ_DIR/$1.dict" ]; then dict=(-dict="$FUZZ_DIR/$1.dict"); fi
  "$BUILD/fuzz_$1" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$1")" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/${1}-" "${dict[@]}" \
    "$BUILD/corpus/$1" "$FUZZ_DIR/corpus/$1" >"$BUILD/fuzz_$1.log" 2>&1
}
# finish: waits for the oldest running target and reports it; a finding ends the script.
running=() pids=()
finish() {
  local t="${running[0]}" rc=0
  wait "${pids[0]}" || rc=$?
  running=("${running[@]:1}") pids=("${pids[@]:1}")
  if [ "$rc" -ne 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    tail -n 60 "$BUILD/fuzz_$t.log"
    echo "fuzz/run.sh: fuzz_$t FAILED: its input is in $BUILD/artifacts/ (log $BUILD/fuzz_$t.log)"
    exit 1
  fi
  echo "fuzz/run.sh: fuzz_$t: $(grep -E '^stat::number_of_executed_units|^Done' "$BUILD/fuzz_$t.log" | tr '\n' ' ')" \
       "(corpus $(ls "$BUILD/corpus/$t" | wc -l) inputs): clean"
}
echo "fuzz/run.sh: each target for ${SECONDS_EACH} s, two at a time"
for t in "${TARGETS[@]}"; do  # two at a time (2 cores), each on its own core
  if [ "${#pids[@]}" -ge 2 ]; then finish; fi
  fuzz "$t" &
  running+=("$t") pids+=($!)
done
while [ "${#pids[@]}" -gt 0 ]; do finish; done
echo "fuzz/run.sh: all ${#TARGETS[@]} targets ran ${SECONDS_EACH} s each without a finding"
