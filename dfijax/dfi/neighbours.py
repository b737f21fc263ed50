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


def _indices(same: int | Sequence[int] | None) -> list[int]:
    return [] if same is None else [int(same)] if np.ndim(same) == 0 else [int(j) for j in same]


def select_neighbours(
    attrs: np.ndarray,
    query: np.ndarray,
    edit: Sequence[tuple[int, int]],
    k: int = 100,
    *,
    has: float = 0.5,
    lacks: float = -0.5,
    metric: str = "l2",
    same: int | Sequence[int] | None = None,
    exclude: int | None = None,
    allow_fewer: bool = False,
    rank: str = "other",
) -> Neighbours:
    """Target set: images with the edit (for each (i, +1): attr_i >= has; for (i, −1): attr_i < lacks);
    source set: images with the opposite. Both ranked by the distance of the attributes to the query
    (L2, or Hamming on signs; NaN query entries are ignored): rank="other" leaves the edited
    attributes out of the distance, rank="all" uses every attribute (as chainer-dfi and the official
    code do; with Hamming distance the edited ones add the same amount to every candidate of a set).

    attrs: [N, A]; query: [A]. same: attribute indices (e.g. Male) whose signs must match the query's.
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
    for j in _indices(same):
        if np.isnan(query[j]):
            raise ValueError("a same-attribute restriction needs that attribute's value for the input")
        match = np.sign(attrs[:, j]) == np.sign(query[j])
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


# ------------------------------------------------------------------ the official DFI code's selection


@dataclasses.dataclass(frozen=True)
class BinaryAttributes:
    """LFW's scores binarised as the official DFI code does (datasets/lfw/lfw_binarize_attributes.py):
    names sorted, with "Female" added; members [N, A'] bool; gender per name ("Male"/"Female", the
    gender that expresses it most); cutoff [A'] the decision value of the first non-member (to binarise
    a photo outside the dataset: member when its score is above it, below it for Female)."""

    names: tuple[str, ...]
    members: np.ndarray
    gender: tuple[str, ...]
    cutoff: np.ndarray

    def member(self, scores: np.ndarray, raw_names: Sequence[str], male: str = "Male") -> np.ndarray:
        """[A'] bool membership of one photo's raw scores [A] (NaN: not a member)."""
        raw = dict(zip(raw_names, np.asarray(scores, np.float64)))
        out = np.zeros(len(self.names), bool)
        for j, n in enumerate(self.names):
            v = raw[male] if n == "Female" else raw[n]
            out[j] = bool(v < self.cutoff[j]) if n == "Female" else bool(v > self.cutoff[j])
        return out


def binarize_scores(scores: np.ndarray, names: Sequence[str], male: str = "Male") -> BinaryAttributes:
    """Members of each attribute: the images with a positive score, the 2/3 with the highest kept;
    Female: the 2/3 most negative Male scores; each attribute's gender by majority of its members."""
    scores = np.asarray(scores, np.float64)
    if male not in names:
        raise ValueError(f"binarising needs the {male!r} attribute, the dataset has {list(names)[:5]}...")
    lists, cut = {}, {}
    for i, n in enumerate(names):
        pos = np.flatnonzero(scores[:, i] > 0)
        lists[n] = pos[np.argsort(-scores[pos, i], kind="stable")]
    neg = np.flatnonzero(scores[:, list(names).index(male)] < 0)
    lists["Female"] = neg[np.argsort(scores[neg, list(names).index(male)], kind="stable")]
    for n, v in lists.items():
        col = list(names).index(male) if n == "Female" else list(names).index(n)
        cut[n] = scores[v[len(v) * 2 // 3], col] if len(v) * 2 // 3 < len(v) else np.inf * (-1 if n == "Female" else 1)
        lists[n] = v[: len(v) * 2 // 3]
    m, f = np.zeros(len(scores), bool), np.zeros(len(scores), bool)
    m[lists[male]], f[lists["Female"]] = True, True
    order = sorted(lists)
    members = np.zeros((len(scores), len(order)), bool)
    gender = []
    for j, n in enumerate(order):
        members[lists[n], j] = True
        gender.append(male if int(m[lists[n]].sum()) - int(f[lists[n]].sum()) >= 0 else "Female")
    return BinaryAttributes(tuple(order), members, tuple(gender), np.array([cut[n] for n in order]))


def _ranked(idx: np.ndarray, dist: np.ndarray, k: int, what: str, allow_fewer: bool) -> np.ndarray:
    if len(idx) == 0 or (len(idx) < k and not allow_fewer):
        raise NeighbourError(
            f"only {len(idx)} images {what} the edit qualify (K = {k}); lower K, use a larger dataset"
            + (", or allow fewer neighbours" if len(idx) else "")
        )
    return idx[:k]


def official_lfw_neighbours(
    binary: BinaryAttributes,
    query: np.ndarray,
    edit: Sequence[tuple[str, int]],
    k: int = 100,
    *,
    exclude: int | None = None,
    allow_fewer: bool = False,
) -> Neighbours:
    """The official LFW demo's sets (demo1.py make_manifolds): the edit's first "+" attribute a sets
    the gender G (a's gender); target: in G, has a and every other "+", none of the "−"; source: in G,
    lacks a, has every "−", none of the other "+"; both ranked (stable) by Hamming distance over all
    binary attributes to the query's membership [A'] bool; the input (exclude) is never chosen."""
    plus = [n for n, s in edit if s > 0]
    minus = [n for n, s in edit if s < 0]
    if not plus:
        raise ValueError("the official LFW selection needs a target attribute: give one with '+' (e.g. 'Senior+')")
    col = {n: j for j, n in enumerate(binary.names)}
    mem = binary.members
    a, t = plus[0], plus[1:]
    g = mem[:, col[binary.gender[col[a]]]]
    has = lambda names: np.all(mem[:, [col[n] for n in names]], axis=1) if names else np.ones(len(mem), bool)
    none = lambda names: ~np.any(mem[:, [col[n] for n in names]], axis=1) if names else np.ones(len(mem), bool)
    source = g & ~mem[:, col[a]] & none(t) & has(minus)
    target = g & mem[:, col[a]] & none(minus) & has(t)
    dist = np.sum(mem != np.asarray(query, bool)[None], axis=1)
    sets = []
    for mask in (target, source):
        if exclude is not None:
            mask = mask.copy()
            mask[exclude] = False
        idx = np.flatnonzero(mask)
        sets.append(idx[np.argsort(dist[idx], kind="stable")])
    tgt, src = sets
    return Neighbours(
        _ranked(tgt, dist, k, "with", allow_fewer), _ranked(src, dist, k, "without", allow_fewer), len(tgt), len(src)
    )


def official_binary_neighbours(
    attrs: np.ndarray,
    query: np.ndarray,
    edit: Sequence[tuple[int, int]],
    k: int = 100,
    *,
    same: int | Sequence[int] | None = None,
    exclude: int | None = None,
    allow_fewer: bool = False,
) -> Neighbours:
    """The official code's CelebA selection (deepmodels.py celeba_attributes.select): binary = score
    >= 0; a hard filter on the constraints (same: the query's side of those attributes, as demo2 holds
    gender and smile; then the edit's attributes: target on the edit's side, source on the other);
    ranked by numpy's argsort of the Minkowski p = 1 distance between the query's raw values and the
    0/1 binary attributes (NaN query entries left out). The input (exclude) is dropped after ranking."""
    attrs = np.asarray(attrs, np.float64)
    query = np.asarray(query, np.float64)
    binary = attrs >= 0
    known = ~np.isnan(query)
    held = _indices(same)
    if np.any(np.isnan(query[held])):
        raise ValueError("a same-attribute restriction needs that attribute's value for the input")
    base = [(j, bool(query[j] >= 0)) for j in held]
    sets = []
    for side in (1, -1):
        cons = base + [(i, (sign > 0) == (side > 0)) for i, sign in edit]
        ok = np.all([binary[:, j] == v for j, v in cons], axis=0)
        s = np.flatnonzero(ok)
        dist = np.sum(np.abs(query[known][None] - binary[s][:, known]), axis=1)
        ranked = s[np.argsort(dist)]
        sets.append(ranked[ranked != exclude] if exclude is not None else ranked)
    tgt, src = sets
    return Neighbours(
        _ranked(tgt, None, k, "with", allow_fewer), _ranked(src, None, k, "without", allow_fewer), len(tgt), len(src)
    )
