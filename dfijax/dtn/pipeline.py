"""The DTN experiments as library calls: settings in, data, trained runs, evaluations and report data out.

    data, description = load_digits(config)    # config: DigitsConfig (`config.DIGITS_PRESETS`)
    run_digits(config, data, out)              # f, the evaluation classifier, the DTN, its ablations
    run_faces(config, vgg, load_faces(config), out)   # FacesConfig; vgg: dfijax.weights.VGGWeights

Digits (`run_digits`): (1) f, a small conv classifier, is trained on the source training images and
frozen (its source test accuracy reported); (2) an evaluation classifier is trained on the target
training images; both are cached (`train.train_classifier`); (3) the DTN is trained (`train_dtn`,
checkpoints and metrics in out/dtn); (4) the evaluation classifier labels G(source test): its accuracy
against the source labels is the transfer accuracy (the paper's metric); (5) the ablations "no L_TID"
(β = 0, out/no_tid) and "2-class D" (real target vs G(anything), out/two_class) train the same way for
ablation_steps iterations, and the full DTN's transfer accuracy at that step is logged on its way (a
milestone of its run) to compare like with like.

`load_digits` reads the digits' four splits: generated street-number digits -> scikit-learn's
handwritten digits (offline), or tfds svhn_cropped -> mnist. `load_faces` renders or reads the source
faces (synthetic, or a CelebA folder; the last n_test held out) and renders the cartoon targets.

Faces (`run_faces`): f = frozen VGG-19 features standardised with statistics of `calib` source
training images (`faces.make_f_params`), the DTN trained in out/dtn, and f-constancy on the held-out
sources after training and for the untrained g (`faces.constancy`).

Both read the trained state back with `train.restore` before evaluating, so a rerun of a finished run
evaluates the same checkpoint, and return the report data: a JSON-able `summary`, sample `pictures`
({file name: [H, W, 3] in [0, 1]}) and each run's logged metrics. Every process of a job calls them
with the same arguments (training is spread over all devices); the caller writes files on process 0.
progress(stage, done, total, info) reports each training stage's steps.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np

from dfijax import images as im
from dfijax import training
from dfijax.data import celeba
from dfijax.data import digits as dg
from dfijax.data.cartoon_faces import cartoon_faces
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dtn import faces as F
from dfijax.dtn import train as T
from dfijax.dtn import translator
from dfijax.dtn.config import DigitsConfig, FacesConfig
from dfijax.weights import VGGWeights

Progress = Callable[[str, int, int, dict], None]
SHOW = 12  # images per row of the sample figures
RUN_TITLES = {"dtn": "DTN (full)", "no_tid": "without L_TID (β = 0)", "two_class": "2-class D (real vs G(·))"}
DIGIT_SPLITS = ("source_train", "source_test", "target_train", "target_test")


@dataclasses.dataclass
class DTNResult:
    """What a pipeline reports: summary (JSON values), pictures ({file name: [H, W, 3] in [0, 1]}),
    records ({run: its logged metrics, the last record per step})."""

    summary: dict[str, Any]
    pictures: dict[str, np.ndarray]
    records: dict[str, list[dict[str, float]]]


def check_resume(config: T.DTNConfig, directory: str | os.PathLike) -> None:
    """A one-line CheckpointMismatch now, before any work, when `directory` holds a run with other
    settings (else the settings are saved there)."""
    with training.Checkpointer(directory, keep=config.keep, save_every=None, config=config):
        pass


def final_state(config: T.DTNConfig, directory: str | os.PathLike) -> T.DTNState:
    """The newest checkpointed state of a run (`train.restore`); the untrained one for a 0-step run."""
    try:
        return T.restore(directory)[1]
    except FileNotFoundError:
        if config.run.steps == 0:
            return config.init()
        raise


def weights_summary(w: Any) -> dict[str, Any]:
    return {"alpha": w.alpha, "beta": w.beta, "gamma": w.gamma, "const": w.const, "d_classes": w.num_classes}


def _stage_progress(progress: Progress | None, stage: str, total: int) -> Callable | None:
    if progress is None:
        return None

    def report(n: int, rec: dict | None) -> None:
        info = {} if rec is None else {**rec, "loss": rec.get("g_loss", rec.get("loss"))}
        progress(stage, n, total, info)

    return report


# --- digits ---------------------------------------------------------------------------------------------


def load_digits(config: DigitsConfig) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """({source_train, source_test, target_train, target_test}: (images, labels)), a description):
    config.data "digits" (generated street-number digits -> scikit-learn's handwritten digits upscaled
    to 32x32) or "svhn-mnist" (tfds svhn_cropped train+extra and test -> mnist, in config.data_dir)."""

    seed, n_test = config.run.seed, config.n_test
    if config.data == "digits":
        data = {
            "source_train": dg.street_digits_split("train", config.n_source, seed),
            "source_test": dg.street_digits_split("test", n_test, seed),
            "target_train": dg.sklearn_digits("train"),
            "target_test": dg.sklearn_digits("test"),
        }
        return data, (
            f"source: {config.n_source} generated street-number digits (seed {seed}), test {n_test} "
            f"(seed {seed} + 1000003); target: scikit-learn handwritten digits upscaled 8x8 -> 32x32 "
            "(1437 train / 360 test)"
        )
    lim, where = config.source_limit, config.data_dir
    data = {
        "source_train": dg.load_svhn(where, "train+extra", lim, seed),
        "source_test": dg.load_svhn(where, "test", n_test, seed),
        "target_train": dg.load_mnist(where, "train", lim, seed),
        "target_test": dg.load_mnist(where, "test", None, seed),
    }
    n = {k: len(v[0]) for k, v in data.items()}
    return data, (
        f"source: tfds svhn_cropped train+extra ({n['source_train']} images), test {n['source_test']}; target: "
        f"tfds mnist resized to 32x32 ({n['target_train']} train / {n['target_test']} test)"
    )


def run_digits(
    config: DigitsConfig,
    data: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    mesh: jax.sharding.Mesh | None = None,
    progress: Progress | None = None,
) -> DTNResult:
    """The digits pipeline (module docstring). data: {source_train, source_test, target_train,
    target_test: (images [N, 32, 32, 3] in [0, 1], labels [N] int)}. Checkpoints in out/<run> for run
    in dtn, no_tid, two_class (rerunning resumes); classifiers cached in cache_dir. Pictures:
    samples_<run>.png (rows: source test, G(source) labelled with the source label, target test,
    G(target))."""
    if missing := [k for k in DIGIT_SPLITS if k not in data]:
        raise ValueError(f"digits data lacks {', '.join(missing)}; give {', '.join(DIGIT_SPLITS)}")
    for k in DIGIT_SPLITS:
        T.check_images(data[k][0], k.replace("_", " "))
    out = pathlib.Path(out).absolute()
    runs = config.runs()
    for name, cfg in runs.items():
        check_resume(cfg, out / name)
    seconds: dict[str, float] = {}
    classifiers = {}
    for which, split, stage in (("f", "source", "f_source_classifier"), ("target", "target", "target_classifier")):
        t0 = time.perf_counter()
        ccfg = config.classifier(which)
        params, metrics, cached = T.train_classifier(
            ccfg,
            *data[f"{split}_train"],
            eval_set=data[f"{split}_test"],
            cache_dir=cache_dir,
            name=stage,
            mesh=mesh,
            progress=(lambda i, r, s=stage, n=ccfg.steps: progress(s, i, n, r)) if progress else None,
        )
        classifiers[which] = (params, {**metrics, "cached": cached})
        seconds[stage] = time.perf_counter() - t0
    f_params, c_params = classifiers["f"][0], classifiers["target"][0]
    if jax.process_index() == 0:
        translator.save_f(out, f_params)  # G needs f: the run folder is then all `load_translator` reads
    clf = config.classifier("target").model()
    xs, xt = data["source_train"][0], data["target_train"][0]
    xs_test, ys_test = data["source_test"]
    xt_test = data["target_test"][0]
    show = np.random.default_rng(config.run.seed).choice(len(xs_test), min(SHOW, len(xs_test)), replace=False)
    show_t = np.random.default_rng(config.run.seed + 1).choice(len(xt_test), min(SHOW, len(xt_test)), replace=False)
    summary_runs, pictures, records = {}, {}, {}
    abl = config.abl_steps
    for name, cfg in runs.items():
        dtn = cfg.build()
        milestones = (abl,) if name == "dtn" and len(runs) > 1 and abl < cfg.run.steps else ()

        def at_milestone(n: int, state: T.DTNState, rec: dict | None, dtn=dtn, total=cfg.run.steps) -> dict | None:
            if n == total:
                return None  # evaluated below, on the restored state
            g = training.local_copy(state.g.params)
            return {"transfer_accuracy": T.transfer_accuracy(dtn, f_params, g, clf, c_params, xs_test, ys_test)}

        t0 = time.perf_counter()
        _, start = T.train_dtn(
            cfg,
            f_params,
            xs,
            xt,
            out / name,
            hooks=[(None, at_milestone)] if milestones else (),
            milestones=milestones,
            mesh=mesh,
            progress=_stage_progress(progress, name, cfg.run.steps),
        )
        seconds[name] = time.perf_counter() - t0
        state = final_state(cfg, out / name)
        acc = T.transfer_accuracy(dtn, f_params, state.g.params, clf, c_params, xs_test, ys_test)
        gs_show = T.translate(dtn, f_params, state.g.params, xs_test[show])
        gt_show = T.translate(dtn, f_params, state.g.params, xt_test[show_t])
        records[name] = T.records(out / name)
        at = {r["step"]: r["transfer_accuracy"] for r in records[name] if "transfer_accuracy" in r}
        pictures[f"samples_{name}.png"] = im.make_grid(
            [list(xs_test[show]), list(gs_show), list(xt_test[show_t]), list(gt_show)],
            col_labels=[str(int(ys_test[i])) for i in show],
        )
        summary_runs[name] = {
            "title": RUN_TITLES[name],
            "transfer_accuracy": acc,
            "transfer_accuracy_se": float(np.sqrt(acc * (1 - acc) / len(xs_test))),  # binomial, one seed
            "steps": cfg.run.steps,
            "resumed_from": start,
            "transfer_accuracy_at": {str(k): v for k, v in sorted({**at, cfg.run.steps: acc}.items())},
            "weights": weights_summary(cfg.weights),
            "target_identity_mse_on_shown": float(np.mean(np.square(gt_show - xt_test[show_t]))),
            "final_metrics": records[name][-1] if records[name] else None,
            "samples": f"samples_{name}.png",
        }
    summary = {
        "f_source_test_accuracy": classifiers["f"][1]["test_accuracy"],
        "target_classifier_test_accuracy": classifiers["target"][1]["test_accuracy"],
        "no_transfer_accuracy": T.accuracy(clf, c_params, xs_test, ys_test),
        "n_source_test": int(len(xs_test)),
        "classifiers": {k: v[1] for k, v in classifiers.items()},
        "runs": summary_runs,
        "seconds": seconds,
    }
    return DTNResult(summary, pictures, records)


def accuracy_table(summary: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the digits accuracies: the classifiers, no transfer, and every run's transfer
    accuracy at each evaluated step."""
    rows = [
        ["f on source test (f is then frozen)", f"{summary['f_source_test_accuracy']:.4f}", "", ""],
        ["evaluation classifier on target test", f"{summary['target_classifier_test_accuracy']:.4f}", "", ""],
        ["evaluation classifier on raw source test (no transfer)", f"{summary['no_transfer_accuracy']:.4f}", "", ""],
    ]
    for r in summary["runs"].values():
        w = r["weights"]
        desc = f"α={w['alpha']:g}, β={w['beta']:g}, γ={w['gamma']:g}, {w['const']}, {w['d_classes']}-class D"
        for k in sorted(r["transfer_accuracy_at"], key=int):
            rows.append([r["title"], f"{r['transfer_accuracy_at'][k]:.4f}", k, desc])
    return ["what", "accuracy", "iterations", "weights"], rows


