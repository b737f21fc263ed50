"""Features of neighbour sets: mean features in batches, per-image and per-vector disk caches, and
the VGG-feature distance used to report how far an edit moved an image."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.dfi.neighbours import Neighbours
from dfijax.dfi.vectors import uses_normalized_features


def mean_features(
    loss: inv.FeatureLoss,
    variables: Mapping,
    dataset: FaceDataset,
    indices: Sequence[int],
    size: int,
    normalize: bool = False,
    batch: int = 32,
    progress: Callable[[int], None] | None = None,
    feature_cache: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Mean φ over dataset images (running sums in batches, so K large images never sit in memory at
    once). normalize divides each image's layer by its L2 norm first. Returns {tap: [h, w, C]}.

    feature_cache: a folder (one per weights/taps/data/size, see `feature_cache_dir`) holding each
    image's features as float16 .npz; images found there are not run through the network again.
    """
    total: dict[str, np.ndarray] = {}
    idx = list(indices)
    cache = pathlib.Path(feature_cache) if feature_cache else None

    def path(i):
        return cache / f"{hashlib.sha1(dataset.ids[i].encode()).hexdigest()}.npz"

    def accumulate(feats: dict[str, np.ndarray]):
        for t in loss.taps:
            f = np.asarray(feats[t], np.float64)
            if normalize:
                f = f / (np.linalg.norm(f.reshape(len(f), -1), axis=1).reshape(-1, 1, 1, 1) + 1e-12)
            total[t] = total.get(t, 0.0) + f.sum(0)

    todo = idx
    if cache is not None:
        hits = [i for i in idx if path(i).is_file()]
        for start in range(0, len(hits), batch):
            loaded = [np.load(path(i)) for i in hits[start : start + batch]]
            accumulate({t: np.stack([z[t] for z in loaded]) for t in loss.taps})
            if progress:
                progress(len(loaded))
        todo = [i for i in idx if not path(i).is_file()]
        cache.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        imgs = dataset.images(chunk, size)
        if len(chunk) < batch:  # pad to a fixed batch: one compilation
            imgs = np.concatenate([imgs, np.zeros((batch - len(chunk),) + imgs.shape[1:], imgs.dtype)])
        feats = {
            t: np.asarray(v[: len(chunk)]) for t, v in inv.feature_targets(loss, variables, jnp.asarray(imgs)).items()
        }
        accumulate(feats)
        if cache is not None:
            for k, i in enumerate(chunk):
                tmp = path(i).with_name(path(i).name + ".tmp.npz")
                np.savez(tmp, **{t: feats[t][k].astype(np.float16) for t in loss.taps})
                os.replace(tmp, path(i))
        if progress:
            progress(len(chunk))
    return {t: (v / len(idx)).astype(np.float32) for t, v in total.items()}


def feature_cache_dir(
    root: str | os.PathLike, loss: inv.FeatureLoss, weights_meta: Mapping[str, str], dataset: FaceDataset, size: int
) -> pathlib.Path:
    """The per-image feature cache folder for these weights, taps, pooling, data, crop and size."""
    key = cache_key(
        weights=weights_id(weights_meta),
        taps=loss.taps,
        pooling=loss.model.pooling,
        pool_rounding=loss.model.pool_rounding,
        dtype=str(loss.model.dtype),
        data=dataset.name,
        crop=getattr(dataset, "crop", None),
        size=size,
    )
    return pathlib.Path(root) / f"features-{key}"


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def weights_id(meta: Mapping[str, str]) -> str:
    """What identifies weights for caching: the source file's hash, or the random seed (and a Caffe mean
    other than the file's, see weights.with_caffe_mean)."""
    base = meta.get("source_sha256") or f"random-seed{meta.get('seed', '?')}"
    return f"{base}-mean{meta['caffe_mean']}" if meta.get("caffe_mean") else base


def attribute_vector_cached(
    loss: inv.FeatureLoss,
    variables: Mapping,
    weights_meta: Mapping[str, str],
    dataset: FaceDataset,
    neighbours: Neighbours,
    size: int,
    scaling: str,
    cache_dir: str | os.PathLike | None,
    batch: int = 32,
    progress: Callable[[int], None] | None = None,
    feature_cache: str | os.PathLike | None = None,
) -> tuple[dict[str, np.ndarray], bool]:
    """w = mean φ(target set) − mean φ(source set) for these neighbours, from the cache when the same
    weights, taps, pooling, data, size, neighbour sets and normalisation were seen before.
    Returns (w, whether it came from the cache)."""
    normalize = uses_normalized_features(scaling)
    key = cache_key(
        weights=weights_id(weights_meta),
        taps=loss.taps,
        pooling=loss.model.pooling,
        pool_rounding=loss.model.pool_rounding,
        data=dataset.name,
        crop=getattr(dataset, "crop", None),
        size=size,
        normalize=normalize,
        target=[dataset.ids[i] for i in neighbours.target],
        source=[dataset.ids[i] for i in neighbours.source],
    )
    path = pathlib.Path(cache_dir) / f"attrvec-{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return {t: z[t] for t in loss.taps}, True
    mt = mean_features(loss, variables, dataset, neighbours.target, size, normalize, batch, progress, feature_cache)
    ms = mean_features(loss, variables, dataset, neighbours.source, size, normalize, batch, progress, feature_cache)
    w = {t: mt[t] - ms[t] for t in loss.taps}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **w)
        os.replace(tmp, path)
    return w, False


def feature_distance(loss: inv.FeatureLoss, variables: Mapping, a: jax.Array, b: jax.Array) -> np.ndarray:
    """Relative VGG-feature distance ‖φ(a) − φ(b)‖ / ‖φ(b)‖ over the loss's taps, per image: [B]."""
    fa = inv.feature_targets(loss, variables, a)
    fb = inv.feature_targets(loss, variables, b)
    num = sum(jnp.sum(jnp.square(fa[t] - fb[t]).reshape(len(a), -1), axis=1) for t in loss.taps)
    den = sum(jnp.sum(jnp.square(fb[t]).reshape(len(a), -1), axis=1) for t in loss.taps)
    return np.asarray(jnp.sqrt(num / jnp.maximum(den, 1e-20)))
