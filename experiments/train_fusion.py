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
                       (eqs. 4, 5), pixel losses summed as printed (eqs. 7–10), CelebA's test
                       partition held out
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
held-out pair), train_info.json (settings, device, whether the VGG-19 is pretrained, time, final
losses, held-out reconstruction L1 and PSNR) and report.html (the final samples, the loss curves, the
held-out reconstruction and the last losses). Fuse with: python -m experiments.fuse --ckpt <out>.
The work is one library call, dfijax.fusion.run_training (config: dfijax.fusion.training_config).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pathlib
import sys
from typing import TYPE_CHECKING

from experiments import common

if TYPE_CHECKING:
    from dfijax.fusion import TrainingConfig, TrainingResult

LOSS_KEYS = ("l1", "recon", "adv", "wdist", "content", "style", "tv")  # the curves in loss.png


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
    p.add_argument(
        "--pixel-reduction",
        choices=["mean", "sum"],
        help="L1 (eqs. 7, 10) and TV (eq. 8): per-pixel mean, or the sum over the pixels as the equations print",
    )
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


def config_from(args, devices: int | None = None) -> "TrainingConfig":
    """The preset with every flag given put over it (the batch rounded to the devices unless given)."""
    from dfijax import fusion

    given = {k: getattr(args, k) for k in fusion.presets.PRESETS[args.preset] if getattr(args, k, None) is not None}
    return fusion.training_config(args.preset, devices=devices, seed=args.seed, keep=args.keep, **given)


def load_weights(path: str | None, seed: int, main_proc: bool):
    """The VGG-19 (announced by process 0 only)."""
    if main_proc:
        return common.load_weights(path, seed)
    with contextlib.redirect_stderr(io.StringIO()):  # the same weights, without process 0's message
        return common.load_weights(path, seed)


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    if (proc := common.start_processes(args)) is None:
        return 1
    from tqdm import tqdm

    from dfijax import fusion
    from dfijax import images as im
    from dfijax.data import DataError

    main_proc, device = proc.index == 0, common.setup()
    try:
        config = config_from(args)
        kw = dict(holdout=config.holdout, limit=args.limit, n_synthetic=args.n_synthetic, seed=args.seed)
        data = fusion.load_data(args.data, args.data_dir, **kw)
        fusion.check_data(config, data)
        weights = load_weights(args.weights, args.seed, main_proc)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e))
    out = pathlib.Path(args.out).absolute()
    run_config = {**config.to_dict(), "data": data.describe(), "holdout": data.holdout_info()}
    if main_proc:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        common.write_json(out / "run_config.json", run_config)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if main_proc else (lambda msg: None)
    say(f"device: {device}; {summary(config, data, proc.count)}; output {out}")

    def on_sample(step: int, grid) -> None:
        im.save_image(out / "samples" / f"step_{step:06d}.png", grid)
        common.plot_losses(out / "loss.png", fusion.logged_records(out), keys=LOSS_KEYS)

    def progress(step: int, total: int, rec: dict | None) -> None:
        bar.update(step - bar.n)
        if rec:
            bar.set_postfix({k: f"{rec[k]:.3g}" for k in ("l1", "wdist", "loss") if k in rec})

    try:
        with tqdm(total=config.total, desc="train", unit="step", file=sys.stderr, disable=not main_proc) as bar:
            result = fusion.run_training(
                config, data, weights.variables, out, progress=progress, on_sample=on_sample, stop_after=args.stop_after
            )
    except ValueError as e:  # a folder trained with other settings
        return common.fail(str(e))
    if result.stopped:
        say(f"stopped after step {args.stop_after} (--stop-after); rerun the command to resume")
        return 0
    if result.start:
        say(f"resumed from step {result.start}")
    if main_proc:
        write_outputs(out, args, result, run_config, weights, device)
    return 0