# --- faces ----------------------------------------------------------------------------------------------


def networks_summary(dtn: T.DTN, state: T.DTNState) -> dict[str, Any]:
    """g's and D's class, widths, normalisation, parameter and batch-statistic counts, and image sizes."""

    def count(tree: Any) -> int:
        return int(sum(np.size(x) for x in jax.tree.leaves(tree)))

    return {
        "g": type(dtn.g).__name__,
        "d": type(dtn.d).__name__,
        "g_width": dtn.g.width,
        "d_width": dtn.d.width,
        "g_output_size": dtn.g.size,
        "d_input_size": getattr(dtn.d, "input_size", dtn.g.size),
        "norm": "batch" if T.uses_batch_stats(dtn.g) else "group",
        "g_params": count(state.g.params),
        "d_params": count(state.d.params),
        "g_batch_stats": count(state.g_stats),
        "d_batch_stats": count(state.d_stats),
    }


@dataclasses.dataclass
class FacesData:
    """The faces pipeline's images, [N, S, S, 3] in [0, 1] (S = the config's size): source training
    images, held-out sources (N >= 2), cartoon training images and the cartoons shown in the figure;
    and what the sources and targets are."""

    sources: np.ndarray
    held_out: np.ndarray
    targets: np.ndarray
    targets_show: np.ndarray
    source: str
    target: str


