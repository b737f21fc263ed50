"""Apply a trained fast style-transfer network to images, batched.

    python -m experiments.stylize --ckpt runs/fast_style/default --images a.jpg b.png --out runs/stylized
    python -m experiments.stylize --ckpt runs/fast_style/default          # embedded scenes

Writes <out>/<name>_styled.png per image and grid.png, and reports images per second.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from experiments import common


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="folder written by experiments.train_fast_style")
    p.add_argument("--images", nargs="*", help="images to stylise (default: 4 embedded scenes)")
    p.add_argument("--size", type=int, help="resize the short side to this (default: keep)")
    p.add_argument("--width", type=int, default=32, help="the network width it was trained with")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", help="output folder (default runs/stylize/<time>)")
    args = p.parse_args(argv)
    from dfijax import fast_style as fs
    from dfijax import images as im

    common.setup()
    try:
        net = fs.TransformNet(width=args.width)
        params = fs.restore_params(args.ckpt, net)
        if args.images:
            pics = [im.load_image(f, args.size) for f in args.images]
            names = [pathlib.Path(f).stem for f in args.images]
        else:
            pics = [im.synthetic_scene(args.size or 128, args.size or 128, seed=s) for s in range(4)]
            names = [f"scene{s}" for s in range(4)]
    except (ValueError, FileNotFoundError, im.ImageError) as e:
        return common.fail(str(e))
    out = common.out_dir(args.out, "stylize")
    t0 = time.perf_counter()
    styled = []
    for shape in sorted({x.shape for x in pics}):  # batch images of equal size together
        idx = [i for i, x in enumerate(pics) if x.shape == shape]
        for i, y in zip(idx, fs.stylize(net, params, np.stack([pics[i] for i in idx]), args.batch)):
            styled.append((i, y))
    styled = [y for _, y in sorted(styled, key=lambda t: t[0])]
    dt = time.perf_counter() - t0
    for n, y in zip(names, styled):
        im.save_image(out / f"{n}_styled.png", y)
    if all(x.shape == pics[0].shape for x in pics):
        im.save_image(out / "grid.png", im.make_grid([pics, styled]))
    print(f"stylised {len(pics)} images in {dt:.2f} s including compilation ({len(pics) / dt:.1f} images/s); "
          f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
