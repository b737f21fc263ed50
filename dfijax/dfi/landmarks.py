"""Own photos aligned to a dataset's crop by dlib's 68 landmarks, as deepfeatinterp fits them
(models/facemodel/alignface.py `fit_face_landmarks`): a two-scale similarity

    M = [[c·sx, −s·sx, dx·sx], [s·sy, c·sy, dy·sy]]   (c, s = cos θ, sin θ)

from photo to crop, minimising ½‖M·[p; 1] − t‖² over landmarks [33, 39, 42, 8] (nose tip, inner eye
corners, chin) against the dataset's landmark template t; scale started from the inner eye corners,
the offset from the nose tip; bounds 0 ≤ sx, sy ≤ the larger side, |θ| ≤ π; scipy's L-BFGS-B and TNC
both run and the lower loss is kept. The fit runs in the reference's (y, x) order (its first scale is the
rows'), so the solvers take the reference's path; points in and the matrix out are (x, y), as everywhere in
`dfi.align`.

Templates, [68, 2] (x, y) pixels of the dataset's size×size working crop (`template`):
- celeba: the reference's own `celeba_dlib_template.npz` (the mean dlib landmarks of CelebA's aligned
  images centre-cropped to 160×160, `compute_template`; its numbers below), moved to the dataset's crop.
- synthetic faces: the renderer draws no landmarks, so dlib's own were measured on its faces as
  `compute_template` does (the mean over the 195 of 400 seed-0 faces at 160 px in which dlib finds exactly
  one face; `SYNTHETIC_TEMPLATE`, fractions of the crop's side); their eye centres lie within 1 px (at
  64 px) of the renderer's eyes (`dfi.align.SYNTHETIC_EYES`), and a fresh measurement is checked against
  them in the tests.
- any other dataset (LFW): the mean of dlib's landmarks over the dataset's own crops, as
  `compute_template` does (`compute_template`; cached by the caller).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.optimize

from dfijax.data import FaceDataset

FIT_LANDMARKS = (33, 39, 42, 8)
SCALE_LANDMARKS = (39, 42)
LOCATION_LANDMARK = 33


class FitError(ValueError):
    """The landmarks could not be fitted to the template (neither solver converged)."""


def _affine(q: np.ndarray) -> np.ndarray:
    """M(q) for q = (s1, s2, θ, d1, d2): [[c·s1, −s·s1, d1·s1], [s·s2, c·s2, d2·s2]]."""
    sx, sy, th, dx, dy = q
    c, s = np.cos(th), np.sin(th)
    return np.array([[c * sx, -s * sx, dx * sx], [s * sy, c * sy, dy * sy]])


def _loss_and_grad(q: np.ndarray, p: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """½‖M(q)·p − t‖² and its gradient in q = (sx, sy, θ, dx, dy); p [3, n] homogeneous, t [2, n]."""
    sx, sy, th, dx, dy = q
    c, s = np.cos(th), np.sin(th)
    r = _affine(q) @ p - t  # [2, n]
    x, y = p[0], p[1]
    u = c * x - s * y + dx  # row 0 = sx·u
    v = s * x + c * y + dy  # row 1 = sy·v
    du_dth, dv_dth = -s * x - c * y, c * x - s * y
    grad = np.array(
        [
            np.sum(r[0] * u),
            np.sum(r[1] * v),
            np.sum(r[0] * sx * du_dth + r[1] * sy * dv_dth),
            np.sum(r[0]) * sx,
            np.sum(r[1]) * sy,
        ]
    )
    return 0.5 * float(np.sum(r * r)), grad


def fit_face_landmarks(
    points: np.ndarray,
    template: np.ndarray,
    image_dims: tuple[int, int],
    landmarks: Sequence[int] = FIT_LANDMARKS,
) -> tuple[np.ndarray, float]:
    """(M [2, 3] mapping the face's (x, y) points onto the template's, its loss ½‖M·p − t‖²) for a face's
    68 landmarks `points` and a `template` [68, 2], both (x, y); image_dims (h, w) of the template's frame
    bounds the scales. FitError when neither L-BFGS-B nor TNC converges."""
    pts, tpl = np.asarray(points, np.float64), np.asarray(template, np.float64)
    if pts.shape != tpl.shape or pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise ValueError(f"landmarks and template must be matching finite [n, 2] arrays, got {pts.shape}, {tpl.shape}")
    pts, tpl = pts[:, ::-1], tpl[:, ::-1]  # (y, x), the reference's order
    idx = list(landmarks)
    p = np.concatenate([pts[idx].T, np.ones((1, len(idx)))])
    t = tpl[idx].T
    big = float(max(image_dims))
    a, b = SCALE_LANDMARKS
    scale = min(np.linalg.norm(tpl[a] - tpl[b]) / (np.linalg.norm(pts[a] - pts[b]) + 1e-5), big)
    offset = tpl[LOCATION_LANDMARK] / scale - pts[LOCATION_LANDMARK]
    q0 = np.array([scale, scale, 0.0, offset[0], offset[1]])
    bounds = [(0.0, big), (0.0, big), (-3.1415926, 3.1415926), (-(big**2), big**2), (-(big**2), big**2)]
    fits = [
        scipy.optimize.minimize(_loss_and_grad, q0, args=(p, t), jac=True, method=m, bounds=bounds)
        for m in ("L-BFGS-B", "TNC")
    ]
    if not any(f.success for f in fits):
        raise FitError(f"the face's landmarks could not be fitted to the template ({fits[0].message})")
    m = _affine(min(fits, key=lambda f: f.fun).x)
    loss = 0.5 * float(np.sum((m @ p - t) ** 2))
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])  # the (y, x) map on (x, y) points
    return np.concatenate([swap @ m[:, :2] @ swap, swap @ m[:, 2:]], axis=1), loss


def best_fits(losses: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k lowest fit losses, lowest first (failed fits carry inf)."""
    return np.argsort(np.asarray(losses, np.float64), kind="stable")[:k]