def load_faces(config: FacesConfig) -> FacesData:
    """The sources (synthetic renders, or the first n_train + n_test photos of a CelebA folder; the last
    n_test held out) and n_target + SHOW cartoon faces (the last SHOW for the figure)."""

    n, size, seed = config.n_train + config.n_test, config.size, config.run.seed
    if config.data == "synthetic":
        ds = synthetic_faces(n, seed)
        source = (
            f"source: {n} procedurally rendered synthetic faces (dfijax.data.synthetic_faces, seed {seed}; "
            "renders standing in for photos, not photos)"
        )
    else:
        ds = celeba.load_celeba_folder(config.data_dir, limit=n)
        if len(ds) < n:
            raise ValueError(f"CelebA in {config.data_dir} has {len(ds)} images; --n-train + --n-test = {n}")
        source = f"source: the first {n} CelebA photos of {config.data_dir} (centred face crop)"
    x = ds.images(range(n), size)
    xt = cartoon_faces(config.n_target + SHOW, seed).images(range(config.n_target + SHOW), size)
    target = (
        f"target: {config.n_target} procedural emoji-style cartoon faces (dfijax.data.cartoon_faces, seed "
        f"{seed}), {SHOW} more held out for the figure"
    )
    nt = config.n_target
    source += f", last {config.n_test} held out"
    return FacesData(x[: config.n_train], x[config.n_train :], xt[:nt], xt[nt:], source, target)


