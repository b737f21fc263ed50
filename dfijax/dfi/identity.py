"""Whether an edit keeps the person, measured as the face-recognition field measures it: the distance
between dlib's face descriptors (`face_models`) of each edit and its input; below 0.6
(`face_models.SAME_PERSON`) they are the same person. Where the detector finds no face in an input (the
embedded synthetic faces are drawn, not photographed) the row is marked as not measured."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dfijax import face_models as fm

if TYPE_CHECKING:
    from dfijax.dfi.photos import Photos
    from dfijax.dfi.sweep import SweepResult

MODEL = "dlib_face_recognition_resnet_model_v1 (128-d, same person below 0.6)"
EXPLAINED = (
    "Face recognition: the distance between dlib's ResNet face descriptors (128-d) of each edit and its "
    "input, measured on the whole photo with the edit put back for own photos and on the crop for dataset "
    "faces, each edit at its input's landmarks; below 0.6 (dashed) face recognition calls them the same "
    "person (99.38 % on LFW). Inputs in which dlib's detector finds no face are not measured."
)


@dataclasses.dataclass(frozen=True)
class FaceIdentity:
    """distances [R, A]: each edit's descriptor distance from its input's (NaN: no face measured);
    found [R]: the detector found the input's face; measured_on: "photo" (the edit pasted back into the
    whole photo) or "crop" (the working crop)."""

    alphas: np.ndarray
    distances: np.ndarray
    found: np.ndarray
    measured_on: str

    def same_person_share(self) -> list[float | None]:
        """Per alpha, the share of measured edits still closer than 0.6 to their input (None: none measured)."""
        out = []
        for j in range(len(self.alphas)):
            s = fm.same_person_share(self.distances[:, j])
            out.append(None if np.isnan(s) else s)
        return out

    def to_dict(self) -> dict:
        d = self.distances
        return {
            "model": MODEL,
            "same_person_below": fm.SAME_PERSON,
            "measured_on": self.measured_on,
            "inputs_with_a_face": int(self.found.sum()),
            "inputs": int(len(self.found)),
            "distance": [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in d],
            "mean_distance_per_alpha": [
                None if not np.isfinite(d[:, j]).any() else round(float(np.nanmean(d[:, j])), 4)
                for j in range(len(self.alphas))
            ],
            "same_person_share_per_alpha": self.same_person_share(),
        }

    def table(self) -> dict:
        """Per alpha: the mean distance, the share still the same person, how many edits were measured."""
        d, share = self.distances, self.same_person_share()
        rows = []
        for j, a in enumerate(self.alphas):
            n = int(np.isfinite(d[:, j]).sum())
            mean = f"{np.nanmean(d[:, j]):.3f}" if n else "-"
            rows.append([f"{a:g}", mean, "-" if share[j] is None else f"{share[j]:.0%}", f"{n}/{len(d)}"])
        return {"headers": ["alpha", "mean distance", "same person (< 0.6)", "measured"], "rows": rows}

    def note(self) -> str | None:
        """One line when some inputs could not be measured (None when all were)."""
        missing = int((~self.found).sum())
        if not missing:
            return None
        return (
            f"face identity: dlib's detector finds no face in {missing} of {len(self.found)} inputs "
            "(drawn faces, or too small), so their edits carry no descriptor distance"
        )


def _nearest(faces: Sequence[fm.Face], box: tuple[int, int, int, int]) -> fm.Face | None:
    """The face whose box centre is nearest box's centre, if within half box's width of it."""
    cx, cy, w = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0]
    best = min(
        faces, key=lambda f: np.hypot((f.box[0] + f.box[2]) / 2 - cx, (f.box[1] + f.box[3]) / 2 - cy), default=None
    )
    if best is None or np.hypot((best.box[0] + best.box[2]) / 2 - cx, (best.box[1] + best.box[3]) / 2 - cy) > w / 2:
        return None
    return best


def measure(
    models: fm.FaceModels,
    inputs: Sequence[np.ndarray],
    edits: Sequence[Sequence[np.ndarray]],
    alphas: Sequence[float],
    faces: Sequence[fm.Face | None] | None = None,
    measured_on: str = "crop",
) -> FaceIdentity:
    """Descriptor distances of edits[r][a] (images [H, W, 3] in [0, 1]) from inputs[r]. faces[r]: the
    input's face where already found (own photos), else the detector's most central one (none: the row is
    not measured). Each edit's descriptor is taken at the input's landmarks (dlib aligns its face chip from
    them), so every edit is compared at the very place of the input's face."""
    if len(edits) != len(inputs) or any(len(e) != len(alphas) for e in edits):
        raise ValueError(f"need {len(inputs)} rows of {len(alphas)} edits, one row per input")
    faces = list(faces) if faces is not None else [None] * len(inputs)
    dist = np.full((len(inputs), len(alphas)), np.nan)
    found = np.zeros(len(inputs), bool)
    for r, (x, row) in enumerate(zip(inputs, edits)):
        face = faces[r]
        if face is None:
            h, w = np.asarray(x).shape[:2]
            face = _nearest(models.detect(x), (0, 0, w, h))
        if face is None:
            continue
        found[r] = True
        ref = models.descriptor(x, face.landmarks)
        for j, e in enumerate(row):
            dist[r, j] = fm.distance(ref, models.descriptor(e, face.landmarks))
    return FaceIdentity(np.asarray(alphas, np.float64), dist, found, measured_on)


def of_sweep(models: fm.FaceModels, result: "SweepResult", photos: "Photos | None" = None) -> FaceIdentity:
    """A sweep's edits against their inputs: own photos' on the whole photo with each edit put back (the
    face dlib found in it compared), dataset faces' on their crops."""
    alphas = result.config.alphas
    if photos is None:
        return measure(models, list(result.inputs), [list(row) for row in result.edited], alphas)
    crops = [i for i, _ in result.rows]
    pasted = [
        [photos.paste_back(i, result.inputs[r], result.edited[r, j]) for j in range(len(alphas))]
        for r, i in enumerate(crops)
    ]
    originals = [photos.originals[photos.crops.photo_of(i)] for i in crops]
    faces = [photos.crops.face_of(i) for i in crops]
    return measure(models, originals, pasted, alphas, faces, measured_on="photo")
