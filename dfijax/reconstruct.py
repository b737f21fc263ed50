"""Reconstruct images from their VGG-19 features, layer by layer (Mahendran & Vedaldi style).

`run_reconstruction(config, weights, images)` inverts φ_layer(x) from noise for every configured
layer, all images of a layer in one vmapped, compiled L-BFGS call, and measures each reconstruction
(PSNR to the original, losses). It prints nothing: progress goes to a callback, files are the caller's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import invert as inv
from dfijax import losses
from dfijax.losses import psnr
from dfijax.vgg import VGG19, check_image_batch, layer_index

# progress(layer, iteration, iterations, {"loss": mean loss}) every few iterations of each layer's solve.
Progress = Callable[[str, int, int, dict], None]

RECONSTRUCT_PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(size=64, iters=100),  # any device, about a minute on CPU
    "paper": dict(size=224, iters=500),
}


@dataclasses.dataclass(frozen=True)
class ReconstructConfig:
    """size: square working size (the caller loads images so); layers: the VGG-19 taps to invert,
    each on its own; iters: L-BFGS iterations from uniform noise (seeded by seed); tv: TV^β weight on
    the 0-255 scale (losses.tv_beta); backend: "jaxopt" or "optax"; dtype: the network's, "float32"
    or "bfloat16"."""

    preset: str = "quick"
    size: int = 64
    iters: int = 100
    layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    tv: float = 1e-5
    backend: str = "jaxopt"
    dtype: str = "float32"
    check_every: int = 5
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("give at least one layer to invert, e.g. relu1_1,relu2_1")
        for layer in self.layers:
            layer_index(layer)
        if self.size < 32:
            raise ValueError(f"size must be at least 32 for VGG-19, got {self.size}")
        if self.iters < 1 or self.check_every < 1:
            raise ValueError(f"iters and check_every must be >= 1, got {self.iters} and {self.check_every}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        losses.check_weights(tv=self.tv)
        if self.backend not in inv.BACKENDS:
            raise ValueError(f"unknown solver backend {self.backend!r}; use one of {inv.BACKENDS}")

    def solver(self) -> inv.SolverConfig:
        return inv.SolverConfig(maxiter=self.iters, backend=self.backend, bounds=None)

    def loss(self, layer: str) -> inv.FeatureLoss:
        model = VGG19(dtype=jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32)
        return inv.FeatureLoss(model=model, taps=(layer,), tv_weight=self.tv)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {**d, "layers": list(self.layers)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ReconstructConfig":
        bad = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if bad:
            raise ValueError(f"unknown reconstruction settings {bad} in the saved config")
        return cls(**d)


def reconstruct_config(preset: str = "quick", **overrides: Any) -> ReconstructConfig:
    """The named preset ("quick": 64 px, 100 iterations; "paper": 224 px, 500) with any field
    overridden (None values are ignored)."""
    if preset not in RECONSTRUCT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(RECONSTRUCT_PRESETS)}")
    bad = sorted(set(overrides) - {f.name for f in dataclasses.fields(ReconstructConfig)})
    if bad:
        raise ValueError(f"unknown reconstruction settings {bad}")
    return ReconstructConfig(
        preset=preset, **{**RECONSTRUCT_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    )


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
            progress(layer, int(k), config.iters, {"loss": float(jnp.mean(losses))})

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
