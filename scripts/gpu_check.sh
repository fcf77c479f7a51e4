#!/usr/bin/env bash
# GPU day in one command: on a lent GPU machine (an H200 with Python 3.12, CUDA torch, nvcc, cmake, ninja,
# pybind11, scikit-build-core, pytest, hypothesis, numpy, scipy; no network), from the repository root:
#
#   bash scripts/gpu_check.sh              # build with CUDA, run the GPU tests, the exactness suites on CUDA
#                                          # tensors through the torch engine, compute-sanitizer memcheck on a
#                                          # small pairwise case, and benchmarks/gpu_bench.py; $OUT gets
#                                          # gpu_check.json (every step: command, status, seconds) and gpu_check.log,
#                                          # and gpu_bench.json
#   bash scripts/gpu_check.sh --dry-run    # here or in CI, no GPU: every step that needs none -- the wheel download
#                                          # into .whl/ (what the device machine lacks: scipy-openblas32), the CMake
#                                          # configure with CUDA (where nvcc is), the benchmark on CPU at tiny sizes
#
# Each step is bounded by `timeout`; a failing step is recorded and the others still run. The whole run is sized
# to finish in under 9 minutes on an H200 so that a second run fits the 15 minutes of device time.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
STEPS="$OUT/.steps.tsv"
: > "$LOG"
: > "$STEPS"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=python
OPENBLAS_VERSION="${OPENBLAS_VERSION:-$("$PY" -c 'import importlib.metadata as m; print(m.version("scipy-openblas32"))' 2>/dev/null || echo 0.3.30.0.8)}"

step() {  # step NAME SECONDS COMMAND...: run, log, record
  local name=$1 limit=$2
  shift 2
  echo "=== $name: $*" >> "$LOG"
  local t0 rc
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >> "$LOG" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(echo "$(date +%s.%N) - $t0" | bc)" "$*" >> "$STEPS"
  echo "=== $name: exit $rc" >> "$LOG"
  return $rc
}

skip() {  # skip NAME WHY
  printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$STEPS"
  echo "=== $1: skipped ($2)" >> "$LOG"
}

# 1. wheels the device image lacks, carried in .whl/ (ignored by git)
if [ "$DRY" = 1 ]; then
  step wheels 300 "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "scipy-openblas32==$OPENBLAS_VERSION"
  ls .whl/scipy_openblas32-*cp312*.whl >> "$LOG" 2>&1 || ls .whl/scipy_openblas32-*.whl >> "$LOG" 2>&1
else
  step wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# 2. the build, with ganmetrics._cuda for the H200 (sm_90)
export GANMETRICS_CUDA=ON GANMETRICS_CUDA_ARCHS=90-real
if [ "$DRY" = 1 ]; then
  if command -v nvcc >/dev/null 2>&1; then
    # pybind11's CMake files into a private folder (the build's own requirement; nothing of the environment changes)
    step pybind11 300 "$PY" -m pip install -q --no-deps --target build/gpu-check-tools pybind11
    step configure 300 cmake -S . -B build/gpu-check-configure -DGANMETRICS_CUDA=ON -DGANMETRICS_CUDA_ARCHS=90-real \
      -DPython_EXECUTABLE="$(command -v "$PY")" \
      -Dpybind11_DIR="$(PYTHONPATH=build/gpu-check-tools "$PY" -m pybind11 --cmakedir)"
  else
    skip configure "no nvcc here"
  fi
else
  step build 420 "$PY" -m pip install -q --no-build-isolation --no-deps -e .
fi

# 3. the GPU tests: custom kernels (with the flag that enables them), then the exactness suites on CUDA tensors
#    through the torch engine, then a small pairwise case under compute-sanitizer
if [ "$DRY" = 1 ]; then
  skip gpu-tests "needs a GPU"
  skip torch-engine-on-cuda "needs a GPU"
  skip memcheck "needs a GPU"
else
  step gpu-tests 240 env GANMETRICS_ENABLE_UNVERIFIED_CUDA=1 "$PY" -m pytest -q -x -m gpu tests/test_cuda.py -p no:cacheprovider
  step torch-engine-on-cuda 300 env GANMETRICS_TEST_DEVICE=cuda "$PY" -m pytest -q -k "torch" -p no:cacheprovider \
    tests/test_knn_exact.py tests/test_knn.py tests/test_precision.py tests/test_hostile.py tests/test_claims.py
  step memcheck 180 env GANMETRICS_ENABLE_UNVERIFIED_CUDA=1 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$PY" -c "
import torch, ganmetrics as gm
g = torch.Generator(device='cuda').manual_seed(0)
r, f = torch.randn(300, 33, device='cuda', generator=g), torch.randn(257, 33, device='cuda', generator=g)
from ganmetrics.engines import forced_tiles
with forced_tiles(64, 48):
    print(dict(gm.prdc(r, f, k=3, engine='cuda')), dict(gm.prdc(r.cpu(), f.cpu(), k=3)))
"
fi

# 4. the benchmarks: every GPU path side by side (tiny sizes on the CPU in a dry run)
if [ "$DRY" = 1 ]; then
  step bench 300 "$PY" benchmarks/gpu_bench.py --device cpu --tiny --out "$OUT/gpu_bench.json"
else
  step bench 300 "$PY" benchmarks/gpu_bench.py --out "$OUT/gpu_bench.json"
fi

# 5. one JSON of every step (and the benchmark's rows when there are some)
"$PY" - "$STEPS" "$OUT" "$DRY" <<'EOF'
import json, os, platform, sys
steps_path, out, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
steps = []
for line in open(steps_path):
    name, rc, seconds, command = line.rstrip("\n").split("\t", 3)
    steps.append({"step": name, "status": rc, "seconds": round(float(seconds or 0), 2), "command": command})
report = {"dry_run": dry, "python": platform.python_version(), "steps": steps}
bench = os.path.join(out, "gpu_bench.json")
if os.path.exists(bench):
    report["bench"] = json.load(open(bench))
with open(os.path.join(out, "gpu_check.json.tmp"), "w") as fh:
    json.dump(report, fh, indent=1)
os.replace(os.path.join(out, "gpu_check.json.tmp"), os.path.join(out, "gpu_check.json"))
failed = [s["step"] for s in steps if s["status"] not in ("0", "skipped")]
print(f"gpu_check: {len(steps)} steps, failed: {failed or 'none'}; {out}/gpu_check.json")
sys.exit(1 if failed else 0)
EOF
