"""Deep Feature Interpolation alpha sweep: edit faces along an attribute at several strengths.

    python -m experiments.alpha_sweep                                   # embedded synthetic faces, ~1.5 min on CPU
    python -m experiments.alpha_sweep --preset official --size 64 --iters 100   # the official code's objective
    python -m experiments.alpha_sweep --edit "Smiling+ Mouth_Open+" --inputs 4 --alphas 0.1,0.3,0.5
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --preset official --edit Smiling+
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --images me.jpg --attrs Young=1,Male=-1
    python -m experiments.alpha_sweep --images me.jpg --eyes 412,530,590,522 --attrs auto,Male=-1 --full-res
    python -m experiments.alpha_sweep --config runs/alpha_sweep/<time>/config.json   # repeat a run

For every input it picks K neighbours with and without the edit (nearest in the attributes), forms
the attribute vector w (each neighbour's features and each vector are cached under ~/.cache/dfijax,
so a second sweep does not recompute them), and inverts φ(x) + α·w for every input × alpha (in one
compiled, vmapped L-BFGS call sharded over all local devices, or alpha by alpha warm-started). A
preset fixes the objective, solver, neighbours and post-processing of a reference (--preset official,
chainer; dfijax is the default: 64 px, 100 iterations, all alphas in parallel); every flag overrides it.
Writes, under runs/alpha_sweep/<time>/ (or --out):
  grid.png     rows = inputs; columns = the original, then one per alpha
  report.html  the grid, per-alpha metrics (pixel and VGG-feature distance to the input, and the
               target attribute's probability under an attribute probe trained on the dataset) and settings
  results.json every setting, the weights and data used, neighbours, timings, metrics
  config.json  the sweep's config (--config repeats it)
  img<i>_a<alpha>.png for each output (and img<i>_a<alpha>_full.png for own photos with --full-res).
Own photos (--images) are never stretched: without --eyes they are centre-cropped to the dataset's
square face crop (--fit pad: padded with their edge pixels instead); with --eyes (or --eyes auto) they
are rotated, scaled uniformly and shifted so that the eyes land where the dataset's aligned faces
have theirs. --full-res adds the edit back to the whole original photo through the inverse transform
under a feathered mask: outside the face crop the photo's pixels are unchanged.
With the seeded random VGG-19 (no weights in weights/) it says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

import numpy as np

from experiments import common

if TYPE_CHECKING:
    from dfijax.dfi import SweepConfig


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["synthetic", "celeba", "celeba-tfds", "lfw"], default="synthetic")
    p.add_argument("--data-dir", help="dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)")
    p.add_argument("--n-synthetic", type=int, default=2000, help="size of the synthetic face set")
    p.add_argument(
        "--edit",
        help="attribute spec, e.g. 'Smiling+ Mouth_Open+' or 'Young-'; several edits in one call "
        "separated by ';', e.g. 'Smiling+;Eyeglasses+' (rows = input x edit); default Smiling+",
    )
    p.add_argument("--inputs", type=int, default=3, help="how many dataset faces lacking the edit to edit")
    p.add_argument("--indices", help="comma-separated dataset indices to edit instead")
    p.add_argument(
        "--images",
        nargs="*",
        help="own photos to edit, any size; never stretched: centre-cropped to the dataset's square face "
        "crop (or padded, --fit pad), or aligned by --eyes; needs --attrs",
    )
    p.add_argument(
        "--attrs",
        help="the photos' attributes: by hand, e.g. Young=1,Male=-1; 'auto': predicted by the attribute "
        "probe (printed with their probabilities); 'auto,Male=-1': predicted, with single overrides",
    )
    p.add_argument(
        "--eyes",
        help="align own photos to the dataset's face template: eye positions in pixels of each photo, "
        "'x1,y1,x2,y2' (';' between photos), or 'auto' (OpenCV Haar cascades: the largest face)",
    )
    p.add_argument(
        "--fit",
        choices=["crop", "pad"],
        default="crop",
        help="own photos without --eyes: centre-crop to the dataset's square aspect (default) or pad with "
        "edge pixels; never stretched",
    )
    p.add_argument("--alphas", help="comma-separated strengths (default 0.1,0.2,0.3,0.4,0.5)")
    p.add_argument(
        "--preset",
        choices=["dfijax", "official", "chainer"],
        default="dfijax",
        help="the objective, solver, neighbour and post-processing settings of a reference (official: "
        "Upchurch et al.'s code; chainer: chainer-dfi; dfijax: this project's fast default); every "
        "flag below that is given overrides the preset (table in the README)",
    )
    p.add_argument("--config", help="repeat a run: its config.json (flags given here still override it)")
    p.add_argument("--k", type=int, help="neighbours in each of the target and source sets (presets: 100)")
    p.add_argument("--allow-fewer", action="store_true", help="go on with fewer than K neighbours")
    p.add_argument("--same-gender", action=argparse.BooleanOptionalAction, help="neighbours share the input's gender")
    p.add_argument("--metric", choices=["auto", "hamming", "l2"], help="neighbour ranking distance")
    p.add_argument("--rank", choices=["other", "all"], help="rank neighbours on the other attributes or on all")
    p.add_argument(
        "--include-input",
        action=argparse.BooleanOptionalAction,
        help="the input may be its own neighbour (chainer-dfi)",
    )
    p.add_argument("--scaling", choices=["chainer", "paper", "beta", "none"])
    p.add_argument("--taps")
    p.add_argument("--size", type=int, help="working size in pixels (dfijax preset 64, the references 200)")
    p.add_argument("--iters", type=int, help="L-BFGS iterations (dfijax 100, official 500, chainer 1000)")
    p.add_argument(
        "--tv",
        type=float,
        help="TV weight (dfijax: 1e-3 with pretrained weights, 1e-6 with the random net, whose "
        "activations are ~100x smaller)",
    )
    p.add_argument(
        "--tv-form",
        choices=["beta", "squared", "per-pixel", "tv-norm"],
        help="TV form (see invert.FeatureLoss; tv-norm: the official code's, with its 1e-3 floor)",
    )
    p.add_argument(
        "--loss-reduction",
        choices=["sum", "mean", "sum/taps"],
        help="½‖·‖² per tap (sum), the same ÷ number of taps (sum/taps, the official code), or mean of squares",
    )
    p.add_argument(
        "--bounds",
        choices=["none", "lbfgsb", "project"],
        help="pixel box during the solve (--box): true L-BFGS-B, or clipping after each step",
    )
    p.add_argument(
        "--box",
        choices=["unit", "caffe"],
        help="the box: [0, 1], or the official code's (-128, 162) on the Caffe input (per channel)",
    )
    p.add_argument(
        "--linesearch",
        choices=["none", "zoom", "backtracking", "hager-zhang"],
        help="L-BFGS line search (none: a fixed unit step, dfijax and chainer; official: zoom, as scipy searches)",
    )
    p.add_argument("--ftol", type=float, help="stop at a relative decrease below this (official: scipy's 2.2e-9)")
    p.add_argument("--history", type=int, help="L-BFGS history size")
    p.add_argument("--init", choices=["input", "noise"], help="start from the input or from noise")
    p.add_argument(
        "--alpha-mode",
        choices=["parallel", "warm"],
        help="all alphas in one call, or in order warm-started from the previous one with half the iterations",
    )
    p.add_argument(
        "--color-match", choices=["none", "channel", "global"], help="match each output's colour to its input"
    )
    p.add_argument(
        "--residual", action=argparse.BooleanOptionalAction, help="subtract what inverting φ(x) alone changes"
    )
    p.add_argument(
        "--residual-mode",
        choices=["single", "nearest"],
        help="single: subtract one reconstruction's residual; nearest (chainer-dfi): reconstruct from the "
        "edits' start, keep a snapshot every --residual-every of --residual-iters, subtract the nearest",
    )
    p.add_argument("--residual-iters", type=int, help="iterations of the residual reconstruction (chainer 600)")
    p.add_argument("--residual-every", type=int, help="a residual snapshot every this many iterations (chainer 20)")
    p.add_argument("--color-eps", type=float, help="epsilon of the per-channel colour match (1e-6; chainer 0)")
    p.add_argument(
        "--output",
        choices=["image", "diff8"],
        help="the edited image, or chainer-dfi's: the 8-bit difference (+128, clipped) added to the input",
    )
    p.add_argument(
        "--neighbours",
        choices=["attributes", "official", "chainer"],
        help="neighbour rule: attributes (--metric, --rank), the official code's, or chainer-dfi's "
        "(CelebA: --include/--exclude filter, ranked by pixel distance; LFW: ±0.5 thresholds, L2)",
    )
    p.add_argument("--include", help="chainer neighbours: attributes every neighbour has, e.g. Young,Bags_Under_Eyes")
    p.add_argument("--exclude", help="chainer neighbours: attributes no neighbour has, e.g. Eyeglasses,Male")
    p.add_argument(
        "--crop",
        choices=["dataset", "chainer"],
        help="dataset: the dataset's own crop; chainer: chainer-dfi's boxes (CelebA 19,39,159,179; LFW "
        "40,20,210,190) with PIL bilinear resize of the 8-bit images",
    )
    p.add_argument("--mask", help="greyscale mask image: white takes the edit, black keeps the input")
    p.add_argument(
        "--full-res",
        action="store_true",
        help="own photos: also add the edit (computed at --size) to the full-resolution original",
    )
    p.add_argument("--no-shard", action="store_true", help="solve on one device even when there are several")
    p.add_argument("--dtype", choices=["float32", "bfloat16"])
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="do not keep per-image neighbour features (float16, ~200 KB per image at 64 px, "
        "~2 MB at 200 px) under ~/.cache/dfijax/features-*",
    )
    p.add_argument("--no-probe", action="store_true", help="skip the attribute probe (trained once, cached)")
    p.add_argument("--probe-steps", type=int, help="probe training steps (300)")
    p.add_argument("--probe-train", type=int, help="probe training images (2000)")
    p.add_argument("--batch", type=int, help="images per batch when averaging neighbour features (32)")
    p.add_argument("--seed", type=int, help="random seed (0)")
    p.add_argument("--out", help="output folder (default runs/alpha_sweep/<time>)")
    return p.parse_args(argv)


def config_from(args) -> "SweepConfig":
    """The preset (or a saved config), overridden by every flag given."""
    import json

    from dfijax.dfi import presets
    from dfijax.dfi.specs import parse_alphas, parse_edits, parse_names

    given = dict(
        edits=parse_edits(args.edit) if args.edit is not None else None,
        alphas=parse_alphas(args.alphas) if args.alphas is not None else None,
        k=args.k,
        allow_fewer=args.allow_fewer or None,
        same_gender=args.same_gender,
        metric=args.metric,
        rank=args.rank,
        include_input=args.include_input,
        scaling=args.scaling,
        taps=tuple(t.strip() for t in args.taps.split(",") if t.strip()) if args.taps else None,
        size=args.size,
        iters=args.iters,
        tv=args.tv,
        tv_form=args.tv_form,
        reduction=args.loss_reduction,
        bounds=args.bounds,
        box=args.box,
        linesearch=args.linesearch,
        ftol=args.ftol,
        history=args.history,
        init=args.init,
        alpha_mode=args.alpha_mode,
        color_match=args.color_match,
        residual=args.residual,
        residual_mode=args.residual_mode,
        residual_iters=args.residual_iters,
        residual_every=args.residual_every,
        color_eps=args.color_eps,
        output=args.output,
        neighbours=args.neighbours,
        include=parse_names(args.include) if args.include is not None else None,
        exclude=parse_names(args.exclude) if args.exclude is not None else None,
        crop=args.crop,
        dtype=args.dtype,
        shard=False if args.no_shard else None,
        batch=args.batch,
        feature_cache=False if args.no_feature_cache else None,
        probe=False if args.no_probe else None,
        probe_steps=args.probe_steps,
        probe_train=args.probe_train,
        seed=args.seed,
    )
    if not args.config:
        return presets.preset(args.preset, **given)
    try:
        saved = json.loads(open(args.config).read())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read --config {args.config}: {e}") from None
    saved = saved.get("config", saved)  # a results.json holds it under "config"
    return dataclasses.replace(presets.from_dict(saved), **{k: v for k, v in given.items() if v is not None})


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import dfi
    from dfijax import images as im
    from dfijax.data import DataError
    from dfijax.data.faces import load_faces

    device = common.setup()
    try:
        cfg = config_from(args)
        data = load_faces(args.dataset, args.data_dir, args.n_synthetic, args.seed or 0)
        if cfg.crop == "chainer":  # the inputs too (chainer-dfi crops LFW inputs with the sets' box)
            from dfijax.dfi.chainer import reference_crop

            data = reference_crop(data)
        photos = None
        if args.eyes and not args.images:
            raise ValueError("--eyes is for own photos: give them with --images")
        if args.images:
            if not args.attrs:
                raise ValueError(
                    "own photos need their attributes: --attrs Young=1,Male=-1 or --attrs auto (names from the dataset)"
                )
            originals, crops = load_photos(args, cfg, data)
            inputs, probs = photo_inputs(args, cfg, data, crops)
            photos = (originals, crops, inputs.queries, probs)
        else:
            indices = [int(i) for i in args.indices.split(",")] if args.indices else None
            inputs = dfi.dataset_inputs(data, cfg.edits[0], cfg.size, args.inputs, indices)
        mask = im.load_image(args.mask, (cfg.size, cfg.size)).mean(-1) if args.mask else None
        out = common.out_dir(args.out, "alpha_sweep")
        weights = common.load_weights(args.weights, cfg.seed)
        print(
            f"device: {device}; data: {data.describe()}; {len(inputs.images)} inputs x {len(cfg.edits)} edits x "
            f"{len(cfg.alphas)} alphas at {cfg.size}px, {cfg.iters} iterations, "
            f"TV {cfg.tv_weight(weights.pretrained):g}; "
            f"output {out}",
            file=sys.stderr,
        )
        with common.Bars() as bars:
            result = dfi.run_sweep(
                cfg, data, weights, inputs, mask=mask, cache_root=common.cache_root(), progress=bars.update
            )
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    write_outputs(out, args, result, data, weights, device, photos)
    for m in result.metrics_per_alpha:
        score = f", target attribute score {m['target_attribute_score']:.3f}" if "target_attribute_score" in m else ""
        print(
            f"alpha {m['alpha']:g}: pixel RMSE {m['pixel_rmse_to_input']:.4f}, "
            f"VGG distance {m['vgg_feature_distance_to_input']:.4f}{score}",
            file=sys.stderr,
        )
    print(f"wrote {out / 'grid.png'}, {out / 'report.html'} and {out / 'results.json'}")
    return 0


def load_photos(args, cfg, data):
    """The own photos at full resolution and brought to the working crop (--eyes / --fit)."""
    from dfijax import images as im
    from dfijax.dfi import align
    from dfijax.dfi.sweep import prepare_photos

    originals = [im.load_image(p) for p in args.images]
    eyes = None
    if args.eyes:
        given = align.parse_eyes(args.eyes, len(originals))
        eyes = ["auto"] * len(originals) if given is None else given
    crops = prepare_photos(originals, data, cfg.size, eyes, args.fit)
    if args.eyes:
        for path, e in zip(args.images, crops.eyes):
            print(f"{path}: eyes at ({e[0, 0]:.0f}, {e[0, 1]:.0f}) and ({e[1, 0]:.0f}, {e[1, 1]:.0f})", file=sys.stderr)
    return originals, crops


def photo_inputs(args, cfg, data, crops):
    """SweepInputs for the photos: --attrs by hand, or predicted by the attribute probe ('auto');
    and the probe's probabilities [N, A] (None when not predicted)."""
    from dfijax.dfi import sweep

    predicted = probs = None
    if sweep.wants_predicted_attrs(args.attrs):
        with common.Bars() as bars:
            probe = sweep.photo_probe(cfg, data, common.cache_root(), bars.update)
        predicted, probs = sweep.predict_photo_attrs(probe, crops.images, data)
        for path, p in zip(args.images, probs):
            print(
                f"{path}: predicted attributes (probability): "
                + ", ".join(f"{n} {q:.2f}" for n, q in zip(data.attr_names, p)),
                file=sys.stderr,
            )
    inputs = sweep.photo_inputs(crops.images, args.attrs, data, args.images, predicted)
    if predicted is not None:
        for path, q in zip(args.images, inputs.queries):
            print(
                f"{path}: neighbour search with "
                + ",".join(f"{n}={v:g}" for n, v in zip(data.attr_names, q) if np.isfinite(v)),
                file=sys.stderr,
            )
    return inputs, probs


