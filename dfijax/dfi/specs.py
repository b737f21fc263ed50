"""Edit specs ("Smiling+ Mouth_Open-"), an attribute probe's score for one, and attributes given by hand for
photos of one's own."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from dfijax.data import unknown_attribute

# a parsed edit spec: (attribute index, +1 or -1) per attribute
Spec = Sequence[tuple[int, int]]


def parse_edit(spec: str, names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """'Smiling+ Mouth_Closed-' (spaces or commas; a name without a sign means +) ->
    ((index, +1), (index, -1)). Unknown names get an error listing the valid ones."""
    out = []
    for token in filter(None, re.split(r"[\s,]+", spec.strip())):
        sign = -1 if token.endswith("-") else 1
        name = token.rstrip("+-")
        if not name:
            raise ValueError(f"empty attribute name in edit spec {spec!r}")
        if name not in names:
            raise unknown_attribute(name, names)
        out.append((list(names).index(name), sign))
    if not out:
        raise ValueError(f"empty edit spec {spec!r}; e.g. 'Smiling+' or 'Smiling+ Mouth_Closed-'")
    if len({i for i, _ in out}) != len(out):
        raise ValueError(f"an attribute appears twice in {spec!r}")
    return tuple(out)


def target_score(p: np.ndarray, spec: Spec) -> np.ndarray:
    """Probability of the edit's direction, averaged over its attributes: p [..., A] -> [...]."""
    return np.mean([p[..., i] if sign > 0 else 1 - p[..., i] for i, sign in spec], axis=0)


def parse_attrs(text: str, names: Sequence[str]) -> np.ndarray:
    """Attributes given by hand for an own photo, 'Young=1,Male=-1' -> [A] float32 with NaN for the
    attributes not given (they are left out of the neighbour distance)."""
    q = np.full(len(names), np.nan, np.float32)
    for item in filter(None, re.split(r"[\s,]+", text.strip())):
        if "=" not in item:
            raise ValueError(f"attribute {item!r} needs a value, e.g. {item}=1")
        name, value = item.split("=", 1)
        if name not in names:
            raise unknown_attribute(name, names)
        try:
            q[list(names).index(name)] = float(value)
        except ValueError:
            raise ValueError(f"attribute {name} has value {value!r}, which is not a number") from None
    return q
