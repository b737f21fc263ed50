#!/usr/bin/env bash
# Run the inversion benchmark on a lent GPU machine (device tool), from the repo root there.
# The machine has jax/flax/optax/torch but not jaxopt: carry it as a wheel. Here, once:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl jaxopt==0.8.5
# then: run(command="bash benchmarks/run_on_gpu.sh", carry=[".whl"]) and copy $OUT/bench* back.
# Extra arguments go to bench_inversion; the fast-style (and fusion) benchmarks run with their defaults.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__)"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m benchmarks.bench_inversion --json "$OUT/bench.json" "$@" 2>&1 | tee "$OUT/bench.log"
python3 -m benchmarks.bench_fast_style --json "$OUT/bench_fast_style.json" 2>&1 | tee "$OUT/bench_fast_style.log"
python3 -m benchmarks.bench_fusion --json "$OUT/bench_fusion.json" 2>&1 | tee "$OUT/bench_fusion.log"
