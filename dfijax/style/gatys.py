"""Gatys et al. neural style transfer on the shared engine: a style/content objective for `invert`.

    loss = StyleLoss()                                   # the Gatys reference notebook's settings
    targets = style_targets(loss, variables, content, [style], [1.0])
    result = invert(loss, variables, targets, content)   # init from the content image

    loss = style_loss_preset("neural-style")             # jcjohnson/neural-style's objective
    r = coarse_to_fine(StyleLoss(), variables, contents, [style], sizes=(512, 800), iters=(500, 200))
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import losses
from dfijax.vgg import VGG19, check_image_batch, layer_index, tap_shapes

GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
GATYS_CONTENT_LAYERS = ("relu4_2",)
NORMALIZATIONS = ("gatys", "neural-style")
NEURAL_STYLE_STYLE_WEIGHT = 100.0


def _channels(tap: str) -> int:
    return tap_shapes((32, 32), (tap,))[tap][2]


@dataclasses.dataclass(frozen=True)
class StyleLoss:
    """content_weight · Σ mean((F − P)²) + s · Σ_l w_l · mean((G_l − A_l)²) + TV for one image
    x: [H, W, 3] in [0, 1]; s is the per-problem target "style_scale" (1 from style_targets), so several
    style strengths are solved in one batch. model: use VGG19(pooling="avg") as Gatys did.

    normalize picks the convention (see `style_loss_preset` for each reference's full settings):
      "gatys" (the Gatys reference notebook): G = FᵀF / (h·w); style weights default to 1e3/n²
        (n = channels); TV = tv_weight · Σ (Δx² + Δy²) on the 0-255 scale.
      "neural-style" (jcjohnson/neural-style): G = FᵀF / (C·h·w), for the style image's Gram too;
        style weights default to 100 per layer; TV = tv_weight · ½ Σ (Δx² + Δy²) on the 0-255 scale
        (its TVLoss gradient, whose weight 1e-3 then means the same here).
    """

    model: VGG19 = VGG19(pooling="avg")
    content_layers: tuple[str, ...] = GATYS_CONTENT_LAYERS
    style_layers: tuple[str, ...] = GATYS_STYLE_LAYERS
    content_weight: float = 1.0
    style_weights: tuple[float, ...] | None = None
    tv_weight: float = 0.0
    normalize: str = "gatys"

    def __post_init__(self):
        for t in self.content_layers + self.style_layers:
            layer_index(t)
        if self.style_weights is not None and len(self.style_weights) != len(self.style_layers):
            raise ValueError(f"{len(self.style_weights)} style weights for {len(self.style_layers)} style layers")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"unknown normalize {self.normalize!r}; use one of {NORMALIZATIONS}")

    @property
    def weights(self) -> tuple[float, ...]:
        if self.style_weights is not None:
            return self.style_weights
        if self.normalize == "neural-style":
            return (NEURAL_STYLE_STYLE_WEIGHT,) * len(self.style_layers)
        return tuple(1e3 / _channels(t) ** 2 for t in self.style_layers)

    @property
    def gram_normalize(self) -> str:
        """The `losses.gram` normalisation of this convention: "hw" (gatys) or "hwc" (neural-style)."""
        return "hwc" if self.normalize == "neural-style" else "hw"

    def tv(self, x: jax.Array) -> jax.Array:
        """The weighted TV term of this convention (0 when tv_weight is 0)."""
        if not self.tv_weight:
            return jnp.zeros((), jnp.float32)
        half = 0.5 if self.normalize == "neural-style" else 1.0
        return self.tv_weight * half * losses.tv_beta(x, 2.0)

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    def target_names(self) -> tuple[str, ...]:
        return (tuple(f"content/{t}" for t in self.content_layers) + tuple(f"gram/{t}" for t in self.style_layers)
                + ("style_scale",))

    def features(self, variables: Mapping, x: jax.Array) -> dict[str, jax.Array]:
        feats = self.model.apply(variables, x[None], taps=self.taps)
        return {k: v[0] for k, v in feats.items()}

    def __call__(self, x: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> jax.Array:
        f = self.features(variables, x)
        content = losses.feature_mse(f, {t: targets[f"content/{t}"] for t in self.content_layers},
                                     self.content_layers, reduction="mean")
        style = losses.style_loss(f, {t: targets[f"gram/{t}"] for t in self.style_layers}, self.style_layers,
                                  self.weights, self.gram_normalize)
        total = self.content_weight * content + targets["style_scale"] * style
        if self.tv_weight:
            total = total + self.tv(x)
        return total

    def parts(self, x: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The unweighted content, (weighted) style and weighted TV terms, for reports and tests:
        loss = content_weight · content + style + tv."""
        f = self.features(variables, x)
        return {
            "content": losses.feature_mse(f, {t: targets[f"content/{t}"] for t in self.content_layers},
                                          self.content_layers, reduction="mean"),
            "style": targets["style_scale"] * losses.style_loss(
                f, {t: targets[f"gram/{t}"] for t in self.style_layers}, self.style_layers, self.weights,
                self.gram_normalize),
            "tv": self.tv(x),
        }

    def config(self) -> dict[str, Any]:
        """The resolved settings as plain values (for results files)."""
        return {"normalize": self.normalize, "pooling": self.model.pooling, "content_layers": list(self.content_layers),
                "style_layers": list(self.style_layers), "content_weight": self.content_weight,
                "style_weights": list(self.weights), "tv_weight": self.tv_weight,
                "gram": "F^T F / (h*w)" if self.gram_normalize == "hw" else "F^T F / (C*h*w)"}


STYLE_LOSS_PRESETS: dict[str, dict[str, Any]] = {
    # the Gatys reference notebook: avg pooling, Gram / (h·w), weights 1e3/n², content 1, no TV
    "gatys": dict(model=VGG19(pooling="avg"), normalize="gatys", content_weight=1.0, tv_weight=0.0),
    # jcjohnson/neural-style defaults: max pooling, Gram / (C·h·w), style 100, content 5, TV 1e-3
    "neural-style": dict(model=VGG19(pooling="max"), normalize="neural-style", content_weight=5.0, tv_weight=1e-3),
}


def style_loss_preset(name: str, **overrides: Any) -> StyleLoss:
    """A StyleLoss with a reference's settings ("gatys" or "neural-style"; both use content relu4_2
    and style relu1_1…relu5_1), any field overridden by keyword (e.g. tv_weight=0)."""
    if name not in STYLE_LOSS_PRESETS:
        raise ValueError(f"unknown style loss preset {name!r}; use one of {tuple(STYLE_LOSS_PRESETS)}")
    return StyleLoss(**{**STYLE_LOSS_PRESETS[name], **overrides})


@functools.partial(jax.jit, static_argnums=(0,))
def _grams(loss: StyleLoss, variables, image):
    f = loss.features(variables, image)
    return {t: losses.gram(f[t], loss.gram_normalize) for t in loss.style_layers}


def style_grams(loss: StyleLoss, variables: Mapping, styles: Sequence[jax.Array],
                blend: Sequence[float] | None = None) -> dict[str, jax.Array]:
    """Gram matrices (normalised as the loss's convention says) of one or several style images
    ([H, W, 3], any sizes), blended with weights that are normalised to sum to 1: {layer: [C, C]}."""
    if not styles:
        raise ValueError("give at least one style image")
    blend = [1.0] * len(styles) if blend is None else list(blend)
    if len(blend) != len(styles) or any(b < 0 for b in blend) or sum(blend) <= 0:
        raise ValueError(f"style blend weights must be {len(styles)} non-negative numbers with a positive sum, got {blend}")
    total = sum(blend)
    out: dict[str, jax.Array] = {}
    for s, w in zip(styles, blend):
        check_image_batch(jnp.asarray(s)[None], "style image")
        g = _grams(loss, variables, jnp.asarray(s, jnp.float32))
        for t in loss.style_layers:
            out[t] = out.get(t, 0.0) + (w / total) * g[t]
    return out


def style_targets(loss: StyleLoss, variables: Mapping, contents: jax.Array, styles: Sequence[jax.Array],
                  blend: Sequence[float] | None = None) -> dict[str, jax.Array]:
    """Targets for B content images [B, H, W, 3] and one (blended) style: {name: [B, ...]}."""
    from dfijax.invert import FeatureLoss, feature_targets

    contents = jnp.asarray(contents, jnp.float32)
    check_image_batch(contents, "content images")
    content = feature_targets(FeatureLoss(model=loss.model, taps=loss.content_layers), variables, contents)
    grams = style_grams(loss, variables, styles, blend)
    b = contents.shape[0]
    out = {f"content/{t}": content[t] for t in loss.content_layers}
    out.update({f"gram/{t}": jnp.broadcast_to(g, (b,) + g.shape) for t, g in grams.items()})
    out["style_scale"] = jnp.ones((b,), jnp.float32)
    return out


def style_problems(loss: StyleLoss, variables: Mapping, contents: jax.Array,
                   style_sets: Sequence[Sequence[tuple[Sequence[jax.Array], Sequence[float] | None]]],
                   scales: Sequence[float] = (1.0,)) -> tuple[dict[str, jax.Array], list[tuple[int, int, int]]]:
    """Targets for every (content i, style set j, style scale k) problem, to solve in one call.

    contents: [B, H, W, 3]; style_sets[i][j] = (style images, blend weights or None) for content i
    (per content, so colour-preserving variants can recolour the styles per content). Returns
    ({name: [P, ...]}, [(i, j, k) for each of the P problems])."""
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"style scales must be positive numbers, got {list(scales)}")
    contents = jnp.asarray(contents, jnp.float32)
    if len(style_sets) != contents.shape[0]:
        raise ValueError(f"{len(style_sets)} style-set lists for {contents.shape[0]} content images")
    rows, index = [], []
    for i in range(contents.shape[0]):
        for j, (styles, blend) in enumerate(style_sets[i]):
            t = style_targets(loss, variables, contents[i:i + 1], styles, blend)
            for k, sc in enumerate(scales):
                rows.append({**t, "style_scale": jnp.full((1,), sc, jnp.float32)})
                index.append((i, j, k))
    return {name: jnp.concatenate([r[name] for r in rows]) for name in rows[0]}, index


