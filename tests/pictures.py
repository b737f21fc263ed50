"""Checks on the pictures experiments write: not degenerate (finite, in range, not flat), and keeping
the structure of the picture they started from (edges where the input has edges).

structure_similarity is the Pearson correlation of Sobel edge-magnitude maps of the two pictures, both
turned grey, resized to the smaller one's size and blurred a little (Gaussian, sigma 1 px, so that a
blurry or slightly shifted copy still counts). A picture scores 1 against itself, about 0 against
uniform noise (|score| < 0.22 in 300 draws against 32 px references) and 0 against a constant picture
(no edges at all)."""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

import numpy as np
from PIL import Image

_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def load_png(path: str | os.PathLike) -> np.ndarray:
    """A PNG as [H, W, 3] float32 in [0, 1]."""
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def grid_cells(
    grid: np.ndarray, h: int, w: int, rows: int, cols: int, top: int = 0, pad: int = 4
) -> list[list[np.ndarray]]:
    """Cut the tiles back out of an images.make_grid picture: [rows][cols] of [h, w, 3]. top is the
    label strip's height (14 when the grid has column labels)."""
    return [
        [
            grid[
                top + pad + i * (h + pad) : top + pad + i * (h + pad) + h, pad + j * (w + pad) : pad + j * (w + pad) + w
            ]
            for j in range(cols)
        ]
        for i in range(rows)
    ]


def _as_list(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        return [images]
    return [np.asarray(x, np.float32) for x in images]


def assert_not_degenerate(images, min_std: float = 0.02, lo: float = 0.0, hi: float = 1.0, name: str = "image") -> None:
    """Each picture ([H, W, C] or [H, W]; one, a list, or a stacked [N, H, W, C]) is finite, inside
    [lo, hi], and its pixel standard deviation is above min_std (not a solid colour)."""
    for k, x in enumerate(_as_list(images)):
        x = np.asarray(x, np.float32)
        assert x.size > 0 and np.all(np.isfinite(x)), f"{name} {k}: non-finite values"
        assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6, f"{name} {k}: values in [{x.min()}, {x.max()}]"
        std = float(x.std())
        assert std > min_std, f"{name} {k}: flat (pixel std {std:.4f} <= {min_std})"


def grey(x: np.ndarray) -> np.ndarray:
    """[H, W, 3] or [H, W, 1] or [H, W] -> [H, W] luminance."""
    x = np.asarray(x, np.float32)
    if x.ndim == 2:
        return x
    return x[..., 0] if x.shape[-1] == 1 else x[..., :3] @ _GREY


def _resize_grey(g: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if g.shape == hw:
        return g
    return np.asarray(Image.fromarray(g.astype(np.float32), mode="F").resize((hw[1], hw[0]), Image.BILINEAR))


def gaussian_blur(g: np.ndarray, sigma: float) -> np.ndarray:
    """[H, W] -> [H, W], separable Gaussian with reflected borders (sigma 0: unchanged)."""
    if sigma <= 0:
        return g
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    g = np.pad(np.asarray(g, np.float64), r, mode="reflect")
    g = sum(k[i] * g[i : i + g.shape[0] - 2 * r] for i in range(2 * r + 1))
    return np.asarray(sum(k[i] * g[:, i : i + g.shape[1] - 2 * r] for i in range(2 * r + 1)), np.float32)


def sobel_magnitude(g: np.ndarray) -> np.ndarray:
    """[H, W] -> [H-2, W-2] Sobel gradient magnitude (valid part only)."""
    gx = (g[:-2, 2:] + 2 * g[1:-1, 2:] + g[2:, 2:]) - (g[:-2, :-2] + 2 * g[1:-1, :-2] + g[2:, :-2])
    gy = (g[2:, :-2] + 2 * g[2:, 1:-1] + g[2:, 2:]) - (g[:-2, :-2] + 2 * g[:-2, 1:-1] + g[:-2, 2:])
    return np.sqrt(gx**2 + gy**2)


def structure_similarity(out: np.ndarray, ref: np.ndarray, blur: float = 1.0) -> float:
    """Correlation in [-1, 1] of the Sobel edge magnitudes of `out` and `ref` (each [H, W, C] or [H, W]),
    after both are made grey, resized to the smaller of the two sizes and blurred (sigma `blur` px).
    0 when either has no edges."""
    a, b = grey(out), grey(ref)
    hw = (min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1]))
    a, b = (gaussian_blur(_resize_grey(x, hw), blur) for x in (a, b))
    ea, eb = sobel_magnitude(a).ravel(), sobel_magnitude(b).ravel()
    ea, eb = ea - ea.mean(), eb - eb.mean()
    den = float(np.sqrt((ea**2).sum() * (eb**2).sum()))
    return float((ea * eb).sum() / den) if den > 1e-12 else 0.0


