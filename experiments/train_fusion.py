"""Train the fusion GAN (Takagi & Okadome): stage 1 autoencoder (E, G with L1), stage 2 the full
objective with a Wasserstein critic, VGG-19 content/style, reconstruction and TV losses.

    python -m experiments.train_fusion                  # cpu_small: embedded synthetic faces, 32 px, minutes
    python -m experiments.train_fusion --preset paper --data celeba --data-dir ~/data/celeba --out runs/fusion/paper
    python -m experiments.train_fusion --preset paper_gp --data celeba --data-dir ~/data/celeba --holdout paper-count

Presets (dfijax.fusion.presets; any flag given overrides its preset value):
  cpu_small (default)  32 px, width 16, batch 16, 2000 + 60 steps; LayerNorm critic with the WGAN-GP
                       penalty and Adam: stable at small batches, no clip value to tune, minutes on a CPU
  paper_gp             the paper's sizes and schedule (128 px, latent 4×4×1024, batch 100, Adam 1e-3,
                       w1…w5 = 1, 1e-6, 5e-5, 30, 1) with the cpu_small critic and losses
  paper                the paper as written: BatchNorm critic, WGAN weight clipping 0.01 with RMSProp
                       5e-5 and 5 critic steps, no penalty, perceptual losses split on λ_n ∈ {0, 1}
                       (eqs. 4, 5), CelebA's test partition held out
Held out (--holdout): last (the last 16 images, any data), celeba-test (CelebA's list_eval_partition:
train on its 162,770 train images, hold out its 19,962 test images), paper-count (the paper's split:
files 1–200,000 train, the remaining 2,599 held out). The batch is split over all devices.

Many hosts (JAX's multi-controller runtime): the same command on every host, with the same --out (a
shared folder). Each process reads only its rows of every global batch (grain, sharded by process),
the batch is split over every device of every host, process 0 writes the logs, pictures and JSON, and
every process saves its shards of the orbax checkpoints, with the data iterator's position, so a rerun
resumes on any process count that divides the batch:
    # N GPU hosts (or N processes on one machine): the same command, its own --process-id on each
    python -m experiments.train_fusion ... --out /shared/f --coordinator host0:1234 --num-processes N --process-id I
    # Cloud TPU pod slice: the same command on every worker, no coordinator flags (detected)
    gcloud compute tpus tpu-vm ssh NAME --worker=all --command "python -m experiments.train_fusion ... --out /mnt/f"

--out holds the orbax checkpoints (rerunning the same command resumes exactly where it stopped, even
after a kill), fusion_config.json, run_config.json (the preset, the flags that overrode it and every
resolved setting, written before training starts), metrics.jsonl, loss.png (loss curves, redrawn at every sample),
samples/step_NNNNNN.png (rows: A and B; reconstructions A', B'; fusions for Λ = 1, 0.8, …, 0 on a
held-out pair) and train_info.json (settings, device, whether the VGG-19 is pretrained, time, final
losses, held-out reconstruction L1 and PSNR). Fuse with: python -m experiments.fuse --ckpt <out>.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pathlib
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from experiments import common

LAMBDAS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
EVAL_IMAGES = 16  # held-out images evaluated (and the first pair drawn in the samples)


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(v) for v in s.split(","))


def parse(argv):
    from dfijax.fusion import presets

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--preset",
        choices=sorted(presets.PRESETS),
        default=presets.DEFAULT,
        help="named settings (see above); every flag below that is given overrides the preset",
    )
    p.add_argument("--data", choices=["synthetic", "celeba", "celeba-tfds"], default="synthetic")
    p.add_argument(
        "--data-dir",
        help="CelebA folder (list_attr_celeba.txt + img_align_celeba/ [+ list_eval_partition.txt]) or tfds data_dir",
    )
    p.add_argument("--limit", type=int, help="use only the first N images of the dataset")
    p.add_argument("--n-synthetic", type=int, default=2000, help="synthetic faces to draw from")
    p.add_argument(
        "--holdout",
        choices=list(presets.HOLDOUTS),
        help="held-out images: last, celeba-test, paper-count (preset: paper celeba-test, else last)",
    )
    p.add_argument("--size", type=int, help="image size: 32, 64, 128 (paper), 256")
    p.add_argument("--width", type=int, help="first-layer channels (64 = paper)")
    p.add_argument(
        "--batch",
        type=int,
        help="global batch, split over all devices of all processes (preset "
        "value rounded down to a multiple of the device count)",
    )
    p.add_argument("--stage1-steps", type=int, help="autoencoder pretraining")
    p.add_argument("--stage2-steps", type=int, help="full objective")
    p.add_argument("--lr", type=float, help="Adam learning rate of E and G (and of an Adam critic without --d-lr)")
    p.add_argument("--b1", type=float, help="Adam beta1")
    p.add_argument("--n-critic", type=int, help="critic updates per (E, G) update")
    p.add_argument("--gp", type=float, help="gradient-penalty weight (0: off)")
    p.add_argument("--clip", type=float, help="clip the critic's weights to [-c, c] (WGAN; 0: off)")
    p.add_argument(
        "--d-norm",
        choices=["layer", "batch", "none"],
        help="critic normalisation (batch = the paper's; layer suits the gradient penalty)",
    )
    p.add_argument("--d-optimizer", choices=["adam", "rmsprop"], help="the critic's optimizer")
    p.add_argument("--d-lr", type=float, help="the critic's learning rate (default: --lr)")
    p.add_argument(
        "--perceptual",
        choices=["mean", "paper"],
        help="Λ and the perceptual targets: mean (λ̄-weighted) or paper (eqs. 4, 5 per chunk)",
    )
    p.add_argument("--loss-weights", help="w1..w5: adversarial, content, style, reconstruction, TV")
    p.add_argument("--content-layers")
    p.add_argument("--style-layers")
    p.add_argument(
        "--lambda-kind",
        choices=["chunk", "channel", "spatial"],
        help="training Λ: one per latent chunk (paper), per channel, or per (4x4 cell, chunk)",
    )
    p.add_argument("--lambda-values", choices=["binary", "uniform"])
    p.add_argument("--p-ends", type=float, help="share of pairs trained with Λ all 1 or all 0")
    p.add_argument("--chunks", type=int)
    p.add_argument("--weights", help="converted VGG-19 weights; default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int)
    p.add_argument("--keep", type=int, default=3, help="checkpoints kept")
    p.add_argument("--log-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--out", default="runs/fusion/default", help="checkpoint and output folder (resumes)")
    common.add_distributed_flags(p)
    p.add_argument(
        "--stop-after",
        type=int,
        help="stop after this global step without a final checkpoint (as if killed; for testing resume)",
    )
    return p.parse_args(argv)


def resolve(args) -> tuple[dict, list[str]]:
    """(the preset with every given flag over it, the names of the flags that overrode it)."""
    from dfijax.fusion import presets

    given = {k: getattr(args, k) for k in presets.PRESETS[args.preset] if getattr(args, k, None) is not None}
    settings = presets.resolve(args.preset, given)
    if settings["clip"] is not None and settings["clip"] <= 0:
        settings["clip"] = None  # --clip 0 turns a preset's clipping off
    return settings, sorted(given)


def build_config(s: dict):
    """FusionConfig from resolved settings."""
    from dfijax.fusion.losses import FusionLoss
    from dfijax.fusion.train import FusionConfig

    w = _floats(s["loss_weights"])
    if len(w) != 5:
        raise ValueError(f"--loss-weights needs 5 values (w1..w5), got {len(w)}")
    loss = FusionLoss(
        w_adv=w[0],
        w_content=w[1],
        w_style=w[2],
        w_recon=w[3],
        w_tv=w[4],
        gp_weight=s["gp"],
        content_layers=tuple(s["content_layers"].split(",")),
        style_layers=tuple(s["style_layers"].split(",")),
    )
    from dfijax.vgg import layer_index

    for layer in loss.taps:
        layer_index(layer)
    return FusionConfig(
        size=s["size"],
        width=s["width"],
        n_chunks=s["chunks"],
        d_norm=s["d_norm"],
        lambda_kind=s["lambda_kind"],
        lambda_values=s["lambda_values"],
        p_ends=s["p_ends"],
        loss=loss,
        clip=s["clip"],
        n_critic=s["n_critic"],
        lr=s["lr"],
        b1=s["b1"],
        d_optimizer=s["d_optimizer"],
        d_lr=s["d_lr"],
        perceptual=s["perceptual"],
    )


def load_dataset(args, holdout: str):
    """(training dataset, its training indices, held-out dataset, its held-out indices, a description)."""
    from dfijax.data import DataError, celeba
    from dfijax.data.synthetic_faces import synthetic_faces
    from dfijax.fusion.data import holdout_split

    if args.data == "synthetic":
        data = synthetic_faces(args.n_synthetic if args.limit is None else min(args.limit, args.n_synthetic), args.seed)
        partition = None
    elif not args.data_dir and args.data == "celeba":
        raise DataError("--data celeba needs --data-dir (the folder with list_attr_celeba.txt and img_align_celeba/)")
    elif args.data == "celeba":
        data = celeba.load_celeba_folder(args.data_dir, limit=args.limit)
        partition = celeba.load_celeba_partition(args.data_dir) if holdout == "celeba-test" else None
    else:
        if holdout == "paper-count":
            raise ValueError("--holdout paper-count needs CelebA's file names: use --data celeba (the folder)")
        if holdout == "celeba-test":  # tfds celeb_a's splits are CelebA's partition
            train = celeba.load_celeba_tfds(args.data_dir, split="train", limit=args.limit)
            held = celeba.load_celeba_tfds(args.data_dir, split="test", limit=EVAL_IMAGES)
            return (
                train,
                np.arange(len(train)),
                held,
                np.arange(len(held)),
                f"tfds celeb_a: train split ({len(train)}) for training, the first {len(held)} of the test "
                "split held out",
            )
        data = celeba.load_celeba_tfds(args.data_dir, limit=args.limit)
        partition = None
    train_idx, held_idx = holdout_split(data.ids, holdout, partition)
    desc = {
        "last": "the last {h} images held out",
        "celeba-test": "CelebA's list_eval_partition: {t} train images for training, {h} test images held out "
        "(validation unused)",
        "paper-count": "the paper's split: files up to 200000.jpg for training ({t}), {h} held out",
    }[holdout]
    return data, train_idx, data, held_idx, desc.format(t=len(train_idx), h=len(held_idx))


def sample_grid(cfg, eg, pair: np.ndarray) -> np.ndarray:
    """Rows: A … B | A' … B' | Λ = 1 … 0, A and B in the Λ = 1 and Λ = 0 columns (pair: [2, S, S, 3] in
    [-1, 1]); [H, W, 3] in [0, 1]."""
    from dfijax import images as im
    from dfijax.fusion import train as ft
    from dfijax.fusion.data import to_unit

    rec = np.asarray(ft.reconstruct(cfg, eg, pair))
    fused = np.asarray(ft.fuse(cfg, eg, pair[0], pair[1], [[l] * cfg.n_chunks for l in LAMBDAS]))
    up = im.upscale_nearest
    rows = [ends(up(to_unit(r[0])), up(to_unit(r[1])), len(LAMBDAS)) for r in (pair, rec)]
    rows.append([im.upscale_nearest(to_unit(y)) for y in fused])
    return im.make_grid(rows, col_labels=[f"{l:.1f}" for l in LAMBDAS])


def ends(a: np.ndarray, b: np.ndarray, n: int) -> list[np.ndarray]:
    """[a, blank, …, blank, b]: n cells, so that A and B sit above the Λ = 1 and Λ = 0 columns."""
    return [a] + [np.ones_like(a)] * (n - 2) + [b]


def local(tree):
    """A replicated pytree (on a mesh that may span processes) as host numpy arrays: this process's copy."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_shards[0].data) if isinstance(x, jax.Array) else x, tree)


