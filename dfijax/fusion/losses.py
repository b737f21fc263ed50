"""The fusion GAN's loss terms (eqs. 2–9), built on `dfijax.losses` and the shared VGG-19.

Per image (unbatched, `vmap` for batches) unless noted. Images are [H, W, 3] in [-1, 1]; VGG sees
(x + 1) / 2 (`dfijax.fusion.data.to_unit`). Reductions, and why: the feature losses are the paper's sums — content
Σ_l ‖P_l(C) − P_l(X)‖² (eq. 4), style Σ_l ‖ψ_l(C) − ψ_l(X)‖²_F with ψ the Gram matrix divided by
C·H·W (eqs. 5, 6) — which is what the paper's small weights (1e-6, 5e-5) bring to order one. The
pixel losses (the L1 norms of eqs. 7 and 10, φ of eq. 8) follow `FusionLoss.pixel_reduction`: "sum"
is the equations as printed (‖·‖₁ summed over every pixel and channel; φ = Σ_{i,j} over the pixels
that have both a right and a lower neighbour, channels summed), "mean" divides each by its element
count (‖·‖₁ / (H·W·3); φ's two squared differences each averaged over their own H·(W−1)·3 and
(H−1)·W·3 entries). At 128 px each sum is about 49,152 (= 128·128·3) times its mean, so under the
same printed w4 = 30, w5 = 1 the two readings weigh the pixel terms very differently against the
adversarial and perceptual terms.

Two ways to tie the perceptual terms to Λ (`FusionConfig.perceptual`):

- "paper" (`paper_perceptual`): eqs. (4) and (5) per chunk. Chunk n with λ_n = 1 contributes the
  content and style terms of C against A, with λ_n = 0 those of C against B (both terms switch
  together: the equations' cases select the target image, not the term); the loss is the mean over
  the N chunks, so that Λ = 1 (or 0) gives exactly the paper's single case. The paper defines no
  case for a fractional λ_n: such a chunk contributes nothing (the config admits only binary
  per-chunk Λ with this split).
- "mean" (`mixed_perceptual`, the default): weighted by λ̄, the mean of Λ over the latent's
  elements: λ̄·L(C, A) + (1 − λ̄)·L(C, B), which is the A-loss at Λ = 1 and the B-loss at Λ = 0, is
  defined for any Λ (fractional, per channel, spatial) and for binary per-chunk Λ differs from
  "paper" only in weighting chunks by their channel count (204 vs 208).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Callable, Literal, Mapping

import jax
import jax.numpy as jnp

from dfijax import config, losses
from dfijax.vgg import layer_index

Features = Mapping[str, jax.Array]
PIXEL_REDUCTIONS = ("mean", "sum")


_short = "{:g}".format  # 1e-06, 30 in --help, not 1e-06, 30.0
_WEIGHTS = ("w_adv", "w_content", "w_style", "w_recon", "w_tv")


@dataclasses.dataclass(frozen=True)
class FusionLoss:
    """Weights of eq. (11) (the paper's w1…w5 by default), the VGG taps of section 4.3, the
    gradient-penalty weight of the critic's loss (0 turns it off; WGAN-GP uses 10), and how the pixel
    losses of eqs. (7)–(10) reduce: "mean" per element or "sum" as printed (see the module doc)."""

    weights: Annotated[
        tuple[float, ...], config.flag("loss-weights"), config.comma_list(float, fmt=_short), config.NONNEG
    ] = (1.0, 1e-6, 5e-5, 30.0, 1.0)
    """w1..w5: adversarial, content, style, reconstruction, TV"""
    content_layers: Annotated[tuple[str, ...], config.comma_list(str)] = ("conv4_1", "conv5_1")
    """VGG-19 layers of the content loss"""
    style_layers: Annotated[tuple[str, ...], config.comma_list(str)] = ("conv1_1", "conv2_1", "conv3_1")
    """VGG-19 layers of the style loss"""
    gp_weight: Annotated[float, config.flag("gp"), config.NONNEG] = 10.0
    """gradient-penalty weight (0: off)"""
    pixel_reduction: Literal[PIXEL_REDUCTIONS] = "mean"
    """L1 (eqs. 7, 10) and TV (eq. 8): per-pixel mean, or the sum over the pixels as the equations print"""

    def __post_init__(self):
        for name, item in (("weights", float), ("content_layers", str), ("style_layers", str)):
            if isinstance(v := getattr(self, name), str):  # "a,b,c", as the command line spells it
                object.__setattr__(self, name, tuple(item(x) for x in v.split(",")))
        config.freeze_tuples(self)
        config.check(self)
        if len(self.weights) != 5:
            raise ValueError(f"loss_weights needs 5 values (w1..w5), got {len(self.weights)}")
        for layer in self.taps:
            layer_index(layer)

    @staticmethod
    def upgrade(d: dict) -> dict:
        """A saved FusionLoss of the older layout (w_adv … w_tv as five fields) in this one."""
        if any(k in d for k in _WEIGHTS):
            d["weights"] = [d.pop(k, w) for k, w in zip(_WEIGHTS, FusionLoss.weights)]
        return d

    w_adv = property(lambda self: self.weights[0])
    w_content = property(lambda self: self.weights[1])
    w_style = property(lambda self: self.weights[2])
    w_recon = property(lambda self: self.weights[3])
    w_tv = property(lambda self: self.weights[4])

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


def content(fc: Features, fx: Features, layers: tuple[str, ...]) -> jax.Array:
    """Σ_l ‖P_l(C) − P_l(X)‖² over one image's [h, w, C] feature maps (eq. 4)."""
    # feature_mse's "sum" is ½‖·‖²; weight 2 gives the paper's plain squared norm
    return losses.feature_mse(fc, fx, layers, weights=[2.0] * len(layers), reduction="sum")


def style(fc: Features, fx: Features, layers: tuple[str, ...]) -> jax.Array:
    """Σ_l ‖ψ_l(C) − ψ_l(X)‖²_F with ψ = Gram / (C·H·W) (eqs. 5, 6), one image's feature maps."""
    grams = {l: losses.gram(fx[l], "hwc") for l in layers}
    # style_loss averages over the C_l² Gram entries; weighting by C_l² makes it the Frobenius sum
    return losses.style_loss(fc, grams, layers, weights=[float(fc[l].shape[-1]) ** 2 for l in layers], normalize="hwc")


def mixed_perceptual(
    fc: Features, fa: Features, fb: Features, lam_bar: jax.Array, cfg: FusionLoss
) -> tuple[jax.Array, jax.Array]:
    """(content, style) of C against A and B weighted by λ̄ ∈ [0, 1] (one image; see module doc)."""
    c = lam_bar * content(fc, fa, cfg.content_layers) + (1 - lam_bar) * content(fc, fb, cfg.content_layers)
    s = lam_bar * style(fc, fa, cfg.style_layers) + (1 - lam_bar) * style(fc, fb, cfg.style_layers)
    return c, s


def paper_perceptual(
    fc: Features, fa: Features, fb: Features, lam_n: jax.Array, cfg: FusionLoss
) -> tuple[jax.Array, jax.Array]:
    """Eqs. (4), (5) per chunk for one image: (content [N], style [N]).

    lam_n: [N] the pair's per-chunk λ. Entry n is L(C, A) when λ_n = 1, L(C, B) when λ_n = 0 and 0
    otherwise (no case in the paper); the training loss is their mean over the chunks."""
    lam_n = jnp.asarray(lam_n, jnp.float32)
    to_a, to_b = (lam_n == 1.0).astype(jnp.float32), (lam_n == 0.0).astype(jnp.float32)
    ca, cb = content(fc, fa, cfg.content_layers), content(fc, fb, cfg.content_layers)
    sa, sb = style(fc, fa, cfg.style_layers), style(fc, fb, cfg.style_layers)
    return to_a * ca + to_b * cb, to_a * sa + to_b * sb


def l1(x: jax.Array, y: jax.Array, reduction: str = "mean") -> jax.Array:
    """‖x − y‖₁: the mean absolute difference (per-pixel L1, "mean") or its sum ("sum"), any equal
    shapes -> scalar."""
    d = jnp.abs(x.astype(jnp.float32) - y.astype(jnp.float32))
    return jnp.sum(d) if _reduction(reduction) == "sum" else jnp.mean(d)


def phi(x: jax.Array, reduction: str = "mean") -> jax.Array:
    """φ of eq. (8) for one image [H, W, C]: "sum" Σ_{i<H−1, j<W−1} Σ_c ((x_{i,j+1} − x_{i,j})² +
    (x_{i+1,j} − x_{i,j})²); "mean" the mean squared neighbour difference (`losses.tv_squared`)."""
    if _reduction(reduction) == "sum":
        return losses.tv_beta(x.astype(jnp.float32), 2.0, scale=1.0)
    return losses.tv_squared(x)


def _reduction(reduction: str) -> str:
    if reduction not in PIXEL_REDUCTIONS:
        raise ValueError(f"pixel reduction must be one of {PIXEL_REDUCTIONS}, got {reduction!r}")
    return reduction


def reconstruction(
    a: jax.Array,
    a_rec: jax.Array,
    b: jax.Array,
    b_rec: jax.Array,
    c: jax.Array,
    lam: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """Eq. (7) for one pair: ‖A' − A‖₁ + ‖B' − B‖₁ + R, R = ‖C − A‖₁ when Λ is all ones, ‖C − B‖₁ when
    all zeros, else 0. Images [H, W, 3]; lam: this pair's Λ, any shape; reduction: see `l1`."""
    r = jnp.where(jnp.all(lam == 1.0), l1(c, a, reduction), jnp.where(jnp.all(lam == 0.0), l1(c, b, reduction), 0.0))
    return l1(a_rec, a, reduction) + l1(b_rec, b, reduction) + r


def total_variation(c: jax.Array, a_rec: jax.Array, b_rec: jax.Array, reduction: str = "mean") -> jax.Array:
    """Eq. (9): φ(C) + φ(A') + φ(B') (see `phi`)."""
    return phi(c, reduction) + phi(a_rec, reduction) + phi(b_rec, reduction)


def wasserstein(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """Eq. (2): L_A = E[D(I)] − E[D(G(Z_C))] over [B] critic scores (D maximises it)."""
    return jnp.mean(d_real) - jnp.mean(d_fake)


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, eps: jax.Array
) -> jax.Array:
    """WGAN-GP: mean over the batch of (‖∇_x̂ D(x̂)‖₂ − 1)², x̂ = ε·real + (1 − ε)·fake.

    critic: [B, H, W, 3] -> [B], per-sample independent (no BatchNorm) for the per-image gradients
    to mean what they should; real, fake: [B, H, W, 3]; eps: [B] in [0, 1]."""
    e = eps.reshape((-1,) + (1,) * (real.ndim - 1))
    x = e * real + (1.0 - e) * fake
    g = jax.grad(lambda y: jnp.sum(critic(y)))(x)
    norm = jnp.sqrt(jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim))) + 1e-12)
    return jnp.mean(jnp.square(norm - 1.0))
