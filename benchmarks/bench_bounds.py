"""Pixel bounds during the DFI solve: true L-BFGS-B (jaxopt LBFGSB) against projected L-BFGS (clip to the
box after each fixed step, optax backend), on the same problem.

    python -m benchmarks.bench_bounds                       # CPU-sized: 64 px, 6 problems, 150 iterations
    python -m benchmarks.bench_bounds --size 200 --iters 500 --images 8   # the official preset's size (GPU)

Problem: the bench_inversion DFI problem (seeded random VGG-19, taps relu3_1/4_1/5_1, targets
φ(x) + α‖φ(x)‖w/‖w‖ at alphas 0.4 and 0.8 so that the optimum leaves the box), objective ½Σ‖φ(z) − t‖²
+ 1e-3·TV² on 0-255 values (the official preset's), box [0, 1], history 10. Reports the final loss,
the iterations each needs to come within 1 % of the better final loss, the pixels outside the box,
and the time (compile excluded: each solver runs once to warm up).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import dfijax  # noqa: F401
from benchmarks.bench_inversion import TAPS, build_problem
from dfijax import invert as inv
from dfijax.weights import random_weights


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--iters", type=int, default=150)
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    variables = random_weights(0).variables
    x0, targets = build_problem(a.images, [0.4, 0.8], a.size, variables)
    loss = inv.FeatureLoss(taps=TAPS, reduction="sum", tv_weight=1e-3)
    rows = {}
    for name, backend in (("lbfgsb", "jaxopt"), ("project", "optax")):
        cfg = inv.SolverConfig(maxiter=a.iters, backend=backend, bounds=(0.0, 1.0), history_size=10)
        warm = inv.SolverConfig(maxiter=2, backend=backend, bounds=(0.0, 1.0), history_size=10)
        inv.invert(loss, variables, targets, jnp.asarray(x0), warm).images.block_until_ready()
        inv.invert(loss, variables, targets, jnp.asarray(x0), cfg).images.block_until_ready()  # compile
        t0 = time.perf_counter()
        r = inv.invert(loss, variables, targets, jnp.asarray(x0), cfg)
        r.images.block_until_ready()
        seconds = time.perf_counter() - t0
        rows[name] = {
            "final_loss": np.asarray(r.final_loss),
            "history": np.asarray(r.loss_history),
            "seconds": seconds,
            "outside_box": int(np.sum((np.asarray(r.images) < 0) | (np.asarray(r.images) > 1))),
        }
    best = np.minimum(rows["lbfgsb"]["final_loss"], rows["project"]["final_loss"])
    out = {
        "date": datetime.date.today().isoformat(),
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "command": "python -m benchmarks.bench_bounds " + " ".join(sys.argv[1:] if argv is None else argv),
        "problems": len(x0),
        "size": a.size,
        "iters": a.iters,
        "results": {},
    }
    print(
        "| solver | mean final loss | vs best | iterations to within 1 % of best (median) | s per problem "
        "| pixels outside [0, 1] |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        h = r["history"]
        reach = [
            int(np.argmax(h[i] <= 1.01 * best[i])) if np.any(h[i] <= 1.01 * best[i]) else None for i in range(len(h))
        ]
        hit = [k for k in reach if k is not None]
        res = {
            "mean_final_loss": float(r["final_loss"].mean()),
            "ratio_to_best": float((r["final_loss"] / best).mean()),
            "iters_to_1pct_median": float(np.median(hit)) if hit else None,
            "reached": len(hit),
            "seconds_per_problem": r["seconds"] / len(x0),
            "outside_box": r["outside_box"],
        }
        out["results"][name] = res
        print(
            f"| {name} | {res['mean_final_loss']:.4g} | {res['ratio_to_best']:.3f} | "
            f"{res['iters_to_1pct_median'] if hit else 'never'} ({len(hit)}/{len(h)}) | "
            f"{res['seconds_per_problem']:.3f} | {res['outside_box']} |"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
