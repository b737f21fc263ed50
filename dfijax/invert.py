"""Inverting VGG features back into images with L-BFGS, batched with vmap.

The solver sits behind one small interface (`SolverConfig`, `minimize`) with two batched backends:
jaxopt's LBFGS / LBFGSB (default) and optax.lbfgs (jaxopt is unmaintained; optax is where it went);
a third, "scipy", runs scipy's own L-BFGS-B one problem at a time on the host (`dfijax.scipy_lbfgsb`),
as the official DFI code does.

Speed: with `linesearch=None` each iteration costs exactly one forward + input-gradient pass, like
`torch.optim.LBFGS` without a line search. The objective is scaled once by 1/‖∇f(x0)‖₁: the first unit
step is then PyTorch's first step whenever ‖∇f(x0)‖₁ >= 1, and L-BFGS directions are invariant to the
scale after it. Unlike PyTorch's min(1, ·) this also holds for tiny objectives (e.g. Gatys' 1e3/n² style
weights on small activations), where PyTorch's absolute thresholds stall. Curvature pairs with
sᵀy <= 1e-10 (of the scaled objective) are skipped (jaxopt backend), as PyTorch does, so the fixed-step
iteration stays a descent method on the non-convex feature losses.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jaxopt
import numpy as np
import optax
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float

import dfijax  # noqa: F401  (filters jaxopt's import warning)
from dfijax import losses, mesh, scipy_lbfgsb
from dfijax.shapes import Image, Images, Scalar
from dfijax.vgg import VGG19, check_image_batch, layer_index

BACKENDS = ("jaxopt", "optax", "scipy")
LINESEARCHES = (None, "zoom", "backtracking", "hager-zhang")


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """L-BFGS settings (hashable: a static argument of the compiled solve).

    maxiter: iterations (each one function + gradient evaluation when linesearch is None).
    backend: "jaxopt" (LBFGS, or LBFGSB when bounds are given), "optax" (optax.lbfgs; bounds are
      enforced by projection after each step) or "scipy" (scipy.optimize.minimize's L-BFGS-B with its
      Wolfe line search, one problem at a time; `linesearch` and `patience` do not apply, ftol is
      scipy's relative-decrease stop).
    history_size: L-BFGS memory.
    linesearch: None (fixed unit step, fastest) or "zoom" / "backtracking" / "hager-zhang" (jaxopt),
      "zoom" / "backtracking" (optax).
    ftol: stop a problem once |f_k − f_{k−1}| <= ftol·|f_{k−1}| held for `patience` iterations in a row
      (0 runs all iterations). The first, deliberately small step never counts.
    bounds: (low, high) pixel box, e.g. (0.0, 1.0), or per channel ((l_R, l_G, l_B), (h_R, h_G, h_B)),
      or None.
    units: scipy backend: it solves on x·units (255: the Caffe input's scale, whose gradient step is
      L-BFGS-B's first trial step in the official code); the batched backends scale by 1/‖∇f(x0)‖₁.
    """

    maxiter: int = 300
    backend: str = "jaxopt"
    history_size: int = 10
    linesearch: str | None = None
    ftol: float = 0.0
    patience: int = 3
    bounds: tuple[float, float] | tuple[tuple[float, ...], tuple[float, ...]] | None = None
    units: float = 1.0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown solver backend {self.backend!r}; use one of {BACKENDS}")
        if self.linesearch not in LINESEARCHES:
            raise ValueError(f"unknown line search {self.linesearch!r}; use one of {LINESEARCHES}")
        if self.backend == "scipy" and self.linesearch is not None:
            raise ValueError("the scipy backend has its own line search (dcsrch): leave linesearch None")
        if not (np.isfinite(self.units) and self.units > 0):
            raise ValueError(f"units must be a positive number, got {self.units!r}")
        if self.units != 1.0 and self.backend != "scipy":
            raise ValueError("units scale the scipy backend's variable; the batched backends scale by 1/‖∇f(x0)‖₁")
        if self.backend == "optax" and self.linesearch == "hager-zhang":
            raise ValueError("optax has no hager-zhang line search; use 'zoom' or 'backtracking'")
        if not (isinstance(self.maxiter, int) and self.maxiter >= 1):
            raise ValueError(f"maxiter must be a positive integer, got {self.maxiter!r}")
        if self.history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {self.history_size}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.ftol < 0:
            raise ValueError(f"ftol must be >= 0, got {self.ftol}")
        if self.bounds is not None and not (
            len(self.bounds) == 2
            and np.shape(self.bounds[0]) == np.shape(self.bounds[1])
            and np.all(np.less(self.bounds[0], self.bounds[1]))
        ):
            raise ValueError(
                f"bounds must be (low, high) with low < high (scalars or one per channel), got {self.bounds}"
            )


class MinimizeResult(NamedTuple):
    """x: best iterate; history: [maxiter + 1] loss per iteration (NaN after a stop);
    num_iters: iterations run; value: loss at x."""

    x: jax.Array
    history: jax.Array
    num_iters: jax.Array
    value: jax.Array


class SolveState(NamedTuple):
    """The loop carry of one problem: iteration k, iterate x, solver state, objective scale, last loss,
    best iterate and loss so far, loss history, streak of small changes, and whether it stopped."""

    k: jax.Array
    x: jax.Array
    state: Any
    scale: jax.Array
    f_prev: jax.Array
    best_x: jax.Array
    best_f: jax.Array
    history: jax.Array
    streak: jax.Array
    done: jax.Array


def _scaled(fun):
    def sfun(x, s, *a):
        return s * fun(x, *a)

    return sfun


def _steps(fun, config: SolverConfig):
    return (_jaxopt_steps if config.backend == "jaxopt" else _optax_steps)(_scaled(fun), config)


def minimize_init(
    fun: Callable[..., jax.Array], x0: jax.Array, args: tuple = (), config: SolverConfig = SolverConfig()
) -> SolveState:
    """Start state for minimising fun(x, *args) -> scalar from x0 (one problem). Traceable."""
    if config.bounds is not None:
        x0 = jnp.clip(x0, *_box(x0, *config.bounds))
    f0, g0 = jax.value_and_grad(fun)(x0, *args)
    scale = jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.sum(jnp.abs(g0)), 1e-30))
    init, _ = _steps(fun, config)
    f0 = f0.astype(jnp.float32)
    history = jnp.full((config.maxiter + 1,), jnp.nan, jnp.float32).at[0].set(f0)
    return SolveState(
        jnp.asarray(0), x0, init(x0, scale, args), scale, f0, x0, f0, history, jnp.asarray(0), ~jnp.isfinite(f0)
    )


def minimize_step(
    fun: Callable[..., jax.Array], c: SolveState, args: tuple = (), config: SolverConfig = SolverConfig()
) -> SolveState:
    """One L-BFGS iteration; a problem that has stopped (done, or maxiter reached) stays as it is."""
    _, step = _steps(fun, config)
    x, state, f_scaled = step(c.x, c.state, c.scale, args)
    f = (f_scaled / c.scale).astype(jnp.float32)
    k = c.k + 1
    finite = jnp.isfinite(f)
    better = finite & (f < c.best_f)
    small = (k > 1) & (jnp.abs(f - c.f_prev) <= config.ftol * jnp.abs(c.f_prev))
    streak = jnp.where(small, c.streak + 1, 0)
    done = ~finite
    if config.ftol > 0:
        done |= streak >= config.patience
    new = SolveState(
        k,
        x,
        state,
        c.scale,
        f,
        jnp.where(better, x, c.best_x),
        jnp.where(better, f, c.best_f),
        c.history.at[k].set(f),
        streak,
        done,
    )
    active = ~c.done & (c.k < config.maxiter)
    return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, c)


def minimize(
    fun: Callable[..., jax.Array], x0: jax.Array, args: tuple = (), config: SolverConfig = SolverConfig()
) -> MinimizeResult:
    """Minimise fun(x, *args) -> scalar from x0 (one problem; vmap for many), as one traced while loop."""
    out = jax.lax.while_loop(
        lambda c: (c.k < config.maxiter) & ~c.done,
        lambda c: minimize_step(fun, c, args, config),
        minimize_init(fun, x0, args, config),
    )
    return MinimizeResult(out.best_x, out.history, out.k, out.best_f)


def _jaxopt_steps(sfun, config: SolverConfig):
    fixed = config.linesearch is None
    kw = dict(
        fun=sfun,
        maxiter=config.maxiter,
        history_size=config.history_size,
        stepsize=1.0 if fixed else 0.0,
        linesearch=config.linesearch or "zoom",
        implicit_diff=False,
    )
    if config.bounds is not None:
        lo, hi = config.bounds
        solver = jaxopt.LBFGSB(**kw)

        def init(x0, s, args):
            return solver.init_state(x0, _box(x0, lo, hi), s, *args)

        def step(x, state, s, args):
            x, state = solver.update(x, state, _box(x, lo, hi), s, *args)
            return x, state, state.value

        return init, step

    solver = jaxopt.LBFGS(**kw)

    def init(x0, s, args):
        return solver.init_state(x0, s, *args)

    def step(x, state, s, args):
        slot = state.iter_num % config.history_size
        x, new = solver.update(x, state, s, *args)
        if fixed:  # skip pairs without positive curvature (sᵀy <= 1e-10), as torch.optim.LBFGS does
            rho = new.rho_history[slot]
            ok = (rho > 0) & (rho < 1e10)
            new = new._replace(
                rho_history=new.rho_history.at[slot].set(jnp.where(ok, rho, 0.0)),
                gamma=jnp.where(ok, new.gamma, state.gamma),
            )
        return x, new, new.value

    return init, step


def _box(x, lo, hi):
    """The box as two arrays of x's shape (scalars, or one value per channel on the last axis)."""
    return tuple(jnp.broadcast_to(jnp.asarray(v, x.dtype), x.shape) for v in (lo, hi))


def _optax_steps(sfun, config: SolverConfig):
    if config.linesearch is None:
        opt = optax.lbfgs(learning_rate=1.0, memory_size=config.history_size, linesearch=None)
    elif config.linesearch == "zoom":
        opt = optax.lbfgs(
            memory_size=config.history_size, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=20)
        )
    else:
        opt = optax.lbfgs(
            memory_size=config.history_size,
            linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20),
        )
    vg = jax.value_and_grad(sfun)

    def init(x0, s, args):
        v, g = vg(x0, s, *args)
        return opt.init(x0), v, g

    def step(x, state, s, args):
        opt_state, v, g = state
        updates, opt_state = opt.update(g, opt_state, x, value=v, grad=g, value_fn=lambda z: sfun(z, s, *args))
        x = optax.apply_updates(x, updates)
        if config.bounds is not None:
            x = jnp.clip(x, *_box(x, *config.bounds))
        v, g = vg(x, s, *args)
        return x, (opt_state, v, g), v

    return init, step


