"""FLOPs and device memory of the DFI-shaped inversion solve, on paper: XLA's cost and memory analysis
of the compiled solve (lowered and compiled on this machine, never run).

    python -m benchmarks.cost_analysis                       # 200×200, batches 2,4,8, float32 and bfloat16
    python -m benchmarks.cost_analysis --size 64 --batches 1,2

The problem is benchmarks/bench_inversion's: seeded-random-VGG-19 shapes to conv5_1, taps relu3_1/4_1/5_1,
½Σ‖φ(z) − t‖² + TV², L-BFGS history 10 without line search (jaxopt backend). For each compute dtype and
batch B (problems = image-alphas solved together) it compiles
  - "host" loop mode: one vmapped L-BFGS step (the state donated, as on GPU): FLOPs per iteration;
  - "device" loop mode: the whole solve as one while loop (the GPU default): its memory.
XLA counts a while loop's body once, so FLOPs per solve = init + iters × per-step FLOPs (the step's).
Memory per call = arguments + outputs + temporaries − aliased (donated) bytes, fitted as a + b·B over
the batches; the largest B with a + b·B <= budget is the predicted max batch. The analysis is XLA:CPU's
buffer assignment: a GPU compile fuses differently and adds convolution workspace, so leave a margin.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dfijax  # noqa: F401
from benchmarks.problem import TAPS, macs_to
from dfijax import invert as inv
from dfijax.vgg import VGG19

DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16}
GB = 1e9


def _problem(
    size: int, batch: int, dtype: Any, iters: int, history: int, tv: float, taps: tuple[str, ...], rounding: str
):
    """(loss, config, abstract VGG variables, targets, x0) at the benchmark's shapes; nothing allocated."""
    model = VGG19(dtype=dtype, pool_rounding=rounding)
    loss = inv.FeatureLoss(model=model, taps=taps, reduction="sum", tv_weight=tv)
    cfg = inv.SolverConfig(maxiter=iters, history_size=history)
    variables = jax.eval_shape(lambda: VGG19().init(jax.random.key(0), jnp.zeros((1, size, size, 3)), taps=taps))
    x0 = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
    targets = jax.eval_shape(lambda v, x: jax.vmap(lambda z: loss.features(v, z))(x), variables, x0)
    return loss, cfg, variables, targets, x0


def _stats(compiled) -> dict[str, float]:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older JAX returns one dict per device
    mem = compiled.memory_analysis()
    out = {"flops": float(cost.get("flops", 0.0)), "bytes_accessed": float(cost.get("bytes accessed", 0.0))}
    for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes"):
        out[k] = int(getattr(mem, k))
    out["total_bytes"] = (
        out["argument_size_in_bytes"]
        + out["output_size_in_bytes"]
        + out["temp_size_in_bytes"]
        - out["alias_size_in_bytes"]
    )
    return out


