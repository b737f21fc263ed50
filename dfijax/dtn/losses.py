"""The DTN objective (Taigman et al. 2016, eqs. 2-7), pure and jit-able.

D's classes: 0 = G(source), 1 = G(target), 2 = real target (3-class, the paper's D); the ablation's
2-class D has 0 = generated (G(source) or G(target)) and 1 = real target. Every term is a mean over
the batch, the paper's expectations E_s, E_t.

    L_D     = CE(D(G(s)), 0) + CE(D(G(t)), 1) + CE(D(t), 2)      (2-class: 0, 0, 1)
    L_GANG  = CE(D(G(s)), real) + CE(D(G(t)), real)
    L_CONST = d(f(s), f(G(s)))     d = mean squared error ("mse") or mean (1 - cosine) ("cosine")
    L_TID   = mean((t - G(t))²)   (pixels in [0, 1])
    L_TV    = mean over images of `dfijax.losses.tv_anisotropic`
    L_G     = L_GANG + α L_CONST + β L_TID + γ L_TV
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from dfijax import losses as base_losses

GS, GT, REAL3 = 0, 1, 2
FAKE2, REAL2 = 0, 1


@dataclasses.dataclass(frozen=True)
class DTNWeights:
    """α (f-constancy), β (target identity), γ (TV), d for L_CONST, and whether D has 3 classes."""

    alpha: float = 15.0
    beta: float = 15.0
    gamma: float = 0.0
    const: str = "mse"
    three_class: bool = True

    def __post_init__(self):
        for name in ("alpha", "beta", "gamma"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.const not in ("mse", "cosine"):
            raise ValueError(f"const distance must be 'mse' or 'cosine', got {self.const!r}")

    @property
    def num_classes(self) -> int:
        return 3 if self.three_class else 2

    def replace(self, **kw) -> "DTNWeights":
        return dataclasses.replace(self, **kw)


PRESETS: dict[str, DTNWeights] = {
    "digits": DTNWeights(alpha=15.0, beta=15.0, gamma=0.0),  # SVHN -> MNIST reimplementations
    "faces": DTNWeights(alpha=100.0, beta=1.0, gamma=0.05),  # the paper's faces -> emoji
}


def preset(name: str) -> DTNWeights:
    if name not in PRESETS:
        raise ValueError(f"unknown DTN preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def _ce(logits: jax.Array, label: int) -> jax.Array:
    """Mean cross-entropy of [B, K] logits against one class."""
    labels = jnp.full(logits.shape[:1], label, jnp.int32)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def d_loss(logits_gs: jax.Array, logits_gt: jax.Array, logits_t: jax.Array, three_class: bool = True) -> jax.Array:
    """L_D from D's logits on G(s) [B, K], G(t) [B, K] and real t [B, K] (K = 3, or 2 for the ablation)."""
    if three_class:
        return _ce(logits_gs, GS) + _ce(logits_gt, GT) + _ce(logits_t, REAL3)
    return _ce(logits_gs, FAKE2) + _ce(logits_gt, FAKE2) + _ce(logits_t, REAL2)


def gan_g_loss(logits_gs: jax.Array, logits_gt: jax.Array, three_class: bool = True) -> jax.Array:
    """L_GANG: both G(s) and G(t) classified as real target."""
    real = REAL3 if three_class else REAL2
    return _ce(logits_gs, real) + _ce(logits_gt, real)


def const_loss(f_s: jax.Array, f_gs: jax.Array, kind: str = "mse", eps: float = 1e-8) -> jax.Array:
    """L_CONST between f(s) and f(G(s)), both [B, F]."""
    if kind == "mse":
        return jnp.mean(jnp.square(f_s - f_gs))
    if kind == "cosine":
        num = jnp.sum(f_s * f_gs, -1)
        den = jnp.linalg.norm(f_s, axis=-1) * jnp.linalg.norm(f_gs, axis=-1) + eps
        return jnp.mean(1.0 - num / den)
    raise ValueError(f"const distance must be 'mse' or 'cosine', got {kind!r}")


def tid_loss(t: jax.Array, g_t: jax.Array) -> jax.Array:
    """L_TID: mean squared pixel difference between t and G(t), [B, H, W, C]."""
    return jnp.mean(jnp.square(t - g_t))


def tv_loss(x: jax.Array) -> jax.Array:
    """L_TV on a batch [B, H, W, C]: the mean of the per-image anisotropic TV."""
    return jnp.mean(jax.vmap(base_losses.tv_anisotropic)(x))


def g_loss(
    w: DTNWeights, logits_gs, logits_gt, f_s, f_gs, t, g_t, g_s, coef=None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_G and its parts. Logits [B, K]; f_s, f_gs [B, F]; t, g_t = G(t), g_s = G(s) [B, H, W, C]
    (L_TV is the mean over G(s) and G(t)). coef: (α, β, γ) as an array to use instead of w's numbers
    (so a jitted step need not be recompiled for other weights)."""
    alpha, beta, gamma = (w.alpha, w.beta, w.gamma) if coef is None else (coef[0], coef[1], coef[2])
    gang = gan_g_loss(logits_gs, logits_gt, w.three_class)
    const = const_loss(f_s, f_gs, w.const)
    tid = tid_loss(t, g_t)
    tv = 0.5 * (tv_loss(g_s) + tv_loss(g_t))
    total = gang + alpha * const + beta * tid + gamma * tv
    return total, {"g_loss": total, "gang": gang, "const": const, "tid": tid, "tv": tv}
