"""Attribute probe: a small CNN trained on a face dataset's attributes, to score DFI outputs.

It measures what an edit does to the attribute (the target's probability should rise with α) apart
from how far the image moved. Trained once per (dataset, size, steps, seed) and cached with orbax.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from dfijax import batching, training
from dfijax.data import FaceDataset

METRICS_FILE = "metrics.json"


class ProbeCNN(nn.Module):
    """[B, S, S, 3] in [0, 1] -> [B, A] attribute logits (or, features_only, the pooled [B, 4·width]
    penultimate features the head reads)."""

    num_attrs: int
    width: int = 32
    features_only: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x - 0.5
        for i, mult in enumerate((1, 2, 4, 4)):
            h = nn.Conv(self.width * mult, (3, 3), strides=(2, 2), name=f"conv{i}")(h)
            h = nn.gelu(h)
        h = jnp.mean(h, axis=(1, 2))
        if self.features_only:
            return h
        return nn.Dense(self.num_attrs, name="head")(h)


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Probe training: image size, steps, batch, Adam's lr, training images (the first n_train), seed."""

    size: int = 64
    steps: int = 300
    batch: int = 64
    lr: float = 3e-3
    n_train: int = 2000
    seed: int = 0


def _loss(params, apply, x, y):
    logits = apply({"params": params}, x)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y)), logits


def make_train_step(model: ProbeCNN):
    """Pure (state, (images [B, S, S, 3], attributes [B, A] in {0, 1}), rng) -> (state, metrics), rng
    already folded with the step (random left-right flips); a non-finite loss leaves the state unchanged."""

    def step(state: train_state.TrainState, batch: tuple[jax.Array, jax.Array], rng: jax.Array):
        x, y = batch
        flip = jax.random.bernoulli(rng, 0.5, (x.shape[0], 1, 1, 1))
        x = jnp.where(flip, x[:, :, ::-1], x)  # faces are left-right symmetric in their attributes
        (loss, logits), grads = jax.value_and_grad(_loss, has_aux=True)(state.params, model.apply, x, y)
        new = state.apply_gradients(grads=grads)
        ok = jnp.isfinite(loss)
        new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
        acc = jnp.mean((logits > 0) == (y > 0.5))
        return new, {"loss": loss, "accuracy": acc, "finite": ok}

    return jax.jit(step, donate_argnums=(0,))


@dataclasses.dataclass
class Probe:
    model: ProbeCNN
    params: Any
    attr_names: tuple[str, ...]
    size: int
    metrics: dict

    def scores(self, images: np.ndarray | jax.Array) -> np.ndarray:
        """[B, H, W, 3] in [0, 1] -> [B, A] probabilities (images resized to the probe's size)."""
        x = jnp.asarray(images, jnp.float32)
        return np.asarray(jax.nn.sigmoid(batching.apply_params(self.model, self.params, self._resized(x))))

    def embed(self, images: np.ndarray | jax.Array) -> np.ndarray:
        """[B, H, W, 3] in [0, 1] -> [B, 4·width] penultimate features (before the attribute head)."""
        model = self.model.clone(features_only=True)
        return np.asarray(batching.apply_params(model, self.params, self._resized(jnp.asarray(images, jnp.float32))))

    def head(self) -> tuple[np.ndarray, np.ndarray]:
        """The attribute head: kernel [F, A] and bias [A] (logits = embed(x) @ kernel + bias)."""
        return np.asarray(self.params["head"]["kernel"]), np.asarray(self.params["head"]["bias"])

    def _resized(self, x: jax.Array) -> jax.Array:
        if x.shape[1:3] != (self.size, self.size):
            x = jax.image.resize(x, (x.shape[0], self.size, self.size, 3), "linear")
        return x


def train_probe(
    data: FaceDataset,
    config: ProbeConfig = ProbeConfig(),
    cache_dir: str | pathlib.Path | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> tuple[Probe, bool]:
    """Train (or restore from cache_dir) a probe on the dataset's attributes. Returns (probe, cached).

    Trains on the first n_train images (a batch of random ones per step, a pure function of the step),
    holds out the next 10% for the reported accuracy. The cache holds one folder per (dataset, size,
    steps, batch, training images, seed); an interrupted training resumes there. progress(step, record)
    every 25 steps.
    """
    model = ProbeCNN(len(data.attr_names))
    n_train = min(config.n_train, len(data))
    n_val = max(1, min(len(data) - n_train, n_train // 10)) if len(data) > n_train else 0
    init = model.init(jax.random.key(config.seed), jnp.zeros((1, config.size, config.size, 3)))["params"]
    state = train_state.TrainState.create(apply_fn=model.apply, params=init, tx=optax.adam(config.lr))
    key = f"{data.name}-s{config.size}-t{config.steps}-b{config.batch}-n{n_train}-seed{config.seed}-v2"
    ck = None
    if cache_dir is not None:
        ck = training.Checkpointer(pathlib.Path(cache_dir) / key, keep=1, save_every=None, config=config)
        metrics_file = ck.directory / METRICS_FILE
        if ck.latest_step == config.steps and metrics_file.is_file():
            state, _ = ck.restore_or(state)
            ck.close()
            return Probe(model, state.params, data.attr_names, config.size, json.loads(metrics_file.read_text())), True
    x_all = data.images(range(n_train + n_val), config.size)
    y_all = (data.attrs[: n_train + n_val] > 0).astype(np.float32)

    def batches(i: int) -> tuple[jax.Array, jax.Array]:
        idx = np.random.default_rng([config.seed, i]).integers(0, n_train, config.batch)
        return jnp.asarray(x_all[idx]), jnp.asarray(y_all[idx])

    try:
        state, records = training.fit(
            make_train_step(model),
            state,
            batches,
            config.steps,
            ck,
            rng=jax.random.key(config.seed),
            log_every=25,
            progress=(lambda i, r: r and progress(i, r)) if progress else None,
        )
    finally:
        if ck is not None:
            ck.close()
    # the last step's loss (recomputed after the step when a resumed run had no step left to take)
    last = records[-1]["loss"] if records else float(_loss(state.params, model.apply, *batches(config.steps - 1))[0])
    metrics = {"train_loss": last, "steps": config.steps}
    if n_val:
        p = Probe(model, state.params, data.attr_names, config.size, {})
        pred = p.scores(x_all[n_train:]) > 0.5
        acc = (pred == (y_all[n_train:] > 0.5)).mean(0)
        metrics["val_accuracy"] = {a: float(v) for a, v in zip(data.attr_names, acc)}
    if ck is not None and training.is_main():
        metrics_file.write_text(json.dumps(metrics, indent=2))
    return Probe(model, state.params, data.attr_names, config.size, metrics), False
