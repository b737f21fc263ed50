"""Datasets, by kind. Faces with attributes (DFI, the probe, the fusion GAN): `celeba` (folder or
tfds), `lfw` (folder + lfw_attributes.txt), `synthetic_faces` (embedded, procedural, offline), all
behind the `FaceDataset` interface below. Digits (DTN): `digits` (generated street-number digits,
scikit-learn digits, SVHN/MNIST via tfds). Cartoon faces (DTN faces target): `cartoon_faces`.

A `FaceDataset` holds the attribute table in memory and loads images by index, aligned and cropped
to a square working size. Attributes are float32 [N, A]: CelebA's are ±1 (binary), LFW's are
continuous classifier scores; `binary` tells which (Hamming vs L2 neighbour ranking).
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
from collections.abc import Sequence

import numpy as np


class DataError(ValueError):
    """Missing or malformed dataset files; the message names the expected files and how to get them."""


def unknown_attribute(name: str, names: Sequence[str]) -> ValueError:
    """The error for an attribute name the dataset does not have, with close matches."""
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ValueError(f"unknown attribute {name!r}{hint}; valid: {', '.join(names)}")


@dataclasses.dataclass
class FaceDataset(abc.ABC):
    """name: short id (used in cache keys); attr_names: [A]; attrs: [N, A] float32; ids: [N] stable
    per-image ids (file names); binary: ±1 attributes (CelebA, synthetic) or continuous (LFW);
    gender: the attribute for same-gender neighbour restriction, if any."""

    name: str
    attr_names: tuple[str, ...]
    attrs: np.ndarray
    ids: tuple[str, ...]
    binary: bool
    gender: str | None = "Male"

    def __len__(self) -> int:
        return len(self.ids)

    @abc.abstractmethod
    def load(self, index: int, size: int) -> np.ndarray:
        """One aligned face crop, [size, size, 3] float32 in [0, 1]."""

    def images(self, indices: Sequence[int], size: int) -> np.ndarray:
        """[n, size, size, 3] float32 in [0, 1]."""
        return np.stack([self.load(int(i), size) for i in indices]).astype(np.float32)

    def attr_index(self, name: str) -> int:
        if name not in self.attr_names:
            raise unknown_attribute(name, self.attr_names)
        return self.attr_names.index(name)

    def describe(self) -> str:
        kind = "binary" if self.binary else "continuous"
        return f"{self.name}: {len(self)} faces, {len(self.attr_names)} {kind} attributes"
