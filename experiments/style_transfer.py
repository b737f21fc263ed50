"""Gatys neural style transfer on the shared engine, with colour preservation and coarse-to-fine stages.

    python -m experiments.style_transfer                        # embedded scene + procedural painting, quick preset
    python -m experiments.style_transfer --content a.jpg b.jpg --style starry.jpg --preset paper
    python -m experiments.style_transfer --content a.jpg --style s.jpg --preset neural-style
    python -m experiments.style_transfer --style s1.jpg s2.jpg --blend 0.7,0.3 --preserve-color luminance
    python -m experiments.style_transfer --content a.jpg --style s.jpg --stages 256:300,512:100

Presets (the same on every device; explicit flags override them):
  quick         96 px, 100 iterations, Gatys objective, init from the content, L-BFGS history 10.
  paper         the Gatys reference notebook: 512 px for 500 iterations, then 800 px for 200 started
                from the upsampled first result; Gatys objective; init from the content; history 100.
  neural-style  jcjohnson/neural-style: 512 px, 1000 iterations, its objective (below), noise init,
                history 100.
Objectives (--normalize; each brings its reference's pooling, content weight, style weights and TV,
which --pooling / --content-weight / --tv override):
  gatys         content relu4_2 weight 1, style relu1_1…relu5_1 with weights 1e3/n² on Gram/(h·w),
                average pooling, no TV.
  neural-style  the same layers; Gram/(C·h·w), style weight 100 per layer, content weight 5,
                TV 1e-3 (½·Σ squared neighbour differences on the 0-255 scale), max pooling.

--size is the content's short side: the aspect ratio is kept, nothing is cropped or stretched. Content
images of different aspect ratios are grouped by their resized shape and each group is solved in its
own batched call (one compile per group and stage). Style images are resized to the same short side.
Every problem of a group — content images × style images (blended, or one each with
--separate-styles) × style-weight multipliers (--style-scales) — is solved in one compiled, vmapped
call per stage. --preserve-color luminance runs the transfer on luminance only and puts the content's
chroma back; chol / pca / sym first recolour the style image to the content's colour mean and
covariance. Writes, under runs/style_transfer/<time>/ (or --out): grid.png (content, style, results;
cells of another aspect padded with white), each result, results.json (the resolved config, weights
used, losses per stage, timings).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments import common

PRESETS = {
    "quick": {"stages": [(96, 100)], "normalize": "gatys", "init": "content", "history": 10},
    "paper": {"stages": [(512, 500), (800, 200)], "normalize": "gatys", "init": "content", "history": 100},
    "neural-style": {"stages": [(512, 1000)], "normalize": "neural-style", "init": "noise", "history": 100},
}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", nargs="*", help="content images (default: two embedded procedural scenes)")
    p.add_argument("--style", nargs="*", help="style images (default: an embedded procedural painting)")
    p.add_argument("--blend", help="weights for several style images, e.g. 0.7,0.3")
    p.add_argument("--separate-styles", action="store_true",
                   help="one result per style image (all in the same batched call) instead of blending them")
    p.add_argument("--preset", choices=list(PRESETS), default="quick", help="settings bundle (see above); default quick")
    p.add_argument("--stages", help="size:iterations per stage, coarse to fine, e.g. 512:500,800:200 "
                                    "(each stage starts from the upsampled result of the previous one)")
    p.add_argument("--size", type=int, help="content short side in px, aspect kept; --size/--iters replace the "
                                            "preset's stages by one stage (a missing value from its first stage)")
    p.add_argument("--iters", type=int, help="L-BFGS iterations of that single stage")
    p.add_argument("--normalize", choices=["gatys", "neural-style"], help="objective convention (default: the preset's)")
    p.add_argument("--init", choices=["content", "style", "noise"],
                   help="first stage's start (default: the preset's); style: the style image cropped to the "
                        "content's aspect; noise: uniform in [0, 1]")
    p.add_argument("--pooling", choices=["avg", "max"], help="default: the objective's (gatys avg, neural-style max)")
    p.add_argument("--content-weight", type=float, help="default: the objective's (gatys 1, neural-style 5)")
    p.add_argument("--style-scales", default="1", help="multipliers of the style weights, one result each, e.g. 0.1,1,10")
    p.add_argument("--tv", type=float, help="TV weight on the 0-255 scale (default: the objective's, gatys 0, "
                                            "neural-style 1e-3)")
    p.add_argument("--history", type=int, help="L-BFGS memory (default: the preset's)")
    p.add_argument("--preserve-color", choices=["none", "luminance", "chol", "pca", "sym"], default="none")
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
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


def resolve(args) -> dict:
    """The run's settings: the preset, then the objective's defaults, then the explicit flags."""
    from dfijax import style

    pre = PRESETS[args.preset]
    if args.stages and (args.size is not None or args.iters is not None):
        raise ValueError("give either --stages or --size/--iters, not both")
    if args.stages:
        stages = parse_stages(args.stages)
    elif args.size is not None or args.iters is not None:
        first = pre["stages"][0]
        stages = [(args.size if args.size is not None else first[0], args.iters if args.iters is not None else first[1])]
    else:
        stages = list(pre["stages"])
    if any(s < 32 for s, _ in stages) or any(n < 1 for _, n in stages):
        raise ValueError(f"stage sizes must be >= 32 px and iterations >= 1, got {stages}")
    history = pre["history"] if args.history is None else args.history
    if history < 1:
        raise ValueError(f"--history must be >= 1, got {history}")
    scales = [float(s) for s in args.style_scales.split(",")]
    normalize = args.normalize or pre["normalize"]
    over = {k: v for k, v in (("content_weight", args.content_weight), ("tv_weight", args.tv)) if v is not None}
    if args.pooling:
        from dfijax.vgg import VGG19

        over["model"] = VGG19(pooling=args.pooling)
    loss = style.style_loss_preset(normalize, **over)
    return {"preset": args.preset, "stages": stages, "init": args.init or pre["init"], "history_size": history,
            "style_scales": scales, "preserve_color": args.preserve_color, "loss": loss}


def _pad_to(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre x [h', w', 3] on a white h x w canvas (for grid cells of another aspect)."""
    out = np.ones((h, w, 3), np.float32)
    top, left = (h - x.shape[0]) // 2, (w - x.shape[1]) // 2
    out[top:top + x.shape[0], left:left + x.shape[1]] = x
    return out


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import style
    from dfijax.style import color
    from dfijax import images as im
    from dfijax import invert as inv

    device = common.setup()
    try:
        cfg = resolve(args)
        stages, scales, loss = cfg["stages"], cfg["style_scales"], cfg["loss"]
        sizes, iters = [s for s, _ in stages], [n for _, n in stages]
        top = max(sizes)  # images are loaded at the largest stage's size; each stage resizes them
        if args.content:
            contents = [im.load_image(p, top) for p in args.content]
        else:
            contents = [im.synthetic_scene(top, top, seed=s) for s in (1, 2)]
        styles = ([im.load_image(p, top) for p in args.style] if args.style
                  else [im.synthetic_painting(top, top, seed=3)])
        blend = [float(b) for b in args.blend.split(",")] if args.blend else None
        weights = common.load_weights(args.weights, args.seed)
    except (ValueError, FileNotFoundError, im.ImageError) as e:
        return common.fail(str(e))
    out = common.out_dir(args.out, "style_transfer")
    pc = args.preserve_color
    b = len(contents)
    groups: dict[tuple[int, int], list[int]] = {}  # contents of one shape are solved together
    for i, c in enumerate(contents):
        groups.setdefault(c.shape[:2], []).append(i)
    try:
        if pc == "luminance":  # transfer on luminance; each content gets its own matched style luminance
            net_contents = [np.repeat(np.asarray(color.luminance(c))[..., None], 3, -1) for c in contents]
            per_content_styles = [[np.asarray(color.match_luminance(s, c)) for s in styles] for c in contents]
        elif pc in ("chol", "pca", "sym"):
            net_contents = contents
            per_content_styles = [[np.clip(np.asarray(color.match_color_histogram(s, c, pc)), 0, 1) for s in styles]
                                  for c in contents]
        else:
            net_contents, per_content_styles = contents, [styles] * b
        if args.separate_styles:  # each style image is its own problem
            sets = [[([s], None) for s in per_content_styles[i]] for i in range(b)]
            set_names = [pathlib.Path(p).stem for p in args.style] if args.style else ["painting"]
        else:
            sets = [[(per_content_styles[i], blend)] for i in range(b)]
            set_names = ["blend" if len(styles) > 1 else (pathlib.Path(args.style[0]).stem if args.style else "painting")]
    except ValueError as e:
        return common.fail(str(e))
    n_prob = b * len(set_names) * len(scales)
    stage_text = " then ".join(f"{s}px x {n} it" for s, n in stages)
    print(f"device: {device}; {b} contents x {len(set_names)} styles x {len(scales)} style scales = {n_prob} problems "
          f"in {len(groups)} aspect group(s), one batched call per group and stage; {stage_text}; "
          f"objective {loss.normalize}; output {out}", file=sys.stderr)
    solver = inv.SolverConfig(history_size=cfg["history_size"])
    t0 = time.perf_counter()
    results: dict[tuple[int, int, int], tuple] = {}  # (content, set, scale) -> (staged result, row)
    group_info = []
    offsets = np.cumsum([0] + iters)
    try:  # a bad setting surfaces in the first group's targets; the bar closes before the error line
        with tqdm(total=int(offsets[-1]) * len(groups), desc="style transfer", unit="it", file=sys.stderr) as bar:
            for g, (hw, members) in enumerate(groups.items()):
                base_it = g * int(offsets[-1])
                index = [(i, j, k) for i in members for j in range(len(sets[i])) for k in range(len(scales))]
                first = style.stage_shape(hw, sizes[0])
                if cfg["init"] == "style":
                    init = np.stack([style.resize_images(im.fit_aspect(sets[i][j][0][0], hw[0] / hw[1]), first)
                                     for i, j, _ in index])
                elif cfg["init"] == "noise":
                    init = np.asarray(inv.noise_init(jax.random.fold_in(jax.random.key(args.seed), g),
                                                     (len(index),) + first + (3,)))
                else:
                    init = None
                r = style.coarse_to_fine(
                    loss, weights.variables, np.stack([net_contents[i] for i in members]), sizes=sizes, iters=iters,
                    style_sets=[sets[i] for i in members], scales=scales, init=init, config=solver, check_every=5,
                    progress=lambda s, k, _l, o=base_it: bar.update(max(0, o + int(offsets[s]) + k - bar.n)))
                r.images.block_until_ready()
                for p, (li, j, k) in enumerate(r.index):
                    results[(members[li], j, k)] = (r, p)
                group_info.append({"contents": members, "stage_shapes": [list(s) for s in r.shapes],
                                   "problems": len(r.index)})
    except ValueError as e:
        return common.fail(str(e))
    seconds = time.perf_counter() - t0
    problems, imgs = [], {}
    for (i, j, k) in sorted(results):
        r, p = results[(i, j, k)]
        x = np.clip(np.asarray(r.images[p]), 0, 1)
        final_content = np.asarray(style.resize_images(contents[i], x.shape[:2]))
        img = np.asarray(color.recombine_luminance(x, final_content)) if pc == "luminance" else x
        imgs[(i, j, k)] = np.clip(img, 0, 1)
        parts = jax.tree.map(float, loss.parts(jnp.asarray(x), weights.variables, {n: v[p] for n, v in r.targets.items()}))
        name = f"content{i}_{set_names[j]}_x{scales[k]:g}"
        im.save_image(out / f"{name}.png", imgs[(i, j, k)])
        last = r.stages[-1]
        problems.append({
            "name": name, "content": i, "style": set_names[j], "style_scale": scales[k], "shape": list(x.shape[:2]),
            "final_loss": float(last.final_loss[p]), "initial_loss": float(last.loss_history[p, 0]), "parts": parts,
            "stages": [{"size": s, "shape": list(sh), "iterations": int(st.num_iters[p]),
                        "initial_loss": float(st.loss_history[p, 0]), "final_loss": float(st.final_loss[p])}
                       for (s, _), sh, st in zip(stages, r.shapes, r.stages)]})
    shapes = {imgs[key].shape[:2] for key in imgs}
    hmax, wmax = max(h for h, _ in shapes), max(w for _, w in shapes)
    cols = [(j, k) for j in range(len(set_names)) for k in range(len(scales))]
    rows = []
    for i in range(b):
        hw = imgs[(i, 0, 0)].shape[:2]
        row = [np.asarray(style.resize_images(contents[i], hw))]
        row += [np.asarray(style.resize_images(im.fit_aspect(s, hw[0] / hw[1]), hw)) for s in styles]
        row += [imgs[(i, j, k)] for j, k in cols]
        rows.append([_pad_to(c, hmax, wmax) for c in row])
    grid = im.make_grid(rows, col_labels=["content"] + [f"style{q}" for q in range(len(styles))]
                        + [f"{set_names[j]} x{scales[k]:g}" for j, k in cols])
    im.save_image(out / "grid.png", grid)
    config = {**{k: v for k, v in cfg.items() if k != "loss"}, "stages": [list(s) for s in stages],
              "loss": loss.config(), "aspect_groups": group_info}
    common.write_json(out / "results.json", {
        "experiment": "style_transfer", "config": config, "settings": vars(args), "device": device,
        "weights": weights.description, "weights_pretrained": weights.pretrained,
        "content": args.content or ["embedded procedural scenes 1, 2"],
        "style": args.style or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"],
        "seconds_including_compile": seconds, "problems_in_one_call": max(gi["problems"] for gi in group_info),
        "results": problems,
    })
    print(f"wrote {out / 'grid.png'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
