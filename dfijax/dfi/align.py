"""Own photos brought to a face dataset's aligned crop, and edits brought back to the photo.

The datasets' faces are aligned: eyes sit at (nearly) fixed places of the square working crop. A
photo is mapped onto that crop by a similarity transform (rotation, uniform scale, translation)
that sends its two eyes onto the dataset's template eyes (`similarity_from_eyes`, `align`), or,
without eye positions, by a centre crop (or edge padding) to the square that is never a stretch
(`fit_matrix`). After the edit, the change (edited − aligned input) goes back through the inverse
transform and is added to the full-resolution photo under a feathered mask that is exactly 0
outside the crop's footprint (`unalign`, `paste_back`), so pixels away from the face are the photo's.

Coordinates: (x, y) pixels, x right, y down, integer values at pixel centres (OpenCV's convention).
A transform is a [2, 3] float64 matrix M with [x', y'] = M @ [x, y, 1], from photo to crop.

Template eyes, as fractions of the square crop's side (fx, fy measured from its top-left corner,
the eye further left in the image first); where they come from:

- synthetic (dfijax.data.synthetic_faces.render_face): the face centre is at (0.5, 0.53) of the
  canvas (± 0.03 / 0.02 jitter), eyes at u = ±ex, v = ey = −0.07 from it with ex uniform in
  [0.09, 0.12] (mean 0.105) and a tilt within ±0.08 rad: eyes at (0.5 ∓ 0.105, 0.46).
- celeba (dfijax.data.celeba, aligned 178×218 images): CelebA's alignment puts the eyes at about
  (69, 111) and (108, 111) (the typical entries of list_landmarks_align_celeba.txt); the project's
  default crop (top 40, left 9, 160×160) moves them to (60, 71) and (99, 71) of 160.
- lfw (dfijax.data.lfw, 250×250 images centred on a Viola-Jones face box enlarged 2.2×): the eyes
  sit at about (100, 110) and (150, 110) (the fixed LFW eye positions of common face-recognition
  crops); the default crop box (40, 20, 210, 190) moves them to (60, 90) and (110, 90) of 170.
  LFW is not eye-aligned, so this is a mean position, looser than CelebA's.

For another crop box of CelebA or LFW the template follows the box (`template_eyes`).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence

import cv2
import numpy as np

from dfijax.data import FaceDataset

# Eye positions in each dataset's source image (x, y) and the image they are measured in.
SYNTHETIC_EYES = ((0.5 - 0.105, 0.53 - 0.07), (0.5 + 0.105, 0.53 - 0.07))  # fractions of the canvas
CELEBA_ALIGNED_EYES = ((69.0, 111.0), (108.0, 111.0))  # pixels of the aligned 178×218 image
LFW_EYES = ((100.0, 110.0), (150.0, 110.0))  # pixels of the 250×250 image


class EyeDetectionError(ValueError):
    """No eyes found automatically (or no detector available); the message says to give them by hand."""


def template_fractions(data: FaceDataset) -> np.ndarray:
    """The dataset's eyes in its square working crop: [2, 2] (x, y) fractions of the side, the eye
    further left in the image first (see the module docstring for the numbers' sources)."""
    name = data.name.split("-")[0]
    if name == "synthetic_faces":
        return np.asarray(SYNTHETIC_EYES, np.float64)
    crop = getattr(data, "crop", None)
    if name == "celeba":
        top, left, height, width = crop if crop is not None else (0, 0, 218, 178)  # CelebA's (top, left, h, w)
        right, bottom = left + width, top + height
        src = CELEBA_ALIGNED_EYES
    elif name == "lfw":
        left, top, right, bottom = crop if crop is not None else (0, 0, 250, 250)
        src = LFW_EYES
    else:
        raise ValueError(f"no eye template for dataset {data.name!r}; use a centre crop (no eye positions) instead")
    # the crop box is resized to the square working size: x and y scale by the box's width and height
    return np.array([((x - left) / (right - left), (y - top) / (bottom - top)) for x, y in src], np.float64)


def template_eyes(data: FaceDataset, size: int) -> np.ndarray:
    """The dataset's template eyes in pixels (centre convention) of its size×size crop: [2, 2]."""
    return template_fractions(data) * size - 0.5


def similarity_from_eyes(src_eyes: np.ndarray | Sequence, dst_eyes: np.ndarray | Sequence) -> np.ndarray:
    """The similarity transform (rotation, uniform scale, translation) that maps the two points
    src_eyes [2, 2] (x, y) exactly onto dst_eyes [2, 2]: a [2, 3] matrix. Two distinct points each."""
    s = np.asarray(src_eyes, np.float64).reshape(2, 2)
    d = np.asarray(dst_eyes, np.float64).reshape(2, 2)
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(d))):
        raise ValueError(f"eye positions must be finite numbers, got {s.tolist()} -> {d.tolist()}")
    zs, zd = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    if abs(zs[1] - zs[0]) < 1e-9 or abs(zd[1] - zd[0]) < 1e-9:
        raise ValueError(f"the two eyes must be at different places, got {s.tolist()} -> {d.tolist()}")
    a = (zd[1] - zd[0]) / (zs[1] - zs[0])  # z' = a z + b: a = scale · e^{i·angle}
    b = zd[0] - a * zs[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """[2, 3] -> the inverse [2, 3] transform."""
    m = np.asarray(matrix, np.float64)
    lin = np.linalg.inv(m[:, :2])
    return np.concatenate([lin, -lin @ m[:, 2:]], axis=1)


def transform_points(matrix: np.ndarray, points: np.ndarray | Sequence) -> np.ndarray:
    """Apply [2, 3] to points [..., 2] (x, y)."""
    p = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def fit_matrix(photo_hw: tuple[int, int], out_hw: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """The transform of `dfijax.images.fit_aspect` followed by a resize to out_hw: the centred
    out_hw-aspect part of the photo (fit="crop"), or the photo padded to that aspect (fit="pad"),
    scaled to out_hw. [2, 3]; the same box as load_image(path, out_hw, fit) takes."""
    if fit not in ("crop", "pad"):
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")
    h, w = photo_hw
    aspect = out_hw[0] / out_hw[1]
    if fit == "crop":
        ch, cw = (h, max(1, round(h / aspect))) if w / h > 1 / aspect else (max(1, round(w * aspect)), w)
        top, left = (h - ch) // 2, (w - cw) // 2
    else:
        ch, cw = (max(h, round(w * aspect)), w) if h / w < aspect else (h, max(w, round(h / aspect)))
        top, left = -((ch - h) // 2), -((cw - w) // 2)
    sx, sy = out_hw[1] / cw, out_hw[0] / ch  # equal up to rounding of the box: never a stretch
    return np.array([[sx, 0.0, (0.5 - left) * sx - 0.5], [0.0, sy, (0.5 - top) * sy - 0.5]], np.float64)


def _scale(matrix: np.ndarray) -> float:
    return math.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2])))


