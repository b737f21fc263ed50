#!/usr/bin/env bash
# Run every benchmark on a CUDA (or TPU) machine, from the repository root:
#
#   pip install -e ".[cuda,test]"          # or ".[tpu,test]" on a Cloud TPU VM
#   bash benchmarks/run_on_gpu.sh [bench_inversion arguments, e.g. --torch-subset 2]
#
# On a machine that cannot reach a package index, pre-download the wheels it lacks elsewhere
# (`pip download --no-deps --only-binary=:all: -d .whl jaxopt tensorflow-datasets ...`), copy the
# .whl/ folder into the repository root and this script installs them first.
# Results (JSON + logs) go to $OUT (default benchmarks/results/<date>-<device>/); copy the tables into
# benchmarks/RESULTS.md with the date, the device and the command.
set -uo pipefail
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "${SITE:-/tmp/dfijax-site}" .whl/*.whl || exit 1
  export PYTHONPATH="${SITE:-/tmp/dfijax-site}:$PWD"
fi
export PYTHONUNBUFFERED=1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
OUT=${OUT:-benchmarks/results/$(date +%F)-$(python3 -c "import jax; print(jax.devices()[0].device_kind.replace(' ', '-').lower())")}
mkdir -p "$OUT"
python3 -m benchmarks.cost_analysis 2>&1 | tee "$OUT/cost_analysis.log"
python3 -m benchmarks.bench_inversion --json "$OUT/bench_inversion.json" "$@" 2>&1 | tee "$OUT/bench_inversion.log"
python3 -m benchmarks.bench_fast_style --json "$OUT/bench_fast_style.json" 2>&1 | tee "$OUT/bench_fast_style.log"
python3 -m benchmarks.bench_fusion --json "$OUT/bench_fusion.json" 2>&1 | tee "$OUT/bench_fusion.log"
