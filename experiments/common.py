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
from dfijax.weights import VGGWeights, load_vgg


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


def out_error(base: str | os.PathLike | None) -> str | None:
    """check_out's message, or None when `base` can be the output folder."""
    try:
        check_out(base)
    except ValueError as e:
        return str(e)
    return None


def out_dir(base: str | None, name: str) -> pathlib.Path:
    check_out(base)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = pathlib.Path(base) if base else pathlib.Path("runs") / name / stamp
    path = path.absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_weights(path: str | None, seed: int = 0, depth: int | None = 19) -> VGGWeights:
    """Load weights and say plainly what they are (a random net is announced, never hidden).
    depth: the VGG the caller builds (None: whatever `path` holds; VGG-19 when no path)."""
    w = load_vgg(path, depth=depth, seed=seed)
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


def plot_losses(
    path: str | os.PathLike, records: list[dict[str, Any]], keys: tuple[str, ...] = ("loss",), log: bool = True
) -> None:
    """Loss curves (one per key in `records`, x = record["step"]): a matplotlib figure with axes and a
    legend. Values are plotted as |value| on a log axis when log is set."""
    import numpy as np

    from experiments import report

    series = {}
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if r.get(k) is not None and np.isfinite(r[k])]
        if len(pts) >= 2:
            xs, ys = np.array(pts, float).T
            series[k] = (xs, np.maximum(np.abs(ys), 1e-30) if log else ys)
    report.plot_curves(path, series, xlabel="step", ylabel="|value| (log scale)" if log else "value", log_y=log)


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


def apply_preset(args, presets: dict[str, dict[str, Any]], key: str = "preset"):
    """Fill every flag the user left unset (None) from the named preset (args.<key>); explicit flags win.
    Records which flags came from the preset in args.preset_filled."""
    filled = []
    for name, value in presets[getattr(args, key)].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
            filled.append(name)
    args.preset_filled = filled
    return args


def add_distributed_flags(p) -> None:
    """The multi-controller flags every multi-host experiment takes (see dfijax.distributed.initialize)."""
    p.add_argument("--coordinator", help="HOST:PORT of process 0 (multi-process runs without auto-detection)")
    p.add_argument("--num-processes", type=int, help="processes in the job")
    p.add_argument("--process-id", type=int, help="this process's id in [0, num-processes)")


def start_processes(args):
    """dfijax.distributed.initialize from the flags of add_distributed_flags: this process's
    ProcessInfo, or None after one `error:` line when the flags do not fit together."""
    from dfijax import distributed as dist

    try:
        return dist.initialize(args.coordinator, args.num_processes, args.process_id)
    except ValueError as e:
        fail(str(e))
        return None
