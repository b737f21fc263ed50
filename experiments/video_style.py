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

Optical flow (OpenCV, or --flow-dir: the .flo / .pgm files artistic-videos' makeOptFlow.sh writes,
backward_<t>_<t-j> for each offset j and forward_<t>_<t+1> for --multipass, frames numbered from
--flow-start) to the earlier frames of --offsets (1: short-term, e.g. 1,2,4: long-term) and Ruder's
reliability masks; frame 0 from its content, each later frame from the previous output warped onto it,
with the temporal loss towards the earlier outputs warped onto it (single pass); --multipass N adds the
multi-pass algorithm. For comparison every frame is stylised independently; flicker is the mean squared
warping error between consecutive outputs over reliable pixels, the long-range error that between
frames j apart (dfijax.style.video.run_video_style). Writes, under runs/video_style/<time>/ (or --out):
compare.gif (content | per-frame | temporal | multi-pass), stylized.gif (or .mp4), frames/*.png,
flicker.png, report.html, results.json and config.json (--config repeats the run; flags given with it
override it). Rerunning with the same --out resumes after the last finished frame.

--preset paper is manuelruder/artistic-videos' code (VIDEO_PRESETS, ArtisticVideosLoss): its objective
(neural-style's on the Caffe input, max pooling, TV 1e-3 in the gradient only), frame 0 from noise,
2000 / 1000 iterations with its stop rule, L-BFGS memory 100, closestFirst long-term weights,
multi-pass 100 per pass with the temporal loss from pass 8; 350 px (--objective dfijax: the project's
objective). --temporal-weight is in Ruder's units (dfijax.style.video.TemporalLoss).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import numpy as np

from dfijax import config, report
from dfijax import images as im
from dfijax.progress import Bars
from dfijax.style import video as vid
from dfijax.style.video import VIDEO_PRESETS, VideoConfig
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[VideoConfig, runner.FLAT] = VideoConfig()
    saved_config: Annotated[str | None, config.flag("config")] = None
    """repeat a run: its config.json (flags given here still override it)"""
    video: str | None = None
    """video file or folder of frames (default: an embedded procedural clip)"""
    clip: Literal["pan", "occlusion"] = "pan"
    """embedded clip: a camera pan with a moving ball, or a bar sweeping over a still scene"""
    style: tuple[str, ...] = ()
    """style images (default: an embedded procedural painting)"""
    frames: Annotated[int | None, config.POSITIVE] = None
    """at most this many frames (default: all; 8 for the embedded clip)"""
    stride: Annotated[int, config.POSITIVE] = 1
    """use every n-th frame"""
    format: Literal["gif", "mp4"] = "gif"
    """the stylised video's file format"""
    fps: Annotated[float, config.Bounds(gt=0)] = 8.0
    """frames per second of the written videos"""
    weights: str | None = None
    """converted weights (.safetensors); default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder (default runs/video_style/<time>); an existing one resumes"""


def run(args: Args, ctx: runner.Context) -> runner.Outputs:

    cfg = args.config
    frames = vid.load_clip(args.video, cfg.size, args.frames, args.stride, args.clip, cfg.seed)
    n, h, w = frames.shape[:3]
    styles = [im.load_image(p, min(h, w)) for p in args.style] or [im.synthetic_painting(cfg.size, cfg.size, seed=3)]
    weights = ctx.load_weights(args.weights, cfg.seed)
    out = ctx.out()
    done, save = vid.frame_store(out / "frames", n)
    ctx.say(
        f"device: {ctx.device}; {n} frames at {h}x{w}; offsets {cfg.offsets}; temporal weight "
        f"{cfg.temporal_weight_for(weights.pretrained):g}; colour {cfg.preserve_color}; output {out}"
        + (f"; resuming after frame {len(done) - 1}" if done else "")
    )
    with Bars() as bars:
        r = vid.run_video_style(cfg, weights, frames, styles, progress=bars.update, done=done, on_frame=save)
    vid.write_pictures(out, r.pictures(args.format), args.fps)
    tables = r.tables()
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
    print("flicker (mean squared warping error): " + ", ".join(f"{k} {v:.3g}" for k, v, _ in tables["flicker"]["rows"]))
    for j, v in r.long_range.items():
        print(f"long-range error {j}: " + ", ".join(f"{k} {e:.3g}" for k, e in v.items()))
    text = f"; temporal weight {r.temporal_weight:g}, offsets J = {list(cfg.offsets)}, colour {cfg.preserve_color}."
    sections = [
        {"title": "Clips", "images": ["compare.gif"], "text": " | ".join(r.compared()) + text},
        {
            "title": "Flicker (warping error between consecutive frames, reliable pixels)",
            "images": ["flicker.png"],
            "pixelated": False,
            "table": tables["flicker"],
            "text": "Reliable pixels per pair: " + ", ".join(f"{f:.2f}" for f in r.reliable_fraction),
        },
    ]
    if tables["long_range"]["rows"]:
        sections.append({"title": "Long-range error (frames j apart)", "table": tables["long_range"]})
    if r.multipass_flicker_per_pass:
        text = ", ".join(f"{f:.3g}" for f in r.multipass_flicker_per_pass)
        sections.append({"title": "Multi-pass flicker per pass", "text": text})
    video_text = args.video or f"embedded procedural clip ({args.clip}, dfijax.style.video)"
    style_text = list(args.style) or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"]
    return runner.Outputs(
        title="Video style transfer (Ruder et al.)",
        results={**r.measures(), "video": video_text, "style": style_text},
        sections=sections,
        files=[f"stylized.{args.format}", "compare.gif"],
        data=f"{video_text}; {n} frames at {h}x{w}",
        seconds={k: v for k, v in r.seconds.items() if v is not None},
    )


main, parse = runner.Experiment("video_style", Args, run, __doc__, VIDEO_PRESETS).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
