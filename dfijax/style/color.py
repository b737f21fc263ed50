"""Colour control for style transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
Transfer"): luminance-only transfer and colour histogram (mean/covariance) matching. Images are
[H, W, 3] float32 RGB in [0, 1]. `preserving_inputs` / `restore_color` wrap a whole run for any of
the modes in PRESERVE_COLOR (images and videos alike)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

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
    return (v * jnp.sqrt(jnp.maximum(w, 0.0))[None, :]) @ v.T


def _invsqrtm(c: jnp.ndarray, eps: float) -> jnp.ndarray:
    w, v = jnp.linalg.eigh(c)
    return (v / jnp.sqrt(jnp.maximum(w, 0.0) + eps)[None, :]) @ v.T


def match_color_histogram(
    source: jnp.ndarray, target: jnp.ndarray, mode: str = "chol", eps: float = 1e-5
) -> jnp.ndarray:
    """Transform source's colours linearly so their mean and covariance match target's.

    mode: "chol": A = L_t L_s⁻¹ (Cholesky factors); "pca": A = Σt^½ Σs^-½ with the symmetric square
    roots Q Λ^½ Qᵀ (Gatys et al.; eigenvector signs cancel, so the result is unique); "sym": the
    symmetric solution Σs^-½ (Σs^½ Σt Σs^½)^½ Σs^-½ of A Σs Aᵀ = Σt (Monge–Kantorovich). Used to recolour
    the style image to the content's palette.
    """
    xs, xt = source.reshape(-1, 3), target.reshape(-1, 3)
    ms, mt = xs.mean(0, keepdims=True), xt.mean(0, keepdims=True)  # [1, 3]
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


PRESERVE_COLOR = ("none", "luminance", "chol", "pca", "sym")


def check_preserve_color(mode: str) -> str:
    """mode if it is one of PRESERVE_COLOR, else a one-line ValueError."""
    if mode not in PRESERVE_COLOR:
        raise ValueError(f"unknown colour preservation {mode!r}; use one of {', '.join(PRESERVE_COLOR)}")
    return mode


def preserving_inputs(
    mode: str, content: np.ndarray, styles: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """What the network sees when colour is preserved (Gatys et al. 2016): (content, styles) as
    float32 numpy arrays in [0, 1].

    content: [H, W, 3] (or [T, H, W, 3], a clip: its statistics are pooled over all frames);
    styles: [h_i, w_i, 3] each. "none": unchanged; "luminance": the content's luminance and each
    style's luminance matched to the content's mean/std, grey in all channels (`restore_color` puts
    the chroma back); "chol" / "pca" / "sym": the content unchanged and each style recoloured to the
    content's colour mean and covariance (`match_color_histogram`)."""
    check_preserve_color(mode)
    content = np.asarray(content, np.float32)
    flat = content.reshape((-1,) + content.shape[-2:])  # [T·H, W, 3]: statistics over every frame
    if mode == "luminance":
        grey = np.repeat(np.asarray(luminance(jnp.asarray(content)))[..., None], 3, -1)
        return grey.astype(np.float32), [
            np.asarray(match_luminance(jnp.asarray(s), jnp.asarray(flat)), np.float32) for s in styles
        ]
    if mode in ("chol", "pca", "sym"):
        return content, [
            np.clip(np.asarray(match_color_histogram(jnp.asarray(s), jnp.asarray(flat), mode)), 0, 1).astype(np.float32)
            for s in styles
        ]
    return content, [np.asarray(s, np.float32) for s in styles]


def restore_color(mode: str, stylised: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The final picture(s) from the network's result: with "luminance" the result's luminance with
    the content's chroma (I, Q), else the result itself; clipped to [0, 1]. stylised and content have
    the same shape, [..., H, W, 3]."""
    check_preserve_color(mode)
    x = np.asarray(stylised, np.float32)
    if mode == "luminance":
        if np.shape(content) != x.shape:
            raise ValueError(
                f"content {np.shape(content)} and result {x.shape} differ in shape; resize the content first"
            )
        x = np.asarray(recombine_luminance(jnp.asarray(x), jnp.asarray(content, jnp.float32)))
    return np.clip(x, 0.0, 1.0)
