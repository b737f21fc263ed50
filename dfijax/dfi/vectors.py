"""Attribute vectors in VGG feature space, edit targets under each reference's scaling, and the
batched edit: images × alphas inverted in one engine call.

Per-image functions take unbatched features {tap: [h, w, C]}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from dfijax import invert as inv

SCALINGS = ("chainer", "paper", "beta", "none")
Features = Mapping[str, jax.Array]


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


def edit(
    loss: inv.FeatureLoss,
    variables: Mapping,
    images: jax.Array,
    w: Features,
    alphas: Sequence[float],
    config: inv.SolverConfig = inv.SolverConfig(),
    scaling: str = "chainer",
    x0: jax.Array | None = None,
    **invert_kwargs,
) -> tuple[jax.Array, inv.InversionResult]:
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
        {t: phi[t] for t in loss.taps}, {t: jnp.asarray(w[t]) for t in loss.taps}
    )
    targets = {t: v.reshape((b * a,) + v.shape[2:]) for t, v in targets.items()}
    start = images if x0 is None else jnp.asarray(x0, jnp.float32)
    r = inv.invert(loss, variables, targets, jnp.repeat(start, a, axis=0), config, **invert_kwargs)
    return r.images.reshape((b, a) + images.shape[1:]), r
