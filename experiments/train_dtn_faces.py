"""Domain Transfer Network, faces setting (Taigman et al. 2016, section 5.2): face photos -> cartoon
faces with f = frozen VGG-19 features (the paper's f is the DeepFace network).

    python -m experiments.train_dtn_faces                   # --nets small: offline, CPU, 32 px, minutes
    python -m experiments.train_dtn_faces --nets paper --data celeba --data-dir ~/data/celeba \
        --out runs/dtn_faces/celeba                         # the paper's networks (a GPU run)

Networks (--nets, a named preset; explicit flags override its values, and results.json records the
preset, the overridden flags and the resolved settings):
  paper  the paper's faces networks (dfijax.dtn.model.PaperGenerator / PaperDiscriminator): g from f's
         features to 64×64 in 5 upscaling blocks with 1×1 convolutions (9 layers), D of 6 stride-2
         blocks on 152×152 (its inputs bilinearly scaled up from 64×64), batch norm, width 64; run
         settings 64 px, 20000 iterations, batch 64, lr 2e-4, 20000 source and target images.
  small  the light CPU networks (GroupNorm, Generator / Discriminator of base width 32 on 32×32):
         600 iterations, batch 16, lr 1e-3, 2000 source and target images.

Setting: L_G = L_GANG + α L_CONST + β L_TID + γ L_TV with the paper's faces weights α = 100, β = 1,
γ = 0.05 (the `faces` preset; override with --alpha/--beta/--gamma), 3-class D. f(x): VGG-19 taps
(--taps, default relu3_1,relu4_1), each average-pooled to a --grid × --grid map (default 2), flattened,
concatenated and standardised with statistics of --calib source training images, fixed before
training (dfijax.dtn.faces); f is never trained. g decodes f(x) to --size × --size (64 for
--nets paper, 32 for small); D sees the target domain at that size (scaled up to 152×152 inside the
paper's D). With no converted VGG-19 weights (weights/), f is a seeded random VGG-19, NOT
pretrained, and every output says so.

Data: source (--data) "synthetic" (default, offline): dfijax.data.synthetic_faces, procedural
renders of faces that stand in for photos (not photos); "celeba": real photos from a CelebA folder
(--data-dir with list_attr_celeba.txt and img_align_celeba/), the first --n-train + --n-test images.
Target: dfijax.data.cartoon_faces, procedural emoji-style faces (--n-target of them, plus 12
held-out ones for the figure). The last --n-test source images are held out.

Writes to --out (default runs/dtn_faces/default; rerunning the same command resumes from the newest
checkpoint): results.json (settings, data, weights description and pretrained flag, final losses,
f-constancy on the held-out sources after training and for the untrained g), report.html,
samples.png (rows: held-out sources, G(source), held-out cartoons, G(cartoon)), loss.png, and dtn/
with the orbax checkpoints and metrics.jsonl.
"""

from __future__ import annotations

import argparse
import html
import json
import pathlib
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from experiments import common

SHOW = 12
CONFIG_KEYS = (
    "data",
    "data_dir",
    "n_train",
    "size",
    "taps",
    "grid",
    "calib",
    "nets",
    "width",
    "d_width",
    "weights",
    "seed",
)
# --nets presets: the networks and the run settings that suit them (explicit flags override)
NET_PRESETS = {
    "paper": {
        "size": 64,
        "width": 64,
        "d_width": 64,
        "n_train": 20000,
        "n_target": 20000,
        "steps": 20000,
        "batch": 64,
        "lr": 2e-4,
        "save_every": 1000,
    },
    "small": {
        "size": 32,
        "width": 32,
        "d_width": 32,
        "n_train": 2000,
        "n_target": 2000,
        "steps": 600,
        "batch": 16,
        "lr": 1e-3,
        "save_every": 200,
    },
}