def analyze(
    size: int,
    batch: int,
    dtype: str = "f32",
    mode: str = "host",
    iters: int = 300,
    history: int = 10,
    tv: float = 1e-3,
    taps: tuple[str, ...] = TAPS,
    pool_rounding: str = "floor",
) -> dict[str, Any]:
    """Lower and compile (never run) one loop mode of the solve for `batch` problems of size×size images.

    mode "host": one batched L-BFGS step (flops = one iteration of all `batch` problems); "device": the
    whole while-loop solve (flops = init + one body, as XLA counts loops once). Returns flops,
    bytes_accessed, the memory analysis in bytes (argument/output/temp/alias and total_bytes) and the
    lowering and compile seconds. taps: the compared layers (the benchmark's by default); pool_rounding:
    "ceil" sizes the features as the references' nets do (at 200 px relu5_1 is 13x13, not 12x12)."""
    if mode not in ("host", "device"):
        raise ValueError(f"mode must be 'host' or 'device', got {mode!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    loss, cfg, variables, targets, x0 = _problem(size, batch, DTYPES[dtype], iters, history, tv, taps, pool_rounding)
    t0 = time.perf_counter()
    if mode == "host":
        state = jax.eval_shape(lambda v, t, x: inv._init_batch(loss, cfg, v, t, x), variables, targets, x0)
        lowered = inv._step_batch_jit.lower(loss, cfg, variables, targets, state)
    else:
        lowered = inv._solve_batch_jit.lower(loss, cfg, variables, targets, x0)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return {
        "size": size,
        "batch": batch,
        "dtype": dtype,
        "mode": mode,
        "pool_rounding": pool_rounding,
        **_stats(compiled),
        "lower_s": round(t1 - t0, 2),
        "compile_s": round(t2 - t1, 2),
    }


def fit_line(batches: list[int], values: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of values against batches."""
    slope, intercept = np.polyfit(np.asarray(batches, float), np.asarray(values, float), 1)
    return float(intercept), float(slope)


def max_batch(intercept: float, slope: float, budget_bytes: float) -> int:
    """Largest B with intercept + slope·B <= budget (0 when even one problem does not fit)."""
    return max(0, int((budget_bytes - intercept) // slope)) if slope > 0 else 0


RESULTS = pathlib.Path(__file__).parent / "results"


def memory_note(size: int, problems: int, results: pathlib.Path = RESULTS) -> str | None:
    """One line on device memory for `problems` solved together at size×size, from the newest
    cost-analysis JSON for that size (None when there is none)."""
    files = sorted(results.glob(f"*-cpu-cost-{size}px.json"))
    if not files:
        return None
    info = json.loads(files[-1].read_text())
    budget = info["settings"]["budget_gb"]
    parts = []
    for dt, s in info["summary"].items():
        need = (s["device_bytes_fixed"] + problems * s["device_bytes_per_problem"]) / GB
        parts.append(f"{dt} ~{need:.1f} GB, max batch {s['device_max_batch']}")
    return (
        f"predicted device memory for {problems} problems at {size}px (device loop; {files[-1].name}, "
        f"budget {budget:g} GB): " + "; ".join(parts)
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--history", type=int, default=10)
    p.add_argument("--batches", default="2,4,8", help="comma list of batch sizes to compile (>= 2 of them)")
    p.add_argument("--dtypes", default="f32,bf16")
    p.add_argument("--budget-gb", type=float, default=80.0, help="device memory in GB (1e9 bytes)")
    p.add_argument(
        "--mem-fraction",
        type=float,
        default=0.75,
        help="JAX's default GPU preallocation (XLA_PYTHON_CLIENT_MEM_FRACTION) for the second prediction",
    )
    p.add_argument(
        "--pool-rounding",
        choices=("floor", "ceil"),
        default="floor",
        help="VGG pools on odd sizes: floor, or ceil as the official/chainer presets' Caffe-style nets",
    )
    p.add_argument("--json", help="write the numbers here (default: benchmarks/results/<date>-cpu-cost-<size>px.json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    try:
        batches = sorted({int(b) for b in a.batches.split(",")})
    except ValueError:
        print(f"error: --batches must be a comma list of integers, got {a.batches!r}", file=sys.stderr)
        return 1
    dtypes = [d for d in a.dtypes.split(",") if d]
    if len(batches) < 2 or min(batches) < 1:
        print("error: give at least two positive batch sizes, e.g. --batches 2,4,8", file=sys.stderr)
        return 1
    if bad := [d for d in dtypes if d not in DTYPES]:
        print(f"error: unknown dtypes {bad}; use {','.join(DTYPES)}", file=sys.stderr)
        return 1
    if a.size < 32:
        print(f"error: --size must be at least 32 for VGG-19, got {a.size}", file=sys.stderr)
        return 1

    analytic_step = 2 * 2 * macs_to("conv5_1", a.size, a.pool_rounding)  # 2 FLOP/MAC × (forward + input gradient)
    rows, summary = [], {}
    for dt in dtypes:
        for mode in ("host", "device"):
            for b in batches:
                r = analyze(a.size, b, dt, mode, a.iters, a.history, pool_rounding=a.pool_rounding)
                rows.append(r)
                print(
                    f"  {dt} {mode} B={b}: {r['flops'] / 1e9:.1f} GFLOP, {r['total_bytes'] / GB:.3f} GB "
                    f"(compile {r['compile_s']} s)",
                    file=sys.stderr,
                )
        host = [r for r in rows if r["dtype"] == dt and r["mode"] == "host"]
        dev = [r for r in rows if r["dtype"] == dt and r["mode"] == "device"]
        step_flops = fit_line(batches, [r["flops"] for r in host])[1]
        init_flops = fit_line(batches, [r["flops"] for r in dev])[1] - step_flops
        per_solve = init_flops + a.iters * step_flops
        s = {
            "flop_per_iteration_per_problem": step_flops,
            "flop_init_per_problem": init_flops,
            "flop_per_image_alpha": per_solve,
            "tflop_per_image_alpha": per_solve / 1e12,
            "xla_over_analytic_per_iteration": step_flops / analytic_step,
        }
        for mode, rs in (("host", host), ("device", dev)):
            c, m = fit_line(batches, [r["total_bytes"] for r in rs])
            s[f"{mode}_bytes_fixed"], s[f"{mode}_bytes_per_problem"] = c, m
            s[f"{mode}_max_batch"] = max_batch(c, m, a.budget_gb * GB)
            s[f"{mode}_max_batch_at_mem_fraction"] = max_batch(c, m, a.mem_fraction * a.budget_gb * GB)
        summary[dt] = s

    info = {
        "date": datetime.date.today().isoformat(),
        "device": "CPU analysis (XLA:CPU cost/memory analysis; not run)",
        "jax": jax.__version__,
        "python": platform.python_version(),
        "command": "python -m benchmarks.cost_analysis " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {
            "size": a.size,
            "iters": a.iters,
            "history": a.history,
            "batches": batches,
            "taps": list(TAPS),
            "pool_rounding": a.pool_rounding,
            "backend": "jaxopt",
            "budget_gb": a.budget_gb,
            "mem_fraction": a.mem_fraction,
        },
        "analytic_flop_per_iteration_per_problem": analytic_step,
        "analytic_flop_per_image_alpha": analytic_step * a.iters,
        "summary": summary,
        "rows": rows,
    }
    print(f"\n{info['date']} · {info['device']} · {a.size}×{a.size}, {a.iters} iterations, batches {batches}\n")
    print(
        "| compute | GFLOP / iteration / problem (XLA; analytic) | TFLOP / image-alpha | "
        "GB / problem host step; device solve | fixed GB (device) | max batch in "
        f"{a.budget_gb:g} GB (device; host) | at {a.mem_fraction:g} of it (device) |"
    )
    print("|---|---|---|---|---|---|---|")
    for dt, s in summary.items():
        print(
            f"| {dt} | {s['flop_per_iteration_per_problem'] / 1e9:.2f}; {analytic_step / 1e9:.2f} "
            f"| {s['tflop_per_image_alpha']:.2f} | {s['host_bytes_per_problem'] / GB:.3f}; "
            f"{s['device_bytes_per_problem'] / GB:.3f} | {s['device_bytes_fixed'] / GB:.3f} "
            f"| {s['device_max_batch']}; {s['host_max_batch']} | {s['device_max_batch_at_mem_fraction']} |"
        )
    path = pathlib.Path(a.json) if a.json else RESULTS / f"{info['date']}-cpu-cost-{a.size}px.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    print(f"\nwrote {path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
