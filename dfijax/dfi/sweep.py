"""The DFI sweep pipeline: inputs × edits × alphas, from neighbour sets to scored edits.

`run_sweep(config, data, weights, inputs)` picks each input's neighbours for each edit (the neighbour
rule config.neighbours.rule names, `rules`), forms the attribute vectors (cached on disk), inverts
φ(x) + α·w for every input × edit × alpha in one compiled, vmapped engine call (`solve`, with the
residual correction config chooses, `residuals`), post-processes (`finish`) and scores the results
(pixel and VGG distance to the input; an attribute probe's score). It prints nothing: progress goes to
a callback, files are the caller's.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.dfi import chainer, features, finish, postprocess, residuals, rules, specs
from dfijax.dfi import neighbours as nb
from dfijax.dfi.solve import Progress
from dfijax.dfi.sweep_config import SweepConfig
from dfijax.dfi.sweep_inputs import SweepInputs, probe_config, train_sweep_probe
from dfijax.weights import VGGWeights


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
    probe_model: Any = None  # the attribute probe (dfi.probe.Probe) that scored the edits

    def row_names(self) -> list[dict[str, str]]:
        return [{"input": self.labels[i], "edit": self.config.edits[e]} for i, e in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """The result's named values (JSON-ready): rows, neighbours, losses, metrics, probe, timings."""
        cfg = self.config
        neighbours = [
            {
                "target": n.target.tolist(),
                "source": n.source.tolist(),
                "target_available": n.n_target_available,
                "source_available": n.n_source_available,
            }
            for n in self.neighbours
        ]
        return {
            "edit": ";".join(cfg.edits),
            "edits": list(cfg.edits),
            "alphas": list(cfg.alphas),
            "inputs": list(self.labels),
            "rows": self.row_names(),
            "tv_weight": self.tv_weight,
            "neighbours": neighbours,
            "attribute_vectors_from_cache": self.vectors_from_cache,
            "seconds": self.seconds,
            "final_loss": self.final_loss.tolist(),
            "metrics_per_alpha": self.metrics_per_alpha,
            "metrics_per_edit": self.metrics_per_edit,
            "probe": self.probe,
            "warnings": self.warnings,
        }

    def metrics_table(self) -> dict[str, list]:
        """Per edit and alpha (mean over inputs): pixel RMSE and VGG feature distance to the input, and
        the probe's target attribute score when the probe ran: {"headers", "rows"}."""
        probe = self.probe is not None
        names = ["pixel_rmse_to_input", "vgg_feature_distance_to_input"] + ["target_attribute_score"] * probe
        headers = ["edit", "alpha", "pixel RMSE to input", "VGG feature distance to input"]
        return {
            "headers": headers + ["target attribute score (probe)"] * probe,
            "rows": [[e, m["alpha"], *(m[k] for k in names)] for e, ms in self.metrics_per_edit.items() for m in ms],
        }


def _metrics(pix: np.ndarray, feat: np.ndarray, score: np.ndarray | None, alphas, sel) -> list[dict[str, float]]:
    out = []
    for j, a in enumerate(alphas):
        m = {
            "alpha": a,
            "pixel_rmse_to_input": float(pix[sel, j].mean()),
            "vgg_feature_distance_to_input": float(feat[sel, j].mean()),
        }
        if score is not None:
            m["target_attribute_score"] = float(score[sel, j].mean())
        out.append(m)
    return out


