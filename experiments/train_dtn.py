"""Domain Transfer Network on digits (Taigman et al. 2016): source -> target digits with f-constancy.

    python -m experiments.train_dtn                                   # embedded street digits -> sklearn digits, CPU
    python -m experiments.train_dtn --steps 2000 --ablation-steps 1000 --out runs/dtn/long
    python -m experiments.train_dtn --data svhn-mnist --data-dir ~/tensorflow_datasets --source-limit 50000 \\
        --steps 20000 --batch 100 --f-steps 5000 --clf-steps 3000 --out runs/dtn/svhn

Pipeline: (1) f, a small conv classifier, is trained on the source train split (its source test
accuracy is reported) and frozen; (2) an evaluation classifier is trained on the target train split
(its target test accuracy is reported); both are cached with orbax under ~/.cache/dfijax/dtn, so
ablations and reruns reuse them; (3) the DTN (G = g ∘ f, 3-class D, the digits preset α = β = 15,
γ = 0) is trained; (4) the evaluation classifier labels G(source test) and its accuracy against the
source labels is the transfer accuracy (the paper's metric); (5) the ablations "no L_TID" (β = 0)
and "2-class D" (real target vs G(anything)) are trained the same way for --ablation-steps iterations
(default half of --steps), and the full DTN's accuracy at that point is reported next to them.

Data (--data): "digits" (default, offline) generates street-number digits as the source
(dfijax.data.digits.street_digits) and uses scikit-learn's 8×8 handwritten digits upscaled to 32×32
as the target; "svhn-mnist" reads tfds svhn_cropped (train+extra for f and the DTN, test for
evaluation) and mnist prepared in --data-dir (array_record; nothing is downloaded).

Writes to --out (default runs/dtn/default; rerunning the same command resumes every run from its
newest checkpoint): results.json (accuracies, settings, timings), report.html (the accuracy table,
sample grids, loss curves), samples_<run>.png (rows: source test, G(source), target test, G(target)),
loss_<run>.png, and <run>/ with the orbax checkpoints and metrics.jsonl, for run in dtn, no_tid,
two_class.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time

import numpy as np
from tqdm import tqdm

from experiments import common

SCALES = {  # the same command means the same run on every device
    "quick": dict(steps=600, batch=64, f_steps=500, clf_steps=400),
    "paper": dict(steps=20000, batch=100, f_steps=5000, clf_steps=3000),
}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["digits", "svhn-mnist"], default="digits")
    p.add_argument("--data-dir", help="tfds data_dir holding svhn_cropped and mnist (for --data svhn-mnist)")
    p.add_argument("--n-source", type=int, default=8000, help="generated source training images (digits)")
    p.add_argument("--n-test", type=int, default=1000, help="source test images for the transfer accuracy")
    p.add_argument(
        "--source-limit",
        type=int,
        default=None,
        help="svhn-mnist: a seeded random subset of each SVHN split (train, extra) and of MNIST train",
    )
    p.add_argument(
        "--preset",
        choices=["digits", "faces"],
        default="digits",
        help="loss weights: digits α=β=15, γ=0; faces (the paper's) α=100, β=1, γ=0.05",
    )
    p.add_argument("--alpha", type=float, help="L_CONST weight (overrides the preset)")
    p.add_argument("--beta", type=float, help="L_TID weight (overrides the preset)")
    p.add_argument("--gamma", type=float, help="L_TV weight (overrides the preset)")
    p.add_argument("--const", choices=["mse", "cosine"], default="mse", help="distance for L_CONST")
    p.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="quick",
        help="run length: quick (600 DTN steps, batch 64: minutes on a CPU) or paper (20000, batch 100); "
        "flags override",
    )
    p.add_argument("--steps", type=int, help="DTN iterations (one D + G step each; --scale)")
    p.add_argument(
        "--ablation-steps",
        type=int,
        default=None,
        help="iterations per ablation (default: --steps / 2); the full DTN is also evaluated there",
    )
    p.add_argument("--no-ablations", action="store_true")
    p.add_argument("--batch", type=int, help="batch size (--scale)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate of g and D (b1 = 0.5)")
    p.add_argument("--g-steps", type=int, default=1, help="G steps per D step")
    p.add_argument("--width", type=int, default=32, help="base width of g")
    p.add_argument("--d-width", type=int, default=16, help="base width of D")
    p.add_argument("--f-width", type=int, default=32, help="base width of f and the evaluation classifier")
    p.add_argument("--feat-dim", type=int, default=128, help="f's feature size")
    p.add_argument("--f-steps", type=int, help="training steps of f (--scale)")
    p.add_argument("--clf-steps", type=int, help="steps of the evaluation classifier (--scale)")
    p.add_argument("--clf-batch", type=int, default=64)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dtn/default", help="output and checkpoint folder (resumes)")
    return common.apply_preset(p.parse_args(argv), SCALES, key="scale")


def check_args(args) -> None:
    for name in (
        "n_source",
        "n_test",
        "batch",
        "g_steps",
        "width",
        "d_width",
        "f_width",
        "feat_dim",
        "f_steps",
        "clf_steps",
        "clf_batch",
        "save_every",
    ):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.steps < 0 or (args.ablation_steps is not None and args.ablation_steps < 0):
        raise ValueError("--steps and --ablation-steps must be >= 0")
    if not (np.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if args.source_limit is not None and args.source_limit < 1:
        raise ValueError(f"--source-limit must be at least 1, got {args.source_limit}")
    if args.data == "svhn-mnist" and not args.data_dir:
        raise ValueError("--data svhn-mnist needs --data-dir, the tfds data_dir holding svhn_cropped and mnist")


def load_data(args):
    """{source_train, source_test, target_train, target_test}: (images, labels), plus a description."""
    from dfijax.data import digits as dg

    if args.data == "digits":
        data = {
            "source_train": dg.street_digits_split("train", args.n_source, args.seed),
            "source_test": dg.street_digits_split("test", args.n_test, args.seed),
            "target_train": dg.sklearn_digits("train"),
            "target_test": dg.sklearn_digits("test"),
        }
        desc = (
            f"source: {args.n_source} generated street-number digits (seed {args.seed}), test {args.n_test} "
            f"(seed {args.seed} + 1000003); target: scikit-learn handwritten digits upscaled 8x8 -> 32x32 "
            "(1437 train / 360 test)"
        )
    else:
        lim = args.source_limit
        data = {
            "source_train": dg.load_svhn(args.data_dir, "train+extra", lim, args.seed),
            "source_test": dg.load_svhn(args.data_dir, "test", args.n_test, args.seed),
            "target_train": dg.load_mnist(args.data_dir, "train", lim, args.seed),
            "target_test": dg.load_mnist(args.data_dir, "test", None, args.seed),
        }
        desc = (
            f"source: tfds svhn_cropped train+extra ({len(data['source_train'][0])} images), test "
            f"{len(data['source_test'][0])}; target: tfds mnist resized to 32x32 "
            f"({len(data['target_train'][0])} train / {len(data['target_test'][0])} test)"
        )
    return data, desc


RUN_TITLES = {"dtn": "DTN (full)", "no_tid": "without L_TID (β = 0)", "two_class": "2-class D (real vs G(·))"}


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import dtn as D
    from dfijax import images as im
    from dfijax.data import DataError
    from dfijax.training import MetricsLog

    device = common.setup()
    t_start = time.perf_counter()
    try:
        check_args(args)
        base = D.preset(args.preset)
        over = {k: getattr(args, k) for k in ("alpha", "beta", "gamma") if getattr(args, k) is not None}
        weights = base.replace(const=args.const, **over)
        runs = {"dtn": weights}
        if not args.no_ablations:
            runs["no_tid"] = weights.replace(beta=0.0)
            runs["two_class"] = weights.replace(three_class=False)
        data, data_desc = load_data(args)
        for k, (x, _) in data.items():
            D.check_images(x, k.replace("_", " "))
    except (ValueError, DataError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    out = common.out_dir(args.out, "dtn")
    print(f"device: {device}; {data_desc}; output {out}", file=sys.stderr)
    seconds = {}
    cache = common.cache_dir("dtn")
    f = D.DigitClassifier(width=args.f_width, feat_dim=args.feat_dim)

    def fit(name, split, steps, shift):
        x, y = data[f"{split}_train"]
        cfg = D.ClassifierConfig(steps=steps, batch=args.clf_batch, shift=shift, seed=args.seed)
        key = (
            f"{name}-{args.data}-n{len(x)}-lim{args.source_limit}-w{args.f_width}-d{args.feat_dim}-t{steps}"
            f"-b{args.clf_batch}-s{args.seed}"
        )
        t0 = time.perf_counter()
        with tqdm(total=steps, desc=name, unit="step", file=sys.stderr) as bar:
            params, metrics, cached = D.train_classifier(
                f,
                x,
                y,
                cfg,
                eval_set=data[f"{split}_test"],
                cache_dir=cache,
                cache_key=key,
                progress=lambda i, m: (bar.update(i - bar.n), bar.set_postfix(loss=f"{m['loss']:.3g}")),
            )
            bar.update(steps - bar.n)
        seconds[name] = time.perf_counter() - t0
        print(
            f"{name}: {split} test accuracy {metrics['test_accuracy']:.4f}{' (cached)' if cached else ''}",
            file=sys.stderr,
        )
        return params, {**metrics, "cached": cached}

    f_params, f_metrics = fit("f_source_classifier", "source", args.f_steps, 1)
    c_params, c_metrics = fit("target_classifier", "target", args.clf_steps, 2)
    xs_test, ys_test = data["source_test"]
    xt_test = data["target_test"][0]
    no_transfer = D.accuracy(f, c_params, xs_test, ys_test)

    xs, xt = data["source_train"][0], data["target_train"][0]

    def batches(i):
        r = np.random.default_rng([args.seed, 7, i])
        return xs[r.integers(0, len(xs), args.batch)], xt[r.integers(0, len(xt), args.batch)]

    results_runs = {}
    show = np.random.default_rng(args.seed).choice(len(xs_test), min(12, len(xs_test)), replace=False)
    show_t = np.random.default_rng(args.seed + 1).choice(len(xt_test), min(12, len(xt_test)), replace=False)
    abl_steps = args.steps // 2 if args.ablation_steps is None else args.ablation_steps
    for name, w in runs.items():
        steps = args.steps if name == "dtn" else abl_steps
        # the full DTN also stops at the ablations' budget (if smaller), to compare like with like
        stops = sorted({abl_steps, steps}) if name == "dtn" and len(runs) > 1 and abl_steps < steps else [steps]
        dtn = D.make_dtn(w, f, width=args.width, d_width=args.d_width, out_channels=1)  # both target sets are grey
        t0 = time.perf_counter()
        at_stop = {}
        with tqdm(total=steps, desc=name, unit="it", file=sys.stderr) as bar:

            def log(i, rec):
                bar.update(i - bar.n)
                bar.set_postfix(d=f"{rec['d_loss']:.3g}", g=f"{rec['g_loss']:.3g}")

            for k, stop in enumerate(stops):
                state, resumed = D.train_dtn(
                    dtn,
                    f_params,
                    batches,
                    stop,
                    out / name,
                    lr=args.lr,
                    seed=args.seed,
                    g_steps=args.g_steps,
                    save_every=args.save_every,
                    log=log,
                )
                if k == 0:
                    start = resumed  # where the first stop resumed from
                if stop != steps and int(state.g.step) == stop:
                    at_stop[stop] = D.transfer_accuracy(dtn, f_params, state.g.params, f, c_params, xs_test, ys_test)
                    common.write_json(out / name / "accuracy_at.json", {str(stop): at_stop[stop]})
                elif stop != steps and (out / name / "accuracy_at.json").is_file():  # a rerun went past it
                    at_stop.update(
                        {int(a): v for a, v in json.loads((out / name / "accuracy_at.json").read_text()).items()}
                    )
            bar.update(steps - bar.n)
        seconds[name] = time.perf_counter() - t0
        g_test = D.translate(dtn, f_params, state.g.params, xs_test)
        acc = D.accuracy(f, c_params, g_test, ys_test)
        records = MetricsLog(out / name / "metrics.jsonl").records()
        common.plot_losses(out / f"loss_{name}.png", records, keys=("d_loss", "gang", "const", "tid"))
        gt_show = D.translate(dtn, f_params, state.g.params, xt_test[show_t])
        tid = float(np.mean(np.square(gt_show - xt_test[show_t])))
        grid = im.make_grid(
            [list(xs_test[show]), list(g_test[show]), list(xt_test[show_t]), list(gt_show)],
            col_labels=[str(int(ys_test[i])) for i in show],
        )
        im.save_image(out / f"samples_{name}.png", grid)
        results_runs[name] = {
            "title": RUN_TITLES[name],
            "transfer_accuracy": acc,
            "steps": steps,
            "resumed_from": start,
            "transfer_accuracy_at": {str(k): v for k, v in {**at_stop, steps: acc}.items()},
            "weights": {
                "alpha": w.alpha,
                "beta": w.beta,
                "gamma": w.gamma,
                "const": w.const,
                "d_classes": w.num_classes,
            },
            "target_identity_mse_on_shown": tid,
            "final_metrics": records[-1] if records else None,
            "samples": f"samples_{name}.png",
            "loss_plot": f"loss_{name}.png",
        }
        print(
            f"{name}: transfer accuracy {acc:.4f} after {steps} iterations"
            f"{f' (resumed from {start})' if start else ''}",
            file=sys.stderr,
        )

    seconds["total"] = time.perf_counter() - t_start
    results = {
        "experiment": "train_dtn",
        "data": data_desc,
        "device": device,
        "settings": vars(args),
        "f_source_test_accuracy": f_metrics["test_accuracy"],
        "target_classifier_test_accuracy": c_metrics["test_accuracy"],
        "no_transfer_accuracy": no_transfer,
        "n_source_test": int(len(xs_test)),
        "classifiers": {"f": f_metrics, "target": c_metrics},
        "runs": results_runs,
        "seconds": seconds,
    }
    common.write_json(out / "results.json", results)
    write_report(out / "report.html", results)
    print(f"wrote {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_report(path, r) -> None:
    esc = html.escape
    p = r["runs"]["dtn"]["transfer_accuracy"]
    se = (p * (1 - p) / max(r["n_source_test"], 1)) ** 0.5
    rows = "".join(
        f"<tr><td>{esc(x['title'])}</td><td>{x['transfer_accuracy_at'][k]:.4f}</td><td>{k}</td>"
        f"<td>α={x['weights']['alpha']:g}, β={x['weights']['beta']:g}, γ={x['weights']['gamma']:g}, "
        f"{esc(x['weights']['const'])}, {x['weights']['d_classes']}-class D</td></tr>"
        for x in r["runs"].values()
        for k in sorted(x["transfer_accuracy_at"], key=int)
    )
    figures = "".join(
        f"<h3>{esc(x['title'])}</h3><p>Rows: source test, G(source) (column label = source label), target test, "
        f"G(target).</p><img src='{esc(x['samples'])}' style='image-rendering:pixelated;width:70%'>"
        f"<p>Losses (log10): <br><img src='{esc(x['loss_plot'])}'></p>"
        for x in r["runs"].values()
    )
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>DTN digits</title>
<body style="font-family:sans-serif;max-width:1100px;margin:auto">
<h1>Domain Transfer Network: digits</h1>
<p>Data: {esc(r["data"])}. Device: {esc(r["device"])}.</p>
<h2>Accuracies</h2>
<table border=1 cellpadding=4>
<tr><th>what</th><th>accuracy</th><th>iterations</th><th>weights</th></tr>
<tr><td>f on source test (f is then frozen)</td><td>{r["f_source_test_accuracy"]:.4f}</td><td></td><td></td></tr>
<tr><td>evaluation classifier on target test</td><td>{r["target_classifier_test_accuracy"]:.4f}</td>
<td></td><td></td></tr>
<tr><td>evaluation classifier on raw source test (no transfer)</td><td>{r["no_transfer_accuracy"]:.4f}</td>
<td></td><td></td></tr>
{rows}</table>
<p>Transfer accuracy: the target-domain classifier's accuracy on G(source test) against the source labels
(the paper's digits metric), on {r["n_source_test"]} source test images from one training seed: the binomial
standard error alone is about {se:.3f}, so differences of a point or two between runs are within noise.</p>
<h2>Samples and losses</h2>{figures}
<h2>Timing</h2><p>{esc(str({k: round(v, 1) for k, v in r["seconds"].items()}))} seconds</p>
<h2>Settings</h2><pre style="white-space:pre-wrap">{esc(str(r["settings"]))}</pre>
</body>""")


if __name__ == "__main__":
    sys.exit(main())
