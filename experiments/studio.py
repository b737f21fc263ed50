"""dfijax studio: edit your own photos, mix faces and stylise interactively in the browser.

    python -m experiments.studio                                   # embedded faces, http://127.0.0.1:7860
    python -m experiments.studio --weights weights/vgg19.safetensors --dataset celeba --data-dir data/celeba
    python -m experiments.studio --fusion runs/fusion/default --fast-style runs/fast_style/default
    python -m experiments.studio --host 0.0.0.0 --auth me:secret   # reachable from other machines

Tabs: Edit a face (DFI: upload or pick a face, check the eyes and the attributes the probe reads, pick
edits, press Edit: the whole α ladder is inverted in one compiled call and the α slider scrubs through
it; the full-resolution photo is a download), Mix two faces (a trained fusion GAN: one slider per
latent chunk), Stylise (Gatys quick/paper with colour preservation, or a trained fast-style network),
Domain transfer (a trained DTN). Trained runs are found under --runs (runs/fusion/*, runs/fast_style/*,
runs/dtn/*); a tab without one says which command trains it. The page header says which weights
(pretrained or NOT), which faces and which device. Compute-bound requests queue, one at a time per
device. The server binds to 127.0.0.1; binding another interface prints a warning: the app has no
authentication unless --auth is given.
"""

from __future__ import annotations

import argparse
import sys

from experiments import common

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: a free one)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    p.add_argument("--auth", help="user:pass required to open the page")
    p.add_argument(
        "--weights", help="converted VGG-19 weights (.safetensors); default: weights/ or a seeded random net"
    )
    p.add_argument("--dataset", choices=["synthetic", "celeba", "celeba-tfds", "lfw"], default="synthetic")
    p.add_argument("--data-dir", help="dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)")
    p.add_argument("--n-synthetic", type=int, default=2000, help="size of the synthetic face set")
    p.add_argument("--size", type=int, default=64, help="DFI working size in pixels")
    p.add_argument("--iters", type=int, default=100, help="DFI L-BFGS iterations per Edit (a field in the page too)")
    p.add_argument("--k", type=int, default=100, help="DFI neighbours in each of the target and source sets")
    p.add_argument("--alphas", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0", help="the α ladder of one Edit")
    p.add_argument("--probe-steps", type=int, default=300, help="attribute probe training steps (cached)")
    p.add_argument("--runs", default="runs", help="where trained runs are looked for")
    p.add_argument("--fusion", help="a fusion run folder to open first")
    p.add_argument("--fast-style", help="a fast-style run folder to open first")
    p.add_argument("--dtn", help="a DTN run folder to open first")
    p.add_argument("--style-size", type=int, default=128, help="Gatys 'quick' size in pixels")
    p.add_argument("--style-iters", type=int, default=100, help="Gatys 'quick' iterations")
    p.add_argument("--max-pixels", type=int, default=24_000_000, help="largest upload accepted, in pixels")
    p.add_argument("--no-cache", action="store_true", help="keep no feature, vector or probe cache on disk")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    from dfijax.studio import session

    auth = None
    if args.auth:
        if ":" not in args.auth:
            return common.fail("--auth takes user:pass")
        auth = tuple(args.auth.split(":", 1))
    try:
        ladder = tuple(float(a) for a in args.alphas.split(",") if a.strip())
    except ValueError:
        return common.fail(f"--alphas must be comma-separated numbers, got {args.alphas!r}")
    try:
        config = session.StudioConfig(
            dataset=args.dataset,
            data_dir=args.data_dir,
            n_synthetic=args.n_synthetic,
            weights=args.weights,
            size=args.size,
            iters=args.iters,
            k=args.k,
            ladder=ladder,
            probe_steps=args.probe_steps,
            runs=args.runs,
            fusion=args.fusion,
            fast_style=args.fast_style,
            dtn=args.dtn,
            style_size=args.style_size,
            style_iters=args.style_iters,
            max_pixels=args.max_pixels,
            cache=None if args.no_cache else str(common.cache_root()),
            seed=args.seed,
        )
    except ValueError as e:
        return common.fail(str(e))
    try:
        import gradio  # noqa: F401
    except ImportError:
        return common.fail('the studio needs Gradio: pip install -e ".[app]"')
    import jax

    from dfijax.data import DataError
    from dfijax.studio import app

    device = common.setup()
    if args.host not in LOOPBACK:
        print(
            f"warning: serving on {args.host}: anyone who can reach this port can use the app"
            + ("" if auth else " (it has no authentication: pass --auth user:pass)"),
            file=sys.stderr,
        )
    try:
        studio = session.Studio(config)
        faces = studio.data.describe()  # a dataset error first, before any other work
        common.load_weights(args.weights, args.seed)  # says plainly what the weights are
        print(f"device: {device}; faces: {faces}", file=sys.stderr)
        demo = app.build(studio)
    except (ValueError, FileNotFoundError, DataError) as e:
        return common.fail(str(e).splitlines()[0])
    app.launch(
        demo, host=args.host, port=args.port or None, share=args.share, auth=auth, devices=jax.local_device_count()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
