"""The DTN's networks as one value: G = g ∘ f (f frozen) and D, how a network with or without batch
norm is applied, and G as a function (`translate`). Training is `dfijax.dtn.train`; the faces'
f is `dfijax.dtn.faces`."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from dfijax.batching import map_batches
from dfijax.dtn import losses as L
from dfijax.dtn.model import DigitClassifier, Discriminator, Generator, PaperDiscriminator, PaperGenerator


@dataclasses.dataclass(frozen=True)
class DTN:
    """G = g ∘ f with f frozen, and D. weights: the loss weights and D's class count.

    f: a `DigitClassifier` (f_params = its params; the digits setting) or any hashable object with
    `feat_dim` and `features(f_params, x) -> [B, feat_dim]` (e.g. `dfijax.dtn.faces.VGGFeatures`,
    f_params = the frozen VGG-19 variables and feature statistics). Images are [B, S, S, 3] with
    S = g.size (32 for digits)."""

    f: Any
    g: Generator | PaperGenerator
    d: Discriminator | PaperDiscriminator
    weights: L.DTNWeights

    def __post_init__(self):
        if self.d.num_classes != self.weights.num_classes:
            raise ValueError(f"D has {self.d.num_classes} classes but the weights ask for {self.weights.num_classes}")

    def features(self, f_params: Any, x: jax.Array) -> jax.Array:
        if isinstance(self.f, nn.Module):
            return self.f.apply({"params": f_params}, x, method="features")
        return self.f.features(f_params, x)

    def generate(self, f_params: Any, g_params: Any, x: jax.Array, g_stats: Any = None) -> jax.Array:
        """G(x) = g(f(x)): [B, S, S, 3] in [0, 1] -> [B, S, S, 3] in [0, 1] (S = g.size); g_stats:
        g's running batch statistics (`DTNState.g_stats`), needed when g has batch norm."""
        return apply_net(self.g, g_params, g_stats, self.features(f_params, x), train=False)[0]


def uses_batch_stats(net: Any) -> bool:
    """Whether a network has batch norm (and so "batch_stats" and a `train` argument)."""
    return bool(getattr(net, "uses_batch_stats", False))


def apply_net(net: Any, params: Any, stats: Any, x: jax.Array, train: bool) -> tuple[jax.Array, Any]:
    """(net(x), its batch statistics afterwards): batch statistics and updated running averages when
    train, the running averages otherwise; nets without batch norm ignore stats and train."""
    if not uses_batch_stats(net):
        return net.apply({"params": params}, x), stats
    if not stats:
        raise ValueError(
            f"{type(net).__name__} has batch norm: pass its running statistics (DTNState.g_stats or d_stats)"
        )
    variables = {"params": params, "batch_stats": stats}
    if not train:
        return net.apply(variables, x, train=False), stats
    out, upd = net.apply(variables, x, train=True, mutable=["batch_stats"])
    return out, upd["batch_stats"]


def make_dtn(
    weights: L.DTNWeights = L.PRESETS["digits"],
    f: DigitClassifier = DigitClassifier(),
    width: int = 32,
    d_width: int = 16,
    out_channels: int = 3,
) -> DTN:
    """A DTN for 32×32 digits (g of base width `width`, D of `d_width`) with D's class count taken
    from the weights."""
    if width < 1 or d_width < 1:
        raise ValueError(f"widths must be positive, got {width}, {d_width}")
    return DTN(f, Generator(width, out_channels), Discriminator(d_width, weights.num_classes), weights)


def structure(dtn: DTN) -> DTN:
    """The DTN with α, β, γ zeroed: what a compiled step depends on besides the coefficient array."""
    return dataclasses.replace(dtn, weights=dtn.weights.replace(alpha=0.0, beta=0.0, gamma=0.0))


@functools.partial(jax.jit, static_argnums=(0,))
def _generate(dtn: DTN, f_params: Any, g_params: Any, g_stats: Any, x: jax.Array) -> jax.Array:
    return dtn.generate(f_params, g_params, x, g_stats)


def translate(
    dtn: DTN, f_params: Any, g_params: Any, x: np.ndarray, batch: int = 250, g_stats: Any = None
) -> np.ndarray:
    """G(x) for [N, S, S, 3] in [0, 1], in batches -> [N, S, S, 3] in [0, 1] (S = dtn.g.size); g_stats:
    g's running batch statistics (`DTNState.g_stats`) when g has batch norm."""
    net = structure(dtn)  # the loss weights do not change G
    if uses_batch_stats(dtn.g) and not g_stats:
        raise ValueError(f"{type(dtn.g).__name__} has batch norm: pass g_stats=state.g_stats to translate")
    return map_batches(lambda c: _generate(net, f_params, g_params, g_stats, c), np.asarray(x, np.float32), batch)
