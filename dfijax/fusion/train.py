"""Training the fusion GAN: state, pure jitted steps, the two-stage loop, and fusing with a checkpoint.

Stage 1 (eq. 10): E and G as an autoencoder with L1. Stage 2 (eq. 11): the min-max objective from the
pretrained E, G, alternating `n_critic` critic updates and one (E, G) update, each its own jitted step
`(state, batch, rng, vgg) -> (state, metrics)`. Steps are counted globally (stage 1 then stage 2);
rng = fold_in(state.key, step); batches are a pure function of the step, so a resumed run repeats the
uninterrupted one exactly. Stage 2 starts with fresh Adam moments for (E, G).

Pairs: a batch of B real images is A; B is the same batch rolled by one (pairs (i, i−1)), so one
encoder pass serves both and G runs once on [Z_A; Z_C]. Λ for training (the paper leaves it open):
per chunk, λ_n ∈ {0, 1} with probability ½ each ("binary", the cases the paper's losses define) or
uniform in [0, 1] ("uniform"); per channel or per (4×4 cell, chunk) with `lambda_kind`; with
probability `p_ends` a pair's Λ is all ones or all zeros instead, so that R(I) of eq. (7) is trained.

Named settings (the default WGAN-GP one, the paper's with a BatchNorm critic and weight clipping) are
in `dfijax.fusion.presets`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import zlib
from typing import Annotated, Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from dfijax import config, training
from dfijax import distributed as dist
from dfijax.fusion import losses as fl
from dfijax.fusion.data import ShardedLoader, to_unit
from dfijax.fusion.model import (
    LATENT_HW,
    NORMS,
    Discriminator,
    Encoder,
    Generator,
    chunk_lambda,
    chunk_sizes,
    latent_channels,
    mix,
)
from dfijax.vgg import VGG19

LAMBDA_KINDS = ("chunk", "channel", "spatial")
LAMBDA_VALUES = ("binary", "uniform")
PERCEPTUAL = ("mean", "paper")
OPTIMIZERS = ("adam", "rmsprop")
CONFIG_FILE = "fusion_config.json"


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    """Everything that shapes the networks and the steps (hashable: compiled steps are cached on it).

    size, width: 128 and 64 are the paper's (latent 4×4×1024). d_norm: the critic's norm ("layer" by
    default, see `Discriminator`). clip: WGAN weight clipping of every critic parameter (BatchNorm
    scale and offset included, as in the WGAN reference code) to [−clip, clip] after each update
    (None: off; then usually loss.gp_weight > 0). lr, b1, b2: Adam for (E, G) (the paper: lr 1e-3).
    d_optimizer, d_lr: the critic's optimizer, "adam" (lr, b1, b2 as above) or "rmsprop" (decay 0.99,
    eps 1e-8 outside the square root: PyTorch's RMSprop, which the WGAN reference code uses); d_lr
    None means lr. perceptual: how Λ selects the perceptual targets, "mean" or "paper" (eqs. 4, 5 per
    chunk; needs binary per-chunk Λ), see `dfijax.fusion.losses`. dtype: the networks' compute dtype.
    As JSON: `dfijax.config.to_dict` / `from_dict`."""

    size: int = 128
    """image size, a power of two: 32, 64, 128 (paper), 256"""
    width: Annotated[int, config.POSITIVE] = 64
    """first-layer channels (64 = paper)"""
    n_chunks: Annotated[int, config.POSITIVE, config.flag("chunks")] = 5
    """latent chunks"""
    d_norm: Literal[NORMS] = "layer"
    """critic normalisation (batch = the paper's; layer suits the gradient penalty)"""
    lambda_kind: Literal[LAMBDA_KINDS] = "chunk"
    """training Λ: one per latent chunk (paper), per channel, or per (4x4 cell, chunk)"""
    lambda_values: Literal[LAMBDA_VALUES] = "binary"
    """training λ: 0 or 1 (binary), or uniform in [0, 1]"""
    p_ends: Annotated[float, config.Bounds(ge=0, le=1)] = 0.2
    """share of pairs trained with Λ all 1 or all 0"""
    loss: Annotated[fl.FusionLoss, config.FLAT] = fl.FusionLoss()
    clip: Annotated[float | None, config.NONNEG] = None
    """clip the critic's weights to [-c, c] (WGAN; 0 or None: off)"""
    n_critic: Annotated[int, config.POSITIVE] = 1
    """critic updates per (E, G) update"""
    lr: Annotated[float, config.Bounds(gt=0)] = 1e-3
    """Adam learning rate of E and G (and of an Adam critic without --d-lr)"""
    b1: Annotated[float, config.Bounds(ge=0, le=1)] = 0.5
    """Adam beta1"""
    b2: Annotated[float, config.Bounds(ge=0, le=1)] = 0.999
    """Adam beta2"""
    d_optimizer: Literal[OPTIMIZERS] = "adam"
    """the critic's optimizer"""
    d_lr: Annotated[float | None, config.Bounds(gt=0)] = None
    """the critic's learning rate (None: --lr)"""
    perceptual: Literal[PERCEPTUAL] = "mean"
    """Λ and the perceptual targets: mean (λ̄-weighted) or paper (eqs. 4, 5 per chunk)"""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """the networks' compute dtype"""

    def __post_init__(self):
        config.check(self)
        if self.clip == 0:
            object.__setattr__(self, "clip", None)  # clip 0 turns a preset's clipping off
        chunk_sizes(self.channels, self.n_chunks)  # the size a power of two, enough channels for the chunks
        if self.perceptual == "paper" and (self.lambda_kind, self.lambda_values) != ("chunk", "binary"):
            raise ValueError(
                "the paper's perceptual split (eqs. 4, 5) is defined for λ_n in {0, 1} per chunk: "
                f"use lambda_kind 'chunk' and lambda_values 'binary' (got {self.lambda_kind!r}, "
                f"{self.lambda_values!r}) or perceptual 'mean'"
            )

    @property
    def channels(self) -> int:
        return latent_channels(self.size, self.width)

    @property
    def chunks(self) -> tuple[int, ...]:
        return chunk_sizes(self.channels, self.n_chunks)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (LATENT_HW, LATENT_HW, self.channels)

    def nets(self) -> tuple[Encoder, Generator, Discriminator]:
        dt = jnp.dtype(self.dtype)
        return (
            Encoder(self.width, dt),
            Generator(self.size, self.width, dt),
            Discriminator(self.width, self.d_norm, dt),
        )

    @property
    def chunk_starts(self) -> tuple[int, ...]:
        """First channel of each latent chunk."""
        return tuple(int(v) for v in np.cumsum((0,) + self.chunks[:-1]))

    def tx(self) -> optax.GradientTransformation:
        """(E, G)'s optimizer: Adam."""
        return optax.adam(self.lr, b1=self.b1, b2=self.b2)

    def d_tx(self) -> optax.GradientTransformation:
        """The critic's optimizer (see d_optimizer, d_lr)."""
        lr = self.lr if self.d_lr is None else self.d_lr
        if self.d_optimizer == "rmsprop":
            return optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)
        return optax.adam(lr, b1=self.b1, b2=self.b2)


