"""Deep Feature Interpolation alpha sweep: edit faces along an attribute at several strengths.

    python -m experiments.alpha_sweep                                   # embedded synthetic faces, ~1.5 min on CPU
    python -m experiments.alpha_sweep --preset official --size 64 --iters 100   # the official code's objective
    python -m experiments.alpha_sweep --edit "Smiling+ Mouth_Open+" --inputs 4 --alphas 0.1,0.3,0.5
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --preset official --edit Smiling+
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --images me.jpg --attrs Young=1,Male=-1
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
  img<i>_a<alpha>.png for each output.
With the seeded random VGG-19 (no weights in weights/) it says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["synthetic", "celeba", "celeba-tfds", "lfw"], default="synthetic")
    p.add_argument("--data-dir", help="dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)")
    p.add_argument("--n-synthetic", type=int, default=2000, help="size of the synthetic face set")
    p.add_argument("--edit",
                   help="attribute spec, e.g. 'Smiling+ Mouth_Open+' or 'Young-'; several edits in one call "
                        "separated by ';', e.g. 'Smiling+;Eyeglasses+' (rows = input x edit); default Smiling+")
    p.add_argument("--inputs", type=int, default=3, help="how many dataset faces lacking the edit to edit")
    p.add_argument("--indices", help="comma-separated dataset indices to edit instead")
    p.add_argument("--images", nargs="*", help="own photos to edit (aligned, face-centred); needs --attrs")
    p.add_argument("--attrs", help="the photos' attributes by hand, e.g. Young=1,Male=-1")
    p.add_argument("--alphas", help="comma-separated strengths (default 0.1,0.2,0.3,0.4,0.5)")
    p.add_argument("--preset", choices=["dfijax", "official", "chainer"], default="dfijax",
                   help="the objective, solver, neighbour and post-processing settings of a reference (official: "
                        "Upchurch et al.'s code; chainer: chainer-dfi; dfijax: this project's fast default); every "
                        "flag below that is given overrides the preset (table in the README)")
    p.add_argument("--config", help="repeat a run: its config.json (flags given here still override it)")
    p.add_argument("--k", type=int, help="neighbours in each of the target and source sets (presets: 100)")
    p.add_argument("--allow-fewer", action="store_true", help="go on with fewer than K neighbours")
    p.add_argument("--same-gender", action=argparse.BooleanOptionalAction, help="neighbours share the input's gender")
    p.add_argument("--metric", choices=["auto", "hamming", "l2"], help="neighbour ranking distance")
    p.add_argument("--rank", choices=["other", "all"], help="rank neighbours on the other attributes or on all")
    p.add_argument("--include-input", action=argparse.BooleanOptionalAction,
                   help="the input may be its own neighbour (chainer-dfi)")
    p.add_argument("--scaling", choices=["chainer", "paper", "beta", "none"])
    p.add_argument("--taps")
    p.add_argument("--size", type=int, help="working size in pixels (dfijax preset 64, the references 200)")
    p.add_argument("--iters", type=int, help="L-BFGS iterations (dfijax 100, official 500, chainer 1000)")
    p.add_argument("--tv", type=float,
                   help="TV weight (dfijax: 1e-3 with pretrained weights, 1e-6 with the random net, whose "
                        "activations are ~100x smaller)")
    p.add_argument("--tv-form", choices=["beta", "squared", "per-pixel"], help="TV form (see invert.FeatureLoss)")
    p.add_argument("--loss-reduction", choices=["sum", "mean"], help="½‖·‖² per tap (sum) or mean of squares")
    p.add_argument("--bounds", choices=["none", "lbfgsb", "project"],
                   help="pixel box [0, 1] during the solve: true L-BFGS-B, or clipping after each step")
    p.add_argument("--history", type=int, help="L-BFGS history size")
    p.add_argument("--init", choices=["input", "noise"], help="start from the input or from noise")
    p.add_argument("--alpha-mode", choices=["parallel", "warm"],
                   help="all alphas in one call, or in order warm-started from the previous one with half the iterations")
    p.add_argument("--color-match", choices=["none", "channel", "global"], help="match each output's colour to its input")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction,
                   help="subtract what inverting φ(x) alone changes")
    p.add_argument("--mask", help="greyscale mask image: white takes the edit, black keeps the input")
    p.add_argument("--full-res", action="store_true",
                   help="own photos: also add the edit (computed at --size) to the full-resolution original")
    p.add_argument("--no-shard", action="store_true", help="solve on one device even when there are several")
    p.add_argument("--dtype", choices=["float32", "bfloat16"])
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--no-feature-cache", action="store_true",
                   help="do not keep per-image neighbour features (float16, ~200 KB per image at 64 px, "
                        "~2 MB at 200 px) under ~/.cache/dfijax/features-*")
    p.add_argument("--no-probe", action="store_true", help="skip the attribute probe (trained once, cached)")
    p.add_argument("--probe-steps", type=int, help="probe training steps (300)")
    p.add_argument("--probe-train", type=int, help="probe training images (2000)")
    p.add_argument("--batch", type=int, help="images per batch when averaging neighbour features (32)")
    p.add_argument("--seed", type=int, help="random seed (0)")
    p.add_argument("--out", help="output folder (default runs/alpha_sweep/<time>)")
    return p.parse_args(argv)


def load_dataset(args):
    if args.dataset == "synthetic":
        from dfijax.data.synthetic_faces import synthetic_faces

        return synthetic_faces(args.n_synthetic, seed=args.seed or 0)
    if not args.data_dir and args.dataset != "celeba-tfds":
        raise ValueError(f"--dataset {args.dataset} needs --data-dir (the folder holding the dataset)")
    if args.dataset == "celeba":
        from dfijax.data.celeba import load_celeba_folder

        return load_celeba_folder(args.data_dir)
    if args.dataset == "celeba-tfds":
        from dfijax.data.celeba import load_celeba_tfds

        return load_celeba_tfds(args.data_dir)
    from dfijax.data.lfw import load_lfw_folder

    return load_lfw_folder(args.data_dir)


def parse_alphas(text: str) -> tuple[float, ...]:
    try:
        alphas = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise ValueError(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if not alphas or not all(np.isfinite(alphas)):
        raise ValueError(f"--alphas must be finite numbers, got {text!r}")
    return alphas


def config_from(args) -> "SweepConfig":
    """The preset (or a saved config), overridden by every flag given."""
    import json

    from dfijax.dfi import presets

    given = dict(edits=tuple(e.strip() for e in args.edit.split(";") if e.strip()) if args.edit is not None else None,
                 alphas=parse_alphas(args.alphas) if args.alphas is not None else None,
                 k=args.k, allow_fewer=args.allow_fewer or None, same_gender=args.same_gender, metric=args.metric,
                 rank=args.rank, include_input=args.include_input, scaling=args.scaling,
                 taps=tuple(t.strip() for t in args.taps.split(",") if t.strip()) if args.taps else None,
                 size=args.size, iters=args.iters, tv=args.tv, tv_form=args.tv_form, reduction=args.loss_reduction,
                 bounds=args.bounds, history=args.history, init=args.init, alpha_mode=args.alpha_mode,
                 color_match=args.color_match, residual=args.residual, dtype=args.dtype,
                 shard=False if args.no_shard else None, batch=args.batch,
                 feature_cache=False if args.no_feature_cache else None, probe=False if args.no_probe else None,
                 probe_steps=args.probe_steps, probe_train=args.probe_train, seed=args.seed)
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
    from dfijax import dfi
    from dfijax import images as im
    from dfijax.data import DataError

    device = common.setup()
    try:
        cfg = config_from(args)
        data = load_dataset(args)
        if args.images:
            if not args.attrs:
                raise ValueError("own photos need their attributes: --attrs Young=1,Male=-1 (names from the dataset)")
            photos = np.stack([im.load_image(p, (cfg.size, cfg.size)) for p in args.images])
            inputs = dfi.photo_inputs(photos, args.attrs, data, args.images)
        else:
            indices = [int(i) for i in args.indices.split(",")] if args.indices else None
            inputs = dfi.dataset_inputs(data, cfg.edits[0], cfg.size, args.inputs, indices)
        mask = im.load_image(args.mask, (cfg.size, cfg.size)).mean(-1) if args.mask else None
        out = common.out_dir(args.out, "alpha_sweep")
        weights = common.load_weights(args.weights, cfg.seed)
        print(f"device: {device}; data: {data.describe()}; {len(inputs.images)} inputs x {len(cfg.edits)} edits x "
              f"{len(cfg.alphas)} alphas at {cfg.size}px, {cfg.iters} iterations, TV {cfg.tv_weight(weights.pretrained):g}; "
              f"output {out}", file=sys.stderr)
        with common.Bars() as bars:
            result = dfi.run_sweep(cfg, data, weights, inputs, mask=mask, cache_root=common.cache_root(),
                                   progress=bars.update)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    write_outputs(out, args, result, data, weights, device)
    for m in result.metrics_per_alpha:
        score = f", target attribute score {m['target_attribute_score']:.3f}" if "target_attribute_score" in m else ""
        print(f"alpha {m['alpha']:g}: pixel RMSE {m['pixel_rmse_to_input']:.4f}, "
              f"VGG distance {m['vgg_feature_distance_to_input']:.4f}{score}", file=sys.stderr)
    print(f"wrote {out / 'grid.png'}, {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_outputs(out, args, r, data, weights, device) -> None:
    """Per-image PNGs (and full-resolution ones for own photos), grid.png, results.json, report.html."""
    from dfijax import dfi
    from dfijax import images as im
    from experiments import report

    cfg, alphas = r.config, r.config.alphas
    multi = len(cfg.edits) > 1
    originals = [im.load_image(p) for p in args.images] if (args.images and args.full_res) else None
    for row, (i, e) in enumerate(r.rows):
        stem = f"img{i}_e{e}" if multi else f"img{i}"
        for j, al in enumerate(alphas):
            im.save_image(out / f"{stem}_a{al:g}.png", r.edited[row, j])
            if originals is not None:
                full = dfi.apply_at_full_resolution(jnp.asarray(originals[i]), r.inputs[row], jnp.asarray(r.edited[row, j]))
                im.save_image(out / f"{stem}_a{al:g}_full.png", np.asarray(full))
    grid = im.make_grid([[r.inputs[row]] + list(r.edited[row]) for row in range(len(r.rows))],
                        col_labels=["input"] + [f"a={al:g}" for al in alphas])
    im.save_image(out / "grid.png", grid)
    rows = [{"input": r.labels[i], "edit": cfg.edits[e]} for i, e in r.rows]
    results = {
        "experiment": "alpha_sweep", "settings": vars(args), "config": dataclasses.asdict(cfg), "device": device,
        "data": data.describe(), "weights": weights.description, "weights_pretrained": weights.pretrained,
        "weights_meta": weights.meta, "edit": ";".join(cfg.edits), "edits": list(cfg.edits), "alphas": list(alphas),
        "inputs": list(r.labels), "rows": rows, "tv_weight": r.tv_weight,
        "neighbours": [{"target": n.target.tolist(), "source": n.source.tolist(),
                        "target_available": n.n_target_available, "source_available": n.n_source_available}
                       for n in r.neighbours],
        "attribute_vectors_from_cache": r.vectors_from_cache, "seconds": r.seconds,
        "final_loss": r.final_loss.tolist(), "metrics_per_alpha": r.metrics_per_alpha,
        "metrics_per_edit": r.metrics_per_edit, "probe": r.probe, "warnings": r.warnings,
    }
    common.write_json(out / "results.json", results)
    common.write_json(out / "config.json", dataclasses.asdict(cfg))  # --config repeats the run
    has_probe = r.probe is not None
    table = {"headers": ["edit", "alpha", "pixel RMSE to input", "VGG feature distance to input"]
             + (["target attribute score (probe)"] if has_probe else []),
             "rows": [[edit, m["alpha"], m["pixel_rmse_to_input"], m["vgg_feature_distance_to_input"]]
                      + ([m["target_attribute_score"]] if has_probe else [])
                      for edit, ms in r.metrics_per_edit.items() for m in ms]}
    probe_text = ""
    if has_probe:
        acc = {k: round(v, 3) for k, v in r.probe["metrics"].get("val_accuracy", {}).items()}
        probe_text = (f"Attribute probe: a small CNN trained on the dataset's attributes (held-out accuracy {acc}); "
                      f"the inputs score {r.probe['input_target_attribute_score']:.3f} for the edit.")
    report.write_report(
        out / "report.html", f"DFI alpha sweep: {';'.join(cfg.edits)} ({args.preset} preset)", weights=weights.description,
        pretrained=weights.pretrained, device=device, data=data.describe(), seconds=r.seconds,
        config=dataclasses.asdict(cfg),
        sections=[{"title": "Inputs × alphas", "images": ["grid.png"],
                   "text": "Rows: " + ", ".join(f"{x['input']} / {x['edit']}" for x in rows) + "."},
                  {"title": "Per edit and alpha (mean over inputs)", "table": table, "text": probe_text}])


if __name__ == "__main__":
    sys.exit(main())
