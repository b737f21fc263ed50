"""What every training loop here shares: a NaN guard, orbax checkpoints with auto-resume, JSON-lines
metrics, and data parallelism over all local devices with a mesh + NamedSharding.

The pattern (fast_style, fusion, dtn): a pure, jitted `step(state, batch, rng) -> (state, metrics)`
whose rng is `fold_in(base_key, state.step)`, batches that are a pure function of the step (so a
resumed run sees exactly the data an uninterrupted one would), and a `Checkpointer` that restores the
newest step when the folder already holds one.

Many processes (JAX's multi-controller runtime, `dfijax.distributed`): every process runs the same
loop over a mesh of all the job's devices (`global_mesh`), builds each global batch from its own rows
(`global_batch`), and calls the Checkpointer's save and restore (orbax writes each process's shards;
the data iterator's position is saved beside the state, one file per process); only process 0 writes
the metrics log (MetricsLog's default), pictures and JSON.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp

from dfijax import distributed as _dist
from dfijax import mesh as _mesh
from dfijax.distributed import global_batch, global_mesh, is_main  # noqa: F401  (many processes)
from dfijax.mesh import data_mesh, shard_batch  # noqa: F401  (the loops' mesh helpers)

STATE, DATA = "state", "data"  # the items of a checkpoint saved with a data iterator


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """Put a pytree (parameters, optimizer state; the same values on every process) on every device of
    the mesh, which may span several processes."""
    if jax.process_count() == 1:
        return _mesh.replicate(tree, mesh)
    return _dist.replicate(tree, mesh)


def nan_guard(new: Any, old: Any, ok: jax.Array) -> Any:
    """`new` where the scalar bool `ok` holds, else `old` (a non-finite step leaves the state as it was)."""
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def all_finite(*xs: Any) -> jax.Array:
    """Scalar bool: every leaf of every argument is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for t in xs for x in jax.tree.leaves(t)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def donate_argnums(*nums: int) -> tuple[int, ...]:
    """Donation is a no-op (with a warning) on CPU; only ask for it elsewhere."""
    return nums if jax.default_backend() != "cpu" else ()


class Checkpointer:
    """orbax CheckpointManager over an absolute folder: keep-N, periodic saves, auto-resume.

    state: any pytree of arrays (TrainStates, several networks, step counters). PRNG state should be
    derived from the step (fold_in) rather than stored. `data`, when given to maybe_save/restore_or, is a
    grain iterator (get_state() -> bytes / set_state(bytes)) saved in the same checkpoint (items "state"
    and "data", grain's orbax handler: one JSON file per process). With many processes, every process
    must make the same calls (orbax writes each process's shards and synchronises them)."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3, save_every: int = 100):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = pathlib.Path(directory).absolute()
        self.save_every = save_every
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    @property
    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def data_processes(self, step: int) -> int | None:
        """How many processes saved the data iterator at `step` (None: saved without one)."""
        files = sorted((self.directory / str(step) / DATA).glob("process_*-of-*.json"))
        return int(files[0].stem.rsplit("-of-", 1)[1]) if files else None

    def restore_or(self, template: Any, data: Any = None,
                   reposition: Callable[[int], None] | None = None) -> tuple[Any, int]:
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
                raise ValueError(f"the checkpoint at step {step} in {self.directory} holds no data position; "
                                 "pass reposition to restore one")
            state = self.manager.restore(step, args=ocp.args.StandardRestore(template))
        elif data is not None and self.data_processes(step) == jax.process_count():
            from grain import python as grain

            got = self.manager.restore(step, args=ocp.args.Composite(
                **{STATE: ocp.args.StandardRestore(template), DATA: grain.PyGrainCheckpointRestore(data)}))
            return got[STATE], int(step)
        else:
            if data is not None and reposition is None:
                raise ValueError(f"the data position at step {step} in {self.directory} was saved by "
                                 f"{self.data_processes(step)} processes, not {jax.process_count()}; pass reposition")
            args = ocp.args.Composite(**{STATE: ocp.args.StandardRestore(template)})
            state = self.manager.restore(step, args=args)[STATE]
        if data is not None:
            reposition(int(step))
        return state, int(step)

    def maybe_save(self, step: int, state: Any, final: bool = False, data: Any = None) -> bool:
        """Save at multiples of save_every and when final; returns whether it saved. data: a grain
        iterator saved beside the state (its position after `step` steps)."""
        ocp = self._ocp
        if final or step % self.save_every == 0:
            if self.manager.latest_step() != step:
                if data is None:
                    args = ocp.args.StandardSave(state)
                else:
                    from grain import python as grain

                    args = ocp.args.Composite(**{STATE: ocp.args.StandardSave(state),
                                                 DATA: grain.PyGrainCheckpointSave(data)})
                self.manager.save(step, args=args)
            return True
        return False

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
            from tensorboardX import SummaryWriter

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
            import numpy as np

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
