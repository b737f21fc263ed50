"""Fast style-transfer pipelines over `dfijax.style.fast`: train a network against one style image
(`run_training`: style image, content crops, training with auto-resume, sample pictures; `loss_depth`
picks its loss network) and apply a trained one to images, folders of images or a video
(`run_stylize` with a `StylizeConfig`: restore from the checkpoint folder, batched application
grouped by image size, the video's flicker).

Nothing here prints or writes pictures: progress goes to a callback progress(stage, done, total,
info), stages "train" (info: the step's metrics record, when logged) and "stylize" (images done).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Annotated, Any, Callable, Mapping, Sequence

import jax
import numpy as np

from dfijax import config, training
from dfijax import images as im
from dfijax.style import fast as fs
from dfijax.style import video as vid
from dfijax.weights import find_weights

Progress = Callable[[str, int, int, dict], None]
SAMPLE_STEP = 10**6  # the content batch the sample pictures show (no training run reaches it)
STYLE_SEED = 3  # the embedded procedural painting's


@dataclasses.dataclass
class TrainResult:
    """What `run_training` gives back.

    state: the trained network and Adam state (replicated over the training mesh); resumed_from: the
    step the run started at (0: a fresh run); records: every logged metrics record of the folder (one
    per step, resumed runs included); content, styled: [k, size, size, 3] sample crops in [0, 1]
    (k = min(4, batch)) and the final network's output on them."""

    config: fs.FastStyleConfig
    state: fs.TrainState
    resumed_from: int
    records: list[dict[str, float]]
    content: np.ndarray
    styled: np.ndarray

    @property
    def final(self) -> dict[str, float] | None:
        """The last metrics record (None when nothing was logged)."""
        return self.records[-1] if self.records else None

    def info(self, weights: str) -> dict[str, Any]:
        """The run as plain JSON values: its loss network (depth, layers and `weights`, their
        description), the step it resumed from, the last metrics record and the network's choices."""
        c = self.config
        layers = {"vgg": c.vgg, "content_layer": c.content_layer, "style_layers": list(c.style_layers)}
        return {
            "loss_network": {**layers, "weights": weights},
            "resumed_from": self.resumed_from,
            "final": self.final,
            "network": {"width": c.width, "output": c.output, "upsample": c.upsample},
        }


def style_image(path: str | os.PathLike | None, size: int, fit: str = "short") -> np.ndarray:
    """[H, W, 3] in [0, 1]: the image at `path` with its short side (fit "short") or its long side
    ("long", as torch's image.scale(img, size) in train.lua:131) resized to `size`, or (None) the
    embedded procedural painting, size x size. One-line ImageError for an unreadable file."""
    if fit not in fs.FITS:
        raise ValueError(f"style fit must be one of {fs.FITS}, got {fit!r}")
    if not path:
        return im.synthetic_painting(size, size, STYLE_SEED)
    if fit == "short":
        return im.load_image(path, size)
    x = im.load_image(path)
    h, w = x.shape[:2]
    s = size / max(h, w)
    return im.resize_array(x, (max(1, round(h * s)), max(1, round(w * s))))


def loss_depth(preset: str, vgg: int | None = None, weights: str | os.PathLike | None = None) -> int | None:
    """The loss VGG's depth for a training run: `vgg` when given; None (read from the file) when only
    `weights` are; 16 for the paper preset; else 16 when VGG-16 weights are found, else 19. The paper
    preset's VGG-16 without weights (none given, none found) is a one-line ValueError."""

    if vgg is None and weights:
        return None
    found = find_weights(depth=16) is not None
    depth = vgg or (16 if preset == "paper" or found else 19)
    if preset == "paper" and depth == 16 and not weights and not found:
        raise ValueError(
            "the paper preset's loss network is VGG-16 and no VGG-16 weights were found (weights/vgg16*.safetensors "
            "or $DFIJAX_WEIGHTS); run: python scripts/fetch_vgg19.py keras16, or pass --vgg 19 for VGG-19's layers"
        )
    return depth


