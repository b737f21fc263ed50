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
newest checkpoint, and other settings there are a one-line error): results.json (accuracies, settings,
timings), config.json, report.html (the accuracy table, sample grids, loss curves), samples_<run>.png
(rows: source test, G(source), target test, G(target)), loss_<run>.png, and <run>/ with the orbax
checkpoints, the run's config.json and metrics.jsonl, for run in dtn, no_tid, two_class. The pipeline
is `dfijax.dtn.pipeline.run_digits`; training runs on every device (batch a multiple of their count),
also of many processes: run the same command on each with --coordinator HOST:PORT --num-processes N
--process-id I (or what jax.distributed detects, as on Cloud TPU); process 0 writes the outputs.

Expected: `python -m experiments.train_dtn --steps 200 --ablation-steps 100` (about 3.5 minutes on 2
CPU cores) gives f 0.97 on source test, the evaluation classifier 0.997 on target test, 0.27 on raw
sources (no transfer), transfer accuracy 0.77 for the full DTN (0.68 without L_TID, 0.72 with the
2-class D, at 100 iterations), and samples_dtn.png shows G(source) as grey handwriting-like digits of
the source's class.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from experiments import common, report

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
    common.add_distributed_flags(p)
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


def make_config(args):
    """The pipeline's settings from the flags (a one-line ValueError on bad values)."""
    from dfijax.dtn import DTNConfig
    from dfijax.dtn.pipeline import DigitsConfig

    check_args(args)
    data_id = (
        f"{args.data} n_source={args.n_source} limit={args.source_limit}; f {args.f_steps} steps b{args.clf_batch}"
    )
    dtn = DTNConfig(
        **{
            k: getattr(args, k) for k in ("width", "d_width", "f_width", "feat_dim", "preset", "alpha", "beta", "gamma")
        },
        **{k: getattr(args, k) for k in ("const", "lr", "g_steps", "batch", "seed", "steps", "save_every")},
        out_channels=1,  # both target sets are grey
        data=data_id,
    )
    return DigitsConfig(dtn, args.f_steps, args.clf_steps, args.clf_batch, not args.no_ablations, args.ablation_steps)


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import images as im
    from dfijax import training
    from dfijax.data import DataError
    from dfijax.dtn import pipeline

    if (proc := common.start_processes(args)) is None:
        return 1
    device = f"{common.setup()}; {proc.count} process(es), {proc.global_devices} device(s)"
    t_start = time.perf_counter()
    try:
        config = make_config(args)
        data, data_desc = load_data(args)
        out = common.out_dir(args.out, "dtn")
        print(f"device: {device}; {data_desc}; output {out}", file=sys.stderr)
        with common.Bars() as bars:
            r = pipeline.run_digits(
                config, data, out, cache_dir=common.cache_dir("dtn"), progress=bars.update if proc.index == 0 else None
            )
    except (ValueError, DataError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if not training.is_main():
        return 0
    for name, picture in r.pictures.items():
        im.save_image(out / name, picture)
    for name, run in r.summary["runs"].items():
        run["loss_plot"] = f"loss_{name}.png"
        common.plot_losses(out / run["loss_plot"], r.records[name], keys=("d_loss", "gang", "const", "tid"))
        print(
            f"{name}: transfer accuracy {run['transfer_accuracy']:.4f} after {run['steps']} iterations", file=sys.stderr
        )
    r.summary["seconds"]["total"] = time.perf_counter() - t_start
    settings = training.config_to_dict(config)
    results = {"experiment": "train_dtn", "data": data_desc, "device": device, "settings": vars(args), **r.summary}
    common.write_json(out / "results.json", {**results, "config": settings})
    report.save_config(out, settings)
    write_report(out / "report.html", results, settings)
    print(f"wrote {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_report(path, r, config) -> None:
    """report.html: the accuracies, each run's samples and loss curves, then the config."""
    from dfijax.dtn.pipeline import accuracy_table

    headers, rows = accuracy_table(r)
    p = r["runs"]["dtn"]["transfer_accuracy"]
    se = (p * (1 - p) / max(r["n_source_test"], 1)) ** 0.5
    note = (
        "Transfer accuracy: the target-domain classifier's accuracy on G(source test) against the source labels "
        f"(the paper's digits metric), on {r['n_source_test']} source test images from one training seed: the "
        f"binomial standard error alone is about {se:.3f}, so differences of a point or two are within noise."
    )
    sections = [{"title": "Accuracies", "text": note, "table": {"headers": headers, "rows": rows}}]
    rows_text = "Rows: source test, G(source) (column label = source label), target test, G(target)."
    for x in r["runs"].values():
        sections.append({"title": f"Samples: {x['title']}", "text": rows_text, "images": [x["samples"]]})
    losses = [x["loss_plot"] for x in r["runs"].values()]
    sections.append({"title": "Losses", "text": "|loss| on a log scale, per run", "images": losses, "pixelated": False})
    weights = "f: a digit classifier trained on the source domain, then frozen (no pretrained weights needed)"
    report.write_report(
        path,
        "Domain Transfer Network: digits",
        weights=weights,
        pretrained=True,
        device=r["device"],
        config=config,
        sections=sections,
        data=r["data"],
        seconds=r["seconds"],
    )


if __name__ == "__main__":
    sys.exit(main())