def stage_shape(hw: tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) scaled so that the short side is `size`, aspect kept (the rounding of images.resize)."""
    h, w = int(hw[0]), int(hw[1])
    s = size / min(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def resize_images(x: jax.Array | np.ndarray, hw: tuple[int, int], method: str = "lanczos3") -> jax.Array:
    """[..., H, W, 3] -> [..., h, w, 3] (antialiased when shrinking), clipped to [0, 1]; unchanged when
    the shape already matches. method: a jax.image.resize method ("lanczos3", "linear", ...)."""
    x = jnp.asarray(x, jnp.float32)
    if tuple(x.shape[-3:-1]) == tuple(hw):
        return x
    return jnp.clip(jax.image.resize(x, x.shape[:-3] + tuple(hw) + x.shape[-1:], method, antialias=True), 0.0, 1.0)


def upsample(images: jax.Array | np.ndarray, hw: tuple[int, int]) -> jax.Array:
    """A stage's results [P, h, w, 3] -> the next stage's initial images [P, H, W, 3]: clipped to
    [0, 1] and bilinearly resized, as the Gatys notebook does (clamp, then PIL bilinear)."""
    return resize_images(jnp.clip(jnp.asarray(images, jnp.float32), 0.0, 1.0), hw, "linear")


class StagedResult(NamedTuple):
    """images: [P, H, W, 3] the last stage's results (short side = the last size); stages: one
    InversionResult per stage, at its own resolution; shapes: (h, w) per stage; targets: the last
    stage's {name: [P, ...]}; index: (content i, style set j, style scale k) per problem."""

    images: jax.Array
    stages: tuple[Any, ...]
    shapes: tuple[tuple[int, int], ...]
    targets: dict[str, jax.Array]
    index: list[tuple[int, int, int]]


