"""Apply a trained fast style-transfer network to images or a video, batched.

    python -m experiments.stylize --ckpt runs/fast_style/default --images a.jpg b.png --out runs/stylized
    python -m experiments.stylize --ckpt runs/fast_style/default          # embedded scenes
    python -m experiments.stylize --ckpt runs/fast_style/default --video clip.mp4 --size 256

Images (files, or folders of them): writes <out>/<name>_styled.png per image and grid.png (when all
are of one size). Video (a file or a folder of frames): writes stylized.gif (or .mp4, --format mp4)
and compare.gif, and reports the flicker (mean squared warping error over reliable pixels, see
experiments.video_style) of the input and the output. Reports images per second (also in report.html
and results.json). The network is rebuilt from the settings saved beside its checkpoints; its output
is mapped back to RGB in [0, 1] (a paper-preset run's deprocessed from Caffe BGR and median-filtered
3 x 3, as fast_neural_style.lua does; --median 0: off).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import tyro

from dfijax.progress import Bars
from dfijax.style import fast_run
from dfijax.style import video as vid
from dfijax.style.fast_run import StylizeConfig
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[StylizeConfig, runner.FLAT] = StylizeConfig()
    ckpt: str = tyro.MISSING
    """folder written by experiments.train_fast_style"""
    images: tuple[str, ...] = ()
    """images or folders of them to stylise (default: 4 embedded scenes)"""
    video: str | None = None
    """a video file or folder of frames to stylise instead of images"""
    format: Literal["gif", "mp4"] = "gif"
    """the stylised video's file format"""
    out: str | None = None
    """output folder (default runs/stylize/<time>)"""


def run(args: Args, ctx: runner.Context) -> runner.Outputs:

    with Bars() as bars:
        r = fast_run.run_stylize(args.ckpt, args.config, images=args.images, video=args.video, progress=bars.update)
    files = vid.write_pictures(ctx.out(), r.pictures(args.format))
    files = [f for f in files if not f.endswith("_styled.png")] or files  # the grid stands for the images
    n, what, rate = len(r.inputs), "frames" if args.video else "images", f"{r.per_second:.1f} images/s"
    flicker = f"; flicker input {r.flicker['input']}, stylized {r.flicker['stylized']}" if r.flicker else ""
    print(f"stylised {n} {what} in {r.seconds:.2f} s including compilation ({rate}){flicker}")  # on stdout
    return runner.Outputs(
        title=f"Fast style transfer of {n} {what}",
        results={"video": args.video, **r.measures()},
        sections=[{"title": "Inputs and stylised", "images": files[-1:], "text": flicker.lstrip("; ")}],
        files=files,
        data=args.video or ", ".join(args.images) or "4 embedded procedural scenes",
    )


main, parse = runner.Experiment("stylize", Args, run, __doc__).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
