"""DFI-shaped inversion benchmark: dfijax's engine against plain PyTorch, same weights and targets.

    python -m benchmarks.bench_inversion                    # DFI-shaped: 200², 300 it., 8 images × 5 alphas (GPU)
    python -m benchmarks.bench_inversion --size 64 --iters 30 --images 2   # a CPU-sized run
    python -m benchmarks.bench_inversion --tiny             # seconds; the smoke test uses it

Problem: seeded random VGG-19 (dfijax.weights.random_params(0)) up to conv5_1, taps relu3_1, relu4_1,
relu5_1; N procedural images at S×S; attribute vector w = mean φ(second half) − mean φ(first half),
rescaled per layer to ‖φ(x)‖·w/‖w‖; targets φ(x_i) + α_j·w for the alphas; objective
½Σ‖φ(z) − t‖² + λ·TV²(z) (0-255 scale); start from x_i; L-BFGS, history 10, no line search, exactly
`iters` iterations on every side.

Measured in one run: JAX (jaxopt and optax backends; float32 and bfloat16 compute; all N×A problems
vmapped in one compiled call) and PyTorch torch.optim.LBFGS (one alpha at a time; one image's alphas
stacked as one problem; everything stacked, TF32 and bf16 autocast). Every final image is scored with
the same float32 objective. Prints a markdown table and writes JSON (--json).

Also, for one engine variant (--curve-variant, default jax_jaxopt_bf16):
  --scaling 1,5,10,20,40,80   seconds per image-alpha and compile time at each number of problems
                              solved together (the problem set tiled to that size);
  --max-batch 80              the largest batch that fits in device memory: the batch doubled from 80
                              until the allocation fails, then bisected (--max-batch-probes compiles in
                              all, 2 iterations each: memory does not depend on the iteration count);
  --compile-cache DIR         JAX's persistent compilation cache in DIR; a second run with the same
                              DIR (e.g. `--only jax_jaxopt_bf16 --repeats 1`) measures the cached compile.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import dfijax  # noqa: F401
from benchmarks import torch_reference as tr
from benchmarks.cost_analysis import memory_note
from benchmarks.problem import TAPS, macs_to  # noqa: F401  (the problem's taps and cost)
from dfijax import invert as inv
from dfijax.images import synthetic_scene
from dfijax.runtime import enable_compilation_cache
from dfijax.vgg import VGG19
from dfijax.weights import random_weights

ENGINE = {
    f"jax_{b}_{d}": (b, dt) for b in ("jaxopt", "optax") for d, dt in (("f32", jnp.float32), ("bf16", jnp.bfloat16))
}
VARIANTS = (*ENGINE, "torch_single", "torch_image", "torch_all", "torch_all_bf16")


def build_problem(n_images: int, alphas: list[float], size: int, variables):
    loss = inv.FeatureLoss(taps=TAPS, reduction="sum")
    x = np.stack([synthetic_scene(size, size, seed=s) for s in range(n_images)])
    feats = inv.feature_targets(loss, variables, jnp.asarray(x))
    half = max(1, n_images // 2)
    targets = {}
    for t in TAPS:
        f = np.asarray(feats[t])
        w = f[half:].mean(0) - f[:half].mean(0) if n_images > 1 else np.ones_like(f[0])
        w = w / (np.linalg.norm(w) + 1e-12)
        per_img = [f[i] + a * np.linalg.norm(f[i]) * w for i in range(n_images) for a in alphas]
        targets[t] = np.stack(per_img).astype(np.float32)
    x0 = np.repeat(x, len(alphas), axis=0)  # problem k = image k // A, alpha k % A
    return x0, targets


@functools.partial(jax.jit, static_argnums=(3,))
def _mean_objective(variables, targets, images, tv_weight: float) -> jax.Array:
    loss = inv.FeatureLoss(taps=TAPS, reduction="sum", tv_weight=tv_weight)
    return jnp.mean(jax.vmap(lambda z, t: loss(z, variables, t))(images, targets))


def score(variables, targets, images, tv_weight) -> float:
    """Mean per-problem float32 objective of final images (the common yardstick; one compilation per
    problem count for every variant)."""
    t = {k: jnp.asarray(v) for k, v in targets.items()}
    return float(_mean_objective(variables, t, jnp.asarray(images), float(tv_weight)))


def run_jax(variables, x0, targets, iters, history, tv_weight, dtype, backend, repeats, loop):
    loss = inv.FeatureLoss(model=VGG19(dtype=dtype), taps=TAPS, reduction="sum", tv_weight=tv_weight)
    cfg = inv.SolverConfig(maxiter=iters, history_size=history, backend=backend)
    t = {k: jnp.asarray(v) for k, v in targets.items()}
    z = jnp.asarray(x0)
    times = []
    for _ in range(repeats + 1):  # the first call compiles
        t0 = time.perf_counter()
        r = inv.invert(loss, variables, t, z, cfg, loop=loop)
        r.images.block_until_ready()
        times.append(time.perf_counter() - t0)
    run_s = float(np.median(times[1:])) if repeats else float("nan")
    return np.asarray(r.images), run_s, times[0] - run_s


def tile_problems(x0: np.ndarray, targets: dict, n: int) -> tuple[np.ndarray, dict]:
    """The first n problems of the set repeated cyclically: [n, ...] inputs and targets."""
    idx = np.arange(n) % len(x0)
    return x0[idx], {k: v[idx] for k, v in targets.items()}


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device allocation failure (XLA's RESOURCE_EXHAUSTED), whatever the platform's words."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(s in text for s in ("resource_exhausted", "resource exhausted", "out of memory", "oom when"))


def largest_batch(fits, start: int, probes: int) -> dict:
    """The largest batch b for which fits(b) is True: double from `start` until it fails, then bisect,
    calling fits at most `probes` times. fits(b) returns True, or False when b does not fit.

    Returns {"largest_fitting": int | 0, "smallest_failing": int | None, "tried": [(b, ok), ...]}."""
    lo, hi, tried = 0, None, []
    b = start
    while len(tried) < probes:
        ok = bool(fits(b))
        tried.append((b, ok))
        if ok:
            lo = b
        else:
            hi = b
        if hi is None:
            b = 2 * b
        elif hi - lo <= max(1, lo // 16):  # within ~6 %: enough to size a run
            break
        else:
            b = (lo + hi) // 2 if lo else max(1, hi // 2)
    return {"largest_fitting": lo, "smallest_failing": hi, "tried": tried}


def run_torch(params, x0, targets, iters, history, tv_weight, mode, n_alphas, subset_images):
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    net = tr.load_hwio(tr.TorchVGG19(), params).to(dev)
    for p in net.parameters():
        p.requires_grad_(False)
    tt = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2))).to(dev) for k, v in targets.items()}
    xt = torch.from_numpy(np.ascontiguousarray(x0)).to(dev)
    n = subset_images * n_alphas if mode in ("single", "image") else len(x0)
    groups = {
        "single": [[k] for k in range(n)],
        "image": [list(range(i * n_alphas, (i + 1) * n_alphas)) for i in range(subset_images)],
        "all": [list(range(len(x0)))],
        "all_bf16": [list(range(len(x0)))],
    }[mode]
    bf16 = mode == "all_bf16"
    # warm-up (cudnn autotuning) on the first group, 3 iterations
    g = groups[0]
    tr.invert_lbfgs(net, {k: v[g] for k, v in tt.items()}, xt[g], 3, history, tv_weight, bf16)
    out = np.array(x0[:n])
    if dev == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for g in groups:
        z, _ = tr.invert_lbfgs(net, {k: v[g] for k, v in tt.items()}, xt[g], iters, history, tv_weight, bf16)
        out[g] = z.float().cpu().numpy()
    if dev == "cuda":
        torch.cuda.synchronize()
    return out, (time.perf_counter() - t0) / n, n


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--alphas", default="0.1,0.2,0.3,0.4,0.5")
    p.add_argument("--history", type=int, default=10)
    p.add_argument("--tv", type=float, default=1e-3, help="TV^2 weight on the 0-255 scale")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--torch-subset",
        type=int,
        default=1,
        help="images solved by the slow per-alpha and per-image PyTorch variants (time is per image-alpha)",
    )
    p.add_argument("--skip", default="", help="comma list of variants to skip, e.g. torch_single,jax_optax_bf16")
    p.add_argument(
        "--only", default="", help="comma list of the variants to run (all others skipped); none: only the curves"
    )
    p.add_argument("--scaling", default="", help="comma list of problem counts for the scaling curve")
    p.add_argument("--max-batch", type=int, default=0, help="search the largest batch, doubling from this")
    p.add_argument("--max-batch-probes", type=int, default=5, help="compiles the batch search may spend")
    p.add_argument("--curve-variant", default="jax_jaxopt_bf16", help="engine variant of --scaling/--max-batch")
    p.add_argument("--compile-cache", help="persistent compilation cache folder (every compile is cached)")
    p.add_argument(
        "--loop",
        choices=["auto", "host", "device"],
        default="auto",
        help="engine loop mode (auto: host on CPU, device elsewhere)",
    )
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run: 32 px, 3 iterations, 2x2 problems")
    p.add_argument("--json", help="write all numbers here")
    a = p.parse_args(argv)
    named = set(filter(None, a.skip.split(","))) | (set(filter(None, a.only.split(","))) - {"none"}) | {a.curve_variant}
    if unknown := named - set(VARIANTS):
        p.error(f"unknown variant(s) {sorted(unknown)}; use {', '.join(VARIANTS)}")
    return a


def main(argv=None) -> int:
    a = parse(argv)
    if a.tiny:
        a.size, a.iters, a.images, a.alphas, a.repeats = 32, 3, 2, "0.1,0.4", 1
    alphas = [float(s) for s in a.alphas.split(",")]
    skip = set(filter(None, a.skip.split(",")))
    only = set(filter(None, a.only.split(","))) - {"none"}
    if a.only == "none":  # only the scaling curve and/or the batch search
        skip |= set(VARIANTS)
    if only:
        skip |= set(VARIANTS) - only
    scaling = [int(n) for n in a.scaling.split(",") if n]
    if a.compile_cache:
        os.environ.setdefault("DFIJAX_JAX_CACHE_MIN_SECS", "0")
        enable_compilation_cache(a.compile_cache)

    weights = random_weights(0)
    x0, targets = build_problem(a.images, alphas, a.size, weights.variables)
    flop_per_problem = 2 * macs_to("conv5_1", a.size) * 2 * a.iters  # forward + input gradient

    note = memory_note(a.size, len(x0))
    if note:
        print(note, file=sys.stderr)
    rows, curve = [], []
    device = jax.devices()[0]
    info = {
        "date": datetime.date.today().isoformat(),
        "jax_device": f"{device.platform} {getattr(device, 'device_kind', '')}",
        "jax": jax.__version__,
        "python": platform.python_version(),
        "command": "python -m benchmarks.bench_inversion " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {
            k: getattr(a, k)
            for k in ("size", "iters", "images", "alphas", "history", "tv", "repeats", "torch_subset", "loop")
        },
        "flop_per_image_alpha": flop_per_problem,
        "rows": rows,
        "curve_variant": a.curve_variant if (scaling or a.max_batch) else None,
        "scaling": curve,
        "max_batch": None,
        "compile_cache": a.compile_cache,
        "xla_python_client_mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
    }

    def save() -> None:
        """Ratios against torch_image; the JSON rewritten after every measurement (a run stopped early keeps them)."""
        ref = next((r for r in rows if r["variant"] == "torch_image"), None)
        for r in rows:
            r["speedup_vs_torch_image"] = ref["sec_per_image_alpha"] / r["sec_per_image_alpha"] if ref else None
            r["loss_ratio_vs_torch_image"] = (
                r["final_loss_ref_problems"] / ref["final_loss_ref_problems"] if ref else None
            )
        if a.json:
            with open(a.json, "w") as f:
                json.dump(info, f, indent=2)

    n_ref = min(a.torch_subset, a.images) * len(alphas)  # problems every variant solves (the first ones)

    def add(name, images, sec, compile_s=None, problems=None):
        n = problems or len(x0)
        loss = score(weights.variables, {k: v[:n] for k, v in targets.items()}, images[:n], a.tv)
        loss_ref = score(weights.variables, {k: v[:n_ref] for k, v in targets.items()}, images[:n_ref], a.tv)
        rows.append(
            {
                "variant": name,
                "sec_per_image_alpha": sec,
                "final_loss": loss,
                "final_loss_ref_problems": loss_ref,
                "compile_s": compile_s,
                "tflops": flop_per_problem / sec / 1e12,
                "problems": n,
            }
        )
        print(
            f"  {name}: {sec:.4f} s/problem, loss {loss:.5g} (first {n_ref} problems: {loss_ref:.5g})", file=sys.stderr
        )
        save()

    for name, (backend, dtype) in ENGINE.items():
        if name in skip:
            continue
        imgs, sec, comp = run_jax(
            weights.variables, x0, targets, a.iters, a.history, a.tv, dtype, backend, a.repeats, a.loop
        )
        add(name, imgs, sec / len(x0), comp)
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    if have_torch:
        for mode in ("single", "image", "all", "all_bf16"):
            name = f"torch_{mode}"
            if name in skip:
                continue
            imgs, sec, n = run_torch(
                weights.variables["params"],
                x0,
                targets,
                a.iters,
                a.history,
                a.tv,
                mode,
                len(alphas),
                min(a.torch_subset, a.images),
            )
            add(name, imgs, sec, problems=n)

    if have_torch and any(r["variant"].startswith("torch") for r in rows):
        import torch

        info["torch"] = torch.__version__
        info["torch_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    backend, dtype = ENGINE[a.curve_variant]
    for n in scaling:
        xn, tn = tile_problems(x0, targets, n)
        _, sec, comp = run_jax(weights.variables, xn, tn, a.iters, a.history, a.tv, dtype, backend, 1, a.loop)
        curve.append({"problems": n, "sec_per_image_alpha": sec / n, "compile_s": comp})
        print(f"  scaling {a.curve_variant} x{n}: {sec / n:.4f} s/problem, compile {comp:.1f} s", file=sys.stderr)
        save()
    max_batch = None
    if a.max_batch:

        def fits(n: int) -> bool:
            xn, tn = tile_problems(x0, targets, n)
            try:
                run_jax(weights.variables, xn, tn, 2, a.history, a.tv, dtype, backend, 0, a.loop)
            except Exception as e:  # noqa: BLE001 - only an allocation failure is an answer
                if not is_out_of_memory(e):
                    raise
                print(f"  max batch: {n} does not fit", file=sys.stderr)
                return False
            print(f"  max batch: {n} fits", file=sys.stderr)
            return True

        max_batch = info["max_batch"] = largest_batch(fits, a.max_batch, a.max_batch_probes)

    save()
    print(
        f"\n{info['date']} · JAX on {info['jax_device']} · torch on {info.get('torch_device', '-')} · "
        f"{a.images} images x {len(alphas)} alphas, {a.size}px, {a.iters} iterations\n"
    )
    print(
        f"| variant | s / image-alpha | speed-up vs torch_image | loss ratio vs torch_image (first {n_ref}) "
        "| final loss (own problems) | compile + first-call overhead s | TFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|")
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        print(
            f"| {r['variant']} | {r['sec_per_image_alpha']:.4f} | {fmt(r['speedup_vs_torch_image'], '.2f')}x "
            f"| {fmt(r['loss_ratio_vs_torch_image'], '.3f')} | {r['final_loss']:.5g} ({r['problems']}) "
            f"| {fmt(r['compile_s'], '.1f')} | {r['tflops']:.2f} |"
        )
    if curve:
        print(f"\nscaling ({a.curve_variant}): problems | s / image-alpha | compile s")
        for c in curve:
            print(f"  {c['problems']} | {c['sec_per_image_alpha']:.4f} | {c['compile_s']:.1f}")
    if max_batch:
        print(
            f"largest batch that fits ({a.curve_variant}, {a.size}px): {max_batch['largest_fitting']} "
            f"(fails at {max_batch['smallest_failing']}; tried {max_batch['tried']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
