"""Deep Feature Interpolation (Upchurch et al. 2016; chainer-dfi): attribute vectors in VGG feature
space and edits by inverting φ(x) + α·w.

Per-image functions take unbatched features {tap: [h, w, C]}; `edit` batches images × alphas into one
engine call.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import invert as inv

SCALINGS = ("chainer", "paper", "beta", "none")
Features = Mapping[str, jax.Array]


class NeighbourError(ValueError):
    """Too few images with (or without) the attribute; the message gives the counts."""


def _unknown(name: str, names: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ValueError(f"unknown attribute {name!r}{hint}; valid: {', '.join(names)}")


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
            raise _unknown(name, names)
        out.append((list(names).index(name), sign))
    if not out:
        raise ValueError(f"empty edit spec {spec!r}; e.g. 'Smiling+' or 'Smiling+ Mouth_Closed-'")
    if len({i for i, _ in out}) != len(out):
        raise ValueError(f"an attribute appears twice in {spec!r}")
    return tuple(out)


def parse_attrs(text: str, names: Sequence[str]) -> np.ndarray:
    """Attributes given by hand for an own photo, 'Young=1,Male=-1' -> [A] float32 with NaN for the
    attributes not given (they are left out of the neighbour distance)."""
    q = np.full(len(names), np.nan, np.float32)
    for item in filter(None, re.split(r"[\s,]+", text.strip())):
        if "=" not in item:
            raise ValueError(f"attribute {item!r} needs a value, e.g. {item}=1")
        name, value = item.split("=", 1)
        if name not in names:
            raise _unknown(name, names)
        try:
            q[list(names).index(name)] = float(value)
        except ValueError:
            raise ValueError(f"attribute {name} has value {value!r}, which is not a number") from None
    return q


@dataclasses.dataclass(frozen=True)
class Neighbours:
    """Indices into the dataset, nearest first, and how many qualified before truncation to K."""

    target: np.ndarray
    source: np.ndarray
    n_target_available: int
    n_source_available: int


def select_neighbours(attrs: np.ndarray, query: np.ndarray, edit: Sequence[tuple[int, int]], k: int = 100, *,
                      has: float = 0.5, lacks: float = -0.5, metric: str = "l2", same: int | None = None,
                      exclude: int | None = None, allow_fewer: bool = False) -> Neighbours:
    """Target set: images with the edit (for each (i, +1): attr_i >= has; for (i, −1): attr_i < lacks);
    source set: images with the opposite. Both ranked by the distance of the remaining attributes to
    the query (L2, or Hamming on signs for binary attributes; NaN query entries are ignored).

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


def attribute_vector(target_feats: Features, source_feats: Features, normalize: bool = False) -> dict[str, jax.Array]:
    """w = mean φ(target set) − mean φ(source set), per tap. Features are [K, h, w, C]; with normalize
    each image's layer is divided by its L2 norm first (the paper's normalised features)."""

    def mean(f):
        f = f.astype(jnp.float32)
        if normalize:
            f = f / (jnp.linalg.norm(f.reshape(f.shape[0], -1), axis=1).reshape(-1, 1, 1, 1) + 1e-12)
        return jnp.mean(f, axis=0)

    return {t: mean(target_feats[t]) - mean(source_feats[t]) for t in target_feats}


def uses_normalized_features(scaling: str) -> bool:
    """Whether `attribute_vector` should normalise features for this scaling."""
    _check_scaling(scaling)
    return scaling == "paper"


def _check_scaling(scaling: str) -> None:
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; use one of {SCALINGS}")


