"""The training loops (fast style, DTN) on 2 CPU processes of 2 devices each (localhost, gloo collectives) train as on 1
process of 4 devices: one worker run per job (tests/multihost_worker.py) runs every loop in LOOPS, so
the job's start-up and runtime are paid once for all of them."""

import json
import pathlib
import time

import chex
import numpy as np
import pytest

from dfijax import training
from dfijax.dtn import train as dtn_train
from dfijax.style import fast as fs
from tests import multihost as mh
from tests.multihost_worker import DTN_STEPS, FAST_STYLE_STEPS, flat

LOOPS = ("fast_style", "dtn")
TIMEOUT = 240  # seconds per process; the job is killed past it


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"one": 1 process x 4 devices, "two": 2 x 2}: the worker's output folders, and its wall time."""
    base = tmp_path_factory.mktemp("multihost_loops")
    cache = base / "cache"
    cache.mkdir()
    loops = [a for name in LOOPS for a in ("--loop", name)]
    t0 = time.perf_counter()
    jobs = {}
    try:  # both jobs at once: compiling is mostly one core per process
        for name, processes in (("one", 1), ("two", 2)):
            argv = ["-m", "tests.multihost_worker", "--out", str(base / name), *loops]
            jobs[name] = mh.start(argv, processes, 4 // processes, cache)
        errs = {name: mh.wait(procs, TIMEOUT) for name, procs in jobs.items()}
    finally:
        for procs in jobs.values():
            mh.kill(procs)
    return dict(base=base, errs=errs, seconds=time.perf_counter() - t0)


def _saved(folder: pathlib.Path, loop: str, process: int) -> dict[str, np.ndarray]:
    with np.load(folder / f"{loop}.process{process}.npz") as z:
        return dict(z)


@pytest.mark.multiprocess
def test_fast_style_on_two_processes_trains_as_on_one(runs):
    base = runs["base"]
    assert "fast_style: done on process 1 of 2 (4 devices)" in runs["errs"]["two"][1]
    assert "fast_style: done on process 0 of 1 (4 devices)" in runs["errs"]["one"][0]
    one = _saved(base / "one", "fast_style", 0)
    two = [_saved(base / "two", "fast_style", p) for p in range(2)]
    assert int(one["['step']"]) == int(two[0]["['step']"]) == FAST_STYLE_STEPS
    chex.assert_trees_all_equal(two[1], two[0])  # both processes hold the same replicated state
    # The same partitioned program on 4 devices either way; only the cross-process all-reduce (gloo)
    # may add the partial gradients in another order, a float32 rounding difference. A bias right
    # before an instance norm does not change the loss: its gradient is that rounding noise alone
    # (Adam's second moment ~1e-20 against >= 1e-7 elsewhere), which Adam scales to lr-sized steps,
    # so those biases differ by up to a few lr; every parameter the loss depends on agrees.
    nu = {k.replace("['opt_state'][0].nu", "['params']"): v for k, v in one.items() if ".nu[" in k}
    null = {k for k, v in nu.items() if float(np.max(v)) < 1e-14}
    assert null and all(k.endswith("['bias']") and "['in_" not in k and "['out']" not in k for k in null), null
    live = sorted(k for k in one if k.startswith("['params']") and k not in null)
    assert len(live) > len(null) and all(k in live for k in nu if k.endswith("['kernel']"))
    chex.assert_trees_all_close({k: two[0][k] for k in live}, {k: one[k] for k in live}, rtol=1e-5, atol=1e-5)
    # the checkpoint both processes wrote restores to the same parameters
    cfg, params = fs.restore(base / "two" / "fast_style")
    assert cfg.batch == 4 and cfg.steps == FAST_STYLE_STEPS
    got = {k: v for k, v in two[0].items() if k.startswith("['params']")}
    chex.assert_trees_all_close(flat({"params": params}), got)
    # training moved the parameters by far more than the tolerance
    init = flat({"params": fs.initial_state(cfg).params})
    assert init.keys() == got.keys()
    assert max(float(np.max(np.abs(init[k] - got[k]))) for k in got) > 1e-3
    # process 0 alone wrote the log (one record per step) and the settings
    recs = training.MetricsLog(base / "two" / "fast_style" / "metrics.jsonl", enabled=False).records()
    assert [r["step"] for r in recs] == list(range(1, FAST_STYLE_STEPS + 1))
    assert len((base / "two" / "fast_style" / "metrics.jsonl").read_text().splitlines()) == FAST_STYLE_STEPS
    assert json.loads((base / "two" / "fast_style" / "config.json").read_text())["size"] == 32
    ref = training.MetricsLog(base / "one" / "fast_style" / "metrics.jsonl", enabled=False).records()
    for a, b in zip(ref, recs):
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    assert sorted(int(p.name) for p in (base / "two" / "fast_style").iterdir() if p.name.isdigit()) == [2, 3]


@pytest.mark.multiprocess
def test_dtn_on_two_processes_trains_as_on_one(runs):
    base = runs["base"]
    assert "dtn: done on process 1 of 2 (4 devices)" in runs["errs"]["two"][1]
    one = _saved(base / "one", "dtn", 0)
    two = [_saved(base / "two", "dtn", p) for p in range(2)]
    assert int(one["['step']"]) == int(two[0]["['step']"]) == DTN_STEPS
    chex.assert_trees_all_equal(two[1], two[0])
    chex.assert_trees_all_close(two[0], one, rtol=1e-5, atol=1e-5)
    cfg, state = dtn_train.restore(base / "two" / "dtn")
    assert cfg.run.batch == 4 and cfg.run.steps == DTN_STEPS
    got = flat({"g": state.g.params, "d": state.d.params, "step": state.g.step})
    chex.assert_trees_all_close(got, two[0])
    init = cfg.init()
    moved = flat({"g": init.g.params, "d": init.d.params})
    assert max(float(np.max(np.abs(moved[k] - got[k]))) for k in moved) > 1e-4
    recs = dtn_train.records(base / "two" / "dtn")
    assert [r["step"] for r in recs] == list(range(1, DTN_STEPS + 1))
    ref = dtn_train.records(base / "one" / "dtn")
    for a, b in zip(ref, recs):
        np.testing.assert_allclose([b["d_loss"], b["g_loss"]], [a["d_loss"], a["g_loss"]], rtol=1e-5)
    assert sorted(int(p.name) for p in (base / "two" / "dtn").iterdir() if p.name.isdigit()) == [2, 3]
