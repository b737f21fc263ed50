"""A pure-function VGG-16 / VGG-19 in Flax that returns named activations.

`VGG19().apply(variables, x, taps=("relu3_1", "relu4_1"))` (or `VGG16()`, i.e. `VGG(depth=16)`) returns
a dict of the requested taps and computes nothing past the deepest one. The preprocessing a weight
file expects (torchvision's RGB mean/std, or Caffe's BGR 0-255 minus mean) lives in the variables,
under the `preprocess` collection, so weights and preprocessing cannot be mismatched by the caller.

Pools round odd sizes down (`pool_rounding="floor"`, torch's nn.MaxPool2d, the Gatys notebook) or up
("ceil": Caffe's pooling_layer.cpp, Chainer's cover_all, loadcaffe's `:ceil()`, i.e. the DFI, video and
fast-style references): the last window then hangs over the bottom/right edge and pools what it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dfijax.shapes import Images

# (block, convs, channels) of each net's feature extractor.
ARCHS: dict[int, tuple[tuple[int, int, int], ...]] = {
    16: ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)),
    19: ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512)),
}
DEPTHS = tuple(ARCHS)


def _check_depth(depth: int) -> int:
    if depth not in ARCHS:
        raise ValueError(f"VGG depth must be one of {DEPTHS}, got {depth!r}")
    return depth


def conv_names(depth: int = 19) -> tuple[str, ...]:
    """conv1_1, ..., conv5_3 (VGG-16) or conv5_4 (VGG-19)."""
    return tuple(f"conv{b}_{l}" for b, n, _ in ARCHS[_check_depth(depth)] for l in range(1, n + 1))


def conv_channels(depth: int = 19) -> dict[str, tuple[int, int]]:
    """{conv name: (Cin, Cout)}."""
    out, cin = {}, 3
    for b, n, c in ARCHS[_check_depth(depth)]:
        for l in range(1, n + 1):
            out[f"conv{b}_{l}"] = (cin, c)
            cin = c
    return out


def layers(depth: int = 19) -> tuple[str, ...]:
    """Every tap in forward order: conv (pre-ReLU), relu, and a pool after each block's last conv."""
    return tuple(
        name
        for b, n, _ in ARCHS[_check_depth(depth)]
        for l in range(1, n + 1)
        for name in ((f"conv{b}_{l}", f"relu{b}_{l}") + ((f"pool{b}",) if l == n else ()))
    )


_LAYER_INDEX = {d: {name: i for i, name in enumerate(layers(d))} for d in DEPTHS}

# VGG-19's tables, the project's default net.
BLOCKS = ARCHS[19]
CONV_NAMES: tuple[str, ...] = conv_names(19)
CONV_CHANNELS: dict[str, tuple[int, int]] = conv_channels(19)
LAYERS: tuple[str, ...] = layers(19)

MIN_SIZE = 32
POOL_ROUNDINGS = ("floor", "ceil")

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


def check_pool_rounding(rounding: str) -> str:
    if rounding not in POOL_ROUNDINGS:
        raise ValueError(f"pool_rounding must be one of {POOL_ROUNDINGS}, got {rounding!r}")
    return rounding


def pooled_size(n: int, rounding: str = "floor") -> int:
    """Length after a 2x2, stride-2 pool over n: floor(n/2), or ceil(n/2) as Caffe computes it,
    ceil((n + 2·pad − kernel)/stride) + 1 with pad 0 (pooling_layer.cpp)."""
    return n // 2 if check_pool_rounding(rounding) == "floor" else -(-n // 2)


def layer_index(name: str, depth: int = 19) -> int:
    """Position of a tap in forward order in VGG-`depth`; a clear error for unknown names."""
    try:
        return _LAYER_INDEX[_check_depth(depth)][name]
    except KeyError:
        last = conv_names(depth)[-1][4:]
        raise ValueError(
            f"unknown VGG-{depth} tap {name!r}; valid taps are conv1_1..conv{last}, relu1_1..relu{last}, pool1..pool5"
        ) from None


def check_image_batch(x: jax.Array | np.ndarray, what: str = "images", net: str = "VGG-19") -> None:
    """Raise a one-line ValueError unless x is [B, H, W, 3] with H, W >= 32."""
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            f"{what} must be [B, H, W, 3] RGB (channels last), got shape {shape}; "
            "add a batch axis with x[None] or convert greyscale/RGBA to RGB"
        )
    if shape[1] < MIN_SIZE or shape[2] < MIN_SIZE:
        raise ValueError(f"{what} must be at least {MIN_SIZE}x{MIN_SIZE} pixels for {net}, got {shape[1]}x{shape[2]}")


def zero_colour(variables: dict) -> np.ndarray:
    """The RGB colour in [0, 1] that these weights' preprocessing maps to zero (their mean colour)."""
    pre = variables["preprocess"]
    return np.linalg.solve(np.asarray(pre["matrix"], np.float64), -np.asarray(pre["offset"], np.float64))