def median_filter(x: np.ndarray, r: int = 3, keep_size: bool = True) -> np.ndarray:
    """[H, W, C] -> each channel's median over r x r windows, as fast_neural_style.lua applies it to its
    output (-median_filter 3, utils.lua:129-137): unpadded, [H - r + 1, W - r + 1, C] (keep_size False),
    or with the border pixels repeated first so that the size stays (the same interior)."""
    x = np.asarray(x)
    if keep_size:
        p = (r - 1) // 2
        x = np.pad(x, ((p, r - 1 - p), (p, r - 1 - p), (0, 0)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(x, (r, r), axis=(0, 1))
    return np.median(win.reshape(*win.shape[:3], r * r), axis=-1).astype(x.dtype)


def sample_pictures(
    config: fs.FastStyleConfig, params: Any, batches: Callable[[int], np.ndarray], count: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """(content [k, S, S, 3], the network's output on it), k = min(count, config.batch): crops from a
    batch no training step sees. params may be replicated over a mesh of several processes (each
    process applies its own copy)."""
    content = batches(SAMPLE_STEP)[: min(count, config.batch)]
    return content, fs.stylize(config.net(), jax.device_get(params), content)


def run_training(
    config: fs.FastStyleConfig,
    variables: Mapping,
    directory: str | os.PathLike,
    *,
    content_dir: str | os.PathLike | None = None,
    style: str | os.PathLike | None = None,
    mesh: jax.sharding.Mesh | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train (or resume) a fast style network to config.steps in `directory` and make its samples.

    variables: the loss VGG's (depth config.vgg); content_dir: its images, cropped or squashed to
    config.size (config.content_fit; None: the embedded procedural scenes); style: the style image's
    path (None: the embedded painting), resized to config.style_size (0: config.size) on its short or
    long side (config.style_fit). Checkpoints, settings and metrics.jsonl go to `directory` (see `fast.train`; every
    process of a multi-process job calls this alike). One-line errors: ValueError (no images, an
    unreadable image, a folder trained with other settings), FileNotFoundError."""
    style_img = style_image(style, config.style_size or config.size, config.style_fit)
    batches = fs.content_batches(content_dir, config.size, config.batch, config.seed, config.content_fit)
    report = (lambda step, rec: progress("train", step, config.steps, rec or {})) if progress else None
    state, start = fs.train(config, variables, style_img, batches, directory, progress=report, mesh=mesh)
    records = training.MetricsLog(pathlib.Path(directory) / "metrics.jsonl", enabled=False).records()
    content, styled = sample_pictures(config, state.params, batches)
    return TrainResult(config, state, start, records, content, styled)


def stylize_images(
    net: fs.TransformNet,
    params: Any,
    images: Sequence[np.ndarray],
    batch: int = 16,
    progress: Progress | None = None,
) -> list[np.ndarray]:
    """Each [H_i, W_i, 3] image in [0, 1] stylised, in the given order; images of one size are
    batched together (`fast.stylize`, one compilation per size)."""
    out: list[np.ndarray | None] = [None] * len(images)
    done = 0
    for shape in sorted({x.shape for x in images}):
        idx = [i for i, x in enumerate(images) if x.shape == shape]
        for i, y in zip(idx, fs.stylize(net, params, np.stack([images[i] for i in idx]), batch)):
            out[i] = y
        done += len(idx)
        if progress is not None:
            progress("stylize", done, len(images), {})
    return out  # type: ignore[return-value]


@dataclasses.dataclass
class StylizeResult:
    """What `run_stylize` gives back: inputs and outputs ([H, W, 3] in [0, 1] each; video frames all
    of one size), names (one per image, None for a video), seconds (the stylisation, including
    compilation) and, for a video of 2+ frames, flicker {"input", "stylized"}: the mean squared
    warping error over reliable pixels (`dfijax.style.video.warping_errors`)."""

    config: fs.FastStyleConfig
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    names: list[str] | None
    seconds: float
    flicker: dict[str, float | None] | None = None

    @property
    def per_second(self) -> float:
        return len(self.inputs) / max(self.seconds, 1e-9)

    def pictures(self, video_format: str = "gif") -> dict[str, np.ndarray]:
        """The outputs by file name (for `video.write_pictures`): a video's stylized.<video_format> and
        compare.gif (input | output side by side); images' <name>_styled.png and, when all are of one
        size, grid.png (inputs over outputs)."""
        if self.names is None:
            x, y = np.stack(self.inputs), np.stack(self.outputs)
            return {f"stylized.{video_format}": y, "compare.gif": np.concatenate([x, y], 2)}
        pics = {f"{n}_styled.png": y for n, y in zip(self.names, self.outputs)}
        if all(x.shape == self.inputs[0].shape for x in self.inputs):
            pics["grid.png"] = im.make_grid([self.inputs, self.outputs])
        return pics

    def measures(self) -> dict[str, Any]:
        """Plain JSON values: seconds and rate, and the images' names, or a video's frame count and flicker."""
        if self.names is not None:
            return {"images": self.names, "seconds": self.seconds, "images_per_second": self.per_second}
        rate = {"seconds": self.seconds, "frames_per_second": self.per_second}
        return {"frames": len(self.inputs), **rate, "flicker": self.flicker}


def load_inputs(
    paths: Sequence[str | os.PathLike] | None, size: int | None, default: int = 4
) -> tuple[list[np.ndarray], list[str]]:
    """(images, names): each path an image or a folder of them (sorted), short side resized to `size`
    (None: kept); no paths: `default` embedded scenes of size (or 128) px."""
    if not paths:
        s = size or 128
        return [im.synthetic_scene(s, s, seed=i) for i in range(default)], [f"scene{i}" for i in range(default)]
    files = [f for p in paths for f in (fs.image_files(p) if pathlib.Path(p).is_dir() else [pathlib.Path(p)])]
    return [im.load_image(f, size) for f in files], [f.stem for f in files]


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """How `run_stylize` applies a trained network."""

    size: Annotated[int | None, config.POSITIVE] = None
    """resize the short side to this (default: keep)"""
    frames: Annotated[int | None, config.POSITIVE] = None
    """at most this many video frames"""
    batch: Annotated[int, config.POSITIVE] = 16
    """images per batched call"""
    median: Annotated[int | None, config.NONNEG] = None
    """r x r median filter on the outputs (default: 3 for a paper-preset run, else 0)"""

    def __post_init__(self):
        config.check(self)


def run_stylize(
    ckpt: str | os.PathLike,
    config: StylizeConfig = StylizeConfig(),
    *,
    images: Sequence[str | os.PathLike] | None = None,
    video: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> StylizeResult:
    """Restore the network trained in `ckpt` (rebuilt from its saved settings) and apply it to a video
    (a file or a folder of frames, at most config.frames), else to `images` (files or folders;
    default: 4 embedded scenes); config.size: resize short sides to it (None: keep). config.median:
    r > 1 runs `median_filter` of r x r on each output (size kept); None: 3 for a network trained
    with the paper preset's Caffe-preprocessed input (fast_neural_style.lua's default), else none.
    One-line errors: FileNotFoundError (no run there), ValueError (CheckpointMismatch, ImageError,
    VideoError)."""

    net_config, params = fs.restore(ckpt)
    if video:
        pics, names = list(vid.read_frames(video, config.size, config.frames)), None
    else:
        pics, names = load_inputs(images, config.size)
    t0 = time.perf_counter()
    styled = stylize_images(net_config.net(), params, pics, config.batch, progress)
    median = config.median
    if median is None:
        median = 3 if net_config.preprocess == "vgg" else 0
    if median > 1:
        styled = [median_filter(y, median) for y in styled]
    seconds = time.perf_counter() - t0
    flicker = None
    if video:
        x, y = np.stack(pics), np.stack(styled)
        pairs = vid.frame_pairs(x) if len(x) > 1 else []
        flicker = {
            "input": float(vid.warping_errors(x, pairs).mean()) if pairs else None,
            "stylized": float(vid.warping_errors(y, pairs).mean()) if pairs else None,
        }
    return StylizeResult(net_config, pics, styled, names, seconds, flicker)
