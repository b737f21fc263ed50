"""Batched inference for any system: one jitted `module.apply` and a helper that feeds an array
through a function in fixed-size chunks (the last one padded, so every call has one shape and
compiles once)."""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import numpy as np


@functools.partial(jax.jit, static_argnums=(0,))
def apply(module: nn.Module, variables: Any, x: Any) -> Any:
    """`module.apply(variables, x)`, jitted once per module configuration (linen modules are hashable
    dataclasses, so equal configurations share one compilation)."""
    return module.apply(variables, x)


def apply_params(module: nn.Module, params: Any, x: Any) -> Any:
    """`module.apply({"params": params}, x)`, jitted (see `apply`)."""
    return apply(module, {"params": params}, x)


def map_batches(fn: Callable[[jax.Array], Any], x: np.ndarray | jax.Array, batch: int) -> Any:
    """fn over x's rows in chunks of `batch` -> fn's outputs for all N rows, concatenated as numpy.

    x: [N, ...]; fn: [batch, ...] -> a pytree of [batch, ...] arrays. The last chunk is padded with
    zeros to `batch` rows (and the padding dropped), so fn sees one shape. N = 0 calls fn once on a
    zero batch to learn the output shapes and returns [0, ...] arrays."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    x = np.asarray(x)
    n = len(x)
    outs = []
    for i in range(0, max(n, 1), batch):
        chunk = x[i : i + batch]
        k = len(chunk)
        if k < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - k,) + x.shape[1:], x.dtype)])
        outs.append(jax.tree.map(lambda a, k=k: np.asarray(a)[:k], fn(chunk)))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)
