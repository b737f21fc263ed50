"""Training and evaluating a DTN: the classifiers (f on the source domain; the evaluation classifier
on the target domain), pure jitted D and G steps, a run's settings (`DTNConfig`), its training on
`training.fit` (`train_dtn`) and `restore`, translation and transfer accuracy.

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

Many processes: `train_dtn` and `train_classifier` run on a mesh of every device of every process
(`training.global_mesh`), the state replicated, each global batch a pure function of the step of which
each process puts its own rows; only process 0 writes the metrics log and JSON. Every process of a job
calls them with the same arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pathlib
from typing import Any, Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from dfijax import training
from dfijax.batching import apply_params, map_batches
from dfijax.dtn import losses as L
from dfijax.dtn.model import SIZE, DigitClassifier, Discriminator, Generator, PaperDiscriminator, PaperGenerator
from dfijax.dtn.networks import DTN, apply_net, make_dtn, structure, translate, uses_batch_stats  # noqa: F401

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


# --- training over the mesh --------------------------------------------------------------------------


def fit_on_mesh(
    step: Callable[[Any, Any, jax.Array], tuple[Any, dict]],
    state: Any,
    batches: Callable[[int], Any],
    total: int,
    checkpointer: training.Checkpointer | None,
    *,
    rng: jax.Array,
    mesh: jax.sharding.Mesh | None = None,
    **fit_kw: Any,
) -> tuple[Any, list[dict[str, float]]]:
    """`training.fit` with the state replicated over the mesh (default: every device of every process)
    and batches(i) -> the global batch of step i (numpy, a pure function of i, the same on every
    process), of which each process puts its own rows. fit_kw: fit's keywords (log, log_every, hooks,
    milestones, progress). Returns fit's (state, records); the state stays replicated."""
    mesh = mesh or training.global_mesh()
    return training.fit(
        step,
        training.replicate(state, mesh),
        lambda i: training.put_global(batches(i), mesh),
        total,
        checkpointer,
        rng=rng,
        **fit_kw,
    )


