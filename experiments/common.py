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


_COLOURS = [(30, 90, 200), (200, 60, 40), (40, 150, 60), (150, 60, 170), (220, 140, 20), (20, 160, 170)]


def plot_losses(path: str | os.PathLike, records: list[dict[str, Any]], keys: tuple[str, ...] = ("loss",),
                log: bool = True) -> None:
    """Loss curves (one per key in `records`, x = record["step"]) drawn with PIL into a PNG."""
    from PIL import Image, ImageDraw
    import numpy as np

    w, h, pad = 560, 280, 34
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    series = []
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if k in r and r[k] is not None and np.isfinite(r[k])]
        if len(pts) >= 2:
            xs, ys = np.array(pts, float).T
            series.append((k, xs, np.log10(np.maximum(np.abs(ys), 1e-30)) if log else ys))
    if series:
        x_all = np.concatenate([s[1] for s in series])
        y_all = np.concatenate([s[2] for s in series])
        for i, (k, xs, ys) in enumerate(series):
            sx = (xs - x_all.min()) / max(np.ptp(x_all), 1) * (w - 2 * pad) + pad
            sy = h - pad - (ys - y_all.min()) / max(np.ptp(y_all), 1e-12) * (h - 2 * pad)
            c = _COLOURS[i % len(_COLOURS)]
            d.line(list(zip(sx, sy)), fill=c, width=2)
            d.text((pad + 110 * i, h - 14), k, fill=c)
        scale = "log10 |value|" if log else "value"
        d.text((pad, 5), f"{scale}: {y_all.max():.3g} .. {y_all.min():.3g}", fill="black")
        d.text((w - pad - 120, 5), f"step {int(x_all.min())} .. {int(x_all.max())}", fill="black")
    d.rectangle([pad, pad, w - pad, h - pad], outline="gray")
    im.save(path)


def cache_root() -> pathlib.Path:
    """~/.cache/dfijax (or $DFIJAX_CACHE): the root library pipelines keep their caches under."""
    return cache_dir("")


class Bars:
    """tqdm bars for a library pipeline's progress(stage, done, total, info) callback: one bar per
    stage, opened when the stage first reports, closed on exit."""

    _DESC = {"features": ("neighbour features", "img"), "solve": ("L-BFGS", "it"), "probe": ("attribute probe", "step")}

    def __init__(self):
        self.bars = {}

    def update(self, stage: str, done: int, total: int, info: dict) -> None:
        from tqdm import tqdm

        if stage not in self.bars:
            desc, unit = self._DESC.get(stage, (stage, "it"))
            self.bars[stage] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
        bar = self.bars[stage]
        bar.update(done - bar.n)
        if "loss" in info:
            bar.set_postfix(loss=f"{info['loss']:.4g}")

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, *exc) -> None:
        for bar in self.bars.values():
            bar.close()
