"""Own photos into a sweep: loaded at full resolution, their faces found (dlib's detector and landmarks
fitted to the dataset's template, as the DFI reference aligns them; OpenCV's Haar eyes without the faces
extra; or eyes given by hand) and brought to the dataset's working crop, every face of a group photo its
own input; given attributes by hand or by the attribute probe; the edits pasted back into the whole photo."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from dfijax import face_models as fm
from dfijax import images as im
from dfijax.data import FaceDataset
from dfijax.dfi import align, face_crops, solve, sweep_config, sweep_inputs

ALIGNS = ("auto", "dlib", "haar", "none")


@dataclasses.dataclass(frozen=True)
class Photos:
    """paths; originals (full resolution, [H_i, W_i, 3] in [0, 1]); crops (sweep_inputs.PhotoCrops, one per
    face); inputs (sweep_inputs.SweepInputs, one per crop); probs [N, A] the probe's probabilities (None
    when the attributes were given by hand); fit ("crop" or "pad", for crops not aligned to a face);
    attr_names; found: what was found in each photo, a line each; aligned_by: dlib, haar, eyes or none."""

    paths: tuple[str, ...]
    originals: list[np.ndarray]
    crops: sweep_inputs.PhotoCrops
    inputs: sweep_inputs.SweepInputs
    probs: np.ndarray | None
    fit: str
    attr_names: tuple[str, ...]
    found: tuple[str, ...] = ()
    aligned_by: str = "none"

    def stems(self) -> list[str]:
        """File name stems of the crops: img<photo>, or img<photo>f<face> for a photo with several faces."""
        return stems([self.crops.photo_of(i) for i in range(len(self.inputs.images))])

    def notes(self) -> list[str]:
        """What was found about each photo, a line each: faces or eyes used, predicted attributes and the
        neighbour search they give."""
        lines = list(self.found)
        for i, stem in enumerate(self.stems()):
            e, path = self.crops.eyes[i], f"{self.paths[self.crops.photo_of(i)]} ({stem})"
            if not np.isnan(e).any():
                lines.append(f"{path}: eyes at ({e[0, 0]:.0f}, {e[0, 1]:.0f}) and ({e[1, 0]:.0f}, {e[1, 1]:.0f})")
            if self.probs is not None:
                p = ", ".join(f"{n} {q:.2f}" for n, q in zip(self.attr_names, self.probs[i]))
                q = ",".join(f"{n}={v:g}" for n, v in zip(self.attr_names, self.inputs.queries[i]) if np.isfinite(v))
                lines += [f"{path}: predicted attributes (probability): {p}", f"{path}: neighbour search with {q}"]
        return lines

    def records(self) -> list[dict[str, Any]]:
        """Per crop: path, photo, size, eyes, the crop's matrix, fit, the face dlib found (box, score, 68
        landmarks, the landmark fit's loss), attributes used, the probe's probabilities."""
        names, out = self.attr_names, []
        for i, stem in enumerate(self.stems()):
            k, e, face = self.crops.photo_of(i), self.crops.eyes[i], self.crops.face_of(i)
            q = self.inputs.queries[i]
            out.append(
                {
                    "path": self.paths[k],
                    "photo": k,
                    "stem": stem,
                    "size": list(self.originals[k].shape[:2]),
                    "eyes": None if np.isnan(e).any() else e.tolist(),
                    "matrix": self.crops.matrices[i].tolist(),
                    "fit": ("dlib" if face is not None else "eyes") if not np.isnan(e).any() else self.fit,
                    "face": None
                    if face is None
                    else {**face.to_dict(), "fit_loss": round(float(self.crops.fit_loss[i]), 4)},
                    "attributes": {n: float(v) for n, v in zip(names, q) if np.isfinite(v)},
                    "attribute_probabilities": None
                    if self.probs is None
                    else dict(zip(names, map(float, self.probs[i]))),
                }
            )
        return out

    def paste_back(self, i: int, crop: np.ndarray, edited: np.ndarray) -> np.ndarray:
        """Crop i's photo at full resolution with the edit of the crop put back (feathered; the rest unchanged)."""
        return align.paste_back(self.originals[self.crops.photo_of(i)], crop, edited, self.crops.matrices[i])

    def paste_all(self, k: int, rows: Sequence[int], crops: np.ndarray, edited: np.ndarray) -> np.ndarray:
        """Photo k at full resolution with the edits of its crops `rows` (crops[j], edited[j] the j-th of
        them, [h, w, 3] each) put back, each in its place."""
        out = self.originals[k]
        for j, i in enumerate(rows):
            if self.crops.photo_of(i) != k:
                raise ValueError(f"crop {i} is not from photo {k}")
            out = align.paste_back(out, crops[j], edited[j], self.crops.matrices[i])
        return out


