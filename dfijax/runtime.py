"""Process-level settings the experiments share: the compilation cache, the device summary, where
outputs and caches go."""

from __future__ import annotations

import datetime
import os
import pathlib

import jax

from dfijax import mesh


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
    devs = mesh.devices()
    return f"{len(devs)} x {devs[0].platform} ({getattr(devs[0], 'device_kind', '?')})"


def check_out(base: str | os.PathLike | None) -> None:
    """Raise ValueError (one line naming --out) when the output folder cannot be a folder: the path, or
    a folder above it, is an existing file. None (the default folder) passes. Cheap: call it first."""
    if base is None:
        return
    path = pathlib.Path(base)
    for p in (path, *path.parents):
        if p.exists():
            if p.is_dir():
                return
            where = f"--out {base} is a file" if p == path else f"--out {base}: {p} is a file, not a folder"
            raise ValueError(f"{where}; give a folder")


def out_dir(base: str | None, name: str) -> pathlib.Path:
    check_out(base)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = pathlib.Path(base) if base else pathlib.Path("runs") / name / stamp
    path = path.absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(kind: str) -> pathlib.Path:
    """~/.cache/dfijax/<kind> (or $DFIJAX_CACHE/<kind>)."""
    base = pathlib.Path(os.environ.get("DFIJAX_CACHE", pathlib.Path.home() / ".cache" / "dfijax")).expanduser()
    return (base / kind).absolute()


def cache_root() -> pathlib.Path:
    """~/.cache/dfijax (or $DFIJAX_CACHE): the root library pipelines keep their caches under."""
    return cache_dir("")