CheckpointMismatch = training.CheckpointMismatch  # a folder trained with other settings, or another version's


@dataclasses.dataclass(frozen=True)
class FusionRun:
    """A training run's settings, saved beside its checkpoints (fusion_config.json): the networks and
    steps (config) and the stage-1 length; stage2_steps may change when the run resumes."""

    CONFIG_FILE = "fusion_config.json"  # not a field: the file name (training.config_file)

    config: FusionConfig
    stage1_steps: int
    stage2_steps: int = training.resumable(0)


@struct.dataclass
class Net:
    """One optimised part: params, BatchNorm statistics ({} without BN) and its Adam state."""

    params: Any
    batch_stats: Any
    opt_state: Any


@struct.dataclass
class FusionState:
    """Everything a resumed run needs: the global step, the stage (1 or 2), (E, G) as one optimised
    part (params {"E", "G"}), the critic, and the base PRNG key (raw uint32 key data)."""

    step: jax.Array
    stage: jax.Array
    eg: Net
    d: Net
    key: jax.Array


@functools.partial(jax.jit, static_argnums=(0, 1))
def init_state(cfg: FusionConfig, seed: int = 0) -> FusionState:
    """Fresh networks (flax default initialisers; the critic's clipped to ±clip when set) and optimizer
    states; stage 1, step 0."""
    enc, gen, disc = cfg.nets()
    # the "rbg" generator compiles ~10x faster than threefry for the many initialisers
    ke, kg, kd = jax.random.split(jax.random.key(seed, impl="rbg"), 3)
    x = jnp.zeros((1, cfg.size, cfg.size, 3))
    ve = enc.init(ke, x, train=False)
    vg = gen.init(kg, jnp.zeros((1,) + cfg.latent_shape), train=False)
    vd = disc.init(kd, x, train=False)
    eg_params = {"E": ve["params"], "G": vg["params"]}
    eg = Net(eg_params, {"E": ve["batch_stats"], "G": vg["batch_stats"]}, cfg.tx().init(eg_params))
    d_params = vd["params"]
    if cfg.clip is not None:  # WGAN clips before the first critic update too
        d_params = jax.tree.map(lambda p: jnp.clip(p, -cfg.clip, cfg.clip), d_params)
    d = Net(d_params, vd.get("batch_stats", {}), cfg.d_tx().init(d_params))
    return FusionState(
        step=jnp.zeros((), jnp.int32),
        stage=jnp.ones((), jnp.int32),
        eg=eg,
        d=d,
        key=jax.random.key_data(jax.random.key(seed + 1)),
    )


