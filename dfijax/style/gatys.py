"""Gatys et al. neural style transfer on the shared engine: a style/content objective for `invert`.

loss = StyleLoss()                                   # the Gatys reference notebook's settings
targets = style_targets(loss, variables, content, [style], [1.0])
result = invert(loss, variables, targets, content)   # init from the content image

loss = style_loss_preset("neural-style")             # jcjohnson/neural-style's objective
r = coarse_to_fine(StyleLoss(), variables, contents, [style], sizes=(512, 800), iters=(520, 220))
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from dfijax import config, losses
from dfijax import images as im
from dfijax import invert as inv
from dfijax.invert import FeatureLoss, SolverConfig, feature_targets, invert
from dfijax.style import color
from dfijax.style.color import PRESERVE_COLOR
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
    style strengths are solved in one batch. model: max pooling by default, as the Gatys reference
    notebook runs (its `VGG()` default); VGG19(pooling="avg") is the paper's text.

    normalize picks the convention (see `style_loss_preset` for each reference's full settings):
      "gatys" (the Gatys reference notebook): G = FᵀF / (h·w); style weights default to 1e3/n²
        (n = channels); TV = tv_weight · Σ (Δx² + Δy²) on the 0-255 scale.
      "neural-style" (jcjohnson/neural-style): G = FᵀF / (C·h·w), for the style image's Gram too;
        style weights default to 100 per layer; TV = tv_weight · ½ Σ (Δx² + Δy²) on the 0-255 scale
        (its TVLoss gradient, whose weight 1e-3 then means the same here).
    """

    model: VGG19 = VGG19(pooling="max")
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
        losses.check_weights(content_weight=self.content_weight, tv_weight=self.tv_weight)

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
        return (
            tuple(f"content/{t}" for t in self.content_layers)
            + tuple(f"gram/{t}" for t in self.style_layers)
            + ("style_scale",)
        )

    def features(self, variables: Mapping, x: jax.Array) -> dict[str, jax.Array]:
        feats = self.model.apply(variables, x[None], taps=self.taps)
        return {k: v[0] for k, v in feats.items()}

    def __call__(self, x: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> jax.Array:
        f = self.features(variables, x)
        content = losses.feature_mse(
            f, {t: targets[f"content/{t}"] for t in self.content_layers}, self.content_layers, reduction="mean"
        )
        style = losses.style_loss(
            f,
            {t: targets[f"gram/{t}"] for t in self.style_layers},
            self.style_layers,
            self.weights,
            self.gram_normalize,
        )
        total = self.content_weight * content + targets["style_scale"] * style
        if self.tv_weight:
            total = total + self.tv(x)
        return total

    def parts(self, x: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The unweighted content, (weighted) style and weighted TV terms, for reports and tests:
        loss = content_weight · content + style + tv."""
        f = self.features(variables, x)
        return {
            "content": losses.feature_mse(
                f, {t: targets[f"content/{t}"] for t in self.content_layers}, self.content_layers, reduction="mean"
            ),
            "style": targets["style_scale"]
            * losses.style_loss(
                f,
                {t: targets[f"gram/{t}"] for t in self.style_layers},
                self.style_layers,
                self.weights,
                self.gram_normalize,
            ),
            "tv": self.tv(x),
        }

    def config(self) -> dict[str, Any]:
        """The resolved settings as plain values (for results files)."""
        return {
            "normalize": self.normalize,
            "pooling": self.model.pooling,
            "pool_rounding": self.model.pool_rounding,
            "content_layers": list(self.content_layers),
            "style_layers": list(self.style_layers),
            "content_weight": self.content_weight,
            "style_weights": list(self.weights),
            "tv_weight": self.tv_weight,
            "gram": "F^T F / (h*w)" if self.gram_normalize == "hw" else "F^T F / (C*h*w)",
        }


STYLE_LOSS_PRESETS: dict[str, StyleLoss] = {
    # the Gatys reference notebook: max pooling (its `VGG()` default, nn.MaxPool2d: odd sizes floored),
    # Gram / (h·w), weights 1e3/n², content 1, no TV; pooling="avg" is the paper's text
    "gatys": StyleLoss(model=VGG19(pooling="max"), normalize="gatys", content_weight=1.0, tv_weight=0.0),
    # jcjohnson/neural-style defaults: max pooling rounding up (its net comes through loadcaffe, which
    # writes :ceil()), Gram / (C·h·w), style 100, content 5, TV 1e-3
    "neural-style": StyleLoss(
        model=VGG19(pooling="max", pool_rounding="ceil"), normalize="neural-style", content_weight=5.0, tv_weight=1e-3
    ),
}


def style_loss_preset(name: str, **overrides: Any) -> StyleLoss:
    """A StyleLoss with a reference's settings ("gatys" or "neural-style"; both use content relu4_2
    and style relu1_1…relu5_1), any field overridden by keyword (e.g. tv_weight=0)."""
    if name not in STYLE_LOSS_PRESETS:
        raise ValueError(f"unknown style loss preset {name!r}; use one of {tuple(STYLE_LOSS_PRESETS)}")
    return dataclasses.replace(STYLE_LOSS_PRESETS[name], **overrides)


@functools.partial(jax.jit, static_argnums=(0,))
def _grams(loss: StyleLoss, variables, image):
    f = loss.features(variables, image)
    return {t: losses.gram(f[t], loss.gram_normalize) for t in loss.style_layers}


def style_grams(
    loss: StyleLoss, variables: Mapping, styles: Sequence[jax.Array], blend: Sequence[float] | None = None
) -> dict[str, jax.Array]:
    """Gram matrices (normalised as the loss's convention says) of one or several style images
    ([H, W, 3], any sizes), blended with weights that are normalised to sum to 1: {layer: [C, C]}."""
    if not styles:
        raise ValueError("give at least one style image")
    blend = [1.0] * len(styles) if blend is None else list(blend)
    if len(blend) != len(styles) or any(b < 0 for b in blend) or sum(blend) <= 0:
        raise ValueError(
            f"style blend weights must be {len(styles)} non-negative numbers with a positive sum, got {blend}"
        )
    total = sum(blend)
    out: dict[str, jax.Array] = {}
    for s, w in zip(styles, blend):
        check_image_batch(jnp.asarray(s)[None], "style image")
        g = _grams(loss, variables, jnp.asarray(s, jnp.float32))
        for t in loss.style_layers:
            out[t] = out.get(t, 0.0) + (w / total) * g[t]
    return out


def style_targets(
    loss: StyleLoss,
    variables: Mapping,
    contents: jax.Array,
    styles: Sequence[jax.Array],
    blend: Sequence[float] | None = None,
) -> dict[str, jax.Array]:
    """Targets for B content images [B, H, W, 3] and one (blended) style: {name: [B, ...]}."""

    contents = jnp.asarray(contents, jnp.float32)
    check_image_batch(contents, "content images")
    content = feature_targets(FeatureLoss(model=loss.model, taps=loss.content_layers), variables, contents)
    grams = style_grams(loss, variables, styles, blend)
    b = contents.shape[0]
    out = {f"content/{t}": content[t] for t in loss.content_layers}
    out.update({f"gram/{t}": jnp.broadcast_to(g, (b,) + g.shape) for t, g in grams.items()})
    out["style_scale"] = jnp.ones((b,), jnp.float32)
    return out


def style_problems(
    loss: StyleLoss,
    variables: Mapping,
    contents: jax.Array,
    style_sets: Sequence[Sequence[tuple[Sequence[jax.Array], Sequence[float] | None]]],
    scales: Sequence[float] = (1.0,),
) -> tuple[dict[str, jax.Array], list[tuple[int, int, int]]]:
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
            t = style_targets(loss, variables, contents[i : i + 1], styles, blend)
            for k, sc in enumerate(scales):
                rows.append({**t, "style_scale": jnp.full((1,), sc, jnp.float32)})
                index.append((i, j, k))
    return {name: jnp.concatenate([r[name] for r in rows]) for name in rows[0]}, index


@functools.partial(jax.jit, static_argnums=(0, 1))
def _batched(loss: StyleLoss, method: str, variables, x, targets):
    f = loss.parts if method == "parts" else loss
    return jax.vmap(lambda xi, ti: f(xi, variables, ti))(x, targets)


def loss_parts(
    loss: StyleLoss, variables: Mapping, images: jax.Array | np.ndarray, targets: Mapping[str, jax.Array]
) -> dict[str, np.ndarray]:
    """StyleLoss.parts for P images [P, H, W, 3] with their targets {name: [P, ...]}, in one compiled
    call: {"content", "style", "tv": [P]}."""
    names = loss.target_names()
    out = _batched(loss, "parts", variables, jnp.asarray(images, jnp.float32), {n: targets[n] for n in names})
    return {k: np.asarray(v) for k, v in out.items()}


def loss_values(
    loss: Any, variables: Mapping, images: jax.Array | np.ndarray, targets: Mapping[str, jax.Array]
) -> np.ndarray:
    """The objective of P images [P, H, W, 3] with their targets {name: [P, ...]}, in one compiled
    call: [P]. loss: any hashable objective with target_names() (StyleLoss, video.TemporalLoss)."""
    names = loss.target_names()
    return np.asarray(
        _batched(loss, "call", variables, jnp.asarray(images, jnp.float32), {n: targets[n] for n in names})
    )


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


def coarse_to_fine(
    loss: StyleLoss,
    variables: Mapping,
    contents: jax.Array | np.ndarray,
    styles: Sequence[jax.Array | np.ndarray] = (),
    sizes: Sequence[int] = (512, 800),
    iters: Sequence[int] = (520, 220),
    *,
    blend: Sequence[float] | None = None,
    style_sets: Sequence[Sequence[tuple[Sequence[Any], Sequence[float] | None]]] | None = None,
    scales: Sequence[float] = (1.0,),
    init: jax.Array | np.ndarray | None = None,
    config: Any = None,
    progress: Callable[[int, int, jax.Array], None] | None = None,
    **invert_kwargs: Any,
) -> StagedResult:
    """Style transfer in stages of growing resolution (the Gatys notebook: 512 px for 520 iterations,
    then 800 px for 220 started from the upsampled first result). Any number of stages; one stage is
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
        sets = [
            [([resize_images(im, stage_shape(np.shape(im)[:2], size)) for im in imgs], bl) for imgs, bl in row]
            for row in style_sets
        ]
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


# ---------------------------------------------------------------------------------------------------
# The style transfer pipeline: a config in, stylised pictures and their measurements out.

# progress(stage, done, total, info): stage "solve"; done counts L-BFGS iterations up to total
# (every stage of every aspect group); info {"loss": mean loss, "stage": stage index}.
Progress = Callable[[str, int, int, dict], None]

INITS = ("content", "style", "noise")

# The Gatys reference notebook's schedule: `while n_iter <= 500: optimizer.step(closure)` with
# torch.optim.LBFGS's max_iter 20 per step stops after 26 steps, i.e. 520 L-BFGS iterations (one
# closure evaluation each), then 11 steps = 220 at 800 px.
PAPER_STAGES = ((512, 520), (800, 220))

PRESET_NAMES = ("quick", "paper", "neural-style", "tiny")  # STYLE_PRESETS', below StyleConfig


def _stage(text: str) -> tuple[int, int]:
    size, iters = text.split(":")
    return int(size), int(iters)


@dataclasses.dataclass(frozen=True)
class StyleConfig:
    """Everything that decides a style transfer run (`style_config` gives a preset of STYLE_PRESETS).
    Each later stage starts from the upsampled result of the one before."""

    RENAMED: ClassVar[dict[str, str]] = {"tv": "tv_weight"}

    preset: Literal[PRESET_NAMES] = "quick"
    """settings bundle (dfijax.style.STYLE_PRESETS: quick, paper = the Gatys notebook, neural-style =
    jcjohnson/neural-style, tiny = the tests'); flags override it"""
    stages: Annotated[
        tuple[tuple[int, int], ...],
        config.comma_list(_stage, metavar="SIZE:ITERS,...", fmt=lambda st: f"{st[0]}:{st[1]}"),
    ] = ((96, 100),)
    """size:iterations per stage, coarse to fine, e.g. 512:520,800:220 (each stage starts from the
    upsampled result of the previous one)"""
    normalize: Literal[NORMALIZATIONS] = "gatys"
    """objective convention: gatys (Gram / (h·w), style weights 1e3/n²) or neural-style (Gram / (C·h·w),
    style weight 100, TV halved as neural-style's TVLoss)"""
    pooling: Literal["avg", "max"] = "avg"
    """VGG pooling (quick avg as the paper's text; paper and neural-style max as their reference code)"""
    pool_rounding: Literal["floor", "ceil"] = "floor"
    """odd sizes at a pooling layer: floor (PyTorch's nn.MaxPool2d, the Gatys notebook) or ceil (loadcaffe's
    :ceil(), neural-style)"""
    content_weight: Annotated[float, config.NONNEG] = 1.0
    """content weight (gatys 1, neural-style 5)"""
    tv_weight: Annotated[float, config.NONNEG, config.flag(aliases=("--tv",))] = 0.0
    """TV weight on the 0-255 scale (gatys 0, neural-style 1e-3)"""
    init: Literal[INITS] = "content"
    """first stage's start; style: the style image cropped to the content's aspect; noise: uniform in [0, 1]"""
    history: Annotated[int, config.POSITIVE] = 10
    """L-BFGS memory"""
    style_scales: Annotated[tuple[float, ...], config.comma_list(float), config.Bounds(gt=0)] = (1.0,)
    """multipliers of the style weights, one result each, e.g. 0.1,1,10"""
    blend: Annotated[tuple[float, ...] | None, config.comma_list(float), config.NONNEG] = None
    """weights for several style images, e.g. 0.7,0.3 (None: equal)"""
    separate_styles: bool = False
    """one result per style image (all in the same batched call) instead of blending them"""
    preserve_color: Literal[PRESERVE_COLOR] = "none"
    """luminance: transfer on luminance, the content's chroma put back; chol / pca / sym: the style
    recoloured to the content's colour mean and covariance first"""
    check_every: Annotated[int, config.POSITIVE, tyro.conf.Suppress] = 5
    seed: int = 0
    """random seed"""

    def __post_init__(self):
        config.freeze_tuples(self)
        object.__setattr__(self, "stages", tuple(tuple(st) for st in self.stages))
        config.check(self)
        if not self.stages or any(s < 32 for s, _ in self.stages) or any(n < 1 for _, n in self.stages):
            raise ValueError(f"stage sizes must be >= 32 px and iterations >= 1, got {[list(s) for s in self.stages]}")
        if not self.style_scales:
            raise ValueError("give at least one style scale, e.g. 1")

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(s for s, _ in self.stages)

    @property
    def iters(self) -> tuple[int, ...]:
        return tuple(n for _, n in self.stages)

    @property
    def top_size(self) -> int:
        """The largest stage's size: load images at this short side (each stage resizes them)."""
        return max(self.sizes)

    def loss(self) -> StyleLoss:
        """The objective these settings give."""
        model = VGG19(pooling=self.pooling, pool_rounding=self.pool_rounding)
        return StyleLoss(model, normalize=self.normalize, content_weight=self.content_weight, tv_weight=self.tv_weight)

    def solver(self) -> Any:

        return SolverConfig(history_size=self.history)


STYLE_PRESETS: dict[str, StyleConfig] = config.registry(
    config.Preset(
        "quick", StyleConfig(), "96 px, 100 iterations, the Gatys objective with average pooling, L-BFGS history 10"
    ),
    config.Preset(
        "paper",
        StyleConfig(preset="paper", stages=PAPER_STAGES, pooling="max", history=100),
        "the Gatys reference notebook: 512 px x 520, then 800 px x 220 from the upsampled first result, max "
        "pooling, torch.optim.LBFGS's history 100",
    ),
    config.Preset(
        "neural-style",
        StyleConfig(
            preset="neural-style",
            stages=((512, 1000),),
            normalize="neural-style",
            pooling="max",
            pool_rounding="ceil",
            content_weight=5.0,
            tv_weight=1e-3,
            init="noise",
            history=100,
        ),
        "jcjohnson/neural-style's defaults: 512 px, 1000 iterations, its objective, from noise",
    ),
    config.Preset("tiny", StyleConfig(preset="tiny", stages=((40, 8),)), "the tests': quick at 40 px for 8 iterations"),
    names=PRESET_NAMES,
)


def style_config(preset: str = "quick", **overrides: Any) -> StyleConfig:
    """The named preset ("quick", "paper", "neural-style") with any field overridden (None values are
    ignored)."""
    return config.preset(StyleConfig, STYLE_PRESETS, preset, **overrides)


@dataclasses.dataclass
class StyleResult:
    """images[p]: [h, w, 3] in [0, 1], the final picture of problem p (colour restored), for the
    problems index[p] = (content i, style set j, style scale k), sorted; a style set is the blend
    of all style images, or with separate_styles style image j. problems[p]: its measurements
    (shape, initial/final loss of the last stage, loss parts, per stage with its loss history). groups: contents
    solved together (one shape)."""

    config: StyleConfig
    images: list[np.ndarray]
    index: list[tuple[int, int, int]]
    problems: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    loss: dict[str, Any]
    seconds: dict[str, float]

    @property
    def problems_in_one_call(self) -> int:
        return max(g["problems"] for g in self.groups)

    def name_problems(self, set_names: Sequence[str]) -> None:
        """Give each problem a "name" (content<i>_<set>_x<scale>) and its "style" set's name."""
        for p, (i, j, k) in zip(self.problems, self.index):
            p["name"], p["style"] = f"content{i}_{set_names[j]}_x{self.config.style_scales[k]:g}", set_names[j]

    def grid(
        self, contents: Sequence[np.ndarray], styles: Sequence[np.ndarray], set_names: Sequence[str]
    ) -> np.ndarray:
        """One row per content: the content, each style (cropped to its aspect), then every style set ×
        scale; cells of another aspect centred on white."""

        imgs, scales = dict(zip(self.index, self.images)), self.config.style_scales
        hmax, wmax = max(x.shape[0] for x in self.images), max(x.shape[1] for x in self.images)
        cols = [(j, k) for j in range(len(set_names)) for k in range(len(scales))]
        rows = []
        for i, content in enumerate(contents):
            hw = imgs[(i, 0, 0)].shape[:2]
            row = [np.asarray(resize_images(content, hw))]
            row += [np.asarray(resize_images(im.fit_aspect(s, hw[0] / hw[1]), hw)) for s in styles]
            rows.append([_on_white(c, hmax, wmax) for c in row + [imgs[(i, j, k)] for j, k in cols]])
        labels = ["content"] + [f"style{q}" for q in range(len(styles))]
        return im.make_grid(rows, col_labels=labels + [f"{set_names[j]} x{scales[k]:g}" for j, k in cols])

    def table(self) -> dict[str, list]:
        """Per named problem: shape, initial and final loss, content and style parts."""
        return {
            "headers": ["result", "shape", "initial loss", "final loss", "content part", "style part"],
            "rows": [
                [p["name"], "x".join(map(str, p["shape"])), p["initial_loss"], p["final_loss"]]
                + [p["parts"]["content"], p["parts"]["style"]]
                for p in self.problems
            ],
        }


def _on_white(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """x [h', w', 3] centred on a white h × w canvas."""
    out = np.ones((h, w, 3), np.float32)
    top, left = (h - x.shape[0]) // 2, (w - x.shape[1]) // 2
    out[top : top + x.shape[0], left : left + x.shape[1]] = x
    return out


def run_style_transfer(
    config: StyleConfig,
    weights: Any,
    contents: Sequence[np.ndarray],
    styles: Sequence[np.ndarray],
    progress: Progress | None = None,
) -> StyleResult:
    """Stylise every content image ([H_i, W_i, 3] in [0, 1], any sizes; load them at config.top_size)
    with the style images ([h, w, 3] each), at every style scale, as the config says. Contents of one
    shape are solved together: one batched, compiled call per aspect group and stage. Colour
    preservation wraps the solve (dfijax.style.color). weights: a dfijax.weights.VGGWeights."""

    progress = progress or (lambda *a: None)
    t_start = time.perf_counter()
    contents = [np.asarray(c, np.float32) for c in contents]
    styles = [np.asarray(s, np.float32) for s in styles]
    if not contents or not styles:
        raise ValueError(f"give at least one content and one style image, got {len(contents)} and {len(styles)}")
    for c in contents:
        check_image_batch(c[None], "content image")
    loss, variables, scales = config.loss(), weights.variables, config.style_scales
    prepared = [color.preserving_inputs(config.preserve_color, c, styles) for c in contents]
    if config.separate_styles:
        sets = [[([s], None) for s in ps] for _, ps in prepared]
    else:
        sets = [[(list(ps), config.blend)] for _, ps in prepared]
    groups: dict[tuple[int, int], list[int]] = {}  # contents of one shape are solved together
    for i, c in enumerate(contents):
        groups.setdefault(c.shape[:2], []).append(i)
    offsets = np.cumsum((0,) + config.iters)
    total = int(offsets[-1]) * len(groups)
    found: dict[tuple[int, int, int], tuple[StagedResult, int, dict[str, float]]] = {}
    group_info = []
    for g, (hw, members) in enumerate(groups.items()):
        index = [(i, j, k) for i in members for j in range(len(sets[i])) for k in range(len(scales))]
        first = stage_shape(hw, config.sizes[0])
        if config.init == "style":
            init = np.stack(
                [resize_images(im.fit_aspect(np.asarray(sets[i][j][0][0]), hw[0] / hw[1]), first) for i, j, _ in index]
            )
        elif config.init == "noise":
            init = np.asarray(
                inv.noise_init(jax.random.fold_in(jax.random.key(config.seed), g), (len(index),) + first + (3,))
            )
        else:
            init = None

        def report(s, k, losses, base=g * int(offsets[-1])):
            progress("solve", base + int(offsets[s]) + int(k), total, {"loss": float(jnp.mean(losses)), "stage": s})

        r = coarse_to_fine(
            loss,
            variables,
            np.stack([prepared[i][0] for i in members]),
            sizes=config.sizes,
            iters=config.iters,
            style_sets=[sets[i] for i in members],
            scales=scales,
            init=init,
            config=config.solver(),
            check_every=config.check_every,
            progress=report,
        )
        parts = loss_parts(loss, variables, jnp.clip(r.images, 0, 1), r.targets)  # one compiled call per group
        for p, (li, j, k) in enumerate(r.index):
            found[(members[li], j, k)] = (r, p, {n: float(v[p]) for n, v in parts.items()})
        group_info.append({"contents": members, "stage_shapes": [list(s) for s in r.shapes], "problems": len(r.index)})
    t_solve = time.perf_counter() - t_start
    images, index, problems = [], sorted(found), []
    for i, j, k in index:
        r, p, parts = found[(i, j, k)]
        x = np.clip(np.asarray(r.images[p]), 0, 1)
        images.append(
            color.restore_color(config.preserve_color, x, np.asarray(resize_images(contents[i], x.shape[:2])))
        )
        last = r.stages[-1]
        problems.append(
            {
                "content": i,
                "style_set": j,
                "style_scale": scales[k],
                "shape": list(x.shape[:2]),
                "final_loss": float(last.final_loss[p]),
                "initial_loss": float(last.loss_history[p, 0]),
                "parts": parts,
                "stages": [
                    {
                        "size": s,
                        "shape": list(sh),
                        "iterations": int(st.num_iters[p]),
                        "initial_loss": float(st.loss_history[p, 0]),
                        "final_loss": float(st.final_loss[p]),
                        "loss_history": [float(v) for v in np.asarray(st.loss_history[p])[: int(st.num_iters[p]) + 1]],
                    }
                    for s, sh, st in zip(config.sizes, r.shapes, r.stages)
                ],
            }
        )
    return StyleResult(
        config,
        images,
        index,
        problems,
        group_info,
        loss.config(),
        {"solve_including_compile": t_solve, "total": time.perf_counter() - t_start},
    )
