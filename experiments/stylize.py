"""Apply a trained fast style-transfer network to images or a video, batched.

    python -m experiments.stylize --ckpt runs/fast_style/default --images a.jpg b.png --out runs/stylized
    python -m experiments.stylize --ckpt runs/fast_style/default          # embedded scenes
    python -m experiments.stylize --ckpt runs/fast_style/default --video clip.mp4 --size 256

Images: writes <out>/<name>_styled.png per image and grid.png. Video (a file or a folder of frames):
writes stylized.gif (or .mp4 with --format mp4) and compare.gif, and reports the flicker (mean squared
warping error over reliable pixels, see experiments.video_style) of the input and the output. Reports
images per second. The network (width, output layer, upsampling) is rebuilt from the run's settings
saved beside its checkpoints.
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
    p.add_argument("--video", help="a video file or folder of frames to stylise instead of images")
    p.add_argument("--frames", type=int, help="at most this many video frames")
    p.add_argument("--format", choices=["gif", "mp4"], default="gif")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", help="output folder (default runs/stylize/<time>)")
    args = p.parse_args(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import images as im
    from dfijax.style import fast as fs
    from dfijax.style import video as vid

    common.setup()
    try:
        cfg, params = fs.restore(args.ckpt)
        net = cfg.net()
        if args.video:
            frames = vid.read_frames(args.video, args.size, args.frames)
            pics, names = list(frames), None
        elif args.images:
            pics = [im.load_image(f, args.size) for f in args.images]
            names = [pathlib.Path(f).stem for f in args.images]
        else:
            pics = [im.synthetic_scene(args.size or 128, args.size or 128, seed=s) for s in range(4)]
            names = [f"scene{s}" for s in range(4)]
    except (ValueError, FileNotFoundError, im.ImageError, KeyError) as e:  # VideoError is a ValueError
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
    if args.video:
        styled = np.stack(styled)
        vid.write_video(out / f"stylized.{args.format}", styled)
        vid.write_video(out / "compare.gif", [np.concatenate([a, b], 1) for a, b in zip(frames, styled)])
        pairs = vid.frame_pairs(frames) if len(frames) > 1 else []
        flicker = {
            "input": float(vid.warping_errors(frames, pairs).mean()) if pairs else None,
            "stylized": float(vid.warping_errors(styled, pairs).mean()) if pairs else None,
        }
        common.write_json(
            out / "results.json",
            {
                "video": args.video,
                "frames": len(frames),
                "seconds": dt,
                "frames_per_second": len(frames) / dt,
                "flicker": flicker,
            },
        )
        print(
            f"stylised {len(frames)} frames in {dt:.2f} s including compilation ({len(frames) / dt:.1f} images/s); "
            f"flicker input {flicker['input']}, stylised {flicker['stylized']}; wrote {out}"
        )
        return 0
    for n, y in zip(names, styled):
        im.save_image(out / f"{n}_styled.png", y)
    if all(x.shape == pics[0].shape for x in pics):
        im.save_image(out / "grid.png", im.make_grid([pics, styled]))
    print(
        f"stylised {len(pics)} images in {dt:.2f} s including compilation ({len(pics) / dt:.1f} images/s); wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
