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

import dataclasses
from typing import Annotated, Literal

import numpy as np

from dfijax import config as C
from dfijax.dfi.presets import PRESETS
from dfijax.dfi.sweep import SweepConfig
from experiments import common, runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[SweepConfig, runner.FLAT] = SweepConfig()
    preset: Literal[tuple(PRESETS)] = "dfijax"
    """the objective, solver, neighbour and post-processing settings of a reference (official: Upchurch et
    al.'s code; chainer: chainer-dfi; dfijax: this project's fast default); every flag given overrides it"""
    saved_config: Annotated[str | None, C.flag("config")] = None
    """repeat a run: its config.json (flags given here still override it)"""
    dataset: Literal["synthetic", "celeba", "celeba-tfds", "lfw"] = "synthetic"
    """face dataset"""
    data_dir: str | None = None
    """dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)"""
    n_synthetic: Annotated[int, C.POSITIVE] = 2000
    """size of the synthetic face set"""
    inputs: Annotated[int, C.POSITIVE] = 3
    """how many dataset faces lacking the edit to edit"""
    indices: Annotated[tuple[int, ...], C.comma_list(int)] = ()
    """comma-separated dataset indices to edit instead"""
    images: tuple[str, ...] = ()
    """own photos to edit, any size; never stretched: centre-cropped to the dataset's square face crop (or
    padded, --fit pad), or aligned by --eyes; needs --attrs"""
    attrs: str | None = None
    """the photos' attributes: by hand, e.g. Young=1,Male=-1; 'auto': predicted by the attribute probe
    (printed with their probabilities); 'auto,Male=-1': predicted, with single overrides"""
    eyes: str | None = None
    """align own photos to the dataset's face template: eye positions in pixels of each photo,
    'x1,y1,x2,y2' (';' between photos), or 'auto' (OpenCV Haar cascades: the largest face)"""
    fit: Literal["crop", "pad"] = "crop"
    """own photos without --eyes: centre-crop to the dataset's square aspect, or pad with edge pixels"""
    full_res: bool = False
    """own photos: also write each edit pasted back into the whole photo (feathered; the rest unchanged)"""
    mask: str | None = None
    """image whose brightness weights where the edit applies (white: edit, black: keep)"""
    weights: str | None = None
    """converted weights (.safetensors); default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder (default runs/alpha_sweep/<time>)"""


def run(args: Args, ctx: runner.Context) -> runner.Outputs:
    from dfijax import dfi
    from dfijax import images as im
    from dfijax.data.faces import load_faces

    cfg = args.config
    data = load_faces(args.dataset, args.data_dir, args.n_synthetic, cfg.seed)
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
        originals, crops = load_photos(args, ctx, data)
        inputs, probs = photo_inputs(args, ctx, data, crops)
        photos = (originals, crops, inputs.queries, probs)
    else:
        inputs = dfi.dataset_inputs(data, cfg.edits[0], cfg.size, args.inputs, list(args.indices) or None)
    mask = im.load_image(args.mask, (cfg.size, cfg.size)).mean(-1) if args.mask else None
    out = ctx.out()
    weights = ctx.load_weights(args.weights, cfg.seed)
    ctx.say(
        f"device: {ctx.device}; data: {data.describe()}; {len(inputs.images)} inputs x {len(cfg.edits)} edits x "
        f"{len(cfg.alphas)} alphas at {cfg.size}px, {cfg.iters} iterations, "
        f"TV {cfg.resolved_tv_weight(weights.pretrained):g}; output {out}"
    )
    with common.Bars() as bars:
        r = dfi.run_sweep(cfg, data, weights, inputs, mask=mask, cache_root=common.cache_root(), progress=bars.update)
    for w in r.warnings:
        ctx.say(f"warning: {w}")
    return outputs(out, args, r, data, photos)


def load_photos(args: Args, ctx: runner.Context, data):
    """The own photos at full resolution and brought to the working crop (--eyes / --fit)."""
    from dfijax import images as im
    from dfijax.dfi import align
    from dfijax.dfi.sweep import prepare_photos

    originals = [im.load_image(p) for p in args.images]
    eyes = None
    if args.eyes:
        given = align.parse_eyes(args.eyes, len(originals))
        eyes = ["auto"] * len(originals) if given is None else given
    crops = prepare_photos(originals, data, args.config.size, eyes, args.fit)
    if args.eyes:
        for path, e in zip(args.images, crops.eyes):
            ctx.say(f"{path}: eyes at ({e[0, 0]:.0f}, {e[0, 1]:.0f}) and ({e[1, 0]:.0f}, {e[1, 1]:.0f})")
    return originals, crops


