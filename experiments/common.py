"""What every experiment's main shares: output folder, weights notice, JSON, progress."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import sys
from typing import Any

import dfijax  # noqa: F401  (filters jaxopt's import warning)
from dfijax import runtime
from dfijax.weights import VGGWeights, load_vgg19


def out_dir(base: str | None, name: str) -> pathlib.Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = pathlib.Path(base) if base else pathlib.Path("runs") / name / stamp
    path = path.absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_weights(path: str | None, seed: int = 0) -> VGGWeights:
    """Load weights and say plainly what they are (a random net is announced, never hidden)."""
    w = load_vgg19(path, seed=seed)
    note = "" if w.pretrained else "  <-- NOTICE: results show what the method does, not what trained features give"
    print(f"weights: {w.description}{note}", file=sys.stderr)
    return w


def write_json(path: pathlib.Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def setup() -> str:
    """Persistent compilation cache on; returns a device summary."""
    runtime.enable_compilation_cache()
    return runtime.device_summary()


def fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def cache_dir(kind: str) -> pathlib.Path:
    """~/.cache/dfijax/<kind> (or $DFIJAX_CACHE/<kind>)."""
    base = pathlib.Path(os.environ.get("DFIJAX_CACHE", pathlib.Path.home() / ".cache" / "dfijax")).expanduser()
    return (base / kind).absolute()
