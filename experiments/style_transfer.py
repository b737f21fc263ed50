"""Gatys neural style transfer on the shared engine, with colour preservation and coarse-to-fine stages.

    python -m experiments.style_transfer                        # embedded scene + procedural painting, quick preset
    python -m experiments.style_transfer --content a.jpg b.jpg --style starry.jpg --preset paper
    python -m experiments.style_transfer --content a.jpg --style s.jpg --preset neural-style
    python -m experiments.style_transfer --style s1.jpg s2.jpg --blend 0.7,0.3 --preserve-color luminance
    python -m experiments.style_transfer --content a.jpg --style s.jpg --stages 256:300,512:100
    python -m experiments.style_transfer --config runs/style_transfer/<time>/config.json   # repeat a run

Expected result (default, ~1 min on CPU): two embedded scenes painted in the procedural painting's
texture, the houses, hills and sun still recognisable; each loss falls well below its start.

Presets (the same on every device; flags override them; details in dfijax.style.gatys): quick (96 px,
100 iterations, Gatys objective with average pooling), paper (the Gatys reference notebook: 512 px x
520, then 800 px x 220; max pooling; history 100; load Gatys' vgg_conv.pth with scripts/fetch_vgg19.py
gatys to match its network), neural-style (jcjohnson/neural-style: 512 px, 1000 iterations, its
objective: Gram / (C·h·w), content 5, TV 1e-3, pools rounding up; noise init). Each flag changes its own
setting only: --normalize (the Gram and style-weight convention), --pooling, --pool-rounding,
--content-weight and --tv.
--size is the content's short side: the aspect ratio is kept, nothing is cropped or stretched. Content
images of different aspect ratios are grouped by their resized shape and each group is solved in its
own batched call. Every problem of a group — content images × style images (blended, or one each with
--separate-styles) × style-weight multipliers (--style-scales) — is solved in one compiled, vmapped
call per stage (dfijax.style.run_style_transfer). --preserve-color luminance runs the transfer on
luminance only and puts the content's chroma back; chol / pca / sym first recolour the style image to
the content's colour mean and covariance. Writes, under runs/style_transfer/<time>/ (or --out):
grid.png (content, style, results; cells of another aspect padded with white), each result,
loss.png, report.html, results.json (the resolved config, weights used, losses per stage, timings)
and config.json (--config repeats the run; flags given with it override it).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Annotated

import numpy as np

from dfijax import config, report, style
from dfijax import images as im
from dfijax.progress import Bars
from dfijax.style.gatys import STYLE_PRESETS, StyleConfig
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[StyleConfig, runner.FLAT] = StyleConfig()
    saved_config: Annotated[str | None, config.flag("config")] = None
    """repeat a run: its config.json (flags given here still override it)"""
    content: tuple[str, ...] = ()
    """content images (default: two embedded procedural scenes)"""
    style: tuple[str, ...] = ()
    """style images (default: an embedded procedural painting)"""
    size: Annotated[int | None, config.Bounds(ge=32)] = None
    """content short side in px, aspect kept; --size/--iters replace the stages by one stage (a missing
    value from the first stage)"""
    iters: Annotated[int | None, config.POSITIVE] = None
    """L-BFGS iterations of that single stage"""
    weights: str | None = None
    """converted weights (.safetensors); default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder (default runs/style_transfer/<time>)"""


def resolve(args: Args, start: StyleConfig) -> Args:
    """--size/--iters as one stage (not with --stages)."""
    cfg = args.config
    if cfg.stages != start.stages and (args.size is not None or args.iters is not None):
        raise ValueError("give either --stages or --size/--iters, not both")
    if args.size is not None or args.iters is not None:
        first = cfg.stages[0]
        cfg = dataclasses.replace(cfg, stages=((args.size or first[0], args.iters or first[1]),))
    return dataclasses.replace(args, config=cfg)


def run(args: Args, ctx: runner.Context) -> runner.Outputs:

    cfg = args.config
    top = cfg.top_size  # images are loaded at the largest stage's size; each stage resizes them
    contents = [im.load_image(p, top) for p in args.content] or [im.synthetic_scene(top, top, seed=s) for s in (1, 2)]
    styles = [im.load_image(p, top) for p in args.style] or [im.synthetic_painting(top, top, seed=3)]
    ctx.load_weights(args.weights, cfg.seed)
    out = ctx.out()
    stage_text = " then ".join(f"{s}px x {n} it" for s, n in cfg.stages)
    ctx.say(
        f"device: {ctx.device}; {len(contents)} contents x {len(styles)} styles x {len(cfg.style_scales)} style "
        f"scales; {stage_text}; objective {cfg.normalize}; colour {cfg.preserve_color}; output {out}"
    )
    with Bars() as bars:
        r = style.run_style_transfer(cfg, ctx.weights, contents, styles, progress=bars.update)
    stems = [pathlib.Path(p).stem for p in args.style] or ["painting"]
    set_names = stems if cfg.separate_styles else ["blend" if len(styles) > 1 else stems[0]]
    r.name_problems(set_names)
    for p, x in zip(r.problems, r.images):
        im.save_image(out / f"{p['name']}.png", x)
    im.save_image(out / "grid.png", r.grid(contents, styles, set_names))
    histories = {p["name"]: np.concatenate([s["loss_history"] for s in p["stages"]]) for p in r.problems}
    report.plot_curves(
        out / "loss.png",
        {name: (np.arange(len(h)), h) for name, h in histories.items()},
        xlabel="L-BFGS iteration (stages one after another)",
        ylabel="loss (log scale)",
        log_y=True,
        title="style transfer objective per result",
    )
    content_text = ", ".join(args.content) or "embedded procedural scenes 1, 2"
    style_text = ", ".join(args.style) or "embedded procedural painting (seed 3)"
    results = {"loss": r.loss, "aspect_groups": r.groups, "content": content_text, "style": style_text}
    results.update(seconds=r.seconds, problems_in_one_call=r.problems_in_one_call, results=r.problems)
    grid_text = f"Colour preservation: {cfg.preserve_color}. Columns: style set × style scale. Objective: {r.loss}."
    return runner.Outputs(
        title=f"Style transfer ({cfg.preset} preset, {cfg.normalize} objective)",
        results=results,
        data=f"content: {content_text}; style: {style_text}",
        seconds=r.seconds,
        sections=[
            {"title": "Content, style and results", "images": ["grid.png"], "text": grid_text},
            {"title": "Objective during the solve", "images": ["loss.png"], "pixelated": False},
            {"title": "Per result", "table": r.table()},
        ],
        summary=[f"{p['name']}: loss {p['initial_loss']:.4g} -> {p['final_loss']:.4g}" for p in r.problems],
    )


main, parse = runner.Experiment("style_transfer", Args, run, __doc__, STYLE_PRESETS, resolve).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
