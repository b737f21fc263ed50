"""What every training loop here shares: a NaN guard, orbax checkpoints with auto-resume, JSON-lines
metrics, and data parallelism over all local devices with a mesh + NamedSharding.

The pattern (fast_style, fusion, dtn): a pure, jitted `step(state, batch, rng) -> (state, metrics)`
whose rng is `fold_in(base_key, state.step)`, batches that are a pure function of the step (so a
resumed run sees exactly the data an uninterrupted one would), and a `Checkpointer` that restores the
newest step when the folder already holds one.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Iterator

import jax
import jax.numpy as jnp

from dfijax.mesh import data_mesh, replicate, shard_batch  # noqa: F401  (the loops' mesh helpers)


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
    derived from the step (fold_in) rather than stored."""

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

    def restore_or(self, template: Any) -> tuple[Any, int]:
        """(newest saved state, its step), or (template, 0) when the folder holds none."""
        step = self.manager.latest_step()
        if step is None:
            return template, 0
        return self.manager.restore(step, args=self._ocp.args.StandardRestore(template)), int(step)

    def maybe_save(self, step: int, state: Any, final: bool = False) -> bool:
        """Save at multiples of save_every and when final; returns whether it saved."""
        if final or step % self.save_every == 0:
            if self.manager.latest_step() != step:
                self.manager.save(step, args=self._ocp.args.StandardSave(state))
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
    TensorBoard event files in `<folder>/tb` (tensorboard=False to skip); `image` adds samples there."""

    def __init__(self, path: str | os.PathLike, tensorboard: bool = True):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.path.parent / "tb"), flush_secs=30)

    def write(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        rec = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
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