def align(photo: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Warp photo [H, W, C] (float32) by matrix (photo -> output pixels) into [h, w, C] = out_hw.
    Shrinking is antialiased (warped at an integer multiple of the size, then area-averaged down);
    parts outside the photo repeat its edge pixels."""

    x = np.ascontiguousarray(np.asarray(photo, np.float32))
    h, w = out_hw
    f = int(min(8, max(1, math.ceil(1.0 / max(_scale(matrix), 1e-6) - 1e-6))))
    m = np.asarray(matrix, np.float64) * f
    m[:, 2] += (f - 1) / 2  # pixel centres: x_big = f·x + (f − 1)/2
    out = cv2.warpAffine(x, m, (w * f, h * f), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if f > 1:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
    return out.reshape((h, w) + x.shape[2:]).astype(np.float32)


def feather_mask(out_hw: tuple[int, int], feather: float = 0.15) -> np.ndarray:
    """[h, w] in [0, 1]: 1 inside, rising smoothly from exactly 0 at the outermost pixels over
    `feather` × the short side."""
    if not 0.0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5], got {feather}")
    h, w = out_hw
    width = max(1.0, feather * min(h, w))

    def ramp(n):
        i = np.arange(n, dtype=np.float64)
        t = np.clip(np.minimum(i, n - 1 - i) / width, 0.0, 1.0)
        return t * t * (3 - 2 * t)  # smoothstep

    return (ramp(h)[:, None] * ramp(w)[None, :]).astype(np.float32)


def unalign(
    edited: np.ndarray, matrix: np.ndarray, photo_shape: Sequence[int], feather: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """Bring an aligned image edited [h, w, C] back to the photo's frame (inverse of `align`'s
    matrix): ([H, W, C] warped image, [H, W] mask in [0, 1]); the mask is the feathered crop
    (`feather_mask`) in photo coordinates, exactly 0 wherever the photo lies outside the crop."""

    e = np.ascontiguousarray(np.asarray(edited, np.float32))
    h, w = int(photo_shape[0]), int(photo_shape[1])
    m = np.asarray(matrix, np.float64)  # photo -> aligned: exactly the map WARP_INVERSE_MAP wants
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(e, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).reshape((h, w) + e.shape[2:])
    mask = cv2.warpAffine(
        feather_mask(e.shape[:2], feather), m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )
    return warped.astype(np.float32), np.clip(mask, 0.0, 1.0).astype(np.float32)


def paste_back(
    photo: np.ndarray, aligned: np.ndarray, edited: np.ndarray, matrix: np.ndarray, feather: float = 0.15
) -> np.ndarray:
    """The edit at full resolution: photo [H, W, 3] + mask · unalign(edited − aligned), clipped to
    [0, 1]; aligned and edited are [h, w, 3] (the aligned input and its edit). Pixels where the
    mask is 0 (outside the crop) keep the photo's values exactly."""
    photo = np.asarray(photo, np.float32)
    change = np.asarray(edited, np.float32) - np.asarray(aligned, np.float32)
    delta, mask = unalign(change, matrix, photo.shape, feather)
    return np.where(mask[..., None] > 0, np.clip(photo + mask[..., None] * delta, 0.0, 1.0), photo).astype(np.float32)


