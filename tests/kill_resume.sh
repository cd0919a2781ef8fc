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

scenario() {
  "$ddpmkit" "${run[@]}" "${@:2}" --out "$work/$1-straight" > /dev/null

  "$ddpmkit" "${run[@]}" "${@:2}" --out "$work/$1-killed" > /dev/null &
  pid=$!
  for _ in $(seq 1 3000); do
    [ -f "$work/$1-killed/checkpoint.safetensors" ] && break
    sleep 0.01
  done
  kill -9 "$pid"
  wait "$pid" || true

  resumed=$("$ddpmkit" "${run[@]}" "${@:2}" --out "$work/$1-killed" --resume)
  step=$(sed -n 's/.*resuming at step \([0-9]*\).*/\1/p' <<< "$resumed")
  echo "$1: killed, then resumed at step $step of 60"
  [ -n "$step" ] && [ "$step" -lt 60 ] || { echo "FAIL: the run was not interrupted before its end"; exit 1; }

  cmp "$work/$1-straight/checkpoint.safetensors" "$work/$1-killed/checkpoint.safetensors" ||
    { echo "FAIL: the resumed run's final checkpoint differs from the uninterrupted run's"; exit 1; }
  # step, loss, mse, vb, grad norm, lr: equal row for row (the seconds column is wall time)
  diff <(cut -d, -f1-6 "$work/$1-straight/log.csv") <(cut -d, -f1-6 "$work/$1-killed/log.csv") ||
    { echo "FAIL: the logs differ"; exit 1; }
  echo "PASS ($1): identical final checkpoint and log"
}

scenario plain
# The kl loss draws t by importance from its loss history (in the checkpoint), warmed up
# after 10 losses per timestep: 10 timesteps make that happen after the kill. --classes adds
# labels and label dropout (drawn from the checkpointed generator).
scenario kl-classes --loss kl --variance learned --classes --schedule cosine --timesteps 10
