"""Gatys neural style transfer on the shared engine, with colour preservation.

    python -m experiments.style_transfer                        # embedded scene + procedural painting, CPU-sized
    python -m experiments.style_transfer --content a.jpg b.jpg --style starry.jpg --size 512 --iters 500
    python -m experiments.style_transfer --style s1.jpg s2.jpg --blend 0.7,0.3 --preserve-color luminance

Content layer relu4_2, style layers relu1_1…relu5_1 with the Gatys notebook's weights 1e3/n², average
pooling, L-BFGS, init from the content (or style / noise). Every problem — content images × style
images (blended, or one each with --separate-styles) × style-weight multipliers (--style-scales) — is
solved in one compiled, vmapped call. --preserve-color
luminance runs the transfer on luminance only and puts the content's chroma back; chol / pca / sym
first recolour the style image to the content's colour mean and covariance. Writes, under
runs/style_transfer/<time>/ (or --out): grid.png (content, style, results), each result, results.json
(settings, weights used, losses, timings). Defaults: 96 px, 100 iterations on CPU; 512 px, 500 on GPU.
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


def parse(argv):
    gpu = jax.default_backend() != "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", nargs="*", help="content images (default: two embedded procedural scenes)")
    p.add_argument("--style", nargs="*", help="style images (default: an embedded procedural painting)")
    p.add_argument("--blend", help="weights for several style images, e.g. 0.7,0.3")
    p.add_argument("--separate-styles", action="store_true",
                   help="one result per style image (all in the same batched call) instead of blending them")
    p.add_argument("--size", type=int, default=512 if gpu else 96, help="content size (short side, then square crop)")
    p.add_argument("--iters", type=int, default=500 if gpu else 100)
    p.add_argument("--init", choices=["content", "style", "noise"], default="content")
    p.add_argument("--pooling", choices=["avg", "max"], default="avg")
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-scales", default="1", help="multipliers of the style weights, one result each, e.g. 0.1,1,10")
    p.add_argument("--tv", type=float, default=0.0, help="TV^2 weight on the 0-255 scale")
    p.add_argument("--preserve-color", choices=["none", "luminance", "chol", "pca", "sym"], default="none")
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/style_transfer/<time>)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    from dfijax import color, style
    from dfijax import images as im
    from dfijax import invert as inv
    from dfijax.vgg import VGG19

    device = common.setup()
    try:
        if args.size < 32 or args.iters < 1:
            raise ValueError("--size must be >= 32 and --iters >= 1")
        scales = [float(s) for s in args.style_scales.split(",")]
        if args.content:
            contents = np.stack([im.load_image(p, (args.size, args.size)) for p in args.content])
        else:
            contents = np.stack([im.synthetic_scene(args.size, args.size, seed=s) for s in (1, 2)])
        styles = ([im.load_image(p, args.size) for p in args.style] if args.style
                  else [im.synthetic_painting(args.size, args.size, seed=3)])
        blend = [float(b) for b in args.blend.split(",")] if args.blend else None
        weights = common.load_weights(args.weights, args.seed)
    except (ValueError, FileNotFoundError, im.ImageError) as e:
        return common.fail(str(e))
    out = common.out_dir(args.out, "style_transfer")
    base = style.StyleLoss(model=VGG19(pooling=args.pooling), content_weight=args.content_weight, tv_weight=args.tv)
    pc = args.preserve_color
    b = len(contents)
    try:
        if pc == "luminance":  # transfer on luminance; each content gets its own matched style luminance
            net_contents = np.stack([np.repeat(np.asarray(color.luminance(c))[..., None], 3, -1) for c in contents])
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
        targets, index = style.style_problems(base, weights.variables, net_contents, sets, scales)
    except ValueError as e:
        return common.fail(str(e))
    n_prob = len(index)
    if args.init == "style":
        init = np.stack([im.resize_array(sets[i][j][0][0], net_contents.shape[1:3]) for i, j, _ in index])
    elif args.init == "noise":
        init = np.asarray(inv.noise_init(jax.random.key(args.seed), (n_prob,) + net_contents.shape[1:]))
    else:
        init = net_contents[[i for i, _, _ in index]]
    t0 = time.perf_counter()
    print(f"device: {device}; {b} contents x {len(set_names)} styles x {len(scales)} style scales = {n_prob} problems "
          f"in one call at {args.size}px, {args.iters} iterations; output {out}", file=sys.stderr)
    with tqdm(total=args.iters, desc="style transfer", unit="it", file=sys.stderr) as bar:
        r = inv.invert(base, weights.variables, targets, jnp.asarray(init), inv.SolverConfig(maxiter=args.iters),
                       progress=lambda k, l: bar.update(k - bar.n), check_every=5)
        r.images.block_until_ready()
    seconds = time.perf_counter() - t0
    imgs = np.clip(np.asarray(r.images), 0, 1)
    if pc == "luminance":
        imgs = np.stack([np.asarray(color.recombine_luminance(imgs[p], contents[i])) for p, (i, _, _) in enumerate(index)])
    problems = []
    for p, (i, j, k) in enumerate(index):
        x = jnp.asarray(imgs[p]) if pc != "luminance" else r.images[p]
        parts = jax.tree.map(float, base.parts(x, weights.variables, {n: v[p] for n, v in targets.items()}))
        name = f"content{i}_{set_names[j]}_x{scales[k]:g}"
        im.save_image(out / f"{name}.png", imgs[p])
        problems.append({"name": name, "content": i, "style": set_names[j], "style_scale": scales[k],
                         "final_loss": float(r.final_loss[p]), "initial_loss": float(r.loss_history[p, 0]),
                         "parts": parts})
    style_show = [im.resize_array(s, contents.shape[1:3]) for s in styles]
    cols = [(j, k) for j in range(len(set_names)) for k in range(len(scales))]
    pos = {key: p for p, key in enumerate(index)}
    grid = im.make_grid([[contents[i]] + style_show + [imgs[pos[(i, j, k)]] for j, k in cols] for i in range(b)],
                        col_labels=["content"] + [f"style{q}" for q in range(len(styles))]
                        + [f"{set_names[j]} x{scales[k]:g}" for j, k in cols])
    im.save_image(out / "grid.png", grid)
    common.write_json(out / "results.json", {
        "experiment": "style_transfer", "settings": vars(args), "device": device, "weights": weights.description,
        "weights_pretrained": weights.pretrained, "content": args.content or ["embedded procedural scenes 1, 2"],
        "style": args.style or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"],
        "seconds_including_compile": seconds, "problems_in_one_call": n_prob, "results": problems,
    })
    print(f"wrote {out / 'grid.png'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
