"""Gatys neural style transfer on the shared engine, with colour preservation and coarse-to-fine stages.

    python -m experiments.style_transfer                        # embedded scene + procedural painting, quick preset
    python -m experiments.style_transfer --content a.jpg b.jpg --style starry.jpg --preset paper
    python -m experiments.style_transfer --content a.jpg --style s.jpg --preset neural-style
    python -m experiments.style_transfer --style s1.jpg s2.jpg --blend 0.7,0.3 --preserve-color luminance
    python -m experiments.style_transfer --content a.jpg --style s.jpg --stages 256:300,512:100
    python -m experiments.style_transfer --config runs/style_transfer/<time>/config.json   # repeat a run

Expected result (default, ~1 min on CPU): two embedded scenes painted in the procedural painting's
texture, the houses, hills and sun still recognisable; each loss falls well below its start.

Presets (dfijax.style.STYLE_PRESETS, the same on every device; explicit flags override them):
  quick         96 px, 100 iterations, Gatys objective with average pooling, init from the content,
                L-BFGS history 10.
  paper         the Gatys reference notebook (leongatys/PytorchNeuralStyleTransfer): 512 px for 520
                iterations, then 800 px for 220 started from the upsampled first result; Gatys
                objective with max pooling (the notebook's VGG() default; --pooling avg is the
                paper's text); init from the content; history 100. Load Gatys' vgg_conv.pth
                (scripts/fetch_vgg19.py gatys, then --weights weights/vgg19_gatys.safetensors) to
                match its network and its Caffe preprocessing.
  neural-style  jcjohnson/neural-style: 512 px, 1000 iterations, its objective (below), noise init,
                history 100.
Objectives (--normalize; each brings its reference's pooling, content weight, style weights and TV,
which --pooling / --content-weight / --tv override):
  gatys         content relu4_2 weight 1 (mean squared error), style relu1_1…relu5_1 with weights
                1e3/n² on the mean squared error of Gram/(h·w), max pooling, no TV.
  neural-style  the same layers; Gram/(C·h·w), style weight 100 per layer, content weight 5,
                TV 1e-3 (½·Σ squared neighbour differences on the 0-255 scale), max pooling.

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

import argparse
import dataclasses
import pathlib
import sys

import numpy as np

from experiments import common


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", nargs="*", help="content images (default: two embedded procedural scenes)")
    p.add_argument("--style", nargs="*", help="style images (default: an embedded procedural painting)")
    p.add_argument("--blend", help="weights for several style images, e.g. 0.7,0.3")
    p.add_argument(
        "--separate-styles",
        action="store_true",
        help="one result per style image (all in the same batched call) instead of blending them",
    )
    p.add_argument(
        "--preset",
        choices=["quick", "paper", "neural-style"],
        default="quick",
        help="settings bundle (see above); default quick",
    )
    p.add_argument("--config", help="repeat a run: its config.json (flags given here still override it)")
    p.add_argument(
        "--stages",
        help="size:iterations per stage, coarse to fine, e.g. 512:520,800:220 "
        "(each stage starts from the upsampled result of the previous one)",
    )
    p.add_argument(
        "--size",
        type=int,
        help="content short side in px, aspect kept; --size/--iters replace the "
        "preset's stages by one stage (a missing value from its first stage)",
    )
    p.add_argument("--iters", type=int, help="L-BFGS iterations of that single stage")
    p.add_argument(
        "--normalize",
        choices=["gatys", "neural-style"],
        help="objective convention, with its pooling unless --pooling is given (default: the preset's)",
    )
    p.add_argument(
        "--init",
        choices=["content", "style", "noise"],
        help="first stage's start (default: the preset's); style: the style image cropped to the "
        "content's aspect; noise: uniform in [0, 1]",
    )
    p.add_argument(
        "--pooling",
        choices=["avg", "max"],
        help="VGG pooling (default: the preset's; quick avg, paper and neural-style max as their reference code)",
    )
    p.add_argument("--content-weight", type=float, help="default: the objective's (gatys 1, neural-style 5)")
    p.add_argument(
        "--style-scales", help="multipliers of the style weights, one result each, e.g. 0.1,1,10 (default 1)"
    )
    p.add_argument(
        "--tv", type=float, help="TV weight on the 0-255 scale (default: the objective's, gatys 0, neural-style 1e-3)"
    )
    p.add_argument("--history", type=int, help="L-BFGS memory (default: the preset's)")
    p.add_argument("--preserve-color", choices=["none", "luminance", "chol", "pca", "sym"], help="default none")
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, help="random seed (0)")
    p.add_argument("--out", help="output folder (default runs/style_transfer/<time>)")
    return p.parse_args(argv)


def parse_stages(text: str) -> list[tuple[int, int]]:
    """'512:500,800:200' -> [(512, 500), (800, 200)]."""
    try:
        stages = [tuple(int(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        stages = []
    if not stages or any(len(s) != 2 for s in stages):
        raise ValueError(f"--stages must look like 512:500,800:200 (size:iterations per stage), got {text!r}")
    return stages


def floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    try:
        return None if text is None else tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers, got {text!r}") from None


def config_from(args):
    """The preset (or a saved config), then every flag given."""
    from dfijax import style
    from experiments import report

    if args.stages and (args.size is not None or args.iters is not None):
        raise ValueError("give either --stages or --size/--iters, not both")
    base = (
        style.StyleConfig.from_dict(report.load_config(args.config)) if args.config else style.style_config(args.preset)
    )
    stages = parse_stages(args.stages) if args.stages else None
    if args.size is not None or args.iters is not None:
        stages = [
            (
                args.size if args.size is not None else base.stages[0][0],
                args.iters if args.iters is not None else base.stages[0][1],
            )
        ]
    given = dict(
        stages=stages,
        normalize=args.normalize,
        pooling=args.pooling,
        content_weight=args.content_weight,
        tv=args.tv,
        init=args.init,
        history=args.history,
        style_scales=floats(args.style_scales, "--style-scales"),
        blend=floats(args.blend, "--blend"),
        separate_styles=args.separate_styles or None,
        preserve_color=args.preserve_color,
        seed=args.seed,
    )
    cfg = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    if args.normalize is not None and args.pooling is None:  # a chosen objective brings its own pooling
        cfg = dataclasses.replace(cfg, pooling=None)
    return cfg


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import images as im
    from dfijax import style

    device = common.setup()
    try:
        cfg = config_from(args)
        top = cfg.top_size  # images are loaded at the largest stage's size; each stage resizes them
        contents = (
            [im.load_image(p, top) for p in args.content]
            if args.content
            else [im.synthetic_scene(top, top, seed=s) for s in (1, 2)]
        )
        styles = (
            [im.load_image(p, top) for p in args.style] if args.style else [im.synthetic_painting(top, top, seed=3)]
        )
        weights = common.load_weights(args.weights, cfg.seed)
        out = common.out_dir(args.out, "style_transfer")
        stage_text = " then ".join(f"{s}px x {n} it" for s, n in cfg.stages)
        print(
            f"device: {device}; {len(contents)} contents x {len(styles)} styles x {len(cfg.style_scales)} style "
            f"scales; {stage_text}; objective {cfg.normalize}; colour {cfg.preserve_color}; output {out}",
            file=sys.stderr,
        )
        with common.Bars() as bars:
            result = style.run_style_transfer(cfg, weights, contents, styles, progress=bars.update)
    except (ValueError, FileNotFoundError) as e:  # ImageError is a ValueError
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if cfg.separate_styles:
        set_names = [pathlib.Path(p).stem for p in args.style] if args.style else ["painting"]
    else:
        set_names = ["blend" if len(styles) > 1 else (pathlib.Path(args.style[0]).stem if args.style else "painting")]
    write_outputs(out, args, result, contents, styles, set_names, weights, device)
    for p in result.problems:
        print(f"{p['name']}: loss {p['initial_loss']:.4g} -> {p['final_loss']:.4g}", file=sys.stderr)
    print(f"wrote {out / 'grid.png'}, {out / 'report.html'} and {out / 'results.json'}")
    return 0


def _pad_to(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre x [h', w', 3] on a white h x w canvas (for grid cells of another aspect)."""
    out = np.ones((h, w, 3), np.float32)
    top, left = (h - x.shape[0]) // 2, (w - x.shape[1]) // 2
    out[top : top + x.shape[0], left : left + x.shape[1]] = x
    return out