def run_sweep(
    config: SweepConfig,
    data: FaceDataset,
    weights: VGGWeights,
    inputs: SweepInputs,
    *,
    mask: np.ndarray | None = None,
    cache_root: str | pathlib.Path | None = None,
    progress: Progress | None = None,
    snapshot: Callable[[int, np.ndarray], None] | None = None,
) -> SweepResult:
    """Edit every input by every edit at every alpha: neighbours → attribute vectors → solve →
    post-process → evaluate. mask: [size, size] in [0, 1] (1 takes the edit). cache_root: folder for
    the attribute-vector, feature and probe caches (None: no caching). snapshot(iteration, images
    [rows, A', H, W, 3]): the solve's current iterates every few iterations (`solve.solve_alphas`)."""
    progress, t_start = progress or (lambda *a: None), time.perf_counter()
    edit_specs = [specs.parse_edit(e, data.attr_names) for e in config.edits]
    rows = [(i, e) for i in range(len(inputs.images)) for e in range(len(edit_specs))]
    ndata = chainer.reference_crop(data) if config.crop == "chainer" else data  # the neighbours' images
    rule = rules.RULES[config.neighbours.rule](config, ndata, inputs)
    sets = [rule(i, edit_specs[e], None if config.neighbours.include_input else inputs.excludes[i]) for i, e in rows]
    warnings = [
        f"only {len(n.target)} target / {len(n.source)} source neighbours (K = {config.neighbours.k})"
        for n in sets
        if min(len(n.target), len(n.source)) < config.neighbours.k
    ]
    if config.objective.caffe_mean is not None and weights.meta.get("preprocess") != "caffe":
        warnings.append(
            f"caffe_mean {config.objective.caffe_mean} not applied: these weights use torchvision preprocessing"
        )

    weights = config.objective.network(weights)
    loss = config.objective.feature_loss(weights.pretrained)
    root = pathlib.Path(cache_root) if cache_root is not None else None
    t0 = time.perf_counter()
    ws, cached = attribute_vectors(config, loss, weights, ndata, sets, root, progress)
    t1 = time.perf_counter()

    w = {tap: jnp.asarray(np.stack([wi[tap] for wi in ws])) for tap in config.objective.taps}
    x = jnp.asarray(inputs.images[[i for i, _ in rows]], jnp.float32)
    part = residuals.residual(config)
    edited, final_loss, state = part.solve(config, loss, weights.variables, x, w, progress, snapshot=snapshot)
    seconds = {"neighbour_features": t1 - t0, "edit_including_compile": time.perf_counter() - t1}

    edited = part.finish(config, edited, x, state)
    if mask is not None:
        edited = postprocess.mask_blend(edited, x[:, None], jnp.asarray(mask))
    edited = np.clip(np.asarray(finish.OUTPUTS[config.finish.output](edited, x)), 0, 1)

    evaluation = evaluate(config, data, loss, weights, edit_specs, rows, x, edited, root, progress)
    per_alpha, per_edit, probe_info, probe = evaluation
    seconds["total"] = time.perf_counter() - t_start
    return SweepResult(
        config, edited, np.asarray(x), rows, inputs.labels, sets, final_loss, per_alpha, per_edit, probe_info,
        loss.tv_weight, cached, seconds, warnings, probe,
    )  # fmt: skip


def evaluate(config, data, loss, weights, edit_specs, rows, x, edited, root, progress):
    """(per-alpha metrics, per-edit metrics, probe info, probe) of edits [B, A, H, W, 3] of inputs x:
    pixel RMSE and VGG feature distance to the input, and with config.probe.enabled the attribute probe's score."""
    b, a = edited.shape[:2]
    flat = jnp.asarray(edited.reshape((b * a,) + edited.shape[2:]))
    ref = jnp.repeat(x, a, axis=0)
    pix = np.sqrt(np.mean((np.asarray(flat) - np.asarray(ref)) ** 2, axis=(1, 2, 3))).reshape(b, a)
    feat = features.feature_distance(loss, weights.variables, flat, ref).reshape(b, a)
    score, probe_info, probe_model = None, None, None
    if config.probe.enabled:
        score, probe_info, probe_model = _probe_scores(
            config, data, edit_specs, rows, np.asarray(x), np.asarray(flat), b, a, root, progress
        )
    edit_of_row = np.array([e for _, e in rows])
    per_alpha = _metrics(pix, feat, score, config.alphas, slice(None))
    per_edit = {n: _metrics(pix, feat, score, config.alphas, edit_of_row == e) for e, n in enumerate(config.edits)}
    return per_alpha, per_edit, probe_info, probe_model


def attribute_vectors(
    config: SweepConfig,
    loss: inv.FeatureLoss,
    weights: VGGWeights,
    data: FaceDataset,
    sets: Sequence[nb.Neighbours],
    cache_root: pathlib.Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, np.ndarray]], int]:
    """The attribute vector ({tap: array}) of each neighbour set, and how many came from the cache.
    cache_root: the vectors (attrvec/) and, with config.feature_cache, each neighbour image's features
    (features-*/) are kept there (None: nothing kept). Reports stage "features" in neighbour images."""
    progress = progress or (lambda *a: None)
    vec_cache = cache_root / "attrvec" if cache_root else None
    fcache = (
        features.feature_cache_dir(cache_root / "features", loss, weights.meta, data, config.size)
        if cache_root and config.feature_cache
        else None
    )
    total = sum(len(n.target) + len(n.source) for n in sets)
    done, ws, cached = 0, [], 0

    def count(k):
        nonlocal done
        done += k
        progress("features", done, total, {})

    for n in sets:
        w, hit = features.attribute_vector_cached(
            loss,
            weights.variables,
            weights.meta,
            data,
            n,
            config.size,
            config.objective.scaling,
            vec_cache,
            config.batch,
            count,
            fcache,
        )
        if hit:
            count(len(n.target) + len(n.source))
        ws.append(w)
        cached += hit
    return ws, cached


def _probe_scores(config, data, edit_specs, rows, x, flat, b, a, root, progress):
    probe, probe_cached = train_sweep_probe(config, data, root, progress)
    p_in = probe.scores(x)
    p_out = probe.scores(flat).reshape(b, a, -1)
    s_in = np.array([specs.target_score(p_in[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
    s_out = np.stack([specs.target_score(p_out[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
    info = {
        "input_target_attribute_score": float(s_in.mean()),
        "cached": probe_cached,
        "metrics": probe.metrics,
        "config": dataclasses.asdict(probe_config(config)),
    }
    return s_out, info, probe