# ------------------------------------------------------------------------------------ feature inversion


TV_FORMS = ("beta", "squared", "per-pixel", "tv-norm")


@dataclasses.dataclass(frozen=True)
class FeatureLoss:
    """Objective Σ_l w_l · d(φ_l(x), t_l) + tv_weight · TV(x) for one image x: [H, W, 3] in [0, 1].

    model: the VGG19 module (its pooling and compute dtype). taps: the layers compared.
    layer_weights: one per tap (default 1). reduction: "sum" (½‖·‖², DFI paper), "sum/taps" (½‖·‖² ÷
      number of taps, the official DFI code) or "mean" (Chainer).
    tv_form: "beta" (Σ(Δ²)^(β/2) on the 0-255 scale, see losses.tv_beta), "squared" (losses.tv_squared),
      "per-pixel" (ΣΔ² / (H·W·C) on the 0-255 scale, losses.tv_per_pixel) or "tv-norm" (the official DFI
      code's TV^β with its 1e-3 floor, losses.tv_norm).
    """

    model: VGG19 = VGG19()
    taps: tuple[str, ...] = ("relu3_1", "relu4_1", "relu5_1")
    layer_weights: tuple[float, ...] | None = None
    reduction: str = "sum"
    tv_weight: float = 0.0
    tv_form: str = "beta"
    tv_beta: float = 2.0

    def __post_init__(self):
        if isinstance(self.taps, str) or not self.taps:
            raise ValueError(f"taps must be a non-empty tuple of layer names, got {self.taps!r}")
        for t in self.taps:
            layer_index(t)
        if self.layer_weights is not None and len(self.layer_weights) != len(self.taps):
            raise ValueError(f"{len(self.layer_weights)} layer weights for taps {self.taps}")
        if self.tv_form not in TV_FORMS:
            raise ValueError(f"tv_form must be one of {TV_FORMS}, got {self.tv_form!r}")
        losses.check_weights(
            tv_weight=self.tv_weight, **{f"layer weight {i}": w for i, w in enumerate(self.layer_weights or ())}
        )
        if self.reduction not in losses.REDUCTIONS:
            raise ValueError(f"reduction must be one of {losses.REDUCTIONS}, got {self.reduction!r}")

    def target_names(self) -> tuple[str, ...]:
        """The keys `invert` expects in its targets (any objective with this method and
        __call__(x, variables, targets) -> scalar can be inverted)."""
        return self.taps

    def features(self, variables: Mapping, x: jax.Array) -> dict[str, jax.Array]:
        """x: [H, W, 3] -> {tap: [h, w, C] float32}."""
        feats = self.model.apply(variables, x[None], taps=self.taps)
        return {k: v[0] for k, v in feats.items()}

    def __call__(self, x: Image, variables: Mapping, targets: Mapping[str, jax.Array]) -> Scalar:
        loss = losses.feature_mse(self.features(variables, x), targets, self.taps, self.layer_weights, self.reduction)
        if self.tv_weight:
            tv = {
                "beta": lambda: losses.tv_beta(x, self.tv_beta),
                "squared": lambda: losses.tv_squared(x),
                "per-pixel": lambda: losses.tv_per_pixel(x),
                "tv-norm": lambda: losses.tv_norm(x, self.tv_beta),
            }[self.tv_form]()
            loss = loss + self.tv_weight * tv
        return loss


