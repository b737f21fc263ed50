"""The DTN faces setting (photo -> cartoon; Taigman et al. 2016, section 5.2) with f = frozen VGG-19
features in place of the paper's DeepFace representation.

f(x) for x [B, S, S, 3] in [0, 1] (S >= 32, the DTN's image size): the VGG-19 activations at `taps`
(default relu3_1 and relu4_1), each average-pooled to a `grid` × `grid` map (default 2×2, which keeps
a coarse layout: hair/eyes above, mouth below), flattened and concatenated, then standardised with
statistics of the source domain fixed once before training: f = (raw - mean) * scale, where mean is
the per-feature source mean and scale is, for each tap, 1 / the root-mean-square of that tap's
per-feature standard deviations (so every tap has unit mean variance on sources and weighs the same,
and dimensions keep their relative scale). feat_dim = grid² · Σ channels (3072 for the default).

f_params = {"vgg": the VGG-19 variables (`dfijax.weights.load_vgg19().variables`), "mean": [F],
"scale": [F]}; none of it is ever trained (the DTN steps take f_params as an argument, outside the
optimised state). With no converted weights the VGG-19 is a seeded random net, NOT pretrained:
constancy then holds in a random-feature space, which says what the method does, not what a trained
face network gives.

`make_faces_dtn(nets=...)` picks g and D: "paper" (the paper's faces networks: g from f's features to
64×64 in 5 upscaling blocks with 1×1 convolutions, D of 6 stride-2 blocks on 152×152, batch norm;
`dfijax.dtn.model`) or "small" (light GroupNorm networks for CPU runs). With the paper's nets f
still sees the 64×64 images (the paper's DeepFace saw 152×152) and g's input is f's size (256 in the
paper; `VGGFeatures(("relu3_1",), grid=1)` is 256-D).

`constancy` measures identity keeping on held-out sources: L_CONST and the cosine similarity of f(s)
with f(G(s)), against f(s) with f(s') and with f(G(s')) for a random other source s', and the rate at
which f(s) is closest to f(G(s)) among all the G(s') (retrieval, chance = 1 / n).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import vgg as vgg_lib
from dfijax.batching import map_batches
from dfijax.dtn import losses as L
from dfijax.dtn.model import PAPER_G_SIZE, Discriminator, Generator, PaperDiscriminator, PaperGenerator, levels
from dfijax.dtn.networks import DTN, translate


@dataclasses.dataclass(frozen=True)
class VGGFeatures:
    """f for the DTN: standardised, grid-pooled VGG-19 taps (see the module docstring)."""

    taps: tuple[str, ...] = ("relu3_1", "relu4_1")
    grid: int = 2
    pooling: str = "max"

    def __post_init__(self):
        if isinstance(self.taps, str) or not self.taps:
            raise ValueError(f"taps must be a non-empty tuple of VGG-19 tap names, got {self.taps!r}")
        for t in self.taps:
            vgg_lib.layer_index(t)  # a clear error for unknown names
        object.__setattr__(self, "taps", tuple(sorted(set(self.taps), key=vgg_lib.layer_index)))
        if self.grid < 1:
            raise ValueError(f"grid must be at least 1, got {self.grid}")
        if self.pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {self.pooling!r}")

    @property
    def tap_dims(self) -> tuple[int, ...]:
        return tuple(self.grid * self.grid * vgg_lib.tap_shapes((64, 64), (t,))[t][2] for t in self.taps)

    @property
    def feat_dim(self) -> int:
        return sum(self.tap_dims)

    def check_size(self, size: int) -> None:
        """Raise ValueError unless every tap of a size × size input divides into grid × grid cells."""
        if size < vgg_lib.MIN_SIZE:
            raise ValueError(f"image size must be at least {vgg_lib.MIN_SIZE} for VGG-19, got {size}")
        for t, (h, w, _) in vgg_lib.tap_shapes((size, size), self.taps).items():
            if h < self.grid or h % self.grid or w % self.grid:
                raise ValueError(
                    f"VGG tap {t} is {h}x{w} for {size}x{size} images: not divisible into a "
                    f"{self.grid}x{self.grid} grid; use a shallower tap, a larger size or a smaller grid"
                )

    def raw(self, variables: Any, x: jax.Array) -> jax.Array:
        """[B, S, S, 3] in [0, 1] -> [B, feat_dim]: grid-pooled, concatenated taps (not standardised)."""
        out = vgg_lib.VGG19(pooling=self.pooling).apply(variables, x, taps=self.taps)
        parts = []
        for t in self.taps:
            a = out[t]
            b, h, w, c = a.shape
            if h % self.grid or w % self.grid:
                raise ValueError(f"VGG tap {t} is {h}x{w}: not divisible into a {self.grid}x{self.grid} grid")
            a = a.reshape(b, self.grid, h // self.grid, self.grid, w // self.grid, c).mean(axis=(2, 4))
            parts.append(a.reshape(b, -1))
        return jnp.concatenate(parts, -1)

    def features(self, f_params: Any, x: jax.Array) -> jax.Array:
        """f(x): [B, S, S, 3] in [0, 1] -> [B, feat_dim], standardised with the frozen source statistics."""
        return (self.raw(f_params["vgg"], x) - f_params["mean"][None]) * f_params["scale"][None]


_raw_jit = jax.jit(lambda f, variables, x: f.raw(variables, x), static_argnums=(0,))
_features_jit = jax.jit(lambda f, f_params, x: f.features(f_params, x), static_argnums=(0,))


def make_f_params(f: VGGFeatures, vgg_variables: Any, calibration: np.ndarray, batch: int = 64) -> dict:
    """f_params from the VGG variables and source images [N, S, S, 3] (N >= 2) that fix the
    standardisation (see the module docstring)."""
    if len(calibration) < 2:
        raise ValueError(f"need at least 2 calibration images, got {len(calibration)}")
    f.check_size(calibration.shape[1])
    raw = map_batches(lambda c: _raw_jit(f, vgg_variables, c), np.asarray(calibration, np.float32), batch)
    raw = raw.astype(np.float64)
    mean, std = raw.mean(0), raw.std(0)
    scale, start = np.empty_like(mean), 0
    for d in f.tap_dims:
        rms = np.sqrt(np.mean(np.square(std[start : start + d])))
        scale[start : start + d] = 1.0 / max(rms, 1e-12)
        start += d
    return {"vgg": vgg_variables, "mean": jnp.asarray(mean, jnp.float32), "scale": jnp.asarray(scale, jnp.float32)}


def features(f: VGGFeatures, f_params: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """f(x) for [N, S, S, 3] in batches -> [N, feat_dim]."""
    return map_batches(lambda c: _features_jit(f, f_params, c), np.asarray(x, np.float32), batch)


NETS = ("paper", "small")


def make_faces_dtn(
    weights: L.DTNWeights = L.PRESETS["faces"],
    f: VGGFeatures = VGGFeatures(),
    size: int = 64,
    width: int = 32,
    d_width: int = 32,
    nets: str = "small",
) -> DTN:
    """A DTN for size × size RGB faces (g: f's features -> size × size; D on size × size targets).

    nets: "small" (the project's light GroupNorm nets, `Generator` and `Discriminator`, any power-of-two
    size >= 32) or "paper" (the paper's faces nets, `PaperGenerator` to 64×64 and `PaperDiscriminator`
    on 152×152 with batch norm; size must be 64, the paper's widths are width = d_width = 64)."""
    if nets not in NETS:
        raise ValueError(f"unknown DTN networks {nets!r}; choose from {', '.join(NETS)}")
    if width < 1 or d_width < 1:
        raise ValueError(f"widths must be positive, got {width}, {d_width}")
    f.check_size(size)
    levels(size, "image")  # a power of two >= 32
    if nets == "paper":
        if size != PAPER_G_SIZE:
            raise ValueError(
                f"the paper's networks make {PAPER_G_SIZE}x{PAPER_G_SIZE} images, got size {size}; "
                f"use size {PAPER_G_SIZE} or the small networks"
            )
        return DTN(f, PaperGenerator(width), PaperDiscriminator(d_width, weights.num_classes), weights)
    return DTN(f, Generator(width, 3, size), Discriminator(d_width, weights.num_classes), weights)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-8)


def constancy(
    dtn: DTN, f_params: Any, g_params: Any, sources: np.ndarray, seed: int = 0, batch: int = 64, g_stats: Any = None
) -> dict[str, float]:
    """Identity keeping on sources [N, S, S, 3] (N >= 2), in f's space:

    const_mse: mean (f(s) - f(G(s)))² (held-out L_CONST with d = MSE), const_mse_random_pair: the
    same between f(s) and f(s') for a random other source s' (a deranged pairing); cos_s_gs: mean
    cosine(f(s), f(G(s))), against cos_s_other_s (f(s), f(s')) and cos_s_other_gs (f(s), f(G(s')));
    retrieval_top1: how often G(s) is, of all the G(s'), the one whose f is closest (cosine) to f(s);
    chance = 1 / N. g_stats: g's running batch statistics when g has batch norm (`DTNState.g_stats`)."""
    n = len(sources)
    if n < 2:
        raise ValueError(f"need at least 2 sources, got {n}")
    f_s = features(dtn.f, f_params, sources, batch).astype(np.float64)
    gs = translate(dtn, f_params, g_params, sources, batch, g_stats)
    f_gs = features(dtn.f, f_params, gs, batch).astype(np.float64)
    r = np.random.default_rng(seed)
    order = r.permutation(n)
    other = np.empty(n, int)
    other[order] = np.roll(order, 1)  # a derangement: other[i] != i
    cos = _unit(f_s) @ _unit(f_gs).T  # [i, j] = cosine(f(s_i), f(G(s_j)))
    return {
        "n": int(n),
        "const_mse": float(np.mean(np.square(f_s - f_gs))),
        "const_mse_random_pair": float(np.mean(np.square(f_s - f_s[other]))),
        "cos_s_gs": float(np.mean(np.diag(cos))),
        "cos_s_other_s": float(np.mean(np.sum(_unit(f_s) * _unit(f_s[other]), -1))),
        "cos_s_other_gs": float(np.mean(cos[np.arange(n), other])),
        "retrieval_top1": float(np.mean(np.argmax(cos, 1) == np.arange(n))),
        "retrieval_chance": 1.0 / n,
    }


def parse_taps(text: str | Sequence[str]) -> tuple[str, ...]:
    """'relu3_1,relu4_1' -> ('relu3_1', 'relu4_1') (validated)."""
    taps = tuple(t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip())
    if not taps:
        raise ValueError("give at least one VGG-19 tap, e.g. relu4_1")
    for t in taps:
        vgg_lib.layer_index(t)
    return taps
