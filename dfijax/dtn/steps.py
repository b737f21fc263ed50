"""The DTN's training state and its pure, jitted steps: D's and G's objectives, one Adam step on D
(g and f fixed) and one on g (f and D fixed), and the training iteration (one D step, then G steps).

Images are [B, 32, 32, 3] float32 in [0, 1] (digits; [B, S, S, 3] with S = g.size for the faces
setting, where f is a frozen VGG-19, `dfijax.dtn.faces`). f's parameters are an argument of the steps,
never part of the trained state, so no optimiser ever sees them (f stays frozen); G's objective still
differentiates through f into G(s) for L_CONST.

Networks with batch normalisation (the paper's faces nets, `uses_batch_stats`) keep their running
statistics in `DTNState.g_stats` / `d_stats` ({} for the other nets), outside the optimiser. In
training every network uses batch statistics: g on the source and target features together, D on
[G(s); G(t); t] in its step and on [G(s); G(t)] in G's. Only g's step updates g's running averages and
only D's step D's (a D step leaves g's state alone and a G step D's). `translate` uses g's running
averages.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
from flax.training import train_state

from dfijax import mesh, training
from dfijax.dtn import losses as L
from dfijax.dtn.fitting import adam
from dfijax.dtn.model import Discriminator, Generator, PaperDiscriminator, PaperGenerator
from dfijax.dtn.networks import DTN, apply_net, structure

TrainState = train_state.TrainState
Batch = tuple[jax.Array, jax.Array]


@flax.struct.dataclass
class DTNState:
    """g's and D's train states, and their batch-norm running statistics ({} for nets without)."""

    g: TrainState
    d: TrainState
    g_stats: Any = flax.struct.field(default_factory=dict)
    d_stats: Any = flax.struct.field(default_factory=dict)


def init_state(dtn: DTN, lr: float = 3e-4, seed: int = 0, b1: float = 0.5) -> DTNState:
    """g and D initialised from the seed, each with its own Adam(lr, b1)."""
    if not lr > 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    g_vars, d_vars = _init_params(dtn.g, dtn.d, dtn.f.feat_dim, seed)
    g_params, d_params = g_vars["params"], d_vars["params"]
    tx = adam(float(lr), float(b1))
    # apply_fn=None: a bound method compares by identity, so it would make equal networks' states
    # differ in tree structure and compile again. Steps strongly typed and arrays committed to one
    # device, as a restored checkpoint has them, for the same reason. Two step counters, not one array
    # twice: the steps donate the state, and a buffer can be donated only once.
    state = DTNState(
        g=TrainState.create(apply_fn=None, params=g_params, tx=tx).replace(step=jnp.zeros((), jnp.int32)),
        d=TrainState.create(apply_fn=None, params=d_params, tx=tx).replace(step=jnp.zeros((), jnp.int32)),
        g_stats=dict(g_vars.get("batch_stats", {})),
        d_stats=dict(d_vars.get("batch_stats", {})),
    )
    return jax.device_put(state, mesh.local_devices()[0])


# Jitted inits with the "rbg" PRNG: on XLA:CPU, compiling threefry for every parameter takes seconds.
@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _init_params(g: Generator | PaperGenerator, d: Discriminator | PaperDiscriminator, feat_dim: int, seed: jax.Array):
    """(g's variables, D's variables): {"params": ...} plus "batch_stats" for batch-norm nets."""
    kg, kd = jax.random.split(jax.random.key(seed, impl="rbg"))
    return (dict(g.init(kg, jnp.zeros((1, feat_dim)))), dict(d.init(kd, jnp.zeros((1, g.size, g.size, 3)))))


def _split3(logits: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    return logits[:n], logits[n : 2 * n], logits[2 * n :]


def d_objective(
    dtn: DTN, d_params: Any, g_s: jax.Array, g_t: jax.Array, t: jax.Array, d_stats: Any = None
) -> tuple[jax.Array, tuple[dict, Any]]:
    """L_D on fixed G(s), G(t) and real t (all [B, S, S, 3]) -> (loss, (metrics, D's updated batch
    statistics)); D sees the three as one batch."""
    logits, d_stats = apply_net(dtn.d, d_params, d_stats, jnp.concatenate([g_s, g_t, t]), train=True)
    ls, lt, lr = _split3(logits, g_s.shape[0])
    loss = L.d_loss(ls, lt, lr, dtn.weights.three_class)
    real = L.REAL3 if dtn.weights.three_class else L.REAL2
    return loss, (
        {
            "d_loss": loss,
            "d_acc_real": jnp.mean(jnp.argmax(lr, -1) == real),
            "d_acc_fake": jnp.mean(jnp.concatenate([jnp.argmax(ls, -1), jnp.argmax(lt, -1)]) != real),
        },
        d_stats,
    )


def _generate_pair(
    dtn: DTN, f_params: Any, g_params: Any, g_stats: Any, s: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, Any]:
    """(f(s), G(s), G(t), g's updated batch statistics): g in training mode on f(s) and f(t) together."""
    f_s = jax.lax.stop_gradient(dtn.features(f_params, s))
    f_t = jax.lax.stop_gradient(dtn.features(f_params, t))
    out, g_stats = apply_net(dtn.g, g_params, g_stats, jnp.concatenate([f_s, f_t]), train=True)
    return f_s, out[: s.shape[0]], out[s.shape[0] :], g_stats


def g_objective(
    dtn: DTN,
    g_params: Any,
    d_params: Any,
    f_params: Any,
    s: jax.Array,
    t: jax.Array,
    coef: jax.Array | None = None,
    g_stats: Any = None,
    d_stats: Any = None,
) -> tuple[jax.Array, tuple[dict, Any]]:
    """L_G for source batch s and target batch t ([B, S, S, 3] each) -> (loss, (metrics, g's updated
    batch statistics)); coef: (α, β, γ) overriding dtn.weights' numbers."""
    f_s, g_s, g_t, g_stats = _generate_pair(dtn, f_params, g_params, g_stats, s, t)
    logits, _ = apply_net(dtn.d, d_params, d_stats, jnp.concatenate([g_s, g_t]), train=True)
    f_gs = dtn.features(f_params, g_s)
    loss, m = L.g_loss(dtn.weights, logits[: s.shape[0]], logits[s.shape[0] :], f_s, f_gs, t, g_t, g_s, coef)
    return loss, (m, g_stats)


def _coef(w: L.DTNWeights) -> jax.Array:
    return jnp.array([w.alpha, w.beta, w.gamma], jnp.float32)


@functools.lru_cache(maxsize=16)
def _d_step_jit(dtn: DTN) -> Callable:
    def step(state: DTNState, batch: Batch, rng: jax.Array, f_params: Any):
        s, t = batch
        _, g_s, g_t, _ = _generate_pair(dtn, f_params, state.g.params, state.g_stats, s, t)
        g_s, g_t = jax.lax.stop_gradient(g_s), jax.lax.stop_gradient(g_t)
        (loss, (m, d_stats)), grads = jax.value_and_grad(
            lambda p: d_objective(dtn, p, g_s, g_t, t, state.d_stats), has_aux=True
        )(state.d.params)
        ok = training.all_finite(loss, grads)
        new = state.replace(
            d=training.nan_guard(state.d.apply_gradients(grads=grads), state.d, ok),
            d_stats=training.nan_guard(d_stats, state.d_stats, ok),
        )
        return new, {**m, "d_finite": ok.astype(jnp.float32)}

    return jax.jit(step, donate_argnums=(0,))


@functools.lru_cache(maxsize=16)
def _g_step_jit(dtn: DTN) -> Callable:
    def step(state: DTNState, batch: Batch, rng: jax.Array, f_params: Any, coef: jax.Array):
        s, t = batch
        (loss, (m, g_stats)), grads = jax.value_and_grad(
            lambda p: g_objective(dtn, p, state.d.params, f_params, s, t, coef, state.g_stats, state.d_stats),
            has_aux=True,
        )(state.g.params)
        ok = training.all_finite(loss, grads)
        new = state.replace(
            g=training.nan_guard(state.g.apply_gradients(grads=grads), state.g, ok),
            g_stats=training.nan_guard(g_stats, state.g_stats, ok),
        )
        return new, {**m, "g_finite": ok.astype(jnp.float32)}

    return jax.jit(step, donate_argnums=(0,))


def make_d_step(dtn: DTN) -> Callable:
    """Pure, jitted (state, (s, t), rng, f_params) -> (state, metrics): one Adam step on D's params
    (g and f fixed). rng is unused (no stochastic layers) and kept for the shared step signature.
    Compiled once per network structure and process (α, β, γ do not matter)."""
    return _d_step_jit(structure(dtn))


def make_g_step(dtn: DTN) -> Callable:
    """Pure, jitted (state, (s, t), rng, f_params) -> (state, metrics): one Adam step on g's params
    (f and D fixed). rng is unused, as in the D step. α, β, γ enter as traced numbers, so the β = 0
    ablation reuses the full DTN's compilation."""
    fn, coef = _g_step_jit(structure(dtn)), _coef(dtn.weights)
    return lambda state, batch, rng, f_params: fn(state, batch, rng, f_params, coef)


def make_train_step(dtn: DTN, f_params: Any, g_steps: int = 1) -> Callable:
    """(state, (s, t), rng) -> (state, metrics): one D step, then g_steps G steps on the same batch
    (the G step j with fold_in(rng, j + 1)); metrics: the D step's and the last G step's."""
    d_step, g_step = make_d_step(dtn), make_g_step(dtn)

    def step(state: DTNState, batch: Batch, rng: jax.Array) -> tuple[DTNState, dict]:
        state, md = d_step(state, batch, rng, f_params)
        for j in range(g_steps):
            state, mg = g_step(state, batch, jax.random.fold_in(rng, j + 1), f_params)
        return state, {**md, **mg}

    return step