def fit_to_quantum(image: np.ndarray, fill: np.ndarray, quantum: int = 64) -> tuple[np.ndarray, tuple[int, int]]:
    """deepfeatinterp's torch backend (deepmodels_torch.py FitToQuantum): an image [H, W, 3] padded, centred,
    to the next multiple of `quantum` on each side with `fill` (its zeros in the network's input space:
    `zero_colour`); the odd pixel goes to the bottom/right. Returns (padded, (top, left)); crop back with
    `unfit_from_quantum`."""
    h, w = image.shape[:2]
    top = (quantum - h % quantum) // 2 if h % quantum else 0
    left = (quantum - w % quantum) // 2 if w % quantum else 0
    out = np.empty((-(-h // quantum) * quantum, -(-w // quantum) * quantum, image.shape[2]), np.float32)
    out[...] = np.asarray(fill, np.float32)
    out[top : top + h, left : left + w] = image
    return out, (top, left)


def unfit_from_quantum(padded: np.ndarray, hw: tuple[int, int], quantum: int = 64) -> np.ndarray:
    """The [H, W] image `fit_to_quantum` padded (deepmodels_torch.py unfit_from_quantum)."""
    h, w = hw
    top = (quantum - h % quantum) // 2 if h % quantum else 0
    left = (quantum - w % quantum) // 2 if w % quantum else 0
    return padded[top : top + h, left : left + w]


class VGG(nn.Module):
    """VGG-16 or VGG-19 feature extractor.

    Attributes:
      depth: 16 (conv1_1..conv5_3) or 19 (conv1_1..conv5_4).
      pooling: "max" (the classifier's) or "avg" (Gatys et al. prefer it for synthesis).
      dtype: compute dtype of the convolutions (float32 or bfloat16); taps come back float32.
      pool_rounding: "floor" or "ceil" for odd sizes (see the module doc); a ceil average pool divides
        by the pixels its window covers, as Caffe and torch do without padding.
    """

    pooling: str = "max"
    dtype: jnp.dtype = jnp.float32
    depth: int = 19  # after pooling and dtype, so VGG19("avg") keeps meaning pooling="avg"
    pool_rounding: str = "floor"

    @nn.compact
    def __call__(self, x: Images, taps: Sequence[str] = ("relu5_4",)) -> dict[str, jax.Array]:
        """x: [B, H, W, 3] float32 RGB in [0, 1], H, W >= 32. Returns {tap: [B, h, w, C] float32}."""
        if isinstance(taps, str):
            taps = (taps,)
        wanted = set(taps)
        if not wanted:
            raise ValueError("ask for at least one tap, e.g. taps=('relu4_1',)")
        last = max(layer_index(t, self.depth) for t in wanted)
        check_image_batch(x, net=f"VGG-{self.depth}")
        if self.pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {self.pooling!r}")
        ceil = check_pool_rounding(self.pool_rounding) == "ceil"

        pre = preprocess_constants("torchvision")
        matrix = self.variable("preprocess", "matrix", lambda: jnp.asarray(pre["matrix"])).value
        offset = self.variable("preprocess", "offset", lambda: jnp.asarray(pre["offset"])).value
        h = jnp.einsum("bhwc,dc->bhwd", x.astype(jnp.float32), matrix) + offset[None, None, None, :]
        h = h.astype(self.dtype)

        channels = conv_channels(self.depth)
        out: dict[str, jax.Array] = {}
        for name in layers(self.depth)[: last + 1]:
            kind = name.rstrip("0123456789_")
            if kind == "conv":
                _, cout = channels[name]
                h = nn.Conv(cout, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name=name)(h)
            elif kind == "relu":
                h = nn.relu(h)
            else:
                # ceil: pad the odd edge; max pools pad with -inf, the average divides by what is covered
                pad = ((0, h.shape[1] % 2), (0, h.shape[2] % 2)) if ceil else "VALID"
                if self.pooling == "max":
                    h = nn.max_pool(h, (2, 2), strides=(2, 2), padding=pad)
                else:
                    h = nn.avg_pool(h, (2, 2), strides=(2, 2), padding=pad, count_include_pad=False)
            if name in wanted:
                out[name] = h.astype(jnp.float32)
        return out


class VGG16(VGG):
    """VGG-16 feature extractor (Johnson et al.'s loss network); see VGG."""

    depth: int = 16


class VGG19(VGG):
    """VGG-19 feature extractor; see VGG."""

    depth: int = 19


def tap_shapes(
    image_hw: tuple[int, int], taps: Iterable[str], depth: int = 19, pool_rounding: str = "floor"
) -> dict[str, tuple[int, int, int]]:
    """Spatial size and channels of each tap for an H x W input (pools round odd sizes as pool_rounding)."""
    h, w = image_hw
    shapes, c = {}, 3
    channels = conv_channels(depth)
    for name in layers(depth):
        if name.startswith("conv"):
            c = channels[name][1]
        elif name.startswith("pool"):
            h, w = pooled_size(h, pool_rounding), pooled_size(w, pool_rounding)
        shapes[name] = (h, w, c)
    for t in taps:
        layer_index(t, depth)
    return {t: shapes[t] for t in taps}