class InversionResult(NamedTuple):
    """images: [B, H, W, 3]; loss_history: [B, maxiter + 1] (NaN after an early stop);
    num_iters: [B]; final_loss: [B] (the loss of `images`)."""

    images: jax.Array
    loss_history: jax.Array
    num_iters: jax.Array
    final_loss: jax.Array


@functools.partial(jax.jit, static_argnums=(0,))
def _features_batch(loss: FeatureLoss, variables, images):
    return jax.vmap(lambda x: loss.features(variables, x))(images)


def feature_targets(loss: FeatureLoss, variables: Mapping, images: Images) -> dict[str, jax.Array]:
    """φ(images) at the loss's taps: images [B, H, W, 3] -> {tap: [B, h, w, C]} (one compile per shape)."""
    check_image_batch(images)
    return _features_batch(loss, variables, jnp.asarray(images, jnp.float32))


def _solve_batch(loss: FeatureLoss, config: SolverConfig, variables, targets, x0):
    def one(t, x):
        r = minimize(loss, x, (variables, t), config)
        return InversionResult(r.x, r.history, r.num_iters, r.value)

    return jax.vmap(one)(targets, x0)


def _init_batch(loss: FeatureLoss, config: SolverConfig, variables, targets, x0) -> SolveState:
    return jax.vmap(lambda t, x: minimize_init(loss, x, (variables, t), config))(targets, x0)