def summary(config: "TrainingConfig", data, processes: int) -> str:
    """One line: the preset and its overrides, the data, the networks, the critic, the batch and schedule."""
    import jax

    cfg = config.fusion
    return (
        f"preset {config.preset}"
        + (f" (overridden: {', '.join(config.overrides)})" if config.overrides else "")
        + f"; {data.describe()}; {data.description}; {cfg.size}px, width {cfg.width}, latent {cfg.latent_shape} in "
        f"chunks {cfg.chunks}; critic {cfg.d_norm} norm, {cfg.d_optimizer}, "
        + (f"clip {cfg.clip}" if cfg.clip else f"gradient penalty {cfg.loss.gp_weight:g}")
        + f"; batch {config.batch} over {jax.device_count()} device(s) of {processes} process(es); stage 1: "
        f"{config.stage1_steps} steps, stage 2: {config.stage2_steps} steps"
    )


def write_outputs(out: pathlib.Path, args, r: "TrainingResult", run_config: dict, weights, device: str) -> None:
    """loss.png, samples.png, train_info.json and report.html (process 0), and the closing lines."""
    from dfijax import images as im
    from experiments import report

    common.plot_losses(out / "loss.png", r.records, keys=LOSS_KEYS)
    im.save_image(out / "samples.png", r.samples)
    info = {
        **{k: run_config[k] for k in ("preset", "overrides")},
        "settings": {**vars(args), **r.config.settings},
        "config": run_config["config"],
        "device": device,
        "devices": r.devices,
        "processes": r.processes,
        **{k: run_config[k] for k in ("data", "holdout")},
        "weights": weights.description,
        "weights_pretrained": weights.pretrained,
        "resumed_from": r.start,
        "seconds": r.seconds,
        "steps_run": r.steps_run,
        "final_stage1": r.final_stage1,
        "final_stage2": r.final_stage2,
        "held_out": r.held_out,
    }
    common.write_json(out / "train_info.json", info)
    q = r.held_out
    last = {k: v for k, v in (r.final_stage2 or r.final_stage1 or {}).items() if k not in ("step", "data_crc")}
    report.write_report(
        out / "report.html",
        f"Fusion GAN training ({r.config.preset} preset)",
        weights=weights.description,
        pretrained=weights.pretrained,
        device=f"{device}; {r.devices} device(s), {r.processes} process(es)",
        data=f"{run_config['data']}; {run_config['holdout']['description']}",
        seconds={"training": r.seconds},
        config=run_config,
        sections=[
            {
                "title": "Samples on a held-out pair",
                "images": ["samples.png"],
                "text": "Rows: A and B; their reconstructions A' and B'; the fusions for Λ = 1, 0.8, …, 0 on every "
                "chunk (Λ = 1 should give A, Λ = 0 B). Every sample is under samples/.",
            },
            {"title": "Losses", "images": ["loss.png"], "pixelated": False},
            {
                "title": "Held-out reconstruction and the last logged losses",
                "table": {
                    "headers": ["measure", "value"],
                    "rows": [["reconstruction L1 (on [-1, 1])", q["recon_l1"]], ["PSNR (dB)", q["recon_psnr_db"]]]
                    + [["held-out images", q["images"]], ["resumed from step", r.start]]
                    + [[k, v] for k, v in last.items()],
                },
            },
        ],
    )
    if not weights.pretrained:
        print("note: the VGG-19 is random (NOT pretrained): content/style losses use random features", file=sys.stderr)
    print(
        f"trained to step {r.config.total} in {r.seconds:.0f} s; held-out reconstruction L1 {q['recon_l1']:.4f} "
        f"(on [-1, 1]), PSNR {q['recon_psnr_db']:.2f} dB; wrote {out / 'loss.png'}, {out / 'samples.png'}, "
        f"{out / 'train_info.json'}, {out / 'report.html'}; checkpoints in {out}"
    )


if __name__ == "__main__":
    sys.exit(main())
