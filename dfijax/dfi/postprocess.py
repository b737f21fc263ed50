"""Post-processing of DFI edits: colour match, reconstruction-residual correction, mask blend and
full-resolution application. Images are [H, W, 3] float32 in [0, 1]."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def match_color(img: jax.Array, ref: jax.Array, eps: float = 1e-6, per_channel: bool = True) -> jax.Array:
    """Mean/std colour match of img to ref ([H, W, 3]): per channel (chainer-dfi), or one mean and std
    over all pixels and channels (per_channel=False, the official DFI code's color_match)."""
    axes = (0, 1) if per_channel else (0, 1, 2)
    mu, sd = img.mean(axes, keepdims=True), img.std(axes, keepdims=True)  # [1, 1, 3] or [1, 1, 1]
    rmu, rsd = ref.mean(axes, keepdims=True), ref.std(axes, keepdims=True)
    return (img - mu) / (sd + eps) * rsd + rmu


def subtract_residual(edited: jax.Array, reconstruction: jax.Array, original: jax.Array) -> jax.Array:
    """Remove what inversion alone changes: edited − (reconstruction − original), where reconstruction
    inverts the unedited φ(original) under the same settings."""
    return edited - (reconstruction - original)


def mask_blend(edited: jax.Array, original: jax.Array, mask: jax.Array) -> jax.Array:
    """mask [H, W] or [H, W, 1] in [0, 1]: 1 takes the edit, 0 keeps the original. edited and original:
    [..., H, W, 3] of the same rank (e.g. [B, A, H, W, 3] and [B, 1, H, W, 3])."""
    m = mask if mask.ndim == 3 else mask[..., None]
    m = m.reshape((1,) * (edited.ndim - 3) + m.shape)  # [1, ..., H, W, 1]
    return m * edited + (1.0 - m) * original


def apply_at_full_resolution(original_full: jax.Array, original_small: jax.Array, edited_small: jax.Array) -> jax.Array:
    """Add the edit computed at working size (edited − original, upsampled) to the full-size original."""
    delta = edited_small - original_small
    up = jax.image.resize(delta, original_full.shape, method="linear")
    return jnp.clip(original_full + up, 0.0, 1.0)


def match_color_global(edited: jax.Array, original: jax.Array, eps: float = 1e-8) -> jax.Array:
    """The official DFI code's colour match (utils.color_match): one mean and std per image over all
    pixels and channels, (B − m_B)·(s_A + eps)/(s_B + eps) + m_A. edited [..., H, W, 3], original [H, W, 3]."""
    m, s = original.mean(), original.std()
    axes = (-3, -2, -1)
    m2, s2 = edited.mean(axes, keepdims=True), edited.std(axes, keepdims=True)
    return (edited - m2) * (s + eps) / (s2 + eps) + m
