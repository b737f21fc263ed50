"""Deep Feature Interpolation over a whole dataset, on every device of every process of a job.

    python -m experiments.dfi_dataset                      # embedded synthetic faces (64 of them), one process
    python -m experiments.dfi_dataset --dataset celeba --data-dir data/celeba --edit Smiling+ --alphas 0.4 \\
        --out runs/smile
    # N processes (GPU hosts, or CPU processes for a test): the same command on each, its own --process-id
    python -m experiments.dfi_dataset ... --out /shared/smile --coordinator host0:1234 --num-processes N --process-id I
    # Cloud TPU pod slice: the same command on every worker, no coordinator flags (detected)

Every face that lacks the edit (or every face, --select all; at most --limit per edit) is edited at each
alpha: neighbours and the attribute vector per face (cached under ~/.cache/dfijax), then all processes'
chunks of rows are inverted together, one compiled L-BFGS call per step over the global device mesh.
Writes, under --out: job.json, shards/chunk-*.npz (uint8 images), index/chunk-*.jsonl (input id, edit,
alpha, final loss, probe score per image). Rerun the same command after a kill: finished chunks are
skipped. Prints one JSON line per process at the end (chunks solved and skipped, images/s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from experiments import common

if TYPE_CHECKING:
    from dfijax.dfi.dataset_job import JobConfig


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["synthetic", "celeba", "celeba-tfds", "lfw"], default="synthetic")
    p.add_argument("--data-dir", help="dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)")
    p.add_argument("--n-synthetic", type=int, default=2000, help="size of the synthetic face set")
    p.add_argument("--edit", default="Smiling+", help="attribute spec, e.g. 'Smiling+'; several separated by ';'")
    p.add_argument("--alphas", default="0.4", help="comma-separated strengths (default 0.4)")
    p.add_argument(
        "--select",
        choices=["lacking", "all"],
        default="lacking",
        help="edit the faces lacking the edit (default) or every face",
    )
    p.add_argument("--limit", type=int, help="at most this many faces per edit (default: all; synthetic: 64)")
    p.add_argument(
        "--chunk",
        type=int,
        help="rows per process per compiled call, a multiple of the local device count "
        "(default: local devices x --rows-per-device)",
    )
    p.add_argument("--rows-per-device", type=int, default=4, help="rows per device per call (default 4)")
    p.add_argument("--preset", choices=["dfijax", "official", "chainer"], default="dfijax")
    p.add_argument("--k", type=int, help="neighbours in each set (100)")
    p.add_argument("--allow-fewer", action="store_true", help="go on with fewer than K neighbours")
    p.add_argument("--size", type=int, help="working size in pixels (dfijax preset 64)")
    p.add_argument("--iters", type=int, help="L-BFGS iterations (dfijax preset 100)")
    p.add_argument("--tv", type=float, help="TV weight")
    p.add_argument("--dtype", choices=["float32", "bfloat16"])
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--batch", type=int, help="images per batch when averaging neighbour features (32)")
    p.add_argument("--no-probe", action="store_true", help="skip the attribute probe")
    p.add_argument("--probe-steps", type=int, help="probe training steps (300)")
    p.add_argument("--probe-train", type=int, help="probe training images (2000)")
    p.add_argument("--seed", type=int, help="random seed (0)")
    p.add_argument("--out", help="output folder, the same for every process (default runs/dfi_dataset/<time>)")
    common.add_distributed_flags(p)
    p.add_argument("--stop-after-chunks", type=int, help="stop after this many chunks per process (as if killed)")
    return p.parse_args(argv)


def config_from(args, local_devices: int) -> "JobConfig":
    """The preset overridden by every flag given, cut into chunks of --chunk (default: local devices x
    --rows-per-device) rows; --limit defaults to 64 faces per edit on the synthetic set."""
    from dfijax.dfi import dataset_job, presets
    from dfijax.dfi.specs import parse_alphas, parse_edits

    cfg = presets.preset(
        args.preset,
        edits=parse_edits(args.edit),
        alphas=parse_alphas(args.alphas),
        k=args.k,
        allow_fewer=args.allow_fewer or None,
        size=args.size,
        iters=args.iters,
        tv=args.tv,
        dtype=args.dtype,
        batch=args.batch,
        probe=False if args.no_probe else None,
        probe_steps=args.probe_steps,
        probe_train=args.probe_train,
        seed=args.seed,
    )
    limit = args.limit if (args.limit or args.dataset != "synthetic") else 64
    chunk = args.chunk or local_devices * args.rows_per_device
    return dataset_job.JobConfig(cfg, chunk=chunk, select=args.select, limit=limit)


def step_printer(enabled: bool):
    """run_job's progress callback: one stderr line per finished step with its seconds (when enabled)."""
    last = [time.perf_counter()]

    def progress(stage, done, total, info):
        if stage == "chunks" and enabled:
            now = time.perf_counter()
            print(f"step {done}/{total} ({now - last[0]:.1f}s)", file=sys.stderr, flush=True)
            last[0] = now

    return progress


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    if (info := common.start_processes(args)) is None:
        return 1
    from dfijax.data import DataError
    from dfijax.data.faces import load_faces
    from dfijax.dfi import dataset_job
    from dfijax.weights import load_vgg

    main_proc = info.index == 0
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if main_proc else (lambda msg: None)
    device = common.setup()
    try:
        if info.count > 1 and not args.out:
            raise ValueError("several processes need one --out folder (the same path on every process)")
        job = config_from(args, info.local_devices)
        cfg = job.sweep
        data = load_faces(args.dataset, args.data_dir, args.n_synthetic, args.seed or 0)
        out = common.out_dir(args.out, "dfi_dataset")
        load = common.load_weights if main_proc else lambda path, seed: load_vgg(path, depth=19, seed=seed)
        weights = load(args.weights, cfg.seed)  # only process 0 announces them
        say(
            f"device: {device}; process {info.index} of {info.count} ({info.local_devices} local devices); "
            f"data: {data.describe()}; edits {list(cfg.edits)} x alphas {list(cfg.alphas)} at {cfg.size}px, "
            f"{cfg.iters} iterations, {job.chunk} rows per process per call; output {out}"
        )
        result = dataset_job.run_job(
            job,
            data,
            weights,
            out,
            cache_root=common.cache_root(),
            stop_after_chunks=args.stop_after_chunks,
            progress=step_printer(main_proc),
        )
    except (ValueError, FileNotFoundError, DataError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    print(json.dumps({**result.summary(), "out": str(out)}), flush=True)
    say(
        f"{result.images} images in {result.seconds['solve']:.1f}s: {result.images_per_s:.2f} images/s; "
        f"index: {out / 'index'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
