#!/usr/bin/env bash
# compare_sampling.sh — the time to draw samples from one checkpoint, ddpmkit beside PyTorch.
#
# For DDIM with 50 steps and DPM-Solver++(2M) with 20, runs `ddpmkit sample` and the PyTorch
# peer (benchmarks/torch_sampling.py: the same U-Net, EMA weights, timestep grid and update
# rules) alternately, --rounds times each, with the same number of samples, batch and threads,
# and prints the median seconds of each and the ratio ours / PyTorch (below 1: ddpmkit is
# faster). ddpmkit's time is the whole command's wall time (reading the checkpoint and writing
# the PNG grid included); PyTorch's is its sampling loop alone (Python's start and the import of
# torch excluded), so the comparison leans in PyTorch's favour.
#
#   benchmarks/compare_sampling.sh CHECKPOINT [--ddpmkit build/ddpmkit] [--python /usr/bin/python3]
#                                  [--rounds 3] [--n 1000] [--batch 100] [--threads 2]
#
# PyTorch: Debian's python3-torch, with libopenblas0-pthread.
# Both programs run on a tuned glibc malloc (tuned_malloc.sh says why).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/tuned_malloc.sh"
ddpmkit="$here/../build/ddpmkit"
python=/usr/bin/python3
rounds=3 n=1000 batch=100 threads=2
checkpoint=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ddpmkit|--python|--rounds|--n|--batch|--threads)
      [ $# -ge 2 ] || { echo "compare_sampling.sh: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --ddpmkit) ddpmkit="$2" ;; --python) python="$2" ;; --rounds) rounds="$2" ;;
        --n) n="$2" ;; --batch) batch="$2" ;; --threads) threads="$2" ;;
      esac
      shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "compare_sampling.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$checkpoint" ] || { echo "compare_sampling.sh: one checkpoint only" >&2; exit 2; }
       checkpoint="$1"; shift ;;
  esac
done
[ -n "$checkpoint" ] || { echo "compare_sampling.sh: which checkpoint? (see --help)" >&2; exit 2; }
[ -f "$checkpoint" ] || { echo "compare_sampling.sh: no file $checkpoint" >&2; exit 1; }
[ -x "$ddpmkit" ] || { echo "compare_sampling.sh: no ddpmkit program at $ddpmkit (build it, or give --ddpmkit)" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null ||
  { echo "compare_sampling.sh: $python cannot import torch (apt-get install python3-torch libopenblas0-pthread)" >&2; exit 1; }

exec "$python" - "$ddpmkit" "$here/torch_sampling.py" "$checkpoint" "$rounds" "$n" "$batch" "$threads" <<'PY'
import json, os, platform, statistics, subprocess, sys, tempfile, time

ddpmkit, peer, checkpoint = sys.argv[1:4]
rounds, n, batch, threads = map(int, sys.argv[4:8])
common = ["--n", str(n), "--batch", str(batch)]
out = tempfile.mkdtemp()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"{n} samples from {checkpoint}, batch {batch}, {threads} threads, {rounds} rounds; {cpu}, {os.cpu_count()} CPUs")
print("| sampler | ddpmkit | PyTorch | ratio |")
print("| --- | --- | --- | --- |")
for sampler, steps in (("ddim", 50), ("dpm", 20)):
    ours, theirs = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([ddpmkit, "sample", "--checkpoint", checkpoint, "--sampler", sampler, "--steps", str(steps),
                        "--out", os.path.join(out, "samples.png")] + common,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
        ours.append(time.perf_counter() - start)
        line = subprocess.run([sys.executable, peer, checkpoint, "--sampler", sampler, "--steps", str(steps),
                               "--threads", str(threads)] + common, check=True, capture_output=True, text=True).stdout
        theirs.append(json.loads(line.strip().splitlines()[-1])["seconds"])
    a, b = statistics.median(ours), statistics.median(theirs)
    name = "DDIM, 50 steps" if sampler == "ddim" else "DPM-Solver++(2M), 20 steps"
    print(f"| {name} | {a:.1f} s | {b:.1f} s | {a / b:.2f} |", flush=True)
PY
