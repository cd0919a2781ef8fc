#!/usr/bin/env bash
# compare_torch.sh — a U-Net's training and sampling steps, ddpmkit beside PyTorch.
#
# Runs `ddpmkit bench unet` and the PyTorch twin (benchmarks/torch_unet.py; the model is
# described in docs/unet.md) alternately, --rounds times each, with the same batch, threads,
# steps and model (the reference U-Net unless --ch, --mult, --blocks, --attn, --groups, --in-ch
# or --res say otherwise; both programs take those flags), so both see the same machine load. Each run reports the median of its
# timed steps; the script prints the median over rounds of each figure and the ratios
# ours / PyTorch (below 1: ddpmkit is faster or smaller). Peak memory is each process's peak
# resident set size, read by the same wrapper (getrusage) for both. Each round also runs
# ddpmkit on one thread, for the speed-up of the threads (unless --no-scaling).
#
#   benchmarks/compare_torch.sh [--ddpmkit build/ddpmkit] [--python /usr/bin/python3]
#                               [--rounds 3] [--batch 64] [--threads 2] [--steps 20] [--res 28]
#                               [--ch 32] [--mult 1,2,2] [--blocks 2] [--attn 7] [--groups 8] [--in-ch 1]
#                               [--no-scaling]
#
# PyTorch: Debian's python3-torch, with libopenblas0-pthread (else its matrix products use
# the slow reference BLAS).
# Both programs run on a tuned glibc malloc (tuned_malloc.sh says why).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/tuned_malloc.sh"
ddpmkit="$here/../build/ddpmkit"
python=/usr/bin/python3
rounds=3 batch=64 threads=2 steps=20 res=28 scaling=1
model=()  # the model flags, passed to both programs as they are
while [ $# -gt 0 ]; do
  case "$1" in
    --ch|--mult|--blocks|--attn|--groups|--in-ch) [ $# -ge 2 ] || { echo "compare_torch.sh: $1 needs a value" >&2; exit 2; }
      model+=("$1" "$2"); shift 2 ;;
    --ddpmkit) ddpmkit="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --res) res="$2"; shift 2 ;;
    --no-scaling) scaling=0; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "compare_torch.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$ddpmkit" ] || { echo "compare_torch.sh: no ddpmkit program at $ddpmkit (build it, or give --ddpmkit)" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null ||
  { echo "compare_torch.sh: $python cannot import torch (apt-get install python3-torch libopenblas0-pthread)" >&2; exit 1; }

exec "$python" - "$ddpmkit" "$here/torch_unet.py" "$rounds" "$batch" "$threads" "$steps" "$res" "$scaling" "${model[@]}" <<'PY'
import json, os, platform, resource, shlex, statistics, subprocess, sys

ddpmkit, peer = sys.argv[1], sys.argv[2]
rounds, batch, threads, steps, res, scaling = map(int, sys.argv[3:9])
model = sys.argv[9:]
def flags(n_threads):
    return ["--batch", str(batch), "--threads", str(n_threads), "--steps", str(steps), "--res", str(res)] + model
# Each run goes through a fresh wrapper process, so that RUSAGE_CHILDREN is that run's peak alone.
wrapper = ("import json, resource, subprocess, sys\n"
           "out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout\n"
           "line = json.loads(out.strip().splitlines()[-1])\n"
           "line['process_peak_rss_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
           "print(json.dumps(line))\n")

def run(cmd):
    try:
        out = subprocess.run([sys.executable, "-c", wrapper] + cmd, check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as e:
        sys.exit(f"compare_torch.sh: {' '.join(cmd)} failed:\n{e.stderr}")
    return json.loads(out)

os.environ["OMP_NUM_THREADS"] = str(threads)
ours, theirs, ours_1 = [], [], []
for r in range(rounds):
    ours.append(run([ddpmkit, "bench", "unet"] + flags(threads)))
    theirs.append(run([sys.executable, peer] + flags(threads)))
    print(f"round {r + 1}/{rounds}: ddpmkit train {ours[-1]['train_step_s']:.3f} s sample {ours[-1]['sample_step_s']:.3f} s "
          f"{ours[-1]['process_peak_rss_mb']:.0f} MB | PyTorch train {theirs[-1]['train_step_s']:.3f} s "
          f"sample {theirs[-1]['sample_step_s']:.3f} s {theirs[-1]['process_peak_rss_mb']:.0f} MB", flush=True)
    if threads > 1 and scaling:  # ddpmkit on one thread, for the scaling
        ours_1.append(run([ddpmkit, "bench", "unet"] + flags(1)))
        print(f"         ddpmkit on 1 thread: train {ours_1[-1]['train_step_s']:.3f} s "
              f"sample {ours_1[-1]['sample_step_s']:.3f} s", flush=True)

if ours[0]["params"] != theirs[0]["params"]:
    sys.exit(f"compare_torch.sh: the models differ: {ours[0]['params']} vs {theirs[0]['params']} parameters")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
what = "reference U-Net" if not model else "U-Net " + " ".join(shlex.quote(m) for m in model)
print(f"\n{what}, {ours[0]['params']} parameters, batch {batch}, {res}x{res}, {threads} threads, "
      f"median of {rounds} alternating rounds of {steps} steps; ddpmkit {ours[0]['arch']}, PyTorch {theirs[0]['torch']}; {cpu}")
print(f"{'':22}{'ddpmkit':>10}{'PyTorch':>10}{'ratio':>8}")
summary = {"params": ours[0]["params"], "model": model, "res": res, "batch": batch, "threads": threads, "rounds": rounds, "cpu": cpu}
for key, label, unit in [("train_step_s", "train step", "s"), ("sample_step_s", "sample step", "s"),
                         ("process_peak_rss_mb", "peak memory", "MB")]:
    a = statistics.median(x[key] for x in ours)
    b = statistics.median(x[key] for x in theirs)
    fmt = ".3f" if unit == "s" else ".0f"
    print(f"{label + ' (' + unit + ')':22}{a:>10{fmt}}{b:>10{fmt}}{a / b:>8.2f}")
    summary[key] = {"ddpmkit": a, "torch": b, "ratio": a / b}
for key, label in [("train_step_s", "train step"), ("sample_step_s", "sample step")]:
    if ours_1:
        speedup = statistics.median(x[key] for x in ours_1) / summary[key]["ddpmkit"]
        print(f"ddpmkit {label}: {threads} threads are {speedup:.2f}x faster than 1")
        summary[key]["speedup_over_1_thread"] = speedup
print(json.dumps(summary))
PY