def assert_keeps_structure(outs, refs, floor: float, name: str = "output") -> list[float]:
    """Each output (one picture or a sequence) has structure_similarity above `floor` against its
    reference (same count). Returns the scores."""
    outs, refs = _as_list(outs), _as_list(refs)
    assert len(outs) == len(refs), f"{len(outs)} {name}s for {len(refs)} references"
    scores = [structure_similarity(o, r) for o, r in zip(outs, refs)]
    for k, s in enumerate(scores):
        assert s > floor, f"{name} {k}: structure similarity {s:.3f} <= {floor} (scores {np.round(scores, 3).tolist()})"
    return scores


def similarity_matrix(outs, refs) -> np.ndarray:
    """[len(outs), len(refs)] structure_similarity of every output against every reference."""
    return np.array([[structure_similarity(o, r) for r in _as_list(refs)] for o in _as_list(outs)])


def assert_matches_own_input(outs, refs, margin: float, name: str = "output") -> float:
    """Outputs resemble their own inputs more than the other inputs: mean structure similarity to the
    own input minus the mean to the others is above `margin` (a network that ignores its input and
    draws one template for all fails, however much the template looks like the inputs). Returns it."""
    m = similarity_matrix(outs, refs)
    n = len(m)
    assert n >= 2 and m.shape == (n, n), f"need >= 2 {name}s with one input each, got {m.shape}"
    gap = float(np.trace(m) / n - (m.sum() - np.trace(m)) / (n * n - n))
    assert gap > margin, (
        f"{name}s match their own inputs by {gap:.3f} <= {margin} (own {np.round(np.diag(m), 3).tolist()})"
    )
    return gap


def assert_input_dependent(outs, min_spread: float, name: str = "output") -> float:
    """Different inputs give different outputs: the per-pixel standard deviation across the outputs,
    averaged over pixels, is above `min_spread` (catches a collapsed generator). Returns it."""
    x = np.stack(_as_list(outs))
    spread = float(x.std(axis=0).mean())
    assert spread > min_spread, f"{name}s barely depend on the input (spread {spread:.4f} <= {min_spread})"
    return spread


def pngs(folder: str | os.PathLike, pattern: str) -> list[pathlib.Path]:
    """Sorted PNGs in `folder` matching `pattern`; fails when there are none."""
    found = sorted(pathlib.Path(folder).glob(pattern))
    assert found, f"no {pattern} in {folder}"
    return found


def load_all(paths: Sequence[str | os.PathLike]) -> list[np.ndarray]:
    return [load_png(p) for p in paths]


def assert_floor_discriminates(out: np.ndarray, ref: np.ndarray, floor: float) -> None:
    """out passes the checks at this floor where a constant picture and uniform noise of its shape fail."""
    import pytest

    assert_not_degenerate(out)
    assert_keeps_structure(out, ref, floor)
    flat = np.full_like(out, float(out.mean()))
    with pytest.raises(AssertionError, match="flat"):
        assert_not_degenerate(flat)
    for bad in (flat, np.random.default_rng(0).uniform(size=out.shape)):
        with pytest.raises(AssertionError, match="structure similarity"):
            assert_keeps_structure(bad, ref, floor)