# --- classifiers ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """A digit classifier's training run (f on the source domain, or the target-domain evaluation
    classifier): steps, batch, Adam's lr, random translations of up to ±shift px, seed, and the
    network (`DigitClassifier(width, feat_dim)`)."""

    steps: int = 600
    batch: int = 64
    lr: float = 1e-3
    shift: int = 2  # random translation of up to ±shift px (augmentation)
    seed: int = 0
    width: int = 32
    feat_dim: int = 128

    def __post_init__(self):
        if min(self.steps, self.batch, self.width, self.feat_dim) < 1 or not self.lr > 0 or self.shift < 0:
            raise ValueError(f"classifier steps, batch, widths and lr must be positive and shift >= 0, got {self}")

    def model(self) -> DigitClassifier:
        return DigitClassifier(width=self.width, feat_dim=self.feat_dim)


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
    """Pure (state, (x [B,32,32,3], y [B]), rng) -> (state, metrics), rng already folded with the step
    (the translations); non-finite steps are skipped."""

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        x, y = batch
        x = _shift(x, rng, shift)

        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        ok = training.all_finite(loss, grads)
        new = training.nan_guard(state.apply_gradients(grads=grads), state, ok)
        return new, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == y), "finite": ok.astype(jnp.float32)}

    return jax.jit(step, donate_argnums=(0,))


@functools.partial(jax.jit, static_argnums=(0,))
def _init_classifier(model: DigitClassifier, seed: jax.Array):
    return model.init(jax.random.key(seed, impl="rbg"), jnp.zeros((1, SIZE, SIZE, 3)))["params"]


def predict(model: DigitClassifier, params: Any, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """[N, 32, 32, 3] -> [N] predicted labels."""
    logits = map_batches(lambda c: apply_params(model, params, c), np.asarray(x, np.float32), batch)
    return np.argmax(logits, -1).astype(np.int32)


def accuracy(model: DigitClassifier, params: Any, x: np.ndarray, y: np.ndarray, batch: int = 250) -> float:
    return float(np.mean(predict(model, params, x, batch) == np.asarray(y)))


def _digest(config: Any, *arrays: np.ndarray) -> str:
    """A short hash of a config and arrays: the name of a cache folder."""
    h = hashlib.sha1(json.dumps(training.config_to_dict(config), sort_keys=True).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


CLASSIFIER_METRICS = "classifier_metrics.json"


def train_classifier(
    config: ClassifierConfig,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    cache_dir: str | os.PathLike | None = None,
    name: str = "classifier",
    mesh: jax.sharding.Mesh | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> tuple[Any, dict, bool]:
    """Train `config.model()` on (x [N, 32, 32, 3] in [0, 1], y [N] int labels) with `training.fit` over
    the mesh (minibatch i: seeded random rows, a function of i). With cache_dir, the run lives in
    cache_dir/<name>-<hash of config and data> (checkpoints and config via `training.Checkpointer`, the
    metrics as JSON): a finished run is read back, an interrupted one resumes. progress(step, record)
    every 25 steps. Returns (params on this process's first device, metrics {train_loss, steps,
    n_train, test_accuracy?, n_test?}, from_cache)."""
    check_images(x, "classifier training")
    model = config.model()
    template = TrainState.create(apply_fn=None, params=_init_classifier(model, config.seed), tx=_adam(config.lr, 0.9))
    ck = None
    if cache_dir is not None:
        folder = pathlib.Path(cache_dir) / f"{name}-{_digest(config, x, y)}"
        ck = training.Checkpointer(folder, keep=1, save_every=None, config=config)
        done = ck.directory / CLASSIFIER_METRICS
        if ck.latest_step == config.steps and done.is_file():
            state, _ = ck.restore_or(training.replicate(template, mesh or training.global_mesh()))
            ck.close()
            return training.local_copy(state.params), json.loads(done.read_text()), True

    def batches(i: int) -> Batch:
        idx = np.random.default_rng([config.seed, i]).integers(0, len(x), config.batch)
        return np.asarray(x[idx], np.float32), np.asarray(y[idx], np.int32)

    try:
        state, records = fit_on_mesh(
            make_classifier_step(model, config.shift),
            template,
            batches,
            config.steps,
            ck,
            rng=jax.random.key(config.seed),
            mesh=mesh,
            log_every=25,
            progress=(lambda i, r: r and progress(i, r)) if progress else None,
        )
    finally:
        if ck is not None:
            ck.close()
    params = training.local_copy(state.params)
    metrics = {"train_loss": records[-1]["loss"] if records else None, "steps": config.steps}
    metrics["n_train"] = int(len(x))
    if eval_set is not None:
        metrics["test_accuracy"] = accuracy(model, params, *eval_set)
        metrics["n_test"] = int(len(eval_set[0]))
    if ck is not None and training.is_main():
        (ck.directory / CLASSIFIER_METRICS).write_text(json.dumps(metrics, indent=2))
    return params, metrics, False


# --- training state -------------------------------------------------------------------------------


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


# --- a training run -----------------------------------------------------------------------------------

DOMAINS = ("digits", "faces")


@dataclasses.dataclass(frozen=True)
class DTNConfig:
    """One DTN training run, saved beside its checkpoints (`training.Checkpointer(config=)`); resuming
    under settings that differ in a field not marked resumable is a one-line `CheckpointMismatch`.

    domain: "digits" (f = `DigitClassifier(f_width, feat_dim)`, trained beforehand; 32 px; g of
    `out_channels`) or "faces" (f = `faces.VGGFeatures(taps, grid)`, frozen VGG-19; nets "small" or
    "paper", `faces.make_faces_dtn`). Loss weights: the named `preset` with alpha/beta/gamma overriding
    it when given, L_CONST's distance `const`, and D's classes (`three_class`). Each of `steps`
    iterations is one D step then `g_steps` G steps on the same batch of `batch` source and `batch`
    target images (batch must divide over the mesh's devices). data: free text naming the training
    data (and f), so a resume on other data is refused."""

    domain: str = "digits"
    nets: str = "small"
    size: int = SIZE
    width: int = 32
    d_width: int = 16
    out_channels: int = 3
    f_width: int = 32
    feat_dim: int = 128
    taps: tuple[str, ...] = ("relu3_1", "relu4_1")
    grid: int = 2
    preset: str = "digits"
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    const: str = "mse"
    three_class: bool = True
    lr: float = 3e-4
    g_steps: int = 1
    batch: int = 64
    seed: int = 0
    data: str = ""
    steps: int = training.resumable(600)
    save_every: int = training.resumable(200)
    log_every: int = training.resumable(10)
    keep: int = training.resumable(2)

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown DTN domain {self.domain!r}; choose from {', '.join(DOMAINS)}")
        object.__setattr__(self, "taps", tuple(self.taps))
        for name in ("size", "width", "d_width", "out_channels", "f_width", "feat_dim", "grid", "g_steps", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if min(self.save_every, self.log_every, self.keep) < 1 or self.steps < 0:
            raise ValueError(f"steps must be >= 0 and save_every, log_every, keep >= 1, got {self}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if self.domain == "digits" and (self.size != SIZE or self.nets != "small"):
            raise ValueError(f"the digits DTN has the small nets at {SIZE} px, not {self.nets!r} at {self.size} px")
        self.weights  # noqa: B018  (validates the preset and the weights)

    @property
    def weights(self) -> L.DTNWeights:
        over = {k: float(getattr(self, k)) for k in ("alpha", "beta", "gamma") if getattr(self, k) is not None}
        return L.preset(self.preset).replace(const=self.const, three_class=self.three_class, **over)

    def build(self) -> DTN:
        """The networks this run trains."""
        if self.domain == "digits":
            f = DigitClassifier(width=self.f_width, feat_dim=self.feat_dim)
            return make_dtn(self.weights, f, self.width, self.d_width, self.out_channels)
        from dfijax.dtn import faces

        f = faces.VGGFeatures(self.taps, self.grid)
        return faces.make_faces_dtn(self.weights, f, self.size, self.width, self.d_width, self.nets)

    def init(self) -> DTNState:
        """The untrained state (g and D from the seed)."""
        return init_state(self.build(), self.lr, self.seed)


def dtn_batches(config: DTNConfig, source: np.ndarray, target: np.ndarray) -> Callable[[int], Batch]:
    """batches(i) -> (config.batch random source images, config.batch random target images), the
    global batch of iteration i, a pure function of (seed, i)."""

    def batches(i: int) -> Batch:
        r = np.random.default_rng([config.seed, 7, i])
        return source[r.integers(0, len(source), config.batch)], target[r.integers(0, len(target), config.batch)]

    return batches


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


METRICS = "metrics.jsonl"


def train_dtn(
    config: DTNConfig,
    f_params: Any,
    source: np.ndarray,
    target: np.ndarray,
    directory: str | os.PathLike,
    *,
    hooks: Sequence[training.Hook] = (),
    milestones: Sequence[int] = (),
    mesh: jax.sharding.Mesh | None = None,
    progress: Callable[[int, dict | None], None] | None = None,
) -> tuple[DTNState, int]:
    """Train `config.build()` to config.steps iterations on source and target images ([N, S, S, 3] in
    [0, 1], S = config.size; batches from `dtn_batches`), resuming from the newest checkpoint in
    `directory` (where the config is saved; other settings: CheckpointMismatch). Runs on every device of
    every process (or `mesh`), parameters replicated, each process putting its rows of each batch;
    every process of a job calls it with the same arguments. Metrics every log_every iterations to
    directory/metrics.jsonl (process 0); hooks and milestones as in `training.fit` (a hook's state is
    replicated: `training.local_copy` it to evaluate). Returns (the replicated state, the step it resumed from)."""
    dtn = config.build()
    check_images(source, "source", config.size)
    check_images(target, "target", config.size)
    mesh = mesh or training.global_mesh()
    training.process_rows(mesh, config.batch)  # the batch must split over the mesh
    step = make_train_step(dtn, training.replicate(f_params, mesh), config.g_steps)
    directory = pathlib.Path(directory).absolute()
    log = training.MetricsLog(directory / METRICS)
    try:
        with training.Checkpointer(directory, keep=config.keep, save_every=config.save_every, config=config) as ck:
            start = min(ck.latest_step or 0, config.steps)
            state, _ = fit_on_mesh(
                step,
                config.init(),
                dtn_batches(config, source, target),
                config.steps,
                ck,
                rng=jax.random.key(config.seed),
                mesh=mesh,
                log=log,
                log_every=config.log_every,
                hooks=hooks,
                milestones=milestones,
                progress=progress,
            )
    finally:
        log.close()
    return state, start


def restore(directory: str | os.PathLike) -> tuple[DTNConfig, DTNState]:
    """(config, newest checkpointed state on this process's first device) of a run written by
    `train_dtn`. One-line errors: FileNotFoundError (no folder, config or checkpoint),
    CheckpointMismatch (a state another version wrote)."""
    return training.restore(directory, DTNConfig, lambda c: c.init())


def records(directory: str | os.PathLike) -> list[dict[str, float]]:
    """The metrics a run logged (the last record per step)."""
    return training.MetricsLog(pathlib.Path(directory) / METRICS, tensorboard=False, enabled=False).records()


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