def edit_targets(phi_x: Features, w: Features, alphas: jax.Array, scaling: str = "chainer") -> dict[str, jax.Array]:
    """Targets for one image and A alphas: {tap: [A, h, w, C]}.

    chainer: φ_l(x) + α·‖φ_l(x)‖·w_l/‖w_l‖ per layer (chainer-dfi).
    paper:   w from normalised features, w/‖w‖ over all layers; the target φ̂(x) + α·w/‖w‖ taken
             back to raw scale per layer: φ_l(x) + α·‖φ_l(x)‖·w_l/‖w‖ (the loss stays in raw units).
    beta:    φ(x) + α·w/mean(w²) over all layers (the official code's "beta" scaling; α in 0–1).
    none:    φ(x) + α·w.
    """
    _check_scaling(scaling)
    alphas = jnp.asarray(alphas, jnp.float32)
    taps = list(phi_x)
    if scaling == "paper":
        total = jnp.sqrt(sum(jnp.sum(jnp.square(w[t])) for t in taps)) + 1e-12
    if scaling == "beta":
        n = sum(w[t].size for t in taps)
        msq = sum(jnp.sum(jnp.square(w[t])) for t in taps) / n + 1e-30
    out = {}
    for t in taps:
        f, d = phi_x[t].astype(jnp.float32), w[t].astype(jnp.float32)
        if scaling == "chainer":
            d = jnp.linalg.norm(f) * d / (jnp.linalg.norm(d) + 1e-12)
        elif scaling == "paper":
            d = jnp.linalg.norm(f) * d / total
        elif scaling == "beta":
            d = d / msq
        out[t] = f[None] + alphas[:, None, None, None] * d[None]
    return out


def edit(loss: inv.FeatureLoss, variables: Mapping, images: jax.Array, w: Features, alphas: Sequence[float],
         config: inv.SolverConfig = inv.SolverConfig(), scaling: str = "chainer", x0: jax.Array | None = None,
         **invert_kwargs) -> tuple[jax.Array, inv.InversionResult]:
    """Edit B images by their attribute vectors at A alphas in one engine call.

    images: [B, H, W, 3] in [0, 1]; w: {tap: [B, h, w, C]} (one vector per image: neighbours differ);
    x0: [B, H, W, 3] start (default the images). Returns ([B, A, H, W, 3] edited images, the engine's
    result with a leading B·A axis, image-major).
    """
    images = jnp.asarray(images, jnp.float32)
    b, a = images.shape[0], len(alphas)
    if a == 0:
        raise ValueError("give at least one alpha")
    for t in loss.taps:
        if t not in w:
            raise ValueError(f"attribute vector lacks tap {t!r}; compute it with the same taps as the loss")
        if w[t].shape[0] != b:
            raise ValueError(f"attribute vector for {t!r} has {w[t].shape[0]} rows for {b} images")
    phi = inv.feature_targets(loss, variables, images)
    targets = jax.vmap(lambda p, d: edit_targets(p, d, jnp.asarray(alphas), scaling))(
        {t: phi[t] for t in loss.taps}, {t: jnp.asarray(w[t]) for t in loss.taps})
    targets = {t: v.reshape((b * a,) + v.shape[2:]) for t, v in targets.items()}
    start = images if x0 is None else jnp.asarray(x0, jnp.float32)
    r = inv.invert(loss, variables, targets, jnp.repeat(start, a, axis=0), config, **invert_kwargs)
    return r.images.reshape((b, a) + images.shape[1:]), r


# ------------------------------------------------------------------------------ post-processing


def match_color(img: jax.Array, ref: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Per-channel mean/std colour match of img to ref ([H, W, 3]), as chainer-dfi does."""
    mu, sd = img.mean((0, 1)), img.std((0, 1))
    rmu, rsd = ref.mean((0, 1)), ref.std((0, 1))
    return (img - mu) / (sd + eps) * rsd + rmu


def subtract_residual(edited: jax.Array, reconstruction: jax.Array, original: jax.Array) -> jax.Array:
    """Remove what inversion alone changes: edited − (reconstruction − original), where reconstruction
    inverts the unedited φ(original) under the same settings."""
    return edited - (reconstruction - original)


def mask_blend(edited: jax.Array, original: jax.Array, mask: jax.Array) -> jax.Array:
    """mask [H, W] or [H, W, 1] in [0, 1]: 1 takes the edit, 0 keeps the original."""
    m = mask if mask.ndim == 3 else mask[..., None]
    return m * edited + (1.0 - m) * original


def apply_at_full_resolution(original_full: jax.Array, original_small: jax.Array, edited_small: jax.Array) -> jax.Array:
    """Add the edit computed at working size (edited − original, upsampled) to the full-size original."""
    delta = edited_small - original_small
    up = jax.image.resize(delta, original_full.shape, method="linear")
    return jnp.clip(original_full + up, 0.0, 1.0)
