"""The post-processing of edited images, a registered part each, chosen by SweepConfig fields: the colour
match (`COLOR_MATCH`, color_match), the residual correction (`RESIDUALS`, residual_mode) and the output
format (`OUTPUTS`, output). Edits are [B, A, H, W, 3] of inputs x [B, H, W, 3]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dfijax.dfi import chainer, postprocess
from dfijax.dfi.sweep_config import SweepConfig


def nearest_residual_correction(config: SweepConfig, edited: Any, snapshots: np.ndarray, x: Any) -> np.ndarray:
    """train.py's correction: colour-matched edits [B, A, H, W, 3] minus, each, the nearest of the
    colour-matched reconstruction snapshots [S, B, H, W, 3] less the input x [B, H, W, 3]."""
    x = jnp.asarray(x, jnp.float32)
    snaps = jnp.asarray(np.swapaxes(np.asarray(snapshots, np.float32), 0, 1))  # [B, S, H, W, 3]
    residuals = np.asarray(match_colors(config, snaps, x)) - np.asarray(x)[:, None]
    edited = np.asarray(edited, np.float32)
    return np.stack([chainer.subtract_nearest_residual(edited[r], x[r], residuals[r]) for r in range(len(x))])


def diff8_images(edited: Any, x: Any) -> np.ndarray:
    """chainer-dfi's output for edits [B, A, H, W, 3] of inputs x [B, H, W, 3]: each 8-bit difference
    added to the 8-bit input (`chainer.diff8_output`), back in [0, 1]."""
    x8, xs, edited = chainer.to_uint8(x), np.asarray(x, np.float32), np.asarray(edited, np.float32)
    out = [[chainer.diff8_output(x8[r], (z - xs[r]) * 255.0) for z in edited[r]] for r in range(len(xs))]
    return np.asarray(out, np.float32) / np.float32(255.0)


def _channel(config: SweepConfig, edited: jax.Array, x: jax.Array) -> jax.Array:
    match = lambda z, r: postprocess.match_color(z, r, eps=config.finish.color_eps)
    return jax.vmap(lambda e, r: jax.vmap(lambda z: match(z, r))(e))(edited, x)


# colour match of edits [B, A, H, W, 3] to each row's input [B, H, W, 3], by SweepConfig.color_match
COLOR_MATCH: dict[str, Callable[[SweepConfig, Any, Any], Any]] = {
    "none": lambda config, edited, x: edited,
    "global": lambda config, edited, x: jax.vmap(postprocess.match_color_global)(edited, x),
    "channel": _channel,
}


def match_colors(config: SweepConfig, edited: jax.Array, x: jax.Array) -> jax.Array:
    """config's colour match (`COLOR_MATCH`) of edited [B, A, H, W, 3] to each row's input x [B, H, W, 3]."""
    return COLOR_MATCH[config.finish.color_match](config, edited, x)


# the output format of edits [B, A, H, W, 3] of inputs [B, H, W, 3], by SweepConfig.output
OUTPUTS: dict[str, Callable[[Any, Any], Any]] = {"image": lambda edited, x: edited, "diff8": diff8_images}