def evaluate(cfg, eg, held: np.ndarray) -> dict:
    """Held-out reconstruction (inference-mode BatchNorm): L1 on [-1, 1] and PSNR on [0, 1]."""
    from dfijax.fusion import train as ft
    from dfijax.fusion.data import to_unit

    rec = np.asarray(ft.reconstruct(cfg, eg, held))
    mse = float(np.mean((to_unit(rec) - to_unit(held)) ** 2))
    return {
        "recon_l1": float(np.mean(np.abs(rec - held))),
        "recon_psnr_db": float(10 * np.log10(1 / max(mse, 1e-12))),
        "images": int(held.shape[0]),
    }


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import distributed as dist

    try:
        proc = dist.initialize(args.coordinator, args.num_processes, args.process_id)
    except ValueError as e:
        return common.fail(str(e))
    from dfijax import images as im
    from dfijax import training
    from dfijax.data import DataError
    from dfijax.fusion import train as ft
    from dfijax.fusion.data import Batches, ShardedLoader

    main_proc = dist.is_main()
    device = common.setup()
    n_dev = jax.device_count()
    try:
        settings, overrides = resolve(args)
        if "batch" not in overrides:  # the preset's batch, rounded down to a multiple of the devices
            settings["batch"] = max(n_dev, settings["batch"] - settings["batch"] % n_dev)
        cfg = build_config(settings)
        batch, s1, s2 = settings["batch"], settings["stage1_steps"], settings["stage2_steps"]
        if batch < 2 or batch % n_dev:
            raise ValueError(f"--batch must be at least 2 and a multiple of the {n_dev} devices, got {batch}")
        if s1 < 0 or s2 < 0 or s1 + s2 == 0:
            raise ValueError("--stage1-steps and --stage2-steps must be >= 0, and not both 0")
        data, train_idx, held_data, held_idx, holdout_desc = load_dataset(args, settings["holdout"])
        if len(train_idx) < batch:
            raise ValueError(
                f"{data.describe()}: {len(train_idx)} training images after the holdout, fewer than "
                f"the batch of {batch}"
            )
        if len(held_idx) < 2:
            raise ValueError(f"{held_data.describe()}: need at least 2 held-out images, got {len(held_idx)}")
        batches = ShardedLoader(data, cfg.size, batch, args.seed, indices=train_idx)
        held_loader = Batches(held_data, cfg.size, 2, args.seed, indices=held_idx)
        held = np.stack([held_loader.image(int(i)) for i in held_idx[:EVAL_IMAGES]])
        if main_proc:
            weights = common.load_weights(args.weights, args.seed)
        else:  # the same weights, without process 0's message
            with contextlib.redirect_stderr(io.StringIO()):
                weights = common.load_weights(args.weights, args.seed)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e))

    out = pathlib.Path(args.out).absolute()
    if main_proc:
        (out / "samples").mkdir(parents=True, exist_ok=True)
    total = s1 + s2
    holdout = {
        "kind": settings["holdout"],
        "train_images": len(train_idx),
        "held_out_images": len(held_idx),
        "description": holdout_desc,
        "evaluated": [held_data.ids[int(i)] for i in held_idx[:EVAL_IMAGES]],
    }
    run_config = {
        "preset": args.preset,
        "overrides": overrides,
        "settings": settings,
        "config": cfg.to_dict(),
        "data": data.describe(),
        "holdout": holdout,
    }
    if main_proc:
        common.write_json(out / "run_config.json", run_config)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if main_proc else (lambda msg: None)
    say(
        f"device: {device}; preset {args.preset}"
        + (f" (overridden: {', '.join(overrides)})" if overrides else "")
        + f"; {data.describe()}; {holdout_desc}; {cfg.size}px, width {cfg.width}, latent {cfg.latent_shape} in "
        f"chunks {cfg.chunks}; critic {cfg.d_norm} norm, {cfg.d_optimizer}, "
        + (f"clip {cfg.clip}" if cfg.clip else f"gradient penalty {cfg.loss.gp_weight:g}")
        + f"; batch {batch} over {n_dev} device(s) of {proc.count} process(es); stage 1: {s1} steps, "
        f"stage 2: {s2} steps; output {out}"
    )
    pair = held[:2]
    log = training.MetricsLog(out / "metrics.jsonl")
    keys = ("l1", "recon", "adv", "wdist", "content", "style", "tv")
    t0 = time.perf_counter()

    class Stopped(Exception):
        pass

    def callback(step, state, rec):
        bar.update(step - bar.n)
        if rec:
            bar.set_postfix({k: f"{rec[k]:.3g}" for k in ("l1", "wdist", "loss") if k in rec})
        if main_proc and (step % settings["sample_every"] == 0 or step in (s1, total)):
            im.save_image(out / "samples" / f"step_{step:06d}.png", sample_grid(cfg, local(state.eg), pair))
            common.plot_losses(out / "loss.png", log.records(), keys=keys)
        if step == args.stop_after:
            raise Stopped()

    try:
        with tqdm(total=total, desc="train", unit="step", file=sys.stderr, disable=not main_proc) as bar:
            state, start = ft.train(
                cfg,
                batches,
                weights.variables,
                s1,
                s2,
                out,
                seed=args.seed,
                save_every=settings["save_every"],
                keep=args.keep,
                log_every=settings["log_every"],
                callback=callback,
            )
    except ft.CheckpointMismatch as e:
        return common.fail(str(e))
    except Stopped:
        say(f"stopped after step {args.stop_after} (--stop-after); rerun the command to resume")
        return 0
    dt = time.perf_counter() - t0
    if start:
        say(f"resumed from step {start}")
    if not main_proc:
        return 0
    state = local(state)
    records = log.records()
    common.plot_losses(out / "loss.png", records, keys=keys)
    im.save_image(out / "samples.png", sample_grid(cfg, state.eg, pair))
    quality = evaluate(cfg, state.eg, held)
    last = {s: next((r for r in reversed(records) if r.get("stage") == s), None) for s in (1, 2)}
    info = {
        "preset": args.preset,
        "overrides": overrides,
        "settings": {**vars(args), **settings},
        "config": cfg.to_dict(),
        "device": device,
        "devices": n_dev,
        "processes": proc.count,
        "data": data.describe(),
        "holdout": holdout,
        "weights": weights.description,
        "weights_pretrained": weights.pretrained,
        "resumed_from": start,
        "seconds": dt,
        "steps_run": total - start,
        "final_stage1": last[1],
        "final_stage2": last[2],
        "held_out": quality,
    }
    common.write_json(out / "train_info.json", info)
    if not weights.pretrained:
        print("note: the VGG-19 is random (NOT pretrained): content/style losses use random features", file=sys.stderr)
    print(
        f"trained to step {total} in {dt:.0f} s; held-out reconstruction L1 {quality['recon_l1']:.4f} "
        f"(on [-1, 1]), PSNR {quality['recon_psnr_db']:.2f} dB; wrote {out / 'loss.png'}, {out / 'samples.png'}, "
        f"{out / 'train_info.json'}; checkpoints in {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
