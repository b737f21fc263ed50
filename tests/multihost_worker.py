"""One process of a multi-process test job: runs the named training loops, tiny, one after another in
the same process (one start-up and one runtime for all of them), and saves this process's copy of
each loop's trained state to <out>/<loop>.process<i>.npz.

    python -m tests.multihost_worker --out DIR --loop fast_style [--loop ...] \\
        [--coordinator 127.0.0.1:PORT --num-processes N --process-id I]

A loop is a function (folder) -> a pytree of arrays (its trained state, replicated over the job),
called by every process alike; add one to LOOPS.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any, Callable

import numpy as np

FAST_STYLE_STEPS = 3


def fast_style(folder: pathlib.Path) -> Any:
    """3 fast-style steps, 32 px, global batch 4, a random VGG-19 loss to relu1_2, checkpoints at 2
    and 3."""
    from dfijax.images import synthetic_painting
    from dfijax.style import fast as fs
    from dfijax.weights import random_weights

    cfg = fs.FastStyleConfig(
        width=4,
        blocks=1,
        size=32,
        batch=4,
        content_layer="relu1_2",
        style_layers=("relu1_1", "relu1_2"),
        steps=FAST_STYLE_STEPS,
        save_every=2,
        log_every=1,
    )
    v = random_weights(0).variables
    variables = {**v, "params": {k: p for k, p in v["params"].items() if k.startswith("conv1_")}}
    batches = fs.content_batches(None, cfg.size, cfg.batch, cfg.seed)
    state, _ = fs.train(cfg, variables, synthetic_painting(32, 32, 3), batches, folder)
    return {"params": state.params, "opt_state": state.opt_state, "step": state.step}


DTN_STEPS = 3


def dtn(folder: pathlib.Path) -> Any:
    """3 digits-DTN iterations (one D and one G step each), global batch 4 of 32 px sources and targets
    (seeded noise), a small untrained f, checkpoints at 2 and 3."""
    import jax
    import jax.numpy as jnp

    from dfijax.dtn import train as T
    from dfijax.dtn.config import RunSettings
    from dfijax.dtn.model import DigitClassifier

    run = RunSettings(width=8, d_width=8, batch=4, steps=DTN_STEPS, save_every=2)
    cfg = T.DTNConfig(run, f_width=8, feat_dim=16, log_every=1)
    f = DigitClassifier(width=cfg.f_width, feat_dim=cfg.feat_dim)
    f_params = f.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)))["params"]
    rng = np.random.default_rng(0)
    source, target = rng.uniform(0, 1, (2, 16, 32, 32, 3)).astype(np.float32)
    state, _ = T.train_dtn(cfg, f_params, source, target, folder)
    return {"g": state.g.params, "d": state.d.params, "step": state.g.step}


LOOPS: dict[str, Callable[[pathlib.Path], Any]] = {"fast_style": fast_style, "dtn": dtn}


def flat(tree: Any) -> dict[str, np.ndarray]:
    """A pytree as {path: host array} (this process's copy of replicated arrays)."""
    import jax

    return {jax.tree_util.keystr(k): np.asarray(x) for k, x in jax.tree_util.tree_leaves_with_path(tree)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=pathlib.Path)
    p.add_argument("--loop", action="append", choices=sorted(LOOPS), required=True)
    p.add_argument("--coordinator")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    args = p.parse_args(argv)
    from dfijax import distributed as dist

    info = dist.initialize(args.coordinator, args.num_processes, args.process_id)
    for name in args.loop:
        state = LOOPS[name](args.out / name)
        np.savez(args.out / f"{name}.process{info.index}.npz", **flat(state))
        print(f"{name}: done on process {info.index} of {info.count} ({info.global_devices} devices)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
