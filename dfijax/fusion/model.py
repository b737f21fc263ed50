"""The fusion GAN's networks (Takagi & Okadome, Table 1) and the latent mixing of eq. (1).

Images are [B, H, W, 3] float32 in [-1, 1] (channels last; the paper's 3×128×128 is 128×128×3 here).
With `size` = 4·2^depth the encoder has `depth` blocks [conv 4×4 stride 2, BN, LeakyReLU 0.2] with
width·2^i channels, so the latent is always [4, 4, width·2^(depth−1)]: at 128 px and width 64 that is
the paper's 1024×4×4 (depth 5); at 32 px and width 16 it is 4×4×64 (depth 3). The generator mirrors
it with transposed convolutions (BN + ReLU, then a tanh output layer); the critic is the encoder
without a norm on its first block, then a linear output.

Latent chunks (`chunk_sizes`): N chunks along channels, the first N−1 of ⌊C/N⌋ channels and the last
taking the rest: 1024 -> (204, 204, 204, 204, 208), the paper's split; 64 -> (12, 12, 12, 12, 16).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LATENT_HW = 4
NORMS = ("batch", "layer", "none")


def depth_for(size: int) -> int:
    """Number of stride-2 blocks taking size×size to 4×4; size must be 4·2^k with size >= 32."""
    k = math.log2(size / LATENT_HW) if size > 0 else -1
    if size < 32 or k != int(k):
        raise ValueError(f"image size must be a power of two >= 32 (32, 64, 128, 256, ...), got {size}")
    return int(k)


def latent_channels(size: int, width: int) -> int:
    """Channels of the latent [4, 4, C] for a given image size and width (64 at 128 px -> 1024)."""
    return width * 2 ** (depth_for(size) - 1)


def chunk_sizes(channels: int, n: int = 5) -> tuple[int, ...]:
    """Channel counts of the N latent chunks: N−1 chunks of ⌊C/N⌋, the last takes the remainder."""
    if n < 1 or channels < n:
        raise ValueError(f"cannot split {channels} latent channels into {n} chunks")
    base = channels // n
    return (base,) * (n - 1) + (channels - base * (n - 1),)


def chunk_lambda(lam: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Per-chunk Λ [..., N] -> per-channel Λ [..., C] (each λ_n repeated over its chunk's channels)."""
    lam = jnp.asarray(lam, jnp.float32)
    if lam.shape[-1] != len(sizes):
        raise ValueError(f"Λ has {lam.shape[-1]} values for {len(sizes)} chunks")
    return jnp.repeat(lam, jnp.asarray(sizes), axis=-1, total_repeat_length=int(sum(sizes)))


def mix(za: jax.Array, zb: jax.Array, lam: jax.Array) -> jax.Array:
    """Eq. (1): Z_C = Λ∘Z_A + (1 − Λ)∘Z_B.

    za, zb: [..., 4, 4, C]; lam broadcasts against them: [C] per channel (see `chunk_lambda` for a
    per-chunk Λ), [4, 4, 1] or [4, 4, C] spatial, or a scalar. Written as two products so that Λ = 1
    gives Z_A and Λ = 0 gives Z_B bit for bit."""
    lam = jnp.asarray(lam, za.dtype)
    lam = lam.reshape((1,) * (za.ndim - lam.ndim) + lam.shape)  # explicit leading axes: [C] -> [1, 1, C]
    return lam * za + (1.0 - lam) * zb


def _norm(kind: str, train: bool, name: str):
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)
    if kind == "layer":
        # over (h, w, C) per sample, as WGAN-GP recommends for a critic
        return nn.LayerNorm(reduction_axes=(-3, -2, -1), feature_axes=-1, name=name)
    if kind == "none":
        return lambda x: x
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


# A bias before BatchNorm is cancelled by it (its gradient is rounding noise, which Adam amplifies).
def _down(x, features, dtype, name, bias=True):
    return nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=bias, dtype=dtype, name=name)(x)


def _up(x, features, dtype, name, bias=True):
    return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME", use_bias=bias, dtype=dtype, name=name)(x)


class Encoder(nn.Module):
    """E: [B, S, S, 3] in [-1, 1] -> Z [B, 4, 4, width·2^(depth−1)] (depth = log2(S/4))."""

    width: int = 64
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        h = x.astype(self.dtype)
        for i in range(depth_for(x.shape[1])):
            h = _down(h, self.width * 2**i, self.dtype, f"conv{i}", bias=False)
            h = nn.leaky_relu(_norm("batch", train, f"bn{i}")(h), 0.2)
        return h.astype(jnp.float32)


class Generator(nn.Module):
    """G: Z [B, 4, 4, C] -> [B, 4·2^depth, 4·2^depth, 3] in [-1, 1] (tanh); depth from `size`."""

    size: int = 128
    width: int = 64
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        depth = depth_for(self.size)
        h = z.astype(self.dtype)
        for i in range(1, depth):
            h = _up(h, self.width * 2 ** (depth - 1 - i), self.dtype, f"deconv{i - 1}", bias=False)
            h = nn.relu(_norm("batch", train, f"bn{i - 1}")(h))
        return jnp.tanh(_up(h, 3, self.dtype, "out").astype(jnp.float32))


class Discriminator(nn.Module):
    """D (the critic): [B, S, S, 3] in [-1, 1] -> [B] unbounded scores.

    norm: "batch" is the paper's; the default "layer" normalises per sample, so that the gradient
    penalty's per-image input gradients are what WGAN-GP assumes (with BatchNorm a sample's score
    depends on the rest of the batch). "none" is the third option."""

    width: int = 64
    norm: str = "layer"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        h = x.astype(self.dtype)
        for i in range(depth_for(x.shape[1])):
            h = _down(h, self.width * 2**i, self.dtype, f"conv{i}", bias=i == 0 or self.norm != "batch")
            if i > 0:
                h = _norm(self.norm, train, f"norm{i}")(h)
            h = nn.leaky_relu(h, 0.2)
        h = h.reshape(h.shape[0], -1).astype(jnp.float32)
        return nn.Dense(1, name="out")(h)[:, 0]
