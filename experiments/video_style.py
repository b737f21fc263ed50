"""Style transfer for videos with temporal consistency (Ruder et al. 2016), on the shared engine.

    python -m experiments.video_style                                  # embedded moving clip + painting, ~1 min on CPU
    python -m experiments.video_style --clip occlusion --offsets 1,2,4 # long-term consistency on an occlusion clip
    python -m experiments.video_style --multipass 7                    # also the multi-pass algorithm
    python -m experiments.video_style --video clip.mp4 --style starry.jpg --preset paper --format mp4

Reads a video file (anything OpenCV decodes) or a folder of frames; computes dense optical flow both
ways (OpenCV DIS, or Farneback) between each frame and the earlier frames the temporal loss uses
(--offsets: 1 is the short-term loss, e.g. 1,2,4 the long-term one, with flow computed directly
between the two frames) and Ruder's reliability masks; stylises frame 0 from its content, then each
later frame from the previous output warped onto it, with the temporal loss towards the earlier
outputs warped onto it (the single-pass algorithm). --multipass N adds the multi-pass algorithm (N
alternating passes starting from the per-frame stylisation). For comparison it stylises every frame
independently (all frames in one vmapped engine call) and measures flicker: the mean squared warping
error between consecutive outputs over reliable pixels, and the long-range error between frames j
apart (j in the offsets > 1). Writes, under runs/video_style/<time>/ (or --out): compare.gif
(content | per-frame | temporal | multi-pass), stylized.gif (or .mp4), frames/*.png, flicker.png,
report.html and results.json. Rerunning with the same --out resumes after the last finished frame.

--preset quick (default, on any device): 64 px, 60 iterations for frame 0, 30 after, 20 per pass.
--preset paper: artistic-videos' counts, 2000 for frame 0, 1000 after, 100 per pass (15 passes,
temporal loss from pass 8), 350 px short side. Explicit flags override the preset.

--temporal-weight auto is Ruder's 1e3 (multi-pass: 5e2) with pretrained weights: our temporal loss
is theirs, the size-averaged MSE on 0-255 pixels (see dfijax.style.video.TemporalLoss). With the seeded
random VGG-19, whose style losses are ~1e8 smaller, 1e3 freezes the warped frame; auto is then
1e-6 (multi-pass 5e-7), set on the embedded clips (flicker /100 and more at a style objective
within ~1.7x of per-frame stylisation).
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments import common


PRESETS = {
    "quick": dict(size=64, iters_first=60, iters=30, pass_iters=20, temporal_after=2),
    "paper": dict(size=350, iters_first=2000, iters=1000, pass_iters=100, temporal_after=8),
}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", help="video file or folder of frames (default: an embedded procedural clip)")
    p.add_argument("--clip", choices=["pan", "occlusion"], default="pan",
                   help="embedded clip: a camera pan with a moving ball, or a bar sweeping over a still scene")
    p.add_argument("--style", nargs="*", help="style images (default: an embedded procedural painting)")
    p.add_argument("--blend", help="weights for several style images, e.g. 0.7,0.3")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="iteration counts and size (see above)")
    p.add_argument("--size", type=int, help="frame short side in pixels (preset)")
    p.add_argument("--frames", type=int, default=None, help="at most this many frames (default: all; 8 for the embedded clip)")
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--iters-first", type=int, help="iterations for frame 0 and the per-frame baseline (preset)")
    p.add_argument("--iters", type=int, help="iterations for each later frame (preset)")
    p.add_argument("--offsets", default="1", help="earlier frames J of the temporal loss: 1 (short-term) or e.g. 1,2,4 (long-term)")
    p.add_argument("--temporal-weight", default="auto", help="weight of the temporal loss (Ruder's units); auto: see above")
    p.add_argument("--multipass", type=int, default=0, help="also run the multi-pass algorithm with this many passes (0: off)")
    p.add_argument("--pass-iters", type=int, help="iterations per frame and pass (preset)")
    p.add_argument("--temporal-after", type=int, help="multi-pass: temporal loss from this pass on (preset; paper 8)")
    p.add_argument("--blend-weight", type=float, default=1.0, help="multi-pass: weight of the warped neighbour in each "
                   "frame's start (1: delta = 0.5 on reliable pixels)")
    p.add_argument("--flow", choices=["dis", "farneback"], default="dis")
    p.add_argument("--pooling", choices=["avg", "max"], default="avg")
    p.add_argument("--tv", type=float, default=0.0, help="TV^2 weight on the 0-255 scale")
    p.add_argument("--no-baseline", action="store_true", help="skip the per-frame comparison")
    p.add_argument("--format", choices=["gif", "mp4"], default="gif")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/video_style/<time>); an existing one resumes")
    args = p.parse_args(argv)
    for k, v in PRESETS[args.preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def plot_flicker(path: pathlib.Path, series: dict[str, np.ndarray]) -> None:
    recs = [{"step": t + 1, **{k: float(v[t]) for k, v in series.items()}} for t in range(len(next(iter(series.values()))))]
    common.plot_losses(path, recs, keys=tuple(series), log=True)


def write_report(out: pathlib.Path, res: dict) -> None:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['mean']:.3g}</td><td>{v['rmse_255']:.2f}</td></tr>"
                   for k, v in res["flicker"].items())
    pre = "" if res["weights_pretrained"] else "<p><b>Weights: a seeded random VGG-19 (not pretrained).</b> " \
                                               "The pictures show what the method does, not what trained features give.</p>"
    lr = "".join(f"; long-range error {html.escape(j)}: " + ", ".join(f"{html.escape(k)} {e:.3g}" for k, e in v.items())
                 for j, v in res["long_range_error"].items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>video style transfer</title></head><body>
<h1>Video style transfer (Ruder et al.)</h1>{pre}
<p>{html.escape(res['video'])}; {res['n_frames']} frames at {res['frame_size'][0]}x{res['frame_size'][1]}; temporal weight
{res['temporal_weight']:g}; flow {res['settings']['flow']}; device {html.escape(res['device'])}.</p>
<p><img src="compare.gif" style="image-rendering: pixelated; width: 90%"></p>
<p>{html.escape(' | '.join(['content'] + [k for k in ('per-frame', 'with temporal loss', 'multi-pass') if k in res['flicker']]))}</p>
<p>Temporal loss offsets J = {res['offsets']}{lr}</p>
<h2>Flicker (warping error between consecutive frames, reliable pixels)</h2>
<table border="1" cellpadding="4"><tr><th>video</th><th>mean squared error (RGB in [0, 1])</th><th>RMSE on 0-255</th></tr>{rows}</table>
<p><img src="flicker.png"></p>
<p>Reliable pixels per pair: {', '.join(f'{m:.2f}' for m in res['reliable_fraction'])}</p>
</body></html>"""
    (out / "report.html").write_text(page)


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    from dfijax import images as im
    from dfijax import invert as inv
    from dfijax import style
    from dfijax.style import video as vid
    from dfijax.vgg import VGG19

    device = common.setup()
    try:
        if args.size < 32 or args.iters < 1 or args.iters_first < 1 or args.pass_iters < 1:
            raise ValueError("--size must be >= 32 and --iters, --iters-first, --pass-iters >= 1")
        if args.multipass < 0 or args.multipass == 1:
            raise ValueError(f"--multipass must be 0 (off) or >= 2 passes, got {args.multipass}")
        try:
            offsets = vid.check_offsets(args.offsets.split(","))
        except vid.VideoError as e:
            raise ValueError(f"--offsets: {e}") from None
        if args.video:
            frames = vid.read_frames(args.video, args.size, args.frames, args.stride)
        else:
            make = vid.occlusion_clip if args.clip == "occlusion" else vid.synthetic_clip
            frames = make(args.frames or 8, args.size, args.size, seed=args.seed)
        if len(frames) < 2:
            raise ValueError(f"{args.video} has {len(frames)} frame; a video needs at least 2")
        if min(frames.shape[1:3]) < 32:
            raise ValueError(f"frames are {frames.shape[1]}x{frames.shape[2]}; use --size 32 or more")
        styles = ([im.load_image(p, min(frames.shape[1:3])) for p in args.style] if args.style
                  else [im.synthetic_painting(args.size, args.size, seed=3)])
        blend = [float(b) for b in args.blend.split(",")] if args.blend else None
        weights = common.load_weights(args.weights, args.seed)
        if args.temporal_weight == "auto":
            tw = 1e3 if weights.pretrained else 1e-6
        else:
            tw = float(args.temporal_weight)
            if not np.isfinite(tw) or tw < 0:
                raise ValueError(f"--temporal-weight must be a non-negative number or auto, got {args.temporal_weight}")
        multi = (vid.MultiPass(inv.SolverConfig(maxiter=args.pass_iters), args.multipass, args.temporal_after,
                               tw / 2, args.blend_weight) if args.multipass else None)
    except (ValueError, FileNotFoundError, im.ImageError) as e:  # VideoError is a ValueError
        return common.fail(str(e))
    out = common.out_dir(args.out, "video_style")
    loss = style.StyleLoss(model=VGG19(pooling=args.pooling), tv_weight=args.tv)
    try:
        targets = style.style_targets(loss, weights.variables, frames, styles, blend)
    except ValueError as e:
        return common.fail(str(e))
    n, h, w = frames.shape[:3]
    print(f"device: {device}; {n} frames at {h}x{w}; offsets {offsets}; temporal weight {tw:g}; output {out}",
          file=sys.stderr)
    t0 = time.perf_counter()
    pairs = vid.offset_pairs(frames, offsets, args.flow, following=multi is not None)
    consecutive = [pairs[(t, t - 1)] for t in range(1, n)]
    flow_s = time.perf_counter() - t0
    first, later = inv.SolverConfig(maxiter=args.iters_first), inv.SolverConfig(maxiter=args.iters)

    fdir = out / "frames"
    fdir.mkdir(exist_ok=True)
    done = []
    while (fdir / f"temporal_{len(done):04d}.npy").exists() and len(done) < n:
        done.append(np.load(fdir / f"temporal_{len(done):04d}.npy"))
    if done:
        print(f"resuming after frame {len(done) - 1}", file=sys.stderr)
    t1 = time.perf_counter()
    with tqdm(total=n, initial=len(done), desc="single pass", unit="frame", file=sys.stderr) as bar:
        def save(t, img, r):
            im.save_image(fdir / f"temporal_{t:04d}.png", img)
            np.save(fdir / f"temporal_{t:04d}.npy", img)
            bar.update(1)

        temporal = np.stack(vid.stylize_sequence(loss, weights.variables, frames, targets, pairs, first, later, tw,
                                                 done=done, on_frame=save, offsets=offsets))
    temporal_s = time.perf_counter() - t1

    videos = {"input video": frames, "with temporal loss": temporal}
    per_frame, per_frame_s, multipass, multi_s, pass_flicker = None, None, None, None, []
    if not args.no_baseline or multi is not None:
        t2 = time.perf_counter()
        with tqdm(total=args.iters_first, desc="per-frame (all frames in one call)", unit="it", file=sys.stderr) as bar:
            r = inv.invert(loss, weights.variables, targets, jnp.asarray(frames), first,
                           progress=lambda k, l: bar.update(k - bar.n), check_every=5)
            per_frame = np.clip(np.asarray(r.images), 0, 1)
        per_frame_s = time.perf_counter() - t2
        for t in range(n):
            im.save_image(fdir / f"per_frame_{t:04d}.png", per_frame[t])
        videos["per-frame"] = per_frame
    if multi is not None:
        t3 = time.perf_counter()
        with tqdm(total=multi.passes, initial=1, desc="multi-pass", unit="pass", file=sys.stderr) as bar:
            def passed(p, outs):
                pass_flicker.append(float(vid.warping_errors(np.stack(outs), consecutive).mean()))
                bar.update(0 if p == 1 else 1)

            multipass = np.stack(vid.stylize_multipass(loss, weights.variables, frames, targets, pairs, multi,
                                                       first=per_frame, on_pass=passed))
        multi_s = time.perf_counter() - t3
        for t in range(n):
            im.save_image(fdir / f"multipass_{t:04d}.png", multipass[t])
        videos["multi-pass"] = multipass
    results_flicker = {k: vid.warping_errors(v, consecutive) for k, v in videos.items()}
    long_range = {f"j={j}": {k: float(vid.long_range_errors(v, pairs, j).mean()) for k, v in videos.items()}
                  for j in offsets if 1 < j < n}

    def style_loss(x):
        return [float(loss(jnp.asarray(x[t]), weights.variables, {k: v[t] for k, v in targets.items()})) for t in range(n)]

    ext = args.format
    vid.write_video(out / f"stylized.{ext}", temporal, args.fps)
    cols = [frames] + [v for k, v in videos.items() if k in ("per-frame",)] + [temporal] + (
        [multipass] if multipass is not None else [])
    vid.write_video(out / "compare.gif", [np.concatenate([c[t] for c in cols], axis=1) for t in range(n)], args.fps)
    plot_flicker(out / "flicker.png", results_flicker)
    res = {
        "experiment": "video_style", "settings": vars(args), "device": device, "weights": weights.description,
        "weights_pretrained": weights.pretrained, "temporal_weight": tw, "offsets": list(offsets),
        "multipass": ({**dataclasses.asdict(multi), "config": None, "pass_iters": args.pass_iters}
                      if multi is not None else None),
        "video": args.video or f"embedded procedural clip ({args.clip}, dfijax.style.video)",
        "style": args.style or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"],
        "n_frames": n, "frame_size": [h, w], "resumed_after_frames": len(done),
        "reliable_fraction": [float(p.mask.mean()) for p in consecutive],
        "flicker": {k: {"per_pair": v.tolist(), "mean": float(v.mean()), "rmse_255": float(255 * np.sqrt(v.mean()))}
                    for k, v in results_flicker.items()},
        "long_range_error": long_range,
        "multipass_flicker_per_pass": pass_flicker,
        "style_objective": {k: style_loss(v) for k, v in videos.items() if k != "input video"},
        "seconds": {"flow": flow_s, "temporal": temporal_s, "per_frame": per_frame_s, "multipass": multi_s},
    }
    common.write_json(out / "results.json", res)
    write_report(out, res)
    summary = ", ".join(f"{k} {v['mean']:.3g}" for k, v in res["flicker"].items())
    print(f"flicker (mean squared warping error): {summary}")
    for j, v in long_range.items():
        print(f"long-range error {j}: " + ", ".join(f"{k} {e:.3g}" for k, e in v.items()))
    print(f"wrote {out / 'report.html'}, {out / f'stylized.{ext}'}, {out / 'compare.gif'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
