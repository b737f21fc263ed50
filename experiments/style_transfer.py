"""Gatys neural style transfer on the shared engine, with colour preservation.

    python -m experiments.style_transfer                        # embedded scene + procedural painting, CPU-sized
    python -m experiments.style_transfer --content a.jpg b.jpg --style starry.jpg --size 512 --iters 500
    python -m experiments.style_transfer --style s1.jpg s2.jpg --blend 0.7,0.3 --preserve-color luminance

Content layer relu4_2, style layers relu1_1…relu5_1 with the Gatys notebook's weights 1e3/n², average
pooling, L-BFGS, init from the content (or style / noise). All content images (× several style-weight
multipliers with --style-scales) are solved in one compiled, vmapped call. --preserve-color
luminance runs the transfer on luminance only and puts the content's chroma back; chol / pca / sym
first recolour the style image to the content's colour mean and covariance. Writes, under
runs/style_transfer/<time>/ (or --out): grid.png (content, style, results), each result, results.json
(settings, weights used, losses, timings). Defaults: 96 px, 100 iterations on CPU; 512 px, 500 on GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
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
        per = [style.style_targets(base, weights.variables, net_contents[i:i + 1], per_content_styles[i], blend)
               for i in range(b)]
    except ValueError as e:
        return common.fail(str(e))
    targets = {k: jnp.concatenate([p[k] for p in per]) for k in per[0]}
    # one problem per (content, style scale): the scale multiplies the Gram targets' loss via weights
    if args.init == "style":
        init = np.stack([im.resize_array(per_content_styles[i][0], net_contents.shape[1:3]) for i in range(b)])
    elif args.init == "noise":
        init = np.asarray(inv.noise_init(jax.random.key(args.seed), net_contents.shape))
    else:
        init = net_contents
    results, t0 = [], time.perf_counter()
    print(f"device: {device}; {b} contents x {len(scales)} style scales at {args.size}px, {args.iters} iterations; "
          f"output {out}", file=sys.stderr)
    for sc in scales:
        loss = dataclasses.replace(base, style_weights=tuple(w * sc for w in base.weights))
        with tqdm(total=args.iters, desc=f"style x{sc:g}", unit="it", file=sys.stderr) as bar:
            r = inv.invert(loss, weights.variables, targets, jnp.asarray(init), inv.SolverConfig(maxiter=args.iters),
                           progress=lambda k, l: bar.update(k - bar.n), check_every=5)
            r.images.block_until_ready()
        imgs = np.clip(np.asarray(r.images), 0, 1)
        if pc == "luminance":
            imgs = np.stack([np.asarray(color.recombine_luminance(imgs[i], contents[i])) for i in range(b)])
        parts = [jax.tree.map(float, loss.parts(jnp.asarray(imgs[i]) if pc != "luminance" else r.images[i],
                                                weights.variables, {k: v[i] for k, v in targets.items()}))
                 for i in range(b)]
        results.append({"style_scale": sc, "images": imgs, "final_loss": np.asarray(r.final_loss).tolist(),
                        "initial_loss": np.asarray(r.loss_history[:, 0]).tolist(), "parts": parts})
    seconds = time.perf_counter() - t0
    style_show = im.resize_array(styles[0], contents.shape[1:3])
    grid = im.make_grid([[contents[i], style_show] + [res["images"][i] for res in results] for i in range(b)],
                        col_labels=["content", "style"] + [f"x{res['style_scale']:g}" for res in results])
    im.save_image(out / "grid.png", grid)
    for res in results:
        for i in range(b):
            im.save_image(out / f"content{i}_x{res['style_scale']:g}.png", res["images"][i])
    common.write_json(out / "results.json", {
        "experiment": "style_transfer", "settings": vars(args), "device": device, "weights": weights.description,
        "weights_pretrained": weights.pretrained, "content": args.content or ["embedded procedural scenes 1, 2"],
        "style": args.style or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"],
        "seconds_including_compile": seconds,
        "results": [{k: v for k, v in res.items() if k != "images"} for res in results],
    })
    print(f"wrote {out / 'grid.png'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
