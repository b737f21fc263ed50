"""chainer-dfi's residual corrections, a registered part each (`RESIDUALS`, chosen by SweepConfig.residual
and residual_mode): how the solve runs and how its result is finished (colour match included, since
the order differs). "none": the edits, colour-matched; "single": the α = 0 reconstruction solved in the
same call and subtracted before the colour match; "nearest": train.py's snapshots of the unedited
reconstruction, the nearest subtracted after the colour match."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dfijax import mesh
from dfijax.dfi import chainer, postprocess
from dfijax.dfi.finish import match_colors, nearest_residual_correction
from dfijax.dfi.solve import initial_images, solve_alphas
from dfijax.dfi.sweep_config import SweepConfig


@dataclasses.dataclass(frozen=True)
class Residual:
    """solve(config, loss, variables, x, w, progress, **solve_alphas' keywords) -> (edits [B, A, H, W, 3], final
    losses [B, A], state);
    finish(config, edits, x, state) -> the finished edits."""

    solve: Callable[..., tuple[np.ndarray, np.ndarray, Any]]
    finish: Callable[[SweepConfig, Any, jax.Array, Any], Any]


def _plain_solve(config, loss, variables, x, w, progress, **solve):
    return (*solve_alphas(config, loss, variables, x, w, list(config.alphas), progress, **solve), None)


def _single_solve(config, loss, variables, x, w, progress, **solve):
    edited, final = solve_alphas(config, loss, variables, x, w, [0.0, *config.alphas], progress, **solve)
    return edited[:, 1:], final[:, 1:], edited[:, :1]


def _nearest_solve(config, loss, variables, x, w, progress, **solve):
    edited, final, _ = _plain_solve(config, loss, variables, x, w, progress, **solve)
    snaps = chainer.reconstruction_snapshots(
        loss,
        variables,
        x,
        initial_images(config, x),
        config.solve.solver(config.finish.residual_iters),
        config.finish.residual_every,
        shard=config.solve.shard and mesh.local_device_count() > 1,
        progress=lambda k: progress("residual", k, config.finish.residual_iters, {}),
    )
    return edited, final, snaps


RESIDUALS: dict[str, Residual] = {
    "none": Residual(_plain_solve, lambda c, e, x, s: match_colors(c, e, x)),
    "single": Residual(
        _single_solve, lambda c, e, x, s: match_colors(c, postprocess.subtract_residual(e, s, x[:, None]), x)
    ),
    "nearest": Residual(_nearest_solve, lambda c, e, x, s: nearest_residual_correction(c, match_colors(c, e, x), s, x)),
}


def residual(config: SweepConfig) -> Residual:
    """The residual part config chooses."""
    return RESIDUALS[config.finish.residual_mode if config.finish.residual else "none"]
