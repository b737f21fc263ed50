"""Embedded cartoon ("emoji") faces: the offline target domain of the DTN faces setting (photo -> cartoon).

No download: every face is drawn procedurally, deterministic per (seed, index). What it is, exactly:

- Aligned, frontal emoji-style heads on a square canvas (head centred at ~53% height, eyes at ~47%,
  mouth at ~68%), drawn in flat colours with thick dark outlines (every shape is filled over a
  slightly larger dark copy of itself), rendered at 2x and box-downsampled (anti-aliased edges, no
  texture, no shading, no noise).
- Flat background: one of 8 pastel colours.
- Attributes (binary ±1, CelebA-style names where CelebA has one), sampled independently of each
  other so that each is free to follow the source face in a transfer:
  skin: one of 6 cartoon tones (yellow emoji, five human tones; Pale_Skin = the two lightest human
  tones); hair colour: one of Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair, Red_Hair (flat);
  hair style: one of Bald, Short_Hair (a cap over the top of the head), Long_Hair (a cap plus long
  sides down to the jaw, drawn behind the head), Bangs (a cap with a straight fringe low over the
  forehead); Eyeglasses (thick dark round rims and a bridge); Smiling (a thick upward arc, or with
  Mouth_Open a dark open half-moon with a white teeth band; not smiling: a short flat or slightly
  downturned line, or a small dark "o" with Mouth_Open).
- Per-face variation besides the attributes: head width and height, eye spacing and size (big
  white ovals with large dark pupils), pupil direction, eyebrow tilt, cheek blush (on ~half), small
  shift of the whole face.

It is a clean, easy-to-recognise target domain for the method, not a substitute for a real emoji
set (the paper's target was Bitmoji avatars).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dfijax.data import FaceDataset

ATTRIBUTES = (
    "Smiling",
    "Mouth_Open",
    "Eyeglasses",
    "Pale_Skin",
    "Bald",
    "Short_Hair",
    "Long_Hair",
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Red_Hair",
)
HAIR_STYLES = ("Bald", "Short_Hair", "Long_Hair", "Bangs")
HAIR = {
    "Black_Hair": (0.13, 0.11, 0.12),
    "Blond_Hair": (0.98, 0.82, 0.35),
    "Brown_Hair": (0.52, 0.31, 0.16),
    "Gray_Hair": (0.72, 0.73, 0.76),
    "Red_Hair": (0.86, 0.36, 0.16),
}
SKIN = np.array(
    [
        [1.00, 0.82, 0.25],  # yellow emoji
        [1.00, 0.88, 0.76],
        [0.98, 0.80, 0.66],  # the two "Pale_Skin" tones
        [0.87, 0.64, 0.45],
        [0.66, 0.45, 0.29],
        [0.45, 0.30, 0.20],
    ],
    np.float32,
)
PALE = (1, 2)
BACKGROUNDS = np.array(
    [
        [0.72, 0.86, 0.98],
        [0.80, 0.95, 0.80],
        [0.99, 0.86, 0.86],
        [0.93, 0.86, 0.99],
        [0.99, 0.95, 0.78],
        [0.80, 0.93, 0.93],
        [0.90, 0.90, 0.90],
        [0.99, 0.90, 0.78],
    ],
    np.float32,
)
OUTLINE = np.array([0.10, 0.08, 0.10], np.float32)
_SALT = 0xC47  # keeps the streams apart from synthetic_faces with the same seed


def sample_attributes(rng: np.random.Generator) -> dict:
    """Independent attributes plus the indices they come from (skin tone, hair colour, hair style)."""
    skin = int(rng.integers(len(SKIN)))
    hair = list(HAIR)[int(rng.integers(len(HAIR)))]
    style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=[0.15, 0.3, 0.3, 0.25]))]
    smiling = bool(rng.random() < 0.5)
    a = {
        "Smiling": smiling,
        "Mouth_Open": bool(rng.random() < 0.4),
        "Eyeglasses": bool(rng.random() < 0.3),
        "Pale_Skin": skin in PALE,
    }
    for s in HAIR_STYLES:
        a[s] = s == style
    for h in HAIR:
        a[h] = h == hair
    return {"attrs": a, "skin": skin, "hair": hair, "style": style}


def render_cartoon(sample: dict, rng: np.random.Generator, size: int) -> np.ndarray:
    """One cartoon face, [size, size, 3] float32 in [0, 1]. rng supplies the shape variation."""
    a = sample["attrs"]
    s = 2 * size
    yy, xx = (np.mgrid[0:s, 0:s].astype(np.float32) + 0.5) / s
    u = xx - (0.5 + rng.uniform(-0.02, 0.02))  # face coordinates, origin at the head centre
    v = yy - (0.53 + rng.uniform(-0.015, 0.015))
    t = 0.032  # outline thickness (canvas units)

    def ell(x0, y0, rx, ry, grow=0.0):
        return ((u - x0) / (rx + grow)) ** 2 + ((v - y0) / (ry + grow)) ** 2 < 1.0

    img = np.empty((s, s, 3), np.float32)
    img[:] = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]

    def fill(mask_fn, colour, outline=True):
        if outline:
            img[mask_fn(t)] = OUTLINE
        img[mask_fn(0.0)] = colour

    hw, hh = rng.uniform(0.27, 0.32), rng.uniform(0.31, 0.36)
    skin = SKIN[sample["skin"]]
    hair = np.array(HAIR[sample["hair"]], np.float32)
    style = sample["style"]
    # long hair: a flat shape behind the head, down to the jaw
    if style == "Long_Hair":
        fill(lambda g: ell(0, 0.0, hw * 1.4, hh * 1.1, g) & (v < hh * 0.85 + g), hair)
    # ears, then the head over them
    fill(lambda g: ell(-hw, 0.02, 0.045, 0.07, g) | ell(hw, 0.02, 0.045, 0.07, g), skin)
    fill(lambda g: ell(0, 0, hw, hh, g), skin)
    # hair on top of the head: a cap (cut at the hairline), with a low straight fringe for Bangs
    if style != "Bald":
        line = -hh * (0.25 if style == "Bangs" else 0.5)
        fill(lambda g: ell(0, -0.015, hw * 1.06, hh * 1.04, g) & (v < line + g), hair)
    # eyes: big white ovals with large pupils, outlined
    ex, ey, er = rng.uniform(0.10, 0.13), -0.04, rng.uniform(0.045, 0.06)
    look = rng.uniform(-0.3, 0.3, 2) * er
    for side in (-1, 1):
        fill(lambda g: ell(side * ex, ey, er * 0.85, er * 1.1, g), (1.0, 1.0, 1.0))
        img[ell(side * ex + look[0], ey + look[1] + er * 0.15, er * 0.5, er * 0.6)] = OUTLINE
        img[ell(side * ex + look[0] - er * 0.18, ey + look[1] - er * 0.1, er * 0.16, er * 0.16)] = (1.0, 1.0, 1.0)
        tilt = rng.uniform(-0.25, 0.25)
        by = ey - er * 1.1 - 0.04 + side * tilt * (u - side * ex)
        img[(np.abs(v - by) < 0.012) & (np.abs(u - side * ex) < er * 0.9)] = 0.5 * hair + 0.5 * OUTLINE
        if a["Eyeglasses"]:
            ring = ell(side * ex, ey, er * 1.45, er * 1.5) & ~ell(side * ex, ey, er * 1.45 - 0.022, er * 1.5 - 0.022)
            img[ring] = OUTLINE
    if a["Eyeglasses"]:
        img[(np.abs(v - ey) < 0.011) & (np.abs(u) < ex - er * 1.3)] = OUTLINE
    if rng.random() < 0.5:  # blush
        for side in (-1, 1):
            img[ell(side * (ex + 0.05), 0.09, 0.045, 0.022)] = 0.75 * skin + 0.25 * np.array([1.0, 0.3, 0.35])
    # mouth
    mw, my = rng.uniform(0.09, 0.12), 0.16
    if a["Smiling"] and a["Mouth_Open"]:  # open grin: a dark half-moon, teeth along its top
        moon = (v > my - 0.01) & ell(0, my - 0.01, mw, mw * 0.85)
        img[(v > my - 0.01 - t) & ell(0, my - 0.01, mw, mw * 0.85, t)] = OUTLINE
        img[moon] = (0.45, 0.08, 0.12)
        img[moon & (v < my + 0.022)] = (1.0, 1.0, 1.0)
    elif a["Smiling"]:  # a thick upward arc
        depth = rng.uniform(0.04, 0.06)
        curve = my + depth * (1 - (u / mw) ** 2)
        img[(np.abs(u) < mw) & (np.abs(v - curve) < 0.016)] = OUTLINE
    elif a["Mouth_Open"]:  # a small "o"
        fill(lambda g: ell(0, my + 0.02, mw * 0.35, 0.035, g), (0.45, 0.08, 0.12))
    else:  # flat or slightly down
        curve = my + 0.03 + rng.uniform(-0.02, 0.0) * (1 - (u / mw) ** 2)
        img[(np.abs(u) < mw * 0.75) & (np.abs(v - curve) < 0.013)] = OUTLINE
    img = img.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@dataclasses.dataclass
class CartoonFaces(FaceDataset):
    """The embedded cartoon face set (see the module docstring)."""

    seed: int = 0

    def load(self, index: int, size: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"cartoon face {index} out of range (dataset has {len(self)})")
        if size < 8:
            raise ValueError(f"cartoon faces need size >= 8, got {size}")
        rng = np.random.default_rng([_SALT, self.seed, index])
        return render_cartoon(sample_attributes(rng), rng, size)


def cartoon_faces(n: int = 2000, seed: int = 0) -> CartoonFaces:
    """n cartoon faces; attributes computed now, images rendered on demand by `.images(indices, size)`
    (deterministic per (seed, index), any size)."""
    if n < 1:
        raise ValueError(f"need at least one cartoon face, got n={n}")
    rows = []
    for i in range(n):
        a = sample_attributes(np.random.default_rng([_SALT, seed, i]))["attrs"]
        rows.append([1.0 if a[k] else -1.0 for k in ATTRIBUTES])
    return CartoonFaces(
        name=f"cartoon_faces-seed{seed}-n{n}",
        attr_names=ATTRIBUTES,
        attrs=np.asarray(rows, np.float32),
        ids=tuple(f"cartoon{i:06d}" for i in range(n)),
        binary=True,
        gender=None,
        seed=seed,
    )
