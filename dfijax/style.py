"""Gatys et al. neural style transfer on the shared engine: a style/content objective for `invert`.

    loss = StyleLoss()                                   # the Gatys reference notebook's settings
    targets = style_targets(loss, variables, content, [style], [1.0])
    result = invert(loss, variables, targets, content)   # init from the content image
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

from dfijax import losses
from dfijax.vgg import VGG19, check_image_batch, layer_index, tap_shapes

GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
GATYS_CONTENT_LAYERS = ("relu4_2",)


def _channels(tap: str) -> int:
    return tap_shapes((32, 32), (tap,))[tap][2]


@dataclasses.dataclass(frozen=True)
class StyleLoss:
    """content_weight · Σ mean((F − P)²) + s · Σ_l w_l · mean((G_l − A_l)²) + tv_weight · TV²(x) for one
    image x: [H, W, 3] in [0, 1]. G are Gram matrices divided by h·w; style weights default to the
    Gatys notebook's 1e3/n² (n = channels); s is the per-problem target "style_scale" (1 from
    style_targets), so several style strengths are solved in one batch. model: use
    VGG19(pooling="avg") as Gatys did."""

    model: VGG19 = VGG19(pooling="avg")
    content_layers: tuple[str, ...] = GATYS_CONTENT_LAYERS
    style_layers: tuple[str, ...] = GATYS_STYLE_LAYERS
    content_weight: float = 1.0
    style_weights: tuple[float, ...] | None = None
    tv_weight: float = 0.0

    def __post_init__(self):
        for t in self.content_layers + self.style_layers:
            layer_index(t)
        if self.style_weights is not None and len(self.style_weights) != len(self.style_layers):
            raise ValueError(f"{len(self.style_weights)} style weights for {len(self.style_layers)} style layers")

    @property
    def weights(self) -> tuple[float, ...]:
        if self.style_weights is not None:
            return self.style_weights
        return tuple(1e3 / _channels(t) ** 2 for t in self.style_layers)

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
                                  self.weights)
        total = self.content_weight * content + targets["style_scale"] * style
        if self.tv_weight:
            total = total + self.tv_weight * losses.tv_beta(x, 2.0)
        return total

    def parts(self, x: jax.Array, variables: Mapping, targets: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The unweighted content and (weighted) style terms, for reports and tests."""
        f = self.features(variables, x)
        return {
            "content": losses.feature_mse(f, {t: targets[f"content/{t}"] for t in self.content_layers},
                                          self.content_layers, reduction="mean"),
            "style": targets["style_scale"] * losses.style_loss(
                f, {t: targets[f"gram/{t}"] for t in self.style_layers}, self.style_layers, self.weights),
        }


@functools.partial(jax.jit, static_argnums=(0,))
def _grams(loss: StyleLoss, variables, image):
    f = loss.features(variables, image)
    return {t: losses.gram(f[t]) for t in loss.style_layers}


def style_grams(loss: StyleLoss, variables: Mapping, styles: Sequence[jax.Array],
                blend: Sequence[float] | None = None) -> dict[str, jax.Array]:
    """Gram matrices of one or several style images ([H, W, 3], any sizes), blended with weights that
    are normalised to sum to 1: {layer: [C, C]}."""
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
