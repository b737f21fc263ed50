"""Own photos into a sweep: loaded at full resolution, brought to the dataset's working crop (centre
crop, edge padding, or aligned by the eyes), given attributes by hand or by the attribute probe, and
the edits pasted back into the whole photo."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from dfijax import images as im
from dfijax.data import FaceDataset
from dfijax.dfi import align, solve, sweep_config, sweep_inputs


@dataclasses.dataclass(frozen=True)
class Photos:
    """paths; originals (full resolution, [H_i, W_i, 3] in [0, 1]); crops (sweep_inputs.PhotoCrops); inputs
    (sweep_inputs.SweepInputs); probs [N, A] the probe's probabilities (None when the attributes were given
    by hand); fit ("crop" or "pad", for the photos not aligned by eyes); attr_names."""

    paths: tuple[str, ...]
    originals: list[np.ndarray]
    crops: sweep_inputs.PhotoCrops
    inputs: sweep_inputs.SweepInputs
    probs: np.ndarray | None
    fit: str
    attr_names: tuple[str, ...]

    def notes(self) -> list[str]:
        """What was found about each photo, a line each: eyes used, predicted attributes and the
        neighbour search they give."""
        lines = []
        for k, path in enumerate(self.paths):
            e = self.crops.eyes[k]
            if not np.isnan(e).any():
                lines.append(f"{path}: eyes at ({e[0, 0]:.0f}, {e[0, 1]:.0f}) and ({e[1, 0]:.0f}, {e[1, 1]:.0f})")
            if self.probs is not None:
                p = ", ".join(f"{n} {q:.2f}" for n, q in zip(self.attr_names, self.probs[k]))
                q = ",".join(f"{n}={v:g}" for n, v in zip(self.attr_names, self.inputs.queries[k]) if np.isfinite(v))
                lines += [f"{path}: predicted attributes (probability): {p}", f"{path}: neighbour search with {q}"]
        return lines

    def records(self) -> list[dict[str, Any]]:
        """Per photo: path, size, eyes, the crop's matrix, fit, attributes used, the probe's probabilities."""
        names = self.attr_names
        return [
            {
                "path": p,
                "size": list(o.shape[:2]),
                "eyes": None if np.isnan(e).any() else e.tolist(),
                "matrix": m.tolist(),
                "fit": "eyes" if not np.isnan(e).any() else self.fit,
                "attributes": {n: float(v) for n, v in zip(names, q) if np.isfinite(v)},
                "attribute_probabilities": None if self.probs is None else dict(zip(names, map(float, self.probs[k]))),
            }
            for k, (p, o, e, m, q) in enumerate(
                zip(self.paths, self.originals, self.crops.eyes, self.crops.matrices, self.inputs.queries)
            )
        ]

    def paste_back(self, i: int, crop: np.ndarray, edited: np.ndarray) -> np.ndarray:
        """Photo i at full resolution with the edit of its crop put back (feathered; the rest unchanged)."""

        return align.paste_back(self.originals[i], crop, edited, self.crops.matrices[i])


def load(
    paths: Sequence[str],
    attrs: str | None,
    config: sweep_config.SweepConfig,
    data: FaceDataset,
    eyes: str | None = None,
    fit: str = "crop",
    cache_root: str | pathlib.Path | None = None,
    progress: solve.Progress | None = None,
) -> Photos:
    """Own photos as a sweep's inputs. attrs: 'Young=1,Male=-1' by hand, 'auto' (the attribute probe's
    prediction, trained on `data` on first use) or 'auto,Male=-1'; eyes: 'x1,y1,x2,y2' per photo
    (';' between photos), 'auto' (found by OpenCV), or None (centre-cropped or padded, `fit`)."""

    if not attrs:
        raise ValueError(
            "own photos need their attributes: --attrs Young=1,Male=-1 or --attrs auto (names from the dataset)"
        )
    originals = [im.load_image(p) for p in paths]
    per_photo = None
    if eyes:
        given = align.parse_eyes(eyes, len(originals))
        per_photo = ["auto"] * len(originals) if given is None else given
    crops = sweep_inputs.prepare_photos(originals, data, config.size, per_photo, fit)
    predicted = probs = None
    if sweep_inputs.wants_predicted_attrs(attrs):
        probe = sweep_inputs.photo_probe(config, data, cache_root, progress)
        predicted, probs = sweep_inputs.predict_photo_attrs(probe, crops.images, data)
    inputs = sweep_inputs.photo_inputs(crops.images, attrs, data, list(paths), predicted)
    return Photos(tuple(paths), originals, crops, inputs, probs, fit, tuple(data.attr_names))
