"""A pure-function VGG-19 in Flax that returns named activations.

`VGG19().apply(variables, x, taps=("relu3_1", "relu4_1"))` returns a dict of the requested taps and
computes nothing past the deepest one. The preprocessing a weight file expects (torchvision's RGB
mean/std, or Caffe's BGR 0-255 minus mean) lives in the variables, under the `preprocess`
collection, so weights and preprocessing cannot be mismatched by the caller.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# (block, convs, channels) of VGG-19's feature extractor.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CONV_NAMES: tuple[str, ...] = tuple(f"conv{b}_{l}" for b, n, _ in BLOCKS for l in range(1, n + 1))
CONV_CHANNELS: dict[str, tuple[int, int]] = {}
_cin = 3
for _b, _n, _c in BLOCKS:
    for _l in range(1, _n + 1):
        CONV_CHANNELS[f"conv{_b}_{_l}"] = (_cin, _c)
        _cin = _c

# Every tap in forward order: conv (pre-ReLU), relu, and a pool after each block's last conv.
LAYERS: tuple[str, ...] = tuple(
    name
    for b, n, _ in BLOCKS
    for l in range(1, n + 1)
    for name in ((f"conv{b}_{l}", f"relu{b}_{l}") + ((f"pool{b}",) if l == n else ()))
)
_LAYER_INDEX = {name: i for i, name in enumerate(LAYERS)}

MIN_SIZE = 32

# Preprocessing affine maps x_pre = x @ matrix.T + offset from RGB in [0, 1].
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
PREPROCESS_KINDS = ("torchvision", "caffe")


def preprocess_constants(kind: str) -> dict[str, np.ndarray]:
    """The affine map a weight family expects, from RGB in [0, 1].

    torchvision: (x - mean) / std, RGB. caffe: BGR, 0-255, minus the BGR mean (Keras h5, Gatys'
    vgg_conv.pth, the original Caffe models).
    """
    if kind == "torchvision":
        matrix = np.diag(1.0 / IMAGENET_STD).astype(np.float32)
        offset = (-IMAGENET_MEAN / IMAGENET_STD).astype(np.float32)
    elif kind == "caffe":
        matrix = (255.0 * np.eye(3, dtype=np.float32)[::-1]).copy()  # RGB -> BGR, times 255
        offset = -CAFFE_MEAN_BGR
    else:
        raise ValueError(f"unknown preprocessing {kind!r}; use one of {PREPROCESS_KINDS}")
    return {"matrix": matrix, "offset": offset.astype(np.float32)}


def layer_index(name: str) -> int:
    """Position of a tap in forward order; a clear error for unknown names."""
    try:
        return _LAYER_INDEX[name]
    except KeyError:
        raise ValueError(
            f"unknown VGG-19 tap {name!r}; valid taps are conv1_1..conv5_4, relu1_1..relu5_4, pool1..pool5"
        ) from None


def check_image_batch(x: jax.Array | np.ndarray, what: str = "images") -> None:
    """Raise a one-line ValueError unless x is [B, H, W, 3] with H, W >= 32."""
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            f"{what} must be [B, H, W, 3] RGB (channels last), got shape {shape}; "
            "add a batch axis with x[None] or convert greyscale/RGBA to RGB"
        )
    if shape[1] < MIN_SIZE or shape[2] < MIN_SIZE:
        raise ValueError(f"{what} must be at least {MIN_SIZE}x{MIN_SIZE} pixels for VGG-19, got {shape[1]}x{shape[2]}")


class VGG19(nn.Module):
    """VGG-19 feature extractor.

    Attributes:
      pooling: "max" (the classifier's) or "avg" (Gatys et al. prefer it for synthesis).
      dtype: compute dtype of the convolutions (float32 or bfloat16); taps come back float32.
    """

    pooling: str = "max"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, taps: Sequence[str] = ("relu5_4",)) -> dict[str, jax.Array]:
        """x: [B, H, W, 3] float32 RGB in [0, 1], H, W >= 32. Returns {tap: [B, h, w, C] float32}."""
        if isinstance(taps, str):
            taps = (taps,)
        wanted = set(taps)
        if not wanted:
            raise ValueError("ask for at least one tap, e.g. taps=('relu4_1',)")
        last = max(layer_index(t) for t in wanted)
        check_image_batch(x)
        if self.pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {self.pooling!r}")

        pre = preprocess_constants("torchvision")
        matrix = self.variable("preprocess", "matrix", lambda: jnp.asarray(pre["matrix"])).value
        offset = self.variable("preprocess", "offset", lambda: jnp.asarray(pre["offset"])).value
        h = jnp.einsum("bhwc,dc->bhwd", x.astype(jnp.float32), matrix) + offset
        h = h.astype(self.dtype)

        out: dict[str, jax.Array] = {}
        for i, name in enumerate(LAYERS[: last + 1]):
            kind = name.rstrip("0123456789_")
            if kind == "conv":
                _, cout = CONV_CHANNELS[name]
                h = nn.Conv(cout, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name=name)(h)
            elif kind == "relu":
                h = nn.relu(h)
            else:
                pool = nn.max_pool if self.pooling == "max" else nn.avg_pool
                h = pool(h, (2, 2), strides=(2, 2), padding="VALID")
            if name in wanted:
                out[name] = h.astype(jnp.float32)
        return out


def tap_shapes(image_hw: tuple[int, int], taps: Iterable[str]) -> dict[str, tuple[int, int, int]]:
    """Spatial size and channels of each tap for an H x W input (pools floor odd sizes)."""
    h, w = image_hw
    shapes, c = {}, 3
    for name in LAYERS:
        if name.startswith("conv"):
            c = CONV_CHANNELS[name][1]
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        shapes[name] = (h, w, c)
    return {t: shapes[t] for t in taps}
