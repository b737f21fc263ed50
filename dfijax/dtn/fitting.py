"""What the DTN's classifiers and its training share: the image check, one Adam object per setting,
and `training.fit` over a mesh of every device of every process.

Many processes: the state is replicated over the mesh (`training.global_mesh`), each global batch a
pure function of the step of which each process puts its own rows; every process of a job calls the
training functions with the same arguments.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np
import optax

from dfijax import training
from dfijax.dtn.model import SIZE


def check_images(x: np.ndarray, name: str, size: int = SIZE) -> None:
    """Raise ValueError unless x is [N, size, size, 3] float with values in [0, 1]."""
    shape = tuple(np.shape(x))
    if len(shape) != 4 or shape[1:] != (size, size, 3):
        raise ValueError(
            f"{name} images have shape {shape}; the DTN takes [N, {size}, {size}, 3] "
            f"(resize to {size}x{size} and repeat grey to RGB first)"
        )
    if shape[0] == 0:
        raise ValueError(f"{name} holds no images")
    lo, hi = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} images range over [{lo:.3g}, {hi:.3g}]; expected floats in [0, 1]")


@functools.lru_cache(maxsize=32)
def adam(lr: float, b1: float) -> optax.GradientTransformation:
    """One optimiser object per setting: it is static pytree data of the state, so a fresh one would
    make every jitted step trace and compile again."""
    return optax.adam(lr, b1=b1)


def fit_on_mesh(
    step: Callable[[Any, Any, jax.Array], tuple[Any, dict]],
    state: Any,
    batches: Callable[[int], Any],
    total: int,
    checkpointer: training.Checkpointer | None,
    *,
    rng: jax.Array,
    mesh: jax.sharding.Mesh | None = None,
    **fit_kw: Any,
) -> tuple[Any, list[dict[str, float]]]:
    """`training.fit` with the state replicated over the mesh (default: every device of every process)
    and batches(i) -> the global batch of step i (numpy, a pure function of i, the same on every
    process), of which each process puts its own rows. fit_kw: fit's keywords (log, log_every, hooks,
    milestones, progress). Returns fit's (state, records); the state stays replicated."""
    mesh = mesh or training.global_mesh()
    return training.fit(
        step,
        training.replicate(state, mesh),
        lambda i: training.put_global(batches(i), mesh),
        total,
        checkpointer,
        rng=rng,
        **fit_kw,
    )