def _step_batch(loss: FeatureLoss, config: SolverConfig, variables, targets, state: SolveState) -> SolveState:
    return jax.vmap(lambda t, c: minimize_step(loss, c, (variables, t), config))(targets, state)


def _run_batch(loss: FeatureLoss, config: SolverConfig, variables, targets, state: SolveState, until) -> SolveState:
    """Iterate every problem on the device until iteration `until` (a traced scalar: one compile for
    every chunk length), or until it stops."""

    def one(t, c):
        return jax.lax.while_loop(
            lambda c: (c.k < jnp.minimum(until, config.maxiter)) & ~c.done,
            lambda c: minimize_step(loss, c, (variables, t), config),
            c,
        )

    return jax.vmap(one)(targets, state)


_solve_batch_jit = jax.jit(_solve_batch, static_argnums=(0, 1))
# the loop state is donated: each call's output takes its input's buffers (on every backend)
_run_batch_jit = jax.jit(_run_batch, static_argnums=(0, 1), donate_argnums=(4,))
_init_batch_jit = jax.jit(_init_batch, static_argnums=(0, 1))
_step_batch_jit = jax.jit(_step_batch, static_argnums=(0, 1), donate_argnums=(4,))
_ONE_DEVICE = {"solve": _solve_batch_jit, "run": _run_batch_jit, "init": _init_batch_jit, "step": _step_batch_jit}


