"""The DFI reference's own-photo pipeline (deepfeatinterp demo2.py): the photo is not cropped. It is kept
at its own resolution (short side at least 200 px, demo2.py:L65, L91-96); 4K database faces are chosen by
attributes with the input's gender and smile held (`rules`, demo2.py:L102-114), each one's 68 dlib landmarks
(computed once per dataset and cached) are fitted to the photo's by `landmarks.fit_face_landmarks`
(demo2.py:L18-40, L120-123), the K best fits kept (L126-127) and each face **warped into the photo's frame**
(utils.warped_image_feed, alignface.warp_to_template: linear, grey 0.5 outside); the attribute vector is
the difference of the two sets' mean features at the photo's size (L128-133, scaling none), and
φ(photo) + δ·w is inverted from the photo (L141-149), then post-processed (`finish`)."""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable

import cv2
import jax.numpy as jnp
import numpy as np

from dfijax import face_models as fm
from dfijax import images as im
from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.dfi import finish, landmarks, rules, solve, specs
from dfijax.dfi.sweep_config import SweepConfig
from dfijax.dfi.sweep_inputs import SweepInputs
from dfijax.weights import VGGWeights

MIN_SIDE = 200  # demo2.py:L65 minimum_resolution
DATABASE_SIZE = 160  # the database faces' size: CelebA's 160×160 centre crop, where the template was measured


