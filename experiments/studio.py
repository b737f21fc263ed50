"""dfijax studio: edit your own photos, mix faces and stylise interactively in the browser.

    python -m experiments.studio                                   # embedded faces, http://127.0.0.1:7860
    python -m experiments.studio --weights weights/vgg19.safetensors --dataset celeba --data-dir data/celeba
    python -m experiments.studio --fusion runs/fusion/default --fast-style runs/fast_style/default
    python -m experiments.studio --host 0.0.0.0 --auth me:secret   # reachable from other machines

Tabs: Edit a face (DFI on an uploaded or embedded face: check the eyes and the attributes the probe
reads, pick edits; the whole α ladder is inverted in one compiled call and a slider scrubs it; the
full-resolution photo is a download), Mix two faces (a trained fusion GAN), Stylise (Gatys, or a
trained fast-style network), Domain transfer (a trained DTN). A tab without a trained run under --runs
says which command trains one. The page header says which weights (pretrained or NOT), faces and
device. Compute-bound requests queue, one at a time per device. Binding another interface than
127.0.0.1 prints a warning: the app has no authentication unless --auth is given.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from dfijax import config, mesh
from dfijax.runtime import cache_root
from dfijax.studio.session import StudioConfig
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[StudioConfig, runner.FLAT] = StudioConfig()
    host: str = "127.0.0.1"
    """interface to bind (the default, loopback, serves this machine only)"""
    port: Annotated[int, config.Bounds(ge=0, le=65535)] = 7860
    """port (0: a free one)"""
    share: bool = False
    """also open a public Gradio share link"""
    auth: str | None = None
    """user:pass required to open the page"""
    disk_cache: Annotated[bool, config.flag("cache")] = True
    """keep the feature, vector and probe caches on disk"""


def run(args: Args, ctx: runner.Context) -> None:
    if args.auth is not None and ":" not in args.auth:
        raise ValueError("--auth takes user:pass")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError('the studio needs Gradio: pip install -e ".[app]"') from None

    from dfijax.studio import app, session

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        unguarded = "" if args.auth else " (it has no authentication: pass --auth user:pass)"
        ctx.say(f"warning: serving on {args.host}: anyone who can reach this port can use the app{unguarded}")
    cache = str(cache_root()) if args.disk_cache else None
    studio = session.Studio(dataclasses.replace(args.config, cache=cache))
    faces = studio.data.describe()  # a dataset error first, before any other work
    ctx.load_weights(args.config.weights, args.config.seed)  # says plainly what the weights are
    ctx.say(f"device: {ctx.device}; faces: {faces}")
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    kw = dict(host=args.host, port=args.port or None, share=args.share, auth=auth)
    app.launch(app.build(studio), **kw, devices=mesh.local_device_count())


main, parse = runner.Experiment("studio", Args, run, __doc__).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