def begin_stage2(cfg: FusionConfig, state: FusionState) -> FusionState:
    """Stage 2 starts from the pretrained E, G with fresh Adam moments."""
    return state.replace(
        stage=jnp.full_like(state.stage, 2), eg=state.eg.replace(opt_state=cfg.tx().init(state.eg.params))
    )


def apply_net(module: Any, params: Any, stats: Any, x: jax.Array, train: bool) -> tuple[jax.Array, Any]:
    """One of E, G, D on x ([B, S, S, 3] images or [B, 4, 4, C] latents): (output, new batch_stats); the
    stats pass through unchanged outside training or without BN."""
    if not stats:
        return module.apply({"params": params}, x, train=train), stats
    if not train:
        return module.apply({"params": params, "batch_stats": stats}, x, train=False), stats
    out, upd = module.apply({"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
    return out, upd["batch_stats"]


def sample_lambda(cfg: FusionConfig, rng: jax.Array, n: int) -> jax.Array:
    """n training Λ maps, [n, 4, 4, C] float32 (see the module docstring for the scheme)."""
    k_val, k_end, k_which = jax.random.split(rng, 3)
    shape = {
        "chunk": (n, 1, 1, cfg.n_chunks),
        "channel": (n, 1, 1, cfg.channels),
        "spatial": (n, LATENT_HW, LATENT_HW, cfg.n_chunks),
    }[cfg.lambda_kind]
    if cfg.lambda_values == "binary":
        lam = jax.random.bernoulli(k_val, 0.5, shape).astype(jnp.float32)
    else:
        lam = jax.random.uniform(k_val, shape)
    if cfg.lambda_kind != "channel":
        lam = chunk_lambda(lam, cfg.chunks)
    lam = jnp.broadcast_to(lam, (n,) + cfg.latent_shape)
    end = jax.random.bernoulli(k_end, cfg.p_ends, (n, 1, 1, 1))
    ones = jax.random.bernoulli(k_which, 0.5, (n, 1, 1, 1)).astype(jnp.float32)
    return jnp.where(end, ones, lam)


def lambda_map(cfg: FusionConfig, lam: Any) -> jax.Array:
    """A user's Λ -> [4, 4, C]: a scalar, per chunk [N], per channel [C], or spatial [4, 4, N | C | 1];
    values must lie in [0, 1]."""
    lam = jnp.asarray(lam, jnp.float32)
    n, c = cfg.n_chunks, cfg.channels
    if lam.ndim == 0 or lam.shape in (
        (n,),
        (c,),
        (LATENT_HW, LATENT_HW, n),
        (LATENT_HW, LATENT_HW, c),
        (LATENT_HW, LATENT_HW, 1),
    ):
        if lam.ndim and lam.shape[-1] == n:
            lam = chunk_lambda(lam, cfg.chunks)
        return jnp.broadcast_to(lam, cfg.latent_shape)
    raise ValueError(
        f"Λ of shape {lam.shape}: give one value, {n} per-chunk values, {c} per-channel values, "
        f"or a spatial map [4, 4, {n} | {c} | 1]"
    )


def _forward(cfg: FusionConfig, eg: Net, params, x: jax.Array, lam: jax.Array, train: bool = True):
    """A' and C for a batch of A = x [B, S, S, 3] and B = roll(x, 1): (A', C, new eg batch_stats)."""
    enc, gen, _ = cfg.nets()
    za, se = apply_net(enc, params["E"], eg.batch_stats["E"], x, train)
    zc = mix(za, jnp.roll(za, 1, axis=0), lam)
    out, sg = apply_net(gen, params["G"], eg.batch_stats["G"], jnp.concatenate([za, zc]), train)
    n = x.shape[0]
    return out[:n], out[n:], {"E": se, "G": sg}


def _rngs(rng: jax.Array, n: int) -> list[jax.Array]:
    return [jax.random.fold_in(rng, i) for i in range(n)]


@functools.lru_cache(maxsize=16)
def make_steps(cfg: FusionConfig) -> tuple[Callable, Callable, Callable]:
    """(ae_step, d_step, eg_step), each jitted `(state, batch [B, S, S, 3] in [-1, 1], rng, vgg variables)
    -> (state, metrics)` with the state donated. A non-finite loss or gradient leaves that part of the
    state unchanged (metrics["finite"] = 0). ae_step and eg_step advance state.step; d_step does not."""
    enc, gen, disc = cfg.nets()
    tx, d_tx = cfg.tx(), cfg.d_tx()
    lc = cfg.loss
    vgg = VGG19(dtype=jnp.dtype(cfg.dtype))
    donate = (0,)

    def update(net: Net, grads, new_stats, value, clip=None, opt_tx=tx) -> tuple[Net, jax.Array]:
        upd, opt = opt_tx.update(grads, net.opt_state, net.params)
        params = optax.apply_updates(net.params, upd)
        if clip is not None:
            params = jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)
        ok = jnp.isfinite(value) & training.all_finite(grads)
        return training.nan_guard(Net(params, new_stats, opt), net, ok), ok

    def ae_step(state: FusionState, x, rng, vgg_vars):
        def objective(params):
            z, se = apply_net(enc, params["E"], state.eg.batch_stats["E"], x, True)
            rec, sg = apply_net(gen, params["G"], state.eg.batch_stats["G"], z, True)
            # eq. (10) per image, averaged over the batch; the logged "l1" is per pixel either way
            per_image = jax.vmap(lambda r, y: fl.l1(r, y, lc.pixel_reduction))(rec, x)
            return jnp.mean(per_image), ({"E": se, "G": sg}, fl.l1(rec, x))

        (loss, (stats, l1)), grads = jax.value_and_grad(objective, has_aux=True)(state.eg.params)
        eg, ok = update(state.eg, grads, stats, loss)
        return state.replace(eg=eg, step=state.step + 1), {"l1": l1, "finite": ok.astype(jnp.float32)}

    def critic(params, stats, x):
        return apply_net(disc, params, stats, x, True)

    def d_step(state: FusionState, x, rng, vgg_vars):
        k_lam, k_eps = _rngs(rng, 2)
        lam = sample_lambda(cfg, k_lam, x.shape[0])
        _, c, _ = _forward(cfg, state.eg, state.eg.params, x, lam)
        c = jax.lax.stop_gradient(c)
        eps = jax.random.uniform(k_eps, (x.shape[0],))

        def objective(params):
            # real and fake in separate passes (separate BatchNorm batches, as in the WGAN reference code)
            real, stats = critic(params, state.d.batch_stats, x)
            fake, stats = critic(params, stats, c)
            w = fl.wasserstein(real, fake)
            gp = (
                fl.gradient_penalty(lambda y: critic(params, state.d.batch_stats, y)[0], x, c, eps)
                if lc.gp_weight > 0
                else jnp.zeros(())
            )
            return -w + lc.gp_weight * gp, (stats, w, gp)

        (loss, (stats, w, gp)), grads = jax.value_and_grad(objective, has_aux=True)(state.d.params)
        d, ok = update(state.d, grads, stats, loss, cfg.clip, d_tx)
        return state.replace(d=d), {"d_loss": loss, "wdist": w, "gp": gp, "d_finite": ok.astype(jnp.float32)}

    def eg_step(state: FusionState, x, rng, vgg_vars):
        n = x.shape[0]
        lam = sample_lambda(cfg, _rngs(rng, 1)[0], n)
        lam_bar = jnp.mean(lam, axis=(1, 2, 3))
        lam_n = lam[:, 0, 0, jnp.asarray(cfg.chunk_starts)]  # [n, N]: per-chunk λ (with lambda_kind "chunk")
        fx = vgg.apply(vgg_vars, to_unit(x), taps=lc.taps)  # A's features; B's are the same rolled
        fb = {k: jnp.roll(v, 1, axis=0) for k, v in fx.items()}
        b = jnp.roll(x, 1, axis=0)

        def objective(params):
            a_rec, c, stats = _forward(cfg, state.eg, params, x, lam)
            b_rec = jnp.roll(a_rec, 1, axis=0)
            adv = -jnp.mean(critic(state.d.params, state.d.batch_stats, c)[0])
            fc = vgg.apply(vgg_vars, to_unit(c), taps=lc.taps)
            if cfg.perceptual == "paper":  # eqs. (4), (5) per chunk, averaged over the chunks
                split = jax.vmap(lambda f, fa_, fb_, ln: fl.paper_perceptual(f, fa_, fb_, ln, lc))
                cont, sty = (jnp.mean(t, axis=-1) for t in split(fc, fx, fb, lam_n))
            else:
                weighted = jax.vmap(lambda f, fa_, fb_, lb: fl.mixed_perceptual(f, fa_, fb_, lb, lc))
                cont, sty = weighted(fc, fx, fb, lam_bar)
            px = lc.pixel_reduction
            rec = jax.vmap(lambda *v: fl.reconstruction(*v, reduction=px))(x, a_rec, b, b_rec, c, lam)
            tv = jax.vmap(lambda *v: fl.total_variation(*v, reduction=px))(c, a_rec, b_rec)
            parts = {
                "adv": adv,
                "content": jnp.mean(cont),
                "style": jnp.mean(sty),
                "recon": jnp.mean(rec),
                "tv": jnp.mean(tv),
                "l1": fl.l1(a_rec, x),
            }
            total = (
                lc.w_adv * adv
                + lc.w_content * parts["content"]
                + lc.w_style * parts["style"]
                + lc.w_recon * parts["recon"]
                + lc.w_tv * parts["tv"]
            )
            return total, (stats, parts)

        (loss, (stats, parts)), grads = jax.value_and_grad(objective, has_aux=True)(state.eg.params)
        eg, ok = update(state.eg, grads, stats, loss)
        return state.replace(eg=eg, step=state.step + 1), {"loss": loss, **parts, "finite": ok.astype(jnp.float32)}

    return tuple(jax.jit(f, donate_argnums=donate) for f in (ae_step, d_step, eg_step))


def run_step(
    cfg: FusionConfig,
    state: FusionState,
    step: int,
    batch: jax.Array,
    vgg_vars: Any,
    stage1_steps: int,
    rng: jax.Array | None = None,
) -> tuple[FusionState, dict[str, jax.Array]]:
    """Global step `step` (= state.step, passed so that nothing waits on the device): an autoencoder
    update in stage 1, else n_critic critic updates and one (E, G) update on the same batch. The caller
    shards batch, replicates state/vgg_vars, and calls `begin_stage2` first at the switch. rng: the
    step's key, fold_in(state.key, step) (computed when not given)."""
    ae_step, d_step, eg_step = make_steps(cfg)
    if rng is None:
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.key), step)
    if step < stage1_steps:
        return ae_step(state, batch, rng, vgg_vars)
    metrics = {}
    for i in range(cfg.n_critic):
        state, metrics = d_step(state, batch, jax.random.fold_in(rng, i), vgg_vars)
    state, m = eg_step(state, batch, jax.random.fold_in(rng, cfg.n_critic), vgg_vars)
    return state, {**metrics, **m}