@dataclasses.dataclass(frozen=True)
class FullPhotoEdit:
    """photo [H, W, 3] (the working resolution); edited [A, H, W, 3]; alphas; the face edited; target and
    source: the database faces used (the K best fits of each set) with their fit losses; candidates: how
    many of the 4K each set had landmarks for; final_loss [A]; seconds per stage."""

    photo: np.ndarray
    edited: np.ndarray
    alphas: tuple[float, ...]
    face: fm.Face
    target: np.ndarray
    source: np.ndarray
    target_loss: np.ndarray
    source_loss: np.ndarray
    candidates: dict[str, int]
    final_loss: np.ndarray
    seconds: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "size": list(self.photo.shape[:2]),
            "alphas": list(self.alphas),
            "face": self.face.to_dict(),
            "target": self.target.tolist(),
            "source": self.source.tolist(),
            "target_fit_loss": [round(float(v), 3) for v in self.target_loss],
            "source_fit_loss": [round(float(v), 3) for v in self.source_loss],
            "candidates_with_landmarks": self.candidates,
            "final_loss": [float(v) for v in self.final_loss],
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def working_size(shape: tuple[int, int], max_side: int | None = None) -> tuple[int, int]:
    """(h, w) the photo is edited at: scaled up so the short side is at least 200 (demo2.py:L91-96), then
    down so the long side is at most max_side (a CPU's limit), never stretched."""
    h, w = shape
    s = max(1.0, MIN_SIDE / min(h, w))
    if max_side is not None:
        s = min(s, max_side / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def at_size(photo: np.ndarray, face: fm.Face, size: tuple[int, int]) -> tuple[np.ndarray, fm.Face]:
    """The photo resized to size (h, w) and its face's box and landmarks moved with it (pixel centres)."""
    h, w = photo.shape[:2]
    if (h, w) == tuple(size):
        return np.asarray(photo, np.float32), face
    sy, sx = size[0] / h, size[1] / w
    pts = (np.asarray(face.landmarks) + 0.5) * [sx, sy] - 0.5
    left, top, right, bottom = face.box
    box = (round(left * sx), round(top * sy), round(right * sx), round(bottom * sy))
    return im.resize_array(np.asarray(photo, np.float32), size), fm.Face(box, face.score, pts)


def mask_for(photo_path: str, mask_path: str | None, size: tuple[int, int]) -> np.ndarray | None:
    """demo2's `mask` post-processing (demo2.py:L152-161): the mask given, else `<photo>-mask.png` beside the
    photo where there is one, as [h, w] weights in [0, 1] at the working size (white: the edit; black: the
    photo); None without either."""
    path = mask_path or str(pathlib.Path(photo_path).with_name(pathlib.Path(photo_path).stem + "-mask.png"))
    if mask_path is None and not pathlib.Path(path).is_file():
        return None
    return im.load_image(path, size).mean(-1)


def database_landmarks(
    data: FaceDataset,
    indices: np.ndarray,
    models: fm.FaceModels,
    cache: pathlib.Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """[n, 68, 2] (x, y) dlib landmarks of the database faces at DATABASE_SIZE (NaN where dlib finds no single
    face), each computed once and kept in `cache` (a .npz per dataset)."""
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            known = dict(zip(z["ids"].tolist(), z["points"]))
    todo = [int(i) for i in indices if data.ids[int(i)] not in known]
    for start in range(0, len(todo), 64):
        chunk = todo[start : start + 64]
        for i, image in zip(chunk, data.images(chunk, DATABASE_SIZE)):
            faces = models.detect(image)
            known[data.ids[i]] = faces[0].landmarks if len(faces) == 1 else np.full((68, 2), np.nan)
        if progress:
            progress(len(chunk))
    if todo and cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, ids=np.array(list(known)), points=np.stack(list(known.values())))
        tmp.replace(cache)
    return np.stack([known[data.ids[int(i)]] for i in indices]) if len(indices) else np.zeros((0, 68, 2))


def fit_to_photo(points: np.ndarray, photo_points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(losses [n], matrices [n, 2, 3]) of each database face's 68 landmarks fitted to the photo's on all 68
    (demo2.py:L18-40: a failed fit, or a face without landmarks, gets inf)."""
    losses, mats = np.full(len(points), np.inf), np.zeros((len(points), 2, 3))
    for j, p in enumerate(points):
        if not np.isfinite(p).all():
            continue
        try:
            mats[j], losses[j] = landmarks.fit_face_landmarks(p, photo_points, shape, range(68))
        except landmarks.FitError:
            pass
    return losses, mats


def warp_into(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A database face warped into the photo's frame (alignface.warp_to_template: linear, grey outside)."""
    return cv2.warpAffine(
        np.ascontiguousarray(image, np.float32),
        np.asarray(matrix, np.float64),
        (shape[1], shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0.5, 0.5, 0.5),
    )


def mean_warped_features(
    loss: inv.FeatureLoss, variables, data: FaceDataset, idx: np.ndarray, mats: np.ndarray, shape, batch: int
) -> dict[str, np.ndarray]:
    """Mean φ of the database faces idx, each warped into the photo's frame by its matrix."""
    total: dict[str, np.ndarray] = {}
    for start in range(0, len(idx), batch):
        chunk = idx[start : start + batch]
        faces = data.images(chunk.tolist(), DATABASE_SIZE)
        warped = np.stack([warp_into(f, m, shape) for f, m in zip(faces, mats[start : start + batch])])
        if len(chunk) < batch:  # one compile
            warped = np.concatenate([warped, np.zeros((batch - len(chunk),) + warped.shape[1:], np.float32)])
        feats = inv.feature_targets(loss, variables, jnp.asarray(warped))
        for t in loss.taps:
            total[t] = total.get(t, 0.0) + np.asarray(feats[t][: len(chunk)], np.float64).sum(0)
    return {t: (v / len(idx)).astype(np.float32) for t, v in total.items()}


def edit_photo(
    config: SweepConfig,
    data: FaceDataset,
    weights: VGGWeights,
    photo: np.ndarray,
    query: np.ndarray,
    edit: str,
    models: fm.FaceModels,
    face: fm.Face | None = None,
    cache_root: str | pathlib.Path | None = None,
    progress: solve.Progress | None = None,
) -> FullPhotoEdit:
    """demo2's edit of one face of `photo` [H, W, 3] in [0, 1] (already at its working size, `working_size`):
    query [A] its attributes (NaN unknown), edit a spec such as 'Young-'; face: the face to edit (default the
    first dlib finds; a photo without one is a one-line ValueError)."""
    progress = progress or (lambda *a: None)
    t0 = time.perf_counter()
    x = np.asarray(photo, np.float32)
    shape = x.shape[:2]
    if face is None:
        found = models.detect(x)
        if not found:
            raise ValueError("dlib finds no face in the photo: the full-photo pipeline needs one")
        face = found[0]
    spec = specs.parse_edit(edit, data.attr_names)
    k = config.neighbours.k
    wide = dataclasses.replace(config, neighbours=dataclasses.replace(config.neighbours, k=4 * k, allow_fewer=True))
    one = SweepInputs(np.zeros((1, 8, 8, 3), np.float32), np.asarray(query, np.float32)[None], (None,), ("photo",))
    sets = rules.RULES[config.neighbours.rule](wide, data, one)(0, spec, None)
    cache = pathlib.Path(cache_root) / "landmarks" / f"{data.name}-{DATABASE_SIZE}.npz" if cache_root else None
    fits = {}
    for name, idx in (("target", sets.target), ("source", sets.source)):
        pts = database_landmarks(
            data, idx, models, cache, lambda n, s=name: progress(f"landmarks {s}", n, len(idx), {})
        )
        losses, mats = fit_to_photo(pts, face.landmarks, shape)
        best = landmarks.best_fits(losses, k)
        best = best[np.isfinite(losses[best])]
        if len(best) == 0:
            raise ValueError(f"no {name} neighbour's landmarks could be fitted to the photo's face")
        fits[name] = (idx[best], losses[best], mats[best], int(np.isfinite(losses).sum()))
    t1 = time.perf_counter()
    weights = config.objective.network(weights)
    loss = config.objective.feature_loss(weights.pretrained)
    means = {
        name: mean_warped_features(loss, weights.variables, data, f[0], f[2], shape, config.batch)
        for name, f in fits.items()
    }
    w = {t: jnp.asarray(means["target"][t] - means["source"][t])[None] for t in loss.taps}
    t2 = time.perf_counter()
    xb = jnp.asarray(x)[None]
    edited, final = solve.solve_alphas(config, loss, weights.variables, xb, w, config.alphas, progress, shard=False)
    edited = np.asarray(finish.match_colors(config, jnp.asarray(edited), xb))[0]
    t3 = time.perf_counter()
    return FullPhotoEdit(
        x,
        np.clip(edited, 0, 1),
        tuple(config.alphas),
        face,
        fits["target"][0],
        fits["source"][0],
        fits["target"][1],
        fits["source"][1],
        {"target": fits["target"][3], "source": fits["source"][3]},
        np.asarray(final)[0],
        {"neighbours_and_fits": t1 - t0, "vector": t2 - t1, "solve": t3 - t2},
    )
