"""The fusion GAN's two pipelines: training a run (`run_training`) and fusing two images with a trained
run (`run_fuse`). They print nothing: progress and training samples go to callbacks, and the only
files are the ones training keeps in its folder (orbax checkpoints, fusion_config.json, metrics.jsonl,
data.jsonl); pictures, reports and summaries are the caller's.

    config = training_config("cpu_small", stage1_steps=200, stage2_steps=4)   # a preset, overridden
    data = load_data("synthetic", holdout=config.holdout, seed=config.seed)   # dfijax.fusion.data
    result = run_training(config, data, vgg.variables, "runs/fusion/x")       # resumes from the folder
    fused = run_fuse("runs/fusion/x", a, b)                                  # Λ = 1, 0.8, …, 0
    evaluate_fuse(fused)["l1_lambda1_vs_a"], fused.figure()

`TrainingConfig` declares every setting of a run once (type, bounds, help: the command line is made
from it); `for_devices` fits a preset's batch to the devices.

In a multi-process job every process calls `run_training` with the same arguments (each reads its
rows of every global batch); samples, the evaluation and the result's pictures are made on process 0.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Annotated, Any, Callable, Sequence

import jax
import numpy as np

from dfijax import config, training
from dfijax import distributed as dist
from dfijax import mesh as mesh_lib
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.fusion import figures, presets
from dfijax.fusion import train as ft
from dfijax.fusion.data import EVAL_IMAGES, FusionData, ShardedLoader, to_signed, to_unit
from dfijax.fusion.figures import LAMBDAS, fusion_grid, sample_grid
from dfijax.fusion.presets import TrainingConfig
from dfijax.images import resize_array

# progress(step, total, record): after every training step (counted from 1); record is the step's
# logged metrics, or None on steps that log nothing.
Progress = Callable[[int, int, "dict[str, float] | None"], None]
# on_sample(step, grid): a training sample, [H, W, 3] float32 in [0, 1] (see figures.sample_grid).
OnSample = Callable[[int, np.ndarray], None]


def training_config(preset: str = presets.DEFAULT, *, devices: int | None = None, **overrides: Any) -> TrainingConfig:
    """The named preset (`presets.PRESETS`) with every non-None override put over it (a clip of 0 turns
    clipping off; `overrides` records their names), fitted to `devices` (`for_devices`)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    run = config.preset(TrainingConfig, presets.PRESETS, preset, **given)
    return for_devices(dataclasses.replace(run, overrides=tuple(sorted(given))), devices)


def for_devices(config: TrainingConfig, devices: int | None = None) -> TrainingConfig:
    """`config` on `devices` (default: all devices of all processes): unless the batch was given over
    the preset (in config.overrides), the preset's batch rounded down to a multiple of them; the batch
    must split over them (one-line ValueError)."""
    n_dev = mesh_lib.device_count() if devices is None else devices
    if "batch" not in config.overrides:
        config = dataclasses.replace(config, batch=max(n_dev, config.batch - config.batch % n_dev))
    check_batch(config.batch, n_dev)
    return config


def run_record(run: TrainingConfig, data: FusionData) -> dict[str, Any]:
    """What a run saves before it trains (run_config.json): the preset, the settings given over it,
    every resolved setting, the FusionConfig, the data and the held-out images."""
    return {
        "preset": run.preset,
        "overrides": list(run.overrides),
        "settings": run.settings,
        "config": config.to_dict(run.fusion),
        "data": data.describe(),
        "holdout": data.holdout_info(),
    }


def describe(config: TrainingConfig, data: FusionData) -> str:
    """One line: the preset and its overrides, the data, the networks, the critic, the batch and schedule."""
    cfg = config.fusion
    return (
        f"preset {config.preset}"
        + (f" (overridden: {', '.join(config.overrides)})" if config.overrides else "")
        + f"; {data.describe()}; {data.description}; {cfg.size}px, width {cfg.width}, latent {cfg.latent_shape} in "
        f"chunks {cfg.chunks}; critic {cfg.d_norm} norm, {cfg.d_optimizer}, "
        + (f"clip {cfg.clip}" if cfg.clip else f"gradient penalty {cfg.loss.gp_weight:g}")
        + f"; batch {config.batch} over {mesh_lib.device_count()} device(s) of {jax.process_count()} process(es); "
        f"stage 1: {config.stage1_steps} steps, stage 2: {config.stage2_steps} steps"
    )


def check_batch(batch: int, devices: int) -> None:
    """One-line ValueError unless the batch is at least 2 and splits over `devices`."""
    if batch < 2 or batch % devices:
        raise ValueError(f"batch must be at least 2 and a multiple of the {devices} devices, got {batch}")


