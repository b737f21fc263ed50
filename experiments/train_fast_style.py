"""Train a fast style-transfer network (Johnson et al.) against one style image.

    python -m experiments.train_fast_style                          # embedded scenes + painting, CPU-sized
    python -m experiments.train_fast_style --preset paper --content-dir coco/train2014 --style starry.jpg \\
        --out runs/fast_style/starry                                # jcjohnson/fast-neural-style's train.lua

Content images: a folder's images, random square crops (quick) or whole images squashed (paper), drawn
as a pure function of the step, or embedded procedural scenes. Checkpoints (orbax), metrics.jsonl and
config.json (the settings experiments.stylize rebuilds the network from) go to --out; rerunning the
same command resumes from the newest checkpoint (only --steps, --save-every, --log-every and --keep may
change). Writes loss.png, samples.png (content / stylised), report.html and train_info.json. Many
processes: run the same command on each with --coordinator, --num-processes and --process-id (or what
jax.distributed detects); the batch is split over every device of the job, and process 0 writes.

Presets (dfijax.style.fast.PRESETS; flags override them): quick (the project's unit-free losses, 64 px,
200 steps; tiny: its losses at the tests' 32 px, width 8, 30 steps) and paper: every default of
jcjohnson/fast-neural-style's train.lua (its network, Caffe input and 150·tanh output; VGG-16 content
relu3_3, style relu1_2 to relu4_3, weights 1 / 5, TV 1e-6 as a gradient, the Lua modules' means; 256 px
squashed images, batch 4, torch's Adam, 40000 steps).

Loss network (--vgg): quick: VGG-16 when its weights are there (weights/vgg16_*.safetensors, or
--weights of depth 16), else VGG-19 with the analogous layers; --vgg 16 without them is a seeded random
VGG-16, announced. paper: VGG-16 weights are required (scripts/fetch_vgg19.py keras16), unless --vgg 19.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from dfijax import images as im
from dfijax import report
from dfijax.progress import Bars
from dfijax.style import fast as fs
from dfijax.style import fast_run
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[fs.FastStyleConfig, runner.FLAT] = fs.FastStyleConfig()
    preset: Literal[tuple(fs.PRESETS)] = "quick"
    """quick: the project's setting, 64 px, 200 steps (minutes on a CPU); paper: train.lua's defaults
    (256 px, 40000 steps, VGG-16 required); tiny: the tests' (32 px, width 8, 30 steps); flags override"""
    content_dir: str | None = None
    """folder of content images (default: embedded procedural scenes)"""
    style: str | None = None
    """style image (default: an embedded procedural painting)"""
    vgg: Literal[16, 19] | None = None
    """loss network (quick: 16 if VGG-16 weights are found, else 19; paper: 16, VGG-16 weights required)"""
    weights: str | None = None
    """converted VGG-16 or VGG-19 weights; default: weights/ or a seeded random net"""
    out: str = "runs/fast_style/default"
    """checkpoint and output folder (resumes)"""
    processes: Annotated[runner.Processes, runner.FLAT] = runner.Processes()


def run(args: Args, ctx: runner.Context) -> runner.Outputs | None:

    weights = ctx.load_weights(args.weights, args.config.seed, fast_run.loss_depth(args.preset, args.vgg, args.weights))
    cfg = dataclasses.replace(args.config, **fs.loss_layers(args.preset, weights.depth))
    out, proc = ctx.out(), ctx.proc
    ctx.say(
        f"preset {args.preset}; loss network: VGG-{weights.depth}"
        f"{'' if weights.pretrained else ' (seeded random, NOT pretrained)'}, "
        f"content {cfg.content_layer}, style {', '.join(cfg.style_layers)}; network output {cfg.output}, "
        f"upsampling {cfg.upsample}\ndevice: {ctx.device}; {proc.count} process(es), {proc.global_devices} "
        f"device(s); training to step {cfg.steps} (batch {cfg.batch}, {cfg.size}px); output {out}"
    )
    with Bars() as bars:  # process 0 shows the progress
        progress = bars.update if ctx.main_proc else None
        r = fast_run.run_training(
            cfg, weights.variables, out, content_dir=args.content_dir, style=args.style, progress=progress
        )
    if r.resumed_from:
        ctx.say(f"resumed from step {r.resumed_from}")
    if not ctx.main_proc:  # process 0 alone writes the pictures and JSON
        return None
    report.plot_losses(out / "loss.png", r.records)
    im.save_image(out / "samples.png", im.make_grid([list(r.content), list(r.styled)]))
    return runner.Outputs(
        title=f"Fast style training ({args.preset} preset)",
        results={"processes": proc.count, **r.info(weights.description)},
        sections=[
            {"title": "Loss", "images": ["loss.png"], "pixelated": False},
            {"title": "Samples: content (top), stylised (bottom)", "images": ["samples.png"]},
        ],
        files=("loss.png", "samples.png"),
        results_file="train_info.json",
        summary=[f"checkpoints and metrics.jsonl in {out}"],
        config=cfg,
    )


main, parse = runner.Experiment("train_fast_style", Args, run, __doc__, fs.PRESETS).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
