"""Reconstruct images from their VGG-19 features, layer by layer (Mahendran & Vedaldi style).

    python -m experiments.invert_features                     # embedded scenes, CPU-sized defaults
    python -m experiments.invert_features --images a.jpg b.png --preset paper \\
        --weights weights/vgg19_torchvision.safetensors
    python -m experiments.invert_features --config runs/invert_features/<time>/config.json   # repeat a run

Expected result (default, ~1 min on CPU): relu1_1 and relu2_1 reconstruct the scenes almost exactly
(PSNR well above 20 dB); deeper layers keep less of the picture, lower PSNR layer by layer.

For each image and each layer it inverts φ_layer(x) from noise with the engine (all images of a layer
in one vmapped, compiled L-BFGS call; dfijax.reconstruct.run_reconstruction) and writes, under
runs/invert_features/<time>/ (or --out):
  grid.png      rows = images; columns = original, then the reconstruction from each layer
  loss.png      the objective per layer during the solve (mean over images)
  <layer>_<i>.png, report.html, results.json (config, weights used, device, PSNR and final loss per
  image and layer, loss histories, timings), config.json (--config repeats the run).
With the seeded random VGG-19 (no weights downloaded) it says so on the console, in results.json and
in the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from experiments import common


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", nargs="*", help="image files (default: two embedded procedural scenes)")
    p.add_argument(
        "--preset",
        choices=["quick", "paper"],
        default="quick",
        help="quick: 64 px, 100 iterations; paper: 224 px, 500 iterations; flags override",
    )
    p.add_argument("--config", help="repeat a run: its config.json (flags given here still override it)")
    p.add_argument("--size", type=int, help="square working size in pixels (preset; photos are centre-cropped)")
    p.add_argument("--layers", help="comma-separated taps (default relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)")
    p.add_argument("--iters", type=int, help="L-BFGS iterations (preset)")
    p.add_argument("--tv", type=float, help="TV^2 weight on the 0-255 scale (losses.tv_beta; default 1e-5)")
    p.add_argument("--backend", choices=["jaxopt", "optax"])
    p.add_argument("--dtype", choices=["float32", "bfloat16"])
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, help="random seed of the noise start and the random net (0)")
    p.add_argument("--out", help="output folder (default runs/invert_features/<time>)")
    return p.parse_args(argv)


def config_from(args):
    """The preset (or a saved config), then every flag given."""
    from dfijax import reconstruct
    from experiments import report

    layers = tuple(t.strip() for t in args.layers.split(",") if t.strip()) if args.layers else None
    given = dict(
        size=args.size,
        iters=args.iters,
        layers=layers,
        tv=args.tv,
        backend=args.backend,
        dtype=args.dtype,
        seed=args.seed,
    )
    base = (
        reconstruct.ReconstructConfig.from_dict(report.load_config(args.config))
        if args.config
        else reconstruct.reconstruct_config(args.preset)
    )
    return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import images as im
    from dfijax import reconstruct

    device = common.setup()
    try:
        cfg = config_from(args)
        weights = common.load_weights(args.weights, cfg.seed)
        if args.images:
            pics = np.stack([im.load_image(p, (cfg.size, cfg.size)) for p in args.images])
        else:
            pics = np.stack([im.synthetic_scene(cfg.size, cfg.size, seed=s) for s in (1, 2)])
        out = common.out_dir(args.out, "invert_features")
        print(
            f"device: {device}; {len(pics)} images at {cfg.size}px, {cfg.iters} iterations; output {out}",
            file=sys.stderr,
        )
        with common.Bars() as bars:
            r = reconstruct.run_reconstruction(cfg, weights, pics, progress=bars.update)
    except (ValueError, FileNotFoundError) as e:  # ImageError is a ValueError
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    write_outputs(out, args, r, weights, device)
    for layer in cfg.layers:
        print(f"{layer:>8}: PSNR " + ", ".join(f"{p:.1f}" for p in r.psnr_db[layer]) + " dB", file=sys.stderr)
    print(f"wrote {out / 'grid.png'}, {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_outputs(out, args, r, weights, device) -> None:
    """<layer>_<i>.png, grid.png, loss.png, results.json, config.json, report.html."""
    from dfijax import images as im
    from experiments import report

    cfg, n = r.config, len(r.images)
    for layer, rec in r.reconstructions.items():
        for i in range(n):
            im.save_image(out / f"{layer}_{i}.png", rec[i])
    im.save_image(
        out / "grid.png",
        im.make_grid(
            [[r.images[i]] + [r.reconstructions[l][i] for l in cfg.layers] for i in range(n)],
            col_labels=["original", *cfg.layers],
        ),
    )
    report.plot_curves(
        out / "loss.png",
        {l: (np.arange(h.shape[1]), np.nanmean(h, 0)) for l, h in r.loss_history.items()},
        xlabel="L-BFGS iteration",
        ylabel="feature loss (log scale, mean over images)",
        log_y=True,
        integer_x=True,
        title="reconstruction objective per layer",
    )
    source = (
        list(args.images) if args.images else ["embedded procedural scene (dfijax.images.synthetic_scene, seeds 1, 2)"]
    )
    layers = {
        l: {
            "psnr_db": r.psnr_db[l],
            "final_loss": r.final_loss[l],
            "initial_loss": r.initial_loss[l],
            "loss_history": r.loss_history[l].tolist(),
            "seconds_including_compile": r.seconds[l],
        }
        for l in cfg.layers
    }
    common.write_json(
        out / "results.json",
        {
            "experiment": "invert_features",
            "config": cfg.to_dict(),
            "settings": vars(args),
            "images": source,
            "device": device,
            "weights": weights.description,
            "weights_pretrained": weights.pretrained,
            "weights_meta": weights.meta,
            "solver": dataclasses.asdict(cfg.solver()),
            "layers": layers,
        },
    )
    report.save_config(out, cfg.to_dict())
    table = {
        "headers": ["layer"] + [f"PSNR image {i} (dB)" for i in range(n)] + ["mean final loss"],
        "rows": [[l, *r.psnr_db[l], float(np.mean(r.final_loss[l]))] for l in cfg.layers],
    }
    report.write_report(
        out / "report.html",
        f"Feature inversion ({cfg.preset} preset)",
        weights=weights.description,
        pretrained=weights.pretrained,
        device=device,
        data=", ".join(source),
        seconds=r.seconds,
        config=cfg.to_dict(),
        sections=[
            {
                "title": "Originals and reconstructions",
                "images": ["grid.png"],
                "text": "Rows: images; columns: the original, then the reconstruction from each layer's features.",
            },
            {"title": "PSNR to the original", "table": table},
            {"title": "Objective during the solve", "images": ["loss.png"], "pixelated": False},
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
