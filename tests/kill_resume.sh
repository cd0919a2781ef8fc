#!/usr/bin/env bash
# Kills a training run (SIGKILL) after its first checkpoint, resumes it with --resume, and
# checks that it ends bitwise identical to an uninterrupted run of the same steps: the same
# final checkpoint (model, optimizer, EMA, generators, data order) and the same logged losses.
# usage: kill_resume.sh PATH/TO/ddpmkit
set -euo pipefail
ddpmkit=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(train --data shapes --steps 60 --minutes 0 --checkpoint-every 5 --sample-every 0 --batch 8 --ch 8
     --timesteps 100 --threads 2 --no-pictures)

"$ddpmkit" "${run[@]}" --out "$work/straight" > /dev/null

"$ddpmkit" "${run[@]}" --out "$work/killed" > /dev/null &
pid=$!
for _ in $(seq 1 3000); do
  [ -f "$work/killed/checkpoint.safetensors" ] && break
  sleep 0.01
done
kill -9 "$pid"
wait "$pid" || true

resumed=$("$ddpmkit" "${run[@]}" --out "$work/killed" --resume)
step=$(sed -n 's/.*resuming at step \([0-9]*\).*/\1/p' <<< "$resumed")
echo "killed, then resumed at step $step of 60"
[ -n "$step" ] && [ "$step" -lt 60 ] || { echo "FAIL: the run was not interrupted before its end"; exit 1; }

cmp "$work/straight/checkpoint.safetensors" "$work/killed/checkpoint.safetensors" ||
  { echo "FAIL: the resumed run's final checkpoint differs from the uninterrupted run's"; exit 1; }
# step, loss, mse, vb, grad norm, lr: equal row for row (the seconds column is wall time)
diff <(cut -d, -f1-6 "$work/straight/log.csv") <(cut -d, -f1-6 "$work/killed/log.csv") ||
  { echo "FAIL: the logs differ"; exit 1; }
echo "PASS: identical final checkpoint and log"