def parse_eyes(text: str, count: int) -> list[np.ndarray] | None:
    """'x1,y1,x2,y2' per photo, ';'-separated, -> `count` arrays [2, 2] ordered left to right in
    the image; 'auto' -> None (detect them)."""
    if text.strip().lower() == "auto":
        return None
    groups = [g for g in text.split(";") if g.strip()]
    if len(groups) != count:
        raise ValueError(
            f"--eyes gives {len(groups)} eye pairs for {count} photos: one 'x1,y1,x2,y2' per photo, "
            "';'-separated (or 'auto')"
        )
    out = []
    for g in groups:
        try:
            v = [float(t) for t in g.replace(" ", "").split(",")]
        except ValueError:
            v = []
        if len(v) != 4 or not all(np.isfinite(v)):
            raise ValueError(f"--eyes {g.strip()!r} should be four numbers x1,y1,x2,y2 (pixels of the photo)")
        out.append(order_eyes(np.array(v, np.float64).reshape(2, 2)))
    return out


def order_eyes(eyes: np.ndarray) -> np.ndarray:
    """[2, 2] -> the eye further left in the image first (the template's order)."""
    e = np.asarray(eyes, np.float64).reshape(2, 2)
    return e[np.argsort(e[:, 0], kind="stable")]


def _cascades():

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    files = [pathlib.Path(folder or "") / n for n in ("haarcascade_frontalface_default.xml", "haarcascade_eye.xml")]
    if not hasattr(cv2, "CascadeClassifier") or not folder or not all(f.is_file() for f in files):
        raise EyeDetectionError(
            f"automatic eye detection needs OpenCV's Haar cascades, which OpenCV {cv2.__version__} "
            "does not ship (they came with opencv-python-headless<5): pass the eye positions "
            "with --eyes x1,y1,x2,y2"
        )
    return cv2, cv2.CascadeClassifier(str(files[0])), cv2.CascadeClassifier(str(files[1]))


