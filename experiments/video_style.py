"""Style transfer for videos with temporal consistency (Ruder et al. 2016), on the shared engine.

    python -m experiments.video_style                                  # embedded moving clip + painting, ~1 min on CPU
    python -m experiments.video_style --clip occlusion --offsets 1,2,4 # long-term consistency on an occlusion clip
    python -m experiments.video_style --multipass 7                    # also the multi-pass algorithm
    python -m experiments.video_style --preserve-color luminance       # painted texture, the clip's own colours
    python -m experiments.video_style --video clip.mp4 --style starry.jpg --preset paper --format mp4
    python -m experiments.video_style --config runs/video_style/<time>/config.json   # repeat a run

Expected result (default, ~1 min on CPU): the 8-frame embedded pan painted in the procedural
painting's texture; the version with the temporal loss flickers far less than per-frame stylisation
(mean squared warping error ~100x lower) at a similar style objective.

Reads a video file (anything OpenCV decodes) or a folder of frames; computes dense optical flow both
ways (OpenCV DIS, or Farneback) between each frame and the earlier frames the temporal loss uses
(--offsets: 1 is the short-term loss, e.g. 1,2,4 the long-term one, with flow computed directly
between the two frames) and Ruder's reliability masks; stylises frame 0 from its content, then each
later frame from the previous output warped onto it, with the temporal loss towards the earlier
outputs warped onto it (the single-pass algorithm). --multipass N adds the multi-pass algorithm (N
alternating passes starting from the per-frame stylisation). For comparison it stylises every frame
independently (all frames in one vmapped engine call) and measures flicker: the mean squared warping
error between consecutive outputs over reliable pixels, and the long-range error between frames j
apart (j in the offsets > 1). All of it is dfijax.style.video.run_video_style. --preserve-color
luminance / chol / pca / sym keeps the clip's colours (statistics over all frames; see
dfijax.style.color). Writes, under runs/video_style/<time>/ (or --out): compare.gif (content |
per-frame | temporal | multi-pass), stylized.gif (or .mp4), frames/*.png, flicker.png, report.html,
results.json and config.json (--config repeats the run; flags given with it override it; the video,
style and frame selection stay flags). Rerunning with the same --out resumes after the last finished frame.

--preset quick (default, on any device): 64 px, 60 iterations for frame 0, 30 after, 20 per pass.
--preset paper: manuelruder/artistic-videos' code (dfijax.style.video.ArtisticVideosLoss and its
algorithms): its objective (neural-style's normalisation on the x256 Caffe input, max pooling, TV 1e-3
in the gradient only), frame 0 from N(0, 0.001^2) noise in Caffe space, later frames from the
previous output warped (mean pixel out of frame), 2000 / 1000 iterations stopped when the loss changes
< 1e-4 over 50, L-BFGS memory 100, closestFirst long-term weights; multi-pass (--multipass 15): 100
per pass, temporal loss from pass 8, passes from one noise image; 350 px short side. --objective
dfijax keeps the project's own objective with any preset. Explicit flags override the preset.

--flow-dir DIR reads the flow instead of computing it: the files artistic-videos' makeOptFlow.sh writes
(DeepFlow / EpicFlow, or any Middlebury .flo writer): backward_<t>_<t-j>.flo and reliable_<t>_<t-j>.pgm
for each offset j, and for --multipass forward_<t>_<t+1>.flo and reliable_<t>_<t+1>.pgm, frames
numbered from --flow-start (default 1), at the frames' size.

--temporal-weight auto is Ruder's 1e3 (multi-pass: 5e2) with pretrained weights: our temporal loss
is theirs, the size-averaged MSE on 0-255 pixels (see dfijax.style.video.TemporalLoss). With the seeded
random VGG-19, whose style losses are ~1e8 smaller, 1e3 freezes the warped frame; auto is then
1e-6 (multi-pass 5e-7), set on the embedded clips (flicker /100 and more at a style objective
within ~1.7x of per-frame stylisation).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from experiments import common


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", help="video file or folder of frames (default: an embedded procedural clip)")
    p.add_argument(
        "--clip",
        choices=["pan", "occlusion"],
        default="pan",
        help="embedded clip: a camera pan with a moving ball, or a bar sweeping over a still scene",
    )
    p.add_argument("--style", nargs="*", help="style images (default: an embedded procedural painting)")
    p.add_argument("--blend", help="weights for several style images, e.g. 0.7,0.3")
    p.add_argument(
        "--preset", choices=["quick", "paper"], default="quick", help="quick, or paper: artistic-videos (see above)"
    )
    p.add_argument("--config", help="repeat a run: its config.json (flags given here still override it)")
    p.add_argument("--size", type=int, help="frame short side in pixels (preset)")
    p.add_argument(
        "--frames", type=int, default=None, help="at most this many frames (default: all; 8 for the embedded clip)"
    )
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--iters-first", type=int, help="iterations for frame 0 and the per-frame baseline (preset)")
    p.add_argument("--iters", type=int, help="iterations for each later frame (preset)")
    p.add_argument(
        "--offsets", help="earlier frames J of the temporal loss: 1 (short-term, default) or e.g. 1,2,4 (long-term)"
    )
    p.add_argument("--temporal-weight", help="weight of the temporal loss (Ruder's units); auto (default): see above")
    p.add_argument("--multipass", type=int, help="also run the multi-pass algorithm with this many passes (0: off)")
    p.add_argument("--pass-iters", type=int, help="iterations per frame and pass (preset)")
    p.add_argument("--temporal-after", type=int, help="multi-pass: temporal loss from this pass on (preset; paper 8)")
    p.add_argument(
        "--blend-weight",
        type=float,
        help="multi-pass: weight of the warped neighbour in each "
        "frame's start (default 1: delta = 0.5 on reliable pixels)",
    )
    p.add_argument("--flow", choices=["dis", "farneback"])
    p.add_argument("--flow-dir", help="read makeOptFlow.sh's .flo / .pgm files from this folder (see above)")
    p.add_argument("--flow-start", type=int, help="number of the first frame in the --flow-dir file names (default 1)")
    p.add_argument(
        "--objective", choices=["dfijax", "artistic-videos"], help="per-frame objective and algorithms (preset)"
    )
    p.add_argument("--pooling", choices=["avg", "max"])
    p.add_argument("--tv", type=float, help="TV^2 weight on the 0-255 scale (default 0)")
    p.add_argument("--preserve-color", choices=["none", "luminance", "chol", "pca", "sym"], help="default none")
    p.add_argument("--no-baseline", action="store_true", help="skip the per-frame comparison")
    p.add_argument("--format", choices=["gif", "mp4"], default="gif")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/video_style/<time>); an existing one resumes")
    return p.parse_args(argv)


def config_from(args):
    """The preset (or a saved config), then every flag given."""
    from dfijax.style import video as vid
    from experiments import report

    tw = args.temporal_weight
    try:
        tw = None if tw in (None, "auto") else float(tw)
    except ValueError:
        raise ValueError(f"--temporal-weight must be a non-negative number or auto, got {tw}") from None
    given = dict(
        size=args.size,
        iters_first=args.iters_first,
        iters=args.iters,
        multipass=args.multipass,
        offsets=args.offsets.split(",") if args.offsets else None,
        pass_iters=args.pass_iters,
        temporal_after=args.temporal_after,
        blend_weight=args.blend_weight,
        flow=args.flow,
        flow_dir=args.flow_dir,
        flow_start=args.flow_start,
        objective=args.objective,
        pooling=args.pooling,
        tv=args.tv,
        preserve_color=args.preserve_color,
        blend=[float(b) for b in args.blend.split(",")] if args.blend else None,
        baseline=False if args.no_baseline else None,
    )
    base = vid.VideoConfig.from_dict(report.load_config(args.config)) if args.config else vid.video_config(args.preset)
    cfg = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    return dataclasses.replace(cfg, temporal_weight=tw) if args.temporal_weight is not None else cfg


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import images as im
    from dfijax.style import video as vid

    device = common.setup()
    try:
        cfg = config_from(args)
        if args.video:
            frames = vid.read_frames(args.video, cfg.size, args.frames, args.stride)
        else:
            make = vid.occlusion_clip if args.clip == "occlusion" else vid.synthetic_clip
            frames = make(args.frames or 8, cfg.size, cfg.size, seed=args.seed)
        if len(frames) < 2:
            raise ValueError(f"{args.video} has {len(frames)} frame; a video needs at least 2")
        styles = (
            [im.load_image(p, min(frames.shape[1:3])) for p in args.style]
            if args.style
            else [im.synthetic_painting(cfg.size, cfg.size, seed=3)]
        )
        weights = common.load_weights(args.weights, args.seed)
        out = common.out_dir(args.out, "video_style")
        fdir = out / "frames"
        fdir.mkdir(exist_ok=True)
        done = []
        while (fdir / f"temporal_{len(done):04d}.npy").exists() and len(done) < len(frames):
            done.append(np.load(fdir / f"temporal_{len(done):04d}.npy"))
        print(
            f"device: {device}; {len(frames)} frames at {frames.shape[1]}x{frames.shape[2]}; offsets {cfg.offsets}; "
            f"temporal weight {cfg.temporal_weight_for(weights.pretrained):g}; colour {cfg.preserve_color}; "
            f"output {out}" + (f"; resuming after frame {len(done) - 1}" if done else ""),
            file=sys.stderr,
        )
        with common.Bars() as bars:
            r = vid.run_video_style(
                cfg,
                weights,
                frames,
                styles,
                progress=bars.update,
                done=done,
                on_frame=lambda t, x, _r: np.save(fdir / f"temporal_{t:04d}.npy", x),
            )
    except (ValueError, FileNotFoundError) as e:  # VideoError and ImageError are ValueErrors
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    write_outputs(out, args, r, weights, device)
    print("flicker (mean squared warping error): " + ", ".join(f"{k} {v.mean():.3g}" for k, v in r.flicker.items()))
    for j, v in r.long_range.items():
        print(f"long-range error {j}: " + ", ".join(f"{k} {e:.3g}" for k, e in v.items()))
    print(f"wrote {out / 'report.html'}, {out / f'stylized.{args.format}'}, {out / 'compare.gif'}")
    return 0


FILES = {"with temporal loss": "temporal", "per-frame": "per_frame", "multi-pass": "multipass"}


def write_outputs(out, args, r, weights, device) -> None:
    """frames/*.png, stylized.<format>, compare.gif, flicker.png, results.json, config.json, report.html."""
    from dfijax import images as im
    from dfijax.style import video as vid
    from experiments import report

    cfg, videos = r.config, r.videos
    n, h, w = videos["input video"].shape[:3]
    for name, stem in FILES.items():
        for t in range(n if name in videos else 0):
            im.save_image(out / "frames" / f"{stem}_{t:04d}.png", videos[name][t])
    vid.write_video(out / f"stylized.{args.format}", videos["with temporal loss"], args.fps)
    cols = [k for k in ("input video", "per-frame", "with temporal loss", "multi-pass") if k in videos]
    vid.write_video(out / "compare.gif", [np.concatenate([videos[k][t] for k in cols], 1) for t in range(n)], args.fps)
    report.plot_curves(
        out / "flicker.png",
        {k: (np.arange(1, n), v) for k, v in r.flicker.items()},
        markers=True,
        integer_x=True,
        xlabel="frame t",
        ylabel="warping error to frame t-1 (log scale)",
        log_y=True,
        title="flicker: mean squared difference to the previous frame warped, reliable pixels",
    )
    video_text = args.video or f"embedded procedural clip ({args.clip}, dfijax.style.video)"
    flicker = {
        k: {"per_pair": v.tolist(), "mean": float(v.mean()), "rmse_255": float(255 * np.sqrt(v.mean()))}
        for k, v in r.flicker.items()
    }
    common.write_json(
        out / "results.json",
        {
            "experiment": "video_style",
            "config": cfg.to_dict(),
            "settings": vars(args),
            "device": device,
            "weights": weights.description,
            "weights_pretrained": weights.pretrained,
            "temporal_weight": r.temporal_weight,
            "offsets": list(cfg.offsets),
            "video": video_text,
            "n_frames": n,
            "frame_size": [h, w],
            "style": args.style or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"],
            "resumed_after_frames": r.resumed_after_frames,
            "reliable_fraction": r.reliable_fraction,
            "flicker": flicker,
            "long_range_error": r.long_range,
            "multipass_flicker_per_pass": r.multipass_flicker_per_pass,
            "style_objective": r.style_objective,
            "seconds": r.seconds,
        },
    )
    report.save_config(out, cfg.to_dict())
    long_rows = [[j, k, e] for j, v in r.long_range.items() for k, e in v.items()]
    report.write_report(
        out / "report.html",
        "Video style transfer (Ruder et al.)",
        weights=weights.description,
        pretrained=weights.pretrained,
        device=device,
        seconds={k: v for k, v in r.seconds.items() if v is not None},
        data=f"{video_text}; {n} frames at {h}x{w}",
        config=cfg.to_dict(),
        sections=[
            {
                "title": "Clips",
                "images": ["compare.gif"],
                "text": " | ".join(cols) + f"; temporal weight "
                f"{r.temporal_weight:g}, offsets J = {list(cfg.offsets)}, colour {cfg.preserve_color}.",
            },
            {
                "title": "Flicker (warping error between consecutive frames, reliable pixels)",
                "images": ["flicker.png"],
                "pixelated": False,
                "table": {
                    "headers": ["video", "mean squared error (RGB in [0, 1])", "RMSE on 0-255"],
                    "rows": [[k, v["mean"], v["rmse_255"]] for k, v in flicker.items()],
                },
                "text": "Reliable pixels per pair: " + ", ".join(f"{m:.2f}" for m in r.reliable_fraction),
            },
        ]
        + (
            [
                {
                    "title": "Long-range error (frames j apart)",
                    "table": {"headers": ["offset", "video", "error"], "rows": long_rows},
                }
            ]
            if long_rows
            else []
        )
        + (
            [
                {
                    "title": "Multi-pass flicker per pass",
                    "text": ", ".join(f"{f:.3g}" for f in r.multipass_flicker_per_pass),
                }
            ]
            if r.multipass_flicker_per_pass
            else []
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
