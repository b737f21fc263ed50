"""The studio's work, without a user interface: each method is the library call the matching
experiment makes, on pictures in memory, with what it loaded (dataset, weights, probe, trained runs)
kept for the next request. Thread-safe: requests of several browser sessions share one `Studio`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import numpy as np
import tyro
from PIL import Image, ImageDraw, ImageFont

from dfijax import config, fusion, runtime
from dfijax import face_models as fm
from dfijax import images as im
from dfijax import style as st
from dfijax.data.faces import FaceSource
from dfijax.dfi import align, face_crops, identity, presets, sweep, sweep_inputs
from dfijax.dtn import translator
from dfijax.fusion import figures
from dfijax.fusion.data import to_signed
from dfijax.fusion.pipeline import square_crop
from dfijax.style import fast, fast_run
from dfijax.weights import load_vgg

# progress(stage, done, total, info), as the library pipelines report it
Progress = Callable[[str, int, int, dict], None]

LADDER = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DFI_PRESETS = ("dfijax", "official", "chainer")
STYLE_PRESETS = ("quick", "paper")
PRESERVE = ("none", "luminance", "chol", "pca", "sym")
TRAIN_COMMANDS = {
    "fusion": "python -m experiments.train_fusion --out runs/fusion/default   (cpu_small preset, minutes on a CPU)",
    "fast_style": "python -m experiments.train_fast_style --out runs/fast_style/default   (quick preset)",
    "dtn": "python -m experiments.train_dtn --steps 200 --no-ablations --out runs/dtn/default   (minutes on a CPU)",
}
# the file each kind of run keeps beside its checkpoints (how a run folder is recognised)
RUN_MARKERS = {"fusion": "fusion_config.json", "fast_style": "config.json", "dtn": "f_params.msgpack"}


@dataclasses.dataclass(frozen=True)
class StudioConfig:
    """What the studio serves. The DFI edit runs a preset's objective at these sizes, iterations and K
    (so an edit takes seconds); trained runs are looked for under `runs`."""

    faces: Annotated[FaceSource, config.FLAT] = FaceSource()
    """the faces the DFI tab takes its neighbours from (the embedded synthetic faces by default)"""
    weights: str | None = None
    """converted VGG-19 weights (.safetensors); default: weights/ or a seeded random net (announced as NOT
    pretrained)"""
    size: Annotated[int, config.Bounds(ge=32)] = 64
    """DFI working size in pixels"""
    iters: Annotated[int, config.POSITIVE] = 100
    """DFI L-BFGS iterations per Edit (a field in the page too)"""
    k: Annotated[int, config.POSITIVE] = 100
    """DFI neighbours in each of the target and source sets"""
    ladder: Annotated[tuple[float, ...], config.flag("alphas"), config.comma_list(float)] = LADDER
    """the α ladder of one Edit (inverted in one call)"""
    probe_steps: Annotated[int, config.POSITIVE] = 300
    """attribute probe training steps (cached)"""
    probe_train: Annotated[int, config.POSITIVE] = 2000
    """attribute probe training images"""
    runs: str = "runs"
    """where trained runs are looked for (runs/fusion/*, runs/fast_style/*, runs/dtn/*)"""
    fusion: str | None = None
    """a fusion run folder to open first"""
    fast_style: str | None = None
    """a fast-style run folder to open first"""
    dtn: str | None = None
    """a DTN run folder to open first"""
    style_size: Annotated[int, config.Bounds(ge=32)] = 128
    """Gatys 'quick' size in pixels"""
    style_iters: Annotated[int, config.POSITIVE] = 100
    """Gatys 'quick' iterations"""
    max_pixels: Annotated[int, config.POSITIVE] = 24_000_000
    """largest upload accepted, in pixels"""
    cache: Annotated[str | None, tyro.conf.Suppress] = None
    """the feature, vector and probe caches' folder (None: no disk cache)"""
    seed: int = 0
    """the random net's and the embedded faces' seed"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if not self.ladder:
            raise ValueError("ladder must hold at least one alpha")
        object.__setattr__(self, "ladder", tuple(float(a) for a in self.ladder))


@dataclasses.dataclass
class Inspection:
    """A photo read for editing: eyes [2, 2] (x, y) in the photo (None: not found, centre-crop),
    the crop [S, S, 3], the probe's probabilities per attribute, and a note for the user; faces: every
    face dlib found, left to right (numbered from 1 on the page; empty without the faces extra or a face),
    the eyes, crop and probabilities then being the first face's."""

    eyes: np.ndarray | None
    crop: np.ndarray
    matrix: np.ndarray
    probabilities: dict[str, float]
    note: str
    faces: tuple = ()


@dataclasses.dataclass
class Ladder:
    """One Edit: the crop [S, S, 3] and its edits [A, S, S, 3] for alphas, all in [0, 1]; the photo's
    transform into the crop (for the full-resolution paste-back); timings and how the work went."""

    edit: str
    preset: str
    alphas: tuple[float, ...]
    crop: np.ndarray
    edited: np.ndarray
    matrix: np.ndarray
    seconds: float
    engine_seconds: float
    vector_cached: bool
    attributes: dict[str, float]

    faces: tuple[int, ...] = ()  # the numbers of the faces edited (dlib's, from 1); empty: one crop
    crops: np.ndarray | None = None  # [F, S, S, 3] every edited face's crop (the first is `crop`)
    ladders: np.ndarray | None = None  # [F, A, S, S, 3] their edits (the first is `edited`)
    matrices: np.ndarray | None = None  # [F, 2, 3]
    distances: np.ndarray | None = None  # [F, A] dlib's descriptor distance of each edit (in the photo)

    def nearest(self, alpha: float) -> int:
        return int(np.argmin(np.abs(np.asarray(self.alphas) - float(alpha))))


def draw_eyes(photo: np.ndarray, eyes: np.ndarray | None) -> np.ndarray:
    """The photo with a ring around each eye (for checking the detection), [H, W, 3] in [0, 1]."""

    pic = Image.fromarray(im.to_uint8(photo))
    if eyes is not None:
        d = ImageDraw.Draw(pic)
        r = max(3.0, 0.12 * float(np.linalg.norm(eyes[1] - eyes[0])))
        for x, y in eyes:
            for w, c in ((max(2, int(r / 3)), (0, 0, 0)), (max(1, int(r / 6)), (255, 230, 0))):
                d.ellipse((x - r, y - r, x + r, y + r), outline=c, width=w)
    return np.asarray(pic, np.float32) / 255.0


def draw_faces(photo: np.ndarray, faces: Sequence[fm.Face]) -> np.ndarray:
    """The photo with a numbered ring around each face dlib found (1 = leftmost), [H, W, 3] in [0, 1]."""

    pic = Image.fromarray(im.to_uint8(photo))
    d = ImageDraw.Draw(pic)
    for n, face in enumerate(faces, 1):
        left, top, right, bottom = face.box
        cx, cy, r = (left + right) / 2, (top + bottom) / 2, 0.75 * max(right - left, bottom - top)
        w = max(2, int(r / 25))
        for width, colour in ((w + 2, (0, 0, 0)), (w, (255, 230, 0))):
            d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=width)
        s = max(12, int(r / 3))
        font = ImageFont.load_default(size=s)
        x, y = cx - 0.72 * r, cy - 0.72 * r
        d.rectangle((x - s * 0.35, y - s * 0.15, x + s * 0.85, y + s * 1.15), fill=(0, 0, 0))
        d.text((x, y), str(n), fill=(255, 230, 0), font=font)
    return np.asarray(pic, np.float32) / 255.0


def parse_faces(chosen: Sequence[str] | None, count: int) -> list[int]:
    """The face numbers ('1', '2', …) chosen on the page, as indices; none chosen: every face."""
    picked = sorted({int(c) for c in chosen or ()})
    if any(not 1 <= n <= count for n in picked):
        raise ValueError(f"faces {picked}: this photo has faces 1 to {count}")
    return [n - 1 for n in picked] or list(range(count))


def parse_eyes(text: str | None) -> np.ndarray | None:
    """'x1,y1,x2,y2' -> [2, 2] (empty: None, centre-crop the photo). One-line ValueError."""

    if text is None or not text.strip():
        return None
    return align.parse_eyes(text, 1)[0]


def sample_images(seed: int = 0) -> dict[str, np.ndarray]:
    """The example pictures: scikit-learn's two photos, the embedded scene and painting."""

    from sklearn.datasets import load_sample_image  # here: sklearn.datasets takes 1 s to import

    out = {n: load_sample_image(f"{n}.jpg").astype(np.float32) / 255.0 for n in ("china", "flower")}
    out["scene"] = im.synthetic_scene(192, 256, seed=1)
    out["painting"] = im.synthetic_painting(192, 192, seed=3)
    return out


class Studio:
    """The shared state of a studio server (see StudioConfig)."""

    def __init__(self, config: StudioConfig = StudioConfig()):
        self.config = config
        self._lock = threading.RLock()
        self._data = self._weights = self._probe = None
        self._runs: dict[tuple[str, str], Any] = {}
        self.engine_calls = 0

    # -- what is loaded -------------------------------------------------------------------------
    @property
    def data(self):
        with self._lock:
            if self._data is None:
                c = self.config
                self._data = c.faces.load(c.seed)
            return self._data

    @property
    def weights(self):

        with self._lock:
            if self._weights is None:
                self._weights = load_vgg(self.config.weights, depth=19, seed=self.config.seed)
            return self._weights

    def header(self) -> str:
        """Which weights (pretrained or NOT), which dataset, which device: the page's first line."""

        w = self.weights
        kind = "" if not w.pretrained else " (pretrained)"
        faces, device = self.data.describe(), runtime.device_summary()
        return f"**Weights:** {w.description}{kind}. **Faces:** {faces}. **Device:** {device}."

    def face_example(self, index: int, size: int = 192) -> np.ndarray:
        """An embedded face of the dataset, [size, size, 3] in [0, 1]."""
        return self.data.load(int(index) % len(self.data), size)

    def cache_root(self) -> pathlib.Path | None:
        return pathlib.Path(self.config.cache) if self.config.cache else None

    # -- Edit a face (DFI) ----------------------------------------------------------------------
    def sweep_config(self, preset: str, edit: str, iters: int | None = None):
        """The preset's objective, solver and post-processing at the studio's size, iterations and K,
        over the ladder. A residual reconstruction (chainer) is shortened in proportion to the
        iterations (the preset's 600 of 1000), so an Edit's cost follows the iterations asked for."""

        if preset not in DFI_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(DFI_PRESETS)}")
        c = self.config
        n = int(iters or c.iters)
        if n < 1:
            raise ValueError(f"iterations must be at least 1, got {n}")
        cfg = presets.preset(
            preset,
            edits=(edit,),
            alphas=c.ladder,
            size=c.size,
            iters=n,
            k=c.k,
            allow_fewer=True,
            probe=False,
            probe_steps=c.probe_steps,
            probe_train=c.probe_train,
            seed=c.seed,
            feature_cache=c.cache is not None,
        )
        full, fin = presets.PRESETS[preset].solve.iters, cfg.finish
        if fin.residual and fin.residual_mode == "nearest" and n < full:
            short = max(fin.residual_every, round(fin.residual_iters * n / full))
            cfg = config.replace(cfg, residual_iters=short)
        return cfg

    def probe(self, progress: Progress | None = None):

        with self._lock:
            if self._probe is None:
                cfg = self.sweep_config("dfijax", self.data.attr_names[0] + "+")
                self._probe = sweep_inputs.photo_probe(cfg, self.data, self.cache_root(), progress)
            return self._probe

    def inspect(
        self, photo: np.ndarray, eyes: np.ndarray | str | None = "auto", progress: Progress | None = None
    ) -> Inspection:
        """Find the faces (dlib, with the faces extra) or the eyes (or take them), crop the (first) face as
        the dataset's, and read its attributes."""

        note = ""
        if isinstance(eyes, str) and (faces := self.faces(photo)):
            crops = self._face_crops(photo, faces)
            predicted, probs = sweep_inputs.predict_photo_attrs(self.probe(progress), crops.images[:1], self.data)
            note = (
                f"dlib finds {len(faces)} face(s), numbered on the photo: all are edited unless you pick some; "
                "the attributes are face 1's"
            )
            names = self.data.attr_names
            p = dict(zip(names, map(float, probs[0])))
            return Inspection(faces[0].eyes, crops.images[0], crops.matrices[0], p, note, tuple(faces))
        if isinstance(eyes, str):
            try:
                eyes = align.detect_eyes(photo)
                note = "eyes found automatically; correct them below if the rings are off"
            except align.EyeDetectionError:
                eyes = None
                note = "no eyes found: type their positions x1,y1,x2,y2 (pixels of the photo), or edit the centre crop"
        crops = sweep_inputs.prepare_photos([photo], self.data, self.config.size, [eyes] if eyes is not None else None)
        predicted, probs = sweep_inputs.predict_photo_attrs(self.probe(progress), crops.images, self.data)
        return Inspection(
            eyes, crops.images[0], crops.matrices[0], dict(zip(self.data.attr_names, map(float, probs[0]))), note
        )

    def faces(self, photo: np.ndarray) -> list:
        """The faces dlib finds in the photo, left to right (none without the faces extra)."""
        return fm.load().detect(photo) if fm.available() else []

    def _face_crops(self, photo: np.ndarray, faces: Sequence) -> sweep_inputs.PhotoCrops:
        models = fm.load()
        template = face_crops.dataset_template(self.data, self.config.size, models, self.cache_root())
        return face_crops.crop_faces([photo], template, self.config.size, models, found=list(faces))[0]

    def edit(
        self,
        photo: np.ndarray,
        edit: str,
        *,
        eyes: np.ndarray | None = None,
        faces: Sequence[str] | None = None,
        attrs: str = "auto",
        preset: str = "dfijax",
        iters: int | None = None,
        progress: Progress | None = None,
        snapshot: Callable[[int, np.ndarray], None] | None = None,
    ) -> Ladder:
        """The whole alpha ladder for one photo and one edit ('Smiling+', or several attributes at once,
        'Smiling+ Mouth_Open+'): the attribute vector (cached on disk), then one engine call for every face
        edited (the dfijax and chainer presets; the official one warm-starts alpha by alpha, as its demo
        does). eyes: align one face by them; else every face dlib finds, or those numbered in `faces`
        ('1', '2', …), each with the descriptor distance of its edits; else the centre crop. attrs: the
        photo's attributes as --attrs takes them ('auto': the probe's reading, per face). snapshot(iteration,
        images [F, A, S, S, 3]): the current iterates every few iterations, to watch the edit form."""

        t0 = time.perf_counter()
        cfg = self.sweep_config(preset, edit.strip(), iters)
        data, weights = self.data, self.weights
        found = self.faces(photo) if eyes is None else []
        picked = parse_faces(faces, len(found)) if found else []
        if found:
            all_crops = self._face_crops(photo, found)
            crops = dataclasses.replace(
                all_crops,
                images=all_crops.images[picked],
                matrices=all_crops.matrices[picked],
                eyes=all_crops.eyes[picked],
                photo=all_crops.photo[picked],
                faces=tuple(all_crops.faces[i] for i in picked),
                fit_loss=all_crops.fit_loss[picked],
            )
        else:
            crops = sweep_inputs.prepare_photos([photo], data, cfg.size, [eyes] if eyes is not None else None)
        predicted = None
        if sweep_inputs.wants_predicted_attrs(attrs or "auto"):
            predicted, _ = sweep_inputs.predict_photo_attrs(self.probe(progress), crops.images, data)
        labels = [f"face {i + 1}" for i in picked] or ["photo"]
        inputs = sweep_inputs.photo_inputs(crops.images, attrs or "auto", data, labels, predicted)
        with self._lock:  # one solve at a time per server (the queue also limits it)
            self.engine_calls += 1
            r = sweep.run_sweep(
                cfg, data, weights, inputs, cache_root=self.cache_root(), progress=progress, snapshot=snapshot
            )
        distances = None
        if found:
            pasted = [
                [
                    align.paste_back(photo, crops.images[f], r.edited[f, j], crops.matrices[f])
                    for j in range(len(cfg.alphas))
                ]
                for f in range(len(picked))
            ]
            face_id = identity.measure(fm.load(), [photo] * len(picked), pasted, cfg.alphas, crops.faces, "photo")
            distances = face_id.distances
        q = inputs.queries[0]
        return Ladder(
            edit=edit.strip(),
            preset=preset,
            alphas=cfg.alphas,
            crop=crops.images[0],
            edited=np.asarray(r.edited[0], np.float32),
            matrix=crops.matrices[0],
            seconds=time.perf_counter() - t0,
            engine_seconds=r.seconds["edit_including_compile"],
            vector_cached=r.vectors_from_cache > 0,
            attributes={n: float(v) for n, v in zip(data.attr_names, q) if np.isfinite(v)},
            faces=tuple(i + 1 for i in picked),
            crops=np.asarray(crops.images, np.float32),
            ladders=np.asarray(r.edited, np.float32),
            matrices=np.asarray(crops.matrices),
            distances=distances,
        )

    @staticmethod
    def full_resolution(photo: np.ndarray, ladder: Ladder, alpha: float) -> np.ndarray:
        """The edit at `alpha` of every face edited added to the whole photo through the inverse of its crop
        transform."""

        j = ladder.nearest(alpha)
        if ladder.ladders is None:
            return align.paste_back(photo, ladder.crop, ladder.edited[j], ladder.matrix)
        out = photo
        for crop, edits, m in zip(ladder.crops, ladder.ladders, ladder.matrices):
            out = align.paste_back(out, crop, edits[j], m)
        return out

    # -- trained runs ---------------------------------------------------------------------------
    def find_runs(self, kind: str) -> list[str]:
        """Run folders of a kind under config.runs/<kind>/ (newest first), with the configured one first."""
        base = pathlib.Path(self.config.runs) / kind
        marker = RUN_MARKERS[kind]
        found = []
        if base.is_dir():
            for p in sorted(base.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
                if (p / marker).is_file() or (kind == "dtn" and (p / "dtn" / "config.json").is_file()):
                    found.append(str(p))
        first = getattr(self.config, kind)
        return ([first] if first else []) + [f for f in found if f != first]

    def _run(self, kind: str, path: str | os.PathLike | None, load: Callable[[str], Any]) -> Any:
        if not path or not str(path).strip():
            found = self.find_runs(kind)
            if not found:
                raise FileNotFoundError(
                    f"no trained {kind.replace('_', ' ')} run yet: train one with {TRAIN_COMMANDS[kind]}"
                )
            path = found[0]
        key = (kind, str(pathlib.Path(path).absolute()))
        with self._lock:
            if key not in self._runs:
                if not pathlib.Path(path).exists():
                    raise FileNotFoundError(f"{path} does not exist: train one with {TRAIN_COMMANDS[kind]}")
                self._runs[key] = load(str(path))
            return self._runs[key]

    # -- Mix two faces (fusion GAN) -------------------------------------------------------------
    def fusion_run(self, path: str | None = None):
        """(config, state, step) of a trained fusion run (the newest under runs/fusion when None)."""

        return self._run("fusion", path, fusion.restore)

    def fuse(
        self, a: np.ndarray, b: np.ndarray, lam: Sequence[float], path: str | None = None
    ) -> tuple[np.ndarray, float]:
        """G(Λ∘E(A) + (1 − Λ)∘E(B)) for one per-chunk Λ: ([S, S, 3] in [0, 1], seconds)."""

        run = self.fusion_run(path)
        t0 = time.perf_counter()
        r = fusion.run_fuse(run, a, b, [list(map(float, lam))])
        return r.fused[0], time.perf_counter() - t0

    def fusion_figure(self, a: np.ndarray, b: np.ndarray, lam: Sequence[float], path: str | None = None) -> np.ndarray:
        """The paper's Fig. 6 for A, B and their fusion: VGG-19 maps and latent chunks, [H, W, 3]."""

        cfg, state, _ = self.fusion_run(path)
        a, b = (to_signed(square_crop(np.asarray(x, np.float32), cfg.size)) for x in (a, b))
        imgs, lat, feats = figures.fusion_features(cfg, state.eg, self.weights.variables, a, b, list(lam))
        with tempfile.TemporaryDirectory() as d:
            figures.feature_figure(pathlib.Path(d) / "f.png", imgs, lat, feats, cfg.chunks, list(lam))
            return im.load_image(pathlib.Path(d) / "f.png")

    # -- Stylise --------------------------------------------------------------------------------
    def stylize(
        self,
        content: np.ndarray,
        style: np.ndarray,
        *,
        preset: str = "quick",
        strength: float = 1.0,
        preserve: str = "none",
        progress: Progress | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Gatys style transfer of one content by one style (style weight × strength): (image, info)."""

        if preset not in STYLE_PRESETS:
            raise ValueError(f"unknown style preset {preset!r}; use one of {', '.join(STYLE_PRESETS)}")
        if not (np.isfinite(strength) and strength > 0):
            raise ValueError(f"style strength must be a positive number, got {strength}")
        over = dict(style_scales=(float(strength),), preserve_color=preserve, seed=self.config.seed)
        if preset == "quick":
            over["stages"] = ((self.config.style_size, self.config.style_iters),)
        cfg = st.style_config(preset, **over)
        top = cfg.top_size
        c = np.asarray(im.resize(_pil(content), top), np.float32) / 255.0
        s = np.asarray(im.resize(_pil(style), top), np.float32) / 255.0
        r = st.run_style_transfer(cfg, self.weights, [c], [s], progress=progress)
        p = r.problems[0]
        return r.images[0], {"initial_loss": p["initial_loss"], "final_loss": p["final_loss"], **r.seconds}

    def fast_style_run(self, path: str | None = None):

        return self._run("fast_style", path, fast.restore)

    def fast_stylize(
        self, content: np.ndarray, path: str | None = None, size: int | None = 256
    ) -> tuple[np.ndarray, float]:
        """A trained fast-style network on one picture (short side `size`): (image, seconds)."""

        config, params = self.fast_style_run(path)
        x = np.asarray(im.resize(_pil(content), size), np.float32) / 255.0 if size else content
        t0 = time.perf_counter()
        y = fast_run.stylize_images(config.net(), params, [x])[0]
        if config.preprocess == "vgg":
            y = fast_run.median_filter(y, 3)
        return y, time.perf_counter() - t0

    # -- Domain transfer ------------------------------------------------------------------------
    def dtn_run(self, path: str | None = None):

        return self._run("dtn", path, lambda p: translator.load_translator(p, self.weights.variables))

    def translate(self, x: np.ndarray, path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """G(x) of a trained DTN: x centre-cropped and resized to its size -> (input as used, G(x))."""

        t = self.dtn_run(path)
        x = square_crop(np.asarray(x, np.float32), t.size)
        return x, t(x[None])[0]


def _pil(x: np.ndarray):

    return Image.fromarray(im.to_uint8(x))