@functools.lru_cache(maxsize=None)
def _per_device(m: jax.sharding.Mesh) -> dict[str, Callable]:
    """The four batched programs with the problems split over m: each device solves its own problems,
    independently (shard_map, no collective). Left to the SPMD partitioner instead, a batched while
    loop needs every device's flags each iteration, and with a line search inside it XLA:CPU took
    minutes and gigabytes to compile for 8 devices."""
    spec = P(mesh.AXIS)

    def wrap(fn: Callable, donate: tuple[int, ...]) -> Callable:
        def body(loss, config, variables, targets, batched, *rest):
            local = jax.shard_map(
                functools.partial(fn, loss, config),
                mesh=m,
                in_specs=(P(), spec, spec) + (P(),) * len(rest),
                out_specs=spec,
                check_vma=False,
            )
            return local(variables, targets, batched, *rest)

        return jax.jit(body, static_argnums=(0, 1), donate_argnums=donate)

    return {
        "solve": wrap(_solve_batch, ()),
        "run": wrap(_run_batch, (4,)),
        "init": wrap(_init_batch, ()),
        "step": wrap(_step_batch, (4,)),
    }


def invert(
    loss: Any,
    variables: Mapping,
    targets: Mapping[str, jax.Array],
    x0: Images,
    config: SolverConfig = SolverConfig(),
    *,
    loop: str = "auto",
    progress: Callable[[int, jax.Array], None] | None = None,
    check_every: int = 10,
    shard: bool = False,
    snapshot: Callable[[int, jax.Array], None] | None = None,
) -> InversionResult:
    """Find images whose features match `targets`; all problems are solved together, vmapped.

    loss: a FeatureLoss, or any hashable objective with target_names() and __call__(x, variables,
      targets) -> scalar (e.g. style.StyleLoss).
    targets: {tap: [B, h, w, C]} (e.g. feature_targets(...) or φ(x) + α·w); x0: [B, H, W, 3] float32
    initial images (the input, noise, or anything).
    loop: "device" runs the solve as compiled while loops (the whole solve as one, or with `progress`
      one per `check_every` iterations); "host" calls one compiled, vmapped L-BFGS step per iteration
      from Python (XLA:CPU runs while-loop bodies ~3x slower, so "auto" picks "host" on CPU and
      "device" elsewhere; $DFIJAX_INVERT_LOOP overrides "auto"). Both give the same result and compile
      once per (loss, config, shapes).
    progress: called as progress(iteration, losses [B]) every `check_every` iterations (and at the
      last), where the loop also stops once every problem has stopped.
    shard: split the problems across all local devices (jax.make_mesh + NamedSharding on the batch
      axis; padded to a multiple of the device count). Results are the same as on one device.
    snapshot: called as snapshot(iteration, images [B, H, W, 3]) with the current iterates (not the
      best so far) every `check_every` iterations, e.g. to keep intermediate reconstructions.
    """
    if loop == "auto":  # $DFIJAX_INVERT_LOOP picks for every caller (e.g. "device" to run the GPU path on a CPU)
        loop = os.environ.get("DFIJAX_INVERT_LOOP") or ("host" if jax.default_backend() == "cpu" else "device")
    if loop not in ("host", "device"):
        raise ValueError(f"loop must be 'auto', 'host' or 'device', got {loop!r}")
    check_image_batch(x0, "initial images")
    names = loss.target_names()
    missing = [t for t in names if t not in targets]
    if missing:
        raise ValueError(f"targets lack taps {missing}; compute them with feature_targets(loss, ...)")
    b = x0.shape[0]
    for t in names:
        if targets[t].shape[0] != b:
            raise ValueError(f"targets[{t!r}] has batch {targets[t].shape[0]} but x0 has {b} images")
    targets = {t: jnp.asarray(targets[t], jnp.float32) for t in names}
    x0 = jnp.asarray(x0, jnp.float32)
    if not bool(jnp.isfinite(x0).all()):
        raise ValueError("initial images contain NaN or inf; check the input images or the init")
    bad = [t for t in names if not bool(jnp.isfinite(targets[t]).all())]
    if bad:
        raise ValueError(f"targets {bad} contain NaN or inf; check the weights, the inputs and the attribute vector")
    if config.backend == "scipy":
        return _invert_scipy(loss, variables, targets, x0, config, progress, check_every, snapshot)
    n_dev = mesh.local_device_count()
    fns = _ONE_DEVICE
    if shard and n_dev > 1:
        pad = (-b) % n_dev
        if pad:
            targets = {t: jnp.concatenate([v, jnp.repeat(v[-1:], pad, 0)]) for t, v in targets.items()}
            x0 = jnp.concatenate([x0, jnp.repeat(x0[-1:], pad, 0)])
        m = mesh.data_mesh()
        targets, x0 = mesh.shard_batch((targets, x0), m)
        variables = mesh.replicate(variables, m)
        fns = _per_device(m)

    def report(k: int, losses: jax.Array) -> None:
        if progress is not None:
            progress(k, losses[:b])
        if snapshot is not None:
            snapshot(k, jnp.copy(state.x[:b]))  # a copy: the next step donates the state

    def result(r: InversionResult) -> InversionResult:
        return r if r.images.shape[0] == b else jax.tree.map(lambda a: a[:b], r)

    if loop == "device" and progress is None and snapshot is None:
        return result(fns["solve"](loss, config, variables, targets, x0))

    state = fns["init"](loss, config, variables, targets, x0)
    if loop == "device":  # compiled chunks of check_every iterations, reported between them
        k = 0
        while k < config.maxiter:
            k = min(k + check_every, config.maxiter)
            state = fns["run"](loss, config, variables, targets, state, jnp.asarray(k))
            report(k, state.f_prev)
            if bool(jnp.all(state.done)):
                break
        return result(InversionResult(state.best_x, state.history, state.k, state.best_f))

    for k in range(1, config.maxiter + 1):
        state = fns["step"](loss, config, variables, targets, state)
        if k % check_every == 0 or k == config.maxiter:
            report(k, state.f_prev)
            if config.ftol > 0 and bool(jnp.all(state.done)):
                break
    return result(InversionResult(state.best_x, state.history, state.k, state.best_f))