def load_config(directory: str | os.PathLike) -> tuple[FusionConfig, int]:
    """(config, stage-1 steps) saved by `train` in a checkpoint folder."""
    run = training.load_config(directory, FusionRun)
    return run.config, run.stage1_steps


DATA_LOG = "data.jsonl"  # {"step", "ids": the global batch's dataset indices} at each logged step


def train(
    cfg: FusionConfig,
    batches: Any,
    vgg_vars: Any,
    stage1_steps: int,
    stage2_steps: int,
    ckpt_dir: str | os.PathLike,
    *,
    seed: int = 0,
    save_every: int = 100,
    keep: int = 3,
    log_every: int = 10,
    mesh: jax.sharding.Mesh | None = None,
    callback: Callable[[int, FusionState, dict | None], None] | None = None,
) -> tuple[FusionState, int]:
    """Train to stage1_steps + stage2_steps global steps, resuming from the newest checkpoint in ckpt_dir.

    batches: a `dfijax.fusion.data.ShardedLoader` (grain: this process's rows of each global batch; its
    iterator position is saved in every checkpoint and restored with the state, and each logged step's
    global batch ids go to ckpt_dir/data.jsonl with "data_crc" in the metrics), or a pure function
    batches(step) -> the global batch [B, S, S, 3] float32 in [-1, 1] (every process computes it and puts
    its rows). B must divide over the mesh's devices (default: all devices of all processes; parameters
    are replicated, the batch is split). Every process of a multi-process job calls train with the same
    arguments; only process 0 writes the logs and the config. Checkpoints every save_every steps, at the
    end of stage 1 and at the end (keep the newest `keep`); metrics (with "stage") every log_every steps
    to ckpt_dir/metrics.jsonl. callback(step, state, record or None) after every step (for progress and
    samples). Returns (state, the step it resumed from)."""

    mesh = mesh or training.global_mesh()
    total = stage1_steps + stage2_steps
    loader = batches if isinstance(batches, ShardedLoader) else None
    if loader is not None:
        mine = training.process_rows(mesh, loader.batch)
        p = loader.shard_options.shard_index
        want = slice(p * loader.local_batch, (p + 1) * loader.local_batch)
        if mine != want:
            raise ValueError(
                f"the mesh gives process {p} rows {mine.start}:{mine.stop} of each batch of {loader.batch}, the "
                f"loader reads rows {want.start}:{want.stop}: order the mesh's devices by process "
                "(dfijax.distributed.global_mesh)"
            )
    it = iter(loader) if loader is not None else None
    template = training.replicate(init_state(cfg, seed), mesh)
    vgg_vars = training.replicate(vgg_vars, mesh)
    directory = pathlib.Path(ckpt_dir).absolute()
    log = training.MetricsLog(directory / "metrics.jsonl")

    def batch_at(i: int) -> tuple[int, jax.Array, np.ndarray | None]:
        if it is None:
            return i, training.put_global(batches(i), mesh), None
        local = next(it)
        return i, training.global_batch(local["image"], mesh), local["id"]

    def step(state: FusionState, batch: tuple, rng: jax.Array) -> tuple[FusionState, dict]:
        i, x, ids = batch
        if i == stage1_steps and int(state.stage) == 1:
            state = training.replicate(begin_stage2(cfg, state), mesh)
        state, m = run_step(cfg, state, i, x, vgg_vars, stage1_steps, rng)
        extra = {"stage": 1 if i < stage1_steps else 2}
        if ids is not None and training.due(i + 1, log_every, total, (stage1_steps,)):
            all_ids = dist.allgather(ids).reshape(-1)  # process-major = the global batch's rows
            extra["data_crc"] = zlib.crc32(all_ids.astype("<i8").tobytes())
            if log.enabled:
                with open(directory / DATA_LOG, "a") as f:
                    f.write(json.dumps({"step": i + 1, "ids": all_ids.tolist()}) + "\n")
        return state, {**m, **extra}

    run = FusionRun(cfg, stage1_steps, stage2_steps)
    with training.Checkpointer(directory, keep=keep, save_every=save_every, config=run) as ck:
        start = ck.latest_step or 0
        reposition = (lambda s: it.set_state(loader.state_at(s))) if it is not None else None
        state, _ = training.fit(
            step,
            template,
            batch_at,
            total,
            ck,
            rng=jax.random.wrap_key_data(jnp.array(template.key, copy=True)),  # not a view: fit donates template
            log=log,
            log_every=log_every,
            milestones=(stage1_steps,),
            data=it,
            reposition=reposition,
            hooks=[(1, callback)] if callback else (),
        )
    log.close()
    return state, min(start, total)