def coarse_to_fine(loss: StyleLoss, variables: Mapping, contents: jax.Array | np.ndarray,
                   styles: Sequence[jax.Array | np.ndarray] = (), sizes: Sequence[int] = (512, 800),
                   iters: Sequence[int] = (500, 200), *, blend: Sequence[float] | None = None,
                   style_sets: Sequence[Sequence[tuple[Sequence[Any], Sequence[float] | None]]] | None = None,
                   scales: Sequence[float] = (1.0,), init: jax.Array | np.ndarray | None = None,
                   config: Any = None, progress: Callable[[int, int, jax.Array], None] | None = None,
                   **invert_kwargs: Any) -> StagedResult:
    """Style transfer in stages of growing resolution (the Gatys notebook: 512 px for 500 iterations,
    then 800 px for 200 started from the upsampled first result). Any number of stages; one stage is
    a plain run. All problems of a stage are solved in one batched `invert` call.

    contents: [B, H, W, 3] in [0, 1], any resolution (all the same shape: group contents of another
      aspect into their own call); at each stage they are resized so the short side is that stage's
      size, aspect kept.
    styles, blend: one (blended) style for every content; or style_sets as in `style_problems`
      (per content), replacing them. Style images are resized at each stage so that their short side
      is the stage's size (the notebook re-prepares them at 800 px too).
    scales: style-weight multipliers, one problem each.
    init: None starts each problem from its content; else [P, h, w, 3] (P = B × sets × scales, any
      resolution, resized to the first stage's shape), e.g. noise.
    config: invert's SolverConfig (maxiter is replaced by each stage's iterations).
    progress: called as progress(stage, iteration, losses [P]).
    invert_kwargs: passed to `invert` (loop, check_every, shard).
    """
    from dfijax.invert import SolverConfig, invert

    sizes, iters = [int(s) for s in sizes], [int(n) for n in iters]
    if not sizes or len(sizes) != len(iters):
        raise ValueError(f"give one iteration count per stage size, got sizes {sizes} and iters {iters}")
    if any(s < 32 for s in sizes) or any(n < 1 for n in iters):
        raise ValueError(f"stage sizes must be >= 32 px and iterations >= 1, got sizes {sizes}, iters {iters}")
    contents = np.asarray(contents, np.float32)
    check_image_batch(contents, "content images")
    if style_sets is None:
        if not styles:
            raise ValueError("give at least one style image (styles) or style_sets")
        style_sets = [[(list(styles), blend)]] * contents.shape[0]
    config = SolverConfig() if config is None else config
    stages, shapes, x, targets, index = [], [], None, {}, []
    for s, (size, n) in enumerate(zip(sizes, iters)):
        shape = stage_shape(contents.shape[1:3], size)
        c = resize_images(contents, shape)
        sets = [[([resize_images(im, stage_shape(np.shape(im)[:2], size)) for im in imgs], bl) for imgs, bl in row]
                for row in style_sets]
        targets, index = style_problems(loss, variables, c, sets, scales)
        if s == 0:
            x0 = c[jnp.array([i for i, _, _ in index])] if init is None else resize_images(init, shape)
        else:
            x0 = upsample(x, shape)
        cb = None if progress is None else functools.partial(progress, s)
        r = invert(loss, variables, targets, x0, dataclasses.replace(config, maxiter=n), progress=cb, **invert_kwargs)
        stages.append(r)
        shapes.append(shape)
        x = r.images
    return StagedResult(x, tuple(stages), tuple(shapes), targets, index)