@functools.partial(jax.jit, static_argnums=(0,))
def _value_and_grad(loss, x, variables, targets):
    return jax.value_and_grad(loss)(x, variables, targets)


def _invert_scipy(loss, variables, targets, x0, config: SolverConfig, progress, check_every, snapshot):
    """The problems one after another through scipy's L-BFGS-B (one compiled objective for all).
    progress(k, losses [B]) counts iterations of all problems in units of one problem's maxiter (losses:
    each problem's latest value, NaN before it starts); snapshot(k, images) shows each problem's
    current iterate (the start before it runs, the result after)."""
    b = x0.shape[0]
    current = np.array(x0, np.float32)
    latest = np.full(b, np.nan, np.float32)
    bounds = None if config.bounds is None else tuple(np.asarray(v, np.float64) for v in config.bounds)
    out, history, iters, final = [], [], [], []
    for i in range(b):
        t = {k: v[i] for k, v in targets.items()}

        def value_and_grad(x, t=t):
            f, g = _value_and_grad(loss, jnp.asarray(x, jnp.float32), variables, t)
            return float(f), np.asarray(g)

        def step(k, x, f, i=i):
            current[i], latest[i] = x, f
            if k % check_every == 0:
                done = (i * config.maxiter + k) // b
                if progress is not None:
                    progress(done, jnp.asarray(latest))
                if snapshot is not None:
                    snapshot(done, jnp.asarray(current))

        r = scipy_lbfgsb.minimize(
            value_and_grad,
            current[i],
            maxiter=config.maxiter,
            history_size=config.history_size,
            ftol=config.ftol,
            bounds=bounds,
            units=config.units,
            callback=step,
        )
        current[i], latest[i] = r.x, r.value
        out.append(r.x)
        history.append(r.history)
        iters.append(r.num_iters)
        final.append(r.value)
    if progress is not None:
        progress(config.maxiter, jnp.asarray(latest))
    return InversionResult(
        jnp.asarray(np.stack(out), jnp.float32),
        jnp.asarray(np.stack(history), jnp.float32),
        jnp.asarray(iters),
        jnp.asarray(final, jnp.float32),
    )


def noise_init(key: jax.Array, shape: Sequence[int], low: float = 0.0, high: float = 1.0) -> Float[Array, "..."]:
    """Uniform noise images in [low, high] (e.g. shape [B, H, W, 3])."""
    return jax.random.uniform(key, tuple(shape), jnp.float32, low, high)
