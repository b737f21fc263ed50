"""Training and evaluating a DTN: the classifiers (f on the source domain; the evaluation classifier
on the target domain), pure jitted D and G steps, the resumable DTN loop, and transfer accuracy.

Images are [B, 32, 32, 3] float32 in [0, 1] (digits; [B, S, S, 3] with S = g.size for the faces
setting, where f is a frozen VGG-19, `dfijax.dtn.faces`); labels [B] int32 0-9. f's parameters are an argument
of the steps, never part of the trained state, so no optimiser ever sees them (f stays frozen); G's
objective still differentiates through f into G(s) for L_CONST.

Networks with batch normalisation (the paper's faces nets, `uses_batch_stats`) keep their running
statistics in `DTNState.g_stats` / `d_stats` ({} for the other nets), outside the optimiser. In
training every network uses batch statistics: g on the source and target features together, D on
[G(s); G(t); t] in its step and on [G(s); G(t)] in G's. Only g's step updates g's running averages and
only D's step D's (a D step leaves g's state alone and a G step D's). `translate` uses g's running
averages.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from dfijax import training
from dfijax.dtn import losses as L
from dfijax.dtn.model import SIZE, DigitClassifier, Discriminator, Generator, PaperDiscriminator, PaperGenerator

TrainState = train_state.TrainState
Batch = tuple[jax.Array, jax.Array]


def check_images(x: np.ndarray, name: str, size: int = SIZE) -> None:
    """Raise ValueError unless x is [N, size, size, 3] float with values in [0, 1]."""
    shape = tuple(np.shape(x))
    if len(shape) != 4 or shape[1:] != (size, size, 3):
        raise ValueError(
            f"{name} images have shape {shape}; the DTN takes [N, {size}, {size}, 3] "
            f"(resize to {size}x{size} and repeat grey to RGB first)"
        )
    if shape[0] == 0:
        raise ValueError(f"{name} holds no images")
    lo, hi = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} images range over [{lo:.3g}, {hi:.3g}]; expected floats in [0, 1]")


# --- classifiers ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    steps: int = 600
    batch: int = 64
    lr: float = 1e-3
    shift: int = 2  # random translation of up to ±shift px (augmentation)
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1 or not self.lr > 0 or self.shift < 0:
            raise ValueError(f"classifier steps, batch and lr must be positive and shift >= 0, got {self}")


def _shift(x: jax.Array, rng: jax.Array, k: int) -> jax.Array:
    """Translate each image of [B, H, W, C] by up to ±k px (zero-padded with the border colour)."""
    if k == 0:
        return x
    b, h, w, _ = x.shape
    pad = jnp.pad(x, ((0, 0), (k, k), (k, k), (0, 0)), mode="edge")
    off = jax.random.randint(rng, (b, 2), 0, 2 * k + 1)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(pad, off)


@functools.lru_cache(maxsize=16)  # one compilation per (model, shift) and process
def make_classifier_step(model: DigitClassifier, shift: int = 2) -> Callable:
    """Pure (state, (x [B,32,32,3], y [B]), rng) -> (state, metrics); non-finite steps are skipped."""

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        x, y = batch
        x = _shift(x, jax.random.fold_in(rng, state.step), shift)

        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        ok = training.all_finite(loss, grads)
        new = training.nan_guard(state.apply_gradients(grads=grads), state, ok)
        return new, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == y), "finite": ok.astype(jnp.float32)}

    return jax.jit(step, donate_argnums=training.donate_argnums(0))


@functools.partial(jax.jit, static_argnums=(0,))
def _init_classifier(model: DigitClassifier, seed: jax.Array):
    return model.init(jax.random.key(seed, impl="rbg"), jnp.zeros((1, SIZE, SIZE, 3)))["params"]


_logits_jit = jax.jit(lambda model, params, x: model.apply({"params": params}, x), static_argnums=(0,))


def _padded_batches(x: np.ndarray, batch: int):
    """Yield (chunk padded to `batch` rows, true length): every call then has one shape (one compile)."""
    for i in range(0, len(x), batch):
        chunk = np.asarray(x[i : i + batch], np.float32)
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n,) + chunk.shape[1:], np.float32)])
        yield jnp.asarray(chunk), n


def predict(model: DigitClassifier, params: Any, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """[N, 32, 32, 3] -> [N] predicted labels."""
    out = [np.argmax(np.asarray(_logits_jit(model, params, c))[:n], -1) for c, n in _padded_batches(x, batch)]
    return np.concatenate(out).astype(np.int32) if out else np.zeros((0,), np.int32)


def accuracy(model: DigitClassifier, params: Any, x: np.ndarray, y: np.ndarray, batch: int = 250) -> float:
    return float(np.mean(predict(model, params, x, batch) == np.asarray(y)))


def train_classifier(
    model: DigitClassifier,
    x: np.ndarray,
    y: np.ndarray,
    config: ClassifierConfig = ClassifierConfig(),
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_key: str | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> tuple[Any, dict, bool]:
    """Train a classifier on (x, y) (or restore it from cache_dir/cache_key with orbax). Minibatch i
    is a seeded function of i. Returns (params, metrics {train_loss, test_accuracy?}, from_cache)."""
    import orbax.checkpoint as ocp

    check_images(x, "classifier training")
    init = _init_classifier(model, config.seed)
    mngr = None
    if cache_dir is not None and cache_key:
        path = (pathlib.Path(cache_dir) / cache_key).absolute()
        mngr = ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))
        if mngr.latest_step() is not None:
            r = mngr.restore(
                mngr.latest_step(),
                args=ocp.args.Composite(params=ocp.args.StandardRestore(init), metrics=ocp.args.JsonRestore()),
            )
            return r["params"], r["metrics"], True
    state = TrainState.create(apply_fn=None, params=init, tx=_adam(float(config.lr), 0.9))  # see init_state
    step = make_classifier_step(model, config.shift)
    key = jax.random.key(config.seed)
    m: dict = {}
    for i in range(config.steps):
        idx = np.random.default_rng([config.seed, i]).integers(0, len(x), config.batch)
        state, m = step(state, (jnp.asarray(x[idx]), jnp.asarray(y[idx])), key)
        if progress and ((i + 1) % 25 == 0 or i + 1 == config.steps):
            progress(i + 1, {k: float(v) for k, v in m.items()})
    metrics = {"train_loss": float(m["loss"]), "steps": config.steps, "n_train": int(len(x))}
    if eval_set is not None:
        metrics["test_accuracy"] = accuracy(model, state.params, *eval_set)
        metrics["n_test"] = int(len(eval_set[0]))
    if mngr is not None:
        mngr.save(
            config.steps,
            args=ocp.args.Composite(params=ocp.args.StandardSave(state.params), metrics=ocp.args.JsonSave(metrics)),
        )
        mngr.wait_until_finished()
        mngr.close()
    return state.params, metrics, False


# --- the DTN ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DTN:
    """G = g ∘ f with f frozen, and D. weights: the loss weights and D's class count.

    f: a `DigitClassifier` (f_params = its params; the digits setting) or any hashable object with
    `feat_dim` and `features(f_params, x) -> [B, feat_dim]` (e.g. `dfijax.dtn.faces.VGGFeatures`,
    f_params = the frozen VGG-19 variables and feature statistics). Images are [B, S, S, 3] with
    S = g.size (32 for digits)."""

    f: Any
    g: Generator | PaperGenerator
    d: Discriminator | PaperDiscriminator
    weights: L.DTNWeights

    def __post_init__(self):
        if self.d.num_classes != self.weights.num_classes:
            raise ValueError(f"D has {self.d.num_classes} classes but the weights ask for {self.weights.num_classes}")

    def features(self, f_params: Any, x: jax.Array) -> jax.Array:
        if isinstance(self.f, nn.Module):
            return self.f.apply({"params": f_params}, x, method="features")
        return self.f.features(f_params, x)

    def generate(self, f_params: Any, g_params: Any, x: jax.Array, g_stats: Any = None) -> jax.Array:
        """G(x) = g(f(x)): [B, S, S, 3] in [0, 1] -> [B, S, S, 3] in [0, 1] (S = g.size); g_stats:
        g's running batch statistics (`DTNState.g_stats`), needed when g has batch norm."""
        return apply_net(self.g, g_params, g_stats, self.features(f_params, x), train=False)[0]


