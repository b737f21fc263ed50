"""The references' DFI settings as named presets of `SweepConfig` fields.

- "official": Upchurch et al.'s code (paulu/deepfeatinterp, demo1.py / deepmodels.py): beta scaling
  w/mean(w²); ½‖φ(z) − t‖² over relu3_1/4_1/5_1; TV^β, λ = 1e-3, β = 2 on 0-255 values; pixel box
  during the solve; 500 iterations, later alphas warm-started from the previous result with half;
  K = 100 same-gender neighbours ranked by Hamming distance over binarised attributes (LFW too);
  global mean/std colour match to the input.
- "chainer": dsanno/chainer-dfi (train.py, train_lfw.py): per-layer ‖φ_l(x)‖·w_l/‖w_l‖; per-layer mean
  squared error; TV weight 100 on (ΣΔ²)/(H·W·C) of 0-255 values; L-BFGS without line search, history
  5, 1000 iterations from uniform noise; K = 100 neighbours ranked by L2 over all attributes with the
  input itself allowed (train_lfw ranks the whole table, the input included); per-channel colour match
  and subtraction of the reconstruction residual.
- "dfijax": this project's default: the chainer scaling, ½‖·‖², TV^β auto-scaled to the weights, no
  box, every alpha in one parallel call (fast, and usable on the random net as on pretrained weights).

The weights are not part of a preset: the official code uses Gatys' normalised VGG-19 (`fetch_vgg19.py
gatys`), chainer-dfi the original Caffe VGG-19 (`fetch_vgg19.py keras`, the same weights).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dfijax.dfi.sweep import SweepConfig

TAPS = ("relu3_1", "relu4_1", "relu5_1")

PRESETS: dict[str, dict[str, Any]] = {
    "dfijax": {},
    "official": dict(
        size=200,
        scaling="beta",
        reduction="sum",
        taps=TAPS,
        tv=1e-3,
        tv_form="beta",
        bounds="project",
        history=10,
        iters=500,
        init="input",
        alpha_mode="warm",
        k=100,
        same_gender=True,
        metric="hamming",
        rank="all",
        include_input=False,
        color_match="global",
        residual=False,
    ),
    "chainer": dict(
        size=200,
        scaling="chainer",
        reduction="mean",
        taps=TAPS,
        tv=100.0,
        tv_form="per-pixel",
        bounds="none",
        history=5,
        iters=1000,
        init="noise",
        alpha_mode="parallel",
        k=100,
        same_gender=False,
        metric="l2",
        rank="all",
        include_input=True,
        color_match="channel",
        residual=True,
    ),
}


def preset(name: str, **overrides: Any) -> SweepConfig:
    """The named preset's SweepConfig, with any field overridden (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(SweepConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValueError(f"unknown sweep settings {bad}")
    return SweepConfig(**{**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}})


def from_dict(d: Mapping[str, Any]) -> SweepConfig:
    """A SweepConfig from its saved JSON form (tuples come back as lists)."""
    fields = {f.name for f in dataclasses.fields(SweepConfig)}
    bad = sorted(set(d) - fields)
    if bad:
        raise ValueError(f"unknown sweep settings {bad} in the saved config")
    return SweepConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
