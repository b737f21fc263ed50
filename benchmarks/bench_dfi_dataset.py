"""The dataset DFI job's throughput (edited images per second) with 1 and with 2 processes on this machine.

    python -m benchmarks.bench_dfi_dataset                  # CPU: 32 faces, 48 px, 20 iterations
    python -m benchmarks.bench_dfi_dataset --images 64 --size 64 --iters 100 --devices 1 --json out.json

Runs `python -m experiments.dfi_dataset` on the embedded synthetic faces (seeded random VGG-19, the
dfijax preset, K = 16, one alpha) as 1 process with D forced CPU devices, then as 2 processes of D
devices each over localhost (JAX's multi-controller runtime, gloo collectives). Each configuration runs
once to fill the caches (neighbour features, attribute vectors, compiled programs) into a scratch
folder, then again into a fresh output folder; the second run is timed. Reports images/s over the
whole step loop and from the second step on (steady), and the wall time of each command. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(n_proc: int, devices: int, args: list[str], out: str, cache: str, timeout: float) -> tuple[list[dict], float]:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "DFIJAX_CACHE": cache,
        "DFIJAX_JAX_CACHE": os.path.join(cache, "jax"),
    }
    port = _port()
    extra = lambda i: (
        ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n_proc), "--process-id", str(i)]
        if n_proc > 1
        else []
    )
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "experiments.dfi_dataset", *args, "--out", out, *extra(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for i in range(n_proc)
    ]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    wall = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs):
        if p.returncode:
            raise RuntimeError(f"dfi_dataset failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
    return [json.loads([ln for ln in so.splitlines() if ln.startswith("{")][-1]) for so, _ in outs], wall


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=32, help="faces to edit")
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--devices", type=int, default=1, help="CPU devices per process")
    p.add_argument("--rows-per-device", type=int, default=4)
    p.add_argument("--timeout", type=float, default=1200)
    p.add_argument("--json", help="also write the results here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    args = [
        "--n-synthetic",
        "400",
        "--k",
        "16",
        "--batch",
        "16",
        "--size",
        str(a.size),
        "--iters",
        str(a.iters),
        "--limit",
        str(a.images),
        "--alphas",
        "0.4",
        "--probe-steps",
        "50",
        "--probe-train",
        "300",
        "--chunk",
        str(a.devices * a.rows_per_device),
    ]
    scratch = tempfile.mkdtemp(prefix="bench_dfi_dataset-")
    results = []
    try:
        for n in (1, 2):
            cache = os.path.join(scratch, f"cache{n}")
            run(n, a.devices, args, os.path.join(scratch, f"warm{n}"), cache, a.timeout)
            summaries, wall = run(n, a.devices, args, os.path.join(scratch, f"timed{n}"), cache, a.timeout)
            s = summaries[0]
            results.append(
                {
                    "processes": n,
                    "devices_per_process": a.devices,
                    "images": s["images"],
                    "images_per_s": s["images_per_s"],
                    "images_per_s_steady": s["images_per_s_steady"],
                    "solve_seconds": s["seconds"]["solve"],
                    "command_seconds": round(wall, 2),
                }
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = {
        "benchmark": "dfi_dataset",
        "date": datetime.date.today().isoformat(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "size": a.size,
        "iters": a.iters,
        "faces": a.images,
        "rows_per_process_per_call": a.devices * a.rows_per_device,
        "runs": results,
        "command": "python -m benchmarks.bench_dfi_dataset " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
