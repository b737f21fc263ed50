"""Progress bars (tqdm, on stderr) for the library pipelines' progress(stage, done, total, info)
callbacks: a script or a notebook passes `Bars().update`; the pipelines themselves print nothing."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Bars:
    """tqdm bars for a library pipeline's progress(stage, done, total, info) callback: one bar per
    stage, opened when the stage first reports, closed on exit."""

    _DESC = {"features": ("neighbour features", "img"), "solve": ("L-BFGS", "it"), "probe": ("attribute probe", "step")}

    def __init__(self):
        self.bars = {}

    def update(self, stage: str, done: int, total: int, info: dict) -> None:

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
