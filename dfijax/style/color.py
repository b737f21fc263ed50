"""Colour control for style transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
Transfer"): luminance-only transfer and colour histogram (mean/covariance) matching. Images are
[H, W, 3] float32 RGB in [0, 1]."""

from __future__ import annotations

import jax.numpy as jnp

# NTSC YIQ; Y = .299R + .587G + .114B.
_RGB2YIQ = jnp.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
_YIQ2RGB = jnp.linalg.inv(_RGB2YIQ)


def rgb_to_yiq(x: jnp.ndarray) -> jnp.ndarray:
    return x @ _RGB2YIQ.T


def yiq_to_rgb(x: jnp.ndarray) -> jnp.ndarray:
    return x @ _YIQ2RGB.T


def luminance(x: jnp.ndarray) -> jnp.ndarray:
    """[H, W, 3] -> [H, W]."""
    return rgb_to_yiq(x)[..., 0]


def match_luminance(style: jnp.ndarray, content: jnp.ndarray, eps: float = 1e-6) -> jnp.ndarray:
    """The style image's luminance shifted and scaled to the content's mean/std, as a grey RGB image
    (Y in every channel) ready for the network."""
    ls, lc = luminance(style), luminance(content)
    y = (ls - ls.mean()) / (ls.std() + eps) * lc.std() + lc.mean()
    return jnp.repeat(y[..., None], 3, axis=-1)


def recombine_luminance(stylised: jnp.ndarray, content: jnp.ndarray) -> jnp.ndarray:
    """The stylised image's luminance with the content's chroma (I, Q), back in RGB, clipped."""
    yiq = rgb_to_yiq(content).at[..., 0].set(luminance(stylised))
    return jnp.clip(yiq_to_rgb(yiq), 0.0, 1.0)


def _sqrtm(c: jnp.ndarray) -> jnp.ndarray:
    w, v = jnp.linalg.eigh(c)
    return (v * jnp.sqrt(jnp.maximum(w, 0.0))) @ v.T


def _invsqrtm(c: jnp.ndarray, eps: float) -> jnp.ndarray:
    w, v = jnp.linalg.eigh(c)
    return (v / jnp.sqrt(jnp.maximum(w, 0.0) + eps)) @ v.T


def match_color_histogram(source: jnp.ndarray, target: jnp.ndarray, mode: str = "chol", eps: float = 1e-5) -> jnp.ndarray:
    """Transform source's colours linearly so their mean and covariance match target's.

    mode: "chol": A = L_t L_s⁻¹ (Cholesky factors); "pca": A = Σt^½ Σs^-½ with the symmetric square
    roots Q Λ^½ Qᵀ (Gatys et al.; eigenvector signs cancel, so the result is unique); "sym": the
    symmetric solution Σs^-½ (Σs^½ Σt Σs^½)^½ Σs^-½ of A Σs Aᵀ = Σt (Monge–Kantorovich). Used to recolour
    the style image to the content's palette.
    """
    xs, xt = source.reshape(-1, 3), target.reshape(-1, 3)
    ms, mt = xs.mean(0), xt.mean(0)
    cs = jnp.cov((xs - ms).T) + eps * jnp.eye(3)
    ct = jnp.cov((xt - mt).T) + eps * jnp.eye(3)
    if mode == "chol":
        a = jnp.linalg.cholesky(ct) @ jnp.linalg.inv(jnp.linalg.cholesky(cs))
    elif mode == "pca":
        a = _sqrtm(ct) @ _invsqrtm(cs, 0.0)
    elif mode == "sym":
        cs_h = _sqrtm(cs)
        cs_ih = _invsqrtm(cs, 0.0)
        a = cs_ih @ _sqrtm(cs_h @ ct @ cs_h) @ cs_ih
    else:
        raise ValueError(f"mode must be 'chol', 'pca' or 'sym', got {mode!r}")
    out = (xs - ms) @ a.T + mt
    return out.reshape(source.shape)
