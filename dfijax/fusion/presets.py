"""Named training settings for the fusion GAN: one flat mapping of `TrainingConfig` fields per preset
(`dfijax.fusion.pipeline`; the command line's options with '-' for '_'); a flag given on the command
line overrides its preset value, and the resolved mapping is saved with the run.

- "cpu_small" (the default): 32 px, width 16 (latent 4×4×64), batch 16, 2,000 autoencoder + 60 GAN
  steps; a critic with LayerNorm trained by Adam with the WGAN-GP gradient penalty (weight 10), and
  the Λ-weighted perceptual losses. It is the default because it works on any device and at small
  batches: the gradient penalty keeps the critic 1-Lipschitz without a clip value to tune (with
  clipping, too small a c makes the critic's gradients vanish, too large a c makes it slow to
  converge, and the right c depends on the width and the image size); LayerNorm normalises each image
  on its own, so the critic's score and its input gradient (what the penalty constrains) do not
  depend on the other images of a batch of 16, which BatchNorm's batch statistics would make noisy;
  and Adam with one critic step per (E, G) step trains in minutes on a CPU, where WGAN's RMSProp at
  5e-5 with five critic steps needs many more steps to move.
- "paper_gp": the paper's sizes and schedule (128 px, width 64, latent 4×4×1024 in chunks of 204×4 +
  208, batch 100, Adam 1e-3, w1…w5 = 1, 1e-6, 5e-5, 30, 1) with the default's critic and losses
  (pixel losses as per-pixel means, `pixel_reduction` "mean", like cpu_small: see
  `dfijax.fusion.losses`).
- "paper": Takagi & Okadome as written, with the original WGAN where the paper cites it: the critic
  of Table 1 with BatchNorm, weight clipping c = 0.01 and RMSProp at 5e-5 with 5 critic steps per
  (E, G) step (Arjovsky et al. 2017, Algorithm 1; the paper only says "Adam, lr 0.001" for all
  networks, which WGAN reports unstable with clipping: `--d-optimizer adam --d-lr 1e-3` gives the
  literal text), no gradient penalty, the perceptual losses split on λ_n ∈ {0, 1} as in eqs. (4),
  (5), the pixel losses (L1 of eqs. 7 and 10, TV of eqs. 8, 9) summed over the pixels as the
  equations print them, with the printed w4 = 30, w5 = 1, Adam β1 = 0.9 (the usual default; the paper
  gives no β), and CelebA's test partition held out. The paper's own split (200,000 training and 2,599
  test images, i.e. files 200001–202599) is `--holdout paper-count`; CelebA's list_eval_partition.txt
  has 162,770 train, 19,867 validation and 19,962 test images (`--holdout celeba-test`); the paper's
  2,599 lie inside CelebA's test partition.

- "tiny": cpu_small's objective at the tests' scale (width 8, batch 8, one content and one style layer
  near the input, 1 + 3 steps): seconds on a CPU.

Hold-out choices: "last" (the last `HELD_OUT_LAST` images of any dataset), "celeba-test",
"paper-count" (see `dfijax.fusion.data.holdout_split`).
"""

from __future__ import annotations

from typing import Any, Mapping

HOLDOUTS = ("last", "celeba-test", "paper-count")

_COMMON: dict[str, Any] = {
    "lr": 1e-3,
    "loss_weights": (1.0, 1e-6, 5e-5, 30.0, 1.0),
    "content_layers": ("conv4_1", "conv5_1"),
    "style_layers": ("conv1_1", "conv2_1", "conv3_1"),
    "lambda_kind": "chunk",
    "lambda_values": "binary",
    "p_ends": 0.2,
    "chunks": 5,
    "pixel_reduction": "mean",
}
_GP: dict[str, Any] = {
    "d_norm": "layer",
    "gp": 10.0,
    "clip": None,
    "n_critic": 1,
    "d_optimizer": "adam",
    "d_lr": None,
    "b1": 0.5,
    "perceptual": "mean",
}
_PAPER_SIZE: dict[str, Any] = {
    "size": 128,
    "width": 64,
    "batch": 100,
    "stage1_steps": 5000,
    "stage2_steps": 30000,
    "save_every": 1000,
    "log_every": 50,
    "sample_every": 1000,
}

PRESETS: dict[str, dict[str, Any]] = {
    "cpu_small": {
        **_COMMON,
        **_GP,
        "size": 32,
        "width": 16,
        "batch": 16,
        "stage1_steps": 2000,
        "stage2_steps": 60,
        "save_every": 500,
        "log_every": 10,
        "sample_every": 250,
        "holdout": "last",
    },
    "paper_gp": {**_COMMON, **_GP, **_PAPER_SIZE, "holdout": "last"},
    "tiny": {
        **_COMMON,
        **_GP,
        "content_layers": ("conv2_1",),
        "style_layers": ("conv1_1",),
        "size": 32,
        "width": 8,
        "batch": 8,
        "stage1_steps": 1,
        "stage2_steps": 3,
        "save_every": 2,
        "log_every": 1,
        "sample_every": 2,
        "holdout": "last",
    },
    "paper": {
        **_COMMON,
        **_PAPER_SIZE,
        "d_norm": "batch",
        "gp": 0.0,
        "clip": 0.01,
        "n_critic": 5,
        "d_optimizer": "rmsprop",
        "d_lr": 5e-5,
        "b1": 0.9,
        "perceptual": "paper",
        "pixel_reduction": "sum",
        "holdout": "celeba-test",
    },
}
DEFAULT = "cpu_small"


def resolve(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The preset `name` with every non-None value of `overrides` put over it (a flat dict)."""
    if name not in PRESETS:
        raise ValueError(f"unknown fusion preset {name!r}; choose one of {sorted(PRESETS)}")
    unknown = sorted(k for k in overrides if k not in PRESETS[name])
    if unknown:
        raise ValueError(f"no preset setting named {unknown[0]!r}; the settings are {sorted(PRESETS[name])}")
    return {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
