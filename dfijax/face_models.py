"""dlib's face models, as the DFI reference and the face-recognition field use them: the HOG frontal-face
detector (`dlib.get_frontal_face_detector`, deepfeatinterp's alignface.py) or the CNN one (MMOD), the
68-point landmark predictor, and the ResNet face descriptor (128-d; two photos of one person lie closer
than `SAME_PERSON` = 0.6, 99.38 % on LFW), from the `dlib-bin` and `face-recognition-models` packages
(the `faces` extra). Images are RGB [H, W, 3] in [0, 1]; points are (x, y) pixels, integer at pixel
centres; a face's box is (left, top, right, bottom)."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import pathlib

import numpy as np

SAME_PERSON = 0.6  # dlib's descriptor: below this distance, the same person
INSTALL = 'pip install -e ".[faces]"'
FILES = {
    "landmarks": "shape_predictor_68_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}
DETECTORS = ("hog", "cnn")


class FaceModelsMissing(ValueError):
    """dlib or its model files are not installed; the message names the extra to install."""


@dataclasses.dataclass(frozen=True)
class Face:
    """One face found in a photo: box (left, top, right, bottom) pixels, the detector's score, and its
    68 landmarks [68, 2] (x, y) in iBUG 300-W order (33 nose tip, 39/42 inner eye corners, 8 chin)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def eyes(self) -> np.ndarray:
        """[2, 2] eye centres (x, y): the mean of landmarks 36-41 and of 42-47, left in the image first."""
        return np.stack([self.landmarks[36:42].mean(0), self.landmarks[42:48].mean(0)])

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 4), "landmarks": self.landmarks.tolist()}


def model_dir() -> pathlib.Path:
    """The folder of face-recognition-models' files, found without importing the package (its
    `__init__` needs `pkg_resources`, which recent setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(f"dlib's face model files are not installed: {INSTALL}")
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "models"


def available() -> bool:
    """Whether dlib and its model files are installed."""
    try:
        return importlib.util.find_spec("dlib") is not None and (model_dir() / FILES["landmarks"]).is_file()
    except FaceModelsMissing:
        return False


def _uint8(photo: np.ndarray) -> np.ndarray:
    x = np.asarray(photo)
    if x.ndim != 3 or x.shape[-1] < 3:
        raise ValueError(f"a face photo is [H, W, 3], got shape {x.shape}")
    if x.dtype != np.uint8:
        x = (np.clip(np.asarray(x, np.float32)[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(x[..., :3])


class FaceModels:
    """dlib's detector, landmark predictor and descriptor, loaded once (`load()`)."""

    def __init__(self, folder: pathlib.Path | None = None):
        try:
            import dlib  # optional: the faces extra
        except ImportError as e:
            raise FaceModelsMissing(f"finding faces with dlib needs dlib: {INSTALL}") from e
        folder = folder or model_dir()
        missing = [n for n in FILES.values() if not (folder / n).is_file()]
        if missing:
            raise FaceModelsMissing(f"{folder} lacks {', '.join(missing)}: {INSTALL}")
        self._dlib = dlib
        self._folder = folder
        self._hog = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(folder / FILES["landmarks"]))
        self._descriptor = dlib.face_recognition_model_v1(str(folder / FILES["descriptor"]))

    @functools.cached_property
    def _cnn(self):
        return self._dlib.cnn_face_detection_model_v1(str(self._folder / FILES["cnn"]))

    def boxes(self, photo: np.ndarray, detector: str = "hog", upsample: int | None = None) -> list[tuple]:
        """[(box, score)] of the faces in photo, left to right. upsample: times the photo is doubled
        before detecting (None: until its short side is at least 400 px, once more if no face is found;
        dlib's HOG finds faces of about 80 px and more)."""
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        img = _uint8(photo)
        side = min(img.shape[:2])
        first = next((u for u in range(3) if side * 2**u >= 400), 3)  # faces of a group photo are small
        tries = [upsample] if upsample is not None else [first, first + 1] if first < 3 else [first]
        found: list[tuple] = []
        for u in tries:
            if detector == "hog":
                rects, scores, _ = self._hog.run(img, u, 0.0)
                found = list(zip(rects, scores))
            else:
                found = [(d.rect, d.confidence) for d in self._cnn(img, u)]
            if found:
                break
        out = [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in found]
        return sorted(out, key=lambda b: (b[0][0] + b[0][2]) / 2)

    def landmarks(self, photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The 68 landmarks [68, 2] (x, y) of the face in `box`."""
        shape = self._predictor(_uint8(photo), self._dlib.rectangle(*map(int, box)))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def detect(self, photo: np.ndarray, detector: str = "hog", upsample: int | None = None) -> list[Face]:
        """Every face in the photo with its landmarks, left to right."""
        img = _uint8(photo)
        return [Face(b, s, self.landmarks(img, b)) for b, s in self.boxes(img, detector, upsample)]

    def descriptor(self, photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The face's 128-d descriptor, from the photo and the face's 68 landmarks (x, y)."""
        pts = np.asarray(landmarks, np.float64)
        if pts.shape != (68, 2) or not np.isfinite(pts).all():
            raise ValueError(f"a face descriptor needs 68 finite (x, y) landmarks, got shape {pts.shape}")
        rect = self._dlib.rectangle(*(int(v) for v in (*pts.min(0), *pts.max(0))))
        parts = self._dlib.points([self._dlib.point(int(round(x)), int(round(y))) for x, y in pts])
        shape = self._dlib.full_object_detection(rect, parts)
        return np.asarray(self._descriptor.compute_face_descriptor(_uint8(photo), shape), np.float64)


@functools.cache
def load() -> FaceModels:
    """The models, loaded once per process (about 1 s); FaceModelsMissing (one line) without the extra."""
    return FaceModels()


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two descriptors (< SAME_PERSON: the same person)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def same_person_share(distances: np.ndarray) -> float:
    """The share of distances below SAME_PERSON (NaN entries, faces not found, left out)."""
    d = np.asarray(distances, np.float64)
    d = d[np.isfinite(d)]
    return float(np.mean(d < SAME_PERSON)) if d.size else math.nan
