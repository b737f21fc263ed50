"""Style transfer for videos (Ruder, Dosovitskiy, Brox 2016) on the shared engine: the project's
temporal objective (`TemporalLoss` over a `StyleLoss`, RGB in [0, 1]), synthetic test clips, the
single-pass and multi-pass algorithms, and the whole pipeline (`run_video_style`, with colour
preservation as for images; `VideoConfig` and its presets; a run's clip `load_clip`, its resumable
frames `frame_store`). Frames in and out are `style.video_io`, optical flow, reliability masks,
long-term weights and flicker metrics `style.flow`, and the artistic-videos Torch code's objective
and algorithms (the `paper` preset) `style.artistic_videos`; their names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from dfijax import config
from dfijax import images as im
from dfijax import invert as inv
from dfijax.invert import invert
from dfijax.style import color, gatys
from dfijax.style.artistic_videos import (  # noqa: F401
    AV_SCALE,
    TEMPORAL_GRADIENTS,
    ArtisticVideosLoss,
    SolveOutcome,
    _av_features,
    _av_init,
    _av_init_jit,
    _av_run,
    _av_run_jit,
    _av_step,
    _av_step_jit,
    _mean_bgr,
    av_multipass,
    av_pair_targets,
    av_single_pass,
    av_style_grams,
    av_targets,
    caffe_noise,
    from_caffe,
    multipass_start,
    solve_with_interval_stop,
    to_caffe,
    warp_mean_pad,
)
from dfijax.style.color import PRESERVE_COLOR
from dfijax.style.flow import (  # noqa: F401
    LONG_TERM_METHODS,
    FramePair,
    _as_pair_map,
    check_offsets,
    flow_dir_pairs,
    frame_pairs,
    long_range_errors,
    long_term_weights,
    offset_pairs,
    optical_flow,
    pair_error,
    reliability,
    temporal_targets,
    warp,
    warping_errors,
)
from dfijax.style.gatys import StyleLoss
from dfijax.style.video_io import (  # noqa: F401
    IMAGE_SUFFIXES,
    VideoError,
    read_frames,
    write_pictures,
    write_video,
)
from dfijax.vgg import POOL_ROUNDINGS, VGG19, check_image_batch


@dataclasses.dataclass(frozen=True)
class TemporalLoss:
    """base(x) + temporal_weight · Σ_k (1/D) Σ c_k ⊙ (s·(x − ω_k))² for one frame x [H, W, 3] in [0, 1]:
    ω_k are earlier (or, in backward passes, later) stylised frames warped onto this one, c_k their
    weights (reliability, or the long-term weights), D = H·W·3 and s = pixel_scale.

    Units (Ruder et al.'s code, artistic-videos): each term is torch's size-averaged MSECriterion on
    the Caffe-preprocessed image, whose pixels are 0–256, times temporal_weight; with s = 255 (our
    VGG's Caffe preprocessing scale) a weight of 1e3 here is theirs, up to (256/255)² = 1.008,
    whenever base uses neural-style's normalisation (content MSE × 5, Gram/(C·H·W) MSE × 100).
    Targets: base's plus "warped" [K, H, W, 3] (or [H, W, 3]) and "reliability" [K, H, W] (or [H, W]);
    a slot with weight 0 everywhere does nothing (unused long-term slots)."""

    base: Any
    temporal_weight: float = 1e3
    pixel_scale: float = 255.0

    def target_names(self) -> tuple[str, ...]:
        return tuple(self.base.target_names()) + ("warped", "reliability")

    def temporal(self, x: jax.Array, targets: Mapping[str, jax.Array]) -> jax.Array:
        w, c = targets["warped"], targets["reliability"]
        if w.ndim == 3:
            w, c = w[None], c[None]
        d = self.pixel_scale * (x[None] - w)
        return jnp.sum(jnp.mean(c[..., None] * d * d, axis=(1, 2, 3)))

    def __call__(self, x: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> jax.Array:
        return self.base(x, variables, targets) + self.temporal_weight * self.temporal(x, targets)


def synthetic_clip(n_frames: int, h: int, w: int, seed: int = 0, speed: float = 1.5) -> np.ndarray:
    """A deterministic moving test clip, [T, h, w, 3] in [0, 1]: the camera pans across a wider
    procedural scene (dfijax.images.synthetic_scene) while a textured ball crosses it — global and
    local motion, with disocclusions. The embedded default video."""
    pan = int(np.ceil(speed * n_frames)) + 2
    canvas = im.synthetic_scene(h, w + pan, seed)
    rng = np.random.default_rng(seed + 1)
    ball_col = rng.uniform(0.2, 0.9, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.16 * min(h, w)
    frames = []
    for t in range(n_frames):
        x0 = speed * t
        i0 = int(np.floor(x0))
        frac = x0 - i0
        f = (1 - frac) * canvas[:, i0 : i0 + w] + frac * canvas[:, i0 + 1 : i0 + 1 + w]
        cx, cy = 0.2 * w + 2.5 * speed * t, 0.35 * h + 0.5 * speed * t
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        stripes = 0.75 + 0.25 * np.sin((xx - cx) * 1.3)[..., None]
        inside = (d2 < r * r)[..., None]
        frames.append(np.where(inside, ball_col * stripes, f))
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


def occlusion_clip(n_frames: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic clip for long-term consistency, [T, h, w, 3] in [0, 1]: a still camera on a
    procedural scene with a disc in it, and a striped bar sweeping left to right in front of it, so
    every part of the scene it passes is hidden for about two frames and then reappears."""
    scene = im.synthetic_scene(h, w, seed)
    rng = np.random.default_rng(seed + 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    disc = (xx - 0.45 * w) ** 2 + (yy - 0.5 * h) ** 2 < (0.22 * min(h, w)) ** 2
    scene = np.where(disc[..., None], rng.uniform(0.3, 0.9, 3) * (0.8 + 0.2 * np.cos(yy / 2.0))[..., None], scene)
    bar_col = rng.uniform(0.0, 0.4, 3)
    speed, width = 0.1 * w, 0.25 * w
    frames = []
    for t in range(n_frames):
        x0 = 0.1 * w + speed * t
        bar = (xx >= x0) & (xx < x0 + width)
        stripes = 0.7 + 0.3 * np.sin((xx - x0) * 1.7 + yy * 0.6)[..., None]
        frames.append(np.where(bar[..., None], bar_col * stripes + 0.1, scene))
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


def load_clip(
    video: str | os.PathLike | None,
    size: int,
    frames: int | None = None,
    stride: int = 1,
    clip: str = "pan",
    seed: int = 0,
) -> np.ndarray:
    """A run's frames [T, H, W, 3] in [0, 1]: a video file or folder of frames (`read_frames`: short
    side `size`, every `stride`-th frame, at most `frames`), or (video None) an embedded clip of
    `frames` (default 8) frames of size x size ("pan": `synthetic_clip`, "occlusion":
    `occlusion_clip`). A one-line VideoError for fewer than 2 frames."""
    if video:
        x = read_frames(video, size, frames, stride)
    else:
        x = (occlusion_clip if clip == "occlusion" else synthetic_clip)(frames or 8, size, size, seed=seed)
    if len(x) < 2:
        raise VideoError(f"{video} has {len(x)} frame; a video needs at least 2")
    return x


def frame_store(folder: str | os.PathLike, n: int) -> tuple[list[np.ndarray], Callable[[int, np.ndarray, Any], None]]:
    """What makes a single pass resumable: (the frames a stopped run finished, read from
    folder/temporal_<t>.npy in order, at most n; an on_frame for `run_video_style` that saves each
    finished frame there). The folder is created."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done: list[np.ndarray] = []
    while len(done) < n and (folder / f"temporal_{len(done):04d}.npy").exists():
        done.append(np.load(folder / f"temporal_{len(done):04d}.npy"))
    return done, lambda t, x, _r: np.save(folder / f"temporal_{t:04d}.npy", x)


def stylize_sequence(
    loss: Any,
    variables: Mapping,
    frames: np.ndarray,
    targets: Mapping[str, jax.Array],
    pairs: Sequence[FramePair] | Mapping[tuple[int, int], FramePair],
    first_config: Any,
    config: Any,
    temporal_weight: float = 1e3,
    done: Sequence[np.ndarray] = (),
    on_frame=None,
    offsets: Sequence[int] = (1,),
    long_term: str = "formula",
    **invert_kwargs,
) -> list[np.ndarray]:
    """Stylise frames in order, the single-pass algorithm (Ruder et al.): frame 0 from its content
    with first_config; frame t with config, pulled towards the outputs of frames t − j (j in offsets:
    (1,) is the short-term loss, e.g. (1, 2, 4) the long-term one) warped onto it, each weighted by
    its long-term weight, and started from the previous output warped onto it where that is reliable
    (from frame t's content elsewhere: Ruder et al. start from the warped frame everywhere, which
    leaves smears in disoccluded regions when iterations are few).

    loss: a per-frame objective (style.StyleLoss); targets: its targets for all T frames ([T, ...]);
    pairs: the consecutive FramePairs (frame_pairs) or offset_pairs(frames, offsets) for long-term
    offsets; long_term: how the offsets' reliabilities are combined (long_term_weights); done: frames
    already finished (a resumed run continues after them); on_frame(t, image, result) is called after
    each frame (save it there). Returns all T outputs, [H, W, 3] in [0, 1]."""

    offsets = check_offsets(offsets)
    pairs = _as_pair_map(pairs)
    missing = [(t, t - j) for j in offsets for t in range(j, len(frames)) if (t, t - j) not in pairs]
    if missing:
        raise VideoError(f"no flow for frame pairs {missing[:3]}...; compute them with offset_pairs(frames, {offsets})")
    outs = [np.asarray(d, np.float32) for d in done]
    temporal = TemporalLoss(loss, temporal_weight)
    for t in range(len(outs), len(frames)):
        tg = {k: v[t : t + 1] for k, v in targets.items()}
        if t == 0:
            r = invert(loss, variables, tg, jnp.asarray(frames[:1]), first_config, **invert_kwargs)
        else:
            warped, weights = temporal_targets(outs, t, offsets, pairs, long_term)
            tg.update(warped=warped[None], reliability=weights[None])
            # unreliable pixels (disoccluded, entered over the edge) start from this frame's content
            mask = jnp.asarray(pairs[(t, t - 1)].mask)[..., None]
            x0 = mask * warped[0] + (1 - mask) * jnp.asarray(frames[t])
            r = invert(temporal, variables, tg, x0[None], config, **invert_kwargs)
        outs.append(np.clip(np.asarray(r.images[0]), 0.0, 1.0))
        if on_frame is not None:
            on_frame(t, outs[-1], r)
    return outs


@dataclasses.dataclass(frozen=True)
class MultiPass:
    """Settings of the multi-pass algorithm (artistic-videos' defaults): `passes` alternating passes
    (1 forward, 2 backward, …) of `config` iterations per frame; the temporal loss (towards the
    neighbour the pass comes from) from pass `temporal_after` on, with `temporal_weight`; each frame
    starts from (x + blend·c·ω) / (1 + blend·c), x its current result, ω the neighbour warped onto it,
    c the reliability: blend 1 gives δ = 0.5 on reliable pixels."""

    config: Any
    passes: int = 15
    temporal_after: int = 8
    temporal_weight: float = 5e2
    blend: float = 1.0

    def __post_init__(self):
        if self.passes < 1 or self.temporal_after < 1 or self.blend < 0 or self.temporal_weight < 0:
            raise VideoError(
                f"multi-pass needs passes >= 1, temporal_after >= 1, blend >= 0 and temporal_weight "
                f">= 0; got {self.passes}, {self.temporal_after}, {self.blend}, {self.temporal_weight}"
            )


def stylize_multipass(
    loss: Any,
    variables: Mapping,
    frames: np.ndarray,
    targets: Mapping[str, jax.Array],
    pairs: Mapping[tuple[int, int], FramePair],
    settings: MultiPass,
    first: np.ndarray | None = None,
    on_pass=None,
    **invert_kwargs,
) -> list[np.ndarray]:
    """The multi-pass algorithm of Ruder et al.: pass 1 stylises every frame independently (or takes
    `first`, [T, H, W, 3], e.g. a per-frame stylisation already made); later passes sweep the
    sequence alternately backward and forward, blending each frame's start with the neighbour the
    pass comes from and, from pass settings.temporal_after on, adding the temporal loss towards it.

    pairs: offset_pairs(frames, (1,), following=True) (both neighbours of every frame).
    on_pass(p, outputs) is called after each pass. Returns the T outputs of the last pass."""

    n = len(frames)
    missing = [k for t in range(1, n) for k in ((t, t - 1), (t - 1, t)) if k not in pairs]
    if missing:
        raise VideoError(f"no flow for frame pairs {missing[:3]}...; use offset_pairs(frames, following=True)")
    if first is None:
        r = invert(loss, variables, dict(targets), jnp.asarray(frames), settings.config, **invert_kwargs)
        first = np.asarray(r.images)
    if np.shape(first) != np.shape(frames):
        raise VideoError(f"first-pass frames have shape {np.shape(first)}, the video {np.shape(frames)}")
    outs = [np.clip(np.asarray(f, np.float32), 0.0, 1.0) for f in first]
    if on_pass is not None:
        on_pass(1, outs)
    temporal = TemporalLoss(loss, settings.temporal_weight)
    for p in range(2, settings.passes + 1):
        forward = p % 2 == 1
        for t in range(n) if forward else range(n - 1, -1, -1):
            nb = t - 1 if forward else t + 1
            tg = {k: v[t : t + 1] for k, v in targets.items()}
            x = jnp.asarray(outs[t])
            if not 0 <= nb < n:
                r = invert(loss, variables, tg, x[None], settings.config, **invert_kwargs)
            else:
                pair = pairs[(t, nb)]
                warped = warp(jnp.asarray(outs[nb]), jnp.asarray(pair.backward))
                c = settings.blend * jnp.asarray(pair.mask)[..., None]
                x0 = (x + c * warped) / (1.0 + c)
                if p >= settings.temporal_after and settings.temporal_weight > 0:
                    tg.update(warped=warped[None], reliability=jnp.asarray(pair.mask)[None])
                    r = invert(temporal, variables, tg, x0[None], settings.config, **invert_kwargs)
                else:
                    r = invert(loss, variables, tg, x0[None], settings.config, **invert_kwargs)
            outs[t] = np.clip(np.asarray(r.images[0]), 0.0, 1.0)
        if on_pass is not None:
            on_pass(p, outs)
    return outs


# ---------------------------------------------------------------------------------------------------
# The video pipeline: a config in, stylised clips (per-frame, single-pass, multi-pass) and their
# flicker out. It prints nothing: progress goes to a callback, files are the caller's.

# progress(stage, done, total, info): stage "single pass" (frames), "per-frame" (L-BFGS iterations of
# the all-frames call) or "multi-pass" (passes, info {"flicker"}).
Progress = Callable[[str, int, int, dict], None]

OBJECTIVES = ("dfijax", "artistic-videos")
INIT_FIRST = ("content", "noise")

PRESET_NAMES = ("quick", "tiny", "paper")  # VIDEO_PRESETS', below VideoConfig


def _number_or_auto() -> Any:
    """A `float | None` field typed on the command line as a number, or `auto` for None."""

    def parse(args: list[str]) -> float | None:
        if args[0].strip().lower() == "auto":
            return None
        try:
            return float(args[0])
        except ValueError:
            raise ValueError(f"{args[0]!r} is neither a number nor auto") from None

    return tyro.constructors.PrimitiveConstructorSpec(
        nargs=1,
        metavar="NUMBER|auto",
        instance_from_str=parse,
        is_instance=lambda x: x is None or isinstance(x, (int, float)),
        str_from_instance=lambda x: ["auto" if x is None else f"{x:g}"],
    )


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """Everything that decides a video run (`video_config` fills it from a preset).

    objective "dfijax": StyleLoss + TemporalLoss on RGB in [0, 1], frame 0 from its content, later
    frames from the warped previous output where reliable, multi-pass from the per-frame result;
    "artistic-videos": ArtisticVideosLoss on its Caffe-space image and its algorithms av_single_pass /
    av_multipass, which alone use init_first, tol_relative / tol_interval, blend_weight_other and
    seed's noise. The multi-pass algorithm's temporal loss has half the temporal weight."""

    preset: Literal[PRESET_NAMES] = "quick"
    """quick, paper (artistic-videos) or the tests' tiny (dfijax.style.video.VIDEO_PRESETS); flags override it"""
    size: Annotated[int, config.Bounds(ge=32)] = 64
    """frame short side in pixels"""
    iters_first: Annotated[int, config.POSITIVE] = 60
    """iterations for frame 0 and the per-frame baseline"""
    iters: Annotated[int, config.POSITIVE] = 30
    """iterations for each later frame"""
    offsets: Annotated[tuple[int, ...], config.comma_list(int), config.POSITIVE] = (1,)
    """earlier frames J of the temporal loss: 1 (short-term) or e.g. 1,2,4 (long-term)"""
    temporal_weight: Annotated[float | None, _number_or_auto(), config.NONNEG] = None
    """weight of the temporal loss (Ruder's units); auto: 1e3 (multi-pass 5e2) with pretrained weights,
    1e-6 with the seeded random VGG-19 (whose style losses are ~1e8 smaller)"""
    multipass: Annotated[int, config.NONNEG] = 0
    """also run the multi-pass algorithm with this many passes (0: off)"""
    pass_iters: Annotated[int, config.POSITIVE] = 20
    """iterations per frame and pass"""
    temporal_after: Annotated[int, config.POSITIVE] = 2
    """multi-pass: temporal loss from this pass on (paper 8)"""
    blend_weight: Annotated[float, config.NONNEG] = 1.0
    """multi-pass: weight of the warped neighbour in each frame's start (1: delta = 0.5 on reliable pixels)"""
    flow: Literal["dis", "farneback"] = "dis"
    """optical flow method (OpenCV)"""
    pooling: Literal["avg", "max"] = "avg"
    """VGG pooling"""
    pool_rounding: Literal[POOL_ROUNDINGS] = "floor"
    """VGG pools on odd sizes: floor, or ceil as the paper preset's loadcaffe net rounds"""
    tv: Annotated[float, config.NONNEG] = 0.0
    """TV^2 weight on the 0-255 scale"""
    blend: Annotated[tuple[float, ...] | None, config.comma_list(float), config.NONNEG] = None
    """weights for several style images, e.g. 0.7,0.3"""
    preserve_color: Literal[PRESERVE_COLOR] = "none"
    """keep the clip's colours (statistics over all frames; see dfijax.style.color)"""
    baseline: bool = True
    """also stylise every frame independently (the per-frame comparison)"""
    objective: Literal[OBJECTIVES] = "dfijax"
    """per-frame objective and algorithms"""
    history: Annotated[int, config.POSITIVE] = 10
    """L-BFGS memory"""
    tol_relative: Annotated[float, config.NONNEG] = 0.0
    """artistic-videos: stop when the loss changes less than this (relative) over tol-interval iterations"""
    tol_interval: Annotated[int, config.POSITIVE] = 50
    """artistic-videos: iterations of that stop rule"""
    long_term: Literal[LONG_TERM_METHODS] = "formula"
    """how the offsets' reliabilities are combined into long-term weights"""
    init_first: Literal[INIT_FIRST] = "content"
    """artistic-videos: frame 0's start, noise (its `random`) or content"""
    blend_weight_other: Annotated[float, config.NONNEG] = 0.0
    """artistic-videos multi-pass: the other neighbour's weight in a pass's start (its blendWeight_lastPass)"""
    flow_dir: str | None = None
    """read makeOptFlow.sh's .flo / .pgm files from this folder instead of computing the flow"""
    flow_start: Annotated[int, config.NONNEG] = 1
    """number of the first frame in the flow-dir file names"""
    seed: int = 0
    """random seed (the embedded clip, a random VGG, artistic-videos' noise)"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        object.__setattr__(self, "offsets", check_offsets(self.offsets))
        if self.multipass == 1:
            raise VideoError(f"multipass must be 0 (off) or >= 2 passes, got {self.multipass}")

    def temporal_weight_for(self, pretrained: bool) -> float:
        if self.temporal_weight is not None:
            return float(self.temporal_weight)
        return 1e3 if pretrained else 1e-6

    def loss(self, temporal_weight: float = 1e3) -> Any:
        """The per-frame objective: a StyleLoss ("dfijax", the temporal term is added by TemporalLoss) or
        an ArtisticVideosLoss with this temporal weight."""

        if self.objective == "artistic-videos":
            return ArtisticVideosLoss(model=self.model(), tv_weight=self.tv, temporal_weight=temporal_weight)
        return StyleLoss(model=self.model(), tv_weight=self.tv)

    def model(self) -> VGG19:
        """The loss network: VGG-19 with this run's pooling and its rounding."""
        return VGG19(pooling=self.pooling, pool_rounding=self.pool_rounding)


VIDEO_PRESETS: dict[str, VideoConfig] = config.registry(
    config.Preset(
        "quick",
        VideoConfig(),
        "on any device: 64 px, 60 iterations for frame 0, 30 after, 20 per pass, temporal loss from pass 2",
    ),
    config.Preset(
        "tiny",
        VideoConfig(preset="tiny", size=40, iters_first=20, iters=10, pass_iters=5, temporal_after=2),
        "the tests': 40 px, 20 and 10 iterations, enough for the temporal loss to cut the flicker",
    ),
    config.Preset(
        "paper",
        VideoConfig(
            preset="paper",
            size=350,
            iters_first=2000,
            iters=1000,
            pass_iters=100,
            temporal_after=8,
            objective="artistic-videos",
            pooling="max",
            pool_rounding="ceil",  # loadcaffe writes nn.SpatialMaxPooling(...):ceil()
            tv=1e-3,
            history=100,
            tol_relative=1e-4,
            tol_interval=50,
            long_term="closestFirst",
            init_first="noise",
        ),
        "manuelruder/artistic-videos (artistic_video.lua, artistic_video_multiPass.lua defaults): its objective "
        "(ArtisticVideosLoss), max pooling rounding up, TV 1e-3 in the gradient, noise start, prevWarped, 2000 "
        "iterations for frame 0 and 1000 after, stopped when the loss changes < 1e-4 over 50, L-BFGS memory "
        "100, closestFirst long-term weights; multi-pass 100 per pass, temporal from pass 8",
    ),
    names=PRESET_NAMES,
)


def video_config(preset: str = "quick", **overrides: Any) -> VideoConfig:
    """The named preset ("quick", "paper", "tiny") with any field overridden (None values are ignored)."""
    return config.preset(VideoConfig, VIDEO_PRESETS, preset, **overrides)


@dataclasses.dataclass
class VideoResult:
    """videos: {"input video", "with temporal loss", and where run "per-frame", "multi-pass"} ->
    [T, H, W, 3] in [0, 1] (colour restored). raw: the same videos as the network made them (before
    colour restoration; what `done` resumes from). flicker: {name: [T - 1]} warping errors between
    consecutive frames over reliable pixels; long_range: {"j=<offset>": {name: mean error}} for the
    offsets > 1; style_objective: {name: [T]} the per-frame objective (without the temporal term)."""

    config: VideoConfig
    videos: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    temporal_weight: float
    flicker: dict[str, np.ndarray]
    long_range: dict[str, dict[str, float]]
    multipass_flicker_per_pass: list[float]
    reliable_fraction: list[float]
    style_objective: dict[str, list[float]]
    resumed_after_frames: int
    seconds: dict[str, float | None]

    def measures(self) -> dict[str, Any]:
        """The run's numbers as plain JSON values: temporal weight, offsets, frames and their size,
        reliable fraction per pair, flicker per video ({per_pair, mean, rmse_255}: the mean squared
        warping error on RGB in [0, 1] and its root on the 0-255 scale), long-range errors, the
        multi-pass flicker per pass, the style objective per frame and the seconds per stage."""
        n, h, w = self.videos["input video"].shape[:3]
        flicker = {
            k: {"per_pair": v.tolist(), "mean": float(v.mean()), "rmse_255": float(255 * np.sqrt(v.mean()))}
            for k, v in self.flicker.items()
        }
        return {
            "temporal_weight": self.temporal_weight,
            "offsets": list(self.config.offsets),
            "n_frames": n,
            "frame_size": [h, w],
            "resumed_after_frames": self.resumed_after_frames,
            "reliable_fraction": self.reliable_fraction,
            "flicker": flicker,
            "long_range_error": self.long_range,
            "multipass_flicker_per_pass": self.multipass_flicker_per_pass,
            "style_objective": self.style_objective,
            "seconds": self.seconds,
        }

    def compared(self) -> list[str]:
        """The videos side by side in compare.gif, left to right."""
        return [k for k in ("input video", "per-frame", "with temporal loss", "multi-pass") if k in self.videos]

    def pictures(self, video_format: str = "gif") -> dict[str, np.ndarray]:
        """The run's pictures by file name (for `write_pictures`): frames/<temporal|per_frame|multipass>_<t>.png
        of each stylised video, stylized.<video_format> (the one with the temporal loss) and compare.gif
        (`compared`, side by side)."""
        stems = {"with temporal loss": "temporal", "per-frame": "per_frame", "multi-pass": "multipass"}
        frames = {
            f"frames/{stems[k]}_{t:04d}.png": x for k in stems if k in self.videos for t, x in enumerate(self.videos[k])
        }
        compare = np.concatenate([self.videos[k] for k in self.compared()], 2)
        return {**frames, f"stylized.{video_format}": self.videos["with temporal loss"], "compare.gif": compare}

    def tables(self) -> dict[str, dict[str, list]]:
        """The flicker and long-range errors as tables ({"headers", "rows"}): "flicker" (per video, the
        mean squared warping error and its RMSE on 0-255) and "long_range" (per offset > 1 and video)."""
        flicker = [[k, v["mean"], v["rmse_255"]] for k, v in self.measures()["flicker"].items()]
        return {
            "flicker": {"headers": ["video", "mean squared error (RGB in [0, 1])", "RMSE on 0-255"], "rows": flicker},
            "long_range": {
                "headers": ["offset", "video", "error"],
                "rows": [[j, k, e] for j, v in self.long_range.items() for k, e in v.items()],
            },
        }


def run_video_style(
    config: VideoConfig,
    weights: Any,
    frames: np.ndarray,
    styles: Sequence[np.ndarray],
    progress: Progress | None = None,
    on_frame: Callable[[int, np.ndarray, Any], None] | None = None,
    done: Sequence[np.ndarray] = (),
) -> VideoResult:
    """Stylise a clip [T, H, W, 3] in [0, 1] (T >= 2, H, W >= 32) with style images ([h, w, 3] each):
    the single-pass algorithm with the temporal loss (offsets as configured), the per-frame baseline
    (config.baseline, or needed by multi-pass), the multi-pass algorithm (config.multipass), and
    their flicker. on_frame(t, image, result) after each single-pass frame, image being the network's
    output [H, W, 3] (save it: passing the saved frames back as `done` resumes after them). weights: a
    dfijax.weights.VGGWeights."""

    progress = progress or (lambda *a: None)
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 4 or len(frames) < 2:
        raise VideoError(f"a video needs at least 2 frames [T, H, W, 3], got shape {frames.shape}")
    check_image_batch(frames, "frames")
    if len(done) > len(frames):
        raise VideoError(f"{len(done)} finished frames for a {len(frames)}-frame video; start a fresh run")
    if any(np.shape(d) != frames.shape[1:] for d in done):
        raise VideoError(
            f"finished frames of shape {np.shape(done[0])} for a video of {frames.shape[1:]} frames; start a fresh run"
        )
    cfg, variables, n = config, weights.variables, len(frames)
    tw, mode = cfg.temporal_weight_for(weights.pretrained), cfg.preserve_color
    loss = cfg.loss(tw)
    net_frames, net_styles = color.preserving_inputs(mode, frames, styles)
    t0 = time.perf_counter()
    if cfg.flow_dir is not None:
        pairs = flow_dir_pairs(cfg.flow_dir, n, frames.shape[1:3], cfg.offsets, cfg.multipass > 0, cfg.flow_start)
    else:
        pairs = offset_pairs(frames, cfg.offsets, cfg.flow, following=cfg.multipass > 0)
    consecutive = [pairs[(t, t - 1)] for t in range(1, n)]
    seconds: dict[str, float | None] = {"flow": time.perf_counter() - t0}
    first = inv.SolverConfig(maxiter=cfg.iters_first, history_size=cfg.history)
    later = inv.SolverConfig(maxiter=cfg.iters, history_size=cfg.history)
    per_pass = inv.SolverConfig(maxiter=cfg.pass_iters, history_size=cfg.history)

    def finished(t, img, r):
        if on_frame is not None:
            on_frame(t, img, r)
        progress("single pass", t + 1, n, {})

    pass_flicker: list[float] = []

    def passed(p, outs):
        pass_flicker.append(
            float(warping_errors(color.restore_color(mode, np.stack(outs), frames), consecutive).mean())
        )
        progress("multi-pass", p, cfg.multipass, {"flicker": pass_flicker[-1]})

    t0 = time.perf_counter()
    progress("single pass", len(done), n, {})
    seconds["per_frame"] = seconds["multipass"] = None
    if cfg.objective == "artistic-videos":
        key = jax.random.key(cfg.seed)
        grams = av_style_grams(loss, variables, net_styles, cfg.blend, frames.shape[1:3])
        targets = av_targets(loss, variables, net_frames, grams, len(cfg.offsets))
        single = av_single_pass(
            loss,
            variables,
            targets,
            pairs,
            first,
            later,
            cfg.offsets,
            cfg.init_first,
            jax.random.fold_in(key, 0),
            net_frames,
            cfg.long_term,
            cfg.tol_relative,
            cfg.tol_interval,
            done=done,
            on_frame=finished,
        )
        raw = {"with temporal loss": np.stack(single)}
        seconds["temporal"] = time.perf_counter() - t0
        if cfg.baseline:
            t0 = time.perf_counter()
            if cfg.init_first == "noise":
                z0 = jnp.stack([caffe_noise(jax.random.fold_in(key, 1000 + t), frames.shape[1:3]) for t in range(n)])
            else:
                z0 = to_caffe(net_frames)
            r = solve_with_interval_stop(
                loss,
                variables,
                targets,
                z0,
                first,
                cfg.tol_relative,
                cfg.tol_interval,
                lambda k, l: progress("per-frame", int(k), cfg.iters_first, {"loss": float(np.mean(l))}),
            )
            raw["per-frame"] = np.clip(np.asarray(from_caffe(r.z)), 0, 1)
            seconds["per_frame"] = time.perf_counter() - t0
        if cfg.multipass:
            t0 = time.perf_counter()
            one_slot = {**targets, "warped": targets["warped"][:, :1], "reliability": targets["reliability"][:, :1]}
            raw["multi-pass"] = np.stack(
                av_multipass(
                    dataclasses.replace(loss, temporal_weight=tw / 2),
                    variables,
                    one_slot,
                    pairs,
                    per_pass,
                    cfg.multipass,
                    cfg.temporal_after,
                    cfg.blend_weight,
                    cfg.blend_weight_other,
                    jax.random.fold_in(key, 1),
                    on_pass=passed,
                )
            )
            seconds["multipass"] = time.perf_counter() - t0
        scored = {k: to_caffe(v) for k, v in raw.items()}
    else:
        targets = gatys.style_targets(loss, variables, net_frames, net_styles, cfg.blend)
        raw = {
            "with temporal loss": np.stack(
                stylize_sequence(
                    loss,
                    variables,
                    net_frames,
                    targets,
                    pairs,
                    first,
                    later,
                    tw,
                    done=done,
                    on_frame=finished,
                    offsets=cfg.offsets,
                    long_term=cfg.long_term,
                )
            )
        }
        seconds["temporal"] = time.perf_counter() - t0
        if cfg.baseline or cfg.multipass:
            t0 = time.perf_counter()
            r = inv.invert(
                loss,
                variables,
                targets,
                jnp.asarray(net_frames),
                first,
                check_every=5,
                progress=lambda k, l: progress("per-frame", int(k), cfg.iters_first, {"loss": float(jnp.mean(l))}),
            )
            raw["per-frame"] = np.clip(np.asarray(r.images), 0, 1)
            seconds["per_frame"] = time.perf_counter() - t0
        if cfg.multipass:
            t0 = time.perf_counter()
            settings = MultiPass(per_pass, cfg.multipass, cfg.temporal_after, tw / 2, cfg.blend_weight)
            raw["multi-pass"] = np.stack(
                stylize_multipass(
                    loss, variables, net_frames, targets, pairs, settings, first=raw["per-frame"], on_pass=passed
                )
            )
            seconds["multipass"] = time.perf_counter() - t0
        scored = raw
    order = [k for k in ("with temporal loss", "per-frame", "multi-pass") if k in raw]
    videos = {"input video": frames, **{k: color.restore_color(mode, raw[k], frames) for k in order}}
    flicker = {k: warping_errors(v, consecutive) for k, v in videos.items()}
    long_range = {
        f"j={j}": {k: float(long_range_errors(v, pairs, j).mean()) for k, v in videos.items()}
        for j in cfg.offsets
        if 1 < j < n
    }
    objective = {k: gatys.loss_values(loss, variables, scored[k], targets).tolist() for k in order}
    return VideoResult(
        cfg,
        videos,
        {k: raw[k] for k in order},
        tw,
        flicker,
        long_range,
        pass_flicker,
        [float(p.mask.mean()) for p in consecutive],
        objective,
        len(done),
        seconds,
    )
