"""Train the fusion GAN (Takagi & Okadome): stage 1 autoencoder (E, G with L1), stage 2 the full
objective with a Wasserstein critic, VGG-19 content/style, reconstruction and TV losses.

    python -m experiments.train_fusion                  # cpu_small: embedded synthetic faces, 32 px, minutes
    python -m experiments.train_fusion --preset paper --data celeba --data-dir ~/data/celeba --out runs/fusion/paper
    python -m experiments.train_fusion --preset paper_gp --data celeba --data-dir ~/data/celeba --holdout paper-count

Presets (explained in dfijax.fusion.presets; every flag given overrides its preset value): cpu_small
(the default: 32 px, a LayerNorm critic with the WGAN-GP penalty, minutes on a CPU), paper_gp (the
paper's 128 px, latent 4×4×1024, batch 100 and schedule with that critic) and paper (as written: a
BatchNorm critic with WGAN weight clipping, per-chunk perceptual losses, summed pixel losses).

Many hosts (JAX's multi-controller runtime): the same command on every host with the same --out (a
shared folder; on a Cloud TPU pod slice without the coordinator flags, which are detected). Each
process reads its rows of every global batch, process 0 writes the logs, pictures and JSON, and a
rerun resumes on any process count that divides the batch:
    python -m experiments.train_fusion ... --out /shared/f --coordinator host0:1234 --num-processes N --process-id I

--out holds the orbax checkpoints (rerunning the same command resumes exactly, even after a kill),
fusion_config.json, run_config.json (the preset, the flags given over it and every resolved setting,
written before training), metrics.jsonl, loss.png, samples/step_NNNNNN.png (rows: A and B; A', B';
fusions for Λ = 1, 0.8, …, 0 on a held-out pair), train_info.json (settings, device, weights, time,
final losses, held-out reconstruction L1 and PSNR), config.json and report.html. Fuse with
python -m experiments.fuse --ckpt <out>. The work is dfijax.fusion.run_training.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Literal

from tqdm import tqdm

from dfijax import config, fusion, report
from dfijax import images as im
from dfijax.fusion.data import DATA_KINDS
from dfijax.fusion.pipeline import TrainingConfig
from dfijax.fusion.presets import PRESETS
from experiments import runner

LOSS_KEYS = ("l1", "recon", "adv", "wdist", "content", "style", "tv")  # the curves in loss.png
SAMPLES = (  # the report's text under samples.png
    "Rows: A and B; their reconstructions A' and B'; the fusions for Λ = 1, 0.8, …, 0 on every chunk (Λ = 1 should "
    "give A, Λ = 0 B). Every sample is under samples/."
)


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[TrainingConfig, runner.FLAT] = TrainingConfig()
    data: Literal[DATA_KINDS] = "synthetic"
    """face dataset"""
    data_dir: str | None = None
    """CelebA folder (list_attr_celeba.txt + img_align_celeba/ [+ list_eval_partition.txt]) or tfds data_dir"""
    limit: int | None = None
    """use only the first N images of the dataset"""
    n_synthetic: int = 2000
    """synthetic faces to draw from"""
    weights: str | None = None
    """converted VGG-19 weights; default: weights/ or a seeded random net"""
    out: str = "runs/fusion/default"
    """checkpoint and output folder (a rerun resumes)"""
    stop_after: int | None = None
    """stop after this global step without a final checkpoint (as if killed; for testing resume)"""
    processes: Annotated[runner.Processes, runner.FLAT] = runner.Processes()


def resolve(args: Args, start: TrainingConfig) -> Args:
    """Record the preset's settings the command line changed (run_config.json's "overrides")."""
    over = config.changed(start, args.config, skip=("preset", "overrides"))
    return dataclasses.replace(args, config=dataclasses.replace(args.config, overrides=over))


def run(args: Args, ctx: runner.Context) -> runner.Outputs | None:

    config = fusion.for_devices(args.config)
    kw = dict(holdout=config.holdout, limit=args.limit, n_synthetic=args.n_synthetic, seed=config.seed)
    data = fusion.load_data(args.data, args.data_dir, **kw)
    fusion.check_data(config, data)
    weights = ctx.load_weights(args.weights, config.seed)
    out, record = ctx.out(), fusion.run_record(config, data)
    if ctx.main_proc:  # samples/ is made by the first sample
        report.write_json(out / "run_config.json", record)
    ctx.say(f"device: {ctx.device}; {fusion.describe(config, data)}; output {out}")

    def on_sample(step: int, grid) -> None:
        im.save_image(out / "samples" / f"step_{step:06d}.png", grid)
        report.plot_losses(out / "loss.png", fusion.logged_records(out), keys=LOSS_KEYS)

    def progress(step: int, total: int, rec: dict | None) -> None:
        bar.update(step - bar.n)
        if rec:
            bar.set_postfix({k: f"{rec[k]:.3g}" for k in ("l1", "wdist", "loss") if k in rec})

    with tqdm(total=config.total, desc="train", unit="step", file=sys.stderr, disable=not ctx.main_proc) as bar:
        r = fusion.run_training(
            config, data, weights.variables, out, progress=progress, on_sample=on_sample, stop_after=args.stop_after
        )
    if r.stopped:
        ctx.say(f"stopped after step {args.stop_after} (--stop-after); rerun the command to resume")
        return None
    if r.start:
        ctx.say(f"resumed from step {r.start}")
    if not ctx.main_proc:
        return None
    report.plot_losses(out / "loss.png", r.records, keys=LOSS_KEYS)
    im.save_image(out / "samples.png", r.samples)
    own = dataclasses.asdict(args)
    own.pop("config"), own.update(own.pop("processes"))
    results = {**record, "settings": {**own, **config.settings}, **r.to_dict()}
    q, last = r.held_out, (r.final_stage2 or r.final_stage1 or {}).items()
    rows = [["reconstruction L1 (on [-1, 1])", q["recon_l1"]], ["PSNR (dB)", q["recon_psnr_db"]]]
    rows += [["held-out images", q["images"]], ["resumed from step", r.start]]
    rows += [[k, v] for k, v in last if k not in ("step", "data_crc")]
    note = "note: the VGG-19 is random (NOT pretrained): content/style losses use random features"
    return runner.Outputs(
        title=f"Fusion GAN training ({config.preset} preset)",
        results=results,
        sections=[
            {"title": "Samples on a held-out pair", "images": ["samples.png"], "text": SAMPLES},
            {"title": "Losses", "images": ["loss.png"], "pixelated": False},
            {
                "title": "Held-out reconstruction and the last logged losses",
                "table": {"headers": ["measure", "value"], "rows": rows},
            },
        ],
        files=("loss.png", "samples.png"),
        results_file="train_info.json",
        device=f"{ctx.device}; {r.devices} device(s), {r.processes} process(es)",
        data=f"{record['data']}; {record['holdout']['description']}",
        seconds={"training": r.seconds},
        summary=[note] * (not weights.pretrained)
        + [
            f"trained to step {config.total} in {r.seconds:.0f} s; held-out reconstruction L1 {q['recon_l1']:.4f} "
            f"(on [-1, 1]), PSNR {q['recon_psnr_db']:.2f} dB; checkpoints in {out}"
        ],
        config=config,
    )


main, parse = runner.Experiment("train_fusion", Args, run, __doc__, PRESETS, resolve).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
