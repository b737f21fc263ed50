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
checkpoint, and other settings there are a one-line error): results.json (settings, data, weights
description and pretrained flag, final losses, f-constancy on the held-out sources after training and
for the untrained g), config.json, report.html, samples.png (rows: held-out sources, G(source),
held-out cartoons, G(cartoon)), loss.png, and dtn/ with the orbax checkpoints, the run's config.json
and metrics.jsonl. The pipeline is `dfijax.dtn.pipeline.run_faces`; training runs on every device
(batch a multiple of their count), also of many processes (--coordinator HOST:PORT --num-processes N
--process-id I on each, or what jax.distributed detects); process 0 writes the outputs.

Expected: `python -m experiments.train_dtn_faces --steps 150` (about 3 minutes on 2 CPU cores, random
VGG-19) keeps identity in f's space: cos(f(s), f(G(s))) 0.81 against 0.08 for another source, retrieval
1.0 (chance 0.016), "identity kept: yes"; L_TID falls (0.13 -> 0.05) while G's pictures are still
noisy face-shaped textures at this length.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from experiments import common, report

SHOW = 12
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
    common.add_distributed_flags(p)
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


def make_config(args, weights_description: str):
    """The pipeline's settings from checked flags (a one-line ValueError on bad values)."""
    from dfijax.dtn import DTNConfig
    from dfijax.dtn.faces import parse_taps
    from dfijax.dtn.pipeline import FacesConfig

    data_id = f"{args.data} {args.data_dir or ''} n_train={args.n_train} n_target={args.n_target}; "
    data_id += f"f: {weights_description}, calibrated on {args.calib}"
    keys = ("nets", "size", "width", "d_width", "grid", "preset", "alpha", "beta", "gamma", "const", "lr", "g_steps")
    dtn = DTNConfig(
        domain="faces",
        taps=parse_taps(args.taps),
        data=data_id,
        **{k: getattr(args, k) for k in keys + ("batch", "seed", "steps", "save_every", "log_every")},
    )
    return FacesConfig(dtn, args.calib)


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
        check_args(args)
        vgg = common.load_weights(args.weights, args.seed)
        config = make_config(args, vgg.description)
        xs, xs_test, src_desc = load_sources(args)
        xt, xt_show, tgt_desc = load_targets(args)
        out = common.out_dir(args.out, "dtn_faces")
        f = config.dtn.build().f
        print(
            f"device: {device}; {args.nets} networks; {src_desc}; {tgt_desc}; {args.size}px; f: VGG-19 "
            f"{','.join(f.taps)} pooled {args.grid}x{args.grid} ({f.feat_dim} features); output {out}",
            file=sys.stderr,
        )
        with common.Bars() as bars:
            r = pipeline.run_faces(
                config, vgg.variables, xs, xs_test, xt, xt_show, out, progress=bars.update if proc.index == 0 else None
            )
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if not training.is_main():
        return 0
    im.save_image(out / "samples.png", r.pictures["samples.png"])
    common.plot_losses(out / "loss.png", r.records["dtn"], keys=("d_loss", "gang", "const", "tid", "tv"))
    r.summary["seconds"]["total"] = time.perf_counter() - t_start
    preset = NET_PRESETS[args.nets]
    resolved = {"nets": args.nets, "preset": preset, "overridden": args.overridden}
    resolved["resolved"] = {k: getattr(args, k) for k in preset}
    settings = training.config_to_dict(config)
    results = {"experiment": "train_dtn_faces", "device": device, "data": {"source": src_desc, "target": tgt_desc}}
    results.update(settings=vars(args), config=resolved, **r.summary, loss_plot="loss.png")
    results["weights"] = {"description": vgg.description, "pretrained": vgg.pretrained}
    common.write_json(out / "results.json", {**results, "pipeline_config": settings})
    report.save_config(out, settings)
    write_report(out / "report.html", results, settings)
    c = r.summary["constancy"]
    print(
        f"constancy on {c['n']} held-out sources: cos(f(s), f(G(s))) {c['cos_s_gs']:.3f} vs random other source "
        f"{c['cos_s_other_s']:.3f} / other G(s') {c['cos_s_other_gs']:.3f}; retrieval {c['retrieval_top1']:.3f} "
        f"(chance {c['retrieval_chance']:.3f})",
        file=sys.stderr,
    )
    print(f"wrote {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_report(path, r, config) -> None:
    """report.html: networks and loss, the constancy table, samples and losses, then the config."""
    from dfijax.dtn.pipeline import constancy_table

    c, w, n = r["constancy"], r["loss_weights"], r["networks"]
    fm = r["final_metrics_mean_last_10pct"] or {}
    losses = ", ".join(f"{k} {fm[k]:.4g}" for k in ("d_loss", "g_loss", "gang", "const", "tid", "tv") if k in fm)
    setting = (
        f"f: {r['f']['kind']} {', '.join(r['f']['taps'])}, each pooled to {r['f']['grid']}×{r['f']['grid']} "
        f"({r['f']['feat_dim']} features, {r['f']['standardisation']}). Networks ({r['config']['nets']}): "
        f"g {n['g']} (width {n['g_width']}, {n['g_params']:,} parameters) to {n['g_output_size']} px; D {n['d']} "
        f"(width {n['d_width']}, {n['d_params']:,} parameters) on {n['d_input_size']} px; "
        f"{n['norm']} norm. L_G = L_GANG + {w['alpha']:g} L_CONST + {w['beta']:g} L_TID + {w['gamma']:g} L_TV "
        f"(d = {w['const']}, {w['d_classes']}-class D), {r['steps']} iterations. Mean of the last 10% of logged "
        f"losses: {losses}."
    )
    kept = (
        f"Baselines in f's space: cos(f(s), f(s′)) for a random other source = {c['cos_s_other_s']:.4f}; "
        f"(f(s) − f(s′))² = {c['const_mse_random_pair']:.4f}. Identity is kept when cos(f(s), f(G(s))) clearly "
        f"exceeds both cos(f(s), f(G(s′))) and cos(f(s), f(s′)); here: {'yes' if r['identity_kept'] else 'no'}. "
        "Retrieval: how often f(s) is closest to f(G(s)) among all G(s′)."
    )
    headers, rows = constancy_table(r)
    sections = [
        {"title": "Setting", "text": setting},
        {
            "title": f"Identity keeping (f-constancy) on {c['n']} held-out sources",
            "text": kept,
            "table": {"headers": headers, "rows": rows},
        },
        {
            "title": "Samples",
            "text": "Rows: held-out sources, G(source), held-out cartoons, G(cartoon).",
            "images": [r["samples"]],
        },
        {"title": "Losses", "text": "|loss| on a log scale", "images": [r["loss_plot"]], "pixelated": False},
    ]
    report.write_report(
        path,
        "Domain Transfer Network: faces → cartoons",
        weights=r["weights"]["description"],
        pretrained=r["weights"]["pretrained"],
        device=r["device"],
        config=config,
        sections=sections,
        data=f"{r['data']['source']}; {r['data']['target']}",
        seconds=r["seconds"],
    )


if __name__ == "__main__":
    sys.exit(main())
