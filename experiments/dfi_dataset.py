"""Deep Feature Interpolation over a whole dataset, on every device of every process of a job.

    python -m experiments.dfi_dataset                      # embedded synthetic faces (64 of them), one process
    python -m experiments.dfi_dataset --dataset celeba --data-dir data/celeba --edit Smiling+ --out runs/smile
    # N processes (GPU hosts, or CPU processes for a test): the same command on each, its own --process-id
    python -m experiments.dfi_dataset ... --out /shared/smile --coordinator host0:1234 --num-processes N --process-id I
    # Cloud TPU pod slice: the same command on every worker, no coordinator flags (detected)

Every face that lacks the edit (or every face, --select all; at most --limit per edit) is edited at each
alpha: neighbours and attribute vector per face (cached under ~/.cache/dfijax), then all processes' chunks
of rows inverted together, one compiled L-BFGS call per step over the global device mesh. A preset sets
the objective, solver and post-processing; neighbours are always picked by attributes, a residual is a
single one and the output is the edited image at the dataset's crop. Writes, under --out: job.json,
shards/chunk-*.npz (uint8 images), index/chunk-*.jsonl (input id, edit, alpha, final loss, probe score per
image). Rerun the same command after a kill: finished chunks are skipped. Prints one JSON line per process
at the end (chunks solved and skipped, images/s).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Literal

from dfijax.data.faces import FaceSource
from dfijax.dfi import dataset_job
from dfijax.dfi.dataset_job import PRESETS, JobConfig
from dfijax.runtime import cache_root
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[JobConfig, runner.FLAT] = JobConfig()
    preset: Literal[tuple(PRESETS)] = "dfijax"
    """the sweep settings of a reference (official, chainer) or this project's default; flags override it"""
    faces: Annotated[FaceSource, runner.FLAT] = FaceSource()
    weights: str | None = None
    """converted weights (.safetensors); default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder, the same for every process (default runs/dfi_dataset/<time>)"""
    processes: Annotated[runner.Processes, runner.FLAT] = runner.Processes()


def run(args: Args, ctx: runner.Context) -> None:

    p = ctx.proc
    if p.count > 1 and not args.out:
        raise ValueError("several processes need one --out folder (the same path on every process)")
    job = args.config
    if job.limit is None and args.faces.dataset == "synthetic":
        job = dataclasses.replace(job, limit=64)
    cfg = job.sweep
    data = args.faces.load(cfg.seed)
    out, weights = ctx.out(), ctx.load_weights(args.weights, cfg.seed)
    ctx.say(
        f"device: {ctx.device}; process {p.index} of {p.count} ({p.local_devices} local devices); "
        f"data: {data.describe()}; edits {list(cfg.edits)} x alphas {list(cfg.alphas)} at {cfg.size}px, "
        f"{cfg.solve.iters} iterations, {job.chunk_rows(p.local_devices)} rows per process per call; output {out}"
    )

    def progress(stage, done, total, info):
        if stage == "chunks":
            ctx.say(f"step {done}/{total} ({info['seconds']:.1f}s)")

    r = dataset_job.run_job(job, data, weights, out, cache_root=cache_root(), progress=progress)
    print(json.dumps({**r.summary(), "out": str(out)}), flush=True)
    ctx.say(f"{r.images} images in {r.seconds['solve']:.1f}s: {r.images_per_s:.2f} images/s; index: {out / 'index'}")


main, parse = runner.Experiment("dfi_dataset", Args, run, __doc__, PRESETS).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
