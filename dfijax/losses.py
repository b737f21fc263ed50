"""Losses on VGG features and images. All pure and jit-able; per-image (unbatched) unless noted.

Feature maps are [h, w, C]; images are [H, W, 3] float32 RGB in [0, 1]. `vmap` for batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax.shapes import FeatureMap, GramMatrix, Image, Scalar, Vector

Features = Mapping[str, jax.Array]
REDUCTIONS = ("sum", "mean", "sum/taps")


def check_weights(**weights: float | None) -> None:
    """A one-line ValueError for the first weight that is not a finite number >= 0 (None: unset, fine).
    Every config that holds loss weights calls it, so every entry point refuses the same values."""
    for name, w in weights.items():
        if w is None:
            continue
        try:
            ok = bool(np.isfinite(w)) and float(w) >= 0.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name} must be a finite number >= 0, got {w!r}")


def _weights(layers: Sequence[str], weights: Sequence[float] | Mapping[str, float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(layers)
    if isinstance(weights, Mapping):
        return [float(weights.get(l, 0.0)) for l in layers]
    if len(weights) != len(layers):
        raise ValueError(f"{len(weights)} layer weights for {len(layers)} layers {tuple(layers)}")
    return [float(w) for w in weights]


def feature_mse(
    feats: Features,
    targets: Features,
    layers: Sequence[str],
    weights: Sequence[float] | Mapping[str, float] | None = None,
    reduction: str = "mean",
) -> Scalar:
    """Σ_l w_l · d(φ_l, t_l) with d the mean ("mean", Chainer DFI) or half the sum ("sum": ½‖·‖², DFI
    paper) of squared differences; "sum/taps" is ½‖·‖² divided by the number of layers (the official
    DFI code's one target of all blobs: `c_loss * weight / len(target_blob_names)`)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    total = jnp.zeros((), jnp.float32)
    per_tap = 1.0 / len(layers) if reduction == "sum/taps" else 1.0
    for layer, w in zip(layers, _weights(layers, weights)):
        sq = jnp.square(feats[layer].astype(jnp.float32) - targets[layer].astype(jnp.float32))
        total = total + w * (jnp.mean(sq) if reduction == "mean" else 0.5 * per_tap * jnp.sum(sq))
    return total


def content_loss(feats: Features, targets: Features, layer: str = "relu4_2", weight: float = 1.0) -> Scalar:
    """Gatys' content loss: ½ Σ (F − P)² on one layer."""
    return weight * feature_mse(feats, targets, (layer,), reduction="sum")


def feature_vector(feats: Features, layers: Sequence[str], normalize: bool = False, eps: float = 1e-12) -> Vector:
    """The DFI feature vector φ(x): the layers flattened and concatenated, [D].

    normalize=True divides each layer's block by its L2 norm first (the DFI paper's variant), so that
    no layer dominates by size.
    """
    parts = []
    for layer in layers:
        v = feats[layer].astype(jnp.float32).reshape(-1)
        if normalize:
            v = v / (jnp.linalg.norm(v) + eps)
        parts.append(v)
    return jnp.concatenate(parts)


def gram(feat: FeatureMap, normalize: str = "hw") -> GramMatrix:
    """Gram matrix of a [h, w, C] feature map, [C, C].

    normalize: "hw" divides by h·w (Gatys' reference notebook, where the 1/n² is folded into the layer
    weights); "hwc" divides by h·w·C (jcjohnson/neural-style); "none" keeps the raw sum.
    """
    h, w, c = feat.shape
    f = feat.astype(jnp.float32).reshape(h * w, c)
    g = f.T @ f
    if normalize == "hw":
        return g / (h * w)
    if normalize == "hwc":
        return g / (h * w * c)
    if normalize == "none":
        return g
    raise ValueError(f"gram normalize must be 'hw', 'hwc' or 'none', got {normalize!r}")


def style_loss(
    feats: Features,
    target_grams: Mapping[str, jax.Array],
    layers: Sequence[str],
    weights: Sequence[float] | Mapping[str, float] | None = None,
    normalize: str = "hw",
) -> jax.Array:
    """Σ_l w_l · mean((G_l(x) − A_l)²), A_l the style image's Gram matrices (see `gram`)."""
    total = jnp.zeros((), jnp.float32)
    for layer, w in zip(layers, _weights(layers, weights)):
        total = total + w * jnp.mean(jnp.square(gram(feats[layer], normalize) - target_grams[layer]))
    return total


def gatys_style_weights(layers: Sequence[str], channels: Mapping[str, int]) -> list[float]:
    """The Gatys reference notebook's per-layer weights 1e3 / n² (n = channels of the layer)."""
    return [1e3 / channels[l] ** 2 for l in layers]


def _diffs(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    dx = x[:-1, 1:, :] - x[:-1, :-1, :]
    dy = x[1:, :-1, :] - x[:-1, :-1, :]
    return dx, dy


def tv_squared(x: Image) -> Scalar:
    """Mean of squared horizontal and vertical neighbour differences, [H, W, C] -> scalar (Chainer DFI).

    Pixel scale: whatever x is in ([0, 1] here); Chainer's weight 100 was for 0-255 inputs
    (i.e. 100 · 255² ≈ 6.5e6 on [0, 1] images).
    """
    return jnp.mean(jnp.square(x[:, 1:] - x[:, :-1])) + jnp.mean(jnp.square(x[1:] - x[:-1]))


def tv_beta(x: Image, beta: float = 2.0, scale: float = 255.0, eps: float = 1e-8) -> Scalar:
    """Σ_ij ((x_i,j+1 − x_ij)² + (x_i+1,j − x_ij)²)^(β/2) on the image times `scale` (Mahendran &
    Vedaldi's TV^β as used by the official DFI code).

    Pixel-scale convention: images here are in [0, 1], the DFI code works on 0-255 values, so the
    differences are multiplied by `scale` = 255 first; its λ = 0.001 with β = 2 then means the same
    here. eps keeps the gradient finite for β < 2 on flat regions.
    """
    dx, dy = _diffs(x * scale)
    sq = jnp.square(dx) + jnp.square(dy)  # per channel, as the DFI code does
    if beta == 2.0:
        return jnp.sum(sq)
    return jnp.sum(jnp.power(sq + eps, beta / 2.0))


def tv_norm(x: Image, beta: float = 2.0, scale: float = 255.0, floor: float = 1e-3) -> Scalar:
    """The official DFI code's TV^β (`totalvariation.tv_norm`, naive operator) on the image times `scale`:
    Σ max(Δx² + Δy², floor)^(β/2) per channel over the top-left (H−1)×(W−1) grid. Its gradient is the
    reference's: the floor is left out of the derivative of the squared differences, (β/2)·max(·,
    floor)^(β/2−1)·∇(Δx² + Δy²), so flat regions still pull on their pixels as they do there."""
    dx, dy = _diffs(x.astype(jnp.float32) * scale)
    sq = jnp.square(dx) + jnp.square(dy)
    floored = sq + jax.lax.stop_gradient(jnp.maximum(sq, floor) - sq)
    return jnp.sum(floored ** (beta / 2.0))


def tv_per_pixel(x: Image, scale: float = 255.0) -> Scalar:
    """(Σ Δx² + Σ Δy²) / (H·W·C) on the image times `scale` (chainer-dfi's total variation: squared
    neighbour differences summed, divided by the image's element count, on 0-255 values)."""
    d = x.astype(jnp.float32) * scale
    return (jnp.sum(jnp.square(d[:, 1:] - d[:, :-1])) + jnp.sum(jnp.square(d[1:] - d[:-1]))) / x.size


def tv_anisotropic(x: Image) -> Scalar:
    """Σ |Δx| + |Δy| mean-normalised (the DTN paper's L_TV)."""
    return jnp.mean(jnp.abs(x[:, 1:] - x[:, :-1])) + jnp.mean(jnp.abs(x[1:] - x[:-1]))


def psnr(x: jax.Array, y: jax.Array, max_value: float = 1.0) -> Scalar:
    """Peak signal-to-noise ratio in dB over all axes."""
    mse = jnp.mean(jnp.square(x.astype(jnp.float32) - y.astype(jnp.float32)))
    return 10.0 * jnp.log10(max_value**2 / jnp.maximum(mse, 1e-20))