def parse(argv):
    """Parsed flags with the --nets preset filled in where a flag was not given (args.overridden: the
    preset's keys that were given explicitly)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--nets",
        choices=sorted(NET_PRESETS),
        default="small",
        help="networks and run-size preset: paper (the paper's faces nets, 64 px g, 152 px D) or small "
        "(light CPU nets, 32 px); explicit flags override",
    )
    p.add_argument("--data", choices=["synthetic", "celeba"], default="synthetic", help="source domain")
    p.add_argument("--data-dir", help="CelebA folder (list_attr_celeba.txt + img_align_celeba/), for --data celeba")
    p.add_argument("--n-train", type=int, help="source training images (preset: paper 20000, small 2000)")
    p.add_argument("--n-test", type=int, default=64, help="held-out source images (constancy measure)")
    p.add_argument("--n-target", type=int, help="cartoon training images (preset: paper 20000, small 2000)")
    p.add_argument("--size", type=int, help="image size of g's output, D and the data (preset: paper 64, small 32)")
    p.add_argument("--taps", default="relu3_1,relu4_1", help="VGG-19 taps that make f")
    p.add_argument("--grid", type=int, default=2, help="each tap average-pooled to grid x grid")
    p.add_argument("--calib", type=int, default=256, help="source training images that fix f's standardisation")
    p.add_argument("--weights", help="converted VGG-19 weights; default: weights/ or a seeded random net")
    p.add_argument(
        "--preset",
        choices=["faces", "digits"],
        default="faces",
        help="loss weights: faces (the paper's) α=100, β=1, γ=0.05; digits α=β=15, γ=0",
    )
    p.add_argument("--alpha", type=float, help="L_CONST weight (overrides the preset)")
    p.add_argument("--beta", type=float, help="L_TID weight (overrides the preset)")
    p.add_argument("--gamma", type=float, help="L_TV weight (overrides the preset)")
    p.add_argument("--const", choices=["mse", "cosine"], default="mse", help="distance for L_CONST")
    p.add_argument("--steps", type=int, help="iterations (one D + g-steps G steps; preset: paper 20000, small 600)")
    p.add_argument("--batch", type=int, help="batch size (preset: paper 64, small 16)")
    p.add_argument(
        "--lr",
        type=float,
        help="Adam learning rate of g and D (b1 = 0.5; preset: paper 2e-4, small 1e-3, higher for its short run)",
    )
    p.add_argument("--g-steps", type=int, default=1, help="G steps per D step")
    p.add_argument("--width", type=int, help="base width of g (preset: paper 64, small 32)")
    p.add_argument("--d-width", type=int, help="base width of D (preset: paper 64, small 32)")
    p.add_argument("--save-every", type=int, help="checkpoint period (preset: paper 1000, small 200)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dtn_faces/default", help="output and checkpoint folder (resumes)")
    args = p.parse_args(argv)
    preset = NET_PRESETS[args.nets]
    args.overridden = sorted(k for k in preset if getattr(args, k) is not None)
    for k, v in preset.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def check_args(args) -> None:
    for name in ("n_train", "n_target", "batch", "g_steps", "width", "d_width", "grid", "save_every", "log_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.n_test < 2 or args.calib < 2:
        raise ValueError(f"--n-test and --calib must be at least 2, got {args.n_test}, {args.calib}")
    if args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    if not (np.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    if args.size < 32 or args.size & (args.size - 1):
        raise ValueError(f"--size must be a power of two >= 32 (VGG-19 and g need it), got {args.size}")
    if args.nets == "paper" and args.size != 64:
        raise ValueError(f"--nets paper makes 64x64 images, got --size {args.size}; drop --size or use --nets small")
    if args.data == "celeba" and not args.data_dir:
        raise ValueError("--data celeba needs --data-dir (the folder with list_attr_celeba.txt and img_align_celeba/)")


def load_sources(args):
    """(train [n_train, S, S, 3], held-out test [n_test, S, S, 3], description)."""
    n = args.n_train + args.n_test
    if args.data == "synthetic":
        from dfijax.data.synthetic_faces import synthetic_faces

        ds = synthetic_faces(n, args.seed)
        desc = (
            f"source: {n} procedurally rendered synthetic faces (dfijax.data.synthetic_faces, seed {args.seed}; "
            "renders standing in for photos, not photos)"
        )
    else:
        from dfijax.data import celeba

        ds = celeba.load_celeba_folder(args.data_dir, limit=n)
        if len(ds) < n:
            raise ValueError(f"CelebA in {args.data_dir} has {len(ds)} images; --n-train + --n-test = {n}")
        desc = f"source: the first {n} CelebA photos of {args.data_dir} (centred face crop)"
    x = ds.images(range(n), args.size)
    desc += f", last {args.n_test} held out"
    return x[: args.n_train], x[args.n_train :], desc


def load_targets(args):
    from dfijax.data.cartoon_faces import cartoon_faces

    ds = cartoon_faces(args.n_target + SHOW, args.seed)
    x = ds.images(range(args.n_target + SHOW), args.size)
    desc = (
        f"target: {args.n_target} procedural emoji-style cartoon faces (dfijax.data.cartoon_faces, seed "
        f"{args.seed}), {SHOW} more held out for the figure"
    )
    return x[: args.n_target], x[args.n_target :], desc


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import dtn as D
    from dfijax import images as im
    from dfijax.data import DataError
    from dfijax.dtn import faces as F
    from dfijax.training import MetricsLog

    device = common.setup()
    t_start = time.perf_counter()
    try:
        check_args(args)
        weights_l = D.preset(args.preset)
        over = {k: getattr(args, k) for k in ("alpha", "beta", "gamma") if getattr(args, k) is not None}
        loss_w = weights_l.replace(const=args.const, **over)
        f = F.VGGFeatures(F.parse_taps(args.taps), args.grid)
        dtn = F.make_faces_dtn(loss_w, f, args.size, width=args.width, d_width=args.d_width, nets=args.nets)
        out = pathlib.Path(args.out).absolute()
        config = {k: getattr(args, k) for k in CONFIG_KEYS}
        old = out / "config.json"
        if old.is_file() and (out / "dtn").is_dir():
            prev = json.loads(old.read_text())
            diff = [k for k in CONFIG_KEYS if prev.get(k) != config[k]]
            if diff:
                flags = ", ".join("--" + k.replace("_", "-") for k in diff)
                raise ValueError(
                    f"{out} holds a run with other settings ({flags}); use another --out or the same settings to resume"
                )
        xs, xs_test, src_desc = load_sources(args)
        xt, xt_show, tgt_desc = load_targets(args)
        for name, x in (("source", xs), ("held-out source", xs_test), ("target", xt)):
            D.check_images(x, name, args.size)
        vgg = common.load_weights(args.weights, args.seed)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    out.mkdir(parents=True, exist_ok=True)
    common.write_json(out / "config.json", config)
    print(
        f"device: {device}; {args.nets} networks; {src_desc}; {tgt_desc}; {args.size}px; f: VGG-19 "
        f"{','.join(f.taps)} pooled {args.grid}x{args.grid} ({f.feat_dim} features); output {out}",
        file=sys.stderr,
    )
    seconds = {}
    t0 = time.perf_counter()
    calib = xs[np.random.default_rng([args.seed, 3]).choice(len(xs), min(args.calib, len(xs)), replace=False)]
    f_params = F.make_f_params(f, vgg.variables, calib)
    seconds["f_calibration"] = time.perf_counter() - t0

    def batches(i):
        r = np.random.default_rng([args.seed, 7, i])
        return xs[r.integers(0, len(xs), args.batch)], xt[r.integers(0, len(xt), args.batch)]

    untrained = D.init_state(dtn, args.lr, args.seed)
    before = F.constancy(dtn, f_params, untrained.g.params, xs_test, args.seed, g_stats=untrained.g_stats)
    t0 = time.perf_counter()
    with tqdm(total=args.steps, desc="dtn_faces", unit="it", file=sys.stderr) as bar:

        def log(i, rec):
            bar.update(i - bar.n)
            bar.set_postfix(d=f"{rec['d_loss']:.3g}", g=f"{rec['g_loss']:.3g}", const=f"{rec['const']:.3g}")

        state, start = D.train_dtn(
            dtn,
            f_params,
            batches,
            args.steps,
            out / "dtn",
            lr=args.lr,
            seed=args.seed,
            g_steps=args.g_steps,
            save_every=args.save_every,
            log_every=args.log_every,
            log=log,
        )
        bar.update(args.steps - bar.n)
    seconds["train"] = time.perf_counter() - t0
    after = F.constancy(dtn, f_params, state.g.params, xs_test, args.seed, g_stats=state.g_stats)

    records = MetricsLog(out / "dtn" / "metrics.jsonl").records()
    common.plot_losses(out / "loss.png", records, keys=("d_loss", "gang", "const", "tid", "tv"))
    show = np.arange(min(SHOW, len(xs_test)))
    g_src = D.translate(dtn, f_params, state.g.params, xs_test[show], g_stats=state.g_stats)
    g_tgt = D.translate(dtn, f_params, state.g.params, xt_show, g_stats=state.g_stats)
    grid = im.make_grid([[im.upscale_nearest(x, 64) for x in row] for row in (xs_test[show], g_src, xt_show, g_tgt)])
    im.save_image(out / "samples.png", grid)
    tid_show = float(np.mean(np.square(g_tgt - xt_show)))
    seconds["total"] = time.perf_counter() - t_start
    tail = records[-max(1, len(records) // 10) :]
    results = {
        "experiment": "train_dtn_faces",
        "device": device,
        "data": {"source": src_desc, "target": tgt_desc},
        "settings": vars(args),
        "config": {
            "nets": args.nets,
            "preset": NET_PRESETS[args.nets],
            "overridden": args.overridden,
            "resolved": {k: getattr(args, k) for k in NET_PRESETS[args.nets]},
        },
        "networks": networks_summary(dtn, state),
        "weights": {"description": vgg.description, "pretrained": vgg.pretrained},
        "f": {
            "kind": "frozen VGG-19 features",
            "taps": list(f.taps),
            "grid": f.grid,
            "feat_dim": f.feat_dim,
            "standardisation": f"per-feature mean and per-tap scale of {len(calib)} source training images",
        },
        "loss_weights": {
            "alpha": loss_w.alpha,
            "beta": loss_w.beta,
            "gamma": loss_w.gamma,
            "const": loss_w.const,
            "d_classes": loss_w.num_classes,
        },
        "steps": args.steps,
        "resumed_from": start,
        "final_metrics": records[-1] if records else None,
        "final_metrics_mean_last_10pct": (
            {k: float(np.mean([r[k] for r in tail])) for k in tail[0] if k != "step"} if records else None
        ),
        "constancy": after,
        "constancy_untrained_g": before,
        "identity_kept": bool(after["cos_s_gs"] > max(after["cos_s_other_s"], after["cos_s_other_gs"])),
        "target_identity_mse_on_shown": tid_show,
        "samples": "samples.png",
        "loss_plot": "loss.png",
        "seconds": seconds,
    }
    common.write_json(out / "results.json", results)
    write_report(out / "report.html", results)
    c = after
    print(
        f"constancy on {c['n']} held-out sources: cos(f(s), f(G(s))) {c['cos_s_gs']:.3f} vs random other source "
        f"{c['cos_s_other_s']:.3f} / other G(s') {c['cos_s_other_gs']:.3f}; retrieval {c['retrieval_top1']:.3f} "
        f"(chance {c['retrieval_chance']:.3f}); L_CONST {c['const_mse']:.3f} (random pair "
        f"{c['const_mse_random_pair']:.3f})",
        file=sys.stderr,
    )
    if not vgg.pretrained:
        print(
            "note: f is a random VGG-19 (NOT pretrained): identity is kept in a random-feature space", file=sys.stderr
        )
    print(f"wrote {out / 'report.html'} and {out / 'results.json'}")
    return 0


def networks_summary(dtn, state) -> dict:
    """g's and D's class, widths, normalisation, parameter and batch-statistic counts, and image sizes."""
    from dfijax.dtn import uses_batch_stats

    def count(tree):
        return int(sum(np.size(x) for x in jax.tree.leaves(tree)))

    return {
        "g": type(dtn.g).__name__,
        "d": type(dtn.d).__name__,
        "g_width": dtn.g.width,
        "d_width": dtn.d.width,
        "g_output_size": dtn.g.size,
        "d_input_size": getattr(dtn.d, "input_size", dtn.g.size),
        "norm": "batch" if uses_batch_stats(dtn.g) else "group",
        "g_params": count(state.g.params),
        "d_params": count(state.d.params),
        "g_batch_stats": count(state.g_stats),
        "d_batch_stats": count(state.d_stats),
    }


def write_report(path, r) -> None:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{c['const_mse']:.4f}</td><td>{c['cos_s_gs']:.4f}</td>"
        f"<td>{c['cos_s_other_gs']:.4f}</td><td>{c['retrieval_top1']:.3f}</td></tr>"
        for name, c in (("trained G", r["constancy"]), ("untrained g (initialisation)", r["constancy_untrained_g"]))
    )
    c = r["constancy"]
    w = r["loss_weights"]
    n = r["networks"]
    fm = r["final_metrics_mean_last_10pct"] or {}
    losses = ", ".join(f"{k} {fm[k]:.4g}" for k in ("d_loss", "g_loss", "gang", "const", "tid", "tv") if k in fm)
    note = (
        ""
        if r["weights"]["pretrained"]
        else (
            "<p style='color:#a00'><b>f is a seeded random VGG-19, NOT pretrained</b>: identity is kept in a "
            "random-feature space; this shows what the method does, not what a trained face network gives.</p>"
        )
    )
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>DTN faces</title>
<body style="font-family:sans-serif;max-width:1100px;margin:auto">
<h1>Domain Transfer Network: faces → cartoons</h1>
<p>{esc(r["data"]["source"])}.<br>{esc(r["data"]["target"])}.<br>Device: {esc(r["device"])}.</p>
<p>f: {esc(r["f"]["kind"])} {esc(", ".join(r["f"]["taps"]))}, each pooled to {r["f"]["grid"]}×{r["f"]["grid"]}
({r["f"]["feat_dim"]} features, {esc(r["f"]["standardisation"])}); weights: {esc(r["weights"]["description"])}.</p>
{note}
<p>Networks ({esc(r["config"]["nets"])}): g {esc(n["g"])} (width {n["g_width"]}, {n["g_params"]:,} parameters) to
{n["g_output_size"]}×{n["g_output_size"]}; D {esc(n["d"])} (width {n["d_width"]}, {n["d_params"]:,} parameters) on
{n["d_input_size"]}×{n["d_input_size"]}; {esc(n["norm"])} norm.</p>
<p>L_G = L_GANG + {w["alpha"]:g} L_CONST + {w["beta"]:g} L_TID + {w["gamma"]:g} L_TV (d = {esc(w["const"])},
{w["d_classes"]}-class D), {r["steps"]} iterations. Mean of the last 10% of logged losses: {esc(losses)}.</p>
<h2>Identity keeping (f-constancy) on {c["n"]} held-out sources</h2>
<table border=1 cellpadding=4>
<tr><th>g</th><th>L_CONST = mean (f(s) − f(G(s)))²</th><th>cos(f(s), f(G(s)))</th>
<th>cos(f(s), f(G(s′))), s′ another source</th><th>retrieval top-1 (chance {c["retrieval_chance"]:.3f})</th></tr>
{rows}</table>
<p>Baselines in f's space: cos(f(s), f(s′)) for a random other source = {c["cos_s_other_s"]:.4f};
(f(s) − f(s′))² = {c["const_mse_random_pair"]:.4f}. Identity is kept when cos(f(s), f(G(s))) clearly exceeds
both cos(f(s), f(G(s′))) and cos(f(s), f(s′)) — here: <b>{"yes" if r["identity_kept"] else "no"}</b>.
Retrieval: how often f(s) is closest to f(G(s)) among all G(s′).</p>
<h2>Samples</h2><p>Rows: held-out sources, G(source), held-out cartoons, G(cartoon).</p>
<img src='{esc(r["samples"])}' style='image-rendering:pixelated;width:100%'>
<h2>Losses</h2><img src='{esc(r["loss_plot"])}'>
<h2>Timing</h2><p>{esc(str({k: round(v, 1) for k, v in r["seconds"].items()}))} seconds</p>
<h2>Settings</h2><pre style="white-space:pre-wrap">{esc(str(r["settings"]))}</pre>
</body>""")


if __name__ == "__main__":
    sys.exit(main())
