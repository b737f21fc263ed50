"""The official DFI solve with and without jaxopt's zoom line search: loss and seconds per iteration.

    python -m benchmarks.bench_linesearch --size 64 --iters 10

One synthetic face, the seeded random VGG-19, the `official` preset's objective and the batched engine's L-BFGS-B on its
box, targets 1.1·φ(x). Each mode is run twice (the second call is compiled); prints one JSON line per
mode: the loss at the start and at the end, whether the iterates equal the fixed step's, the first
call's seconds and the compiled seconds per iteration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np

from dfijax import invert as inv
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dfi import presets
from dfijax.weights import random_weights


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--modes", default="none,zoom", help="comma-separated: none, zoom, backtracking, hager-zhang")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    weights = random_weights(0)
    x = synthetic_faces(50, seed=0).images([0], args.size)
    reference = None
    for mode in args.modes.split(","):
        cfg = presets.preset(
            "official", size=args.size, iters=args.iters, linesearch=mode, shard=False, optimizer="engine"
        )
        loss = cfg.feature_loss(pretrained=False)
        targets = {k: 1.1 * v for k, v in inv.feature_targets(loss, weights.variables, x).items()}
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            r = inv.invert(loss, weights.variables, targets, x, cfg.solver(args.iters))
            jax.block_until_ready(r.images)
            times.append(time.perf_counter() - t0)
        history = np.asarray(r.loss_history[0])
        reference = history if reference is None else reference
        row = {
            "linesearch": mode,
            "size": args.size,
            "iters": args.iters,
            "loss_start": float(history[0]),
            "loss_end": float(history[-1]),
            "same_iterates_as_first_mode": bool(np.allclose(history, reference, rtol=1e-5)),
            "first_call_s": round(times[0], 1),
            "s_per_iteration": round(times[1] / args.iters, 3),
            "backend": jax.default_backend(),
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
