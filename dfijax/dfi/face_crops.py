"""Own photos' faces found by dlib (`face_models`) and brought to the dataset's crop by the DFI
reference's landmark fit (`landmarks.fit_face_landmarks` against the dataset's 68-landmark template):
every face of a group photo becomes a crop of its own, left to right, or the one `pick` names."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

from dfijax import face_models as fm
from dfijax import images as im
from dfijax.data import FaceDataset
from dfijax.dfi import align, landmarks
from dfijax.dfi.sweep_inputs import PhotoCrops


def dataset_template(
    data: FaceDataset, size: int, models: fm.FaceModels, cache_root: str | pathlib.Path | None = None
) -> np.ndarray:
    """The dataset's landmark template at size (`landmarks.template`), computed from the dataset's own crops
    with dlib where the dataset has no other (kept under cache_root/landmarks)."""
    try:
        return landmarks.template(data, size)
    except ValueError:
        pass
    path = pathlib.Path(cache_root) / "landmarks" / f"{data.name}.npy" if cache_root is not None else None
    if path is not None and path.is_file():
        return landmarks.template(data, size, np.load(path))
    fractions, _ = landmarks.compute_template(data, models.detect)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, fractions)
    return landmarks.template(data, size, fractions)


def crop_faces(
    photos: Sequence[np.ndarray],
    template: np.ndarray,
    size: int,
    models: fm.FaceModels,
    pick: int | None = None,
    fit: str = "crop",
    names: Sequence[str] | None = None,
    found: Sequence[fm.Face] | None = None,
    detector: str = "hog",
) -> tuple[PhotoCrops, list[str]]:
    """(the crops, a note per photo): each photo [H, W, 3] in [0, 1] searched for faces; each face (or the
    pick-th from the left, 1-based) fitted to `template` [68, 2] and warped to size×size; a photo without a
    face centre-cropped (`fit`) instead, which its note says. found: one photo's faces already found;
    detector: dlib's "hog" (the reference's) or "cnn" (MMOD: slower, finds turned and small faces)."""
    names = list(names) if names is not None else [f"photo {k}" for k in range(len(photos))]
    images, mats, eyes, owner, faces, losses, notes = [], [], [], [], [], [], []
    for k, photo in enumerate(photos):
        photo = np.asarray(photo, np.float32)
        here = models.detect(photo, detector) if found is None else list(found)
        if pick is not None and here:
            if pick > len(here):
                raise ValueError(f"--face {pick}: dlib finds {len(here)} face(s) in {names[k]}; pick 1 to {len(here)}")
            here = [here[pick - 1]]
        if not here:
            notes.append(f"{names[k]}: dlib finds no face; centre-cropped instead (--eyes x1,y1,x2,y2 aligns by hand)")
            mats.append(align.fit_matrix(photo.shape[:2], (size, size), fit))
            images.append(im.resize_array(im.fit_aspect(photo, 1.0, fit), (size, size)))
            eyes.append(np.full((2, 2), np.nan))
            owner.append(k)
            faces.append(None)
            losses.append(np.nan)
            continue
        notes.append(f"{names[k]}: dlib finds {len(here)} face(s)" if pick is None else f"{names[k]}: face {pick}")
        for face in here:
            m, loss = landmarks.fit_face_landmarks(face.landmarks, template, (size, size))
            mats.append(m)
            images.append(align.align(photo, m, (size, size)))
            eyes.append(face.eyes)
            owner.append(k)
            faces.append(face)
            losses.append(loss)
    crops = PhotoCrops(
        np.clip(np.stack(images), 0, 1).astype(np.float32),
        np.stack(mats),
        np.stack(eyes),
        np.asarray(owner),
        tuple(faces),
        np.asarray(losses, np.float64),
    )
    return crops, notes