# deepfeatinterp models/facemodel/celeba_dlib_template.npz: (y, x) of the 68 dlib landmarks, mean over
# CelebA's aligned 218×178 images centre-cropped to 160×160 (alignface.py `compute_template`)
CELEBA_TEMPLATE_YX = np.array(
    [
        (84.315, 36.523),
        (95.777, 36.807),
        (107.244, 38.091),
        (118.604, 40.299),
        (129.259, 44.355),
        (138.761, 50.904),
        (146.817, 59.071),
        (153.360, 68.452),
        (155.223, 79.305),
        (153.462, 90.254),
        (147.173, 99.939),
        (139.284, 108.487),
        (129.944, 115.335),
        (119.239, 119.635),
        (107.726, 121.904),
        (96.096, 123.188),
        (84.421, 123.599),
        (75.102, 44.183),
        (70.594, 49.609),
        (69.477, 56.929),
        (70.690, 64.452),
        (73.660, 71.599),
        (73.629, 86.614),
        (70.619, 93.934),
        (69.472, 101.614),
        (70.741, 109.086),
        (75.223, 114.787),
        (82.548, 79.066),
        (90.071, 78.990),
        (97.660, 78.898),
        (105.386, 78.812),
        (110.203, 70.619),
        (111.827, 74.635),
        (113.239, 78.985),
        (111.873, 83.386),
        (110.360, 87.457),
        (83.508, 52.827),
        (80.640, 57.497),
        (80.858, 63.188),
        (84.731, 67.975),
        (85.635, 62.685),
        (85.523, 57.132),
        (84.807, 90.655),
        (81.025, 95.528),
        (80.914, 101.203),
        (83.721, 105.909),
        (85.726, 101.594),
        (85.726, 96.000),
        (123.609, 61.914),
        (120.934, 68.051),
        (119.843, 74.472),
        (120.924, 79.173),
        (119.904, 83.934),
        (121.015, 90.533),
        (123.721, 97.157),
        (130.660, 90.909),
        (133.761, 84.376),
        (134.315, 79.152),
        (133.701, 74.066),
        (130.604, 67.751),
        (124.122, 64.477),
        (123.721, 74.411),
        (124.213, 79.173),
        (123.726, 83.995),
        (124.147, 94.492),
        (127.934, 84.102),
        (128.543, 79.137),
        (127.888, 74.294),
    ],
    np.float64,
)
CELEBA_TEMPLATE_CROP = (29, 9, 160, 160)  # (top, left, h, w) of that centre crop in the 218×178 image


