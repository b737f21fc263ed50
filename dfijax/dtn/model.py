"""The DTN's networks (flax linen, used through pure `apply`): small ones sized for 32×32 digits (and
64×64 faces on CPU), and the paper's faces networks.

Images everywhere are [B, 32, 32, 3] float32 RGB in [0, 1] (the project's convention); each network
maps them to [-1, 1] first. In the small networks normalisation is GroupNorm instead of the paper's
batch norm, so none carries batch statistics: an output depends on its own input only, and train states are
just parameters and optimiser state.

- `DigitClassifier`: three 3×3 stride-2 convolutions (w, 2w, 4w channels) and a dense tanh
  feature layer; f's architecture, and the target-domain evaluation classifier's.
  `features` -> [B, feat_dim] in (-1, 1) (tanh), `__call__` -> [B, 10] logits (a linear head on the
  features). f is trained as a classifier on the source domain, then frozen; the DTN uses only
  `features`.
- `Generator` g: [B, feat_dim] features -> [B, 32, 32, 3] in [0, 1] (DCGAN-style: a dense layer to
  4×4×4w, then sub-pixel 2x upsamplings (3×3 convolution + depth-to-space) to 8×8×2w, 16×16×w and
  32×32; `out_channels=1`
  produces grey, repeated to RGB, for grey target domains such as MNIST). `size=64` (the faces
  setting) adds one upsampling.
- `Discriminator` D: [B, 32, 32, 3] in [0, 1] -> [B, num_classes] logits; 3 classes for the DTN
  (G(source), G(target), real target), 2 for the ablation (G(anything), real target). Larger inputs
  (64×64) get one more stride-2 convolution.
- f can also be a frozen VGG-19 (`dfijax.dtn.faces.VGGFeatures`), for the faces setting.

The paper's faces networks (section 5.2; `PaperGenerator`, `PaperDiscriminator`) use batch
normalisation as the paper does, so they carry batch statistics ("batch_stats", running averages
with momentum 0.9) beside their parameters and take `train`: batch statistics (and updated running
averages, with `mutable=["batch_stats"]`) when True, the running averages when False. Their layer
table, with w the base width (64 in the paper preset), F the feature size, BN = batch norm (scale and
bias per channel), convolutions before a BN carry no bias:

    PaperGenerator g: [B, F] -> [B, 64, 64, 3] in [0, 1]; 5 upscaling blocks, 9 weight layers
      block 1  4×4 transposed conv, VALID, on the 1×1 map  F -> 8w   4×4    BN, ReLU
               1×1 conv                                    8w -> 8w  4×4    BN, ReLU
      block 2  4×4 transposed conv, stride 2               8w -> 4w  8×8    BN, ReLU; 1×1 conv 4w, BN, ReLU
      block 3  4×4 transposed conv, stride 2               4w -> 2w  16×16  BN, ReLU; 1×1 conv 2w, BN, ReLU
      block 4  4×4 transposed conv, stride 2               2w -> w   32×32  BN, ReLU; 1×1 conv w, BN, ReLU
      block 5  4×4 transposed conv, stride 2, with bias    w -> 3    64×64  sigmoid
    PaperDiscriminator D: [B, S, S, 3] in [0, 1], bilinearly resized to 152×152 -> [B, num_classes]
      6 blocks of 4×4 conv stride 2 (SAME) + BN + leaky ReLU 0.2, widths w, 2w, 4w, 8w, 8w, 8w:
      152 -> 76 -> 38 -> 19 -> 10 -> 5 -> 3; then a dense layer on the 3×3×8w map -> num_classes.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

SIZE = 32


def _gn(c: int, name: str) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(8, c), name=name)  # any width works


class Encoder(nn.Module):
    """[B, 32, 32, 3] in [0, 1] -> [B, feat_dim] in (-1, 1)."""

    width: int = 32
    feat_dim: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x * 2.0 - 1.0
        for i, mult in enumerate((1, 2, 4)):
            h = nn.Conv(self.width * mult, (3, 3), strides=(2, 2), name=f"conv{i}")(h)
            h = nn.relu(_gn(self.width * mult, f"norm{i}")(h))
        h = h.reshape(h.shape[0], -1)
        return jnp.tanh(nn.Dense(self.feat_dim, name="feat")(h))


class DigitClassifier(nn.Module):
    """f and the evaluation classifier: `features(x)` [B, feat_dim], `__call__(x)` [B, 10] logits."""

    width: int = 32
    feat_dim: int = 128
    num_classes: int = 10

    def setup(self):
        self.encoder = Encoder(self.width, self.feat_dim)
        self.head = nn.Dense(self.num_classes)

    def features(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.encoder(x))


def _up(h: jax.Array, ch: int, name: str) -> jax.Array:
    """2x upsampling by a 3×3 convolution to 4·ch channels and depth-to-space (sub-pixel convolution;
    several times faster than a transposed convolution on XLA:CPU)."""
    b, hh, ww, _ = h.shape
    h = nn.Conv(4 * ch, (3, 3), name=name)(h)
    return h.reshape(b, hh, ww, 2, 2, ch).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * hh, 2 * ww, ch)


def levels(size: int, what: str) -> int:
    """log2(size) for a power of two >= 32 (a one-line ValueError otherwise)."""
    if size < SIZE or size & (size - 1):
        raise ValueError(f"{what} size must be a power of two >= {SIZE}, got {size}")
    return size.bit_length() - 1


class Generator(nn.Module):
    """g: [B, F] -> [B, size, size, 3] in [0, 1] (size a power of two >= 32; 64 adds one 4w-channel
    upsampling at 8×8 before the 2w and w ones)."""

    width: int = 32
    out_channels: int = 3
    size: int = SIZE

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        c = 4 * self.width
        h = nn.Dense(4 * 4 * c, name="proj")(z).reshape(z.shape[0], 4, 4, c)
        h = nn.relu(_gn(c, "norm_proj")(h))
        n = levels(self.size, "generator") - 3  # hidden upsamplings: 2 for 32×32 (up0: 2w, up1: w)
        for i, mult in enumerate(min(4, 2**k) for k in reversed(range(n))):
            h = nn.relu(_gn(self.width * mult, f"norm{i}")(_up(h, self.width * mult, f"up{i}")))
        h = _up(h, self.out_channels, "out")
        h = nn.sigmoid(h)
        return jnp.repeat(h, 3, axis=-1) if self.out_channels == 1 else h


class Discriminator(nn.Module):
    """D: [B, S, S, 3] in [0, 1] -> [B, num_classes] logits (conv stride 2, leaky ReLU 0.2) down to
    4×4: three convolutions (w, 2w, 4w) for S = 32, four (w, 2w, 4w, 8w) for S = 64."""

    width: int = 32
    num_classes: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x * 2.0 - 1.0
        n = levels(x.shape[1], "discriminator input") - 2
        for i, mult in enumerate(2**k for k in range(n)):
            h = nn.Conv(self.width * mult, (4, 4), strides=(2, 2), name=f"conv{i}")(h)
            if i:
                h = _gn(self.width * mult, f"norm{i}")(h)
            h = nn.leaky_relu(h, 0.2)
        return nn.Dense(self.num_classes, name="logits")(h.reshape(h.shape[0], -1))


# --- the paper's faces networks (Taigman et al. 2016, section 5.2) ---------------------------------------

PAPER_G_SIZE = 64
PAPER_D_SIZE = 152
BN_MOMENTUM = 0.9


def _bn(train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, name=name)


class PaperGenerator(nn.Module):
    """The paper's faces g: [B, F] -> [B, 64, 64, 3] in [0, 1] (see the module docstring's table)."""

    width: int = 64
    size: int = PAPER_G_SIZE
    out_channels: int = 3
    uses_batch_stats = True  # a class constant, not a field: the training steps carry "batch_stats"

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
        if self.size != PAPER_G_SIZE or self.out_channels != 3:
            raise ValueError(
                f"the paper's g makes {PAPER_G_SIZE}x{PAPER_G_SIZE} RGB images, got size "
                f"{self.size} with {self.out_channels} channels; use Generator for other sizes"
            )
        h = z.reshape(z.shape[0], 1, 1, -1)
        for i, mult in enumerate((8, 4, 2, 1)):
            c = self.width * mult
            if i == 0:
                h = nn.ConvTranspose(c, (4, 4), padding="VALID", use_bias=False, name="up0")(h)  # 1×1 -> 4×4
            else:
                h = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", use_bias=False, name=f"up{i}")(h)
            h = nn.relu(_bn(train, f"up{i}_bn")(h))
            h = nn.Conv(c, (1, 1), use_bias=False, name=f"mix{i}")(h)
            h = nn.relu(_bn(train, f"mix{i}_bn")(h))
        h = nn.ConvTranspose(3, (4, 4), strides=(2, 2), padding="SAME", name="out")(h)
        return nn.sigmoid(h)


class PaperDiscriminator(nn.Module):
    """The paper's faces D: [B, S, S, 3] in [0, 1] -> [B, num_classes] logits; any S, bilinearly
    resized to input_size (152) first (see the module docstring's table)."""

    width: int = 64
    num_classes: int = 3
    input_size: int = PAPER_D_SIZE
    uses_batch_stats = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        b, h_in, w_in, c_in = x.shape
        if (h_in, w_in) != (self.input_size, self.input_size):
            x = jax.image.resize(x, (b, self.input_size, self.input_size, c_in), "bilinear")
        h = x * 2.0 - 1.0
        for i, mult in enumerate((1, 2, 4, 8, 8, 8)):
            h = nn.Conv(self.width * mult, (4, 4), strides=(2, 2), padding="SAME", use_bias=False, name=f"conv{i}")(h)
            h = nn.leaky_relu(_bn(train, f"conv{i}_bn")(h), 0.2)
        return nn.Dense(self.num_classes, name="logits")(h.reshape(b, -1))
