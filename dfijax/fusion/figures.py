"""The fusion GAN's pictures: the Λ-sweep grids (`sample_grid` for training samples, `fusion_grid` for
two images fused at several Λ) and the feature-map figure.

The feature-map figure (after the paper's Fig. 6): for inputs A, B and their fusion C, the VGG-19
feature maps at conv1_1 … conv5_1 (the layers the perceptual losses use) and the latent chunks
z_1 … z_N, each tensor shown as a montage of all its channels and, in a second row, its first four
channels enlarged (the paper's third row: "a part of each column's maps").

Every channel is scaled to [0, 1] by its minimum and maximum over the three images together, so that
C's maps can be compared with A's and B's: where λ_n = 1, C's chunk z_n equals A's exactly, where
λ_n = 0 it equals B's.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from dfijax import images as im
from dfijax.fusion.data import to_unit
from dfijax.fusion.model import mix
from dfijax.fusion.train import FusionConfig, Net, apply_net, fuse, lambda_map, reconstruct
from dfijax.vgg import VGG19

LAMBDAS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)  # the paper's Λ sweep (every chunk alike): the grids' columns

FIG6_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CELL_PX = 160  # each panel is CELL_PX × CELL_PX pixels
TITLE_PX = 60  # the figure title's strip at the top
DETAIL = 4  # channels enlarged in the second row of each image


def ends_row(a: np.ndarray, b: np.ndarray, n: int) -> list[np.ndarray]:
    """[a, blank, …, blank, b]: n cells ([S, S, 3] each), so that A and B sit above the Λ = 1 and Λ = 0
    columns of a sweep."""
    return [a] + [np.ones_like(a)] * (n - 2) + [b]


def fusion_grid(
    a: np.ndarray, b: np.ndarray, rows: Sequence[Sequence[np.ndarray]], lambdas: Sequence[float] = LAMBDAS
) -> np.ndarray:
    """The paper's fusion figure: A top left and B top right, then each of `rows` (images [S, S, 3]),
    every image in [0, 1] and enlarged (nearest neighbour) for viewing; columns labelled with `lambdas`.
    Returns [H, W, 3] float32 in [0, 1]."""
    up = im.upscale_nearest
    grid = [ends_row(up(a), up(b), len(lambdas))] + [[up(x) for x in row] for row in rows]
    return im.make_grid(grid, col_labels=[f"{v:.1f}" for v in lambdas])


def sample_grid(cfg: FusionConfig, eg: Net, pair: np.ndarray, lambdas: Sequence[float] = LAMBDAS) -> np.ndarray:
    """A training sample: rows A … B, A' … B' (reconstructions, BatchNorm in inference mode), then the
    fusions for Λ = each of `lambdas` on every chunk. pair: [2, S, S, 3] in [-1, 1] (A, B); eg: host
    (E, G). Returns [H, W, 3] float32 in [0, 1]."""
    rec = np.asarray(reconstruct(cfg, eg, pair))
    fused = np.asarray(fuse(cfg, eg, pair[0], pair[1], [[v] * cfg.n_chunks for v in lambdas]))
    up = im.upscale_nearest
    return im.make_grid(
        [ends_row(up(to_unit(r[0])), up(to_unit(r[1])), len(lambdas)) for r in (pair, rec)]
        + [[up(to_unit(y)) for y in fused]],
        col_labels=[f"{v:.1f}" for v in lambdas],
    )


def fusion_features(
    cfg: FusionConfig, eg: Net, vgg_vars: Any, a: jax.Array, b: jax.Array, lam: Any, layers: Sequence[str] = FIG6_LAYERS
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Images, latents and VGG features of A, B and C = G(Λ∘E(A) + (1 − Λ)∘E(B)) (inference mode).

    a, b: [S, S, 3] in [-1, 1]; lam: one Λ as `lambda_map` accepts. Returns (images [3, S, S, 3] in
    [-1, 1] (A, B, C), latents [3, 4, 4, C] (Z_A, Z_B, Z_C), {layer: [3, h, w, c]})."""
    enc, gen, _ = cfg.nets()
    x = jnp.stack([jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)])
    z, _ = apply_net(enc, eg.params["E"], eg.batch_stats["E"], x, False)
    zc = mix(z[0], z[1], lambda_map(cfg, lam))
    c, _ = apply_net(gen, eg.params["G"], eg.batch_stats["G"], zc[None], False)
    imgs = jnp.concatenate([x, c])
    feats = VGG19().apply(vgg_vars, to_unit(imgs), taps=tuple(layers))
    return (
        np.asarray(imgs),
        np.asarray(jnp.concatenate([z, zc[None]])),
        {k: np.asarray(feats[k], np.float32) for k in layers},
    )


