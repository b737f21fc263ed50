"""Style transfer for videos (Ruder, Dosovitskiy, Brox 2016): frames in and out, dense optical flow
(OpenCV), reliability masks, a short-term temporal loss on the shared engine, and a flicker metric.

Flow convention: `flow = optical_flow(a, b)` is [H, W, 2] (dx, dy) in pixels with a(p) ≈ b(p + flow(p)),
so `warp(b, flow)` (b sampled at p + flow(p)) lines b up with a. For frame t, the backward flow
`optical_flow(frame_t, frame_{t-1})` warps the previous stylised frame onto frame t.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping, Sequence

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


def read_frames(path: str | os.PathLike, size: int | None = None, max_frames: int | None = None,
                stride: int = 1) -> np.ndarray:
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
            raise VideoError(f"cannot decode {path} as a video (OpenCV read no frames); convert it to an H.264 "
                             f".mp4, or pass a folder of frame images")
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
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=4, winsize=9, iterations=5,
                                            poly_n=5, poly_sigma=1.1, flags=0)
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
    mask: np.ndarray      # [H, W] reliability in {0, 1}


def frame_pairs(frames: np.ndarray, method: str = "dis") -> list[FramePair]:
    """Flows both ways and reliability for each consecutive pair of [T, H, W, 3] frames: T - 1 pairs."""
    out = []
    for t in range(1, len(frames)):
        fwd = optical_flow(frames[t - 1], frames[t], method)
        bwd = optical_flow(frames[t], frames[t - 1], method)
        out.append(FramePair(bwd, reliability(fwd, bwd)))
    return out


def warping_errors(frames: np.ndarray, pairs: Sequence[FramePair]) -> np.ndarray:
    """Flicker: for t = 1…T-1, the mean squared difference between frame t and frame t-1 warped onto
    it, over reliable pixels (RGB in [0, 1]). [T - 1] float64; lower is steadier."""
    errs = []
    for t, p in enumerate(pairs, start=1):
        warped = np.asarray(warp(jnp.asarray(frames[t - 1]), jnp.asarray(p.backward)))
        d2 = np.sum((np.asarray(frames[t]) - warped) ** 2, -1)
        errs.append(float(np.sum(p.mask * d2) / max(3.0 * p.mask.sum(), 1.0)))
    return np.asarray(errs)


@dataclasses.dataclass(frozen=True)
class TemporalLoss:
    """base(x) + temporal_weight · (1/D) Σ c ⊙ (255·(x − ω))² for one frame x [H, W, 3] in [0, 1], where
    ω is the previous stylised frame warped onto this one, c the reliability mask and D = H·W·3
    (the 0–255 pixel scale as Ruder et al.'s code). Targets: base's plus "warped" [H, W, 3] and
    "reliability" [H, W]."""

    base: Any
    temporal_weight: float = 1e3

    def target_names(self) -> tuple[str, ...]:
        return tuple(self.base.target_names()) + ("warped", "reliability")

    def temporal(self, x: jax.Array, targets: Mapping[str, jax.Array]) -> jax.Array:
        d = 255.0 * (x - targets["warped"])
        return jnp.mean(targets["reliability"][..., None] * d * d)

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
        f = (1 - frac) * canvas[:, i0:i0 + w] + frac * canvas[:, i0 + 1:i0 + 1 + w]
        cx, cy = 0.2 * w + 2.5 * speed * t, 0.35 * h + 0.5 * speed * t
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        stripes = 0.75 + 0.25 * np.sin((xx - cx) * 1.3)[..., None]
        inside = (d2 < r * r)[..., None]
        frames.append(np.where(inside, ball_col * stripes, f))
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


def stylize_sequence(loss: Any, variables: Mapping, frames: np.ndarray, targets: Mapping[str, jax.Array],
                     pairs: Sequence[FramePair], first_config: Any, config: Any, temporal_weight: float = 1e3,
                     done: Sequence[np.ndarray] = (), on_frame=None, **invert_kwargs) -> list[np.ndarray]:
    """Stylise frames in order with the short-term temporal loss (Ruder et al.): frame 0 from its
    content with first_config; frame t with config, pulled towards the previous output warped onto
    it where the reliability mask is 1, and started from it there (from frame t's content elsewhere:
    Ruder et al. start from the warped frame everywhere, which leaves smears in disoccluded regions
    when iterations are few).

    loss: a per-frame objective (style.StyleLoss); targets: its targets for all T frames ([T, ...]);
    done: frames already finished (a resumed run continues after them); on_frame(t, image, result)
    is called after each frame (save it there). Returns all T outputs, [H, W, 3] in [0, 1] each."""
    from dfijax.invert import invert

    if len(pairs) != len(frames) - 1:
        raise VideoError(f"{len(frames)} frames need {len(frames) - 1} flow pairs, got {len(pairs)}")
    outs = [np.asarray(d, np.float32) for d in done]
    temporal = TemporalLoss(loss, temporal_weight)
    for t in range(len(outs), len(frames)):
        tg = {k: v[t:t + 1] for k, v in targets.items()}
        if t == 0:
            r = invert(loss, variables, tg, jnp.asarray(frames[:1]), first_config, **invert_kwargs)
        else:
            p = pairs[t - 1]
            warped = warp(jnp.asarray(outs[t - 1]), jnp.asarray(p.backward))
            mask = jnp.asarray(p.mask)
            tg.update(warped=warped[None], reliability=mask[None])
            # unreliable pixels (disoccluded, entered over the edge) start from this frame's content
            x0 = mask[..., None] * warped + (1 - mask[..., None]) * jnp.asarray(frames[t])
            r = invert(temporal, variables, tg, x0[None], config, **invert_kwargs)
        outs.append(np.clip(np.asarray(r.images[0]), 0.0, 1.0))
        if on_frame is not None:
            on_frame(t, outs[-1], r)
    return outs
