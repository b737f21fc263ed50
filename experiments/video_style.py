"""Style transfer for videos with temporal consistency (Ruder et al. 2016), on the shared engine.

    python -m experiments.video_style                                  # embedded moving clip + painting, ~1 min on CPU
    python -m experiments.video_style --video clip.mp4 --style starry.jpg --size 256 --frames 60
    python -m experiments.video_style --video frames/ --style s.jpg --temporal-weight 1e3 --format mp4

Reads a video file (anything OpenCV decodes) or a folder of frames; computes dense optical flow both
ways between consecutive frames (OpenCV DIS, or Farneback) and Ruder's reliability masks
(forward-backward consistency and motion boundaries); stylises frame 0 from its content with Gatys'
loss, then each later frame from the previous output warped onto it, with the short-term temporal
loss (weighted MSE to that warped frame). For comparison it also stylises every frame independently
(all frames in one vmapped engine call) and measures flicker for both: the mean squared warping error
between consecutive outputs over reliable pixels. Writes, under runs/video_style/<time>/ (or --out):
compare.gif (content | per-frame | temporal), stylized.gif (or .mp4), frames/*.png, flicker.png,
report.html and results.json. Rerunning with the same --out resumes after the last finished frame.

--temporal-weight auto is Ruder's 1e3 (on the 0–255 pixel scale) with pretrained weights; with the
seeded random VGG-19, whose Gram losses are ~1e8 smaller, it is 1e-6 (on the embedded clip: flicker
/200 at a style loss within a few % of per-frame stylisation; 1e3 there freezes the warped frame).
"""

from __future__ import annotations

import argparse
import html
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments import common


def parse(argv):
    gpu = jax.default_backend() != "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", help="video file or folder of frames (default: an embedded procedural moving clip)")
    p.add_argument("--style", nargs="*", help="style images (default: an embedded procedural painting)")
    p.add_argument("--blend", help="weights for several style images, e.g. 0.7,0.3")
    p.add_argument("--size", type=int, default=256 if gpu else 64, help="frame short side in pixels")
    p.add_argument("--frames", type=int, default=None, help="at most this many frames (default: all; 8 for the embedded clip)")
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--iters-first", type=int, default=500 if gpu else 60, help="iterations for frame 0 (and per-frame)")
    p.add_argument("--iters", type=int, default=200 if gpu else 30, help="iterations for each later frame")
    p.add_argument("--temporal-weight", default="auto", help="weight of the temporal loss (0-255 scale); auto: see above")
    p.add_argument("--flow", choices=["dis", "farneback"], default="dis")
    p.add_argument("--pooling", choices=["avg", "max"], default="avg")
    p.add_argument("--tv", type=float, default=0.0, help="TV^2 weight on the 0-255 scale")
    p.add_argument("--no-baseline", action="store_true", help="skip the per-frame comparison")
    p.add_argument("--format", choices=["gif", "mp4"], default="gif")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/video_style/<time>); an existing one resumes")
    return p.parse_args(argv)


def plot_flicker(path: pathlib.Path, series: dict[str, np.ndarray]) -> None:
    recs = [{"step": t + 1, **{k: float(v[t]) for k, v in series.items()}} for t in range(len(next(iter(series.values()))))]
    common.plot_losses(path, recs, keys=tuple(series), log=True)


def write_report(out: pathlib.Path, res: dict) -> None:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['mean']:.3g}</td><td>{v['rmse_255']:.2f}</td></tr>"
                   for k, v in res["flicker"].items())
    pre = "" if res["weights_pretrained"] else "<p><b>Weights: a seeded random VGG-19 (not pretrained).</b> " \
                                               "The pictures show what the method does, not what trained features give.</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>video style transfer</title></head><body>
