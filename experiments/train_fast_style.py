"""Train a fast style-transfer network (Johnson et al.) against one style image.

    python -m experiments.train_fast_style                          # embedded scenes + painting, CPU-sized
    python -m experiments.train_fast_style --preset paper --content-dir coco/train2014 --style starry.jpg \\
        --out runs/fast_style/starry                                # jcjohnson/fast-neural-style's train.lua

Content images: a folder's images at --size, random square crops (quick) or whole images squashed
(paper), drawn as a pure function of the step (a resumed run sees the same data), or embedded
procedural scenes. Checkpoints (orbax, keep 3) and
metrics.jsonl go to --out; rerunning the same command resumes from the newest checkpoint.
Writes loss.png (the loss curve) and samples.png (content / stylised) at the end.
Many processes (JAX's multi-controller runtime): run the same command on each with --coordinator,
--num-processes and --process-id (or what jax.distributed detects); the batch is split over every
device of the job, and process 0 alone writes the logs, pictures and JSON.

Presets: quick (default; the project's unit-free losses, 64 px, 200 steps) and paper: every default of
jcjohnson/fast-neural-style's train.lua (network: reflection padding at the start, unpadded residual
blocks, fractionally strided up-sampling, 150·tanh output on Caffe-preprocessed input; loss: VGG-16
content relu3_3, style relu1_2, relu2_2, relu3_3, relu4_3, weights 1 / 5, TV 1e-6 as a gradient, the
Lua modules' means; 256 px squashed content images, style image long side 256, batch 4, torch's Adam
at 1e-3, 40000 steps). Flags override a preset.

Loss network (--vgg): quick: VGG-16 (content relu2_2; style relu1_2, relu2_2, relu3_3, relu4_3) when
VGG-16 weights are there (weights/vgg16_*.safetensors, or --weights of depth 16), else VGG-19 with the
analogous layers (relu3_4, relu4_4); --vgg 16 with no VGG-16 file uses a seeded random VGG-16,
announced as such. paper: VGG-16 weights are required (scripts/fetch_vgg19.py keras16: the Caffe
VGG-16 the reference loads); without them it stops, unless --vgg 19 asks for VGG-19 (content relu3_4).
The choice, the preset's network and loss options and the layers are the run's settings, saved
beside the checkpoints (config.json; also in train_info.json); experiments.stylize rebuilds the same
network from them. Resuming with settings that change the network or the loss is refused; --steps and
--save-every may change.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from experiments import common


def parse(argv):
    from dfijax.style.fast import PRESETS  # the same command means the same run on every device

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content-dir", help="folder of content images (default: embedded procedural scenes)")
    p.add_argument("--style", help="style image (default: an embedded procedural painting)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick: the project's setting, 64 px, 200 steps (minutes on a CPU); paper: train.lua's defaults "
        "(256 px, 40000 steps, VGG-16 required); flags override",
    )
    p.add_argument("--size", type=int, help="training crop size (preset)")
    p.add_argument("--batch", type=int, help="batch size (preset: 4)")
    p.add_argument("--steps", type=int, help="training steps (preset)")
    p.add_argument("--lr", type=float, help="learning rate (preset: 1e-3)")
    p.add_argument("--width", type=int, help="network width (preset: 32 = Johnson)")
    p.add_argument(
        "--output", choices=("sigmoid", "tanh"), help="output layer: sigmoid (quick) or the paper's 150·tanh"
    )
    p.add_argument(
        "--upsample",
        choices=("resize", "transpose"),
        help="resize+conv (quick) or the paper's fractionally strided (transposed) convolutions",
    )
    p.add_argument(
        "--vgg",
        type=int,
        choices=(16, 19),
        help="loss network (quick: 16 if VGG-16 weights are found, else 19; paper: 16, VGG-16 weights required)",
    )
    p.add_argument("--style-weight", type=float, help="(preset: quick 0.5, paper 5)")
    p.add_argument("--content-weight", type=float, help="(preset: 1)")
    p.add_argument("--tv", type=float, help="TV weight (preset: quick 1e-4, paper 1e-6)")
    p.add_argument(
        "--loss-normalize",
        choices=("relative", "absolute", "reference"),
        help="relative (quick): unit-free terms, the same weights work on pretrained and random VGG "
        "weights; absolute: the paper's unnormalised sums; reference (paper): the reference code's means",
    )
    p.add_argument("--save-every", type=int, help="checkpoint interval (preset)")
    p.add_argument("--weights", help="converted VGG-16 or VGG-19 weights; default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/fast_style/default", help="checkpoint and output folder (resumes)")
    common.add_distributed_flags(p)
    return p.parse_args(argv)


# flag -> FastStyleConfig field, for the flags that override the preset
FIELDS = {
    "size": "size",
    "batch": "batch",
    "steps": "steps",
    "lr": "lr",
    "width": "width",
    "output": "output",
    "upsample": "upsample",
    "style_weight": "style_weight",
    "content_weight": "content_weight",
    "tv": "tv_weight",
    "loss_normalize": "normalize",
    "save_every": "save_every",
    "seed": "seed",
}


def loss_depth(args) -> int | None:
    """--vgg, else the depth of --weights (None: read from the file), else 16 for the paper preset, else
    16 if VGG-16 weights are found."""
    from dfijax.weights import find_weights

    if args.vgg or args.weights:
        return args.vgg
    if args.preset == "paper":
        return 16
    return 16 if find_weights(depth=16) is not None else 19


def missing_vgg16(args, depth: int | None) -> str | None:
    """The one-line reason the paper preset cannot run (its VGG-16 loss network has no weights here), or None."""
    from dfijax.weights import find_weights

    if args.preset != "paper" or depth != 16 or args.weights or find_weights(depth=16) is not None:
        return None
    return (
        "the paper preset's loss network is VGG-16 and no VGG-16 weights were found (weights/vgg16*.safetensors "
        "or $DFIJAX_WEIGHTS); run: python scripts/fetch_vgg19.py keras16, or pass --vgg 19 for VGG-19's layers"
    )


def config_from(args, depth: int):
    """The run's FastStyleConfig: the preset's settings on VGG-`depth`, the flags given overriding them."""
    from dfijax.style import fast as fs

    flags = {field: getattr(args, flag) for flag, field in FIELDS.items() if getattr(args, flag) is not None}
    return fs.FastStyleConfig.preset(args.preset, vgg=depth, **flags)


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax.style import fast_run

    if (proc := common.start_processes(args)) is None:
        return 1
    device = common.setup()
    out = pathlib.Path(args.out).absolute()
    depth = loss_depth(args)
    if err := missing_vgg16(args, depth):
        return common.fail(err)
    try:
        weights = common.load_weights(args.weights, args.seed, depth=depth)
        cfg = config_from(args, weights.depth)
        print(
            f"preset {args.preset}; loss network: VGG-{weights.depth}"
            f"{'' if weights.pretrained else ' (seeded random, NOT pretrained)'}, "
            f"content {cfg.content_layer}, style {', '.join(cfg.style_layers)}; network output {cfg.output}, "
            f"upsampling {cfg.upsample}\ndevice: {device}; {proc.count} process(es), {proc.global_devices} "
            f"device(s); training to step {cfg.steps} (batch {cfg.batch}, {cfg.size}px); output {out}",
            file=sys.stderr,
        )
        with common.Bars() as bars:  # process 0 shows the progress
            r = fast_run.run_training(
                cfg,
                weights.variables,
                out,
                content_dir=args.content_dir,
                style=args.style,
                progress=bars.update if proc.index == 0 else None,
            )
    except (ValueError, FileNotFoundError) as e:  # ImageError, CheckpointMismatch: ValueErrors
        return common.fail(str(e))
    if r.resumed_from:
        print(f"resumed from step {r.resumed_from}", file=sys.stderr)
    if proc.index == 0:  # process 0 alone writes the pictures and JSON
        write_outputs(out, args, r, weights, device, proc.count)
        print(f"wrote {out / 'loss.png'}, {out / 'samples.png'}; checkpoints in {out}")
    return 0


def write_outputs(out: pathlib.Path, args, r, weights, device: str, processes: int) -> None:
    """loss.png, samples.png (content / stylised) and train_info.json."""
    from dfijax import images as im

    cfg = r.config
    common.plot_losses(out / "loss.png", r.records)
    im.save_image(out / "samples.png", im.make_grid([list(r.content), list(r.styled)]))
    loss_net = {"vgg": cfg.vgg, "content_layer": cfg.content_layer, "style_layers": list(cfg.style_layers)}
    common.write_json(
        out / "train_info.json",
        {
            "settings": vars(args),
            "device": device,
            "processes": processes,
            "weights": weights.description,
            "weights_pretrained": weights.pretrained,
            "loss_network": {**loss_net, "weights": weights.description},
            "resumed_from": r.resumed_from,
            "final": r.final,
            "network": {"width": cfg.width, "output": cfg.output, "upsample": cfg.upsample},
        },
    )


if __name__ == "__main__":
    sys.exit(main())