def check_data(config: TrainingConfig, data: FusionData) -> None:
    """One-line ValueError when the data cannot serve the run: fewer training images than the batch, or
    fewer than 2 held-out images (the samples' pair)."""
    if len(data.train_idx) < config.batch:
        raise ValueError(
            f"{data.train.describe()}: {len(data.train_idx)} training images after the holdout, fewer than "
            f"the batch of {config.batch}"
        )
    if len(data.held_idx) < 2:
        raise ValueError(f"{data.held.describe()}: need at least 2 held-out images, got {len(data.held_idx)}")


def logged_records(out_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Every metrics record a run in out_dir has logged so far (the last one per step), from metrics.jsonl."""
    return training.MetricsLog(pathlib.Path(out_dir) / "metrics.jsonl", tensorboard=False, enabled=False).records()


def host_copy(tree: Any) -> Any:
    """A replicated pytree (on a mesh that may span processes) as host numpy arrays: this process's copy."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_shards[0].data) if isinstance(x, jax.Array) else x, tree)


def evaluate(cfg: ft.FusionConfig, eg: ft.Net, held: np.ndarray) -> dict[str, float | int]:
    """Held-out reconstruction G(E(x)) (BatchNorm in inference mode) of held [N, S, S, 3] in [-1, 1]:
    {"recon_l1": mean |x' − x| on [-1, 1], "recon_psnr_db": PSNR on [0, 1], "images": N}."""
    rec = np.asarray(ft.reconstruct(cfg, eg, held))
    mse = float(np.mean((to_unit(rec) - to_unit(held)) ** 2))
    return {
        "recon_l1": float(np.mean(np.abs(rec - held))),
        "recon_psnr_db": float(10 * np.log10(1 / max(mse, 1e-12))),
        "images": int(held.shape[0]),
    }


@dataclasses.dataclass
class TrainingResult:
    """What `run_training` did. start: the step it resumed from (0: a fresh run); steps_run; seconds of
    training; stopped: True when it stopped at `stop_after` (no evaluation then). state: the final
    FusionState (host numpy arrays on process 0). On process 0 (None elsewhere or when stopped):
    samples, the final sample grid [H, W, 3] in [0, 1]; held_out, `evaluate` on the first EVAL_IMAGES
    held-out images; records, every logged metrics record of the run (resumed parts included);
    final_stage1 / final_stage2, the last record of each stage. devices, processes: the job's."""

    config: TrainingConfig
    state: ft.FusionState
    start: int
    steps_run: int
    seconds: float
    stopped: bool
    devices: int
    processes: int
    samples: np.ndarray | None = None
    held_out: dict[str, float | int] | None = None
    records: list[dict[str, float]] | None = None
    final_stage1: dict[str, float] | None = None
    final_stage2: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run's numbers (no arrays): devices, processes, resumed_from, seconds, steps_run,
        final_stage1, final_stage2, held_out."""
        keys = ("devices", "processes", "seconds", "steps_run", "final_stage1", "final_stage2", "held_out")
        return {"resumed_from": self.start, **{k: getattr(self, k) for k in keys}}


class _Stop(Exception):
    """Raised by the training hook at stop_after (caught in run_training)."""


def run_training(
    config: TrainingConfig,
    data: FusionData,
    vgg_vars: Any,
    out_dir: str | os.PathLike,
    *,
    progress: Progress | None = None,
    on_sample: OnSample | None = None,
    stop_after: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> TrainingResult:
    """Train the fusion GAN to config.total global steps in out_dir, resuming from its newest checkpoint.

    data: `load_data`'s images (training batches through a grain loader, this process's rows of each
    global batch; the held-out pair [2, S, S, 3] is drawn in the samples). vgg_vars: the VGG-19's
    variables for the perceptual losses. out_dir: checkpoints (with the data iterator's position),
    fusion_config.json, metrics.jsonl, data.jsonl (see `train.train`). progress(step, total, record)
    after every step; on_sample(step, grid) on process 0 every config.sample_every steps, at the end
    of stage 1 and at the end. stop_after: stop after that global step without a final checkpoint (as
    if killed). mesh: default all devices of all processes. One-line ValueErrors for a batch that does
    not split over the devices, too few training or held-out images, or a folder trained with other
    settings (CheckpointMismatch)."""
    cfg, out = config.fusion, pathlib.Path(out_dir).absolute()
    mesh = mesh or training.global_mesh()
    check_batch(config.batch, mesh.devices.size)
    check_data(config, data)
    batches = ShardedLoader(data.train, cfg.size, config.batch, config.seed, indices=data.train_idx)
    held = data.held_images(cfg.size, EVAL_IMAGES)
    main = dist.is_main()
    s1, total = config.stage1_steps, config.total

    first: list[int] = []  # the first step this call trains: the run resumed after the step before it

    def hook(step: int, state: ft.FusionState, rec: dict | None) -> None:
        first[:1] = first[:1] or [step]
        if progress is not None:
            progress(step, total, rec)
        if main and on_sample is not None and (step % config.sample_every == 0 or step in (s1, total)):
            on_sample(step, sample_grid(cfg, host_copy(state.eg), held[:2]))
        if step == stop_after:
            raise _Stop()

    t0 = time.perf_counter()
    stopped = False
    try:
        state, start = ft.train(
            cfg,
            batches,
            vgg_vars,
            s1,
            config.stage2_steps,
            out,
            seed=config.seed,
            save_every=config.save_every,
            keep=config.keep,
            log_every=config.log_every,
            mesh=mesh,
            callback=hook,
        )
    except _Stop:
        state, start, stopped = None, first[0] - 1, True
    seconds = time.perf_counter() - t0
    result = TrainingResult(
        config, state, start, total - start, seconds, stopped, mesh.devices.size, jax.process_count()
    )
    if stopped or not main:
        return result
    result.state = state = host_copy(state)
    result.samples = sample_grid(cfg, state.eg, held[:2])
    result.held_out = evaluate(cfg, state.eg, held)
    result.records = logged_records(out)
    last = {s: next((r for r in reversed(result.records) if r.get("stage") == s), None) for s in (1, 2)}
    result.final_stage1, result.final_stage2 = last[1], last[2]
    return result


@dataclasses.dataclass(frozen=True)
class FuseConfig:
    """Fusing two images with a trained run: besides the sweep Λ = 1, 0.8, …, 0 on every chunk, an
    optional per-chunk Λ; the seed of the default synthetic faces."""

    lam: Annotated[
        tuple[float, ...] | None, config.flag("lambda"), config.comma_list(float), config.Bounds(ge=0, le=1)
    ] = None
    """per-chunk Λ in [0, 1], e.g. 1,1,0,0,0.5 (one value per latent chunk, or one for every chunk)"""
    seed: int = 12345
    """seed of the default synthetic faces"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)


def parse_lambda(values: str | Sequence[float], n_chunks: int) -> list[float]:
    """'1,1,0,0,0.5' or its numbers -> per-chunk values (one value means every chunk). One-line ValueErrors."""
    try:
        vals = [float(v) for v in (values.split(",") if isinstance(values, str) else values)]
    except ValueError:
        raise ValueError(f"lambda must be comma-separated numbers, got {values!r}") from None
    if len(vals) == 1:
        vals = vals * n_chunks
    if len(vals) != n_chunks:
        raise ValueError(f"lambda needs {n_chunks} values (one per latent chunk) or one, got {len(vals)}")
    bad = [v for v in vals if not 0.0 <= v <= 1.0]
    if bad:
        raise ValueError(f"lambda values must lie in [0, 1], got {bad[0]:g}")
    return vals


def square_crop(x: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop of x [H, W, 3], resized to [size, size, 3] (unchanged when already that)."""

    h, w, _ = x.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[top : top + s, left : left + s]
    return x if s == size else resize_array(x, (size, size))


@dataclasses.dataclass
class FuseResult:
    """Two images fused with a trained run. config, state, step: the checkpoint's. a, b: [S, S, 3] in
    [0, 1] as fused; lambdas: each Λ as given (a scalar: every chunk; or one value per chunk); fused:
    [K, S, S, 3] in [0, 1], one per Λ; l1_vs_a, l1_vs_b: [K] mean |fused − A| and |fused − B| on
    [-1, 1]; l1_a_vs_b: |A − B| (the scale: a reconstruction should be far below it)."""

    config: ft.FusionConfig
    state: ft.FusionState
    step: int
    a: np.ndarray
    b: np.ndarray
    lambdas: list[Any]
    fused: np.ndarray
    l1_vs_a: np.ndarray
    l1_vs_b: np.ndarray
    l1_a_vs_b: float

    def _index(self, value: float) -> int:
        for k, lam in enumerate(self.lambdas):
            if bool(np.all(np.asarray(ft.lambda_map(self.config, lam)) == value)):
                return k
        raise ValueError(f"no Λ = {value:g} on every chunk among the fused Λ; include {value:g} in lambdas")

    def checks(self) -> dict[str, float]:
        """The ends of the sweep: Λ = 1 should reconstruct A and Λ = 0 B ("l1_lambda1_vs_a",
        "l1_lambda0_vs_b", small), with the cross errors for scale ("l1_lambda1_vs_b", "l1_lambda0_vs_a",
        "l1_a_vs_b"); L1 on [-1, 1]. Needs Λ = 1 and Λ = 0 among the lambdas."""
        one, zero = self._index(1.0), self._index(0.0)
        return {
            "l1_lambda1_vs_a": float(self.l1_vs_a[one]),
            "l1_lambda0_vs_b": float(self.l1_vs_b[zero]),
            "l1_lambda1_vs_b": float(self.l1_vs_b[one]),
            "l1_lambda0_vs_a": float(self.l1_vs_a[zero]),
            "l1_a_vs_b": self.l1_a_vs_b,
        }

    def figure(self, columns: Sequence[float] = LAMBDAS) -> np.ndarray:
        """The paper's figure: A and B on top, the first len(columns) fusions (the sweep, labelled with
        `columns`) below, then one row per further Λ. Returns [H, W, 3] float32 in [0, 1]."""
        n = len(columns)
        rows = [list(self.fused[:n])] + [[y] for y in self.fused[n:]]
        return fusion_grid(self.a, self.b, rows, columns)

    def feature_figure(self, path: str | os.PathLike, vgg_vars: Any, lam: Sequence[float] | None = None) -> dict:
        """Write the paper's Fig. 6 (`figures.feature_figure`) for A, B and C fused with the per-chunk
        `lam` (default 1, 0, 1, 0, …) to path; returns {"features_png", "features_lambda", "features_size"}."""

        cfg = self.config
        lam = list(lam) if lam else [float((n + 1) % 2) for n in range(cfg.n_chunks)]
        a, b = to_signed(self.a), to_signed(self.b)
        imgs, lat, feats = figures.fusion_features(cfg, self.state.eg, vgg_vars, a, b, lam)
        size = figures.feature_figure(path, imgs, lat, feats, cfg.chunks, lam)
        return {"features_png": str(path), "features_lambda": lam, "features_size": list(size)}


def evaluate_fuse(r: FuseResult, sweep: int = len(LAMBDAS)) -> dict[str, float]:
    """A fusion's L1 table (on [-1, 1]): `FuseResult.checks` (the sweep's ends against A and B, A
    against B) and, for each Λ after the first `sweep` ones, l1_custom_vs_a and l1_custom_vs_b (with
    several: l1_custom0_vs_a, …)."""
    table = r.checks()
    extra = range(sweep, len(r.lambdas))
    for k in extra:
        name = "custom" if len(extra) == 1 else f"custom{k - sweep}"
        table[f"l1_{name}_vs_a"], table[f"l1_{name}_vs_b"] = float(r.l1_vs_a[k]), float(r.l1_vs_b[k])
    return table


def run_fuse(
    checkpoint: str | os.PathLike | tuple[ft.FusionConfig, ft.FusionState, int],
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    lambdas: Sequence[Any] = LAMBDAS,
    *,
    seed: int = 12345,
) -> FuseResult:
    """G(Λ∘E(A) + (1 − Λ)∘E(B)) for each Λ in lambdas (a scalar for every chunk, or one value per
    chunk; in [0, 1]), BatchNorm in inference mode.

    checkpoint: a folder written by `run_training` (its newest checkpoint) or `train.restore`'s
    (config, state, step). a, b: [H, W, 3] in [0, 1], any size (centre-cropped to a square and resized
    to the checkpoint's size); None for both: synthetic faces 0 and 1 drawn with `seed`. One-line
    errors: FileNotFoundError (no run in the folder), ValueError (Λ out of range or of the wrong length)."""
    cfg, state, step = ft.restore(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    if (a is None) != (b is None):
        raise ValueError("give both images a and b, or neither (two synthetic faces)")
    if a is None:
        a, b = synthetic_faces(2, seed).images([0, 1], cfg.size)
    a, b = (to_signed(square_crop(np.asarray(x, np.float32), cfg.size)) for x in (a, b))
    fused = np.asarray(ft.fuse(cfg, state.eg, a, b, list(lambdas)))
    l1 = lambda x, y: float(np.mean(np.abs(x - y)))  # noqa: E731
    return FuseResult(
        config=cfg,
        state=state,
        step=step,
        a=to_unit(a),
        b=to_unit(b),
        lambdas=list(lambdas),
        fused=to_unit(fused),
        l1_vs_a=np.array([l1(y, a) for y in fused]),
        l1_vs_b=np.array([l1(y, b) for y in fused]),
        l1_a_vs_b=l1(a, b),
    )