def haar_available() -> bool:
    """Whether `detect_eyes` can run (OpenCV with its Haar cascade files)."""
    try:
        _cascades()
        return True
    except EyeDetectionError:
        return False


def _best_pair(boxes: np.ndarray, centre_x: float | None) -> np.ndarray | None:
    """From eye boxes [n, 4] (x, y, w, h) the likeliest pair: similar sizes, side by side, roughly
    level (and straddling the face's centre when known). [2, 2] centres or None."""
    best, best_cost = None, np.inf
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (x1, y1, w1, h1), (x2, y2, w2, h2) = boxes[i], boxes[j]
            c1, c2 = np.array([x1 + (w1 - 1) / 2, y1 + (h1 - 1) / 2]), np.array([x2 + (w2 - 1) / 2, y2 + (h2 - 1) / 2])
            dx, dy, size = abs(c2[0] - c1[0]), abs(c2[1] - c1[1]), (w1 + w2) / 2
            ratio = max(w1, w2) / min(w1, w2)
            if ratio > 1.6 or dx < 0.8 * size or dx > 4.0 * size or dy > 0.5 * dx:
                continue
            cost = dy / dx + (ratio - 1)
            if centre_x is not None:
                if not min(c1[0], c2[0]) < centre_x < max(c1[0], c2[0]):
                    continue
                cost += abs((c1[0] + c2[0]) / 2 - centre_x) / dx
            if cost < best_cost:
                best, best_cost = np.stack([c1, c2]), cost
    return None if best is None else order_eyes(best)


def detect_eyes(photo: np.ndarray) -> np.ndarray:
    """Eye centres in photo [H, W, 3] in [0, 1] with OpenCV's Haar cascades: the largest frontal
    face, two eyes in its upper half (if no face is found, the best level pair of eyes in the whole
    picture). Returns [2, 2] (x, y) pixels, the eye further left in the image first; raises
    EyeDetectionError (one line, saying to pass the positions by hand) when none are found."""
    cv2, face_cc, eye_cc = _cascades()
    grey = cv2.cvtColor(
        (np.clip(np.asarray(photo, np.float32)[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY
    )
    k = min(1.0, 800.0 / max(grey.shape))  # detect on at most 800 px; positions scaled back
    if k < 1.0:
        grey = cv2.resize(grey, (round(grey.shape[1] * k), round(grey.shape[0] * k)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    side = min(grey.shape)
    faces = face_cc.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(max(24, side // 10),) * 2)
    regions = []
    if len(faces):
        x, y, w, h = (int(v) for v in max(faces, key=lambda f: f[2] * f[3]))
        regions.append(((x, y, w, (h + 1) // 2 + h // 10), x + w / 2, max(8, w // 8)))  # upper half (+ a little)
    regions.append(((0, 0, grey.shape[1], grey.shape[0]), None, max(8, side // 20)))
    for (x, y, w, h), centre_x, min_eye in regions:
        for neighbours in (3, 2, 1):  # strict first; the pair test below screens looser detections
            boxes = eye_cc.detectMultiScale(
                grey[y : y + h, x : x + w], scaleFactor=1.05, minNeighbors=neighbours, minSize=(min_eye, min_eye)
            )
            pair = _best_pair(np.asarray(boxes, np.float64).reshape(-1, 4) + [x, y, 0, 0], centre_x)
            if pair is not None:
                return (pair + 0.5) / k - 0.5 if k < 1.0 else pair  # pixel centres back to the photo's scale
    what = "a face but not two level eyes in it" if len(faces) else "no face with two eyes"
    raise EyeDetectionError(f"automatic eye detection found {what}: pass the eye positions with --eyes x1,y1,x2,y2")
