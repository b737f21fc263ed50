"""manuelruder/artistic-videos (Ruder et al.'s Torch code): its objective, initialisation, solver stop
rule and algorithms. The optimisation variable is its Caffe-space image z = 256·BGR − mean, [H, W, 3]."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dfijax.invert import minimize_init, minimize_step
from dfijax.style.flow import FramePair, check_offsets, temporal_targets, warp
from dfijax.style.video_io import VideoError
from dfijax.vgg import CAFFE_MEAN_BGR, VGG19, layer_index

AV_SCALE = 256.0  # artistic_video_core.lua preprocess: `img:mul(256.0)`, not 255


def _mean_bgr(ndim: int) -> jax.Array:

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

        if self.model is None:  # the reference's net through loadcaffe: max pools rounding up
            object.__setattr__(self, "model", VGG19(pooling="max", pool_rounding="ceil"))
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

    return jax.vmap(lambda t, x: minimize_init(loss, x, (variables, t), config))(targets, z0)


def _av_step(loss, config, variables, targets, state):

    return jax.vmap(lambda t, c: minimize_step(loss, c, (variables, t), config))(targets, state)


def _av_run(loss, config, variables, targets, state, until):

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