def photo_inputs(args: Args, ctx: runner.Context, data, crops):
    """SweepInputs for the photos: --attrs by hand, or predicted by the attribute probe ('auto');
    and the probe's probabilities [N, A] (None when not predicted)."""
    from dfijax.dfi import sweep

    predicted = probs = None
    if sweep.wants_predicted_attrs(args.attrs):
        with common.Bars() as bars:
            probe = sweep.photo_probe(args.config, data, common.cache_root(), bars.update)
        predicted, probs = sweep.predict_photo_attrs(probe, crops.images, data)
        for path, p in zip(args.images, probs):
            names = ", ".join(f"{n} {q:.2f}" for n, q in zip(data.attr_names, p))
            ctx.say(f"{path}: predicted attributes (probability): {names}")
    inputs = sweep.photo_inputs(crops.images, args.attrs, data, list(args.images), predicted)
    if predicted is not None:
        for path, q in zip(args.images, inputs.queries):
            given = ",".join(f"{n}={v:g}" for n, v in zip(data.attr_names, q) if np.isfinite(v))
            ctx.say(f"{path}: neighbour search with {given}")
    return inputs, probs


def photo_records(args: Args, data, photos) -> list[dict] | None:
    if photos is None:
        return None
    originals, crops, queries, probs = photos
    return [
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
    ]


def outputs(out, args: Args, r, data, photos) -> runner.Outputs:
    """Per-image PNGs (and full-resolution ones for own photos), grid.png, tradeoff.png; the results."""
    from dfijax import images as im
    from dfijax.dfi import align, tradeoff

    cfg, alphas = r.config, r.config.alphas
    multi = len(cfg.edits) > 1
    for row, (i, e) in enumerate(r.rows):
        stem = f"img{i}_e{e}" if multi else f"img{i}"
        for j, al in enumerate(alphas):
            im.save_image(out / f"{stem}_a{al:g}.png", r.edited[row, j])
            if photos is not None and args.full_res:  # the edit through the inverse transform, feathered
                full = align.paste_back(photos[0][i], r.inputs[row], r.edited[row, j], photos[1].matrices[i])
                im.save_image(out / f"{stem}_a{al:g}_full.png", full)
    rows = [[r.inputs[row]] + list(r.edited[row]) for row in range(len(r.rows))]
    im.save_image(out / "grid.png", im.make_grid(rows, col_labels=["input"] + [f"a={al:g}" for al in alphas]))
    rows = [{"input": r.labels[i], "edit": cfg.edits[e]} for i, e in r.rows]
    results = {
        "edit": ";".join(cfg.edits),
        "edits": list(cfg.edits),
        "alphas": list(alphas),
        "inputs": list(r.labels),
        "rows": rows,
        "tv_weight": r.tv_weight,
        "photos": photo_records(args, data, photos),
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
    sections = []
    trade = tradeoff.evaluate(r, data)  # the main figure: attribute gain against identity drift
    if trade is not None:
        tradeoff.plot(out / "tradeoff.png", trade, f"{';'.join(cfg.edits)}: attribute gain vs identity drift")
        results["tradeoff"] = trade.to_dict()
        sections.append(
            {
                "title": "Attribute gain against identity drift",
                "images": ["tradeoff.png"],
                "pixelated": False,
                "text": tradeoff.EXPLAINED,
            }
        )
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
    sections += [
        {
            "title": "Inputs × alphas",
            "images": ["grid.png"],
            "text": "Rows: " + ", ".join(f"{x['input']} / {x['edit']}" for x in rows) + ".",
        },
        {"title": "Per edit and alpha (mean over inputs)", "table": table, "text": probe_text},
    ]
    summary = [
        f"alpha {m['alpha']:g}: pixel RMSE {m['pixel_rmse_to_input']:.4f}, "
        f"VGG distance {m['vgg_feature_distance_to_input']:.4f}"
        + (f", target attribute score {m['target_attribute_score']:.3f}" if "target_attribute_score" in m else "")
        for m in r.metrics_per_alpha
    ]
    return runner.Outputs(
        title=f"DFI alpha sweep: {';'.join(cfg.edits)} ({args.preset} preset)",
        results=results,
        sections=sections,
        data=data.describe(),
        seconds=r.seconds,
        summary=summary,
    )


EXPERIMENT = runner.Experiment("alpha_sweep", Args, run, __doc__, PRESETS)
main, parse = EXPERIMENT.main, EXPERIMENT.parse

if __name__ == "__main__":
    raise SystemExit(main())
