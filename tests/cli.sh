#!/usr/bin/env bash
# The ddpmkit program against the mistakes a user makes: each must fail before any work,
# with a message that names the flag (and its allowed values) or the file and the reason,
# and exit 2 for a usage error, 1 for a failure. Also --help and --version of every
# command, and output folders created with their parents.
# usage: cli.sh PATH/TO/ddpmkit
set -uo pipefail
ddpmkit=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n 's/^#define DDPMKIT_VERSION_STRING "\(.*\)"/\1/p' "$here/../include/ddpmkit/version.hpp")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# check NAME EXIT [TEXT ...] -- ARGS...: ddpmkit ARGS exits with EXIT and prints every TEXT.
check() {
  local name=$1 want=$2
  shift 2
  local texts=()
  while [ "$1" != "--" ]; do texts+=("$1"); shift; done
  shift
  local out rc=0 ok=1
  out=$("$ddpmkit" "$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || ok=0
  for text in "${texts[@]}"; do grep -qF -- "$text" <<< "$out" || ok=0; done
  if [ "$ok" -eq 1 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name: exit $rc (expected $want); expected the output to contain: ${texts[*]}"
    head -n 5 <<< "$out" | sed 's/^/    | /'
  fi
}
# exists NAME FILE...: each file exists and is not empty.
exists() {
  local name=$1 file
  shift
  for file in "$@"; do
    if [ -s "$file" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name: $file is missing or empty"; fi
  done
}

# A tiny checkpoint (T = 50), trained into a folder whose parents do not exist yet.
run="$work/runs/a/b"
check "train into a nested new folder" 0 "step 2: checkpoint" -- \
  train --data shapes --steps 2 --minutes 0 --batch 4 --ch 8 --timesteps 50 --sample-every 0 --no-pictures --out "$run"
ckpt="$run/checkpoint.safetensors"
exists "train's outputs" "$ckpt" "$run/log.csv"

# The flags' errors come before any work: --data mnist with a folder that does not exist
# would fail when the data are loaded, so a message about the flag shows it was checked first.
late=(--data mnist --data-dir "$work/no-data")

# No command, unknown command, --help and --version.
check "no command" 2 "usage: ddpmkit COMMAND" --
check "unknown command" 2 'unknown command "frobnicate"' "usage: ddpmkit COMMAND" -- frobnicate
check "--help" 0 "usage: ddpmkit COMMAND" -- --help
check "--version" 0 "ddpmkit $version" -- --version
for command in train sample inpaint denoise superres nll classifier fd inspect "bench unet"; do
  # shellcheck disable=SC2086  # "bench unet" is two words
  check "$command --help" 0 "usage: ddpmkit ${command%% *}" "--help" -- $command --help
  # shellcheck disable=SC2086
  check "$command --version" 0 "ddpmkit $version" -- $command --version
done

# Unknown flags, flags without their value, values that are not numbers.
check "unknown flag" 2 "unknown flag --frobnicate" "ddpmkit train --help" -- train --frobnicate 3 "${late[@]}"
check "unknown flag of sample" 2 "unknown flag --temperature" -- sample --checkpoint "$ckpt" --temperature 0.5
check "flag without value" 2 "--batch needs a value (B)" -- train "${late[@]}" --batch
check "switch with a value" 2 "--flip takes no value" -- train --flip=yes "${late[@]}"
check "not a whole number" 2 '--batch takes a whole number, not "many"' -- train --batch many "${late[@]}"
check "a fraction for a count" 2 '--steps takes a whole number, not "2.5"' -- train --steps 2.5 "${late[@]}"
check "trailing junk" 2 '--timesteps takes a whole number, not "12abc"' -- train --timesteps 12abc "${late[@]}"
check "not a number" 2 '--lr takes a number, not "fast"' -- train --lr fast "${late[@]}"
check "not finite" 2 '--minutes takes a number, not "inf"' -- train --minutes inf "${late[@]}"
check "unexpected argument" 2 'unexpected argument "extra"' -- sample extra --checkpoint "$ckpt"

# Zero and negative counts.
check "--batch 0" 2 "--batch must be at least 1, not 0" -- train --batch 0 "${late[@]}"
check "--minutes -1" 2 "--minutes must be at least 0, not -1" -- train --minutes -1 --steps 5 "${late[@]}"
check "--steps -3" 2 "--steps must be at least 0, not -3" -- train --steps -3 "${late[@]}"
check "no limit" 2 "--minutes and --steps are both 0" -- train --minutes 0 --steps 0 "${late[@]}"
check "--timesteps 1" 2 "--timesteps must be at least 2, not 1" -- train --timesteps 1 "${late[@]}"
check "--timesteps too few" 2 "--timesteps 20 does not fit the linear schedule" "outside (0, 1)" -- train --timesteps 20 "${late[@]}"
check "--ch 0" 2 "--ch must be at least 1, not 0" -- train --ch 0 "${late[@]}"
check "--threads -2" 2 "--threads must be at least 0, not -2" -- train --threads -2 "${late[@]}"
check "--seed -1" 2 "--seed must be at least 0, not -1" -- train --seed -1 "${late[@]}"
check "--ema 2" 2 "--ema is a decay between 0 and 1, not 2" -- train --ema 2 "${late[@]}"
check "--lr -0.1" 2 "--lr must be at least 0, not -0.1" -- train --lr -0.1 "${late[@]}"
check "--bucket-kb -1" 2 "--bucket-kb must be at least 0, not -1" -- train --bucket-kb -1 "${late[@]}"
check "sample --steps 0" 2 "--steps must be at least 1, not 0" -- sample --steps 0 --checkpoint "$work/none.safetensors"
check "sample --n 0" 2 "--n must be at least 1, not 0" -- sample --n 0 --checkpoint "$work/none.safetensors"
check "sample --batch -4" 2 "--batch must be at least 1, not -4" -- sample --batch -4 --checkpoint "$work/none.safetensors"
check "sample --eta -1" 2 "--eta must be at least 0, not -1" -- sample --eta -1 --checkpoint "$work/none.safetensors"
check "sample --steps above T" 2 "--steps 60 is more than the checkpoint's 50 timesteps" -- \
  sample --checkpoint "$ckpt" --steps 60 --out "$work/s.png"
check "nll --images 1" 2 "--images must be at least 2, not 1" -- nll --images 1 --checkpoint "$work/none.safetensors"
check "nll --timesteps -1" 2 "--timesteps must be at least 0, not -1" -- nll --timesteps -1 --checkpoint "$ckpt"
check "nll --timesteps above T" 2 "--timesteps 50 is more than the checkpoint's 49 KL terms" -- \
  nll --timesteps 50 --checkpoint "$ckpt" "${late[@]}"
check "classifier --epochs 0" 2 "--epochs must be at least 1, not 0" -- classifier --epochs 0 "${late[@]}"
check "fd --n 1" 2 "--n must be at least 2, not 1" -- fd --n 1 --samples "$work/none.safetensors"
check "bench --threads 0" 2 "--threads must be at least 1, not 0" -- bench unet --threads 0
check "bench --mult 1,x" 2 "--mult takes whole numbers of at least 1, separated by commas, not \"1,x\"" -- bench unet --mult 1,x

# Names of data sets, samplers, schedules and the like, with the allowed ones in the message.
check "unknown data set" 2 '--data is fashion-mnist, mnist, cifar10 or shapes, not "imagenet"' -- train --data imagenet
check "unknown schedule" 2 '--schedule is linear, cosine or sigmoid, not "quadratic"' -- train --schedule quadratic "${late[@]}"
check "unknown loss" 2 '--loss is simple, hybrid or kl, not "l1"' -- train --loss l1 "${late[@]}"
check "unknown output" 2 '--output is auto, eps, x0 or v, not "score"' -- train --output score "${late[@]}"
check "unknown variance" 2 '--variance is large, small or learned, not "big"' -- train --variance big "${late[@]}"
check "unknown size" 2 '--size is small or reference, not "huge"' -- train --size huge "${late[@]}"
check "unknown sampler" 2 '--sampler is dpm, ddim, ddpm, euler, heun or pc, not "plms"' -- \
  sample --sampler plms --checkpoint "$work/none.safetensors"
check "unknown spacing" 2 '--spacing is uniform, quadratic or karras, not "log"' -- sample --spacing log --checkpoint "$ckpt"
check "unknown data set of nll" 2 '--data is fashion-mnist, mnist, cifar10 or shapes, not "svhn"' -- nll --data svhn --checkpoint "$ckpt"
check "classifier data set" 2 '--data is fashion-mnist, mnist or shapes, not "cifar10"' -- classifier --data cifar10
check "unknown benchmark" 2 "the benchmark to run is unet" -- bench resnet

# Checkpoints: missing, unreadable, not a checkpoint, cut short, another architecture.
check "no --checkpoint" 2 "--checkpoint FILE is required" -- sample
check "missing checkpoint" 1 "--checkpoint: cannot open $work/none.safetensors: No such file or directory" -- \
  sample --checkpoint "$work/none.safetensors" --out "$work/s.png"
check "a folder as checkpoint" 1 "--checkpoint: cannot read $work: Is a directory" -- sample --checkpoint "$work" --out "$work/s.png"
echo "step,loss" > "$work/log.csv"
check "a text file as checkpoint" 1 "--checkpoint: $work/log.csv: header length" -- nll --checkpoint "$work/log.csv"
head -c 3000 "$ckpt" > "$work/cut.safetensors"
check "a truncated checkpoint" 1 "$work/cut.safetensors" -- sample --checkpoint "$work/cut.safetensors" --out "$work/s.png"
check "a PyTorch state dict" 1 "--checkpoint: $here/data/golden_small.safetensors: not a ddpmkit training checkpoint" -- \
  sample --checkpoint "$here/data/golden_small.safetensors" --out "$work/s.png"
# The same checkpoint whose metadata now says 3 input channels (same length: the file stays valid).
perl -pe 's/"in_ch":"1"/"in_ch":"3"/' "$ckpt" > "$work/other.safetensors"
check "another architecture" 1 "tensor ema.conv_in.weight is [8,1,3,3], but the U-Net of its metadata has [8,3,3,3]" -- \
  sample --checkpoint "$work/other.safetensors" --out "$work/s.png"
check "resume without checkpoint" 1 "--resume: cannot open $work/empty/checkpoint.safetensors" -- \
  train --resume --out "$work/empty" --steps 1
check "resume with another model" 2 "--ch asks for ch = 16, but the checkpoint has 8" -- train --resume --out "$run" --ch 16 --steps 3
check "resume with another batch" 2 "--batch asks for batch = 32, but the checkpoint has 4" -- \
  train --resume --out "$run" --batch 32 --steps 3
check "resume with another schedule" 2 "--schedule asks for schedule = cosine, but the checkpoint has linear" -- \
  train --resume --out "$run" --schedule cosine --steps 3
check "inspect without file" 2 "give exactly one FILE" -- inspect
check "inspect a missing file" 1 "cannot open $work/none.safetensors" -- inspect "$work/none.safetensors"

# Output folders: created with their parents; a file in the way or a folder that cannot be
# written is an error before any work (again: before the data would be loaded).
touch "$work/file"
check "a file in the way of --out" 1 "cannot use the folder $work/file/run: $work/file is in the way" -- \
  train --out "$work/file/run" --steps 1 "${late[@]}"
check "an unwritable folder" 1 "cannot use the folder /proc: cannot create a file in it" -- \
  train --out /proc --steps 1 "${late[@]}"
check "sample into an unwritable folder" 1 "cannot use the folder /proc" -- \
  sample --checkpoint "$work/none.safetensors" --out /proc/samples.png
check "sample --raw where a folder is" 1 "cannot write $work: it is a folder" -- \
  sample --checkpoint "$work/none.safetensors" --raw "$work"
check "classifier --out in the way" 1 "$work/file is in the way" -- classifier --out "$work/file/c.safetensors" "${late[@]}"
check "sample into new folders" 0 "wrote $work/x/y/s.png" -- \
  sample --checkpoint "$ckpt" --n 2 --steps 3 --out "$work/x/y/s.png" --raw "$work/x/z/s.safetensors"
exists "sample's outputs" "$work/x/y/s.png" "$work/x/z/s.safetensors"

# The tasks: each runs on the tiny checkpoints, on test images and on a PNG, and refuses a
# model of the wrong kind by name.
sr="$work/sr"
check "train super-resolution" 0 "step 2: checkpoint" -- \
  train --data shapes --task superres --factor 4 --steps 2 --minutes 0 --batch 4 --ch 8 --timesteps 50 --sample-every 0 --no-pictures --out "$sr"
check "super-resolution predicts v unless told" 0 "output = v" -- inspect "$sr/checkpoint.safetensors"
check "inspect checks the CRC-32s" 0 "tensors, " "elements; every tensor matches its CRC-32" -- inspect "$ckpt"
check "inspect a file of another writer" 0 "no CRC-32 recorded (not written by ddpmkit)" -- inspect "$here/data/golden_small.safetensors"
cc="$work/cc"
check "train class-conditional" 0 "step 2: checkpoint" -- \
  train --data shapes --classes --steps 2 --minutes 0 --batch 4 --ch 8 --timesteps 50 --sample-every 0 --no-pictures --out "$cc"
check "--factor without the task" 2 "--factor is for --task superres" -- train --factor 2 "${late[@]}"
check "--factor that does not divide" 2 "--factor 5 does not divide the 28-pixel images" -- \
  train --data shapes --task superres --factor 5 --steps 1 --out "$work/sr5"
check "guided samples, a row per class" 0 "wrote $work/g.png" -- \
  sample --checkpoint "$cc/checkpoint.safetensors" --n 10 --steps 3 --guidance 2 --out "$work/g.png"
check "--class of an unconditional model" 2 "--class and --guidance need a class-conditional checkpoint" -- \
  sample --checkpoint "$ckpt" --class 1
check "--class out of range" 2 "--class 10 is outside [0, 9] (or -1)" -- sample --checkpoint "$cc/checkpoint.safetensors" --class 10
check "sample a super-resolution model" 2 "a super-resolution model: ddpmkit superres runs it" -- sample --checkpoint "$sr/checkpoint.safetensors"
check "inpaint test images" 0 "mean image (baseline)" "RePaint (jump 2 x 1)" "wrote $work/i.png" -- \
  inpaint --checkpoint "$ckpt" --data shapes --n 3 --steps 6 --jump-length 2 --jump-count 1 --mask strokes --out "$work/i.png"
# Images as files: PNG, PGM or PPM, here binary PGMs of random bytes; a TGA is refused by name.
pgm() { { printf 'P5\n%d %d\n255\n' "$2" "$2"; head -c $(($2 * $2)) /dev/urandom; } > "$1"; }
pgm "$work/img.pgm" 28
pgm "$work/mask.pgm" 28
pgm "$work/low.pgm" 7
check "inpaint an image file with a mask file" 0 "wrote $work/i2.png" -- \
  inpaint --checkpoint "$ckpt" --image "$work/img.pgm" --mask "$work/mask.pgm" --steps 4 --out "$work/i2.png"
check "superres an image file" 0 "wrote $work/s2.png" -- superres --checkpoint "$sr/checkpoint.safetensors" --image "$work/low.pgm" --steps 3 --out "$work/s2.png"
check "superres an image of the wrong size" 2 "--image $work/img.pgm is 28x28 pixels; the model upsamples 7x7 by 4" -- \
  superres --checkpoint "$sr/checkpoint.safetensors" --image "$work/img.pgm"
printf '\0\0\2\0\0\0\0\0\0\0\0\0\x17\x49\x44\x60\x18\0' > "$work/huge.tga"  # a TGA header of 18711 x 24644 pixels
check "an image in another format" 1 "read_image $work/huge.tga: not a PNG, PGM (P5) or PPM (P6) file" -- \
  inpaint --checkpoint "$ckpt" --image "$work/huge.tga"
head -c 60 "$work/s2.png" > "$work/cut.png"
check "a truncated PNG" 1 "read_image $work/cut.png: chunk IDAT at byte 33 claims" -- inpaint --checkpoint "$ckpt" --image "$work/cut.png"
check "inpaint with a wrong-size image" 2 "--image $work/low.pgm is 7x7 pixels; the model takes 28x28" -- inpaint --checkpoint "$ckpt" --image "$work/low.pgm"
check "inpaint a conditional model" 2 "inpainting takes an unconditional model" -- inpaint --checkpoint "$cc/checkpoint.safetensors"
check "denoise test images" 0 "best Gaussian blur" "noisy input" -- denoise --checkpoint "$ckpt" --data shapes --n 3 --sigma 0.3 --steps 4
check "image to image" 0 "wrote $work/d.png" -- denoise --checkpoint "$ckpt" --data shapes --n 2 --strength 0.5 --steps 4 --out "$work/d.png"
check "denoise beyond the schedule" 1 "is above the schedule's largest noise level" -- denoise --checkpoint "$ckpt" --data shapes --n 1 --sigma 1000
check "superres test images" 0 "SR3" "bicubic (baseline)" "consistency RMS" -- \
  superres --checkpoint "$sr/checkpoint.safetensors" --data shapes --n 3 --steps 3
check "superres of an unconditional model" 2 "not a super-resolution model" -- superres --checkpoint "$ckpt"
exists "the tasks' pictures" "$work/g.png" "$work/i.png" "$work/i2.png" "$work/d.png" "$work/s2.png"

# Nothing lost without being asked: a folder with a checkpoint, a second trainer, temporary
# files of killed saves, a torn log row, other data on resume.
again=(train --data shapes --minutes 0 --batch 4 --ch 8 --timesteps 50 --sample-every 0 --no-pictures --out "$run")
check "a new run into a folder with a checkpoint" 2 "$run holds a checkpoint already: --resume continues it, --overwrite replaces it" -- "${again[@]}" --steps 2
check "--resume with --overwrite" 2 "--resume continues the checkpoint, --overwrite replaces it: give one" -- "${again[@]}" --steps 2 --resume --overwrite
flock -o "$run/train.lock" sleep 10 > /dev/null 2>&1 &  # holds the lock (flock itself, not sleep) as a running trainer would
holder=$!
sleep 0.2
check "a second trainer on the folder" 1 "is training into $run" -- "${again[@]}" --steps 4 --resume
kill "$holder"
wait "$holder" 2> /dev/null
touch "$run/checkpoint.safetensors.tmp.999.0" "$run/log.csv.tmp.999.1"
printf '3,0.5,0.5,nan,1' >> "$run/log.csv"  # a row cut short by a crash
check "resume after a crash" 0 "removed $run/checkpoint.safetensors.tmp.999.0" "removed $run/log.csv.tmp.999.1" "resuming at step 2" -- \
  "${again[@]}" --steps 4 --resume
if ls "$run"/*.tmp.* > /dev/null 2>&1 || [ "$(tail -c 1 "$run/log.csv" | od -An -c | tr -d ' ')" != '\n' ] ||
   [ "$(cut -d, -f1 "$run/log.csv" | tr '\n' ' ')" != "step 1 " ]; then
  failed=$((failed + 1)); echo "FAIL: temporary files left, or the log is not its row of step 1 alone: $(tr '\n' '|' < "$run/log.csv")"
else
  passed=$((passed + 1))
fi
check "--overwrite" 0 "from scratch" -- "${again[@]}" --steps 2 --overwrite
# Ctrl-C twice: the first asks for a stop after the step, the second stops at once, as SIGINT
# does without a handler (exit 130), long before the million steps.
"$ddpmkit" train --data shapes --steps 1000000 --minutes 0 --batch 64 --ch 32 --timesteps 50 --sample-every 0 \
  --no-pictures --out "$work/sigint" > "$work/sigint.out" 2>&1 &
trainer=$!
for _ in $(seq 300); do [ -f "$work/sigint/log.csv" ] && [ "$(wc -l < "$work/sigint/log.csv")" -ge 3 ] && break; sleep 0.1; done
kill -INT "$trainer"
sleep 0.05
kill -INT "$trainer"
rc=0
wait "$trainer" || rc=$?
if [ "$rc" -eq 130 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: two Ctrl-C: exit $rc, not 130"; tail -n 3 "$work/sigint.out"; fi
# A schedule shorter than the 50 sampling steps of the pictures: they take T steps.
check "pictures of a 30-step schedule" 0 "step 2: checkpoint" -- \
  train --data shapes --steps 2 --minutes 0 --batch 4 --ch 8 --timesteps 30 --sample-every 0 --out "$work/t30"
exists "the pictures of a 30-step schedule" "$work/t30/samples.png" "$work/t30/chain.png"

# Checkpoints whose metadata were tampered with: refused before anything is allocated.
tamper() {  # tamper OUT KEY=VALUE...: a copy of the tiny checkpoint with metadata replaced
  python3 - "$ckpt" "$@" <<'PY'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
h['__metadata__'].update(dict(a.split('=', 1) for a in sys.argv[3:]))
hb = json.dumps(h).encode()
hb += b' ' * (-len(hb) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
PY
}
for case in "ch=1073741824|UNetConfig: ch 1073741824 is above the limit of 4096" \
            "in_ch=1073741824|UNetConfig: in_ch 1073741824 is above the limit of 1024" \
            "blocks=100000000|UNetConfig: blocks 100000000 is above the limit of 64" \
            "mult=1,2,100000|UNetConfig: ch x mult = 8 x 100000 is above the limit of 4096 channels" \
            "timesteps=10000000000|TrainConfig: timesteps 10000000000 is outside 1..100000" \
            "lr=nan|TrainConfig: lr nan is outside [0, 1000]" \
            "flip=yes|checkpoint metadata flip = \"yes\" is not 0 or 1"; do
  tamper "$work/tampered.safetensors" "${case%%|*}"
  check "metadata ${case%%|*}" 1 "${case#*|}" -- sample --checkpoint "$work/tampered.safetensors" --n 2 --out "$work/t.png"
done
# One flipped bit in state.step (bit 40: "resumes at step 1099511627778"): the CRC-32 of the
# data names the tensor; with the CRC-32 made to match (a writer's bug, not damage), the step
# check still refuses it.
cp "$ckpt" "$work/pristine.safetensors"
flip_step() {  # flip_step OUT [recrc]
  python3 - "$work/pristine.safetensors" "$@" <<'PY'
import json, struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
begin, end = (8 + n + o for o in h['state.step']['data_offsets'])
b[begin + 5] ^= 1
if len(sys.argv) > 3:
    names = sorted(k for k in h if k != '__metadata__')
    crcs = h['__metadata__']['ddpmkit.crc32'].split(',')
    crcs[names.index('state.step')] = '%08x' % zlib.crc32(bytes(b[begin:end]))
    h['__metadata__']['ddpmkit.crc32'] = ','.join(crcs)
    hb = json.dumps(h).encode()
    hb += b' ' * (-len(hb) % 8)
    b = struct.pack('<Q', len(hb)) + hb + b[8 + n:]
open(sys.argv[2], 'wb').write(b)
PY
}
flip_step "$run/checkpoint.safetensors"
check "a flipped bit in state.step" 1 "checkpoint.safetensors: tensor \"state.step\": its data does not match the CRC-32 recorded when the file was written" -- \
  "${again[@]}" --steps 8 --resume
flip_step "$run/checkpoint.safetensors" recrc
check "a wrong state.step with a matching CRC-32" 1 "state.step is 1099511627778 but opt.steps is 2 and ema.updates 2: the checkpoint is damaged" -- \
  "${again[@]}" --steps 8 --resume
cp "$work/pristine.safetensors" "$ckpt"
tamper "$work/other-data.safetensors" data_digest=0123456789abcdef
cp "$work/other-data.safetensors" "$run/checkpoint.safetensors"
check "resume on other data" 1 "are not the data of the checkpoint (0123456789abcdef)" -- "${again[@]}" --steps 4 --resume
tamper "$work/escapes.safetensors" $'title=\e]0;owned\a'
check "inspect shows control bytes escaped" 0 'title = \x1b]0;owned\x07' -- inspect "$work/escapes.safetensors"
check "--n beyond the limit" 2 "--n must be at most 1000000, not 4611686018427387904" -- sample --checkpoint "$ckpt" --n 4611686018427387904
check "--ch beyond the limit" 2 "UNetConfig: ch 1073741824 is above the limit of 4096" -- train --ch 1073741824 "${late[@]}"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