def run_faces(
    config: FacesConfig,
    vgg: VGGWeights,
    data: FacesData,
    out: str | os.PathLike,
    *,
    mesh: jax.sharding.Mesh | None = None,
    progress: Progress | None = None,
) -> DTNResult:
    """The faces pipeline (module docstring) on `data` (`load_faces`) with f on the VGG-19 `vgg`.
    Checkpoints in out/dtn (rerunning resumes). Pictures: samples.png (rows: held-out sources,
    G(source), the targets shown, G(target); cells scaled up to 64 px)."""
    cfg = config.dtn_config(vgg.description)
    sources, held_out, targets, targets_show = data.sources, data.held_out, data.targets, data.targets_show
    for name, x in (("source", sources), ("held-out source", held_out), ("target", targets), ("shown", targets_show)):
        T.check_images(x, name, cfg.size)
    out = pathlib.Path(out).absolute()
    check_resume(cfg, out / "dtn")
    dtn = cfg.build()
    seconds = {}
    t0 = time.perf_counter()
    pick = np.random.default_rng([cfg.run.seed, 3]).choice(len(sources), min(config.calib, len(sources)), replace=False)
    f_params = F.make_f_params(dtn.f, vgg.variables, sources[pick])
    if jax.process_index() == 0:
        translator.save_f(out, f_params)
    seconds["f_calibration"] = time.perf_counter() - t0
    untrained = cfg.init()
    before = F.constancy(dtn, f_params, untrained.g.params, held_out, cfg.run.seed, g_stats=untrained.g_stats)
    t0 = time.perf_counter()
    _, start = T.train_dtn(
        cfg,
        f_params,
        sources,
        targets,
        out / "dtn",
        mesh=mesh,
        progress=_stage_progress(progress, "dtn", cfg.run.steps),
    )
    seconds["train"] = time.perf_counter() - t0
    state = final_state(cfg, out / "dtn")
    after = F.constancy(dtn, f_params, state.g.params, held_out, cfg.run.seed, g_stats=state.g_stats)
    recs = T.records(out / "dtn")
    show = held_out[: min(SHOW, len(held_out))]
    g_src = T.translate(dtn, f_params, state.g.params, show, g_stats=state.g_stats)
    g_tgt = T.translate(dtn, f_params, state.g.params, targets_show, g_stats=state.g_stats)
    grid = im.make_grid([[im.upscale_nearest(x, 64) for x in row] for row in (show, g_src, targets_show, g_tgt)])
    tail = recs[-max(1, len(recs) // 10) :]
    summary = {
        "networks": networks_summary(dtn, state),
        "f": {
            "kind": "frozen VGG-19 features",
            "taps": list(dtn.f.taps),
            "grid": dtn.f.grid,
            "feat_dim": dtn.f.feat_dim,
            "standardisation": f"per-feature mean and per-tap scale of {len(pick)} source training images",
        },
        "loss_weights": weights_summary(cfg.weights),
        "steps": cfg.run.steps,
        "resumed_from": start,
        "final_metrics": recs[-1] if recs else None,
        "final_metrics_mean_last_10pct": (
            {k: float(np.mean([r[k] for r in tail if k in r])) for k in tail[0] if k != "step"} if recs else None
        ),
        "constancy": after,
        "constancy_untrained_g": before,
        "identity_kept": bool(after["cos_s_gs"] > max(after["cos_s_other_s"], after["cos_s_other_gs"])),
        "target_identity_mse_on_shown": float(np.mean(np.square(g_tgt - targets_show))),
        "samples": "samples.png",
        "seconds": seconds,
    }
    return DTNResult(summary, {"samples.png": grid}, {"dtn": recs})


def constancy_table(summary: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of f-constancy for the trained G and the untrained g."""
    c = summary["constancy"]
    headers = [
        "g",
        "L_CONST = mean (f(s) − f(G(s)))²",
        "cos(f(s), f(G(s)))",
        "cos(f(s), f(G(s′))), s′ another source",
        f"retrieval top-1 (chance {c['retrieval_chance']:.3f})",
    ]
    rows = [
        [name] + [f"{x[k]:.4f}" for k in ("const_mse", "cos_s_gs", "cos_s_other_gs")] + [f"{x['retrieval_top1']:.3f}"]
        for name, x in (("trained G", c), ("untrained g (initialisation)", summary["constancy_untrained_g"]))
    ]
    return headers, rows
