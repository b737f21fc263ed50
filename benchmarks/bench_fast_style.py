"""Fast style transfer throughput: the Johnson network in dfijax (JAX) against the same network in
plain PyTorch, images per second at S×S, measured in one run.

    python -m benchmarks.bench_fast_style                        # 256x256, batch 64 (run it on a GPU)
    python -m benchmarks.bench_fast_style --size 64 --batch 8 --reps 3   # CPU-sized

Both sides: c9s1-32, d64, d128, 5×R128, u64 (nearest ×2 + conv3), u32, c9s1-3, instance norm,
reflection padding, sigmoid output; random weights (throughput does not depend on them); inference
only; float32 and bfloat16 compute (PyTorch: TF32 on and bf16 autocast, channels_last). Each number is
the best of --reps timed passes over --batches batches after a warm-up (JAX compile excluded, reported
separately). Prints a markdown table; --json writes the numbers with device and date.
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

import dfijax  # noqa: F401
from dfijax.style import fast as fs


def bench_jax(size: int, batch: int, batches: int, reps: int, dtype) -> dict:
    net = fs.TransformNet(dtype=dtype)
    params = net.init(jax.random.key(0), jnp.zeros((1, size, size, 3)))["params"]
    fn = jax.jit(lambda p, x: net.apply({"params": p}, x))
    x = jax.random.uniform(jax.random.key(1), (batch, size, size, 3))
    t0 = time.perf_counter()
    fn(params, x).block_until_ready()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(batches):
            y = fn(params, x)
        y.block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return {"images_per_s": batch * batches / best, "compile_s": compile_s}


def torch_net(width: int = 32, blocks: int = 5):
    import torch
    from torch import nn

    def conv(cin, cout, k, s=1):
        return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, s))

    class Res(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(
                conv(c, c, 3),
                nn.InstanceNorm2d(c, affine=True),
                nn.ReLU(),
                conv(c, c, 3),
                nn.InstanceNorm2d(c, affine=True),
            )

        def forward(self, x):
            return x + self.body(x)

    w = width
    layers = [
        conv(3, w, 9),
        nn.InstanceNorm2d(w, affine=True),
        nn.ReLU(),
        conv(w, 2 * w, 3, 2),
        nn.InstanceNorm2d(2 * w, affine=True),
        nn.ReLU(),
        conv(2 * w, 4 * w, 3, 2),
        nn.InstanceNorm2d(4 * w, affine=True),
        nn.ReLU(),
    ]
    layers += [Res(4 * w) for _ in range(blocks)]
    for cin, cout in ((4 * w, 2 * w), (2 * w, w)):
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(cin, cout, 3),
            nn.InstanceNorm2d(cout, affine=True),
            nn.ReLU(),
        ]
    layers += [conv(w, 3, 9), nn.Sigmoid()]
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def bench_torch(size: int, batch: int, batches: int, reps: int, bf16: bool) -> dict:
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    net = torch_net().to(dev).eval().to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, size, size, device=dev).to(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    ctx = (lambda: torch.autocast(dev, dtype=torch.bfloat16)) if bf16 else torch.no_grad
    with torch.no_grad(), ctx():
        net(x)
        sync()
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(batches):
                net(x)
            sync()
            best = min(best, time.perf_counter() - t0)
    return {"images_per_s": batch * batches / best, "compile_s": 0.0}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=10, help="batches per timed pass")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    rows = []
    for name, dt in (("jax_f32", None), ("jax_bf16", jnp.bfloat16)):
        rows.append({"variant": name, **bench_jax(args.size, args.batch, args.batches, args.reps, dt)})
    if not args.skip_torch:
        for name, bf in (("torch_tf32", False), ("torch_bf16_autocast", True)):
            rows.append({"variant": name, **bench_torch(args.size, args.batch, args.batches, args.reps, bf)})
    ref = next((r["images_per_s"] for r in rows if r["variant"] == "torch_bf16_autocast"), None)
    print(f"| variant | images/s at {args.size}x{args.size} (batch {args.batch}) | vs torch bf16 | compile s |")
    print("|---|---|---|---|")
    for r in rows:
        r["ratio_vs_torch_bf16"] = r["images_per_s"] / ref if ref else None
        ratio = f"{r['ratio_vs_torch_bf16']:.2f}x" if ref else "-"
        print(f"| {r['variant']} | {r['images_per_s']:.1f} | {ratio} | {r['compile_s']:.1f} |")
    if args.json:
        info = {
            "benchmark": "fast_style",
            "date": datetime.date.today().isoformat(),
            "device": str(jax.devices()[0].device_kind),
            "platform": platform.platform(),
            "command": "python -m benchmarks.bench_fast_style " + " ".join(argv if argv is not None else sys.argv[1:]),
            "settings": vars(args),
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(info, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
