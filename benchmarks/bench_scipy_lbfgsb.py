"""The official DFI solve two ways: scipy's L-BFGS-B itself (the reference's solver, one problem at a time)
against the batched engine (jaxopt's L-BFGS-B, unit step, all problems in one vmapped call).

    python -m benchmarks.bench_scipy_lbfgsb                          # 64 px, 4 problems, 100 iterations
    python -m benchmarks.bench_scipy_lbfgsb --size 200 --problems 2 --iters 50 --json out.json

The `official` preset's objective (Σ½‖φ − t‖²÷3 over relu3_1/4_1/5_1 with Caffe's ceil pooling, tv_norm
1e-3) on the seeded random VGG-19 with Caffe preprocessing, its (−128, 162) box, DFI-shaped targets
φ(x) + 0.4·w (w = φ(other face) − φ(x), beta-scaled) from synthetic faces. Both solvers run once to
compile and once measured. Reports per solver: the loss after 1, 10 and all iterations, seconds per
problem, and how far the engine's iterates are from scipy's (RMS pixel difference in 0-255 units).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import dfijax  # noqa: F401
from dfijax import invert as inv
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dfi import presets, vectors
from dfijax.weights import random_weights


def problem(size: int, n: int, weights):
    """(loss, targets {tap: [n, ...]}, x [n, S, S, 3]): the official objective and DFI-shaped targets."""
    cfg = presets.preset("official", size=size)
    loss = cfg.feature_loss(pretrained=True)
    faces = synthetic_faces(2 * n, seed=0).images(list(range(2 * n)), size)
    x, other = jnp.asarray(faces[:n]), jnp.asarray(faces[n:])
    phi = inv.feature_targets(loss, weights.variables, x)
    w = {t: v - phi[t] for t, v in inv.feature_targets(loss, weights.variables, other).items()}
    targets = jax.vmap(lambda p, d: vectors.edit_targets(p, d, jnp.asarray([0.4]), "beta"))(phi, w)
    return cfg, loss, {t: v[:, 0] for t, v in targets.items()}, x


def run(cfg, loss, weights, targets, x, optimizer: str, iters: int) -> dict:
    solver = presets.preset("official", optimizer=optimizer).solve.solver(iters)
    solver = inv.SolverConfig(**{**solver.__dict__, "ftol": 0.0})  # every iteration, both ways
    iterates: dict[int, np.ndarray] = {}

    def keep(k, images):
        if k in (1, 10):
            iterates[k] = np.asarray(images) * 255.0

    def solve():
        if optimizer == "engine":
            return inv.invert(loss, weights.variables, targets, x, solver, loop="host", check_every=1, snapshot=keep)
        # scipy: one problem per call, as the reference runs them (a snapshot's k is then that problem's)
        parts, seen = [], {1: [], 10: []}
        for i in range(len(x)):
            iterates.clear()
            one = {t: v[i : i + 1] for t, v in targets.items()}
            parts.append(inv.invert(loss, weights.variables, one, x[i : i + 1], solver, check_every=1, snapshot=keep))
            for k in seen:
                seen[k].append(iterates.get(k))
        iterates.update({k: np.concatenate(v) for k, v in seen.items() if all(a is not None for a in v)})
        return jax.tree.map(lambda *a: jnp.concatenate(a), *parts)

    times = []
    for _ in range(2):  # the first call compiles
        iterates.clear()
        t0 = time.perf_counter()
        r = solve()
        jax.block_until_ready(r.images)
        times.append(time.perf_counter() - t0)
    h = np.asarray(r.loss_history)
    return {
        "optimizer": optimizer,
        "loss_start": float(np.mean(h[:, 0])),
        "loss_1": float(np.mean(h[:, 1])),
        "loss_10": float(np.mean(h[:, min(10, iters)])),
        "loss_final": float(np.mean(np.asarray(r.final_loss))),
        "iterations": np.asarray(r.num_iters).tolist(),
        "first_call_s": round(times[0], 2),
        "s_per_problem": round(times[1] / len(x), 3),
        "_iterates": iterates,
        "_final": np.asarray(r.images) * 255.0,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--problems", type=int, default=4)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--json", type=pathlib.Path, default=None, help="write the rows here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    weights = random_weights(0, preprocess="caffe")
    cfg, loss, targets, x = problem(args.size, args.problems, weights)
    rows = [run(cfg, loss, weights, targets, x, o, args.iters) for o in ("scipy", "engine")]
    ref = rows[0]
    for row in rows:
        for k in (1, 10):
            if k in row["_iterates"] and k in ref["_iterates"]:
                row[f"rms_to_scipy_iterate_{k}"] = float(
                    np.sqrt(np.mean((row["_iterates"][k] - ref["_iterates"][k]) ** 2))
                )
        row["rms_to_scipy_final"] = float(np.sqrt(np.mean((row["_final"] - ref["_final"]) ** 2)))
        row["final_loss_vs_scipy"] = row["loss_final"] / ref["loss_final"]
    for row in rows:
        del row["_iterates"], row["_final"]
        print(json.dumps(row), flush=True)
    if args.json:
        out = {
            "date": datetime.date.today().isoformat(),
            "device": f"{jax.default_backend()} ({platform.processor() or platform.machine()}), "
            f"{jax.device_count()} device(s)",
            "command": "python -m benchmarks.bench_scipy_lbfgsb "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "size": args.size,
            "problems": args.problems,
            "iters": args.iters,
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
