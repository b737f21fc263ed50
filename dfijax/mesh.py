"""The one device mesh: a 1-D ("data",) mesh over the devices, batches split along it, everything else
replicated. The inversion engine splits its problems and the training loops their batches this way.

Which devices: every device JAX shows, or, with $DFIJAX_DEVICES=N, the first N of each process's (as
CUDA_VISIBLE_DEVICES narrows a machine; the tests run as on a one-device machine this way).
`local_devices()` and `devices()` are the library's only views of them.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"
ENV_DEVICES = "DFIJAX_DEVICES"


def _per_process() -> int | None:
    n = os.environ.get(ENV_DEVICES, "").strip()
    if not n:
        return None
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"${ENV_DEVICES} must be a positive number of devices, got {n!r}")
    return int(n)


def local_devices() -> list[jax.Device]:
    """This process's devices the library uses: all, or the first $DFIJAX_DEVICES."""
    return jax.local_devices()[: _per_process()]


def devices() -> list[jax.Device]:
    """Every process's devices the library uses (each process's `local_devices`), in JAX's order."""
    k = _per_process()
    if k is None:
        return jax.devices()
    return [d for p in range(jax.process_count()) for d in jax.local_devices(process_index=p)[:k]]


def local_device_count() -> int:
    return len(local_devices())


def device_count() -> int:
    return len(devices())


def data_mesh(devices: list | None = None, axis: str = AXIS) -> jax.sharding.Mesh:
    """A 1-D (axis,) mesh over the given devices (default: `local_devices()`), in their order; every mesh
    here is built by it (`dfijax.distributed.global_mesh`: over every process's devices)."""
    devices = devices or local_devices()
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
