"""The DFI sweep pipeline: inputs × edits × alphas, from neighbour sets to scored edits.

`run_sweep(config, data, weights, inputs)` picks each input's neighbours for each edit, forms the
attribute vectors (cached on disk), inverts φ(x) + α·w for every input × edit × alpha in one compiled,
vmapped engine call, post-processes, and scores the results (pixel and VGG distance to the input; an
attribute probe's score). It prints nothing: progress goes to a callback, files are the caller's.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.dfi import features, neighbours as nb, postprocess, specs, vectors
from dfijax.vgg import VGG19, layer_index
from dfijax.weights import VGGWeights

# progress(stage, done, total, info): stage is "features", "solve" or "probe"; done counts up to total.
Progress = Callable[[str, int, int, dict], None]


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a sweep's result. tv=None: DFI's 1e-3 with pretrained weights, 1e-6
    with the random net (whose activations are ~100x smaller)."""

    edits: tuple[str, ...] = ("Smiling+",)
    alphas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    k: int = 100
    allow_fewer: bool = False
    same_gender: bool = False
    scaling: str = "chainer"
    taps: tuple[str, ...] = ("relu3_1", "relu4_1", "relu5_1")
    size: int = 64
    iters: int = 100
    tv: float | None = None
    color_match: bool = False
    residual: bool = False
    dtype: str = "float32"
    shard: bool = True
    batch: int = 32
    feature_cache: bool = True
    probe: bool = True
    probe_steps: int = 300
    probe_train: int = 2000
    seed: int = 0

    def __post_init__(self):
        if not self.edits or not all(e.strip() for e in self.edits):
            raise ValueError("give at least one edit, e.g. 'Smiling+'")
        if not self.alphas or not all(np.isfinite(self.alphas)):
            raise ValueError(f"alphas must be finite numbers, got {self.alphas}")
        for t in self.taps:
            layer_index(t)
        if self.size < 32:
            raise ValueError(f"size must be at least 32 for VGG-19, got {self.size}")
        if self.k < 1 or self.iters < 1:
            raise ValueError("k and iters must be positive")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        vectors.uses_normalized_features(self.scaling)  # validates the name

    def tv_weight(self, pretrained: bool) -> float:
        return self.tv if self.tv is not None else (1e-3 if pretrained else 1e-6)


@dataclasses.dataclass(frozen=True)
class SweepInputs:
    """The images to edit, [N, size, size, 3] in [0, 1], with their attributes [N, A] (NaN: unknown),
    the dataset index each must not take as a neighbour (None for outside photos) and a label each."""

    images: np.ndarray
    queries: np.ndarray
    excludes: tuple[int | None, ...]
    labels: tuple[str, ...]


def dataset_inputs(data: FaceDataset, edit: str, size: int, count: int = 3,
                   indices: Sequence[int] | None = None) -> SweepInputs:
    """Dataset faces to edit: the given indices, or the first `count` that lack the edit."""
    if indices is not None:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(data)]
        if bad:
            raise ValueError(f"indices {bad} out of range: the dataset has {len(data)} images")
    else:
        lacking = np.ones(len(data), bool)
        for i, sign in specs.parse_edit(edit, data.attr_names):
            lacking &= (data.attrs[:, i] < -0.5) if sign > 0 else (data.attrs[:, i] >= 0.5)
        idx = np.flatnonzero(lacking)[:count].tolist()
        if not idx:
            raise ValueError(f"no face in {data.name} lacks the edit {edit!r}")
    return SweepInputs(data.images(idx, size), data.attrs[idx], tuple(idx), tuple(data.ids[i] for i in idx))


def photo_inputs(images: np.ndarray, attrs: str, data: FaceDataset, labels: Sequence[str]) -> SweepInputs:
    """Photos of one's own ([N, size, size, 3], aligned and face-centred) with attributes given by hand
    ('Young=1,Male=-1', names from the dataset)."""
    query = specs.parse_attrs(attrs, data.attr_names)
    n = len(images)
    return SweepInputs(np.asarray(images, np.float32), np.repeat(query[None], n, 0), (None,) * n, tuple(labels))


@dataclasses.dataclass
class SweepResult:
    """edited: [R, A, H, W, 3] in [0, 1] for rows R = inputs × edits (input-major) and the config's
    alphas; inputs: [R, H, W, 3] (each row's input); rows: (input index, edit index) per row."""

    config: SweepConfig
    edited: np.ndarray
    inputs: np.ndarray
    rows: list[tuple[int, int]]
    labels: tuple[str, ...]
    neighbours: list[nb.Neighbours]
    final_loss: np.ndarray
    metrics_per_alpha: list[dict[str, float]]
    metrics_per_edit: dict[str, list[dict[str, float]]]
    probe: dict[str, Any] | None
    tv_weight: float
    vectors_from_cache: int
    seconds: dict[str, float]
    warnings: list[str]


def _metrics(pix: np.ndarray, feat: np.ndarray, score: np.ndarray | None, alphas, sel) -> list[dict[str, float]]:
    out = []
    for j, a in enumerate(alphas):
        m = {"alpha": a, "pixel_rmse_to_input": float(pix[sel, j].mean()),
             "vgg_feature_distance_to_input": float(feat[sel, j].mean())}
        if score is not None:
            m["target_attribute_score"] = float(score[sel, j].mean())
        out.append(m)
    return out