<h1>Video style transfer (Ruder et al.)</h1>{pre}
<p>{html.escape(res['video'])}; {res['n_frames']} frames at {res['frame_size'][0]}x{res['frame_size'][1]}; temporal weight
{res['temporal_weight']:g}; flow {res['settings']['flow']}; device {html.escape(res['device'])}.</p>
<p><img src="compare.gif" style="image-rendering: pixelated; width: 90%"></p>
<p>content | per-frame stylisation | with the temporal loss</p>
<h2>Flicker (warping error between consecutive frames, reliable pixels)</h2>
<table border="1" cellpadding="4"><tr><th>video</th><th>mean squared error (RGB in [0, 1])</th><th>RMSE on 0-255</th></tr>{rows}</table>
<p><img src="flicker.png"></p>
<p>Reliable pixels per pair: {', '.join(f'{m:.2f}' for m in res['reliable_fraction'])}</p>
</body></html>"""
    (out / "report.html").write_text(page)


def main(argv=None) -> int:
    args = parse(argv)
    from dfijax import images as im
    from dfijax import invert as inv
    from dfijax import style
    from dfijax import video as vid
    from dfijax.vgg import VGG19

    device = common.setup()
    try:
        if args.size < 32 or args.iters < 1 or args.iters_first < 1:
            raise ValueError("--size must be >= 32 and --iters, --iters-first >= 1")
        if args.video:
            frames = vid.read_frames(args.video, args.size, args.frames, args.stride)
        else:
            frames = vid.synthetic_clip(args.frames or 8, args.size, args.size, seed=args.seed)
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
    except (ValueError, FileNotFoundError, im.ImageError) as e:  # VideoError is a ValueError
        return common.fail(str(e))
    out = common.out_dir(args.out, "video_style")
    loss = style.StyleLoss(model=VGG19(pooling=args.pooling), tv_weight=args.tv)
    try:
        targets = style.style_targets(loss, weights.variables, frames, styles, blend)
    except ValueError as e:
        return common.fail(str(e))
    n, h, w = frames.shape[:3]
    print(f"device: {device}; {n} frames at {h}x{w}; temporal weight {tw:g}; output {out}", file=sys.stderr)
    t0 = time.perf_counter()
    pairs = vid.frame_pairs(frames, args.flow)
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
    with tqdm(total=n, initial=len(done), desc="temporal", unit="frame", file=sys.stderr) as bar:
        def save(t, img, r):
            im.save_image(fdir / f"temporal_{t:04d}.png", img)
            np.save(fdir / f"temporal_{t:04d}.npy", img)
            bar.update(1)

        temporal = np.stack(vid.stylize_sequence(loss, weights.variables, frames, targets, pairs, first, later, tw,
                                                 done=done, on_frame=save))
    temporal_s = time.perf_counter() - t1

    results_flicker = {"input video": vid.warping_errors(frames, pairs), "with temporal loss": vid.warping_errors(temporal, pairs)}
    per_frame, per_frame_s = None, None
    if not args.no_baseline:
        t2 = time.perf_counter()
        with tqdm(total=args.iters_first, desc="per-frame (all frames in one call)", unit="it", file=sys.stderr) as bar:
            r = inv.invert(loss, weights.variables, targets, jnp.asarray(frames), first,
                           progress=lambda k, l: bar.update(k - bar.n), check_every=5)
            per_frame = np.clip(np.asarray(r.images), 0, 1)
        per_frame_s = time.perf_counter() - t2
        for t in range(n):
            im.save_image(fdir / f"per_frame_{t:04d}.png", per_frame[t])
        results_flicker["per-frame"] = vid.warping_errors(per_frame, pairs)

    def style_loss(x):
        return [float(loss(jnp.asarray(x[t]), weights.variables, {k: v[t] for k, v in targets.items()})) for t in range(n)]

    ext = args.format
    vid.write_video(out / f"stylized.{ext}", temporal, args.fps)
    cols = [frames] + ([per_frame] if per_frame is not None else []) + [temporal]
    vid.write_video(out / "compare.gif", [np.concatenate([c[t] for c in cols], axis=1) for t in range(n)], args.fps)
    plot_flicker(out / "flicker.png", results_flicker)
    res = {
        "experiment": "video_style", "settings": vars(args), "device": device, "weights": weights.description,
        "weights_pretrained": weights.pretrained, "temporal_weight": tw,
        "video": args.video or "embedded procedural moving clip (dfijax.video.synthetic_clip)",
        "style": args.style or ["embedded procedural painting (dfijax.images.synthetic_painting, seed 3)"],
        "n_frames": n, "frame_size": [h, w], "resumed_after_frames": len(done),
        "reliable_fraction": [float(p.mask.mean()) for p in pairs],
        "flicker": {k: {"per_pair": v.tolist(), "mean": float(v.mean()), "rmse_255": float(255 * np.sqrt(v.mean()))}
                    for k, v in results_flicker.items()},
        "style_objective": {"with temporal loss": style_loss(temporal),
                            **({"per-frame": style_loss(per_frame)} if per_frame is not None else {})},
        "seconds": {"flow": flow_s, "temporal": temporal_s, "per_frame": per_frame_s},
    }
    common.write_json(out / "results.json", res)
    write_report(out, res)
    summary = ", ".join(f"{k} {v['mean']:.3g}" for k, v in res["flicker"].items())
    print(f"flicker (mean squared warping error): {summary}")
    print(f"wrote {out / 'report.html'}, {out / f'stylized.{ext}'}, {out / 'compare.gif'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
