#!/usr/bin/env bash
# lesson_check.sh — runs one numbered lesson (examples/NN_name.cpp) as a student would: in an
# empty folder, it must exit 0 and write its pictures (NN_*.png, at least one); its time is
# reported against the lesson budget of 60 seconds, and only 3 times the budget fails (the
# machines are shared: this is a budget, not a benchmark).
#
#   bash tests/lesson_check.sh build/examples/03_noise_schedules
set -euo pipefail

exe="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
name="$(basename "$exe")"
budget=60
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

start=$(date +%s%N)
if ! "$exe" > output.txt 2>&1; then
  cat output.txt
  echo "lesson_check: $name failed" >&2
  exit 1
fi
ms=$((($(date +%s%N) - start) / 1000000))

shopt -s nullglob
pictures=("${name:0:2}"_*.png)
if [ ${#pictures[@]} -eq 0 ]; then
  cat output.txt
  echo "lesson_check: $name wrote no picture (${name:0:2}_*.png)" >&2
  exit 1
fi
for p in "${pictures[@]}"; do
  if [ ! -s "$p" ] || [ "$(head -c 8 "$p" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
    echo "lesson_check: $name wrote $p, which is not a PNG" >&2
    exit 1
  fi
done
printf 'lesson_check: %s took %d.%d s of its %d s budget and drew %s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$budget" "${pictures[*]}"
if [ "$ms" -gt $((3 * budget * 1000)) ]; then
  echo "lesson_check: $name took more than 3 times its budget" >&2
  exit 1
fi