def stems(owners: Sequence[int]) -> list[str]:
    """img<k> for the one crop of photo k, img<k>f<j> (j from 1) for each of several."""
    counts, seen, out = np.bincount(np.asarray(owners, int)), {}, []
    for k in owners:
        seen[k] = seen.get(k, 0) + 1
        out.append(f"img{k}" if counts[k] == 1 else f"img{k}f{seen[k]}")
    return out


def resolve_align(align_mode: str, eyes: str | None) -> str:
    """What aligns the photos: 'eyes' (positions given), 'haar' (--eyes auto, or 'auto' without dlib),
    'dlib' ('auto' with the faces extra) or 'none' (centre crop or padding)."""
    if align_mode not in ALIGNS:
        raise ValueError(f"--align must be one of {', '.join(ALIGNS)}, got {align_mode!r}")
    if eyes:
        return "haar" if eyes.strip().lower() == "auto" else "eyes"
    if align_mode == "auto":
        return "dlib" if fm.available() else "haar"
    return align_mode


def load(
    paths: Sequence[str],
    attrs: str | None,
    config: sweep_config.SweepConfig,
    data: FaceDataset,
    eyes: str | None = None,
    fit: str = "crop",
    cache_root: str | pathlib.Path | None = None,
    progress: solve.Progress | None = None,
    align_mode: str = "auto",
    face: int | None = None,
    detector: str = "hog",
) -> Photos:
    """Own photos as a sweep's inputs. attrs: 'Young=1,Male=-1' by hand, 'auto' (the attribute probe's
    prediction, trained on `data` on first use) or 'auto,Male=-1'; align_mode: 'auto' (dlib's faces with
    the faces extra, else OpenCV's Haar eyes), 'dlib', 'haar' or 'none' (centre-cropped or padded, `fit`);
    eyes: 'x1,y1,x2,y2' per photo (';' between photos) aligns by hand; face: the N-th face from the left
    of each photo (1-based; default every face)."""

    if not attrs:
        raise ValueError(
            "own photos need their attributes: --attrs Young=1,Male=-1 or --attrs auto (names from the dataset)"
        )
    if face is not None and face < 1:
        raise ValueError(f"--face counts faces from the left starting at 1, got {face}")
    mode = resolve_align(align_mode, eyes)
    originals = [im.load_image(p) for p in paths]
    found: list[str] = []
    if mode == "dlib":
        models = fm.load()
        template = face_crops.dataset_template(data, config.size, models, cache_root)
        crops, found = face_crops.crop_faces(
            originals, template, config.size, models, face, fit, list(paths), detector=detector
        )
    else:
        per_photo = None
        if mode == "eyes":
            per_photo = align.parse_eyes(eyes, len(originals))
        elif mode == "haar":
            per_photo = []
            for p, photo in zip(paths, originals):
                try:
                    per_photo.append(align.detect_eyes(photo))
                except align.EyeDetectionError as e:
                    if eyes:  # asked for by name: the one-line error stands
                        raise
                    found.append(f"{p}: {e}; centre-cropped instead")
                    per_photo.append(None)
        crops = sweep_inputs.prepare_photos(originals, data, config.size, per_photo, fit)
    owners = [crops.photo_of(i) for i in range(len(crops.images))]
    labels = [paths[k] if st == f"img{k}" else f"{paths[k]} ({st})" for k, st in zip(owners, stems(owners))]
    predicted = probs = None
    if sweep_inputs.wants_predicted_attrs(attrs):
        probe = sweep_inputs.photo_probe(config, data, cache_root, progress)
        predicted, probs = sweep_inputs.predict_photo_attrs(probe, crops.images, data)
    inputs = sweep_inputs.photo_inputs(crops.images, attrs, data, labels, predicted)
    return Photos(tuple(paths), originals, crops, inputs, probs, fit, tuple(data.attr_names), tuple(found), mode)
