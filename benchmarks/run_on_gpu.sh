#!/usr/bin/env bash
# The benchmarks and every experiment at its GPU-sized settings, on a CUDA (or TPU) machine, from the
# repository root:
#
#   pip install -e ".[cuda,test]"          # or ".[tpu,test]" on a Cloud TPU VM
#   bash benchmarks/run_on_gpu.sh           # both parts; or `bench` or `experiments` alone
#
# bench:       bench_inversion (every variant; the compile cold, then from the persistent cache in a
#              second process), bench_fast_style, bench_fusion (float32 and bfloat16), then
#              bench_inversion's scaling curve (1..80 problems) and the largest batch that fits; with
#              COST=1 cost_analysis first. Each under its own timeout, all within BENCH_BUDGET_S
#              seconds when set (a step that would get under 20 s is skipped).
# experiments: python -m benchmarks.gpu_defaults (each experiment end to end, GPU-sized; BUDGET_S
#              seconds in all, default 900), its pictures packed into gpu_defaults_<group>.tar.gz.
# Extra flags (they override the defaults): INV_ARGS for bench_inversion, FS_ARGS for bench_fast_style,
# FUSION_ARGS for bench_fusion, e.g. a seconds-long check of the script itself on a CPU:
#   INV_ARGS=--tiny FS_ARGS="--size 32 --batch 2 --batches 1 --reps 1" \
#   FUSION_ARGS="--size 32 --batch 4 --width 8 --steps 1" bash benchmarks/run_on_gpu.sh bench
# PACK=1 packs the bench files into one bench.tar.gz. On a machine without a package index, put the
# wheels it lacks (list and command in benchmarks/offline_wheels.txt) in .whl/ in the repository root;
# they are installed first.
# Results (JSON, logs, archives) go to $OUT (default benchmarks/results/<date>-<device>/); copy the
# tables into benchmarks/RESULTS.md with the date, the device and the command.
set -uo pipefail
PART=${1:-all}
case "$PART" in all | bench | experiments) ;; *) echo "usage: $0 [all|bench|experiments]" >&2; exit 2 ;; esac
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "${SITE:-/tmp/dfijax-site}" .whl/*.whl || exit 1
  export PYTHONPATH="${SITE:-/tmp/dfijax-site}:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax; print('jax', jax.__version__, jax.devices())" || exit 1
# everything the runs import, checked before any of them starts
python3 -c "import dfijax.invert, dfijax.training, grain.python, tensorboardX, cv2, sklearn, optax, orbax.checkpoint" || {
  echo "error: a package is missing (see benchmarks/offline_wheels.txt)" >&2; exit 1; }
OUT=${OUT:-benchmarks/results/$(date +%F)-$(python3 -c "import jax; print(jax.devices()[0].device_kind.replace(' ', '-').lower())")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/run_on_gpu.log"
step() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
# bench LIMIT CMD...: run CMD under min(LIMIT, what is left of BENCH_BUDGET_S) seconds; skip it under 20 s
BENCH_BUDGET_S=${BENCH_BUDGET_S:-100000}
bench() {
  local left=$((BENCH_BUDGET_S - SECONDS)) limit=$1
  shift
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 20 ]; then echo "   skipped: BENCH_BUDGET_S is spent" | tee -a "$LOG"; return; fi
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
}

if [ "$PART" != experiments ]; then
  SECONDS=0
  CACHE=$(mktemp -d)
  files=()
  if [ "${COST:-0}" = 1 ]; then
    step cost_analysis
    bench 600 python3 -m benchmarks.cost_analysis --json "$OUT/cost_analysis.json"
    files+=(cost_analysis.json)
  fi
  # the most wanted numbers first; bench_inversion rewrites its JSON after each measurement
  step "bench_inversion: every variant (cold compile)"
  # shellcheck disable=SC2086
  bench 360 python3 -m benchmarks.bench_inversion --torch-subset 2 --compile-cache "$CACHE" \
    --json "$OUT/bench_inversion.json" ${INV_ARGS:-}
  step "bench_inversion: the compile from the persistent cache"
  # shellcheck disable=SC2086
  bench 120 python3 -m benchmarks.bench_inversion ${INV_ARGS:-} --only jax_jaxopt_bf16 --repeats 1 \
    --compile-cache "$CACHE" --json "$OUT/bench_inversion_cached.json"
  step bench_fast_style
  # shellcheck disable=SC2086
  bench 180 python3 -m benchmarks.bench_fast_style --json "$OUT/bench_fast_style.json" ${FS_ARGS:-}
  for dt in float32 bfloat16; do
    step "bench_fusion $dt"
    # shellcheck disable=SC2086
    bench 150 python3 -m benchmarks.bench_fusion --dtype $dt --json "$OUT/bench_fusion_$dt.json" ${FUSION_ARGS:-}
  done
  step "bench_inversion: the scaling curve and the largest batch"
  # shellcheck disable=SC2086
  bench 360 python3 -m benchmarks.bench_inversion --only none --scaling 1,5,10,20,40,80 --max-batch 80 \
    --json "$OUT/bench_inversion_curves.json" ${INV_ARGS:-}
  files+=(bench_inversion.json bench_inversion_cached.json bench_inversion_curves.json bench_fast_style.json)
  files+=(bench_fusion_float32.json bench_fusion_bfloat16.json)
  rm -rf "$CACHE"
  if [ "${PACK:-0}" = 1 ]; then
    (cd "$OUT" && tar czf bench.tar.gz --ignore-failed-read "${files[@]}" run_on_gpu.log 2> /dev/null && rm -f "${files[@]}")
  fi
fi
if [ "$PART" != bench ]; then
  step "experiments at their GPU-sized settings"
  python3 -m benchmarks.gpu_defaults --out "$(mktemp -d)/runs" --archives "$OUT" --budget-s "${BUDGET_S:-900}" 2>&1 | tee -a "$LOG"
fi
step done
