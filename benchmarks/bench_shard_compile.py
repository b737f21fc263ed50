"""First-call time (compile + 4 iterations) of a DFI solve split over several devices.

    python -m benchmarks.bench_shard_compile --devices 8 --linesearch zoom

On a CPU, --devices forces that many XLA host devices (set before JAX starts). The solve is the
`official` preset's (L-BFGS-B on the Caffe box; --linesearch none for the fixed step) at 32 px on taps
relu3_1/relu4_1 with the seeded random VGG-19, 2 problems padded to the device count. Prints one JSON
line: seconds and peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import jax
import numpy as np

from dfijax import invert as inv
from dfijax.dfi import presets
from dfijax.weights import random_weights


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=8, help="forced XLA host devices on a CPU")
    p.add_argument("--linesearch", default="zoom", choices=["none", "zoom", "backtracking", "hager-zhang"])
    p.add_argument("--no-shard", action="store_true", help="one device (the comparison)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={args.devices}"

    weights = random_weights(0, preprocess="caffe")
    cfg = presets.preset(
        "official", taps=("relu3_1", "relu4_1"), size=32, iters=4, linesearch=args.linesearch, optimizer="engine"
    )
    loss = cfg.feature_loss(True)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    targets = inv.feature_targets(loss, weights.variables, x)
    t0 = time.perf_counter()
    r = inv.invert(loss, weights.variables, targets, x, cfg.solver(4), shard=not args.no_shard)
    jax.block_until_ready(r.images)
    out = {
        "devices": jax.local_device_count(),
        "backend": jax.default_backend(),
        "shard": not args.no_shard,
        "linesearch": args.linesearch,
        "first_call_s": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
