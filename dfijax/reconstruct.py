"""Reconstruct images from their VGG-19 features, layer by layer (Mahendran & Vedaldi style).

`run_reconstruction(config, weights, images)` inverts φ_layer(x) from noise for every configured
layer, all images of a layer in one vmapped, compiled L-BFGS call, and measures each reconstruction
(PSNR to the original, losses). It prints nothing: progress goes to a callback, files are the caller's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from dfijax import config
from dfijax import invert as inv
from dfijax.losses import psnr
from dfijax.vgg import VGG19, check_image_batch, layer_index

# progress(layer, iteration, iterations, {"loss": mean loss}) every few iterations of each layer's solve.
Progress = Callable[[str, int, int, dict], None]

PRESET_NAMES = ("quick", "paper", "tiny")  # RECONSTRUCT_PRESETS', below the class


@dataclasses.dataclass(frozen=True)
class ReconstructConfig:
    """Inverting each layer's features on its own, from uniform noise (seeded by seed)."""

    RENAMED: ClassVar[dict[str, str]] = {"tv": "tv_weight"}

    preset: Literal[PRESET_NAMES] = "quick"
    """quick: 64 px, 100 iterations; paper: 224 px, 500 iterations; tiny: 32 px, 8, two layers; flags
    override"""
    size: Annotated[int, config.Bounds(ge=32)] = 64
    """square working size in pixels (photos are centre-cropped)"""
    iters: Annotated[int, config.POSITIVE] = 100
    """L-BFGS iterations"""
    layers: Annotated[tuple[str, ...], config.comma_list(str)] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    """comma-separated VGG-19 taps, each inverted on its own"""
    tv_weight: Annotated[float, config.NONNEG, config.flag(aliases=("--tv",))] = 1e-5
    """TV^2 weight on the 0-255 scale (losses.tv_beta)"""
    backend: Literal[inv.BACKENDS] = "jaxopt"
    """L-BFGS implementation"""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """the network's dtype"""
    check_every: Annotated[int, config.POSITIVE, tyro.conf.Suppress] = 5
    seed: int = 0
    """random seed of the noise start and the random net"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if not self.layers:
            raise ValueError("give at least one layer to invert, e.g. relu1_1,relu2_1")
        for layer in self.layers:
            layer_index(layer)

    def solver(self) -> inv.SolverConfig:
        return inv.SolverConfig(maxiter=self.iters, backend=self.backend, bounds=None)

    def loss(self, layer: str) -> inv.FeatureLoss:
        model = VGG19(dtype=jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32)
        return inv.FeatureLoss(model=model, taps=(layer,), tv_weight=self.tv_weight)


RECONSTRUCT_PRESETS: dict[str, ReconstructConfig] = config.registry(
    config.Preset("quick", ReconstructConfig(), "64 px, 100 iterations: any device, about a minute on a CPU"),
    config.Preset("paper", ReconstructConfig(preset="paper", size=224, iters=500), "224 px, 500 iterations"),
    config.Preset(
        "tiny",
        ReconstructConfig(preset="tiny", size=32, iters=8, layers=("relu1_1", "relu2_1")),
        "the tests': 32 px, 8 iterations, two layers (seconds)",
    ),
    names=PRESET_NAMES,
)


def reconstruct_config(preset: str = "quick", **overrides: Any) -> ReconstructConfig:
    """The named preset ("quick": 64 px, 100 iterations; "paper": 224 px, 500) with any field
    overridden (None values are ignored)."""
    return config.preset(ReconstructConfig, RECONSTRUCT_PRESETS, preset, **overrides)


@dataclasses.dataclass
class ReconstructResult:
    """images: [N, S, S, 3] the originals; reconstructions: {layer: [N, S, S, 3] in [0, 1]};
    per layer: psnr_db [N], initial_loss / final_loss [N], loss_history [N, iters + 1], seconds
    (including compilation)."""

    config: ReconstructConfig
    images: np.ndarray
    reconstructions: dict[str, np.ndarray]
    psnr_db: dict[str, list[float]]
    initial_loss: dict[str, list[float]]
    final_loss: dict[str, list[float]]
    loss_history: dict[str, np.ndarray]
    seconds: dict[str, float]


def run_reconstruction(
    config: ReconstructConfig, weights: Any, images: np.ndarray | Sequence[np.ndarray], progress: Progress | None = None
) -> ReconstructResult:
    """Invert every layer's features of images [N, S, S, 3] in [0, 1] (S = config.size) from the same
    noise. weights: a dfijax.weights.VGGWeights."""
    progress = progress or (lambda *a: None)
    x = jnp.asarray(np.asarray(images, np.float32))
    check_image_batch(x, "images")
    x0 = inv.noise_init(jax.random.key(config.seed), x.shape)
    out = ReconstructResult(config, np.asarray(x), {}, {}, {}, {}, {}, {})
    for layer in config.layers:
        t0 = time.perf_counter()
        loss = config.loss(layer)
        targets = inv.feature_targets(loss, weights.variables, x)

        def report(k, losses, layer=layer):
            progress(layer, int(k), config.iters, {"loss": float(np.nanmean(np.asarray(losses)))})

        r = inv.invert(
            loss, weights.variables, targets, x0, config.solver(), progress=report, check_every=config.check_every
        )
        rec = np.clip(np.asarray(r.images), 0, 1)
        out.reconstructions[layer] = rec
        out.psnr_db[layer] = [float(psnr(rec[i], out.images[i])) for i in range(len(rec))]
        out.final_loss[layer] = np.asarray(r.final_loss).tolist()
        out.initial_loss[layer] = np.asarray(r.loss_history[:, 0]).tolist()
        out.loss_history[layer] = np.asarray(r.loss_history)
        out.seconds[layer] = time.perf_counter() - t0
    return out
