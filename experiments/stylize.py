"""Apply a trained fast style-transfer network to images or a video, batched.

    python -m experiments.stylize --ckpt runs/fast_style/default --images a.jpg b.png --out runs/stylized
    python -m experiments.stylize --ckpt runs/fast_style/default          # embedded scenes
    python -m experiments.stylize --ckpt runs/fast_style/default --video clip.mp4 --size 256

Images (files, or folders of them): writes <out>/<name>_styled.png per image and grid.png (when all
are of one size). Video (a file or a folder of frames):
writes stylized.gif (or .mp4 with --format mp4) and compare.gif, and reports the flicker (mean squared
warping error over reliable pixels, see experiments.video_style) of the input and the output. Reports
images per second. The network (width, output layer, upsampling, padding, input preprocessing) is
rebuilt from the run's settings saved beside its checkpoints; its output is mapped back to RGB in [0, 1]
(for a paper-preset run: deprocessed from Caffe BGR, as fast_neural_style.lua does) and, for a
paper-preset run, median-filtered 3 x 3 as fast_neural_style.lua's -median_filter 3 (--median 0: off).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from experiments import common


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="folder written by experiments.train_fast_style")
    p.add_argument("--images", nargs="*", help="images or folders of them to stylise (default: 4 embedded scenes)")
    p.add_argument("--size", type=int, help="resize the short side to this (default: keep)")
    p.add_argument("--video", help="a video file or folder of frames to stylise instead of images")
    p.add_argument("--frames", type=int, help="at most this many video frames")
    p.add_argument("--format", choices=["gif", "mp4"], default="gif")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument(
        "--median", type=int, help="r x r median filter on the outputs (default: 3 for a paper-preset run, else 0)"
    )
    p.add_argument("--out", help="output folder (default runs/stylize/<time>)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax.style import fast_run

    common.setup()
    try:
        with common.Bars() as bars:
            r = fast_run.run_stylize(
                args.ckpt,
                images=args.images,
                video=args.video,
                size=args.size,
                frames=args.frames,
                batch=args.batch,
                progress=bars.update,
                median=args.median,
            )
    except (ValueError, FileNotFoundError, KeyError) as e:  # ImageError, VideoError: ValueErrors
        return common.fail(str(e))
    out = common.out_dir(args.out, "stylize")
    what = write_video(out, args, r) if args.video else write_images(out, r)
    print(
        f"stylised {len(r.inputs)} {what} in {r.seconds:.2f} s including compilation ({r.per_second:.1f} images/s)"
        + (f"; flicker input {r.flicker['input']}, stylised {r.flicker['stylized']}" if r.flicker else "")
        + f"; wrote {out}"
    )
    return 0


def write_images(out, r) -> str:
    """<name>_styled.png per image, and grid.png (inputs over outputs) when all are of one size."""
    from dfijax import images as im

    for n, y in zip(r.names, r.outputs):
        im.save_image(out / f"{n}_styled.png", y)
    if all(x.shape == r.inputs[0].shape for x in r.inputs):
        im.save_image(out / "grid.png", im.make_grid([r.inputs, r.outputs]))
    return "images"


def write_video(out, args, r) -> str:
    """stylized.<format>, compare.gif (input | output side by side) and results.json."""
    from dfijax.style import video as vid

    vid.write_video(out / f"stylized.{args.format}", np.stack(r.outputs))
    vid.write_video(out / "compare.gif", [np.concatenate([a, b], 1) for a, b in zip(r.inputs, r.outputs)])
    common.write_json(
        out / "results.json",
        {
            "video": args.video,
            "frames": len(r.inputs),
            "seconds": r.seconds,
            "frames_per_second": r.per_second,
            "flicker": r.flicker,
        },
    )
    return "frames"


if __name__ == "__main__":
    sys.exit(main())
