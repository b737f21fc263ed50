"""Training a DTN: a run's batches (`dtn_batches`), its training on `training.fit` over all devices
(`train_dtn`, resuming from its checkpoints), and reading a run back (`restore`, `records`).

The parts live beside it and are importable from here too: the classifiers and the transfer accuracy
(`classifier`), the state and the jitted D/G steps (`steps`), a run's settings (`config.DTNConfig`),
the image check and `training.fit` over the mesh (`fitting`).

Many processes: `train_dtn` and `train_classifier` run on a mesh of every device of every process
(`training.global_mesh`), the state replicated, each global batch a pure function of the step of which
each process puts its own rows; only process 0 writes the metrics log and JSON. Every process of a job
calls them with the same arguments.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Sequence

import jax
import numpy as np

from dfijax import training
from dfijax.dtn.classifier import (  # noqa: F401  (re-exported)
    CLASSIFIER_METRICS,
    ClassifierConfig,
    accuracy,
    make_classifier_step,
    predict,
    train_classifier,
    transfer_accuracy,
)
from dfijax.dtn.config import DOMAINS, DTNConfig  # noqa: F401  (re-exported)
from dfijax.dtn.fitting import check_images, fit_on_mesh
from dfijax.dtn.networks import DTN, apply_net, make_dtn, structure, translate, uses_batch_stats  # noqa: F401
from dfijax.dtn.steps import (  # noqa: F401  (re-exported)
    Batch,
    DTNState,
    TrainState,
    d_objective,
    g_objective,
    init_state,
    make_d_step,
    make_g_step,
    make_train_step,
)


def dtn_batches(config: DTNConfig, source: np.ndarray, target: np.ndarray) -> Callable[[int], Batch]:
    """batches(i) -> (config.run.batch random source images, config.run.batch random target images), the
    global batch of iteration i, a pure function of (seed, i)."""

    def batches(i: int) -> Batch:
        r = np.random.default_rng([config.run.seed, 7, i])
        return source[r.integers(0, len(source), config.run.batch)], target[
            r.integers(0, len(target), config.run.batch)
        ]

    return batches


METRICS = "metrics.jsonl"


def train_dtn(
    config: DTNConfig,
    f_params: Any,
    source: np.ndarray,
    target: np.ndarray,
    directory: str | os.PathLike,
    *,
    hooks: Sequence[training.Hook] = (),
    milestones: Sequence[int] = (),
    mesh: jax.sharding.Mesh | None = None,
    progress: Callable[[int, dict | None], None] | None = None,
) -> tuple[DTNState, int]:
    """Train `config.build()` to config.run.steps iterations on source and target images ([N, S, S, 3] in
    [0, 1], S = config.size; batches from `dtn_batches`), resuming from the newest checkpoint in
    `directory` (where the config is saved; other settings: CheckpointMismatch). Runs on every device of
    every process (or `mesh`), parameters replicated, each process putting its rows of each batch;
    every process of a job calls it with the same arguments. Metrics every log_every iterations to
    directory/metrics.jsonl (process 0); hooks and milestones as in `training.fit` (a hook's state is
    replicated: `training.local_copy` it to evaluate). Returns (the replicated state, the step it resumed from)."""
    dtn = config.build()
    check_images(source, "source", config.size)
    check_images(target, "target", config.size)
    mesh = mesh or training.global_mesh()
    training.process_rows(mesh, config.run.batch)  # the batch must split over the mesh
    step = make_train_step(dtn, training.replicate(f_params, mesh), config.run.g_steps)
    directory = pathlib.Path(directory).absolute()
    log = training.MetricsLog(directory / METRICS)
    try:
        with training.Checkpointer(directory, keep=config.keep, save_every=config.run.save_every, config=config) as ck:
            start = min(ck.latest_step or 0, config.run.steps)
            state, _ = fit_on_mesh(
                step,
                config.init(),
                dtn_batches(config, source, target),
                config.run.steps,
                ck,
                rng=jax.random.key(config.run.seed),
                mesh=mesh,
                log=log,
                log_every=config.log_every,
                hooks=hooks,
                milestones=milestones,
                progress=progress,
            )
    finally:
        log.close()
    return state, start


def restore(directory: str | os.PathLike) -> tuple[DTNConfig, DTNState]:
    """(config, newest checkpointed state on this process's first device) of a run written by
    `train_dtn`. One-line errors: FileNotFoundError (no folder, config or checkpoint),
    CheckpointMismatch (a state another version wrote)."""
    return training.restore(directory, DTNConfig, lambda c: c.init())


def records(directory: str | os.PathLike) -> list[dict[str, float]]:
    """The metrics a run logged (the last record per step)."""
    return training.MetricsLog(pathlib.Path(directory) / METRICS, tensorboard=False, enabled=False).records()
