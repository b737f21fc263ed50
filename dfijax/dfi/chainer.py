"""chainer-dfi's (dsanno/chainer-dfi) own procedures around the edit: its neighbour sets (CelebA's
attribute filter ranked by pixel distance, LFW's thresholds ranked by attribute distance), its crop
and bilinear resize of the dataset images, its per-channel colour adjustment, the residual correction
from snapshots of a reconstruction, and its 8-bit output.

Images are [..., H, W, 3] RGB in [0, 1] unless a docstring says 0-255. chainer-dfi works on BGR
0-255 values minus the Caffe mean; every step here is invariant to that affine change (the colour
adjustment is affine-equivariant, differences drop the mean, distances only scale), so the results
are the same up to float rounding.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.data.celeba import CelebAFolder
from dfijax.data.lfw import LFWFolder
from dfijax.dfi.neighbours import NeighbourError, Neighbours

# (left, top, right, bottom), PIL crop convention: README's `-c 19,39,159,179` on the 178×218 aligned CelebA
# image for the source and target images, and train_lfw.py's box on the 250×250 LFW image (input and sets).
CELEBA_BOX: tuple[int, int, int, int] = (19, 39, 159, 179)
LFW_BOX: tuple[int, int, int, int] = (40, 20, 210, 190)
HAS, LACKS = 0.5, -0.5  # LFW: an attribute is on at >= 0.5 and off below -0.5


def channel_stats(x: jax.Array | np.ndarray) -> tuple[Any, Any]:
    """Per-channel spatial mean and (population) std of [..., H, W, 3]: two [..., 1, 1, 3] arrays."""
    return x.mean((-3, -2), keepdims=True), x.std((-3, -2), keepdims=True)


def adjust_color(x: jax.Array | np.ndarray, mean: Any, std: Any) -> Any:
    """Give x [..., H, W, 3] the per-channel mean and std (`channel_stats` of the input), without an
    epsilon: (x − m)/s·std + mean, m and s x's own per-channel statistics."""
    m, s = channel_stats(x)
    return (x - m) / s * std + mean


