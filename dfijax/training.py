"""What every training loop here shares: a NaN guard, orbax checkpoints with auto-resume, JSON-lines
metrics, and data parallelism over all local devices with a mesh + NamedSharding.

One loop for every system, `fit`: a pure, jitted `step(state, batch, rng) -> (state, metrics)` whose
rng is `fold_in(rng, step)`, batches that are a pure function of the step (or a grain iterator whose
position is saved with the state), so a resumed run sees exactly the data an uninterrupted one would,
and a `Checkpointer` that restores the newest step when the folder already holds one. Logging,
checkpoints and hooks (sample pictures, evaluation) are scheduled by one rule, `due`.

Each run's settings are a frozen dataclass saved as JSON beside its checkpoints (`Checkpointer(...,
config=)`); resuming under settings that differ in a field not marked `resumable` is a one-line
`CheckpointMismatch`, and `restore(directory, ConfigCls, template)` gives back (config, state) for
any system.

Many processes (JAX's multi-controller runtime, `dfijax.distributed`): every process runs the same
loop over a mesh of all the job's devices (`global_mesh`), builds each global batch from its own rows
(`global_batch`, or `put_global` from a batch every process knows; `local_copy` brings a replicated
state back to one device), and calls the Checkpointer's save and restore (orbax writes each process's shards;
the data iterator's position is saved beside the state, one file per process); only process 0 writes
the metrics log (MetricsLog's default), pictures and JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from grain import python as grain

from dfijax import distributed as _dist
from dfijax.config import from_dict, leaves, to_dict, upgrade
from dfijax.distributed import (  # noqa: F401  (many processes)
    global_batch,
    global_mesh,
    is_main,
    local_copy,
    process_rows,
    put_global,
)
from dfijax.mesh import data_mesh, replicate, shard_batch  # noqa: F401  (the loops' mesh helpers)

STATE, DATA = "state", "data"  # the items of a checkpoint saved with a data iterator
CONFIG_FILE = "config.json"  # a run's settings beside its checkpoints (a config class may name another)
RESUMABLE = "resumable"  # dataclass field metadata: the field may change between a run and its resume


class CheckpointMismatch(ValueError):
    """A checkpoint folder whose settings or contents do not fit the run that asked for them."""


def resumable(default: Any) -> Any:
    """A config field that may change when a run resumes (total steps, intervals): `steps: int =
    resumable(1000)`. Other fields shape the state or change what training means."""
    return dataclasses.field(default=default, metadata={RESUMABLE: True})


def due(step: int, every: int | None, total: int, at: Iterable[int] = ()) -> bool:
    """Whether a periodic action (log, save, sample, evaluate) is due after `step` steps (counted from
    1) of a `total`-step run: at multiples of `every` (None or 0: not periodically), at `total`, and at
    the extra steps `at` (e.g. the end of a training stage)."""
    return step == total or step in tuple(at) or (bool(every) and step % every == 0)


def config_file(config_cls: type) -> str:
    """The file name a config class is saved under (its CONFIG_FILE attribute, else config.json)."""
    return getattr(config_cls, "CONFIG_FILE", CONFIG_FILE)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _resumable_names(config_cls: type, prefix: str = "") -> set[str]:
    hints = typing.get_type_hints(config_cls)
    out = set()
    for f in dataclasses.fields(config_cls):
        if f.metadata.get(RESUMABLE):
            out.add(prefix + f.name)
        elif dataclasses.is_dataclass(hints.get(f.name)):
            out |= _resumable_names(hints[f.name], f"{prefix}{f.name}.")
    return out


def config_diff(saved: dict[str, Any], config: Any) -> list[str]:
    """'name old (now new)' for each field of `config` that differs from the saved settings and is not
    resumable (named as typed on the command line, other nested fields as 'outer.inner'; fields the saved
    settings lack are not compared)."""
    old, new = _flat(upgrade(type(config), saved)), _flat(to_dict(config))
    free = _resumable_names(type(config))
    typed = {".".join(path): name for name, path in leaves(type(config)).items()}
    differ = [k for k, v in new.items() if k in old and k not in free and old[k] != v]
    return [f"{typed.get(k, k)} {old[k]!r} (now {new[k]!r})" for k in differ]


def load_config(directory: str | os.PathLike, config_cls: type) -> Any:
    """The settings saved beside a run's checkpoints; FileNotFoundError naming the file when absent."""
    path = pathlib.Path(directory) / config_file(config_cls)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} holds no run of {config_cls.__name__}")
    return from_dict(config_cls, json.loads(path.read_text()))