def uses_batch_stats(net: Any) -> bool:
    """Whether a network has batch norm (and so "batch_stats" and a `train` argument)."""
    return bool(getattr(net, "uses_batch_stats", False))


def apply_net(net: Any, params: Any, stats: Any, x: jax.Array, train: bool) -> tuple[jax.Array, Any]:
    """(net(x), its batch statistics afterwards): batch statistics and updated running averages when
    train, the running averages otherwise; nets without batch norm ignore stats and train."""
    if not uses_batch_stats(net):
        return net.apply({"params": params}, x), stats
    if not stats:
        raise ValueError(
            f"{type(net).__name__} has batch norm: pass its running statistics (DTNState.g_stats or d_stats)"
        )
    variables = {"params": params, "batch_stats": stats}
    if not train:
        return net.apply(variables, x, train=False), stats
    out, upd = net.apply(variables, x, train=True, mutable=["batch_stats"])
    return out, upd["batch_stats"]


def make_dtn(
    weights: L.DTNWeights = L.PRESETS["digits"],
    f: DigitClassifier = DigitClassifier(),
    width: int = 32,
    d_width: int = 16,
    out_channels: int = 3,
) -> DTN:
    """A DTN for 32×32 digits (g of base width `width`, D of `d_width`) with D's class count taken
    from the weights."""
    if width < 1 or d_width < 1:
        raise ValueError(f"widths must be positive, got {width}, {d_width}")
    return DTN(f, Generator(width, out_channels), Discriminator(d_width, weights.num_classes), weights)


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
    tx = _adam(float(lr), float(b1))
    zero = jnp.zeros((), jnp.int32)
    # apply_fn=None: a bound method compares by identity, so it would make equal networks' states
    # differ in tree structure and compile again. Steps strongly typed and arrays committed to one
    # device, as a restored checkpoint has them, for the same reason.
    state = DTNState(
        g=TrainState.create(apply_fn=None, params=g_params, tx=tx).replace(step=zero),
        d=TrainState.create(apply_fn=None, params=d_params, tx=tx).replace(step=zero),
        g_stats=dict(g_vars.get("batch_stats", {})),
        d_stats=dict(d_vars.get("batch_stats", {})),
    )
    return jax.device_put(state, jax.local_devices()[0])