def residuals_from_snapshots(
    snapshots: np.ndarray, image: np.ndarray, color: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """The stored residuals: each snapshot [S, H, W, 3] of the reconstruction of the unedited features,
    colour-adjusted (`color`, e.g. `adjust_color` to the input's statistics; None: as is), minus the
    input image [H, W, 3]."""
    z = np.asarray(snapshots, np.float32)
    if color is not None:
        z = np.asarray(color(z), np.float32)
    return z - np.asarray(image, np.float32)[None]


def nearest_residual(residuals: np.ndarray, diff: np.ndarray) -> int:
    """Index of the residual [S, H, W, 3] nearest in L2 to diff [H, W, 3] (the first one on a tie)."""
    r = np.asarray(residuals, np.float64)
    d = np.sqrt(np.sum(np.square(r - np.asarray(diff, np.float64)[None]).reshape(len(r), -1), axis=1))
    return int(np.argmin(d))


def subtract_nearest_residual(edited: np.ndarray, image: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Each colour-adjusted edit [A, H, W, 3] minus the stored residual nearest to its own difference
    from the input image [H, W, 3] (chosen per edit)."""
    edited = np.asarray(edited, np.float32)
    image = np.asarray(image, np.float32)
    return np.stack([z - residuals[nearest_residual(residuals, z - image)] for z in edited])


def diff8_output(original: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """chainer-dfi's output: diff [h, w, 3] (edit − input, 0-255 scale) + 128, clipped to [0, 255] and
    truncated to 8 bits, resized to the original's size with PIL bilinear, added to the original
    [H, W, 3] uint8 as integers, minus 128, clipped: [H, W, 3] uint8."""
    original = np.asarray(original)
    if original.dtype != np.uint8 or original.ndim != 3 or original.shape[-1] != 3:
        raise ValueError(f"original must be [H, W, 3] uint8, got {original.shape} {original.dtype}")
    d8 = (np.asarray(diff, np.float32) + 128).clip(0, 255).astype(np.uint8)
    up = Image.fromarray(d8).resize((original.shape[1], original.shape[0]), Image.BILINEAR)
    out = original.astype(np.int32) + np.asarray(up, np.int32) - 128
    return out.clip(0, 255).astype(np.uint8)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] float images -> uint8 (rounded), the 8-bit original the output is added to."""
    return np.round(np.clip(np.asarray(images, np.float32), 0, 1) * 255).astype(np.uint8)


def celeba_sets(
    attrs: np.ndarray,
    edit: Sequence[tuple[int, int]],
    include: Sequence[int] = (),
    exclude: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """extract_image.py's lists: keep the rows with attr·flag >= 0 for every attribute (flag +1 for
    `include`, −1 for `exclude`, 0 elsewhere; exclude wins); of those, target = every edited attribute
    on (attr >= 0; for an (i, −1) edit, off: attr < 0), source = none of them. attrs: [N, A] (±1).
    Returns (target indices, source indices), in table order."""
    attrs = np.asarray(attrs)
    flag = np.zeros(attrs.shape[1], np.int32)
    flag[list(include)] = 1
    flag[list(exclude)] = -1
    kept = np.all(attrs * flag >= 0, axis=1)
    on = np.stack([(attrs[:, i] >= 0) if sign > 0 else (attrs[:, i] < 0) for i, sign in edit], axis=1)
    return np.flatnonzero(kept & on.all(1)), np.flatnonzero(kept & ~on.any(1))


def pixel_sse(image: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Sum of squared differences in the 0-255 scale between image [H, W, 3] and each of
    candidates [n, H, W, 3] (all in [0, 1]): [n]."""
    d = (np.asarray(candidates, np.float64) - np.asarray(image, np.float64)[None]) * 255.0
    return np.sum(np.square(d).reshape(len(d), -1), axis=1)


def rank_by_pixels(
    indices: np.ndarray,
    image: np.ndarray,
    load: Callable[[Sequence[int]], np.ndarray],
    k: int,
    batch: int = 32,
) -> np.ndarray:
    """train.py's rank_image: when more than k images qualify, the k with the smallest pixel SSE to
    the input image [H, W, 3] (np.argsort's order), else all of them in their order. load(indices) ->
    [n, H, W, 3] images at the input's size."""
    indices = np.asarray(indices, np.int64)
    if len(indices) <= k:
        return indices
    sse = np.concatenate(
        [pixel_sse(image, load(indices[s : s + batch].tolist())) for s in range(0, len(indices), batch)]
    ).astype(np.float32)
    return indices[np.argsort(sse)[:k]]


def lfw_sets(attrs: np.ndarray, query: np.ndarray, edit: Sequence[tuple[int, int]], k: int) -> tuple[np.ndarray, ...]:
    """train_lfw.py's nearest_attributes for the target (edit as given) and the source (each flag
    reversed): the rows with every flagged attribute on (>= 0.5) or off (< −0.5), ranked by the L2
    distance of all attributes to the query (NaN query entries left out), np.argsort's order, first k;
    the input itself is not excluded. Returns (target, source, n_target_available, n_source_available)."""
    attrs = np.asarray(attrs, np.float32)
    query = np.asarray(query, np.float32)
    known = ~np.isnan(query)
    dist = np.linalg.norm(attrs[:, known] - query[known], axis=1)
    out = []
    for reverse in (False, True):
        selected = np.ones(len(attrs), bool)
        for i, sign in edit:
            on = (sign > 0) != reverse
            selected &= attrs[:, i] >= HAS if on else attrs[:, i] < LACKS
        idx = np.flatnonzero(selected)
        out.append((idx[np.argsort(dist[idx])[:k]], len(idx)))
    (t, nt), (s, ns) = out
    return t, s, nt, ns


def select_neighbours(
    data: FaceDataset,
    image: np.ndarray,
    query: np.ndarray,
    edit: Sequence[tuple[int, int]],
    k: int,
    *,
    include: Sequence[str] = (),
    exclude_attrs: Sequence[str] = (),
    exclude: int | None = None,
    allow_fewer: bool = False,
    batch: int = 32,
) -> Neighbours:
    """chainer-dfi's neighbour sets for one input: binary datasets (CelebA-style) by `celeba_sets` with
    the include/exclude attribute names, then `rank_by_pixels` on data's images at the input's size;
    continuous ones (LFW) by `lfw_sets`. exclude: a dataset index never chosen (None: the input may be
    its own neighbour, as in chainer-dfi). Fewer than k raise NeighbourError unless allow_fewer."""
    attrs = np.asarray(data.attrs, np.float32)
    if data.binary:
        inc = [data.attr_index(n) for n in include]
        exc = [data.attr_index(n) for n in exclude_attrs]
        target, source = celeba_sets(attrs, edit, inc, exc)
        if exclude is not None:
            target, source = target[target != exclude], source[source != exclude]
        nt, ns = len(target), len(source)
        size = np.asarray(image).shape[0]
        load = lambda idx: data.images(idx, size)  # noqa: E731
        target = rank_by_pixels(target, image, load, k, batch)
        source = rank_by_pixels(source, image, load, k, batch)
    else:
        if include or exclude_attrs:
            raise ValueError("include/exclude filter binary (CelebA-style) attributes; leave them empty for LFW")
        if exclude is not None:
            attrs = attrs.copy()
            attrs[exclude] = np.nan  # NaN rows fail both thresholds
        target, source, nt, ns = lfw_sets(attrs, query, edit, k)
    for n, what in ((nt, "with"), (ns, "without")):
        if n == 0 or (n < k and not allow_fewer):
            raise NeighbourError(
                f"only {n} images {what} the edit qualify (K = {k}); lower K, use a larger dataset"
                + (", or allow fewer neighbours" if n else ", or loosen include/exclude")
            )
    return Neighbours(np.asarray(target, np.int64), np.asarray(source, np.int64), int(nt), int(ns))


def reconstruction_snapshots(
    loss: inv.FeatureLoss,
    variables: Mapping,
    images: jax.Array,
    x0: jax.Array,
    solver: inv.SolverConfig,
    every: int,
    shard: bool = False,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Invert the unedited features φ(images) from x0 (the edits' own start) and keep the current
    iterate every `every` iterations: [S, B, H, W, 3], S = solver.maxiter // every (train.py's 600
    iterations, a snapshot every 20). progress(iteration) is called with each snapshot."""
    targets = inv.feature_targets(loss, variables, jnp.asarray(images, jnp.float32))
    snaps: list[np.ndarray] = []

    def keep(k: int, x: jax.Array) -> None:
        if k % every == 0:  # invert also reports the last iteration
            snaps.append(np.asarray(x))
            if progress is not None:
                progress(k)

    inv.invert(
        loss, variables, targets, jnp.asarray(x0, jnp.float32), solver, check_every=every, shard=shard, snapshot=keep
    )
    if not snaps:
        raise ValueError(f"no snapshot: the solve ran {solver.maxiter} iterations, fewer than every={every}")
    return np.stack(snaps)


@dataclasses.dataclass
class ReferenceCrop(FaceDataset):
    """A CelebA or LFW folder read as chainer-dfi reads its images: PIL crop of `box` (left, top,
    right, bottom) on the 8-bit RGB image, PIL bilinear resize to size×size. `crop` keeps the box in
    the base dataset's own convention (for caches and eye templates)."""

    base: FaceDataset | None = None
    box: tuple[int, int, int, int] = (0, 0, 1, 1)
    crop: tuple[int, int, int, int] | None = None

    def path(self, index: int) -> pathlib.Path:
        folder = getattr(self.base, "image_dir", None) or getattr(self.base, "root")
        return pathlib.Path(folder) / self.ids[index]

    def load(self, index: int, size: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range (dataset has {len(self)})")
        with Image.open(self.path(index)) as im:
            im = im.convert("RGB").crop(self.box).resize((size, size), Image.BILINEAR)
            return np.asarray(im, np.float32) / 255.0


def reference_crop(data: FaceDataset) -> FaceDataset:
    """data read with chainer-dfi's box and bilinear resize: CelebA folders with `CELEBA_BOX`, LFW
    folders with `LFW_BOX`; any other dataset (synthetic, tfds) as it is."""

    if isinstance(data, ReferenceCrop):
        return data
    if isinstance(data, CelebAFolder):
        left, top, right, bottom = CELEBA_BOX
        box, crop = CELEBA_BOX, (top, left, bottom - top, right - left)  # CelebAFolder's (top, left, h, w)
    elif isinstance(data, LFWFolder):
        box = crop = LFW_BOX
    else:
        return data
    return ReferenceCrop(
        name=f"{data.name}-chainer",
        attr_names=data.attr_names,
        attrs=data.attrs,
        ids=data.ids,
        binary=data.binary,
        gender=data.gender,
        base=data,
        box=box,
        crop=crop,
    )