def montage(maps: np.ndarray, lo: np.ndarray, hi: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Tile the channels of maps [h, w, c] (the first `channels` of them, default all) into a near-square
    grid with a 1-pixel NaN gap, each channel scaled by (x − lo) / (hi − lo) with lo, hi [c]; a channel
    with hi == lo shows as 0. Returns [H', W'] float32 in [0, 1] (NaN in the gaps)."""
    h, w, c = maps.shape
    c = c if channels is None else min(c, channels)
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = np.clip((maps - lo) / span, 0.0, 1.0) * (hi > lo)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, np.float32)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = scaled[..., k]
    return out


def figure_size(n_layers: int, n_chunks: int) -> tuple[int, int]:
    """(width, height) in pixels of `feature_figure`'s PNG: (1 + layers + chunks) columns, 6 rows."""
    return (1 + n_layers + n_chunks) * CELL_PX, 6 * CELL_PX + TITLE_PX


def feature_figure(
    path: str | os.PathLike,
    images: np.ndarray,
    latents: np.ndarray,
    feats: dict[str, np.ndarray],
    chunks: Sequence[int],
    lam: Sequence[float],
    names: Sequence[str] = ("A", "B", "C"),
) -> tuple[int, int]:
    """Write the figure as a PNG of `figure_size(len(feats), len(chunks))` pixels and return that size.

    images [3, S, S, 3] in [-1, 1], latents [3, 4, 4, C], feats {layer: [3, h, w, c]} as
    `fusion_features` returns them; chunks: the chunk channel counts; lam: the per-chunk Λ of C (for the
    titles). Columns: the image, one per VGG layer, one per latent chunk; rows: for each image all
    channels, then its first four channels enlarged."""

    starts = np.cumsum((0,) + tuple(chunks[:-1]))
    cols = [(f"{k}\n{v.shape[1]}×{v.shape[2]}×{v.shape[3]}", v) for k, v in feats.items()]
    cols += [
        (f"z_{n + 1} (λ={lam[n]:g})\n4×4×{s}", latents[..., st : st + s])
        for n, (st, s) in enumerate(zip(starts, chunks))
    ]
    ncols, nrows = 1 + len(cols), 2 * len(names)
    w, h = figure_size(len(feats), len(chunks))
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)  # Agg, without pyplot's global state
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    to_rgb = lambda x: np.clip((x + 1.0) * 0.5, 0.0, 1.0)  # noqa: E731
    for i, name in enumerate(names):
        top, detail = axes[2 * i], axes[2 * i + 1]
        top[0].imshow(to_rgb(images[i]), interpolation="nearest")
        top[0].set_ylabel(f"{name}: all maps", fontsize=9)
        detail[0].set_ylabel(f"{name}: first {DETAIL}", fontsize=9)
        detail[0].axis("off")
        detail[0].text(
            0.5,
            0.5,
            f"{name}\nfirst {DETAIL} channels\nof each column",
            ha="center",
            va="center",
            fontsize=8,
            transform=detail[0].transAxes,
        )
        for j, (_, t) in enumerate(cols, 1):
            lo, hi = t.min(axis=(0, 1, 2)), t.max(axis=(0, 1, 2))
            top[j].imshow(montage(t[i], lo, hi), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            detail[j].imshow(montage(t[i], lo, hi, DETAIL), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    for j, ax in enumerate(axes[0]):
        ax.set_title("image" if j == 0 else cols[j - 1][0], fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"VGG-19 feature maps and latent chunks of A, B and C = G(Λ∘E(A) + (1 − Λ)∘E(B)), "
        f"Λ = ({', '.join(f'{v:g}' for v in lam)}); each channel scaled over A, B, C together",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.03, right=0.995, bottom=0.01, top=1 - (TITLE_PX + 28) / h, wspace=0.08, hspace=0.12)
    fig.savefig(path, dpi=100)
    return w, h
