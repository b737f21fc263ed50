"""The sweep's solve: φ(x) + α·w inverted for every row and alpha (`solve_alphas`: all alphas in one call,
or warm-started alpha by alpha), from the inputs or chainer-dfi's noise (`initial_images`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import invert as inv
from dfijax import mesh
from dfijax.dfi import vectors
from dfijax.dfi.sweep_config import SweepConfig

# progress(stage, done, total, info): stage is "features", "solve" or "probe"; done counts up to total.
Progress = Callable[[str, int, int, dict], None]


def initial_images(config: SweepConfig, images: jax.Array) -> jax.Array:
    """Where the solve starts, [B, H, W, 3]: the inputs, or chainer-dfi's noise (`noise_start`)
    seeded by config.seed."""
    if config.solve.init == "input":
        return images
    return noise_start(jax.random.key(config.seed), images.shape)


def noise_start(key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """chainer-dfi's noise start, [..., H, W, 3] in [0, 1] terms: uniform ±10 (0-255 scale) around the
    Caffe mean colour (RGB 124, 117, 104)."""
    noise = jax.random.uniform(key, tuple(shape), jnp.float32, -10.0, 10.0)
    mean = jnp.array([124.0, 117.0, 104.0]).reshape((1,) * (noise.ndim - 1) + (3,))
    return (mean + noise) / 255.0


def _mean_started(losses: jax.Array) -> float:
    """The mean loss of the problems that have started (the scipy solver reports NaN for the others), in
    jnp: losses may span several processes' devices (the dataset job)."""
    started = jnp.isfinite(losses)
    n = jnp.sum(started)
    return float(jnp.where(n > 0, jnp.sum(jnp.where(started, losses, 0.0)) / jnp.maximum(n, 1), jnp.nan))


def solve_alphas(
    config: SweepConfig,
    loss: inv.FeatureLoss,
    variables,
    x: jax.Array,
    w,
    alphas: Sequence[float],
    progress: Progress,
    *,
    x0: jax.Array | None = None,
    shard: bool | None = None,
    local: Callable[[jax.Array], np.ndarray] = np.asarray,
    snapshot: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Invert φ(x) + α·w for B rows × A alphas. "parallel": one engine call for all; "warm": one call
    per alpha over all rows, each later alpha starting from the previous one's result with half the
    iterations. Bounded solves return images clipped to [0, 1] (and warm-start from them), as the
    official code's F_inverse does. Returns ([B, A, H, W, 3] images, [B, A] final losses).
    x0: the start (default `initial_images`); shard: split the rows over the local devices (default:
    config.solve.shard, with several devices; False for rows already placed on a global mesh); local: a
    result as this process's rows in numpy (dist.local_batch for arrays on a global mesh); snapshot: called as
    snapshot(iteration, images [B, A', H, W, 3]) with the current iterates of the alphas being solved (A' of
    them) every few iterations, for a user to watch the edit form."""
    shard = (config.solve.shard and mesh.local_device_count() > 1) if shard is None else shard
    x0 = initial_images(config, x) if x0 is None else x0
    clip = (lambda z: jnp.clip(z, 0.0, 1.0)) if config.solve.bounds != "none" else (lambda z: z)

    def solve(start, al, iters, done, total, info):
        def report(k, losses):
            progress("solve", done + k, total, {"loss": _mean_started(losses), **info})

        def show(k, z):
            snapshot(done + k, np.asarray(z).reshape((len(x), len(al)) + tuple(z.shape[1:])))

        out, r = vectors.edit(
            loss,
            variables,
            x,
            w,
            al,
            config.solve.solver(iters),
            config.objective.scaling,
            x0=start,
            check_every=5,
            shard=shard,
            progress=report,
            snapshot=show if snapshot is not None else None,
        )
        return clip(out), r.final_loss.reshape(len(x), len(al))

    if config.solve.alpha_mode == "parallel":
        out, final = solve(x0, alphas, config.solve.iters, 0, config.solve.iters, {})
        return local(out), local(final)
    iters = [config.solve.iters] + [max(1, config.solve.iters // 2)] * (len(alphas) - 1)
    done, outs, finals = 0, [], []
    for a, n in zip(alphas, iters):
        out, final = solve(x0, [a], n, done, sum(iters), {"alpha": a})
        x0 = out[:, 0]
        done += n
        outs.append(local(x0))
        finals.append(local(final)[:, 0])
    return np.stack(outs, 1), np.stack(finals, 1)