def run_sweep(config: SweepConfig, data: FaceDataset, weights: VGGWeights, inputs: SweepInputs, *,
              mask: np.ndarray | None = None, cache_root: str | pathlib.Path | None = None,
              progress: Progress | None = None) -> SweepResult:
    """Edit every input by every edit at every alpha. mask: [size, size] in [0, 1] (1 takes the edit).
    cache_root: folder for the attribute-vector, feature and probe caches (None: no caching)."""
    progress = progress or (lambda *a: None)
    t_start = time.perf_counter()
    edit_specs = [specs.parse_edit(e, data.attr_names) for e in config.edits]
    gender = data.attr_index(data.gender) if (config.same_gender and data.gender) else None
    rows = [(i, e) for i in range(len(inputs.images)) for e in range(len(edit_specs))]
    warnings, sets = [], []
    for i, e in rows:
        n = nb.select_neighbours(data.attrs, inputs.queries[i], edit_specs[e], config.k,
                                 metric="hamming" if data.binary else "l2", same=gender, exclude=inputs.excludes[i],
                                 allow_fewer=config.allow_fewer)
        if min(len(n.target), len(n.source)) < config.k:
            warnings.append(f"only {len(n.target)} target / {len(n.source)} source neighbours (K = {config.k})")
        sets.append(n)

    tv = config.tv_weight(weights.pretrained)
    model = VGG19(dtype=jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32)
    loss = inv.FeatureLoss(model=model, taps=config.taps, tv_weight=tv)
    root = pathlib.Path(cache_root) if cache_root is not None else None
    vec_cache = root / "attrvec" if root else None
    fcache = (features.feature_cache_dir(root / "features", loss, weights.meta, data, config.size)
              if root and config.feature_cache else None)
    t0 = time.perf_counter()
    total = sum(len(n.target) + len(n.source) for n in sets)
    done, ws, cached = 0, [], 0

    def count(k):
        nonlocal done
        done += k
        progress("features", done, total, {})

    for n in sets:
        w, hit = features.attribute_vector_cached(loss, weights.variables, weights.meta, data, n, config.size,
                                                  config.scaling, vec_cache, config.batch, count, fcache)
        if hit:
            count(len(n.target) + len(n.source))
        ws.append(w)
        cached += hit
    t_features = time.perf_counter() - t0

    w = {t: jnp.asarray(np.stack([wi[t] for wi in ws])) for t in config.taps}
    alphas = list(config.alphas)
    run_alphas = ([0.0] if config.residual else []) + alphas
    x = jnp.asarray(inputs.images[[i for i, _ in rows]], jnp.float32)
    t0 = time.perf_counter()
    edited, result = vectors.edit(
        loss, weights.variables, x, w, run_alphas, inv.SolverConfig(maxiter=config.iters, bounds=None),
        config.scaling, check_every=5, shard=config.shard and jax.local_device_count() > 1,
        progress=lambda k, losses: progress("solve", k, config.iters, {"loss": float(jnp.mean(losses))}))
    edited.block_until_ready()
    t_edit = time.perf_counter() - t0
    if config.residual:
        recon, edited = edited[:, :1], edited[:, 1:]
        edited = postprocess.subtract_residual(edited, recon, x[:, None])
    if config.color_match:
        edited = jax.vmap(lambda e, r: jax.vmap(lambda z: postprocess.match_color(z, r))(e))(edited, x)
    if mask is not None:
        edited = postprocess.mask_blend(edited, x[:, None], jnp.asarray(mask))
    edited = np.clip(np.asarray(edited), 0, 1)

    b, a = len(rows), len(alphas)
    flat = jnp.asarray(edited.reshape((b * a,) + edited.shape[2:]))
    ref = jnp.repeat(x, a, axis=0)
    pix = np.sqrt(np.mean((np.asarray(flat) - np.asarray(ref)) ** 2, axis=(1, 2, 3))).reshape(b, a)
    feat = features.feature_distance(loss, weights.variables, flat, ref).reshape(b, a)
    score, probe_info = None, None
    if config.probe:
        score, probe_info = _probe_scores(config, data, edit_specs, rows, np.asarray(x), np.asarray(flat), b, a,
                                          root, progress)
    edit_of_row = np.array([e for _, e in rows])
    per_alpha = _metrics(pix, feat, score, alphas, slice(None))
    per_edit = {name: _metrics(pix, feat, score, alphas, edit_of_row == e) for e, name in enumerate(config.edits)}
    return SweepResult(config, edited, np.asarray(x), rows, inputs.labels, sets, np.asarray(result.final_loss),
                       per_alpha, per_edit, probe_info, tv, cached,
                       {"neighbour_features": t_features, "edit_including_compile": t_edit,
                        "total": time.perf_counter() - t_start}, warnings)


def _probe_scores(config, data, edit_specs, rows, x, flat, b, a, root, progress):
    from dfijax.dfi.probe import ProbeConfig, train_probe

    pc = ProbeConfig(size=min(64, config.size), steps=config.probe_steps, n_train=config.probe_train, seed=config.seed)
    probe, probe_cached = train_probe(data, pc, root / "probe" if root else None,
                                      progress=lambda i, m: progress("probe", i, pc.steps, {}))

    def target_score(p, spec):  # probability of the edit's direction, averaged over its attributes
        return np.mean([p[..., i] if sign > 0 else 1 - p[..., i] for i, sign in spec], axis=0)

    p_in = probe.scores(x)
    p_out = probe.scores(flat).reshape(b, a, -1)
    s_in = np.array([target_score(p_in[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
    s_out = np.stack([target_score(p_out[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
    info = {"input_target_attribute_score": float(s_in.mean()), "cached": probe_cached,
            "metrics": probe.metrics, "config": dataclasses.asdict(pc)}
    return s_out, info
