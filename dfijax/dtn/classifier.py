"""The digit classifiers of the DTN: f on the source domain (trained, then frozen) and the evaluation
classifier on the target domain, whose accuracy on G(source) against the source labels is the
transfer accuracy (the paper's digits metric).

Images are [N, 32, 32, 3] float32 in [0, 1], labels [N] int32 0-9. Training runs on `training.fit`
over every device of every process (`fitting.fit_on_mesh`); a finished run can be cached on disk.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pathlib
from typing import Annotated, Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from dfijax import config, training
from dfijax.batching import apply_params, map_batches
from dfijax.dtn.fitting import adam, check_images, fit_on_mesh
from dfijax.dtn.model import SIZE, DigitClassifier
from dfijax.dtn.networks import DTN, translate

TrainState = train_state.TrainState
Batch = tuple[jax.Array, jax.Array]
CLASSIFIER_METRICS = "classifier_metrics.json"


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """A digit classifier's training run (f on the source domain, or the target-domain evaluation
    classifier) and its network (`DigitClassifier(width, feat_dim)`)."""

    steps: Annotated[int, config.POSITIVE] = 600
    """training steps"""
    batch: Annotated[int, config.POSITIVE] = 64
    """batch size"""
    lr: Annotated[float, config.Bounds(gt=0)] = 1e-3
    """Adam learning rate"""
    shift: Annotated[int, config.NONNEG] = 2
    """random translation of up to ±shift px (augmentation)"""
    seed: int = 0
    """random seed (initialisation, batches, translations)"""
    width: Annotated[int, config.POSITIVE] = 32
    """base width of the network"""
    feat_dim: Annotated[int, config.POSITIVE] = 128
    """feature size"""

    def __post_init__(self):
        config.check(self)

    def model(self) -> DigitClassifier:
        return DigitClassifier(width=self.width, feat_dim=self.feat_dim)


def _shift(x: jax.Array, rng: jax.Array, k: int) -> jax.Array:
    """Translate each image of [B, H, W, C] by up to ±k px (zero-padded with the border colour)."""
    if k == 0:
        return x
    b, h, w, _ = x.shape
    pad = jnp.pad(x, ((0, 0), (k, k), (k, k), (0, 0)), mode="edge")
    off = jax.random.randint(rng, (b, 2), 0, 2 * k + 1)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(pad, off)


@functools.lru_cache(maxsize=16)  # one compilation per (model, shift) and process
def make_classifier_step(model: DigitClassifier, shift: int = 2) -> Callable:
    """Pure (state, (x [B,32,32,3], y [B]), rng) -> (state, metrics), rng already folded with the step
    (the translations); non-finite steps are skipped."""

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        x, y = batch
        x = _shift(x, rng, shift)

        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        ok = training.all_finite(loss, grads)
        new = training.nan_guard(state.apply_gradients(grads=grads), state, ok)
        return new, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == y), "finite": ok.astype(jnp.float32)}

    return jax.jit(step, donate_argnums=(0,))


@functools.partial(jax.jit, static_argnums=(0,))
def _init_classifier(model: DigitClassifier, seed: jax.Array):
    return model.init(jax.random.key(seed, impl="rbg"), jnp.zeros((1, SIZE, SIZE, 3)))["params"]


def predict(model: DigitClassifier, params: Any, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """[N, 32, 32, 3] -> [N] predicted labels."""
    logits = map_batches(lambda c: apply_params(model, params, c), np.asarray(x, np.float32), batch)
    return np.argmax(logits, -1).astype(np.int32)


def accuracy(model: DigitClassifier, params: Any, x: np.ndarray, y: np.ndarray, batch: int = 250) -> float:
    return float(np.mean(predict(model, params, x, batch) == np.asarray(y)))


def transfer_accuracy(
    dtn: DTN,
    f_params: Any,
    g_params: Any,
    clf: DigitClassifier,
    clf_params: Any,
    x_source: np.ndarray,
    y_source: np.ndarray,
) -> float:
    """The paper's digits metric: the target-domain classifier's accuracy on G(source) against the
    source labels."""
    return accuracy(clf, clf_params, translate(dtn, f_params, g_params, x_source), y_source)


def _digest(cfg: Any, *arrays: np.ndarray) -> str:
    """A short hash of a config and arrays: the name of a cache folder."""
    h = hashlib.sha1(json.dumps(config.to_dict(cfg), sort_keys=True).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def train_classifier(
    config: ClassifierConfig,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    cache_dir: str | os.PathLike | None = None,
    name: str = "classifier",
    mesh: jax.sharding.Mesh | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> tuple[Any, dict, bool]:
    """Train `config.model()` on (x [N, 32, 32, 3] in [0, 1], y [N] int labels) with `training.fit` over
    the mesh (minibatch i: seeded random rows, a function of i). With cache_dir, the run lives in
    cache_dir/<name>-<hash of config and data> (checkpoints and config via `training.Checkpointer`, the
    metrics as JSON): a finished run is read back, an interrupted one resumes. progress(step, record)
    every 25 steps. Returns (params on this process's first device, metrics {train_loss, steps,
    n_train, test_accuracy?, n_test?}, from_cache)."""
    check_images(x, "classifier training")
    model = config.model()
    template = TrainState.create(apply_fn=None, params=_init_classifier(model, config.seed), tx=adam(config.lr, 0.9))
    ck = None
    if cache_dir is not None:
        folder = pathlib.Path(cache_dir) / f"{name}-{_digest(config, x, y)}"
        ck = training.Checkpointer(folder, keep=1, save_every=None, config=config)
        done = ck.directory / CLASSIFIER_METRICS
        if ck.latest_step == config.steps and done.is_file():
            state, _ = ck.restore_or(training.replicate(template, mesh or training.global_mesh()))
            ck.close()
            return training.local_copy(state.params), json.loads(done.read_text()), True

    def batches(i: int) -> Batch:
        idx = np.random.default_rng([config.seed, i]).integers(0, len(x), config.batch)
        return np.asarray(x[idx], np.float32), np.asarray(y[idx], np.int32)

    try:
        state, records = fit_on_mesh(
            make_classifier_step(model, config.shift),
            template,
            batches,
            config.steps,
            ck,
            rng=jax.random.key(config.seed),
            mesh=mesh,
            log_every=25,
            progress=(lambda i, r: r and progress(i, r)) if progress else None,
        )
    finally:
        if ck is not None:
            ck.close()
    params = training.local_copy(state.params)
    metrics = {"train_loss": records[-1]["loss"] if records else None, "steps": config.steps}
    metrics["n_train"] = int(len(x))
    if eval_set is not None:
        metrics["test_accuracy"] = accuracy(model, params, *eval_set)
        metrics["n_test"] = int(len(eval_set[0]))
    if ck is not None and training.is_main():
        (ck.directory / CLASSIFIER_METRICS).write_text(json.dumps(metrics, indent=2))
    return params, metrics, False
