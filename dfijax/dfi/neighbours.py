"""Neighbour sets: the K images nearest the input in the other attributes, with and without the edit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


class NeighbourError(ValueError):
    """Too few images with (or without) the attribute; the message gives the counts."""


@dataclasses.dataclass(frozen=True)
class Neighbours:
    """Indices into the dataset, nearest first, and how many qualified before truncation to K."""

    target: np.ndarray
    source: np.ndarray
    n_target_available: int
    n_source_available: int


def select_neighbours(
    attrs: np.ndarray,
    query: np.ndarray,
    edit: Sequence[tuple[int, int]],
    k: int = 100,
    *,
    has: float = 0.5,
    lacks: float = -0.5,
    metric: str = "l2",
    same: int | None = None,
    exclude: int | None = None,
    allow_fewer: bool = False,
    rank: str = "other",
) -> Neighbours:
    """Target set: images with the edit (for each (i, +1): attr_i >= has; for (i, −1): attr_i < lacks);
    source set: images with the opposite. Both ranked by the distance of the attributes to the query
    (L2, or Hamming on signs; NaN query entries are ignored): rank="other" leaves the edited
    attributes out of the distance, rank="all" uses every attribute (as chainer-dfi and the official
    code do; with Hamming distance the edited ones add the same amount to every candidate of a set).

    attrs: [N, A]; query: [A]. same: an attribute index (e.g. Male) whose sign must match the query's.
    exclude: a dataset index never chosen (the input itself). Fewer than k qualifying images raise
    NeighbourError unless allow_fewer; none at all always does.
    """
    attrs = np.asarray(attrs, np.float32)
    query = np.asarray(query, np.float32)
    if attrs.ndim != 2 or query.shape != (attrs.shape[1],):
        raise ValueError(f"attrs must be [N, A] and query [A], got {attrs.shape} and {query.shape}")
    if metric not in ("l2", "hamming"):
        raise ValueError(f"metric must be 'l2' or 'hamming', got {metric!r}")
    if rank not in ("other", "all"):
        raise ValueError(f"rank must be 'other' or 'all', got {rank!r}")
    want = np.ones(len(attrs), bool)
    oppo = np.ones(len(attrs), bool)
    for i, sign in edit:
        pos, neg = attrs[:, i] >= has, attrs[:, i] < lacks
        want &= pos if sign > 0 else neg
        oppo &= neg if sign > 0 else pos
    if same is not None:
        if np.isnan(query[same]):
            raise ValueError("a same-attribute restriction needs that attribute's value for the input")
        match = np.sign(attrs[:, same]) == np.sign(query[same])
        want &= match
        oppo &= match
    if exclude is not None:
        want[exclude] = oppo[exclude] = False
    rest = np.ones(attrs.shape[1], bool)
    if rank == "other":
        rest[[i for i, _ in edit]] = False
    rest &= ~np.isnan(query)
    if metric == "l2":
        dist = np.sqrt(np.sum((attrs[:, rest] - query[rest]) ** 2, axis=1))
    else:
        dist = np.sum(np.sign(attrs[:, rest]) != np.sign(query[rest]), axis=1).astype(np.float32)
    picked = []
    for mask, what in ((want, "with"), (oppo, "without")):
        idx = np.flatnonzero(mask)
        if len(idx) == 0 or (len(idx) < k and not allow_fewer):
            raise NeighbourError(
                f"only {len(idx)} images {what} the edit qualify (K = {k}); lower K, use a larger dataset"
                + (", or allow fewer neighbours" if len(idx) else "")
            )
        picked.append(idx[np.argsort(dist[idx], kind="stable")[:k]])
    return Neighbours(picked[0], picked[1], int(want.sum()), int(oppo.sum()))
