"""The references' DFI settings as named `SweepConfig` instances, written out group by group.

- "official": paulu/deepfeatinterp, the caffe+scipy backend as demo1.py calls it (deepmodels.py,
  deepart.py, totalvariation.py, utils.py): beta scaling w/mean(w²) over the concatenated taps;
  Σ_l ½‖φ_l(z) − t_l‖² ÷ 3 over relu3_1/4_1/5_1 (one target holding the three blobs, each divided by
  len(target_blob_names)) of a VGG-19 whose pools round up as Caffe's do; tv_norm TV^β with its 1e-3
  floor, λ = 1e-3, β = 2 on 0-255 values; scipy's L-BFGS-B itself (maxcor 10, factr 1e7, its Wolfe
  search, one problem at a time on the 0-255 scale, so its first step is the reference's) on the
  (−128, 162) box of the Caffe input, results clipped to [0, 1]; α = 0.4; 500 iterations, later alphas
  warm-started from the previous clipped result with half; K = 100 neighbours by the official rule
  (LFW: make_manifolds on binarised scores; CelebA: celeba_attributes.select with the input's gender
  and smile held, as demo2 holds them); one global mean/std colour match to the input.
  `--optimizer engine` solves every problem in one batched call instead (see docs/dfi.md for how far
  its iterates are from scipy's).
- "chainer": dsanno/chainer-dfi (train.py, train_lfw.py, net.py): its VGG-19 pools rounding up
  (cover_all) on BGR 0-255 minus (104, 117, 124); per-layer ‖φ_l(x)‖·w_l/‖w_l‖; per-layer mean
  squared error; TV weight 100 on (ΣΔ²)/(H·W·C) of 0-255 values; L-BFGS without line search, history
  5, 1000 iterations from uniform noise; neighbours by its rules (dfi.chainer: CelebA's include/exclude
  filter ranked by pixel distance to the input, LFW's ±0.5 thresholds ranked by L2 over all attributes;
  up to K = 100, the input itself allowed, fewer accepted) on its crops with PIL bilinear resize;
  per-channel colour adjustment without epsilon, then the nearest of 30 residual snapshots (600
  iterations, every 20) subtracted; the 8-bit difference added to the input.
- "tiny": the dfijax objective at the smallest useful scale (32 px, 6 iterations, K = 10, two
  alphas, no probe): what the tests run, seconds on a CPU.
- "dfijax": this project's default: the chainer scaling, ½‖·‖², TV^β auto-scaled to the weights, no
  box, every alpha in one parallel call (fast, and usable on the random net as on pretrained weights).

The weights are not part of a preset: the official code uses Gatys' normalised VGG-19 (`fetch_vgg19.py
gatys`), chainer-dfi the original Caffe VGG-19 (`fetch_vgg19.py keras`, the same weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dfijax import config
from dfijax.dfi.sweep_config import Finish, Neighbours, Objective, Probe, Solve, SweepConfig

TAPS = ("relu3_1", "relu4_1", "relu5_1")
# scipy L-BFGS-B's default stop: factr 1e7 times the float64 machine epsilon
SCIPY_FTOL = 1e7 * 2.220446049250313e-16

PRESETS: dict[str, SweepConfig] = config.registry(
    config.Preset("dfijax", SweepConfig(), "this project's default (the SweepConfig defaults)"),
    config.Preset(
        "tiny",
        SweepConfig(
            size=32, alphas=(0.2, 0.6), batch=8, neighbours=Neighbours(k=10), solve=Solve(iters=6), probe=Probe(False)
        ),
        "the dfijax objective at the smallest useful scale: what the tests run",
    ),
    config.Preset(
        "official",
        SweepConfig(
            size=200,  # demo1.py:L64, L102-105 (short side >= 200)
            alphas=(0.4,),  # demo1.py:L58
            neighbours=Neighbours(
                rule="official",  # demo1.py:L19-47, deepmodels.py:L263-269
                k=100,  # demo1.py:L54
                same_gender=True,  # demo2.py:L103-112 holds the input's gender (LFW: demo1's attribute gender, L26)
                hold=("Smiling",),  # demo2.py:L103-112 holds the input's smile too (an edit of it is not held)
                include_input=False,  # demo1.py:L42, L45
            ),
            objective=Objective(
                scaling="beta",  # demo1.py:L55, L117-118
                reduction="sum/taps",  # deepmodels.py:L111-121, deepart.py:L56, L169-170
                taps=TAPS,  # deepmodels.py:L202 (conv*_1 blobs, ReLU in place)
                pool_rounding="ceil",  # Caffe pooling_layer.cpp: pooled = ceil((H + 2·pad − k)/stride) + 1
                tv_weight=1e-3,  # deepmodels.py:L204
                tv_form="tv-norm",  # deepart.py:L175-177, totalvariation.py:L23-40
            ),
            solve=Solve(
                bounds="lbfgsb",  # deepmodels.py:L130, L134
                box="caffe",  # deepmodels.py:L105, L134
                optimizer="scipy",  # deepmodels.py:L130-134 scipy.optimize.minimize(method='L-BFGS-B')
                ftol=SCIPY_FTOL,  # scipy's default factr, deepmodels.py:L131 sets only maxiter
                history=10,  # scipy's maxcor default
                iters=500,  # demo1.py:L56
                init="input",  # demo1.py:L122
                alpha_mode="warm",  # demo1.py:L124-132
            ),
            finish=Finish(color_match="global", residual=False),  # demo1.py:L57, L135-136, utils.py:L45-61
        ),
        "paulu/deepfeatinterp, the caffe+scipy backend as demo1.py calls it",
    ),
    config.Preset(
        "demo2",
        SweepConfig(
            own_photos="full",  # demo2.py:L91-96: the photo at its own resolution, short side >= 200
            size=200,  # the database faces' working size (their template's 160 px crop, see dfi.full_photo)
            alphas=(3.5,),  # demo2.py:L53 --delta 3.5
            neighbours=Neighbours(
                rule="official",  # demo2.py:L113-114 classifier.select (celeba_attributes.select)
                k=100,  # demo2.py:L49 --K; 4K candidates re-ranked by landmark fit (L115-127)
                same_gender=True,  # demo2.py:L102-112 gender held at the input's
                hold=("Smiling",),  # and the smile
            ),
            objective=Objective(
                scaling="none",  # demo2.py:L50 --scaling none (L130-133)
                reduction="sum/taps",  # the official objective (deepmodels.py), as in "official"
                taps=TAPS,
                pool_rounding="ceil",
                tv_weight=1e-3,
                tv_form="tv-norm",
            ),
            solve=Solve(
                bounds="lbfgsb",
                box="caffe",
                iters=500,  # demo2.py:L51 --iter
                init="input",  # demo2.py:L135 init=original
                alpha_mode="warm",  # demo2.py:L141-149: later deltas from the previous result, iter//2
            ),
            finish=Finish(color_match="none"),  # demo2.py:L52 --postprocess mask (a mask file beside the photo)
        ),
        "paulu/deepfeatinterp demo2.py: own photos at full resolution, the database warped onto them",
    ),
    config.Preset(
        "chainer",
        SweepConfig(
            size=200,  # train.py:L15
            crop="chainer",
            neighbours=Neighbours(
                rule="chainer",
                k=100,
                same_gender=False,
                metric="l2",
                rank="all",
                include_input=True,
                allow_fewer=True,
            ),
            objective=Objective(
                pool_rounding="ceil",  # net.py:L58 F.max_pooling_2d(h, 2, stride=2), cover_all=True
                caffe_mean=(104.0, 117.0, 124.0),  # net.py:L8
                scaling="chainer",
                reduction="mean",
                taps=TAPS,
                tv_weight=100.0,
                tv_form="per-pixel",
            ),
            solve=Solve(bounds="none", history=5, iters=1000, init="noise", alpha_mode="parallel"),
            finish=Finish(
                color_match="channel",
                color_eps=0.0,
                residual=True,
                residual_mode="nearest",
                residual_iters=600,
                residual_every=20,
                output="diff8",
            ),
        ),
        "dsanno/chainer-dfi (train.py, train_lfw.py, net.py)",
    ),
)


def preset(name: str, **overrides: Any) -> SweepConfig:
    """The named preset's SweepConfig, with any field overridden (None values are ignored)."""
    return config.preset(SweepConfig, PRESETS, name, **overrides)


def from_dict(d: Mapping[str, Any]) -> SweepConfig:
    """A SweepConfig from its saved JSON form."""
    return config.from_dict(SweepConfig, d)