def nan_guard(new: Any, old: Any, ok: jax.Array) -> Any:
    """`new` where the scalar bool `ok` holds, else `old` (a non-finite step leaves the state as it was)."""
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def all_finite(*xs: Any) -> jax.Array:
    """Scalar bool: every leaf of every argument is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for t in xs for x in jax.tree.leaves(t)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class Checkpointer:
    """orbax CheckpointManager over an absolute folder: keep-N, periodic saves, auto-resume.

    state: any pytree of arrays (TrainStates, several networks, step counters). PRNG state should be
    derived from the step (fold_in) rather than stored. `data`, when given to maybe_save/restore_or, is a
    grain iterator (get_state() -> bytes / set_state(bytes)) saved in the same checkpoint (items "state"
    and "data", grain's orbax handler: one JSON file per process). With many processes, every process
    must make the same calls (orbax writes each process's shards and synchronises them).

    config: the run's settings, a frozen dataclass. When the folder already holds checkpoints, the
    settings saved there must agree with it in every field not marked `resumable` (else a one-line
    CheckpointMismatch naming the differing fields); it is then (re)written there as JSON (process 0)."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3, save_every: int | None = 100, config: Any = None):

        self._ocp = ocp
        self.directory = pathlib.Path(directory).absolute()
        self.save_every = save_every
        self.config = config
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        )
        if config is not None:
            self._check_and_write_config(config)

    def _check_and_write_config(self, config: Any) -> None:
        path = self.directory / config_file(type(config))
        if self.latest_step is not None and path.is_file():
            if diff := config_diff(json.loads(path.read_text()), config):
                raise CheckpointMismatch(
                    f"{self.directory} holds checkpoints trained with other settings: "
                    f"{', '.join(diff)}; resume with those or use another folder"
                )
        _dist.barrier("checkpointer-config-checked")
        if is_main():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(to_dict(config), indent=2))
            tmp.replace(path)

    def restore_state(self, step: int, template: Any) -> Any:
        """The state saved at `step` (with or without a data position beside it), shaped like template;
        a one-line CheckpointMismatch when it does not fit."""
        ocp = self._ocp
        try:
            if (self.directory / str(step) / STATE).is_dir():
                args = ocp.args.Composite(**{STATE: ocp.args.StandardRestore(template)})
                return self.manager.restore(step, args=args)[STATE]
            return self.manager.restore(step, args=ocp.args.StandardRestore(template))
        except (ValueError, KeyError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointMismatch(
                f"the checkpoint at step {step} in {self.directory} does not fit the state "
                f"this code builds (written by another version?): {first}"
            ) from None

    @property
    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def data_processes(self, step: int) -> int | None:
        """How many processes saved the data iterator at `step` (None: saved without one)."""
        files = sorted((self.directory / str(step) / DATA).glob("process_*-of-*.json"))
        return int(files[0].stem.rsplit("-of-", 1)[1]) if files else None

    def restore_or(
        self, template: Any, data: Any = None, reposition: Callable[[int], None] | None = None
    ) -> tuple[Any, int]:
        """(newest saved state, its step), or (template, 0) when the folder holds none.

        data: the iterator saved with the state; restored in place when the checkpoint was written by as
        many processes as run now. Otherwise (another process count, or saved without one)
        reposition(step) must put it where it was after `step` steps (a ValueError without it)."""
        ocp = self._ocp
        step = self.manager.latest_step()
        if step is None:
            return template, 0
        composite = (self.directory / str(step) / STATE).is_dir()
        if not composite:
            if data is not None and reposition is None:
                raise ValueError(
                    f"the checkpoint at step {step} in {self.directory} holds no data position; "
                    "pass reposition to restore one"
                )
        elif data is not None and self.data_processes(step) == jax.process_count():
            args = ocp.args.Composite(
                **{STATE: ocp.args.StandardRestore(template), DATA: grain.PyGrainCheckpointRestore(data)}
            )
            try:
                got = self.manager.restore(step, args=args)
            except (ValueError, KeyError, TypeError):
                self.restore_state(step, template)  # raises the one-line CheckpointMismatch
                raise
            return got[STATE], int(step)
        elif data is not None and reposition is None:
            raise ValueError(
                f"the data position at step {step} in {self.directory} was saved by "
                f"{self.data_processes(step)} processes, not {jax.process_count()}; pass reposition"
            )
        state = self.restore_state(step, template)
        if data is not None:
            reposition(int(step))
        return state, int(step)

    def maybe_save(self, step: int, state: Any, final: bool = False, data: Any = None) -> bool:
        """Save at multiples of save_every and when final; returns whether it saved. data: a grain
        iterator saved beside the state (its position after `step` steps)."""
        ocp = self._ocp
        if final or due(step, self.save_every, -1):
            if self.manager.latest_step() != step:
                if data is None:
                    args = ocp.args.StandardSave(state)
                else:
                    args = ocp.args.Composite(
                        **{STATE: ocp.args.StandardSave(state), DATA: grain.PyGrainCheckpointSave(data)}
                    )
                self.manager.save(step, args=args)
            return True
        return False

    def wait(self) -> None:
        """Block until the asynchronous saves have been written."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MetricsLog:
    """Append-only JSON lines, one {"step": s, name: value, ...} per record, and the same scalars as
    TensorBoard event files in `<folder>/tb` (tensorboard=False to skip); `image` adds samples there.
    enabled: whether to write at all (default: only on process 0 of a multi-process job); write() returns
    the record either way."""

    def __init__(self, path: str | os.PathLike, tensorboard: bool = True, enabled: bool | None = None):
        self.path = pathlib.Path(path)
        self.enabled = is_main() if enabled is None else enabled
        self._tb = None
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            from tensorboardX import SummaryWriter  # here: it imports torch when installed (1.2 s)

            self._tb = SummaryWriter(str(self.path.parent / "tb"), flush_secs=30)

    def write(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        rec = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        if not self.enabled:
            return rec
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self._tb is not None:
            for k, v in rec.items():
                if k != "step":
                    self._tb.add_scalar(k, v, rec["step"])
        return rec

    def image(self, step: int, name: str, image: Any) -> None:
        """A sample picture, [H, W, 3] float in [0, 1], in the TensorBoard log."""
        if self._tb is not None:
            self._tb.add_image(name, np.clip(np.asarray(image, np.float32), 0, 1), int(step), dataformats="HWC")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def records(self) -> list[dict[str, Any]]:
        """All records, the last one per step (a resumed run may have rewritten a few)."""
        if not self.path.exists():
            return []
        by_step: dict[int, dict] = {}
        for line in self.path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                by_step[rec["step"]] = rec
        return [by_step[s] for s in sorted(by_step)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())


Hook = tuple[int | None, Callable[[int, Any, "dict[str, float] | None"], "dict[str, Any] | None"]]


def strong_types(tree: Any) -> Any:
    """`tree` with its weakly typed arrays (a fresh TrainState's step) made strong: a restored
    checkpoint's arrays are strong, so a run and its resume then compile the same step program."""
    return jax.tree.map(lambda x: x.astype(x.dtype) if isinstance(x, jax.Array) and x.aval.weak_type else x, tree)


def fit(
    step: Callable[[Any, Any, jax.Array], tuple[Any, dict[str, Any]]],
    state: Any,
    batches: Callable[[int], Any] | Iterator[Any],
    total: int,
    checkpointer: Checkpointer | None = None,
    *,
    rng: jax.Array,
    start: int | None = None,
    log: MetricsLog | None = None,
    log_every: int | None = 10,
    hooks: Sequence[Hook] = (),
    milestones: Iterable[int] = (),
    data: Any = None,
    reposition: Callable[[int], None] | None = None,
    progress: Callable[[int, dict[str, float] | None], None] | None = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train `state` to `total` steps with `step(state, batch, fold_in(rng, i)) -> (state, metrics)` for
    i = start … total − 1 (metrics: a dict of scalars). Returns (state, the records logged by this call).

    batches: batches(i) -> the batch of step i (a pure function of i, so a resumed run sees the same
    data), or an iterator (whose position, when it is a grain iterator, is `data`).
    checkpointer: when given and `start` is None, the newest checkpoint (with data's position; with
    another process count reposition(step) must put data there) replaces `state` and training starts
    after it; without a checkpointer start is 0. States are saved when `due(step, save_every, total,
    milestones)`. start: the step `state` is at (no restore).
    After each step n (counted from 1), in this order: the metrics become a record {"step": n, ...}
    when due(n, log_every, total, milestones) (written to `log` when given); the checkpointer saves
    when due; each hook (every, fn) that is due calls fn(n, state, record or None), and a dict it
    returns joins that step's record (written again); progress(n, record or None) last.
    Nothing in here prints; a hook that raises stops training (the checkpoints saved so far remain)."""
    milestones = tuple(milestones)
    if start is None:
        state, start = (
            checkpointer.restore_or(state, data=data, reposition=reposition) if checkpointer is not None else (state, 0)
        )
    state = strong_types(state)
    if callable(batches):
        batch_at = batches
    else:
        it = iter(batches)
        batch_at = lambda i: next(it)  # noqa: E731

    def record(n: int, metrics: dict[str, Any]) -> dict[str, float]:
        if log is not None:
            return log.write(n, metrics)
        return {"step": int(n), **{k: float(v) for k, v in metrics.items()}}

    records: list[dict[str, float]] = []
    try:
        for i in range(start, total):
            state, metrics = step(state, batch_at(i), jax.random.fold_in(rng, i))
            n = i + 1
            rec = record(n, metrics) if due(n, log_every, total, milestones) else None
            if checkpointer is not None:
                checkpointer.maybe_save(n, state, final=n == total or n in milestones, data=data)
            for every, fn in hooks:
                if due(n, every, total, milestones):
                    extra = fn(n, state, rec)
                    if extra:
                        rec = record(n, {**{k: v for k, v in (rec or {}).items() if k != "step"}, **extra})
            if rec is not None:
                records.append(rec)
            if progress is not None:
                progress(n, rec)
    finally:
        if checkpointer is not None:
            checkpointer.wait()
    return state, records


def restore(directory: str | os.PathLike, config_cls: type, template: Any) -> tuple[Any, Any]:
    """(the run's settings, its newest checkpointed state) from a folder written through a Checkpointer
    with config=. template: a state of the right structure, or a function config -> one.
    One-line errors: FileNotFoundError (no folder, no settings, no checkpoint), CheckpointMismatch (a
    state that does not fit the template)."""
    directory = pathlib.Path(directory).absolute()
    if not directory.is_dir():
        raise FileNotFoundError(f"no checkpoint folder {directory}")
    config = load_config(directory, config_cls)
    ck = Checkpointer(directory)
    try:
        step = ck.latest_step
        if step is None:
            raise FileNotFoundError(f"{directory} holds no checkpoint")
        state = ck.restore_state(step, template(config) if callable(template) else template)
    finally:
        ck.close()
    return config, state