def data_log(ckpt_dir: str | os.PathLike) -> dict[int, list[int]]:
    """step -> the global batch's dataset indices, from ckpt_dir/data.jsonl (the last record per step)."""
    path = pathlib.Path(ckpt_dir) / DATA_LOG
    out: dict[int, list[int]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["step"]] = rec["ids"]
    return dict(sorted(out.items()))


def restore(ckpt_dir: str | os.PathLike) -> tuple[FusionConfig, FusionState, int]:
    """(config, newest checkpointed state, its step) from a folder written by `train`. One-line errors:
    FileNotFoundError (no folder, config or checkpoint), CheckpointMismatch (another version's)."""
    try:
        run, state = training.restore(ckpt_dir, FusionRun, lambda r: init_state(r.config))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; train one with python -m experiments.train_fusion") from None
    return run.config, state, int(state.step)


@functools.partial(jax.jit, static_argnums=(0,))
def _fuse(cfg: FusionConfig, eg: Net, a: jax.Array, b: jax.Array, lams: jax.Array) -> jax.Array:
    enc, gen, _ = cfg.nets()
    z, _ = apply_net(enc, eg.params["E"], eg.batch_stats["E"], jnp.stack([a, b]), False)
    zc = jax.vmap(lambda l: mix(z[0], z[1], l))(lams)
    return apply_net(gen, eg.params["G"], eg.batch_stats["G"], zc, False)[0]


def fuse(cfg: FusionConfig, eg: Net, a: jax.Array, b: jax.Array, lams: Any) -> jax.Array:
    """G(Λ∘E(A) + (1 − Λ)∘E(B)) for each Λ in lams (BatchNorm in inference mode).

    a, b: [S, S, 3] float32 in [-1, 1]; lams: a list of Λ (each as `lambda_map` accepts).
    Returns [K, S, S, 3] in [-1, 1]."""
    maps = jnp.stack([lambda_map(cfg, l) for l in lams])
    if float(jnp.min(maps)) < 0.0 or float(jnp.max(maps)) > 1.0:
        raise ValueError("Λ values must lie in [0, 1]")
    return _fuse(cfg, eg, jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), maps)


@functools.partial(jax.jit, static_argnums=(0,))
def reconstruct(cfg: FusionConfig, eg: Net, x: jax.Array) -> jax.Array:
    """G(E(x)) in inference mode, [B, S, S, 3] in [-1, 1] -> same."""
    enc, gen, _ = cfg.nets()
    z, _ = apply_net(enc, eg.params["E"], eg.batch_stats["E"], x, False)
    return apply_net(gen, eg.params["G"], eg.batch_stats["G"], z, False)[0]
