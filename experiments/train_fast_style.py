"""Train a fast style-transfer network (Johnson et al.) against one style image.

    python -m experiments.train_fast_style                          # embedded scenes + painting, CPU-sized
    python -m experiments.train_fast_style --content-dir coco/train2014 --style starry.jpg --size 256 \\
        --steps 40000 --batch 4 --out runs/fast_style/starry

Content images: random crops of a folder's images at --size (a pure function of the step, so a
resumed run sees the same data), or embedded procedural scenes. Checkpoints (orbax, keep 3) and
metrics.jsonl go to --out; rerunning the same command resumes from the newest checkpoint.
Writes loss.png (the loss curve) and samples.png (content / stylised) at the end.
Many processes (JAX's multi-controller runtime): run the same command on each with --coordinator,
--num-processes and --process-id (or what jax.distributed detects); the batch is split over every
device of the job, and process 0 alone writes the logs, pictures and JSON.

Loss network (--vgg): VGG-16 as in the paper (content relu2_2; style relu1_2, relu2_2, relu3_3,
relu4_3) when VGG-16 weights are there (weights/vgg16_*.safetensors, or --weights of depth 16),
else VGG-19 with the analogous layers (relu3_4, relu4_4). --vgg 16 with no VGG-16 file uses a seeded
random VGG-16, announced as such. The choice, the network options (--output, --upsample) and the
layers are the run's settings, saved beside the checkpoints (config.json; also in train_info.json);
experiments.stylize rebuilds the same network from them. Resuming with settings that change the
network or the loss is refused; --steps and --save-every may change.
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
        help="quick: 64 px, 200 steps (minutes on a CPU); paper: 256 px, 40000 steps; flags override",
    )
    p.add_argument("--size", type=int, help="training crop size (preset)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, help="training steps (preset)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=32, help="network width (32 = Johnson)")
    p.add_argument(
        "--output",
        choices=("sigmoid", "tanh"),
        default="sigmoid",
        help="output layer: sigmoid (default) or the paper's scaled tanh",
    )
    p.add_argument(
        "--upsample",
        choices=("resize", "transpose"),
        default="resize",
        help="resize+conv (default) or the paper's fractionally strided (transposed) convolutions",
    )
    p.add_argument(
        "--vgg", type=int, choices=(16, 19), help="loss network (default: 16 if VGG-16 weights are found, else 19)"
    )
    p.add_argument("--style-weight", type=float, default=0.5)
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--tv", type=float, default=1e-4)
    p.add_argument(
        "--loss-normalize",
        choices=("relative", "absolute"),
        default="relative",
        help="relative (default): unit-free terms, the same weights work on pretrained and random VGG "
        "weights; absolute: the paper's terms (use --style-weight 5 --tv 1e-6 with pretrained weights)",
    )
    p.add_argument("--save-every", type=int, help="checkpoint interval (preset)")
    p.add_argument("--weights", help="converted VGG-16 or VGG-19 weights; default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/fast_style/default", help="checkpoint and output folder (resumes)")
    common.add_distributed_flags(p)
    return common.apply_preset(p.parse_args(argv), PRESETS)


def loss_depth(args) -> int | None:
    """--vgg, else the depth of --weights (None: read from the file), else 16 if VGG-16 weights are found."""
    from dfijax.weights import find_weights

    if args.vgg or args.weights:
        return args.vgg
    return 16 if find_weights(depth=16) is not None else 19


def config_from(args, depth: int):
    """The run's FastStyleConfig from the flags (the preset already applied) and the loss VGG's depth."""
    from dfijax.style import fast as fs

    return fs.FastStyleConfig.johnson(
        depth,
        width=args.width,
        output=args.output,
        upsample=args.upsample,
        size=args.size,
        batch=args.batch,
        lr=args.lr,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv,
        normalize=args.loss_normalize,
        seed=args.seed,
        steps=args.steps,
        save_every=args.save_every,
    )


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax.style import fast_run

    if (proc := common.start_processes(args)) is None:
        return 1
    device = common.setup()
    out = pathlib.Path(args.out).absolute()
    try:
        weights = common.load_weights(args.weights, args.seed, depth=loss_depth(args))
        cfg = config_from(args, weights.depth)
        print(
            f"loss network: VGG-{weights.depth}{'' if weights.pretrained else ' (seeded random, NOT pretrained)'}, "
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
