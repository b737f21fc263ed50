"""A trained DTN as a function G(x): its run folder holds the networks, and f beside them.

`save_f` writes what G needs of the frozen f next to a run (digits: the classifier's parameters;
faces: the feature standardisation, the VGG-19 being the caller's); `load_translator` reads a run
folder back as a `Translator` whose `__call__` maps source images to G(x).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from dfijax.dtn import train as T

F_FILE = "f_params.msgpack"  # beside a run's folder (out/), shared by the runs in it


def save_f(out: str | os.PathLike, f_params: Any) -> pathlib.Path:
    """Write f's parameters into `out` (the pipeline's output folder), without the VGG-19 variables
    of a faces f (they are the weights file's)."""
    tree = {k: v for k, v in f_params.items() if k != "vgg"} if "vgg" in f_params else f_params
    path = pathlib.Path(out) / F_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serialization.msgpack_serialize(jax.tree.map(np.asarray, tree)))
    return path


@dataclasses.dataclass
class Translator:
    """G of a trained run: config, the networks, f's parameters and the trained state."""

    config: T.DTNConfig
    dtn: T.DTN
    f_params: Any
    state: T.DTNState
    step: int

    @property
    def size(self) -> int:
        return self.dtn.g.size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """[N, S, S, 3] in [0, 1] (S = size) -> G(x), the same shape."""
        return T.translate(self.dtn, self.f_params, self.state.g.params, x, g_stats=self.state.g_stats)


def load_translator(run: str | os.PathLike, vgg_variables: Any = None) -> Translator:
    """A run folder written by the DTN pipelines (out/dtn, or out itself) -> its Translator.
    vgg_variables: the VGG-19's, for a faces DTN. One-line errors: FileNotFoundError (no run, or no
    f saved beside it), ValueError (a faces run without VGG variables)."""
    run = pathlib.Path(run)
    if (run / "dtn" / "config.json").is_file():  # a pipeline's output folder: its full DTN run
        run = run / "dtn"
    f_file = next((p / F_FILE for p in (run, run.parent) if (p / F_FILE).is_file()), None)
    if f_file is None:
        raise FileNotFoundError(
            f"no trained DTN in {run} (no {F_FILE} beside it): train one with python -m experiments.train_dtn"
        )
    try:
        config, state = T.restore(run)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; train one with python -m experiments.train_dtn") from None
    f_params = jax.tree.map(jnp.asarray, serialization.msgpack_restore(f_file.read_bytes()))
    if config.domain == "faces":
        if vgg_variables is None:
            raise ValueError("a faces DTN needs the VGG-19 it was trained with: pass its variables")
        f_params = {"vgg": vgg_variables, **f_params}
    return Translator(config, config.build(), f_params, state, int(state.g.step))
