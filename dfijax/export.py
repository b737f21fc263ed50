"""Portable compiled entry points: export a jitted function for CPU, CUDA and TPU from any machine,
and check that nothing CPU-only (host callbacks, CPU library calls, float64) is inside.

    exp = export_portable(jitted_fn, *example_args)       # arrays or jax.ShapeDtypeStruct; nothing runs
    assert not portability_problems(exp)
    blob = exp.serialize()                                 # deserialize with jax.export.deserialize(blob)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

PLATFORMS = ("cpu", "cuda", "tpu")

# custom calls every platform lowers (sharding annotations); anything else is platform code
PORTABLE_CUSTOM_CALLS = frozenset(
    {"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape", "annotate_device_placement", "shape_assertion"}
)

_CUSTOM_CALL = re.compile(r"custom_call\s*@([\w.$-]+)|call_target_name\s*=\s*\"([^\"]+)\"")
_F64 = re.compile(r"\bf64\b|xf64\b|<f64>|complex<f64>")


def specs(tree: Any) -> Any:
    """Arrays (anything with shape and dtype) -> jax.ShapeDtypeStruct leaves, same tree; typed PRNG keys
    keep their key dtype; other leaves (static arguments) pass through."""

    def one(x):
        if isinstance(x, jax.ShapeDtypeStruct) or not (hasattr(x, "shape") and hasattr(x, "dtype")):
            return x
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype)

    return jax.tree.map(one, tree)


def export_portable(fun_jit: Any, *args: Any, platforms: Sequence[str] = PLATFORMS) -> jax.export.Exported:
    """jax.export of a jax.jit-wrapped function for all `platforms` at the shapes of args (arrays or
    ShapeDtypeStructs; lowering only, nothing is computed). Raises what jax.export raises when an op has
    no lowering for one of the platforms or calls a custom target that is not guaranteed stable, as one
    line: ValueError("cannot export for (platforms): …")."""
    try:
        return jax.export.export(fun_jit, platforms=tuple(platforms))(*specs(args))
    except Exception as e:  # JAX raises many types here (a host callback has no multi-platform lowering)
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"cannot export for {tuple(platforms)}: {type(e).__name__}: {first}") from None


def custom_call_targets(exported: jax.export.Exported) -> set[str]:
    """Names of the custom calls in the exported module."""
    return {a or b for a, b in _CUSTOM_CALL.findall(exported.mlir_module())}


def portability_problems(exported: jax.export.Exported, platforms: Sequence[str] = PLATFORMS) -> list[str]:
    """Why the module would not run the same everywhere: [] when it is portable. Checks the platforms it
    was exported for, host callbacks, custom calls outside the sharding annotations, and float64."""
    text = exported.mlir_module()
    problems = []
    if tuple(exported.platforms) != tuple(platforms):
        problems.append(f"exported for {exported.platforms}, not {tuple(platforms)}")
    if "callback" in text:
        problems.append("the module calls back to the host (jax.debug / pure_callback / io_callback)")
    other = sorted(custom_call_targets(exported) - PORTABLE_CUSTOM_CALLS)
    if other:
        problems.append(f"platform custom calls {other}")
    if _F64.search(text):
        problems.append("float64 values in the module (an np.float64 constant or jax_enable_x64?)")
    return problems
