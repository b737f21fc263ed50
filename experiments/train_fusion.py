"""Train the fusion GAN (Takagi & Okadome): stage 1 autoencoder (E, G with L1), stage 2 the full
objective with a Wasserstein critic, VGG-19 content/style, reconstruction and TV losses.

    python -m experiments.train_fusion                  # CPU: embedded synthetic faces, 32 px, minutes
    python -m experiments.train_fusion --data celeba --data-dir ~/data/celeba --out runs/fusion/celeba
                                                        # GPU defaults: 128 px, width 64, batch 100

Defaults follow the backend: on a GPU/TPU the paper's setting (128×128, latent 4×4×1024, batch 100,
Adam 1e-3, w1…w5 = 1, 1e-6, 5e-5, 30, 1); on CPU a small one that trains a visibly working
autoencoder in a few minutes. The batch is split over all local devices (data parallel).

--out holds the orbax checkpoints (rerunning the same command resumes exactly where it stopped, even
after a kill), fusion_config.json, metrics.jsonl, loss.png (loss curves, redrawn at every sample),
samples/step_NNNNNN.png (rows: A and B; reconstructions A', B'; fusions for Λ = 1, 0.8, …, 0 on a
held-out pair) and train_info.json (settings, device, whether the VGG-19 is pretrained, time, final
losses, held-out reconstruction L1 and PSNR). Fuse with: python -m experiments.fuse --ckpt <out>.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from experiments import common

LAMBDAS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
HELD_OUT = 16


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(v) for v in s.split(","))


def parse(argv):
    gpu = jax.default_backend() != "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["synthetic", "celeba", "celeba-tfds"], default="synthetic")
    p.add_argument("--data-dir", help="CelebA folder (list_attr_celeba.txt + img_align_celeba/) or tfds data_dir")
    p.add_argument("--limit", type=int, help="use only the first N images of the dataset")
    p.add_argument("--n-synthetic", type=int, default=2000, help="synthetic faces to draw from")
    p.add_argument("--size", type=int, default=128 if gpu else 32, help="image size: 32, 64, 128 (paper), 256")
    p.add_argument("--width", type=int, default=64 if gpu else 16, help="first-layer channels (64 = paper)")
    p.add_argument("--batch", type=int, help="global batch, split over the local devices (default: 100 on a GPU "
                   "rounded down to a multiple of the device count, 16 on CPU)")
    p.add_argument("--stage1-steps", type=int, default=5000 if gpu else 2000, help="autoencoder pretraining")
    p.add_argument("--stage2-steps", type=int, default=30000 if gpu else 60, help="full objective")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--b1", type=float, default=0.5, help="Adam beta1")
    p.add_argument("--n-critic", type=int, default=1, help="critic updates per (E, G) update")
    p.add_argument("--gp", type=float, default=10.0, help="gradient-penalty weight (0: off)")
    p.add_argument("--clip", type=float, help="clip the critic's weights to [-c, c] (WGAN; use with --gp 0)")
    p.add_argument("--d-norm", choices=["layer", "batch", "none"], default="layer",
                   help="critic normalisation (batch = the paper's; layer suits the gradient penalty)")
    p.add_argument("--loss-weights", default="1,1e-6,5e-5,30,1", help="w1..w5: adversarial, content, style, "
                   "reconstruction, TV")
    p.add_argument("--content-layers", default="conv4_1,conv5_1")
    p.add_argument("--style-layers", default="conv1_1,conv2_1,conv3_1")
    p.add_argument("--lambda-kind", choices=["chunk", "channel", "spatial"], default="chunk",
                   help="training Λ: one per latent chunk (paper), per channel, or per (4x4 cell, chunk)")
    p.add_argument("--lambda-values", choices=["binary", "uniform"], default="binary")
    p.add_argument("--p-ends", type=float, default=0.2, help="share of pairs trained with Λ all 1 or all 0")
    p.add_argument("--chunks", type=int, default=5)
    p.add_argument("--weights", help="converted VGG-19 weights; default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=1000 if gpu else 500)
    p.add_argument("--keep", type=int, default=3, help="checkpoints kept")
    p.add_argument("--log-every", type=int, default=50 if gpu else 10)
    p.add_argument("--sample-every", type=int, default=1000 if gpu else 250)
    p.add_argument("--out", default="runs/fusion/default", help="checkpoint and output folder (resumes)")
    return p.parse_args(argv)


def build_config(args):
    from dfijax.fusion.losses import FusionLoss
    from dfijax.fusion.train import FusionConfig

    w = _floats(args.loss_weights)
    if len(w) != 5:
        raise ValueError(f"--loss-weights needs 5 values (w1..w5), got {len(w)}")
    loss = FusionLoss(w_adv=w[0], w_content=w[1], w_style=w[2], w_recon=w[3], w_tv=w[4], gp_weight=args.gp,
                      content_layers=tuple(args.content_layers.split(",")),
                      style_layers=tuple(args.style_layers.split(",")))
    from dfijax.vgg import layer_index

    for layer in loss.taps:
        layer_index(layer)
    return FusionConfig(size=args.size, width=args.width, n_chunks=args.chunks, d_norm=args.d_norm,
                        lambda_kind=args.lambda_kind, lambda_values=args.lambda_values, p_ends=args.p_ends,
                        loss=loss, clip=args.clip, n_critic=args.n_critic, lr=args.lr, b1=args.b1)


def load_dataset(args):
    from dfijax.data import DataError, celeba
    from dfijax.data.synthetic_faces import synthetic_faces

    if args.data == "synthetic":
        return synthetic_faces(args.n_synthetic if args.limit is None else min(args.limit, args.n_synthetic), args.seed)
    if not args.data_dir and args.data == "celeba":
        raise DataError("--data celeba needs --data-dir (the folder with list_attr_celeba.txt and img_align_celeba/)")
    if args.data == "celeba":
        return celeba.load_celeba_folder(args.data_dir, limit=args.limit)
    return celeba.load_celeba_tfds(args.data_dir, limit=args.limit)


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


def evaluate(cfg, eg, held: np.ndarray) -> dict:
    """Held-out reconstruction (inference-mode BatchNorm): L1 on [-1, 1] and PSNR on [0, 1]."""
    from dfijax.fusion import train as ft
    from dfijax.fusion.data import to_unit

    rec = np.asarray(ft.reconstruct(cfg, eg, held))
    mse = float(np.mean((to_unit(rec) - to_unit(held)) ** 2))
    return {"recon_l1": float(np.mean(np.abs(rec - held))), "recon_psnr_db": float(10 * np.log10(1 / max(mse, 1e-12)))}


def main(argv=None) -> int:
    args = parse(argv)
    from dfijax import images as im
    from dfijax import training
    from dfijax.data import DataError
    from dfijax.fusion import train as ft
    from dfijax.fusion.data import Batches, Prefetched

    device = common.setup()
    n_dev = jax.local_device_count()
    if args.batch is None:
        args.batch = max(n_dev, 100 - 100 % n_dev) if jax.default_backend() != "cpu" else max(16, n_dev)
    try:
        cfg = build_config(args)
        if args.batch < 2 or args.batch % n_dev:
            raise ValueError(f"--batch must be at least 2 and a multiple of the {n_dev} local devices, "
                             f"got {args.batch}")
        if args.stage1_steps < 0 or args.stage2_steps < 0 or args.stage1_steps + args.stage2_steps == 0:
            raise ValueError("--stage1-steps and --stage2-steps must be >= 0, and not both 0")
        data = load_dataset(args)
        if len(data) < args.batch + HELD_OUT:
            raise ValueError(f"{data.describe()}: need at least batch + {HELD_OUT} held-out images")
        held_idx = np.arange(len(data) - HELD_OUT, len(data))
        batches = Batches(data, cfg.size, args.batch, args.seed, indices=np.arange(len(data) - HELD_OUT))
        held = np.stack([batches.image(int(i)) for i in held_idx])
        weights = common.load_weights(args.weights, args.seed)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e))

    out = pathlib.Path(args.out).absolute()
    (out / "samples").mkdir(parents=True, exist_ok=True)
    total = args.stage1_steps + args.stage2_steps
    print(f"device: {device}; {data.describe()}; {cfg.size}px, width {cfg.width}, latent {cfg.latent_shape} in "
          f"chunks {cfg.chunks}; batch {args.batch} over {n_dev} device(s); stage 1: {args.stage1_steps} steps, "
          f"stage 2: {args.stage2_steps} steps; output {out}", file=sys.stderr)
    pair = held[:2]
    log = training.MetricsLog(out / "metrics.jsonl")
    keys = ("l1", "recon", "adv", "wdist", "content", "style", "tv")
    t0 = time.perf_counter()
    loader = Prefetched(batches)

    def callback(step, state, rec):
        bar.update(step - bar.n)
        if rec:
            bar.set_postfix({k: f"{rec[k]:.3g}" for k in ("l1", "wdist", "loss") if k in rec})
        if step % args.sample_every == 0 or step in (args.stage1_steps, total):
            im.save_image(out / "samples" / f"step_{step:06d}.png", sample_grid(cfg, state.eg, pair))
            common.plot_losses(out / "loss.png", log.records(), keys=keys)

    try:
        with tqdm(total=total, desc="train", unit="step", file=sys.stderr) as bar:
            state, start = ft.train(cfg, loader, weights.variables, args.stage1_steps, args.stage2_steps, out,
                                    seed=args.seed, save_every=args.save_every, keep=args.keep,
                                    log_every=args.log_every, callback=callback)
    except ft.CheckpointMismatch as e:
        return common.fail(f"{e}; use another --out or the settings it was trained with")
    finally:
        loader.close()
    dt = time.perf_counter() - t0
    if start:
        print(f"resumed from step {start}", file=sys.stderr)
    records = log.records()
    common.plot_losses(out / "loss.png", records, keys=keys)
    im.save_image(out / "samples.png", sample_grid(cfg, state.eg, pair))
    quality = evaluate(cfg, state.eg, held)
    last = {s: next((r for r in reversed(records) if r.get("stage") == s), None) for s in (1, 2)}
    info = {"settings": vars(args), "config": cfg.to_dict(), "device": device, "devices": n_dev,
            "data": data.describe(), "weights": weights.description, "weights_pretrained": weights.pretrained,
            "resumed_from": start, "seconds": dt, "steps_run": total - start,
            "final_stage1": last[1], "final_stage2": last[2], "held_out": quality}
    common.write_json(out / "train_info.json", info)
    if not weights.pretrained:
        print("note: the VGG-19 is random (NOT pretrained): content/style losses use random features", file=sys.stderr)
    print(f"trained to step {total} in {dt:.0f} s; held-out reconstruction L1 {quality['recon_l1']:.4f} "
          f"(on [-1, 1]), PSNR {quality['recon_psnr_db']:.2f} dB; wrote {out / 'loss.png'}, {out / 'samples.png'}, "
          f"{out / 'train_info.json'}; checkpoints in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
