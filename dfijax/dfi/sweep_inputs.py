"""What a sweep edits (`SweepInputs`): dataset faces lacking the edit, or own photos cropped or aligned to
the dataset's crop with their attributes given or predicted by the attribute probe."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import numpy as np

from dfijax import images as im
from dfijax.data import FaceDataset
from dfijax.dfi import align, specs
from dfijax.dfi.probe import Probe, ProbeConfig, train_probe
from dfijax.dfi.solve import Progress
from dfijax.dfi.sweep_config import SweepConfig


@dataclasses.dataclass(frozen=True)
class SweepInputs:
    """The images to edit, [N, size, size, 3] in [0, 1], with their attributes [N, A] (NaN: unknown),
    the dataset index each must not take as a neighbour (None for outside photos) and a label each."""

    images: np.ndarray
    queries: np.ndarray
    excludes: tuple[int | None, ...]
    labels: tuple[str, ...]


def dataset_inputs(
    data: FaceDataset, edit: str, size: int, count: int = 3, indices: Sequence[int] | None = None
) -> SweepInputs:
    """Dataset faces to edit: the given indices, or the first `count` that lack the edit."""
    if indices is not None:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(data)]
        if bad:
            raise ValueError(f"indices {bad} out of range: the dataset has {len(data)} images")
    else:
        lacking = np.ones(len(data), bool)
        for i, sign in specs.parse_edit(edit, data.attr_names):
            lacking &= (data.attrs[:, i] < -0.5) if sign > 0 else (data.attrs[:, i] >= 0.5)
        idx = np.flatnonzero(lacking)[:count].tolist()
        if not idx:
            raise ValueError(f"no face in {data.name} lacks the edit {edit!r}")
    return SweepInputs(data.images(idx, size), data.attrs[idx], tuple(idx), tuple(data.ids[i] for i in idx))


@dataclasses.dataclass(frozen=True)
class PhotoCrops:
    """Own photos brought to the dataset's working crop: images [N, size, size, 3] in [0, 1];
    matrices [N, 2, 3] (photo pixels -> crop pixels, see dfijax.dfi.align); eyes [N, 2, 2] the
    photo's eye positions used (NaN where the photo was centre-cropped or padded instead). Crops of
    faces found by dlib (`dfi.face_crops`) also say which photo each comes from (photo [N]; None: crop i
    is photo i), the face found (faces, a `face_models.Face` or None each) and the landmark fit's loss."""

    images: np.ndarray
    matrices: np.ndarray
    eyes: np.ndarray
    photo: np.ndarray | None = None
    faces: tuple = ()
    fit_loss: np.ndarray | None = None

    def photo_of(self, i: int) -> int:
        """The photo crop i comes from."""
        return i if self.photo is None else int(self.photo[i])

    def face_of(self, i: int):
        """The dlib face crop i was aligned by (None: aligned otherwise)."""
        return self.faces[i] if self.faces else None


def prepare_photos(
    photos: Sequence[np.ndarray],
    data: FaceDataset,
    size: int,
    eyes: Sequence[np.ndarray | str | None] | None = None,
    fit: str = "crop",
) -> PhotoCrops:
    """Photos [H_i, W_i, 3] in [0, 1] (any sizes) -> the dataset's size×size crop, never stretched.
    eyes[i]: [2, 2] (x, y) eye positions in photo i -> aligned to the dataset's eye template by a
    similarity transform; "auto" -> the same with eyes found by OpenCV's Haar cascades; None (or
    eyes None) -> centre-cropped to the square (fit="crop") or padded with edge pixels (fit="pad")."""

    eyes = [None] * len(photos) if eyes is None else list(eyes)
    if len(eyes) != len(photos):
        raise ValueError(f"{len(eyes)} eye pairs for {len(photos)} photos: give one per photo")
    out, mats, used = [], [], []
    for photo, e in zip(photos, eyes):
        photo = np.asarray(photo, np.float32)
        if e is None:
            m = align.fit_matrix(photo.shape[:2], (size, size), fit)
            out.append(im.resize_array(im.fit_aspect(photo, 1.0, fit), (size, size)))  # as load_image does
            used.append(np.full((2, 2), np.nan))
        else:
            e = align.detect_eyes(photo) if isinstance(e, str) else align.order_eyes(e)
            m = align.similarity_from_eyes(e, align.template_eyes(data, size))
            out.append(align.align(photo, m, (size, size)))
            used.append(e)
        mats.append(m)
    return PhotoCrops(np.clip(np.stack(out), 0, 1).astype(np.float32), np.stack(mats), np.stack(used))


