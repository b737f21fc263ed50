"""Domain Transfer Network, faces setting (Taigman et al. 2016, section 5.2): face photos -> cartoon
faces with f = frozen VGG-19 features (the paper's f is the DeepFace network).

    python -m experiments.train_dtn_faces                   # offline, CPU: 32 px, a few minutes
    python -m experiments.train_dtn_faces --data celeba --data-dir ~/data/celeba --out runs/dtn_faces/celeba
                                                            # GPU defaults: 64 px, width 64, batch 64

Setting: L_G = L_GANG + α L_CONST + β L_TID + γ L_TV with the paper's faces weights α = 100, β = 1,
γ = 0.05 (the `faces` preset; override with --alpha/--beta/--gamma), 3-class D. f(x): VGG-19 taps
(--taps, default relu3_1,relu4_1), each average-pooled to a --grid × --grid map (default 2), flattened,
concatenated and standardised with statistics of --calib source training images, fixed before
training (dfijax.dtn.faces); f is never trained. g decodes f(x) to --size × --size (default 64 on
a GPU, 32 on CPU); D sees the target domain at the same size (the paper's D saw 152×152 and its g
made 64×64). With no converted VGG-19 weights (weights/), f is a seeded random VGG-19, NOT
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
CONFIG_KEYS = ("data", "data_dir", "n_train", "size", "taps", "grid", "calib", "width", "d_width", "weights", "seed")


def parse(argv):
    gpu = jax.default_backend() != "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["synthetic", "celeba"], default="synthetic", help="source domain")
    p.add_argument("--data-dir", help="CelebA folder (list_attr_celeba.txt + img_align_celeba/), for --data celeba")
    p.add_argument("--n-train", type=int, default=20000 if gpu else 2000, help="source training images")
    p.add_argument("--n-test", type=int, default=64, help="held-out source images (constancy measure)")
    p.add_argument("--n-target", type=int, default=20000 if gpu else 2000, help="cartoon training images")
    p.add_argument("--size", type=int, default=64 if gpu else 32, help="image size of g's output, D and the data")
    p.add_argument("--taps", default="relu3_1,relu4_1", help="VGG-19 taps that make f")
    p.add_argument("--grid", type=int, default=2, help="each tap average-pooled to grid x grid")
    p.add_argument("--calib", type=int, default=256, help="source training images that fix f's standardisation")
    p.add_argument("--weights", help="converted VGG-19 weights; default: weights/ or a seeded random net")
    p.add_argument("--preset", choices=["faces", "digits"], default="faces",
                   help="loss weights: faces (the paper's) α=100, β=1, γ=0.05; digits α=β=15, γ=0")
    p.add_argument("--alpha", type=float, help="L_CONST weight (overrides the preset)")
    p.add_argument("--beta", type=float, help="L_TID weight (overrides the preset)")
    p.add_argument("--gamma", type=float, help="L_TV weight (overrides the preset)")
    p.add_argument("--const", choices=["mse", "cosine"], default="mse", help="distance for L_CONST")
    p.add_argument("--steps", type=int, default=20000 if gpu else 600, help="iterations (one D + g-steps G steps)")
    p.add_argument("--batch", type=int, default=64 if gpu else 16)
    p.add_argument("--lr", type=float, default=2e-4 if gpu else 1e-3,
                   help="Adam learning rate of g and D (b1 = 0.5); CPU default higher for its short run")
    p.add_argument("--g-steps", type=int, default=1, help="G steps per D step")
    p.add_argument("--width", type=int, default=64 if gpu else 32, help="base width of g")
    p.add_argument("--d-width", type=int, default=64 if gpu else 32, help="base width of D")
    p.add_argument("--save-every", type=int, default=1000 if gpu else 200)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dtn_faces/default", help="output and checkpoint folder (resumes)")
    return p.parse_args(argv)


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
    if args.data == "celeba" and not args.data_dir:
        raise ValueError("--data celeba needs --data-dir (the folder with list_attr_celeba.txt and img_align_celeba/)")


def load_sources(args):
    """(train [n_train, S, S, 3], held-out test [n_test, S, S, 3], description)."""
    n = args.n_train + args.n_test
    if args.data == "synthetic":
        from dfijax.data.synthetic_faces import synthetic_faces

        ds = synthetic_faces(n, args.seed)
        desc = (f"source: {n} procedurally rendered synthetic faces (dfijax.data.synthetic_faces, seed {args.seed}; "
                "renders standing in for photos, not photos)")
    else:
        from dfijax.data import celeba

        ds = celeba.load_celeba_folder(args.data_dir, limit=n)
        if len(ds) < n:
            raise ValueError(f"CelebA in {args.data_dir} has {len(ds)} images; --n-train + --n-test = {n}")
        desc = f"source: the first {n} CelebA photos of {args.data_dir} (centred face crop)"
    x = ds.images(range(n), args.size)
    desc += f", last {args.n_test} held out"
    return x[:args.n_train], x[args.n_train:], desc


def load_targets(args):
    from dfijax.data.cartoon_faces import cartoon_faces

    ds = cartoon_faces(args.n_target + SHOW, args.seed)
    x = ds.images(range(args.n_target + SHOW), args.size)
    desc = (f"target: {args.n_target} procedural emoji-style cartoon faces (dfijax.data.cartoon_faces, seed "
            f"{args.seed}), {SHOW} more held out for the figure")
    return x[:args.n_target], x[args.n_target:], desc


def main(argv=None) -> int:
    args = parse(argv)
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
        dtn = F.make_faces_dtn(loss_w, f, args.size, width=args.width, d_width=args.d_width)
        out = pathlib.Path(args.out).absolute()
        config = {k: getattr(args, k) for k in CONFIG_KEYS}
        old = out / "config.json"
        if old.is_file() and (out / "dtn").is_dir():
            prev = json.loads(old.read_text())
            diff = [k for k in CONFIG_KEYS if prev.get(k) != config[k]]
            if diff:
                flags = ", ".join("--" + k.replace("_", "-") for k in diff)
                raise ValueError(f"{out} holds a run with other settings ({flags}); use another --out or the same "
                                 "settings to resume")
        xs, xs_test, src_desc = load_sources(args)
        xt, xt_show, tgt_desc = load_targets(args)
        for name, x in (("source", xs), ("held-out source", xs_test), ("target", xt)):
            D.check_images(x, name, args.size)
        vgg = common.load_weights(args.weights, args.seed)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    out.mkdir(parents=True, exist_ok=True)
    common.write_json(out / "config.json", config)
    print(f"device: {device}; {src_desc}; {tgt_desc}; {args.size}px; f: VGG-19 {','.join(f.taps)} pooled "
          f"{args.grid}x{args.grid} ({f.feat_dim} features); output {out}", file=sys.stderr)
    seconds = {}
    t0 = time.perf_counter()
    calib = xs[np.random.default_rng([args.seed, 3]).choice(len(xs), min(args.calib, len(xs)), replace=False)]
    f_params = F.make_f_params(f, vgg.variables, calib)
    seconds["f_calibration"] = time.perf_counter() - t0

    def batches(i):
        r = np.random.default_rng([args.seed, 7, i])
        return xs[r.integers(0, len(xs), args.batch)], xt[r.integers(0, len(xt), args.batch)]

    untrained = D.init_state(dtn, args.lr, args.seed)
    before = F.constancy(dtn, f_params, untrained.g.params, xs_test, args.seed)
    t0 = time.perf_counter()
    with tqdm(total=args.steps, desc="dtn_faces", unit="it", file=sys.stderr) as bar:
        def log(i, rec):
            bar.update(i - bar.n)
            bar.set_postfix(d=f"{rec['d_loss']:.3g}", g=f"{rec['g_loss']:.3g}", const=f"{rec['const']:.3g}")

        state, start = D.train_dtn(dtn, f_params, batches, args.steps, out / "dtn", lr=args.lr, seed=args.seed,
                                   g_steps=args.g_steps, save_every=args.save_every, log_every=args.log_every,
                                   log=log)
        bar.update(args.steps - bar.n)
    seconds["train"] = time.perf_counter() - t0
    after = F.constancy(dtn, f_params, state.g.params, xs_test, args.seed)

    records = MetricsLog(out / "dtn" / "metrics.jsonl").records()
    common.plot_losses(out / "loss.png", records, keys=("d_loss", "gang", "const", "tid", "tv"))
    show = np.arange(min(SHOW, len(xs_test)))
    g_src = D.translate(dtn, f_params, state.g.params, xs_test[show])
    g_tgt = D.translate(dtn, f_params, state.g.params, xt_show)
    grid = im.make_grid([[im.upscale_nearest(x, 64) for x in row] for row in (xs_test[show], g_src, xt_show, g_tgt)])
    im.save_image(out / "samples.png", grid)
    tid_show = float(np.mean(np.square(g_tgt - xt_show)))
    seconds["total"] = time.perf_counter() - t_start
    tail = records[-max(1, len(records) // 10):]
    results = {
        "experiment": "train_dtn_faces", "device": device, "data": {"source": src_desc, "target": tgt_desc},
        "settings": vars(args),
        "weights": {"description": vgg.description, "pretrained": vgg.pretrained},
        "f": {"kind": "frozen VGG-19 features", "taps": list(f.taps), "grid": f.grid, "feat_dim": f.feat_dim,
              "standardisation": f"per-feature mean and per-tap scale of {len(calib)} source training images"},
        "loss_weights": {"alpha": loss_w.alpha, "beta": loss_w.beta, "gamma": loss_w.gamma, "const": loss_w.const,
                         "d_classes": loss_w.num_classes},
        "steps": args.steps, "resumed_from": start,
        "final_metrics": records[-1] if records else None,
        "final_metrics_mean_last_10pct": ({k: float(np.mean([r[k] for r in tail])) for k in tail[0] if k != "step"}
                                          if records else None),
        "constancy": after, "constancy_untrained_g": before,
        "identity_kept": bool(after["cos_s_gs"] > max(after["cos_s_other_s"], after["cos_s_other_gs"])),
        "target_identity_mse_on_shown": tid_show,
        "samples": "samples.png", "loss_plot": "loss.png", "seconds": seconds,
    }
    common.write_json(out / "results.json", results)
    write_report(out / "report.html", results)
    c = after
    print(f"constancy on {c['n']} held-out sources: cos(f(s), f(G(s))) {c['cos_s_gs']:.3f} vs random other source "
          f"{c['cos_s_other_s']:.3f} / other G(s') {c['cos_s_other_gs']:.3f}; retrieval {c['retrieval_top1']:.3f} "
          f"(chance {c['retrieval_chance']:.3f}); L_CONST {c['const_mse']:.3f} (random pair "
          f"{c['const_mse_random_pair']:.3f})", file=sys.stderr)
    if not vgg.pretrained:
        print("note: f is a random VGG-19 (NOT pretrained): identity is kept in a random-feature space",
              file=sys.stderr)
    print(f"wrote {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_report(path, r) -> None:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{c['const_mse']:.4f}</td><td>{c['cos_s_gs']:.4f}</td>"
        f"<td>{c['cos_s_other_gs']:.4f}</td><td>{c['retrieval_top1']:.3f}</td></tr>"
        for name, c in (("trained G", r["constancy"]), ("untrained g (initialisation)", r["constancy_untrained_g"])))
    c = r["constancy"]
    w = r["loss_weights"]
    fm = r["final_metrics_mean_last_10pct"] or {}
    losses = ", ".join(f"{k} {fm[k]:.4g}" for k in ("d_loss", "g_loss", "gang", "const", "tid", "tv") if k in fm)
    note = "" if r["weights"]["pretrained"] else (
        "<p style='color:#a00'><b>f is a seeded random VGG-19, NOT pretrained</b>: identity is kept in a "
        "random-feature space; this shows what the method does, not what a trained face network gives.</p>")
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>DTN faces</title>
<body style="font-family:sans-serif;max-width:1100px;margin:auto">
<h1>Domain Transfer Network: faces → cartoons</h1>
<p>{esc(r['data']['source'])}.<br>{esc(r['data']['target'])}.<br>Device: {esc(r['device'])}.</p>
<p>f: {esc(r['f']['kind'])} {esc(', '.join(r['f']['taps']))}, each pooled to {r['f']['grid']}×{r['f']['grid']}
({r['f']['feat_dim']} features, {esc(r['f']['standardisation'])}); weights: {esc(r['weights']['description'])}.</p>
{note}
<p>L_G = L_GANG + {w['alpha']:g} L_CONST + {w['beta']:g} L_TID + {w['gamma']:g} L_TV (d = {esc(w['const'])},
{w['d_classes']}-class D), {r['steps']} iterations. Mean of the last 10% of logged losses: {esc(losses)}.</p>
<h2>Identity keeping (f-constancy) on {c['n']} held-out sources</h2>
<table border=1 cellpadding=4>
<tr><th>g</th><th>L_CONST = mean (f(s) − f(G(s)))²</th><th>cos(f(s), f(G(s)))</th>
<th>cos(f(s), f(G(s′))), s′ another source</th><th>retrieval top-1 (chance {c['retrieval_chance']:.3f})</th></tr>
{rows}</table>
<p>Baselines in f's space: cos(f(s), f(s′)) for a random other source = {c['cos_s_other_s']:.4f};
(f(s) − f(s′))² = {c['const_mse_random_pair']:.4f}. Identity is kept when cos(f(s), f(G(s))) clearly exceeds
both cos(f(s), f(G(s′))) and cos(f(s), f(s′)) — here: <b>{'yes' if r['identity_kept'] else 'no'}</b>.
Retrieval: how often f(s) is closest to f(G(s)) among all G(s′).</p>
<h2>Samples</h2><p>Rows: held-out sources, G(source), held-out cartoons, G(cartoon).</p>
<img src='{esc(r['samples'])}' style='image-rendering:pixelated;width:100%'>
<h2>Losses</h2><img src='{esc(r['loss_plot'])}'>
<h2>Timing</h2><p>{esc(str({k: round(v, 1) for k, v in r['seconds'].items()}))} seconds</p>
<h2>Settings</h2><pre style="white-space:pre-wrap">{esc(str(r['settings']))}</pre>
</body>""")


if __name__ == "__main__":
    sys.exit(main())
