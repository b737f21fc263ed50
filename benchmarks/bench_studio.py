"""The studio's latency, through its HTTP API, against the same library calls made directly.

    python -m benchmarks.bench_studio --size 64 --iters 100 --out benchmarks/results/studio_cpu.json
    python -m benchmarks.gpu_defaults --only studio      # on a GPU: 200 px, 300 iterations

Starts the studio on a free localhost port (embedded faces, the weights found or the seeded random
VGG-19, a cpu_small fusion checkpoint trained for one step: timing does not depend on training) and
times with gradio_client: pressing Edit for the 10-alpha ladder (first press: probe, neighbour
features, attribute vector and compilation included; then presses on other photos, compiled),
moving the α slider, and one fusion slider update. Beside each, the library call the handler makes
(`dfi.run_sweep`, `fusion.run_fuse`) timed in the same process: the ratio is the studio's overhead.
Without Gradio installed (a machine without a package index) it times the handlers' own `Studio`
calls instead, and the JSON's "through" says so.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

from dfijax import fusion, runtime
from dfijax import images as im
from dfijax.dfi import sweep, sweep_inputs
from dfijax.studio import session as S


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="DFI working size")
    p.add_argument("--iters", type=int, default=100, help="L-BFGS iterations per Edit")
    p.add_argument("--presses", type=int, default=3, help="compiled Edit presses timed (other photos)")
    p.add_argument("--out", help="also write the JSON: a .json file, or a folder (its bench_studio.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    runtime.enable_compilation_cache()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-studio-"))
    cfg = fusion.training_config(stage1_steps=1, stage2_steps=0)
    studio = S.Studio(
        S.StudioConfig(size=args.size, iters=args.iters, runs=str(work / "runs"), cache=str(work / "cache"))
    )
    data = fusion.load_data("synthetic", n_synthetic=64, holdout=cfg.holdout)
    fusion.run_training(cfg, data, studio.weights.variables, work / "runs" / "fusion" / "bench")
    run = studio.find_runs("fusion")[0]
    faces = [str(im.save_image(work / f"face{i}.png", studio.face_example(i, 192))) for i in range(args.presses + 1)]
    # through the app's HTTP API when Gradio is installed; else the handlers' own library calls
    api = importlib.util.find_spec("gradio_client") is not None and importlib.util.find_spec("gradio") is not None
    if api:
        from gradio_client import Client, handle_file

        from dfijax.studio import app

        demo = app.build(studio, work / "examples")
        _, url, _ = app.launch(demo, port=None, block=False, quiet=True)
        client = Client(url, verbose=False)

        def edit(path):
            client.predict(handle_file(path), "", "auto", ["Smiling+"], "dfijax", args.iters, 0.5, api_name="/edit")

        def fuse(lam):
            client.predict(run, handle_file(faces[0]), handle_file(faces[1]), False, *lam, 0, 0, 0, api_name="/fuse")
    else:

        def edit(path):
            studio.edit(im.load_image(path), "Smiling+", iters=args.iters)

        def fuse(lam):
            studio.fuse(im.load_image(faces[0]), im.load_image(faces[1]), lam, run)

    def timed(fn, *a):
        t0 = time.perf_counter()
        fn(*a)
        return time.perf_counter() - t0

    first = timed(edit, faces[0])
    presses = [timed(edit, f) for f in faces[1:]]
    scrub = None
    if api:
        scrub = timed(lambda: [client.predict(a, api_name="/alpha") for a in studio.config.ladder])
        scrub /= len(studio.config.ladder)
    # the same sweep as the handler's, called directly (compiled: same shapes)
    photo = im.load_image(faces[-1])
    c = studio.sweep_config("dfijax", "Smiling+")
    crops = sweep_inputs.prepare_photos([photo], studio.data, c.size)
    pred, _ = sweep_inputs.predict_photo_attrs(studio.probe(), crops.images, studio.data)
    inputs = sweep_inputs.photo_inputs(crops.images, "auto", studio.data, ["photo"], pred)
    direct = timed(lambda: sweep.run_sweep(c, studio.data, studio.weights, inputs, cache_root=studio.cache_root()))

    fuse([0.5] * 5)  # compile
    fuse_api = [timed(fuse, [0.2 * k] + [0.5] * 4) for k in range(5)]
    a, b = im.load_image(faces[0]), im.load_image(faces[1])
    fuse_direct = [timed(lambda k=k: fusion.run_fuse(studio.fusion_run(run), a, b, [[0.2 * k] * 5])) for k in range(5)]
    if api:
        demo.close()
    res = {
        "benchmark": "studio",
        "date": datetime.date.today().isoformat(),
        "device": runtime.device_summary(),
        "command": "python -m benchmarks.bench_studio " + " ".join(argv if argv is not None else sys.argv[1:]),
        "weights": studio.weights.description,
        "through": "the app's HTTP API (gradio_client)" if api else "Studio's handler calls (Gradio not installed)",
        "dfi": {
            "size": args.size,
            "iters": args.iters,
            "alphas": len(studio.config.ladder),
            "first_press_s": first,
            "press_s": presses,
            "press_median_s": float(np.median(presses)),
            "direct_run_sweep_s": direct,
            "studio_over_direct": float(np.median(presses)) / direct,
            "alpha_slider_s": scrub,
        },
        "fusion": {
            "size": cfg.fusion.size,
            "chunks": cfg.fusion.n_chunks,
            "slider_update_median_s": float(np.median(fuse_api)),
            "direct_median_s": float(np.median(fuse_direct)),
            "studio_over_direct": float(np.median(fuse_api)) / float(np.median(fuse_direct)),
        },
    }
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        out = pathlib.Path(args.out)
        if out.suffix != ".json":
            out.mkdir(parents=True, exist_ok=True)
            out = out / "bench_studio.json"
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