@functools.lru_cache(maxsize=32)
def _adam(lr: float, b1: float) -> optax.GradientTransformation:
    """One optimiser object per setting: it is static pytree data of the state, so a fresh one would
    make every jitted step trace and compile again."""
    return optax.adam(lr, b1=b1)


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


def _structure(dtn: DTN) -> DTN:
    """The DTN with α, β, γ zeroed: what a compiled step depends on besides the coefficient array."""
    return dataclasses.replace(dtn, weights=dtn.weights.replace(alpha=0.0, beta=0.0, gamma=0.0))


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

    return jax.jit(step, donate_argnums=training.donate_argnums(0))


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

    return jax.jit(step, donate_argnums=training.donate_argnums(0))


def make_d_step(dtn: DTN) -> Callable:
    """Pure, jitted (state, (s, t), rng, f_params) -> (state, metrics): one Adam step on D's params
    (g and f fixed). rng is unused (no stochastic layers) and kept for the shared step signature.
    Compiled once per network structure and process (α, β, γ do not matter)."""
    return _d_step_jit(_structure(dtn))


def make_g_step(dtn: DTN) -> Callable:
    """Pure, jitted (state, (s, t), rng, f_params) -> (state, metrics): one Adam step on g's params
    (f and D fixed). rng is unused, as in the D step. α, β, γ enter as traced numbers, so the β = 0
    ablation reuses the full DTN's compilation."""
    fn, coef = _g_step_jit(_structure(dtn)), _coef(dtn.weights)
    return lambda state, batch, rng, f_params: fn(state, batch, rng, f_params, coef)


