"""The studio's latency, through its HTTP API, against the same library calls made directly.

    python -m benchmarks.bench_studio --size 64 --iters 100 --out benchmarks/results/studio_cpu.json

Starts the studio on a free localhost port (embedded faces, the weights found or the seeded random
VGG-19, a cpu_small fusion checkpoint trained for one step: timing does not depend on training) and
times with gradio_client: pressing Edit for the 10-alpha ladder (first press: probe, neighbour
features, attribute vector and compilation included; then presses on other photos, compiled),
moving the α slider, and one fusion slider update. Beside each, the library call the handler makes
(`dfi.run_sweep`, `fusion.run_fuse`) timed in the same process: the ratio is the studio's overhead.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="DFI working size")
    p.add_argument("--iters", type=int, default=100, help="L-BFGS iterations per Edit")
    p.add_argument("--presses", type=int, default=3, help="compiled Edit presses timed (other photos)")
    p.add_argument("--out", help="write the JSON here too")
    args = p.parse_args(argv)

    import numpy as np
    from gradio_client import Client, handle_file

    from dfijax import fusion, runtime
    from dfijax import images as im
    from dfijax.dfi import sweep
    from dfijax.studio import app
    from dfijax.studio import session as S

    runtime.enable_compilation_cache()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-studio-"))
    cfg = fusion.training_config(stage1_steps=1, stage2_steps=0)
    studio = S.Studio(
        S.StudioConfig(size=args.size, iters=args.iters, runs=str(work / "runs"), cache=str(work / "cache"))
    )
    data = fusion.load_data("synthetic", n_synthetic=64, holdout=cfg.holdout)
    fusion.run_training(cfg, data, studio.weights.variables, work / "runs" / "fusion" / "bench")
    demo = app.build(studio, work / "examples")
    _, url, _ = app.launch(demo, port=None, block=False, quiet=True)
    client = Client(url, verbose=False)
    faces = [str(im.save_image(work / f"face{i}.png", studio.face_example(i, 192))) for i in range(args.presses + 1)]

    def press(path):
        t0 = time.perf_counter()
        client.predict(handle_file(path), "", "auto", ["Smiling+"], "dfijax", args.iters, 0.5, api_name="/edit")
        return time.perf_counter() - t0

    first = press(faces[0])
    presses = [press(f) for f in faces[1:]]
    t0 = time.perf_counter()
    for a in studio.config.ladder:
        client.predict(a, api_name="/alpha")
    scrub = (time.perf_counter() - t0) / len(studio.config.ladder)
    # the same sweep as the handler's, called directly (compiled: same shapes)
    photo = im.load_image(faces[-1])
    c = studio.sweep_config("dfijax", "Smiling+")
    crops = sweep.prepare_photos([photo], studio.data, c.size)
    pred, _ = sweep.predict_photo_attrs(studio.probe(), crops.images, studio.data)
    inputs = sweep.photo_inputs(crops.images, "auto", studio.data, ["photo"], pred)
    t0 = time.perf_counter()
    sweep.run_sweep(c, studio.data, studio.weights, inputs, cache_root=studio.cache_root())
    direct = time.perf_counter() - t0

    run = studio.find_runs("fusion")[0]
    fa, fb = faces[0], faces[1]
    lam = [0.5] * 8
    client.predict(run, handle_file(fa), handle_file(fb), False, *lam, api_name="/fuse")  # compile
    fuse_api = []
    for k in range(5):
        lam[k % 5] = 0.2 * k
        t0 = time.perf_counter()
        client.predict(run, handle_file(fa), handle_file(fb), False, *lam, api_name="/fuse")
        fuse_api.append(time.perf_counter() - t0)
    a, b = im.load_image(fa), im.load_image(fb)
    fuse_direct = []
    for k in range(5):
        t0 = time.perf_counter()
        studio.fuse(a, b, [0.2 * k] * 5)
        fuse_direct.append(time.perf_counter() - t0)
    demo.close()
    res = {
        "benchmark": "studio",
        "date": datetime.date.today().isoformat(),
        "device": runtime.device_summary(),
        "command": "python -m benchmarks.bench_studio " + " ".join(argv if argv is not None else sys.argv[1:]),
        "weights": studio.weights.description,
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
        pathlib.Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