def write_outputs(out, args, r, contents, styles, set_names, weights, device) -> None:
    """Each result, grid.png, loss.png, results.json, config.json and report.html."""
    from dfijax import images as im
    from dfijax import style
    from experiments import report

    cfg, scales = r.config, r.config.style_scales
    for p, (i, j, k) in zip(r.problems, r.index):
        p["name"], p["style"] = f"content{i}_{set_names[j]}_x{scales[k]:g}", set_names[j]
    imgs = dict(zip(r.index, r.images))
    for p, x in zip(r.problems, r.images):
        im.save_image(out / f"{p['name']}.png", x)
    hmax, wmax = max(x.shape[0] for x in r.images), max(x.shape[1] for x in r.images)
    cols = [(j, k) for j in range(len(set_names)) for k in range(len(scales))]
    rows = []
    for i in range(len(contents)):
        hw = imgs[(i, 0, 0)].shape[:2]
        row = [np.asarray(style.resize_images(contents[i], hw))]
        row += [np.asarray(style.resize_images(im.fit_aspect(s, hw[0] / hw[1]), hw)) for s in styles]
        rows.append([_pad_to(c, hmax, wmax) for c in row + [imgs[(i, j, k)] for j, k in cols]])
    im.save_image(
        out / "grid.png",
        im.make_grid(
            rows,
            col_labels=["content"]
            + [f"style{q}" for q in range(len(styles))]
            + [f"{set_names[j]} x{scales[k]:g}" for j, k in cols],
        ),
    )
    curves = {
        p["name"]: (np.arange(len(h)), h)
        for p in r.problems
        for h in [np.concatenate([s["loss_history"] for s in p["stages"]])]
    }
    report.plot_curves(
        out / "loss.png",
        curves,
        xlabel="L-BFGS iteration (stages one after another)",
        ylabel="loss (log scale)",
        log_y=True,
        title="style transfer objective per result",
    )
    content_text = ", ".join(args.content) if args.content else "embedded procedural scenes 1, 2"
    style_text = ", ".join(args.style) if args.style else "embedded procedural painting (seed 3)"
    common.write_json(
        out / "results.json",
        {
            "experiment": "style_transfer",
            "config": cfg.to_dict(),
            "loss": r.loss,
            "aspect_groups": r.groups,
            "settings": vars(args),
            "device": device,
            "weights": weights.description,
            "weights_pretrained": weights.pretrained,
            "content": content_text,
            "style": style_text,
            "seconds": r.seconds,
            "problems_in_one_call": r.problems_in_one_call,
            "results": r.problems,
        },
    )
    report.save_config(out, cfg.to_dict())
    table = {
        "headers": ["result", "shape", "initial loss", "final loss", "content part", "style part"],
        "rows": [
            [
                p["name"],
                "x".join(map(str, p["shape"])),
                p["initial_loss"],
                p["final_loss"],
                p["parts"]["content"],
                p["parts"]["style"],
            ]
            for p in r.problems
        ],
    }
    report.write_report(
        out / "report.html",
        f"Style transfer ({cfg.preset} preset, {cfg.normalize} objective)",
        weights=weights.description,
        pretrained=weights.pretrained,
        device=device,
        seconds=r.seconds,
        data=f"content: {content_text}; style: {style_text}",
        config={**cfg.to_dict(), "loss": r.loss},
        sections=[
            {
                "title": "Content, style and results",
                "images": ["grid.png"],
                "text": f"Colour preservation: {cfg.preserve_color}. Columns: style set × style scale.",
            },
            {"title": "Objective during the solve", "images": ["loss.png"], "pixelated": False},
            {"title": "Per result", "table": table},
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
