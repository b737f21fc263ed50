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

import dataclasses
from typing import Annotated

import numpy as np

from dfijax import config, reconstruct, report
from dfijax import images as im
from dfijax.progress import Bars
from dfijax.reconstruct import RECONSTRUCT_PRESETS, ReconstructConfig
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[ReconstructConfig, runner.FLAT] = ReconstructConfig()
    saved_config: Annotated[str | None, config.flag("config")] = None
    """repeat a run: its config.json (flags given here still override it)"""
    images: tuple[str, ...] = ()
    """image files (default: two embedded procedural scenes)"""
    weights: str | None = None
    """converted weights (.safetensors); default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder (default runs/invert_features/<time>)"""


def run(args: Args, ctx: runner.Context) -> runner.Outputs:

    cfg = args.config
    weights = ctx.load_weights(args.weights, cfg.seed)
    if args.images:
        pics = np.stack([im.load_image(p, (cfg.size, cfg.size)) for p in args.images])
    else:
        pics = np.stack([im.synthetic_scene(cfg.size, cfg.size, seed=s) for s in (1, 2)])
    out = ctx.out()
    ctx.say(f"device: {ctx.device}; {len(pics)} images at {cfg.size}px, {cfg.iters} iterations; output {out}")
    with Bars() as bars:
        r = reconstruct.run_reconstruction(cfg, weights, pics, progress=bars.update)
    n = len(r.images)
    for layer, rec in r.reconstructions.items():
        for i in range(n):
            im.save_image(out / f"{layer}_{i}.png", rec[i])
    rows = [[r.images[i]] + [r.reconstructions[l][i] for l in cfg.layers] for i in range(n)]
    im.save_image(out / "grid.png", im.make_grid(rows, col_labels=["original", *cfg.layers]))
    report.plot_curves(
        out / "loss.png",
        {l: (np.arange(h.shape[1]), np.nanmean(h, 0)) for l, h in r.loss_history.items()},
        xlabel="L-BFGS iteration",
        ylabel="feature loss (log scale, mean over images)",
        log_y=True,
        integer_x=True,
        title="reconstruction objective per layer",
    )
    source = list(args.images) or ["embedded procedural scene (dfijax.images.synthetic_scene, seeds 1, 2)"]
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
    table = {
        "headers": ["layer"] + [f"PSNR image {i} (dB)" for i in range(n)] + ["mean final loss"],
        "rows": [[l, *r.psnr_db[l], float(np.mean(r.final_loss[l]))] for l in cfg.layers],
    }
    return runner.Outputs(
        title=f"Feature inversion ({cfg.preset} preset)",
        results={"images": source, "solver": dataclasses.asdict(cfg.solver()), "layers": layers},
        data=", ".join(source),
        seconds=r.seconds,
        sections=[
            {
                "title": "Originals and reconstructions",
                "images": ["grid.png"],
                "text": "Rows: images; columns: the original, then the reconstruction from each layer's features.",
            },
            {"title": "PSNR to the original", "table": table},
            {"title": "Objective during the solve", "images": ["loss.png"], "pixelated": False},
        ],
        summary=[f"{l:>8}: PSNR " + ", ".join(f"{p:.1f}" for p in r.psnr_db[l]) + " dB" for l in cfg.layers],
    )


main, parse = runner.Experiment("invert_features", Args, run, __doc__, RECONSTRUCT_PRESETS).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