def train_dtn(
    dtn: DTN,
    f_params: Any,
    batches: Callable[[int], tuple[np.ndarray, np.ndarray]],
    steps: int,
    ckpt_dir: str | os.PathLike,
    *,
    lr: float = 3e-4,
    seed: int = 0,
    g_steps: int = 1,
    save_every: int = 100,
    keep: int = 2,
    log_every: int = 10,
    log: Callable[[int, dict], None] | None = None,
) -> tuple[DTNState, int]:
    """Train to `steps` iterations (each: one D step, then g_steps G steps on the same batch),
    resuming from the newest checkpoint in ckpt_dir. batches(i) -> (source, target), each
    [B, 32, 32, 3] in [0, 1], a pure function of i, so a resumed run equals an uninterrupted one.
    Metrics every log_every iterations to ckpt_dir/metrics.jsonl. Returns (state, resumed-from step)."""
    if steps < 0 or g_steps < 1 or save_every < 1 or log_every < 1:
        raise ValueError(
            f"steps must be >= 0 and g_steps, save_every, log_every >= 1; got {steps}, {g_steps}, "
            f"{save_every}, {log_every}"
        )
    ckpt = training.Checkpointer(ckpt_dir, keep=keep, save_every=save_every)
    state, start = ckpt.restore_or(init_state(dtn, lr, seed))
    d_step, g_step = make_d_step(dtn), make_g_step(dtn)
    base = jax.random.key(seed)
    metrics = training.MetricsLog(ckpt.directory / "metrics.jsonl")
    with ckpt:
        for i in range(start, steps):
            s, t = batches(i)
            batch = (jnp.asarray(s), jnp.asarray(t))
            rng = jax.random.fold_in(base, i)
            state, md = d_step(state, batch, rng, f_params)
            for j in range(g_steps):
                state, mg = g_step(state, batch, jax.random.fold_in(rng, j + 1), f_params)
            if (i + 1) % log_every == 0 or i + 1 == steps:
                rec = metrics.write(i + 1, {**md, **mg})
                if log:
                    log(i + 1, rec)
            ckpt.maybe_save(i + 1, state, final=i + 1 == steps)
    return state, start


_generate_jit = jax.jit(
    lambda dtn, f_params, g_params, g_stats, x: dtn.generate(f_params, g_params, x, g_stats), static_argnums=(0,)
)


def translate(
    dtn: DTN, f_params: Any, g_params: Any, x: np.ndarray, batch: int = 250, g_stats: Any = None
) -> np.ndarray:
    """G(x) for [N, S, S, 3] in [0, 1], in batches -> [N, S, S, 3] in [0, 1] (S = dtn.g.size); g_stats:
    g's running batch statistics (`DTNState.g_stats`) when g has batch norm."""
    net = _structure(dtn)  # the loss weights do not change G
    if uses_batch_stats(dtn.g) and not g_stats:
        raise ValueError(f"{type(dtn.g).__name__} has batch norm: pass g_stats=state.g_stats to translate")
    out = [np.asarray(_generate_jit(net, f_params, g_params, g_stats, c))[:n] for c, n in _padded_batches(x, batch)]
    return np.concatenate(out) if out else np.zeros((0, dtn.g.size, dtn.g.size, 3), np.float32)


def transfer_accuracy(
    dtn: DTN,
    f_params: Any,
    g_params: Any,
    clf: DigitClassifier,
    clf_params: Any,
    x_source: np.ndarray,
    y_source: np.ndarray,
) -> float:
    """The paper's digits metric: the target-domain classifier's accuracy on G(source) against the
    source labels."""
    return accuracy(clf, clf_params, translate(dtn, f_params, g_params, x_source), y_source)
