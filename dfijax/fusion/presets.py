"""A fusion run's settings (`TrainingConfig`, every setting declared once with its bounds and help; the
command line is made from it) and its named presets (`PRESETS`, TrainingConfig instances); a flag given
on the command line overrides its preset value, and the resolved settings are saved with the run.

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

import dataclasses
from typing import Annotated, Any, Literal

import tyro

from dfijax import config
from dfijax.fusion.train import FusionConfig

HOLDOUTS = ("last", "celeba-test", "paper-count")
PRESET_NAMES = ("cpu_small", "paper_gp", "tiny", "paper")  # PRESETS', below TrainingConfig
DEFAULT = "cpu_small"
_NOT_SETTINGS = ("preset", "seed", "keep", "overrides")
_short = "{:g}".format  # 1e-06, 30 in --help, not 1e-06, 30.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """A training run's settings (the defaults are cpu_small's), the seed and the checkpoints kept, and
    where they came from (the preset, and in `overrides` the names of the settings given over it).
    `fusion` holds the networks' and steps' settings (FusionConfig, its fields flags of their own
    names). `pipeline.training_config` gives a preset;
    `pipeline.for_devices` fits its batch to the devices."""

    preset: Literal[PRESET_NAMES] = DEFAULT
    """named settings (dfijax.fusion.presets); every flag given overrides the preset"""
    holdout: Literal[HOLDOUTS] = "last"
    """held-out images: last (the last 16), celeba-test (CelebA's test partition), paper-count (the
    paper's 2,599)"""
    fusion: Annotated[FusionConfig, config.FLAT] = FusionConfig(size=32, width=16)
    batch: Annotated[int, config.Bounds(ge=2)] = 16
    """global batch, split over all devices of all processes (not given: the preset's, rounded down to
    a multiple of the device count)"""
    stage1_steps: Annotated[int, config.NONNEG] = 2000
    """autoencoder pretraining steps"""
    stage2_steps: Annotated[int, config.NONNEG] = 60
    """steps of the full objective"""
    seed: int = 0
    """random seed (networks, Λ, batch order, synthetic faces)"""
    save_every: Annotated[int, config.POSITIVE] = 500
    """checkpoint every N steps"""
    keep: Annotated[int, config.POSITIVE] = 3
    """checkpoints kept"""
    log_every: Annotated[int, config.POSITIVE] = 10
    """log the losses every N steps"""
    sample_every: Annotated[int, config.POSITIVE] = 250
    """draw samples every N steps"""
    overrides: Annotated[tuple[str, ...], tyro.conf.Suppress] = ()

    def __post_init__(self):
        config.check(self)
        if self.stage1_steps + self.stage2_steps == 0:
            raise ValueError("stage1_steps + stage2_steps must be at least 1 (not both 0)")

    @property
    def total(self) -> int:
        return self.stage1_steps + self.stage2_steps

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting a preset chooses, as resolved, by its command-line name (all but preset, seed,
        keep, overrides)."""
        names = config.leaves(self)
        return {k: config.get(self, p) for k, p in names.items() if p[0] not in _NOT_SETTINGS}


_CPU_SMALL = TrainingConfig()
_GP = _CPU_SMALL.fusion


def _paper_size(preset: str, fusion: FusionConfig) -> TrainingConfig:
    """The paper's sizes and schedule (128 px, width 64, batch 100, 5,000 + 30,000 steps) over `fusion`."""
    sizes = dataclasses.replace(fusion, size=128, width=64)
    every = dict(save_every=1000, log_every=50, sample_every=1000)
    return TrainingConfig(preset=preset, fusion=sizes, batch=100, stage1_steps=5000, stage2_steps=30000, **every)


PRESETS: dict[str, TrainingConfig] = config.registry(
    config.Preset("cpu_small", _CPU_SMALL, "the default: WGAN-GP with a LayerNorm critic at 32 px, minutes on a CPU"),
    config.Preset(
        "paper_gp", _paper_size("paper_gp", _GP), "the paper's sizes and schedule with the default's critic and losses"
    ),
    config.Preset(
        "tiny",
        TrainingConfig(
            preset="tiny",
            fusion=dataclasses.replace(
                _GP, width=8, loss=dataclasses.replace(_GP.loss, content_layers=("conv2_1",), style_layers=("conv1_1",))
            ),
            batch=8,
            stage1_steps=1,
            stage2_steps=3,
            save_every=2,
            log_every=1,
            sample_every=2,
        ),
        "cpu_small's objective at the tests' scale: seconds on a CPU",
    ),
    config.Preset(
        "paper",
        dataclasses.replace(
            _paper_size(
                "paper",
                dataclasses.replace(
                    _GP,
                    d_norm="batch",
                    clip=0.01,
                    n_critic=5,
                    d_optimizer="rmsprop",
                    d_lr=5e-5,
                    b1=0.9,
                    perceptual="paper",
                    loss=dataclasses.replace(_GP.loss, gp_weight=0.0, pixel_reduction="sum"),
                ),
            ),
            holdout="celeba-test",
        ),
        "Takagi & Okadome as written, with the original WGAN where the paper cites it",
    ),
    names=PRESET_NAMES,
)
