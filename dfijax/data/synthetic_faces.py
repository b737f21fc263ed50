"""Embedded synthetic faces: a procedurally rendered, aligned face dataset with known attributes.

No download: every face is drawn from a seed, deterministic per (seed, index), so the DFI pipeline,
tests and demos run offline. What it is, exactly:

- Aligned, frontal-ish cartoon faces on a square canvas (eyes at ~45% height, mouth at ~66%), drawn
  with anti-aliased ellipses and curves (rendered at 2x, box-downsampled).
- Attributes (binary ±1, CelebA-style names): Male, Young, Smiling, Mouth_Open, Eyeglasses, Beard,
  Bangs, Pale_Skin, and one hair colour of Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair.
  Correlations like real data: beards only on men, grey hair mostly on the old, open mouths mostly
  with smiles, long hair mostly on women.
- Per-face variation independent of the attributes: head width and height, eye spacing and size,
  skin tone, pose (a small shift and in-plane tilt), lighting direction and strength, background
  colour gradient, noise.
- What the attributes look like: Smiling curves the mouth's corners up (neutral: flat or down);
  Mouth_Open opens a dark gap between the lips (teeth show when smiling); Eyeglasses draws rims and
  a bridge; Beard darkens the jaw and chin with a moustache; not Young adds forehead lines, eye bags
  and greyer skin; Male gets short hair and thicker brows, otherwise long hair down the sides.

It is a test bed for the method (does the edit move the attribute?), not a substitute for CelebA/LFW.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dfijax.data import FaceDataset

ATTRIBUTES = (
    "Male",
    "Young",
    "Smiling",
    "Mouth_Open",
    "Eyeglasses",
    "Beard",
    "Bangs",
    "Pale_Skin",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
)
HAIR = {
    "Black_Hair": (0.08, 0.06, 0.05),
    "Blond_Hair": (0.85, 0.72, 0.4),
    "Brown_Hair": (0.4, 0.24, 0.12),
    "Gray_Hair": (0.68, 0.68, 0.7),
}
SKIN = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.56], [0.78, 0.57, 0.42], [0.58, 0.40, 0.28], [0.40, 0.27, 0.18]])


def sample_attributes(rng: np.random.Generator) -> dict[str, bool]:
    a = {"Male": rng.random() < 0.45, "Young": rng.random() < 0.7}
    a["Smiling"] = rng.random() < 0.5
    a["Mouth_Open"] = rng.random() < (0.6 if a["Smiling"] else 0.2)
    a["Eyeglasses"] = rng.random() < 0.2
    a["Beard"] = a["Male"] and rng.random() < 0.4
    a["Bangs"] = rng.random() < (0.15 if a["Male"] else 0.35)
    a["Pale_Skin"] = rng.random() < 0.15
    if not a["Young"] and rng.random() < 0.6:
        hair = "Gray_Hair"
    else:
        hair = ("Black_Hair", "Blond_Hair", "Brown_Hair")[rng.choice(3, p=[0.45, 0.2, 0.35])]
    for h in HAIR:
        a[h] = h == hair
    return a


def render_face(attrs: dict[str, bool], rng: np.random.Generator, size: int) -> np.ndarray:
    """One face, [size, size, 3] float32 in [0, 1]. rng supplies the identity, pose and lighting."""
    s = 2 * size
    yy, xx = (np.mgrid[0:s, 0:s].astype(np.float32) + 0.5) / s
    tilt = rng.uniform(-0.08, 0.08)
    cx, cy = 0.5 + rng.uniform(-0.03, 0.03), 0.53 + rng.uniform(-0.02, 0.02)
    c, sn = np.cos(tilt), np.sin(tilt)
    u = c * (xx - cx) + sn * (yy - cy)  # face coordinates: u right, v down, origin at the face centre
    v = -sn * (xx - cx) + c * (yy - cy)

    def ell(x0, y0, rx, ry):
        return ((u - x0) / rx) ** 2 + ((v - y0) / ry) ** 2 < 1.0

    top, bottom = rng.uniform(0.2, 0.9, 3), rng.uniform(0.2, 0.9, 3)
    img = top * (1 - yy[..., None]) + bottom * yy[..., None]
    hw, hh = rng.uniform(0.24, 0.3), rng.uniform(0.31, 0.36)
    hair_c = np.array(next(HAIR[h] for h in HAIR if attrs[h])) * rng.uniform(0.9, 1.1)
    if not attrs["Male"]:  # long hair behind the head
        img[ell(0, 0.02, hw * 1.28, hh * 1.15) & (v > -0.05)] = hair_c
    skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.95, 1.05)
    if attrs["Pale_Skin"]:
        skin = 0.55 * skin + 0.45 * np.array([0.98, 0.95, 0.93])
    if not attrs["Young"]:
        skin = 0.8 * skin + 0.2 * skin.mean()
    head = ell(0, 0, hw, hh)
    img[head] = skin
    ears = (ell(-hw, 0.0, 0.04, 0.07) | ell(hw, 0.0, 0.04, 0.07)) & ~head
    img[ears] = skin * 0.92
    # hair on top, bangs over the forehead
    hairline = -hh * (0.45 if attrs["Bangs"] else 0.62)
    img[ell(0, -0.02, hw * 1.08, hh * 1.04) & (v < hairline) & ~(head & (v > hairline))] = hair_c
    # eyes and brows
    ex, ey, er = rng.uniform(0.09, 0.12), -0.07, rng.uniform(0.028, 0.038)
    for side in (-1, 1):
        img[ell(side * ex, ey, er * 1.4, er)] = (0.97, 0.97, 0.97)
        img[ell(side * ex + rng.uniform(-0.004, 0.004), ey, er * 0.6, er * 0.6)] = rng.uniform(0.05, 0.35, 3)
        brow = ell(side * ex, ey - 0.055, er * 1.6, 0.011 if attrs["Male"] else 0.007)
        img[brow] = hair_c * 0.7
        if not attrs["Young"]:
            img[ell(side * ex, ey + er * 1.5, er * 1.2, 0.006)] = skin * 0.75
        if attrs["Eyeglasses"]:
            ring = ell(side * ex, ey, er * 2.0, er * 1.7) & ~ell(side * ex, ey, er * 1.7, er * 1.4)
            img[ring] = (0.1, 0.1, 0.12)
    if attrs["Eyeglasses"]:
        img[(np.abs(v - ey) < 0.007) & (np.abs(u) < ex - er * 1.7)] = (0.1, 0.1, 0.12)
    if not attrs["Young"]:
        for k in range(3):
            img[(np.abs(v - (-0.2 - 0.025 * k) - 0.05 * u**2) < 0.004) & (np.abs(u) < 0.12)] = skin * 0.78
    # nose
    img[(np.abs(u) < 0.012) & (v > -0.02) & (v < 0.09)] = skin * 0.85
    img[ell(0, 0.1, 0.035, 0.015)] = skin * 0.8
    # beard and moustache (before the mouth)
    if attrs["Beard"]:
        jaw = head & (v > 0.1) & ~ell(0, 0.2, 0.07, 0.045)
        img[jaw] = 0.6 * hair_c + 0.4 * img[jaw]
        img[ell(0, 0.155, 0.09, 0.02)] = hair_c * 0.9
    # mouth: a curve whose corners rise when smiling; a dark gap when open
    mw, my = rng.uniform(0.08, 0.11), 0.2
    depth = rng.uniform(0.035, 0.05) if attrs["Smiling"] else rng.uniform(-0.015, 0.0)
    centre = my + depth * (1 - (u / mw) ** 2)  # v points down: a smile's centre sits below its corners
    inside = np.abs(u) < mw
    lip = rng.uniform(0.55, 0.75) * np.array([0.8, 0.3, 0.3])
    if attrs["Mouth_Open"]:
        gap = rng.uniform(0.025, 0.04) * (1 - (u / mw) ** 2)
        opening = inside & (v > centre - gap) & (v < centre + gap)
        img[opening] = (0.15, 0.03, 0.04)
        if attrs["Smiling"]:
            img[opening & (v < centre - 0.3 * gap)] = (0.95, 0.95, 0.92)
        img[inside & (np.abs(v - (centre - gap)) < 0.008)] = lip
        img[inside & (np.abs(v - (centre + gap)) < 0.009)] = lip
    else:
        img[inside & (np.abs(v - centre) < 0.009)] = lip
    # lighting over the face, then noise
    ang, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.25)
    shade = 1.0 + strength * (np.cos(ang) * u + np.sin(ang) * v) / 0.3
    img = np.where((head | ears)[..., None], img * shade[..., None], img)
    img = img.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    img += rng.normal(0, 0.012, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


@dataclasses.dataclass
class SyntheticFaces(FaceDataset):
    """The embedded synthetic face dataset (see the module docstring)."""

    seed: int = 0

    def load(self, index: int, size: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range (dataset has {len(self)})")
        rng = np.random.default_rng([self.seed, index])
        attrs = sample_attributes(rng)  # same stream as at construction: identity follows
        return render_face(attrs, rng, size)


def synthetic_faces(n: int = 2000, seed: int = 0) -> SyntheticFaces:
    """n faces; attributes computed now, images rendered on demand (deterministic per index)."""
    if n < 1:
        raise ValueError(f"need at least one face, got n={n}")
    rows = []
    for i in range(n):
        a = sample_attributes(np.random.default_rng([seed, i]))
        rows.append([1.0 if a[k] else -1.0 for k in ATTRIBUTES])
    return SyntheticFaces(
        name=f"synthetic_faces-seed{seed}-n{n}",
        attr_names=ATTRIBUTES,
        attrs=np.asarray(rows, np.float32),
        ids=tuple(f"face{i:06d}" for i in range(n)),
        binary=True,
        gender="Male",
        seed=seed,
    )
