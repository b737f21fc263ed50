"""Fusion GAN training throughput: stage-2 images per second (one critic update + one (E, G) update
per step), data parallel over all local devices.

    python -m benchmarks.bench_fusion                       # the paper's setting: 128×128, batch 100, width 64
    python -m benchmarks.bench_fusion --size 32 --batch 8 --width 8 --steps 3     # a CPU-sized run

The steps are the library's jitted `d_step` and `eg_step` (gradient penalty on, VGG-19 content taps
conv4_1/conv5_1 and style taps conv1_1/2_1/3_1, seeded random VGG weights: the cost is the same as
with pretrained ones). One fixed random batch stays on the devices, so data loading is not timed.
The first step (compilation) is timed apart; then `--steps` steps are timed to the last result.
Also measured: stage-1 (autoencoder) images per second. Prints a markdown table row and writes JSON
to benchmarks/results/<date>-<device>-fusion-<size>px.json (or --json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import re
import sys
import time

import jax
import numpy as np

import dfijax  # noqa: F401
from dfijax import training
from dfijax.fusion import train as ft
from dfijax.weights import random_weights

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def device_slug() -> str:
    d = jax.devices()[0]
    name = d.platform if d.platform == "cpu" else getattr(d, "device_kind", d.platform)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _flops(compiled) -> float | None:
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"]) if cost and "flops" in cost else None
    except Exception:  # cost analysis is optional and backend-dependent
        return None


def time_steps(fns, state, batch, vgg, steps: int):
    """(compile + first call seconds, seconds per step, state, summed FLOPs per step or None)."""
    key = jax.random.key(0)
    compiled, flops = [], 0.0
    t0 = time.perf_counter()
    for i, f in enumerate(fns):
        c = f.lower(state, batch, jax.random.fold_in(key, i), vgg).compile()
        compiled.append(c)
        fl = _flops(c)
        flops = None if fl is None or flops is None else flops + fl
        state, m = c(state, batch, jax.random.fold_in(key, i), vgg)
    jax.block_until_ready((state, m))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(steps):
        for i, c in enumerate(compiled):
            state, m = c(state, batch, jax.random.fold_in(key, 100 + s * len(compiled) + i), vgg)
    jax.block_until_ready((state, m))
    return first, (time.perf_counter() - t0) / steps, state, flops


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=100, help="global batch (split over the local devices)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps after the compiling one")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="E, G, D and VGG compute")
    p.add_argument("--d-norm", default="layer", choices=["layer", "batch", "none"])
    p.add_argument("--no-stage1", action="store_true", help="skip the stage-1 (autoencoder) measurement")
    p.add_argument("--json", help="output file (default benchmarks/results/<date>-<device>-fusion-<size>px.json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)

    n_dev = jax.local_device_count()
    batch = a.batch - a.batch % n_dev
    if batch < n_dev:
        print(f"error: --batch must be at least the {n_dev} local devices", file=sys.stderr)
        return 1
    cfg = ft.FusionConfig(size=a.size, width=a.width, d_norm=a.d_norm, dtype=a.dtype)
    mesh = training.data_mesh()
    vgg = training.replicate(random_weights(0).variables, mesh)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, a.size, a.size, 3)).astype(np.float32)
    x = training.shard_batch(x, mesh)
    state = training.replicate(ft.init_state(cfg), mesh)
    ae_step, d_step, eg_step = ft.make_steps(cfg)

    rows = {}
    if not a.no_stage1:
        first, per, state, flops = time_steps([ae_step], state, x, vgg, a.steps)
        rows["stage1"] = {
            "compile_and_first_s": first,
            "sec_per_step": per,
            "images_per_s": batch / per,
            "images_per_s_per_device": batch / per / n_dev,
            "flops_per_step": flops,
        }
    state = training.replicate(ft.begin_stage2(cfg, state), mesh)
    first, per, state, flops = time_steps([d_step, eg_step], state, x, vgg, a.steps)
    rows["stage2"] = {
        "compile_and_first_s": first,
        "sec_per_step": per,
        "images_per_s": batch / per,
        "images_per_s_per_device": batch / per / n_dev,
        "flops_per_step": flops,
    }

    dev = jax.devices()[0]
    info = {
        "date": datetime.date.today().isoformat(),
        "device": f"{n_dev} x {getattr(dev, 'device_kind', dev.platform)}",
        "jax": jax.__version__,
        "python": platform.python_version(),
        "command": "python -m benchmarks.bench_fusion " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {
            **vars(a),
            "batch": batch,
            "latent": list(cfg.latent_shape),
            "chunks": list(cfg.chunks),
            "content_layers": list(cfg.loss.content_layers),
            "style_layers": list(cfg.loss.style_layers),
            "gp_weight": cfg.loss.gp_weight,
        },
        **rows,
    }
    print(f"{info['device']}, {a.size}px, batch {batch}, width {a.width}, {a.dtype}:")
    print("| stage | s / step | images / s | images / s / device | compile + first s | TFLOP/s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        tf = f"{r['flops_per_step'] / r['sec_per_step'] / 1e12:.2f}" if r["flops_per_step"] else "-"
        print(
            f"| {name} | {r['sec_per_step']:.4f} | {r['images_per_s']:.1f} | {r['images_per_s_per_device']:.1f} | "
            f"{r['compile_and_first_s']:.1f} | {tf} |"
        )
    out = pathlib.Path(a.json) if a.json else RESULTS / f"{info['date']}-{device_slug()}-fusion-{a.size}px.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
