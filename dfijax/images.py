"""Image files in and out: float32 RGB in [0, 1], channels last, with one-line errors."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None, fit: str = "crop") -> np.ndarray:
    """Read an image as [H, W, 3] float32 in [0, 1]. Greyscale, palette and RGBA (composited on white)
    become RGB. Never stretches: size an int resizes the short side (aspect kept); (H, W) first
    centre-crops (fit="crop") or pads with edge pixels (fit="pad") to H:W, then resizes."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} not found")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, rgba).convert("RGB")
            else:
                im = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(
            f"cannot read {path} as an image ({type(e).__name__}); is the file corrupt or not an image?"
        ) from None
    if size is not None:
        if not isinstance(size, int):
            im = Image.fromarray(fit_aspect(np.asarray(im), size[0] / size[1], fit))
        im = resize(im, size)
    return np.asarray(im, np.float32) / 255.0


def fit_aspect(x: np.ndarray, aspect: float, fit: str = "crop") -> np.ndarray:
    """[H, W, C] -> the centred H':W' = aspect (height / width) part (fit="crop"), or x padded with its
    edge pixels to that aspect (fit="pad"); never stretched."""
    if fit not in ("crop", "pad"):
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")
    h, w = x.shape[:2]
    if fit == "crop":
        ch, cw = (h, max(1, round(h / aspect))) if w / h > 1 / aspect else (max(1, round(w * aspect)), w)
        top, left = (h - ch) // 2, (w - cw) // 2
        return x[top : top + ch, left : left + cw]
    ph, pw = (max(h, round(w * aspect)), w) if h / w < aspect else (h, max(w, round(h / aspect)))
    top, left = (ph - h) // 2, (pw - w) // 2
    pads = ((top, ph - h - top), (left, pw - w - left)) + ((0, 0),) * (x.ndim - 2)
    return np.pad(x, pads, mode="edge")


def resize(im: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Short side to `size` (int, aspect kept) or exactly (H, W)."""
    if isinstance(size, int):
        w, h = im.size
        s = size / min(w, h)
        return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    return im.resize((size[1], size[0]), Image.LANCZOS)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path: str | os.PathLike, x: np.ndarray) -> pathlib.Path:
    """Write [H, W, 3] in [0, 1] as PNG (or whatever the suffix says)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(x)).save(path)
    return path


def make_grid(
    rows: Sequence[Sequence[np.ndarray]], col_labels: Sequence[str] | None = None, pad: int = 4, label_h: int = 14
) -> np.ndarray:
    """Tile images (rows x columns, each [H, W, 3] in [0, 1], same size) into one image with white
    padding and optional column labels on top. Returns [H', W', 3] float32."""
    h, w, _ = np.asarray(rows[0][0]).shape
    ncols = max(len(r) for r in rows)
    top = label_h if col_labels else 0
    grid = np.ones((top + len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = top + pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = np.clip(np.asarray(img, np.float32), 0, 1)
    if col_labels:
        im = Image.fromarray(to_uint8(grid))
        draw = ImageDraw.Draw(im)
        for j, label in enumerate(col_labels):
            draw.text((pad + j * (w + pad) + 2, 1), str(label), fill=(0, 0, 0))
        grid = np.asarray(im, np.float32) / 255.0
    return grid


def synthetic_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic procedural test picture, [h, w, 3] in [0, 1]: sky gradient, sun, hills, a
    striped house with a window and some texture; varies with the seed. The embedded default content
    image (no download needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h, xx / w
    sky_top, sky_bottom = rng.uniform(0.3, 0.9, 3), rng.uniform(0.6, 1.0, 3)
    img = sky_top * (1 - yy[..., None]) + sky_bottom * yy[..., None]
    cx, cy, r = rng.uniform(0.15, 0.85), rng.uniform(0.1, 0.3), rng.uniform(0.06, 0.12)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r**2] = rng.uniform(0.8, 1.0, 3) * np.array([1.0, 0.85, 0.3])
    for k in range(2):
        base = rng.uniform(0.55, 0.75) + 0.05 * k
        hill = base + 0.08 * np.sin(rng.uniform(4, 9) * xx * np.pi + rng.uniform(0, 6))
        green = np.array([0.2, rng.uniform(0.45, 0.7), 0.2]) * (0.8 + 0.2 * k)
        img[yy > hill] = green
    x0, x1 = sorted(rng.uniform(0.2, 0.8, 2))
    x1 = max(x1, x0 + 0.2)
    y0 = rng.uniform(0.45, 0.6)
    house = (xx > x0) & (xx < x1) & (yy > y0) & (yy < 0.92)
    stripes = 0.85 + 0.15 * np.sign(np.sin(xx * w / 3.0))
    img[house] = rng.uniform(0.4, 0.9, 3)[None] * stripes[house][:, None]
    roof = (yy < y0) & (yy > y0 - 0.12) & (np.abs(xx - (x0 + x1) / 2) < (yy - (y0 - 0.12)) * (x1 - x0) / 0.24)
    img[roof] = np.array([0.55, 0.15, 0.1])
    win = (np.abs(xx - (x0 + x1) / 2) < 0.04) & (np.abs(yy - (y0 + 0.12)) < 0.04)
    img[win] = np.array([0.95, 0.95, 0.6])
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def synthetic_painting(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic procedural 'painting', [h, w, 3] in [0, 1]: a few hundred saturated, oriented
    brush strokes over a swirled background. The embedded default style image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h, xx / w
    palette = rng.uniform(0, 1, (6, 3)) ** 0.7
    swirl = np.sin(8 * xx + 4 * np.sin(6 * yy)) * 0.5 + 0.5
    img = palette[0] * swirl[..., None] + palette[1] * (1 - swirl[..., None])
    for _ in range(300):
        cx, cy = rng.uniform(0, 1, 2)
        ang = rng.uniform(0, np.pi) if rng.random() < 0.3 else 0.6 + 0.3 * rng.standard_normal()
        length, width = rng.uniform(0.04, 0.12), rng.uniform(0.006, 0.02)
        u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
        v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
        stroke = (np.abs(u) < length) & (np.abs(v) < width * (1 - (u / length) ** 2))
        img[stroke] = palette[rng.integers(6)] * rng.uniform(0.7, 1.1)
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


def resize_array(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] in [0, 1] -> [h, w, 3] (LANCZOS)."""
    im = Image.fromarray(to_uint8(x)).resize((hw[1], hw[0]), Image.LANCZOS)
    return np.asarray(im, np.float32) / 255.0


def upscale_nearest(x: np.ndarray, min_size: int = 96) -> np.ndarray:
    """[H, W, C] -> nearest-neighbour upscaled by the smallest integer factor that makes H >= min_size
    (for viewing tiny samples in grids)."""
    k = max(1, -(-min_size // x.shape[0]))
    return np.repeat(np.repeat(x, k, axis=0), k, axis=1)
