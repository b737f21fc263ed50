"""JAX's multi-controller runtime: one Python process per host (or per GPU), all of them running the same
program over one global mesh of every device in the job.

    initialize(...)            # before anything touches a device
    mesh = global_mesh()       # 1-D ("data",) mesh over all global devices
    x = global_batch(local_rows, mesh)   # each process's rows -> one global array split over "data"
    y = jitted_fn(replicate(params, mesh), x)
    mine = local_batch(y, mesh)          # this process's rows back, as numpy
    x = put_global(batch, mesh)          # a global batch every process knows -> each puts its rows
    p = local_copy(state)                # a replicated state -> this process's copy, for evaluation

A single process (no coordinator, nothing detected) is the 1-process case of the same code: the global
mesh is the local devices, global_batch is a plain sharded device_put.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dfijax import mesh as mesh_lib
from dfijax.mesh import replicate  # noqa: F401  (one replicate for one or many processes)

AXIS = mesh_lib.AXIS


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    """Where this process stands in the job: index in [0, count), and its and the job's device counts."""

    index: int
    count: int
    local_devices: int
    global_devices: int


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: list[int] | None = None,
    initialization_timeout: int = 300,
) -> ProcessInfo:
    """Join the multi-controller job; call it before any other JAX call that touches a device.

    Explicit (GPU hosts, CPU tests): coordinator "HOST:PORT" (process 0's address, the same for all),
    num_processes and process_id. Automatic (all three None): whatever jax.distributed finds (Cloud TPU
    pod slices, SLURM, Open MPI, or the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID
    environment variables); when it finds nothing, or JAX already computed in this process, the process
    runs as it is (alone). num_processes=1 runs alone without a coordinator. Calling it again after a
    successful join does nothing.
    On CPU, cross-process collectives use gloo unless another implementation was configured.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given) and num_processes != 1:
        raise ValueError(
            "give coordinator, num_processes and process_id together (or none of them for automatic detection)"
        )
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if all(given) and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    if jax.distributed.is_initialized():
        return process_info()
    if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if num_processes == 1:
        return process_info()
    kwargs: dict[str, Any] = dict(initialization_timeout=initialization_timeout)
    if local_device_ids is not None:
        kwargs["local_device_ids"] = local_device_ids
    if all(given):
        jax.distributed.initialize(coordinator, num_processes, process_id, **kwargs)
        return process_info()
    try:
        jax.distributed.initialize(**kwargs)
    except ValueError:  # nothing to detect: a single process
        pass
    except RuntimeError:  # this process already computed (an in-process caller): it runs as it is
        if not jax._src.xla_bridge.backends_are_initialized():
            raise
    return process_info()


def process_info() -> ProcessInfo:
    return ProcessInfo(jax.process_index(), jax.process_count(), mesh_lib.local_device_count(), mesh_lib.device_count())


def is_main() -> bool:
    """Whether this is process 0 (the one that writes shared files and prints)."""
    return jax.process_index() == 0


def global_mesh(axis: str = AXIS) -> jax.sharding.Mesh:
    """A 1-D mesh over every device of every process (jax.make_mesh; the same on all processes)."""
    return mesh_lib.data_mesh(mesh_lib.devices(), axis)


def _local_count(mesh: jax.sharding.Mesh) -> int:
    pid = jax.process_index()
    return sum(d.process_index == pid for d in mesh.devices.flat)


def global_batch(local: Any, mesh: jax.sharding.Mesh, axis: str = AXIS) -> Any:
    """Each process's rows (a pytree of [n_local, ...] arrays, the same n_local on every process) ->
    global arrays [n_local · processes, ...] split over `axis` (jax.make_array_from_process_local_data).
    n_local must divide evenly over this process's devices in the mesh."""
    n_dev = _local_count(mesh)
    sharding = NamedSharding(mesh, P(axis))

    def put(x):
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % n_dev:
            raise ValueError(
                f"{x.shape[0] if x.ndim else 'scalar'} local rows do not split over {n_dev} local devices; "
                f"use a multiple of {n_dev} rows per process"
            )
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, local)


def process_rows(mesh: jax.sharding.Mesh, batch: int, axis: str = AXIS) -> slice:
    """The rows of a [batch, ...] array split over the mesh's `axis` that this process's devices hold:
    one contiguous slice when the mesh orders its devices by process (global_mesh does; one process
    holds them all). A one-line ValueError when the batch does not split over the axis or the rows are
    not contiguous."""
    n = mesh.shape[axis]
    if batch < 1 or batch % n:
        raise ValueError(f"a batch of {batch} does not split over the {n} devices of the mesh; use a multiple of {n}")
    held = NamedSharding(mesh, P(axis)).addressable_devices_indices_map((batch,)).values()
    rows = sorted({r for idx in held for r in range(*idx[0].indices(batch))})
    if not rows or rows != list(range(rows[0], rows[-1] + 1)):
        raise ValueError("this process's devices hold no contiguous rows of the batch: build the mesh with global_mesh")
    return slice(rows[0], rows[-1] + 1)


def put_global(batch: Any, mesh: jax.sharding.Mesh, axis: str = AXIS) -> Any:
    """A global batch known to every process (a pytree of [B, ...] arrays, the same values everywhere)
    -> global arrays [B, ...] split over `axis`: each process puts only its own rows (`process_rows`,
    `global_batch`). B must split over the axis."""
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("the batch holds no arrays")
    rows = process_rows(mesh, len(leaves[0]), axis)
    return global_batch(jax.tree.map(lambda a: np.asarray(a)[rows], batch), mesh, axis)


def local_copy(tree: Any) -> Any:
    """A pytree of replicated arrays (a state replicated over a mesh that may span processes) -> the
    same values on this process's first device, for work outside the mesh (evaluation, sampling).
    Leaves that are not jax arrays are put there as they are; a leaf split over devices is a one-line
    ValueError."""
    dev = mesh_lib.local_devices()[0]

    def mine(a):
        if not isinstance(a, jax.Array):
            return a
        if not a.is_fully_replicated:
            raise ValueError(
                f"an array of shape {a.shape} is split over {len(a.sharding.device_set)} devices; local_copy "
                "takes replicated arrays (use local_batch for batches)"
            )
        return a.addressable_data(0)

    return jax.device_put(jax.tree.map(mine, tree), dev)


def local_batch(global_tree: Any, mesh: jax.sharding.Mesh, axis: str = AXIS) -> Any:
    """The inverse of global_batch: this process's rows of each global array, as numpy. Arrays split
    some other way are first resharded over `axis` along their leading dimension."""

    sharding = NamedSharding(mesh, P(axis))
    to_rows = jax.jit(lambda t: t, out_shardings=sharding)

    def get(x):
        if x.sharding != sharding and not (isinstance(x.sharding, NamedSharding) and x.sharding.spec[:1] == (axis,)):
            x = to_rows(x)
        return np.asarray(multihost_utils.global_array_to_host_local_array(x, mesh, P(axis)))

    return jax.tree.map(get, global_tree)


def allgather(x: Any) -> np.ndarray:
    """Every process's value of x (same shape everywhere), stacked: [processes, ...]. Every process
    must call it."""
    if jax.process_count() == 1:
        return np.asarray(x)[None]

    return np.asarray(multihost_utils.process_allgather(np.asarray(x)))


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier of this name."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
