"""Style transfer for videos (Ruder, Dosovitskiy, Brox 2016): frames in and out, dense optical flow
(OpenCV, or artistic-videos' .flo/.pgm files via `flow_dir_pairs`), reliability masks, short- and
long-term temporal losses on the shared engine, the single-pass and multi-pass algorithms, flicker
metrics, and the whole pipeline (`run_video_style`, with colour preservation as for images). Two
objectives: the project's (`TemporalLoss` over a `StyleLoss`, RGB in [0, 1]) and manuelruder/
artistic-videos' Torch code (`ArtisticVideosLoss` on its Caffe-space image, `av_single_pass`,
`av_multipass`, `solve_with_interval_stop`: the `paper` preset).

Flow convention: `flow = optical_flow(a, b)` is [H, W, 2] (dx, dy) in pixels with a(p) ≈ b(p + flow(p)),
so `warp(b, flow)` (b sampled at p + flow(p)) lines b up with a. For frame t, the backward flow
`optical_flow(frame_t, frame_{t-1})` warps the previous stylised frame onto frame t.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import images as im

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class VideoError(ValueError):
    """A video or frame folder that cannot be used; the message names the file and the fix."""


def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - a declared dependency
        raise VideoError("video needs OpenCV: pip install opencv-python-headless") from None
    return cv2


def read_frames(
    path: str | os.PathLike, size: int | None = None, max_frames: int | None = None, stride: int = 1
) -> np.ndarray:
    """A video file (anything OpenCV decodes) or a folder of frame images (sorted by name) as
    [T, H, W, 3] float32 RGB in [0, 1]. size: resize the short side (frames of a folder are all
    brought to the first frame's size). Every `stride`-th frame, at most max_frames of them."""
    path = pathlib.Path(path)
    if not path.exists():
        raise VideoError(f"video {path} not found")
    if stride < 1:
        raise VideoError(f"stride must be >= 1, got {stride}")
    frames: list[np.ndarray] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[::stride]
        if not files:
            raise VideoError(f"{path} holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
        for f in files[:max_frames]:
            x = im.load_image(f, size)
            if frames and x.shape != frames[0].shape:
                x = im.resize_array(x, frames[0].shape[:2])
            frames.append(x)
    else:
        cv2 = _cv2()
        cap = cv2.VideoCapture(str(path))
        try:
            i = 0
            while cap.isOpened() and (max_frames is None or len(frames) < max_frames):
                ok, bgr = cap.read()
                if not ok:
                    break
                if i % stride == 0:
                    x = np.asarray(bgr[..., ::-1], np.float32) / 255.0
                    if size is not None:
                        h, w = x.shape[:2]
                        s = size / min(h, w)
                        x = im.resize_array(x, (max(1, round(h * s)), max(1, round(w * s))))
                    frames.append(x)
                i += 1
        finally:
            cap.release()
        if not frames:
            raise VideoError(
                f"cannot decode {path} as a video (OpenCV read no frames); convert it to an H.264 "
                f".mp4, or pass a folder of frame images"
            )
    return np.stack(frames).astype(np.float32)


def write_video(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 8.0) -> pathlib.Path:
    """Write [T, H, W, 3] in [0, 1] as .gif (Pillow, loops) or .mp4/.avi (OpenCV)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    u8 = [im.to_uint8(f) for f in frames]
    if path.suffix.lower() == ".gif":
        from PIL import Image

        pics = [Image.fromarray(f) for f in u8]
        pics[0].save(path, save_all=True, append_images=pics[1:], duration=max(1, round(1000 / fps)), loop=0)
        return path
    cv2 = _cv2()
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    h, w = u8[0].shape[:2]
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {path}; use a .gif or .avi name instead")
    for f in u8:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from frame a to frame b ([H, W, 3] in [0, 1]): [H, W, 2] (dx, dy) with
    a(p) ≈ b(p + flow(p)). method: "dis" (DIS, medium preset at full resolution) or "farneback"."""
    cv2 = _cv2()
    ga = cv2.cvtColor(im.to_uint8(a), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(im.to_uint8(b), cv2.COLOR_RGB2GRAY)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)  # full resolution: frames here are small
        flow = dis.calc(ga, gb, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(
            ga, gb, None, pyr_scale=0.5, levels=4, winsize=9, iterations=5, poly_n=5, poly_sigma=1.1, flags=0
        )
    else:
        raise VideoError(f"unknown flow method {method!r}; use 'dis' or 'farneback'")
    return np.asarray(flow, np.float32)


@jax.jit
def warp(x: jax.Array, flow: jax.Array) -> jax.Array:
    """x sampled at p + flow(p), bilinear, edges clamped: x [H, W, C], flow [H, W, 2] (dx, dy)."""
    h, w = x.shape[:2]
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    coords = [yy + flow[..., 1], xx + flow[..., 0]]
    sample = lambda c: jax.scipy.ndimage.map_coordinates(c, coords, order=1, mode="nearest")
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(x)


def reliability(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s per-pixel weights for frame t: 0 where the forward-backward check fails
    (disocclusions) or at motion boundaries, 1 elsewhere. [H, W] float32.

    forward: optical_flow(frame_{t-1}, frame_t); backward: optical_flow(frame_t, frame_{t-1}).
    With w̃ the forward flow followed back along the backward flow ŵ:
      |w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5      (disoccluded)
      |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002        (motion boundary),
    and where p + ŵ(p) lies outside the previous frame (content that entered over the edge)."""
    forward, backward = np.asarray(forward, np.float32), np.asarray(backward, np.float32)
    if forward.shape != backward.shape or forward.ndim != 3 or forward.shape[-1] != 2:
        raise VideoError(f"flows must both be [H, W, 2], got {forward.shape} and {backward.shape}")
    w_t = np.asarray(warp(jnp.asarray(forward), jnp.asarray(backward)))
    sq = lambda f: np.sum(f * f, -1)
    occluded = sq(w_t + backward) > 0.01 * (sq(w_t) + sq(backward)) + 0.5
    gu = np.gradient(backward[..., 0])
    gv = np.gradient(backward[..., 1])
    grad = gu[0] ** 2 + gu[1] ** 2 + gv[0] ** 2 + gv[1] ** 2
    boundary = grad > 0.01 * sq(backward) + 0.002
    h, w = backward.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    tx, ty = xx + backward[..., 0], yy + backward[..., 1]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)  # came in over the frame's edge
    return (~(occluded | boundary | outside)).astype(np.float32)


@dataclasses.dataclass
class FramePair:
    """What the temporal loss and the flicker metric need for frame t (t >= 1)."""

    backward: np.ndarray  # [H, W, 2] flow frame_t -> frame_{t-1}
    mask: np.ndarray  # [H, W] reliability in [0, 1] (ours: 0 or 1; consistencyChecker's .pgm: fractional)


def frame_pairs(frames: np.ndarray, method: str = "dis") -> list[FramePair]:
    """Flows both ways and reliability for each consecutive pair of [T, H, W, 3] frames: T - 1 pairs."""
    out = []
    for t in range(1, len(frames)):
        fwd = optical_flow(frames[t - 1], frames[t], method)
        bwd = optical_flow(frames[t], frames[t - 1], method)
        out.append(FramePair(bwd, reliability(fwd, bwd)))
    return out


def check_offsets(offsets: Sequence[int]) -> tuple[int, ...]:
    """The earlier-frame offsets J of the long-term loss, sorted, e.g. (1, 2, 5). Must contain 1."""
    try:
        j = tuple(sorted({int(o) for o in offsets}))
    except (TypeError, ValueError):
        raise VideoError(f"frame offsets must be positive integers, got {offsets!r}") from None
    if not j or j[0] != 1:
        raise VideoError(
            f"frame offsets must be positive integers including 1 (the previous frame), e.g. 1,2,5; got {list(offsets)}"
        )
    return j


def offset_pairs(
    frames: np.ndarray, offsets: Sequence[int] = (1,), method: str = "dis", following: bool = False
) -> dict[tuple[int, int], FramePair]:
    """Flow and reliability that carry frame s onto frame t, keyed (t, s): for every t and s = t − j
    (j in offsets), computed directly between the two frames (no chained flows), and with
    following=True also s = t + 1 (the backward passes of the multi-pass algorithm)."""
    out: dict[tuple[int, int], FramePair] = {}
    for j in check_offsets(offsets):
        for t in range(j, len(frames)):
            fwd = optical_flow(frames[t - j], frames[t], method)  # t−j -> t
            bwd = optical_flow(frames[t], frames[t - j], method)  # t -> t−j
            out[(t, t - j)] = FramePair(bwd, reliability(fwd, bwd))
            if following and j == 1:
                out[(t - 1, t)] = FramePair(fwd, reliability(bwd, fwd))
    return out


def flow_dir_pairs(
    folder: str | os.PathLike,
    n_frames: int,
    hw: tuple[int, int],
    offsets: Sequence[int] = (1,),
    following: bool = False,
    start: int = 1,
) -> dict[tuple[int, int], FramePair]:
    """offset_pairs read from artistic-videos' flow files instead of computed: for every t and s = t − j,
    backward_<t>_<s>.flo and reliable_<t>_<s>.pgm, and with following=True forward_<t>_<t+1>.flo and
    reliable_<t>_<t+1>.pgm (file numbers = frame index + start, see dfijax.style.flow_files)."""
    from dfijax.style import flow_files

    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise VideoError(f"flow folder {folder} not found; make it with makeOptFlow.sh <frame pattern> {folder}")
    out: dict[tuple[int, int], FramePair] = {}
    for j in check_offsets(offsets):
        for t in range(j, n_frames):
            keys = [(t, t - j)] + ([(t - 1, t)] if following and j == 1 else [])
            for a, b in keys:
                flow, rel = flow_files.read_pair(folder, a, b, hw, start)
                out[(a, b)] = FramePair(flow, rel)
    return out


LONG_TERM_METHODS = ("formula", "closestFirst", "normalize")


def long_term_weights(masks: np.ndarray, method: str = "formula") -> np.ndarray:
    """Ruder et al.'s long-term weights: masks [K, H, W] are the reliabilities c(i−j, i) for the
    offsets j in increasing order (the closest earlier frame first); returns [K, H, W].

    "formula" (the paper's): c_long(i−j, i) = max(c(i−j, i) − Σ_{k<j} c(i−k, i), 0) on the raw
    reliabilities, so each pixel is tied to the closest earlier frame in which it was visible.
    "closestFirst" (artistic-videos' code, its default): the same in place, frame by frame, so each
    frame subtracts the closer frames' already reduced weights, c'_j = max(c_j − Σ_{k<j} c'_k, 0);
    it differs from "formula" only where the reliabilities are fractional. "normalize": c_j / max(Σ_k c_k, 1).
    """
    masks = np.asarray(masks, np.float32)
    if masks.ndim != 3:
        raise VideoError(f"masks must be [K, H, W], got shape {masks.shape}")
    if method == "formula":
        closer = np.cumsum(masks, axis=0) - masks  # Σ over the closer frames
        return np.maximum(masks - closer, 0.0)
    if method == "closestFirst":
        out = masks.copy()
        for j in range(1, len(out)):
            out[j] = np.maximum(out[j] - out[:j].sum(0), 0.0)
        return out
    if method == "normalize":
        return masks / np.maximum(masks.sum(0), 1.0)
    raise VideoError(f"unknown long-term weighting {method!r}; use one of {', '.join(LONG_TERM_METHODS)}")


def pair_error(frames: np.ndarray, t: int, s: int, pair: FramePair) -> float:
    """Mean squared difference between frame t and frame s warped onto it, over the pixels reliable
    between them (RGB in [0, 1])."""
    warped = np.asarray(warp(jnp.asarray(frames[s]), jnp.asarray(pair.backward)))
    d2 = np.sum((np.asarray(frames[t]) - warped) ** 2, -1)
    return float(np.sum(pair.mask * d2) / max(3.0 * pair.mask.sum(), 1.0))


def warping_errors(frames: np.ndarray, pairs: Sequence[FramePair]) -> np.ndarray:
    """Flicker: for t = 1…T-1, the mean squared difference between frame t and frame t-1 warped onto
    it, over reliable pixels (RGB in [0, 1]). [T - 1] float64; lower is steadier."""
    return np.asarray([pair_error(frames, t, t - 1, p) for t, p in enumerate(pairs, start=1)])


def long_range_errors(frames: np.ndarray, pairs: Mapping[tuple[int, int], FramePair], offset: int) -> np.ndarray:
    """Long-term consistency: for t = j…T-1 (j = offset), the warping error between frame t and frame
    t − j over the pixels reliable between those two frames (flow computed directly between them).
    [T - j] float64."""
    return np.asarray([pair_error(frames, t, t - offset, pairs[(t, t - offset)]) for t in range(offset, len(frames))])


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


def _as_pair_map(pairs: Sequence[FramePair] | Mapping[tuple[int, int], FramePair]) -> dict[tuple[int, int], FramePair]:
    if isinstance(pairs, Mapping):
        return dict(pairs)
    return {(t, t - 1): p for t, p in enumerate(pairs, start=1)}


def temporal_targets(
    outs: Sequence[np.ndarray],
    t: int,
    offsets: Sequence[int],
    pairs: Mapping[tuple[int, int], FramePair],
    method: str = "formula",
    warp_fn: Callable[[jax.Array, jax.Array], jax.Array] = warp,
) -> tuple[jax.Array, jax.Array]:
    """The long-term loss targets of frame t: the outputs of frames t − j (j in offsets) warped onto
    it by warp_fn(image, backward flow), [K, H, W, 3], and their long-term weights, [K, H, W] (zero for
    offsets before the start)."""
    h, w = outs[0].shape[:2]
    warped = np.zeros((len(offsets), h, w, 3), np.float32)
    masks = np.zeros((len(offsets), h, w), np.float32)
    for k, j in enumerate(offsets):
        if t - j >= 0:
            p = pairs[(t, t - j)]
            warped[k] = np.asarray(warp_fn(jnp.asarray(outs[t - j]), jnp.asarray(p.backward)))
            masks[k] = p.mask
    return jnp.asarray(warped), jnp.asarray(long_term_weights(masks, method))


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
    from dfijax.invert import invert

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
    from dfijax.invert import invert

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
# artistic-videos (Ruder et al.'s Torch code): its objective, initialisation, solver stop rule and
# algorithms. The optimisation variable is its Caffe-space image z = 256·BGR − mean, [H, W, 3].

AV_SCALE = 256.0  # artistic_video_core.lua preprocess: `img:mul(256.0)`, not 255


def _mean_bgr(ndim: int) -> jax.Array:
    from dfijax.vgg import CAFFE_MEAN_BGR

    return jnp.asarray(CAFFE_MEAN_BGR).reshape((1,) * (ndim - 1) + (3,))


def to_caffe(x: jax.Array | np.ndarray) -> jax.Array:
    """RGB in [0, 1] [..., 3] -> artistic-videos' network input: BGR, times 256, minus the BGR mean."""
    x = jnp.asarray(x, jnp.float32)
    return x[..., ::-1] * AV_SCALE - _mean_bgr(x.ndim)


def from_caffe(z: jax.Array | np.ndarray) -> jax.Array:
    """to_caffe's inverse (its `deprocess`): (z + mean) / 256 as RGB, not clipped."""
    z = jnp.asarray(z, jnp.float32)
    return ((z + _mean_bgr(z.ndim)) / AV_SCALE)[..., ::-1]


@jax.jit
def warp_mean_pad(x: jax.Array, flow: jax.Array) -> jax.Array:
    """artistic-videos' `warpImage`: x [H, W, 3] in [0, 1] sampled bilinearly at p + flow(p); where
    that point lies outside the frame the pixel is the VGG mean pixel (mean / 256), i.e. 0 once
    preprocessed. Inside, the same as `warp`."""
    h, w = x.shape[:2]
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    iy, ix = yy + flow[..., 1], xx + flow[..., 0]
    off = (iy < 0) | (iy > h - 1) | (ix < 0) | (ix > w - 1)
    mean_rgb = _mean_bgr(3)[..., ::-1] / AV_SCALE
    return jnp.where(off[..., None], mean_rgb, warp(x, flow))


def caffe_noise(key: jax.Array, hw: tuple[int, int], std: float = 1e-3) -> jax.Array:
    """artistic-videos' `random` init: N(0, std²) noise in its Caffe space (so, in pixels, the mean
    colour plus ~4e-6 noise), [H, W, 3]."""
    return std * jax.random.normal(key, tuple(hw) + (3,), jnp.float32)


TEMPORAL_GRADIENTS = ("reference", "exact")


@dataclasses.dataclass(frozen=True)
class ArtisticVideosLoss:
    """artistic-videos' objective for one frame, on its Caffe-space image z [H, W, 3] (to_caffe):

      value = content_weight · Σ mean((F − P)²) + style_weight · Σ_l mean((G_l − A_l)²)
              + temporal_weight · Σ_k mean((√c_k·z − √c_k·ω_k)²)
      G = FᵀF / (C·h·w) (its style image's Gram too), ω_k the earlier outputs warped onto this frame
      (Caffe space), c_k their weights in [0, 1] (targets "warped" [K, H, W, 3], "reliability" [K, H, W];
      a slot of zeros does nothing).
    The network sees z itself when the weights use Caffe preprocessing (255·x − mean of the RGB image
    (z + mean)/255); other weight families see that image through their own preprocessing.

    What L-BFGS sees differs from ∇value in two places, as in the reference's Torch modules:
      tv_in_value False (reference): TV enters the gradient only, tv_weight · ∇ ½Σ(x_diff² + y_diff²)
        with x_diff = z[:-1, :-1] − z[:-1, 1:], y_diff = z[:-1, :-1] − z[1:, :-1]; True adds it to the value.
      temporal_gradient "reference": its WeightedContentLoss returns the MSE gradient with respect to
        √c·z without the chain factor √c, i.e. temporal_weight · 2√c(z − ω)/(3HW) where ∇value has
        2c(z − ω)/(3HW) (equal where c is 0 or 1); "exact" uses ∇value.
    """

    model: Any = None
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    temporal_weight: float = 1e3
    tv_in_value: bool = False
    temporal_gradient: str = "reference"

    def __post_init__(self):
        from dfijax.vgg import VGG19, layer_index

        if self.model is None:
            object.__setattr__(self, "model", VGG19(pooling="max"))
        for t in self.content_layers + self.style_layers:
            layer_index(t)
        if self.temporal_gradient not in TEMPORAL_GRADIENTS:
            raise VideoError(
                f"unknown temporal_gradient {self.temporal_gradient!r}; use one of {', '.join(TEMPORAL_GRADIENTS)}"
            )

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    def target_names(self) -> tuple[str, ...]:
        return (
            tuple(f"content/{t}" for t in self.content_layers)
            + tuple(f"gram/{t}" for t in self.style_layers)
            + ("warped", "reliability")
        )

    def features(self, variables: Mapping, z: jax.Array) -> dict[str, jax.Array]:
        x = ((z + _mean_bgr(z.ndim)) / 255.0)[..., ::-1]
        return {k: v[0] for k, v in self.model.apply(variables, x[None], taps=self.taps).items()}

    @staticmethod
    def gram(f: jax.Array) -> jax.Array:
        """[h, w, C] -> FᵀF / (C·h·w) (GramMatrix, then `G:div(input:nElement())`)."""
        flat = f.reshape(-1, f.shape[-1])
        return flat.T @ flat / f.size

    @staticmethod
    def tv_half(z: jax.Array) -> jax.Array:
        """½Σ(x_diff² + y_diff²) over the Lua's [:-1, :-1] crop, whose gradient is its TVLoss's."""
        xd = z[:-1, :-1] - z[:-1, 1:]
        yd = z[:-1, :-1] - z[1:, :-1]
        return 0.5 * (jnp.sum(xd * xd) + jnp.sum(yd * yd))

    def parts(self, z: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The weighted terms: content, style, temporal, and tv (tv_weight · ½Σ(…), in the value only
        with tv_in_value)."""
        f = self.features(variables, z)
        content = sum(jnp.mean((f[t] - targets[f"content/{t}"]) ** 2) for t in self.content_layers)
        style = sum(jnp.mean((self.gram(f[t]) - targets[f"gram/{t}"]) ** 2) for t in self.style_layers)
        w, c = targets["warped"], targets["reliability"]
        if w.ndim == 3:
            w, c = w[None], c[None]
        r = jnp.sqrt(c)[..., None]
        temporal = jnp.sum(jnp.mean((r * z[None] - r * w) ** 2, axis=(1, 2, 3)))
        return {
            "content": self.content_weight * content,
            "style": self.style_weight * style,
            "temporal": self.temporal_weight * temporal,
            "tv": self.tv_weight * self.tv_half(z),
        }

    def __call__(self, z: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> jax.Array:
        p = self.parts(z, variables, targets)
        value = p["content"] + p["style"] + p["temporal"]
        # terms that are 0 in value but add to the gradient what the reference's modules add
        value = value + (p["tv"] if self.tv_in_value else p["tv"] - jax.lax.stop_gradient(p["tv"]))
        if self.temporal_gradient == "reference":
            w, c = targets["warped"], targets["reliability"]
            if w.ndim == 3:
                w, c = w[None], c[None]
            extra = self.temporal_weight * jnp.sum(
                jnp.mean((jnp.sqrt(c) - c)[..., None] * (z[None] - w) ** 2, axis=(1, 2, 3))
            )
            value = value + extra - jax.lax.stop_gradient(extra)
        return value


@functools.partial(jax.jit, static_argnums=(0,))
def _av_features(loss: ArtisticVideosLoss, variables, z):
    return loss.features(variables, z)


def av_style_grams(
    loss: ArtisticVideosLoss,
    variables: Mapping,
    styles: Sequence[np.ndarray],
    blend: Sequence[float] | None = None,
    content_hw: tuple[int, int] | None = None,
) -> dict[str, jax.Array]:
    """The style targets of artistic-videos' `buildNet`: each style image ([h, w, 3] in [0, 1])
    resized (bilinear) so its area is the content's (content_hw; None keeps it), preprocessed,
    Gram / (C·h·w), blended with weights normalised to sum to 1."""
    if not styles:
        raise VideoError("give at least one style image")
    blend = [1.0] * len(styles) if blend is None else [float(b) for b in blend]
    if len(blend) != len(styles) or any(b < 0 for b in blend) or sum(blend) <= 0:
        raise VideoError(f"style blend weights must be {len(styles)} non-negative numbers with a positive sum")
    out: dict[str, jax.Array] = {}
    for s, b in zip(styles, blend):
        s = np.asarray(s, np.float32)
        if content_hw is not None:
            k = float(np.sqrt(content_hw[0] * content_hw[1] / (s.shape[0] * s.shape[1])))
            hw = (max(32, int(s.shape[0] * k)), max(32, int(s.shape[1] * k)))
            if hw != s.shape[:2]:
                s = np.asarray(jax.image.resize(jnp.asarray(s), hw + (3,), "linear", antialias=False))
        f = _av_features(loss, variables, to_caffe(s))
        for t in loss.style_layers:
            out[t] = out.get(t, 0.0) + (b / sum(blend)) * loss.gram(f[t])
    return out


def av_targets(
    loss: ArtisticVideosLoss,
    variables: Mapping,
    frames: np.ndarray,
    grams: Mapping[str, jax.Array],
    slots: int,
) -> dict[str, jax.Array]:
    """Targets for T frames [T, H, W, 3] in [0, 1]: content features of the preprocessed frames,
    the style Grams, and `slots` empty temporal slots (filled per frame): {name: [T, ...]}."""
    frames = np.asarray(frames, np.float32)
    n, h, w = frames.shape[:3]
    feats = [_av_features(loss, variables, to_caffe(f)) for f in frames]
    out = {f"content/{t}": jnp.stack([f[t] for f in feats]) for t in loss.content_layers}
    out.update({f"gram/{t}": jnp.broadcast_to(grams[t], (n,) + grams[t].shape) for t in loss.style_layers})
    out["warped"] = jnp.zeros((n, slots, h, w, 3), jnp.float32)
    out["reliability"] = jnp.zeros((n, slots, h, w), jnp.float32)
    return out


def _av_init(loss, config, variables, targets, z0):
    from dfijax.invert import minimize_init

    return jax.vmap(lambda t, x: minimize_init(loss, x, (variables, t), config))(targets, z0)


def _av_step(loss, config, variables, targets, state):
    from dfijax.invert import minimize_step

    return jax.vmap(lambda t, c: minimize_step(loss, c, (variables, t), config))(targets, state)


def _av_run(loss, config, variables, targets, state, until):
    from dfijax.invert import minimize_step

    def one(t, c):
        return jax.lax.while_loop(
            lambda c: (c.k < until) & ~c.done, lambda c: minimize_step(loss, c, (variables, t), config), c
        )

    return jax.vmap(one)(targets, state)


_av_init_jit = jax.jit(_av_init, static_argnums=(0, 1))
_av_step_jit = jax.jit(_av_step, static_argnums=(0, 1), donate_argnums=(4,))
_av_run_jit = jax.jit(_av_run, static_argnums=(0, 1), donate_argnums=(4,))


class SolveOutcome(NamedTuple):
    """z: [B, H, W, 3] the last iterates (as the reference returns them, not the best); iterations
    [B]; loss [B] the value at z (without TV, as the reference's L-BFGS sees it)."""

    z: jax.Array
    iterations: np.ndarray
    loss: np.ndarray


def solve_with_interval_stop(
    loss: Any,
    variables: Mapping,
    targets: Mapping[str, jax.Array],
    z0: jax.Array,
    config: Any,
    tol_relative: float = 0.0,
    interval: int = 50,
    progress: Callable[[int, np.ndarray], None] | None = None,
) -> SolveOutcome:
    """L-BFGS on the engine (dfijax.invert.minimize_step, fixed unit step) for B problems z0 [B, ...],
    with artistic-videos' stop rule (its lbfgs.lua): every `interval` iterations the loss f is compared
    with the one `interval` iterations before, f_past, and a problem stops once |f − f_past| / f_past <
    tol_relative (0: never). progress(iteration, losses) after each interval."""
    if interval < 1 or tol_relative < 0:
        raise VideoError(f"the stop rule needs interval >= 1 and tol_relative >= 0, got {interval}, {tol_relative}")
    names = loss.target_names()
    targets = {n: jnp.asarray(targets[n], jnp.float32) for n in names}
    state = _av_init_jit(loss, config, variables, targets, jnp.asarray(z0, jnp.float32))
    # XLA:CPU runs while-loop bodies slowly: one call per step there ($DFIJAX_INVERT_LOOP overrides, as for invert)
    host = (os.environ.get("DFIJAX_INVERT_LOOP") or ("host" if jax.default_backend() == "cpu" else "device")) == "host"
    f_past, k = None, 0
    while k < config.maxiter:
        until = min(k + interval, config.maxiter)
        if host:
            for _ in range(until - k):
                state = _av_step_jit(loss, config, variables, targets, state)
        else:
            state = _av_run_jit(loss, config, variables, targets, state, jnp.asarray(until))
        k = until
        f = np.asarray(state.f_prev, np.float64)
        if progress is not None:
            progress(k, f)
        if k % interval == 0 and k < config.maxiter:
            if f_past is not None and tol_relative > 0:
                stop = np.abs(f - f_past) / f_past < tol_relative
                state = state._replace(done=state.done | jnp.asarray(stop))
            f_past = f
        if bool(np.all(np.asarray(state.done))):
            break
    return SolveOutcome(state.x, np.asarray(state.k), np.asarray(state.f_prev))


def av_pair_targets(
    outs: Sequence[np.ndarray],
    t: int,
    offsets: Sequence[int],
    pairs: Mapping[tuple[int, int], FramePair],
    method: str = "closestFirst",
) -> tuple[jax.Array, jax.Array]:
    """artistic_video.lua's temporal targets of frame t: the outputs of frames t − j ([0, 1]) warped by
    `warpImage` (mean pixel out of frame) and preprocessed, [K, H, W, 3], and their long-term weights,
    [K, H, W] (zero for offsets before the first frame)."""
    return temporal_targets(outs, t, offsets, pairs, method, lambda img, flow: to_caffe(warp_mean_pad(img, flow)))


def av_single_pass(
    loss: ArtisticVideosLoss,
    variables: Mapping,
    targets: Mapping[str, jax.Array],
    pairs: Mapping[tuple[int, int], FramePair],
    first_config: Any,
    config: Any,
    offsets: Sequence[int] = (1,),
    init_first: str = "noise",
    key: jax.Array | None = None,
    contents: np.ndarray | None = None,
    long_term: str = "closestFirst",
    tol_relative: float = 1e-4,
    interval: int = 50,
    done: Sequence[np.ndarray] = (),
    on_frame: Callable[[int, np.ndarray, SolveOutcome], None] | None = None,
) -> list[np.ndarray]:
    """artistic_video.lua's frame loop: frame 0 from `init_first` ("noise": caffe_noise, the
    reference's `random`; "content": the frame) with first_config; frame t from the previous output
    warped by `warpImage` (`prevWarped`), with temporal terms towards the outputs of frames t − j
    (offsets) weighted by `long_term`; each solve stops by solve_with_interval_stop. Outputs are
    kept as the reference saves them: (z + mean)/256 clipped to [0, 1]. targets: av_targets for all
    T frames (slots = len(offsets)). Returns all T outputs [H, W, 3]."""
    offsets = check_offsets(offsets)
    n = targets["warped"].shape[0]
    missing = [(t, t - j) for j in offsets for t in range(j, n) if (t, t - j) not in pairs]
    if missing:
        raise VideoError(f"no flow for frame pairs {missing[:3]}...; compute them with offset_pairs(frames, {offsets})")
    if init_first not in ("noise", "content"):
        raise VideoError(f"init_first must be 'noise' or 'content', got {init_first!r}")
    key = jax.random.key(0) if key is None else key
    outs = [np.asarray(d, np.float32) for d in done]
    for t in range(len(outs), n):
        tg = {k: v[t : t + 1] for k, v in targets.items()}
        h, w = tg["warped"].shape[2:4]
        if t == 0:
            if init_first == "noise":
                z0 = caffe_noise(key, (h, w))
            else:
                if contents is None:
                    raise VideoError("init_first='content' needs the frames (contents)")
                z0 = to_caffe(contents[0])
            r = solve_with_interval_stop(loss, variables, tg, z0[None], first_config, tol_relative, interval)
        else:
            warped, weights = av_pair_targets(outs, t, offsets, pairs, long_term)
            tg.update(warped=warped[None], reliability=weights[None])
            z0 = to_caffe(warp_mean_pad(jnp.asarray(outs[t - 1]), jnp.asarray(pairs[(t, t - 1)].backward)))
            r = solve_with_interval_stop(loss, variables, tg, z0[None], config, tol_relative, interval)
        outs.append(np.clip(np.asarray(from_caffe(r.z[0])), 0.0, 1.0))
        if on_frame is not None:
            on_frame(t, outs[-1], r)
    return outs


def multipass_start(x: jax.Array | np.ndarray, neighbours: Sequence[tuple[Any, Any, float]]) -> jax.Array:
    """A multi-pass frame's start (artistic_video_multiPass.lua): x [H, W, 3] the frame's result of the
    previous pass, neighbours (ω warped onto the frame [H, W, 3], c [H, W], blend weight b):
    (x + Σ b·c·ω) / (1 + Σ b·c)."""
    num = jnp.asarray(x, jnp.float32)
    den = jnp.ones(num.shape[:2] + (1,), jnp.float32)
    for w, c, b in neighbours:
        bc = float(b) * jnp.asarray(c, jnp.float32)[..., None]
        num = num + bc * jnp.asarray(w, jnp.float32)
        den = den + bc
    return num / den


def av_multipass(
    loss: ArtisticVideosLoss,
    variables: Mapping,
    targets: Mapping[str, jax.Array],
    pairs: Mapping[tuple[int, int], FramePair],
    config: Any,
    passes: int = 15,
    temporal_after: int = 8,
    blend: float = 1.0,
    blend_other: float = 0.0,
    key: jax.Array | None = None,
    on_pass: Callable[[int, list[np.ndarray]], None] | None = None,
    first_pass: int = 1,
    previous: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """artistic_video_multiPass.lua: pass p runs forward (p odd) or backward (p even) over the frames,
    `config` iterations per frame and pass, no early stop. Pass 1 starts every frame from one shared
    caffe_noise image; a later pass starts frame t from multipass_start(its previous result, the
    neighbour the pass comes from (its result of this pass) with weight `blend`, the other neighbour
    (its result of the previous pass) with `blend_other` (the reference's blendWeight_lastPass)), both
    warped with `warp` (edges clamped) and weighted by their reliability. From pass temporal_after on a
    temporal term (loss.temporal_weight, the reference's 5e2) pulls frame t towards the neighbour the
    pass comes from. targets: av_targets(..., slots=1); pairs: offset_pairs(frames, (1,), following=True).
    first_pass > 1 continues a run (its -continue_with_pass) from `previous`, the T results of pass
    first_pass − 1 ([H, W, 3] in [0, 1])."""
    n = targets["warped"].shape[0]
    missing = [k for t in range(1, n) for k in ((t, t - 1), (t - 1, t)) if k not in pairs]
    if missing:
        raise VideoError(f"no flow for frame pairs {missing[:3]}...; use offset_pairs(frames, following=True)")
    if passes < 1 or temporal_after < 1 or blend < 0 or blend_other < 0:
        raise VideoError(
            f"multi-pass needs passes >= 1, temporal_after >= 1 and blend weights >= 0; got {passes}, "
            f"{temporal_after}, {blend}, {blend_other}"
        )
    h, w = targets["warped"].shape[2:4]
    noise = caffe_noise(jax.random.key(0) if key is None else key, (h, w))
    outs: list[np.ndarray] = [np.zeros((h, w, 3), np.float32)] * n
    if first_pass > 1:
        if previous is None or len(previous) != n or any(np.shape(x) != (h, w, 3) for x in previous):
            raise VideoError(
                f"continuing at pass {first_pass} needs the {n} results [H, W, 3] of pass {first_pass - 1}"
            )
        outs = [np.asarray(x, np.float32) for x in previous]
    for p in range(first_pass, passes + 1):
        forward = p % 2 == 1
        for t in range(n) if forward else range(n - 1, -1, -1):
            tg = {k: v[t : t + 1] for k, v in targets.items()}
            come_from = t - 1 if forward else t + 1
            # outs is updated in place: the neighbour the pass comes from holds this pass's result
            warped = {}
            for s in (t - 1, t + 1):
                if 0 <= s < n and (p > 1 or s == come_from):
                    warped[s] = warp(jnp.asarray(outs[s]), jnp.asarray(pairs[(t, s)].backward))
            if p == 1:
                z0 = noise
            else:
                nb = [(warped[s], pairs[(t, s)].mask, blend if s == come_from else blend_other) for s in warped]
                z0 = to_caffe(multipass_start(outs[t], nb))
            if p >= temporal_after and come_from in warped:
                tg.update(
                    warped=to_caffe(warped[come_from])[None, None],
                    reliability=jnp.asarray(pairs[(t, come_from)].mask)[None, None],
                )
            r = solve_with_interval_stop(loss, variables, tg, z0[None], config)
            outs[t] = np.clip(np.asarray(from_caffe(r.z[0])), 0.0, 1.0)
        if on_pass is not None:
            on_pass(p, list(outs))
    return list(outs)


# ---------------------------------------------------------------------------------------------------
# The video pipeline: a config in, stylised clips (per-frame, single-pass, multi-pass) and their
# flicker out. It prints nothing: progress goes to a callback, files are the caller's.

# progress(stage, done, total, info): stage "single pass" (frames), "per-frame" (L-BFGS iterations of
# the all-frames call) or "multi-pass" (passes, info {"flicker"}).
Progress = Callable[[str, int, int, dict], None]

OBJECTIVES = ("dfijax", "artistic-videos")
INIT_FIRST = ("content", "noise")

VIDEO_PRESETS: dict[str, dict[str, Any]] = {
    # on any device: 64 px, 60 iterations for frame 0, 30 after, 20 per pass, temporal loss from pass 2
    "quick": dict(size=64, iters_first=60, iters=30, pass_iters=20, temporal_after=2),
    # manuelruder/artistic-videos (artistic_video.lua, artistic_video_multiPass.lua defaults): its
    # objective (ArtisticVideosLoss), max pooling, TV 1e-3 in the gradient, noise start, prevWarped,
    # 2000 iterations for frame 0 and 1000 after, stopped when the loss changes < 1e-4 over 50,
    # L-BFGS memory 100, closestFirst long-term weights; multi-pass 100 per pass, temporal from pass 8
    "paper": dict(
        size=350,
        iters_first=2000,
        iters=1000,
        pass_iters=100,
        temporal_after=8,
        objective="artistic-videos",
        pooling="max",
        tv=1e-3,
        history=100,
        tol_relative=1e-4,
        tol_interval=50,
        long_term="closestFirst",
        init_first="noise",
    ),
}


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """Everything that decides a video run (`video_config` fills it from a preset).

    size: the frames' short side (the caller loads them so). iters_first: iterations of frame 0 and of
    the per-frame baseline; iters: of each later frame. offsets: the earlier frames J of the temporal
    loss ((1,) short-term, e.g. (1, 2, 4) long-term). temporal_weight: Ruder's units; None is 1e3 with
    pretrained weights and 1e-6 with the seeded random VGG-19 (whose style losses are ~1e8 smaller).
    multipass: 0 (off) or the passes of the multi-pass algorithm (pass_iters per frame and pass, the
    temporal loss, at half the weight, from pass temporal_after on, blend_weight of the warped
    neighbour in each start). flow: "dis" or "farneback"; flow_dir: read the flow and reliability
    files of artistic-videos' makeOptFlow.sh from this folder instead (dfijax.style.flow_files;
    frames numbered from flow_start). pooling / tv: the objective's. blend: weights of several style
    images. preserve_color: as dfijax.style.color.PRESERVE_COLOR, the statistics taken over the whole
    clip. baseline: also stylise every frame independently. history: L-BFGS memory.

    objective: "dfijax" (StyleLoss + TemporalLoss on RGB in [0, 1]: frame 0 from its content, later
    frames from the warped previous output where reliable, multi-pass from the per-frame result) or
    "artistic-videos" (ArtisticVideosLoss on its Caffe-space image and its algorithms av_single_pass /
    av_multipass). long_term: LONG_TERM_METHODS. Used by "artistic-videos" only (ignored by "dfijax"):
    init_first ("noise", its `random`, or "content"), tol_relative / tol_interval (its stop rule),
    blend_weight_other (its blendWeight_lastPass: the other neighbour's weight in a pass's start),
    seed (the noise).
    """

    preset: str = "quick"
    size: int = 64
    iters_first: int = 60
    iters: int = 30
    offsets: tuple[int, ...] = (1,)
    temporal_weight: float | None = None
    multipass: int = 0
    pass_iters: int = 20
    temporal_after: int = 2
    blend_weight: float = 1.0
    flow: str = "dis"
    pooling: str = "avg"
    tv: float = 0.0
    blend: tuple[float, ...] | None = None
    preserve_color: str = "none"
    baseline: bool = True
    objective: str = "dfijax"
    history: int = 10
    tol_relative: float = 0.0
    tol_interval: int = 50
    long_term: str = "formula"
    init_first: str = "content"
    blend_weight_other: float = 0.0
    flow_dir: str | None = None
    flow_start: int = 1
    seed: int = 0

    def __post_init__(self):
        from dfijax.style import color

        object.__setattr__(self, "offsets", check_offsets(self.offsets))
        if self.blend is not None:
            object.__setattr__(self, "blend", tuple(float(b) for b in self.blend))
        if self.size < 32 or min(self.iters, self.iters_first, self.pass_iters) < 1:
            raise VideoError(
                f"size must be >= 32 and iters, iters_first, pass_iters >= 1; got {self.size}, "
                f"{self.iters}, {self.iters_first}, {self.pass_iters}"
            )
        if self.multipass < 0 or self.multipass == 1:
            raise VideoError(f"multipass must be 0 (off) or >= 2 passes, got {self.multipass}")
        if self.temporal_weight is not None and not (np.isfinite(self.temporal_weight) and self.temporal_weight >= 0):
            raise VideoError(
                f"the temporal weight must be a non-negative number (or None: auto), got {self.temporal_weight}"
            )
        if self.flow not in ("dis", "farneback"):
            raise VideoError(f"unknown flow method {self.flow!r}; use 'dis' or 'farneback'")
        if self.pooling not in ("avg", "max"):
            raise VideoError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        if self.objective not in OBJECTIVES:
            raise VideoError(f"unknown objective {self.objective!r}; use one of {', '.join(OBJECTIVES)}")
        if self.long_term not in LONG_TERM_METHODS:
            raise VideoError(f"unknown long-term weighting {self.long_term!r}; use one of {LONG_TERM_METHODS}")
        if self.init_first not in INIT_FIRST:
            raise VideoError(f"init_first must be one of {INIT_FIRST}, got {self.init_first!r}")
        if self.history < 1 or self.tol_interval < 1 or self.tol_relative < 0 or self.blend_weight_other < 0:
            raise VideoError(
                f"history and tol_interval must be >= 1, tol_relative and blend_weight_other >= 0; got "
                f"{self.history}, {self.tol_interval}, {self.tol_relative}, {self.blend_weight_other}"
            )
        color.check_preserve_color(self.preserve_color)
        MultiPass(None, max(self.multipass, 1), self.temporal_after, 0.0, self.blend_weight)  # validates

    def temporal_weight_for(self, pretrained: bool) -> float:
        if self.temporal_weight is not None:
            return float(self.temporal_weight)
        return 1e3 if pretrained else 1e-6

    def loss(self, temporal_weight: float = 1e3) -> Any:
        """The per-frame objective: a StyleLoss ("dfijax", the temporal term is added by TemporalLoss) or
        an ArtisticVideosLoss with this temporal weight."""
        from dfijax.style.gatys import StyleLoss
        from dfijax.vgg import VGG19

        if self.objective == "artistic-videos":
            return ArtisticVideosLoss(
                model=VGG19(pooling=self.pooling), tv_weight=self.tv, temporal_weight=temporal_weight
            )
        return StyleLoss(model=VGG19(pooling=self.pooling), tv_weight=self.tv)

    def to_dict(self) -> dict[str, Any]:
        from dfijax.style.gatys import json_ready

        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "VideoConfig":
        bad = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if bad:
            raise VideoError(f"unknown video settings {bad} in the saved config")
        return cls(**d)


def video_config(preset: str = "quick", **overrides: Any) -> VideoConfig:
    """The named preset ("quick", "paper") with any field overridden (None values are ignored)."""
    if preset not in VIDEO_PRESETS:
        raise VideoError(f"unknown video preset {preset!r}; use one of {', '.join(VIDEO_PRESETS)}")
    bad = sorted(set(overrides) - {f.name for f in dataclasses.fields(VideoConfig)})
    if bad:
        raise VideoError(f"unknown video settings {bad}")
    return VideoConfig(
        preset=preset, **{**VIDEO_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    )


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
    import time

    from dfijax import invert as inv
    from dfijax.style import color, gatys
    from dfijax.vgg import check_image_batch

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
