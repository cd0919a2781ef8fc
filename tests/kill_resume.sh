#!/usr/bin/env bash
# Kills a training run (SIGKILL) after its first checkpoint, resumes it with --resume, and
# checks that it ends bitwise identical to an uninterrupted run of the same steps: the same
# final checkpoint (model, optimizer, EMA, generators, data order) and the same logged losses.
# Then hunts: a run that saves a checkpoint every step is killed at random moments 24 times
# (SIGKILL, and SIGTERM and SIGINT, which stop it after the step with a checkpoint), many of
# them during a checkpoint write or the log rewrite of a resume; after each kill the checkpoint
# must load, after each restart no temporary file may remain, and the end must be bitwise the
# uninterrupted run's. The hunted run has no end in reach; after the kills it is finished
# 10 steps past where it stands, and the uninterrupted run trains as far: slow builds (scalar,
# sanitizers) hunt fewer steps and pay for fewer.
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

# The hunt. Half the kills come at a random moment after the start (loading, the log rewrite
# of a resume), half at a random moment after the run's first checkpoint (steps, checkpoint
# writes).
hunt=(train --data shapes --minutes 0 --checkpoint-every 1 --sample-every 0 --batch 8 --ch 8 --timesteps 100
      --threads 2 --no-pictures)
RANDOM=7  # the same kill moments on every run of the test
kills=0
progress=0  # kills after which the checkpoint had moved on
# SIGINT comes after the first checkpoint (an odd kill): a background job of a script starts
# with SIGINT ignored, so before the trainer installs its handler it would be lost.
for signal in KILL KILL KILL KILL KILL KILL KILL KILL TERM KILL KILL KILL KILL KILL KILL KILL KILL INT KILL KILL KILL KILL KILL KILL; do
  resume=()
  if [ -f "$work/hunt/checkpoint.safetensors" ]; then
    resume=(--resume)
    cp "$work/hunt/checkpoint.safetensors" "$work/before.safetensors"
  fi
  "$ddpmkit" "${hunt[@]}" --steps 1000000 "${resume[@]}" --out "$work/hunt" > "$work/hunt.out" 2>&1 &
  pid=$!
  delay=$((RANDOM % 500))
  if [ $((kills % 2)) -eq 1 ]; then
    # After this run's first checkpoint, whatever the machine's load: among steps and writes.
    for _ in $(seq 1 3000); do
      [ -f "$work/hunt/checkpoint.safetensors" ] && ! cmp -s "$work/hunt/checkpoint.safetensors" "$work/before.safetensors" && break
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.01
    done
    delay=$((delay % 200))
  fi
  sleep "0.$(printf '%03d' "$delay")"
  kill -s "$signal" "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  kills=$((kills + 1))
  if [ -f "$work/hunt/checkpoint.safetensors" ]; then
    "$ddpmkit" inspect "$work/hunt/checkpoint.safetensors" > /dev/null ||
      { echo "FAIL: after kill $kills (SIG$signal) the checkpoint does not load"; exit 1; }
    if ! cmp -s "$work/hunt/checkpoint.safetensors" "$work/before.safetensors"; then progress=$((progress + 1)); fi
  fi
done
# Where the hunt stands (a resume with --steps 1 trains nothing), then both runs to 10 steps past.
reached=$("$ddpmkit" "${hunt[@]}" --steps 1 --resume --out "$work/hunt" | sed -n 's/.*resuming at step \([0-9]*\).*/\1/p')
[ -n "$reached" ] || { echo "FAIL: after the kills the hunted run does not resume"; exit 1; }
"$ddpmkit" "${hunt[@]}" --steps $((reached + 10)) --resume --out "$work/hunt" > /dev/null
"$ddpmkit" "${hunt[@]}" --steps $((reached + 10)) --out "$work/hunt-straight" > /dev/null
if ls "$work/hunt/"*.tmp.* > /dev/null 2>&1; then echo "FAIL: temporary files remain: $(ls "$work/hunt")"; exit 1; fi
[ "$progress" -ge 6 ] || { echo "FAIL: only $progress of $kills kills came after the run had moved on: the hunt hunted nothing"; exit 1; }
cmp "$work/hunt-straight/checkpoint.safetensors" "$work/hunt/checkpoint.safetensors" ||
  { echo "FAIL: after $kills kills the final checkpoint differs from the uninterrupted run's"; exit 1; }
diff <(cut -d, -f1-6 "$work/hunt-straight/log.csv") <(cut -d, -f1-6 "$work/hunt/log.csv") ||
  { echo "FAIL: after $kills kills the log differs"; exit 1; }
echo "PASS (hunt): $kills kills (22 SIGKILL, a SIGTERM, a SIGINT) at random moments, $progress of them after progress," \
     "$reached steps reached; every checkpoint loadable, no temporary file left, the end identical"
