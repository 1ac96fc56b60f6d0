#!/usr/bin/env bash
# One GPU session of the kernel checks, meant to finish in under 5 minutes on one H100/H200-class GPU with torch
# (CUDA build), nvcc, no internet and no pykeops:
#   1. build ssm._C in place with the CUDA kernels (MAX_JOBS=16, TORCH_CUDA_ARCH_LIST=9.0)
#   2. `ssm doctor` (which backends work on the GPU, and why not)
#   3. the GPU tests (pytest -m gpu; the no-sync test runs each op under torch.cuda.set_sync_debug_mode("error"))
#   4. `ssm bench kernels --device cuda` (fwd / bwd / fwd+bwd tables, ratios, and the official s4 extension's numbers)
#   5. `python benchmarks/layers.py --device cuda` when that script takes --device
# Everything goes under $OUT (default $TMPDIR/ssm-gpu-out): one log per step and summary.txt.
#
#   OUT=/tmp/out bash benchmarks/gpu/run.sh            # on the GPU machine
#   bash benchmarks/gpu/run.sh --dry-run               # anywhere: checks the script and every step cheaply on the CPU
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-${TMPDIR:-/tmp}/ssm-gpu-out}"
PY="${PYTHON:-python}"
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export SSM_CACHE_DIR="$OUT/cache"           # probe verdicts of this run only
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
START=$SECONDS

# step NAME SECONDS CMD...: run with a time limit, log to $OUT/NAME.log, record status and time
step() {
  local name="$1" limit="$2"
  shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local msg="$name: exit $rc in $((SECONDS - t0)) s"
  [ $rc -eq 124 ] && msg="$msg (timed out)"
  echo "$msg" | tee -a "$SUMMARY"
  tail -n 40 "$OUT/$name.log"
  return 0
}

{
  echo "date: $(date -u +%FT%TZ)  dry-run: $DRY  root: $ROOT"
  "$PY" -c "import torch, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| devices', [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  command -v nvcc > /dev/null && nvcc --version | tail -1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

if [ $DRY -eq 1 ]; then
  # The same steps, cheap and on the CPU: the build only evaluates setup.py, the tests are collected, the benchmark
  # runs one tiny size, the layers script only shows its options.
  step build 120 env SSM_BUILD_CUDA=auto "$PY" setup.py --version
  step doctor 300 "$PY" -m ssm.cli doctor --device cpu
  step tests_gpu 300 "$PY" -m pytest -q -m gpu --collect-only tests/kernels/test_gpu.py
  step bench_kernels 300 "$PY" -m ssm.cli bench kernels --device cpu --sizes 8x8x256 --repeats 1 --backends torch,ext
  if "$PY" benchmarks/layers.py --help 2>/dev/null | grep -q -- "--device"; then
    step bench_layers 60 "$PY" benchmarks/layers.py --help
  else
    echo "bench_layers: skipped (benchmarks/layers.py has no --device option)" | tee -a "$SUMMARY"
  fi
else
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'" || exit 1
  step build 170 env SSM_BUILD_EXT=1 SSM_BUILD_CUDA=1 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 \
    "$PY" setup.py build_ext --inplace
  step doctor 120 "$PY" -m ssm.cli doctor
  step tests_gpu 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_gpu.py \
    --junitxml="$OUT/tests_gpu.xml"
  step bench_kernels 150 "$PY" -m ssm.cli bench kernels --device cuda --repeats 20 --backends torch,ext,triton
  cp "$OUT/bench_kernels.log" "$OUT/bench_kernels.md"
  if "$PY" benchmarks/layers.py --help 2>/dev/null | grep -q -- "--device"; then
    step bench_layers 90 "$PY" benchmarks/layers.py --device cuda --lengths 1024 4096 --timeout 80
  else
    echo "bench_layers: skipped (benchmarks/layers.py has no --device option)" | tee -a "$SUMMARY"
  fi
fi
echo "total: $((SECONDS - START)) s; logs in $OUT" | tee -a "$SUMMARY"