# dlib's 68 landmarks on the synthetic faces (dfijax.data.synthetic_faces, seed 0): (x, y) fractions of the
# square crop's side (pixel p at size s is p = f·s − 0.5), from compute_template(data, count=400, size=160)
SYNTHETIC_TEMPLATE = np.array(
    [
        (0.2249, 0.4538),
        (0.2291, 0.5258),
        (0.2375, 0.5981),
        (0.2523, 0.6679),
        (0.2795, 0.7330),
        (0.3200, 0.7900),
        (0.3726, 0.8379),
        (0.4301, 0.8724),
        (0.4953, 0.8828),
        (0.5601, 0.8717),
        (0.6176, 0.8379),
        (0.6705, 0.7910),
        (0.7111, 0.7351),
        (0.7387, 0.6708),
        (0.7546, 0.6022),
        (0.7647, 0.5308),
        (0.7703, 0.4590),
        (0.2986, 0.4063),
        (0.3346, 0.3881),
        (0.3759, 0.3849),
        (0.4166, 0.3918),
        (0.4549, 0.4098),
        (0.5441, 0.4117),
        (0.5807, 0.3948),
        (0.6210, 0.3880),
        (0.6614, 0.3911),
        (0.6976, 0.4094),
        (0.4983, 0.4695),
        (0.4984, 0.5137),
        (0.4982, 0.5570),
        (0.4982, 0.6018),
        (0.4567, 0.6361),
        (0.4763, 0.6431),
        (0.4971, 0.6481),
        (0.5174, 0.6433),
        (0.5373, 0.6365),
        (0.3412, 0.4659),
        (0.3701, 0.4433),
        (0.4083, 0.4457),
        (0.4358, 0.4786),
        (0.4029, 0.4895),
        (0.3652, 0.4875),
        (0.5598, 0.4792),
        (0.5870, 0.4459),
        (0.6255, 0.4442),
        (0.6543, 0.4667),
        (0.6299, 0.4888),
        (0.5924, 0.4901),
        (0.4019, 0.7341),
        (0.4365, 0.7183),
        (0.4734, 0.7091),
        (0.4960, 0.7150),
        (0.5181, 0.7093),
        (0.5543, 0.7180),
        (0.5903, 0.7335),
        (0.5570, 0.7732),
        (0.5212, 0.7886),
        (0.4962, 0.7918),
        (0.4705, 0.7886),
        (0.4341, 0.7727),
        (0.4168, 0.7353),
        (0.4732, 0.7278),
        (0.4960, 0.7300),
        (0.5182, 0.7280),
        (0.5755, 0.7354),
        (0.5192, 0.7570),
        (0.4961, 0.7603),
        (0.4727, 0.7570),
    ],
    np.float64,
)


def _to_crop(points: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """(x, y) pixels of an image -> pixels of the box (left, top, right, bottom) resized to size×size."""
    left, top, right, bottom = box
    return np.stack(
        [
            (points[:, 0] - left + 0.5) * size / (right - left) - 0.5,
            (points[:, 1] - top + 0.5) * size / (bottom - top) - 0.5,
        ],
        axis=1,
    )


def celeba_template(crop: tuple[int, int, int, int] | None, size: int) -> np.ndarray:
    """The reference's CelebA template in the working crop (top, left, h, w) of the aligned image at size."""
    top0, left0 = CELEBA_TEMPLATE_CROP[:2]
    xy = CELEBA_TEMPLATE_YX[:, ::-1] + [left0, top0]  # pixels of the aligned 218×178 image
    top, left, h, w = crop if crop is not None else (0, 0, 218, 178)
    return _to_crop(xy, (left, top, left + w, top + h), size)


def eye_centres(points: np.ndarray) -> np.ndarray:
    """[2, 2]: the means of landmarks 36-41 and 42-47 (the eye left in the image first)."""
    return np.stack([points[36:42].mean(0), points[42:48].mean(0)])


def template(data: FaceDataset, size: int, computed: np.ndarray | None = None) -> np.ndarray:
    """The dataset's 68-landmark template [68, 2] (x, y) in its size×size crop: CelebA's from the
    reference's numbers, the synthetic faces' as measured, any other dataset's from `computed`
    (`compute_template`'s fractions of the crop's side); else a one-line ValueError."""
    name = data.name.split("-")[0]
    if name == "celeba":
        return celeba_template(getattr(data, "crop", None), size)
    if name == "synthetic_faces":
        return SYNTHETIC_TEMPLATE * size - 0.5
    if computed is not None:
        return np.asarray(computed, np.float64) * size - 0.5
    raise ValueError(f"no landmark template for dataset {data.name!r}: compute one from its images (compute_template)")


def compute_template(
    data: FaceDataset, detect: Callable[[np.ndarray], list], count: int = 500, size: int = 160, seed: int = 0
) -> tuple[np.ndarray, int]:
    """(the mean 68 landmarks of the dataset's crops as fractions of the side [68, 2] (x, y), how many
    crops had exactly one face): `compute_template` of alignface.py over up to `count` crops drawn at
    random at size×size; `detect(image)` -> the faces found (`face_models.FaceModels.detect`)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data), min(count, len(data)), replace=False))
    total, n = np.zeros((68, 2)), 0
    for start in range(0, len(idx), 64):
        for image in data.images(idx[start : start + 64].tolist(), size):
            faces = detect(image)
            if len(faces) == 1:  # alignface.py: images with zero or several faces are skipped
                total += faces[0].landmarks
                n += 1
    if n == 0:
        raise ValueError(f"dlib found no single face in {len(idx)} images of {data.name}: no landmark template")
    return (total / n + 0.5) / size, n
