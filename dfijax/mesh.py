"""The one device mesh: a 1-D ("data",) mesh over the devices, batches split along it, everything else
replicated. The inversion engine splits its problems and the training loops their batches this way."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def data_mesh(devices: list | None = None, axis: str = AXIS) -> jax.sharding.Mesh:
    """A 1-D (axis,) mesh over the given devices (default: all local ones), in their order; every mesh
    here is built by it (`dfijax.distributed.global_mesh`: over every process's devices)."""
    devices = devices or jax.local_devices()
    return jax.make_mesh((len(devices),), (axis,), devices=devices, axis_types=(jax.sharding.AxisType.Auto,))


def shard_batch(batch: Any, mesh: jax.sharding.Mesh) -> Any:
    """Split every leaf's leading (batch) axis over the mesh; the batch must divide evenly."""
    n = mesh.devices.size

    def put(x):
        x = x if isinstance(x, jax.Array) else np.asarray(x)
        if x.shape[0] % n:
            raise ValueError(f"batch of {x.shape[0]} does not split over {n} devices; use a multiple of {n}")
        return jax.device_put(x, NamedSharding(mesh, P(AXIS)))

    return jax.tree.map(put, batch)


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """Put a pytree (parameters, optimizer state; the same values on every process) on every device of
    the mesh, which may span several processes (then each process puts its own devices' copies)."""
    sharding = NamedSharding(mesh, P())
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)
