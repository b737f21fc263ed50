"""Dense optical flow between frames (OpenCV, or artistic-videos' files via `flow_dir_pairs`),
warping, reliability masks, long-term weights, the temporal targets of a frame and the flicker metrics.

Flow convention: `flow = optical_flow(a, b)` is [H, W, 2] (dx, dy) in pixels with a(p) ≈ b(p + flow(p)),
so `warp(b, flow)` (b sampled at p + flow(p)) lines b up with a. For frame t, the backward flow
`optical_flow(frame_t, frame_{t-1})` warps the previous stylised frame onto frame t."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from dfijax import images as im
from dfijax.style import flow_files
from dfijax.style.video_io import VideoError


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from frame a to frame b ([H, W, 3] in [0, 1]): [H, W, 2] (dx, dy) with
    a(p) ≈ b(p + flow(p)). method: "dis" (DIS, medium preset at full resolution) or "farneback"."""
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