def probe_config(config: SweepConfig) -> "ProbeConfig":
    """The attribute probe's settings for a sweep config (at most 64 px)."""

    return ProbeConfig(
        size=min(64, config.size), steps=config.probe.steps, n_train=config.probe.train, seed=config.seed
    )


def train_sweep_probe(
    config: SweepConfig,
    data: FaceDataset,
    cache_root: str | pathlib.Path | None = None,
    progress: Progress | None = None,
) -> tuple["Probe", bool]:
    """The attribute probe the sweep scores with, trained on first use and kept under cache_root/probe
    (None: not kept); and whether it came from that cache."""

    progress = progress or (lambda *a: None)
    pc = probe_config(config)
    root = pathlib.Path(cache_root) / "probe" if cache_root is not None else None
    return train_probe(data, pc, root, progress=lambda i, m: progress("probe", i, pc.steps, {}))


def photo_probe(
    config: SweepConfig,
    data: FaceDataset,
    cache_root: str | pathlib.Path | None = None,
    progress: Progress | None = None,
) -> "Probe":
    """The attribute probe the sweep scores with (same settings, so the same cached probe): a
    dfijax.dfi.probe.Probe, trained on first use."""
    return train_sweep_probe(config, data, cache_root, progress)[0]


def predict_photo_attrs(probe: "Probe", images: np.ndarray, data: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    """The probe's reading of photos [N, S, S, 3]: (values [N, A], probabilities [N, A]). A value is
    the dataset's mean attribute among its faces on the predicted side (p > 0.5 or not): ±1 for
    binary attributes, a typical score for continuous ones (LFW)."""
    probs = probe.scores(np.asarray(images, np.float32))
    a = np.asarray(data.attrs, np.float32)
    pos, neg = a > 0, a <= 0
    pos_mean = np.where(pos.any(0), np.nansum(np.where(pos, a, 0), 0) / np.maximum(pos.sum(0), 1), 1.0)
    neg_mean = np.where(neg.any(0), np.nansum(np.where(neg, a, 0), 0) / np.maximum(neg.sum(0), 1), -1.0)
    return np.where(probs > 0.5, pos_mean, neg_mean).astype(np.float32), probs


def wants_predicted_attrs(attrs: str) -> bool:
    """Whether an --attrs text asks for the probe's prediction ('auto' or 'auto,Male=-1')."""
    return "auto" in [t.strip().lower() for t in attrs.replace(" ", ",").split(",")]


def photo_inputs(
    images: np.ndarray, attrs: str, data: FaceDataset, labels: Sequence[str], predicted: np.ndarray | None = None
) -> SweepInputs:
    """Photos of one's own ([N, size, size, 3], aligned or face-centred, see `prepare_photos`) with
    attributes given by hand ('Young=1,Male=-1', names from the dataset; the rest unknown), or
    predicted: 'auto' takes predicted [N, A] (see `predict_photo_attrs`), 'auto,Male=-1' overrides
    single attributes of the prediction."""
    n = len(images)
    tokens = [t for t in attrs.replace(" ", ",").split(",") if t.strip()]
    auto = any(t.strip().lower() == "auto" for t in tokens)
    given = specs.parse_attrs(",".join(t for t in tokens if t.strip().lower() != "auto"), data.attr_names)
    if auto:
        if predicted is None:
            raise ValueError("--attrs auto needs the probe's predictions (predict_photo_attrs)")
        predicted = np.asarray(predicted, np.float32)
        if predicted.shape != (n, len(data.attr_names)):
            raise ValueError(f"predicted attributes have shape {predicted.shape}, expected {(n, len(data.attr_names))}")
        query = np.where(np.isnan(given)[None], predicted, given[None]).astype(np.float32)
    else:
        query = np.repeat(given[None], n, 0)
    return SweepInputs(np.asarray(images, np.float32), query, (None,) * n, tuple(labels))
