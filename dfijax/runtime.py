"""Process-level JAX settings the experiments share."""

from __future__ import annotations

import os
import pathlib

import jax


def enable_compilation_cache(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Turn on JAX's persistent compilation cache (default ~/.cache/dfijax/jax or $DFIJAX_JAX_CACHE), so
    a second run of the same experiment skips XLA compilation."""
    path = pathlib.Path(path or os.environ.get("DFIJAX_JAX_CACHE", pathlib.Path.home() / ".cache" / "dfijax" / "jax"))
    path = path.expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # $DFIJAX_JAX_CACHE_MIN_SECS: cache only compilations longer than this (default 1 s)
    min_secs = float(os.environ.get("DFIJAX_JAX_CACHE_MIN_SECS", 1.0))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_secs)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def device_summary() -> str:
    """e.g. '1 x cpu (TFRT_CPU_0)' or '8 x tpu (TPU v2)'."""
    devs = jax.devices()
    return f"{len(devs)} x {devs[0].platform} ({getattr(devs[0], 'device_kind', '?')})"