TRADEOFF_BLEND = (0.1, 0.2, 0.3, 0.45, 0.6)
TRADEOFF_TEXT = (
    "One point per input × alpha. Attribute gain: the attribute probe's score for the edit's direction, "
    "minus the input's. Identity drift: distance from the input in the probe's penultimate features (a "
    "network apart from the VGG being edited) with the edited attributes' read-out directions projected "
    "out, in units of the median distance between two different faces of the dataset. Baseline: the "
    "input blended in pixels towards the mean of its target neighbours, (1 - t)·x + t·mean, "
    "t = 0.1 … 0.6. Up and to the left is better."
)


def write_outputs(out, args, r, data, weights, device, photos=None) -> None:
    """Per-image PNGs (and full-resolution ones for own photos), grid.png, results.json, report.html."""
    from dfijax import images as im
    from dfijax.dfi import align
    from experiments import report

    cfg, alphas = r.config, r.config.alphas
    multi = len(cfg.edits) > 1
    originals, crops, queries, probs = photos if photos is not None else (None,) * 4
    for row, (i, e) in enumerate(r.rows):
        stem = f"img{i}_e{e}" if multi else f"img{i}"
        for j, al in enumerate(alphas):
            im.save_image(out / f"{stem}_a{al:g}.png", r.edited[row, j])
            if originals is not None and args.full_res:  # the edit through the inverse transform, feathered
                full = align.paste_back(originals[i], r.inputs[row], r.edited[row, j], crops.matrices[i])
                im.save_image(out / f"{stem}_a{al:g}_full.png", full)
    grid = im.make_grid(
        [[r.inputs[row]] + list(r.edited[row]) for row in range(len(r.rows))],
        col_labels=["input"] + [f"a={al:g}" for al in alphas],
    )
    im.save_image(out / "grid.png", grid)
    rows = [{"input": r.labels[i], "edit": cfg.edits[e]} for i, e in r.rows]
    results = {
        "experiment": "alpha_sweep",
        "settings": vars(args),
        "config": dataclasses.asdict(cfg),
        "device": device,
        "data": data.describe(),
        "weights": weights.description,
        "weights_pretrained": weights.pretrained,
        "weights_meta": weights.meta,
        "edit": ";".join(cfg.edits),
        "edits": list(cfg.edits),
        "alphas": list(alphas),
        "inputs": list(r.labels),
        "rows": rows,
        "tv_weight": r.tv_weight,
        "photos": None
        if crops is None
        else [
            {
                "path": p,
                "size": list(o.shape[:2]),
                "eyes": None if np.isnan(e).any() else e.tolist(),
                "matrix": m.tolist(),
                "fit": "eyes" if not np.isnan(e).any() else args.fit,
                "attributes": {n: float(v) for n, v in zip(data.attr_names, q) if np.isfinite(v)},
                "attribute_probabilities": None if probs is None else dict(zip(data.attr_names, map(float, probs[k]))),
            }
            for k, (p, o, e, m, q) in enumerate(zip(args.images, originals, crops.eyes, crops.matrices, queries))
        ],
        "neighbours": [
            {
                "target": n.target.tolist(),
                "source": n.source.tolist(),
                "target_available": n.n_target_available,
                "source_available": n.n_source_available,
            }
            for n in r.neighbours
        ],
        "attribute_vectors_from_cache": r.vectors_from_cache,
        "seconds": r.seconds,
        "final_loss": r.final_loss.tolist(),
        "metrics_per_alpha": r.metrics_per_alpha,
        "metrics_per_edit": r.metrics_per_edit,
        "probe": r.probe,
        "warnings": r.warnings,
    }
    trade = None
    if r.probe_model is not None:  # the main figure: attribute gain against identity drift, with a pixel baseline
        from dfijax.dfi import specs, tradeoff

        edit_specs = [specs.parse_edit(cfg.edits[e], data.attr_names) for _, e in r.rows]
        trade = tradeoff.measure(
            r.probe_model, data, r.inputs, r.edited, edit_specs, r.neighbours, alphas, cfg.size, blend_t=TRADEOFF_BLEND
        )
        tradeoff.plot(out / "tradeoff.png", trade, f"{';'.join(cfg.edits)}: attribute gain vs identity drift")
        results["tradeoff"] = {
            "summary": trade.summary(),
            "stranger_distance": trade.stranger_distance,
            "dfi_gain": trade.dfi_gain,
            "dfi_drift": trade.dfi_drift,
            "blend_t": trade.blend_t,
            "blend_gain": trade.blend_gain,
            "blend_drift": trade.blend_drift,
            "identity_space": "attribute probe's penultimate features, edited attributes' read-out "
            "directions projected out, / median distance between two dataset faces",
        }
    common.write_json(out / "results.json", results)
    common.write_json(out / "config.json", dataclasses.asdict(cfg))  # --config repeats the run
    has_probe = r.probe is not None
    table = {
        "headers": ["edit", "alpha", "pixel RMSE to input", "VGG feature distance to input"]
        + (["target attribute score (probe)"] if has_probe else []),
        "rows": [
            [edit, m["alpha"], m["pixel_rmse_to_input"], m["vgg_feature_distance_to_input"]]
            + ([m["target_attribute_score"]] if has_probe else [])
            for edit, ms in r.metrics_per_edit.items()
            for m in ms
        ],
    }
    probe_text = ""
    if has_probe:
        acc = {k: round(v, 3) for k, v in r.probe["metrics"].get("val_accuracy", {}).items()}
        probe_text = (
            f"Attribute probe: a small CNN trained on the dataset's attributes (held-out accuracy {acc}); "
            f"the inputs score {r.probe['input_target_attribute_score']:.3f} for the edit."
        )
    report.write_report(
        out / "report.html",
        f"DFI alpha sweep: {';'.join(cfg.edits)} ({args.preset} preset)",
        weights=weights.description,
        pretrained=weights.pretrained,
        device=device,
        data=data.describe(),
        seconds=r.seconds,
        config=dataclasses.asdict(cfg),
        sections=(
            [
                {
                    "title": "Attribute gain against identity drift",
                    "images": ["tradeoff.png"],
                    "pixelated": False,
                    "text": TRADEOFF_TEXT,
                }
            ]
            if trade is not None
            else []
        )
        + [
            {
                "title": "Inputs × alphas",
                "images": ["grid.png"],
                "text": "Rows: " + ", ".join(f"{x['input']} / {x['edit']}" for x in rows) + ".",
            },
            {"title": "Per edit and alpha (mean over inputs)", "table": table, "text": probe_text},
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
