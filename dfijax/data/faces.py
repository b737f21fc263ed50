"""The face datasets by name, as the experiments and the studio name them on their command lines."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from dfijax import config
from dfijax.data import FaceDataset
from dfijax.data.celeba import load_celeba_folder, load_celeba_tfds
from dfijax.data.lfw import load_lfw_folder
from dfijax.data.synthetic_faces import synthetic_faces

FACE_DATASETS = ("synthetic", "celeba", "celeba-tfds", "lfw")


@dataclasses.dataclass(frozen=True)
class FaceSource:
    """Which face dataset a run reads (`load_faces`)."""

    dataset: Literal[FACE_DATASETS] = "synthetic"
    """face dataset"""
    data_dir: str | None = None
    """dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)"""
    n_synthetic: Annotated[int, config.POSITIVE] = 2000
    """size of the synthetic face set"""

    def __post_init__(self):
        config.check(self)

    def load(self, seed: int = 0) -> FaceDataset:
        return load_faces(self.dataset, self.data_dir, self.n_synthetic, seed)


def load_faces(
    kind: str = "synthetic", data_dir: str | None = None, n_synthetic: int = 2000, seed: int = 0
) -> FaceDataset:
    """ "synthetic" (the embedded faces: n_synthetic of them, drawn with seed), "celeba" (a folder),
    "celeba-tfds" (tfds, data_dir its data_dir) or "lfw" (a folder with lfw_attributes.txt). One-line
    ValueError for an unknown kind or a missing --data-dir; the loaders' DataError for missing files."""
    if kind == "synthetic":
        return synthetic_faces(n_synthetic, seed=seed)
    if kind not in FACE_DATASETS:
        raise ValueError(f"unknown dataset {kind!r}; use one of {', '.join(FACE_DATASETS)}")
    if not data_dir and kind != "celeba-tfds":
        raise ValueError(f"--dataset {kind} needs --data-dir (the folder holding the dataset)")
    if kind == "celeba":
        return load_celeba_folder(data_dir)
    if kind == "celeba-tfds":
        return load_celeba_tfds(data_dir)

    return load_lfw_folder(data_dir)
