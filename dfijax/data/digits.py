"""Digit image sets for the Domain Transfer Network (Taigman et al. 2016), all as
([N, 32, 32, 3] float32 RGB in [0, 1], [N] int32 labels 0-9).

Embedded, offline (the CPU default):

- `street_digits(n, seed)`: the source domain, a generated stand-in for SVHN. Each image is a crop
  of a rendered "house number": the labelled digit is centred, with parts of its left and right
  neighbours (same style, random digits, each present with probability 0.7) cut by the image edges.
  Glyphs come from five styles: Pillow's embedded scalable font (`ImageFont.load_default(size=...)`,
  regular or bold through a stroke), and four stroke fonts drawn here as polylines (a plain sans, a
  rounded "marker", a seven-segment display and a blocky stencil); no system font is used. Per
  image: glyph height 18-30 px, width scale 0.75-1.3, slant -0.3..0.3, rotation ±8°,
  foreground/background colours at least 0.25 apart in luminance (either polarity) and desaturated
  by 0-70%, a background that is flat, a linear gradient, a smoothed-noise texture or stripes, an
  optional drop shadow, Gaussian blur 0-1.2 px, Gaussian noise σ 0-0.06, and a global
  brightness/contrast change. Rendered at 2x and box-filtered to 32×32. Deterministic: image i of
  `street_digits(n, seed)` depends only on (seed, i), so sets with the same seed and larger n extend
  smaller ones. About 1,500 images per second on one core.
- `sklearn_digits(split)`: the target domain, the 1,797 handwritten digits that ship with
  scikit-learn (`sklearn.datasets.load_digits`, the UCI "optical recognition of handwritten digits"
  test set: 8×8, values 0-16). Upscaled as MNIST is framed: values / 16, bicubic to 24×24 (PIL, on
  float pixels), clipped to [0, 1], zero-padded by 4 px to 32×32, grey repeated to RGB (white digit on
  black). Split deterministically: a fixed permutation (seed 0), the last 360 are "test", the other
  1,437 "train".

Prepared tensorflow-datasets (the paper's setting; read with `tfds.data_source`, nothing downloaded,
no TensorFlow needed): `load_svhn(data_dir, split)` (svhn_cropped, 32×32 RGB; the paper trains f on
train+extra) and `load_mnist(data_dir, split)` (28×28 grey, resized bilinearly to 32×32 and repeated
to RGB). Absent data -> `DataError` naming the `tfds build` command to run.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from dfijax.data import DataError

SIZE = 32
_CANVAS = 64  # rendered at 2x, box-filtered down

# Stroke fonts: polylines on a 0..1 box (x right, y down). Curves are sampled arcs.


def _arc(cx, cy, rx, ry, a0, a1, n=10):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(a0, a1, n)]


_SANS: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.4, 0.47, 0, 360, 24)],
    1: [[(0.25, 0.25), (0.55, 0.03), (0.55, 0.97)], [(0.25, 0.97), (0.85, 0.97)]],
    2: [_arc(0.5, 0.3, 0.38, 0.27, 190, 370, 12) + [(0.1, 0.97), (0.92, 0.97)]],
    3: [_arc(0.48, 0.27, 0.36, 0.24, 200, 450, 12), _arc(0.48, 0.73, 0.4, 0.24, 270, 520, 12)],
    4: [[(0.7, 0.97), (0.7, 0.03), (0.08, 0.7), (0.95, 0.7)]],
    5: [[(0.85, 0.03), (0.2, 0.03), (0.15, 0.45)] + _arc(0.5, 0.68, 0.4, 0.3, 230, 500, 14)],
    6: [_arc(0.52, 0.68, 0.38, 0.29, 0, 360, 18), [(0.14, 0.66), (0.3, 0.28), (0.62, 0.03)]],
    7: [[(0.08, 0.03), (0.92, 0.03), (0.4, 0.97)]],
    8: [_arc(0.5, 0.26, 0.32, 0.23, 0, 360, 16), _arc(0.5, 0.73, 0.4, 0.25, 0, 360, 18)],
    9: [_arc(0.48, 0.32, 0.38, 0.29, 0, 360, 18), [(0.86, 0.34), (0.7, 0.72), (0.38, 0.97)]],
}

# Seven segments: a top, b top-right, c bottom-right, d bottom, e bottom-left, f top-left, g middle.
_SEG_LINES = {
    "a": [(0.12, 0.04), (0.88, 0.04)],
    "b": [(0.9, 0.06), (0.9, 0.48)],
    "c": [(0.9, 0.52), (0.9, 0.94)],
    "d": [(0.12, 0.96), (0.88, 0.96)],
    "e": [(0.1, 0.52), (0.1, 0.94)],
    "f": [(0.1, 0.06), (0.1, 0.48)],
    "g": [(0.12, 0.5), (0.88, 0.5)],
}
_SEGMENTS = {
    0: "abcdef",
    1: "bc",
    2: "abged",
    3: "abgcd",
    4: "fgbc",
    5: "afgcd",
    6: "afgedc",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}
_SEVEN = {d: [_SEG_LINES[s] for s in segs] for d, segs in _SEGMENTS.items()}

# Blocky stencil: straight strokes only, squared corners.
_BLOCK: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.1, 0.03), (0.9, 0.03), (0.9, 0.97), (0.1, 0.97), (0.1, 0.03)]],
    1: [[(0.3, 0.15), (0.55, 0.03), (0.55, 0.97)]],
    2: [[(0.1, 0.03), (0.9, 0.03), (0.9, 0.5), (0.1, 0.5), (0.1, 0.97), (0.9, 0.97)]],
    3: [[(0.1, 0.03), (0.9, 0.03), (0.9, 0.97), (0.1, 0.97)], [(0.3, 0.5), (0.9, 0.5)]],
    4: [[(0.1, 0.03), (0.1, 0.55), (0.9, 0.55)], [(0.72, 0.25), (0.72, 0.97)]],
    5: [[(0.9, 0.03), (0.1, 0.03), (0.1, 0.48), (0.9, 0.48), (0.9, 0.97), (0.1, 0.97)]],
    6: [[(0.9, 0.03), (0.1, 0.03), (0.1, 0.97), (0.9, 0.97), (0.9, 0.5), (0.1, 0.5)]],
    7: [[(0.1, 0.03), (0.9, 0.03), (0.9, 0.2), (0.45, 0.97)]],
    8: [[(0.1, 0.03), (0.9, 0.03), (0.9, 0.97), (0.1, 0.97), (0.1, 0.03)], [(0.1, 0.5), (0.9, 0.5)]],
    9: [[(0.9, 0.5), (0.1, 0.5), (0.1, 0.03), (0.9, 0.03), (0.9, 0.97), (0.1, 0.97)]],
}

STYLES = ("pil", "sans", "marker", "seven", "block")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no scalable embedded font; the stroke styles still work
        return ImageFont.load_default()


def _draw_glyph(
    draw: ImageDraw.ImageDraw,
    digit: int,
    style: str,
    x0: float,
    y0: float,
    w: float,
    h: float,
    weight: float,
    bold: int,
) -> None:
    """Draw one digit (white, on an 'L' canvas) into the box (x0, y0, w, h)."""
    if style == "pil":
        font = _font(max(8, int(round(h * 1.3))))
        box = draw.textbbox((0, 0), str(digit), font=font, stroke_width=bold)
        gw, gh = box[2] - box[0], box[3] - box[1]
        draw.text(
            (x0 + (w - gw) / 2 - box[0], y0 + (h - gh) / 2 - box[1]),
            str(digit),
            fill=255,
            font=font,
            stroke_width=bold,
            stroke_fill=255,
        )
        return
    strokes = {"sans": _SANS, "marker": _SANS, "seven": _SEVEN, "block": _BLOCK}[style][digit]
    lw = max(2, int(round(weight * h)))
    for line in strokes:
        pts = [(x0 + px * w, y0 + py * h) for px, py in line]
        draw.line(pts, fill=255, width=lw, joint="curve")
        if style in ("sans", "marker"):  # round caps
            r = lw / 2
            for px, py in (pts[0], pts[-1]):
                draw.ellipse((px - r, py - r, px + r, py + r), fill=255)


def _background(rng: np.random.Generator, base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """[S, S, 3] background around colour `base`; `other` gives the gradient/texture's second colour."""
    kind = rng.choice(4, p=[0.35, 0.25, 0.25, 0.15])
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    if kind == 0:
        return np.broadcast_to(base, (SIZE, SIZE, 3)).copy()
    mix = 0.35 * other + 0.65 * base
    if kind == 1:  # linear gradient in a random direction
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        return base * (1 - t) + mix * t
    if kind == 2:  # smoothed noise texture
        coarse = rng.normal(0, 1, (rng.integers(3, 9),) * 2).astype(np.float32)
        img = Image.fromarray(coarse).resize((SIZE, SIZE), Image.BICUBIC)
        t = np.asarray(img)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        return base * (1 - 0.6 * t[..., None]) + mix * 0.6 * t[..., None]
    period = rng.uniform(3, 10)  # stripes (brick, siding)
    vertical = rng.random() < 0.5
    t = (np.sin(2 * np.pi * (xx if vertical else yy) * SIZE / period) > 0).astype(np.float32)[..., None]
    return base * (1 - 0.4 * t) + mix * 0.4 * t


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def street_digit(seed: int, index: int) -> tuple[np.ndarray, int]:
    """Image `index` of the street-number set `seed`: ([32, 32, 3] float32 in [0, 1], label 0-9)."""
    rng = np.random.default_rng([seed, index, 0x5EED])
    label = int(rng.integers(10))
    style = STYLES[int(rng.integers(len(STYLES)))]
    h = rng.uniform(18, 30) * 2  # glyph height on the 2x canvas
    w = h * rng.uniform(0.45, 0.62) * rng.uniform(0.75, 1.3)
    weight = {
        "sans": rng.uniform(0.08, 0.13),
        "marker": rng.uniform(0.14, 0.2),
        "seven": rng.uniform(0.09, 0.15),
        "block": rng.uniform(0.11, 0.18),
        "pil": 0.0,
    }[style]
    bold = int(rng.integers(0, 3)) if style == "pil" else 0
    gap = w * rng.uniform(0.15, 0.45)
    canvas = Image.new("L", (_CANVAS * 2, _CANVAS), 0)  # wide, so neighbours can be cut after the transform
    draw = ImageDraw.Draw(canvas)
    cx, cy = _CANVAS, _CANVAS / 2 + rng.uniform(-2, 2)
    _draw_glyph(draw, label, style, cx - w / 2, cy - h / 2, w, h, weight, bold)
    for side in (-1, 1):
        if rng.random() < 0.7:
            _draw_glyph(
                draw, int(rng.integers(10)), style, cx - w / 2 + side * (w + gap), cy - h / 2, w, h, weight, bold
            )
    # slant (shear about the centre) and a small rotation, one affine map (PIL maps output -> input)
    shear, rot = rng.uniform(-0.3, 0.3), math.radians(rng.uniform(-8, 8))
    c, s = math.cos(rot), math.sin(rot)
    m = np.array([[c, -s], [s, c]]) @ np.array([[1, shear], [0, 1]])
    inv = np.linalg.inv(m)
    ox, oy = _CANVAS, _CANVAS / 2
    tx, ty = rng.uniform(-1.5, 1.5), 0.0  # centring jitter
    off = np.array([ox, oy]) - inv @ np.array([ox + tx, oy + ty])
    canvas = canvas.transform(
        canvas.size, Image.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]), resample=Image.BILINEAR
    )
    crop = canvas.crop((_CANVAS // 2, 0, _CANVAS // 2 + _CANVAS, _CANVAS)).resize((SIZE, SIZE), Image.BOX)
    mask = np.asarray(crop, np.float32)[..., None] / 255.0

    fg = rng.uniform(0, 1, 3)
    bg = rng.uniform(0, 1, 3)
    for _ in range(20):  # enough contrast, either polarity
        if abs(_luma(fg) - _luma(bg)) >= 0.25:
            break
        bg = rng.uniform(0, 1, 3)
    else:
        bg = np.where(fg > 0.5, fg - 0.6, fg + 0.6).clip(0, 1)
    sat = rng.uniform(0.3, 1.0)  # house numbers are rarely fully saturated
    fg, bg = (_luma(c) + sat * (c - _luma(c)) for c in (fg, bg))
    back = _background(rng, bg.astype(np.float32), rng.uniform(0, 1, 3).astype(np.float32))
    if rng.random() < 0.3:  # drop shadow
        dx, dy = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        shadow = np.roll(mask, (dy, dx), (0, 1))
        back = back * (1 - 0.5 * shadow)
    img = back * (1 - mask) + fg.astype(np.float32) * mask
    blur = rng.uniform(0, 1.2)
    if blur > 0.3:
        u8 = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        img = np.asarray(u8.filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255.0
    img = img * rng.uniform(0.7, 1.15) + rng.uniform(-0.1, 0.1)  # contrast / brightness
    img = img + rng.normal(0, rng.uniform(0, 0.06), img.shape)
    return np.clip(img, 0, 1).astype(np.float32), label


def street_digits(n: int, seed: int = 0, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images start..start+n-1 of the street-number set `seed`: ([n, 32, 32, 3] float32 in [0, 1],
    [n] int32 labels)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pairs = [street_digit(seed, start + i) for i in range(n)]
    if not pairs:
        return np.zeros((0, SIZE, SIZE, 3), np.float32), np.zeros((0,), np.int32)
    return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], np.int32)


def street_digits_split(split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """'train' and 'test' are disjoint: test images are drawn from set seed + 1_000_003."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return street_digits(n, seed if split == "train" else seed + 1_000_003)


SKLEARN_TEST = 360


def upscale_8x8(x: np.ndarray) -> np.ndarray:
    """[N, 8, 8] values 0-16 -> [N, 32, 32, 3] float32 in [0, 1] (bicubic to 24×24, 4 px black border)."""
    x = np.asarray(x, np.float32) / 16.0
    out = np.zeros((len(x), SIZE, SIZE), np.float32)
    for i, d in enumerate(x):
        up = np.asarray(Image.fromarray(d).resize((24, 24), Image.BICUBIC))
        out[i, 4:28, 4:28] = np.clip(up, 0, 1)
    return np.repeat(out[..., None], 3, -1)


def sklearn_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The scikit-learn handwritten digits, upscaled (see the module docstring): 'train' (1,437),
    'test' (360) or 'all' (1,797). Returns ([N, 32, 32, 3] float32 in [0, 1], [N] int32)."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")

    from sklearn.datasets import load_digits  # here: sklearn.datasets takes 1 s to import

    d = load_digits()
    images, labels = d.images, d.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(images))
    if split == "train":
        order = order[:-SKLEARN_TEST]
    elif split == "test":
        order = order[-SKLEARN_TEST:]
    return upscale_8x8(images[order]), labels[order]


# --- tensorflow-datasets (prepared array_record; nothing is downloaded) -------------------------------

TFDS_NAMES = {"svhn": "svhn_cropped", "mnist": "mnist"}


def _tfds_source(name: str, split: str, data_dir: str | pathlib.Path | None):
    where = str(data_dir) if data_dir is not None else "the default tfds data_dir (~/tensorflow_datasets)"
    cmd = f"tfds build {name} --file_format array_record" + ("" if data_dir is None else f" --data_dir {data_dir}")
    try:
        import tensorflow_datasets as tfds

        source = tfds.data_source(
            name, split=split, data_dir=None if data_dir is None else str(data_dir), download=False
        )
        n = len(source)
    except Exception as e:  # tfds raises many kinds when the data is absent or in another format
        raise DataError(
            f"tfds {name} (split {split!r}) is not prepared in {where} ({type(e).__name__}): run `{cmd}` "
            "once on a machine with TensorFlow and internet, then copy the folder here; "
            "or use the embedded default (--data digits)"
        ) from None
    if n == 0:
        raise DataError(f"tfds {name} split {split!r} in {where} is empty; rebuild it with `{cmd}`")
    return source, n


def _read(source, n: int, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n)
    if limit is not None and limit < n:  # a seeded random subset, in index order
        idx = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
    images, labels = [], []
    for i in idx:
        ex = source[int(i)]
        images.append(np.asarray(ex["image"], np.uint8))
        labels.append(int(ex["label"]))
    return np.stack(images), np.asarray(labels, np.int32)


def load_svhn(
    data_dir: str | pathlib.Path | None = None, split: str = "train", limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits from a prepared tfds svhn_cropped ('train', 'test', 'extra'; join with '+',
    e.g. 'train+extra' as in the paper). limit: a seeded random subset per split. Returns
    ([N, 32, 32, 3] float32 in [0, 1], [N] int32 labels 0-9)."""
    xs, ys = [], []
    for part in split.split("+"):
        source, n = _tfds_source("svhn_cropped", part.strip(), data_dir)
        x, y = _read(source, n, limit, seed)
        xs.append(x)
        ys.append(y)
    x = np.concatenate(xs)
    if x.shape[1:] != (SIZE, SIZE, 3):
        raise DataError(f"tfds svhn_cropped images are {x.shape[1:]}, expected (32, 32, 3)")
    return x.astype(np.float32) / 255.0, np.concatenate(ys)


def load_mnist(
    data_dir: str | pathlib.Path | None = None, split: str = "train", limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from a prepared tfds mnist, resized bilinearly from 28×28 to 32×32 and repeated to RGB.
    Returns ([N, 32, 32, 3] float32 in [0, 1], [N] int32)."""
    source, n = _tfds_source("mnist", split, data_dir)
    x, y = _read(source, n, limit, seed)
    x = x.reshape(len(x), x.shape[1], x.shape[2]).astype(np.float32) / 255.0
    x = np.stack([np.asarray(Image.fromarray(d).resize((SIZE, SIZE), Image.BILINEAR)) for d in x])
    return np.repeat(np.clip(x, 0, 1)[..., None], 3, -1).astype(np.float32), y
