"""Multi-host training: the grain input pipeline (global batches independent of the process count,
iterator state a function of the step), the Checkpointer's data item, and the fusion GAN trained by 2
CPU processes of 4 devices each on localhost (stopped after step 3 and resumed) against 1 process of 8."""

import json
import pathlib
import subprocess

import chex
import jax
import numpy as np
import pytest
from grain import python as grain

from dfijax import training
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.fusion import train as ft
from dfijax.fusion.data import ShardedLoader
from tests.multihost import kill as _kill
from tests.multihost import start
from tests.multihost import wait as _wait

ARGS = [  # fusion.presets "tiny" (1 autoencoder + 3 GAN steps, checkpoints every 2), no samples
    *("--preset", "tiny", "--n-synthetic", "64", "--sample-every", "1000"),
]
STEPS = 4  # 1 autoencoder + 3 GAN steps; checkpoints at 1 (end of stage 1), 2 and 4


def _loaders(count: int, **kw) -> list[ShardedLoader]:
    data = synthetic_faces(40, 0)
    return [
        ShardedLoader(
            data,
            32,
            8,
            seed=1,
            indices=np.arange(30),
            threads=2,
            shard_options=grain.ShardOptions(p, count, drop_remainder=True),
            **kw,
        )
        for p in range(count)
    ]


def _global_batches(loaders: list[ShardedLoader], steps: int, start: int = 0) -> np.ndarray:
    """[steps, 8] ids: every process's rows of each global batch, process-major."""
    its = [iter(l) for l in loaders]
    if start:
        for l, it in zip(loaders, its):
            it.set_state(l.state_at(start))
    rows = [[next(it)["id"] for _ in range(steps)] for it in its]
    for l, it in zip(loaders, its):
        assert it.get_state() == l.state_at(start + steps)  # the state is a function of the step
    return np.stack([np.concatenate([r[s] for r in rows]) for s in range(steps)])


def test_global_batches_do_not_depend_on_the_process_count():
    one, two, four = (_global_batches(_loaders(n), 6) for n in (1, 2, 4))
    chex.assert_shape(one, (6, 8))
    np.testing.assert_array_equal(two, one)
    np.testing.assert_array_equal(four, one)
    np.testing.assert_array_equal(one, np.stack([_loaders(1)[0].global_ids(s) for s in range(6)]))
    # an epoch is 30 // 8 = 3 batches of distinct faces, then a new permutation
    assert len(set(one[:3].ravel())) == 24 and set(one.ravel()) <= set(range(30))
    assert sorted(one[3:].ravel()) != sorted(one[:3].ravel())
    np.testing.assert_array_equal(_global_batches(_loaders(2), 2, start=4), one[4:])  # repositioned
    x = next(iter(_loaders(2)[1]))
    chex.assert_shape(x["image"], (4, 32, 32, 3))
    assert x["image"].dtype == np.float32 and -1 <= x["image"].min() < x["image"].max() <= 1
    with pytest.raises(ValueError, match="multiple of 3"):
        _loaders(3)


def test_checkpointer_saves_the_data_position(tmp_path):
    state = {"w": jax.numpy.zeros(3)}
    loader = _loaders(1)[0]
    it = iter(loader)
    with training.Checkpointer(tmp_path / "ck", save_every=2) as ck:
        assert ck.restore_or(state, data=it) == (state, 0)
        for s in range(1, 4):
            next(it)
            ck.maybe_save(s, {"w": state["w"] + s}, data=it, final=s == 3)
    assert sorted(p.name for p in (tmp_path / "ck" / "3" / training.DATA).iterdir() if p.suffix == ".json") == [
        "process_0-of-1.json"
    ]
    ck = training.Checkpointer(tmp_path / "ck")
    fresh = iter(_loaders(1)[0])
    restored, step = ck.restore_or(state, data=fresh)
    assert step == 3 and ck.data_processes(3) == 1
    np.testing.assert_array_equal(restored["w"], np.full(3, 3.0))
    np.testing.assert_array_equal(next(fresh)["id"], loader.global_ids(3))
    # saved by another number of processes: the position comes from the step, or a one-line error
    d = tmp_path / "ck" / "3" / training.DATA
    (d / "process_0-of-1.json").rename(d / "process_0-of-2.json")
    with pytest.raises(ValueError, match="saved by 2 processes, not 1"):
        ck.restore_or(state, data=iter(loader))
    other = iter(_loaders(1)[0])
    seen = []
    _, step = ck.restore_or(
        state, data=other, reposition=lambda s: seen.append(s) or other.set_state(loader.state_at(s))
    )
    assert step == 3 and seen == [3]
    np.testing.assert_array_equal(next(other)["id"], loader.global_ids(3))
    ck.close()


def test_metrics_log_writes_only_when_enabled(tmp_path):
    off = training.MetricsLog(tmp_path / "off" / "metrics.jsonl", enabled=False)
    assert off.write(3, {"loss": 2.0}) == {"step": 3, "loss": 2.0}
    off.image(3, "x", np.zeros((2, 2, 3)))
    assert not (tmp_path / "off").exists() and off.records() == []
    on = training.MetricsLog(tmp_path / "on" / "metrics.jsonl", tensorboard=False)  # process 0: on by default
    on.write(3, {"loss": 2.0})
    assert on.enabled and on.records() == [{"step": 3, "loss": 2.0}]


# ------------------------------------------------------------------------------------------ processes


def _start(out: pathlib.Path, cache: pathlib.Path, processes: int, *extra: str) -> list[subprocess.Popen]:
    """experiments.train_fusion as `processes` CPU processes of 8 / processes devices each."""
    return start(["-m", "experiments.train_fusion", *ARGS, "--out", str(out), *extra], processes, 8 // processes, cache)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """1 process x 8 devices, uninterrupted; 2 x 4 stopped after step 3 (beside it), then rerun to the end."""
    base = tmp_path_factory.mktemp("multihost")
    cache = base / "cache"
    cache.mkdir()
    jobs = []
    try:  # both at once: compiling is mostly one core per process
        jobs = [_start(base / "one", cache, 1), _start(base / "two", cache, 2, "--stop-after", "3")]
        one, stopped = (_wait(procs) for procs in jobs)
    finally:
        for procs in jobs:
            _kill(procs)
    steps_saved = sorted(int(p.name) for p in (base / "two").iterdir() if p.name.isdigit())
    data_before = ft.data_log(base / "two")
    resumed = _wait(_start(base / "two", cache, 2))
    return dict(base=base, stopped=stopped, resumed=resumed, steps_saved=steps_saved, data_before=data_before)


def _state(folder: pathlib.Path):
    cfg, state, step = ft.restore(folder)
    assert step == STEPS and int(state.step) == STEPS and int(state.stage) == 2
    return cfg, jax.device_get(
        {
            "eg": state.eg.params,
            "stats": state.eg.batch_stats,
            "d": state.d.params,
            "opt": (state.eg.opt_state, state.d.opt_state),
        }
    )


@pytest.mark.multiprocess
def test_two_processes_train_as_one(runs):
    """The 2-process run (stopped after step 3 and resumed: see the next test) ends where the 1-process
    one does, on the same global batches."""
    base = runs["base"]
    # the same global batches, in the same order, on 1 and 2 processes: the loader's pure function of the step
    want = ShardedLoader(synthetic_faces(64, 0), 32, 8, seed=0, indices=np.arange(48))
    ids = {k: ft.data_log(base / k) for k in ("one", "two")}
    assert list(ids["one"]) == list(range(1, STEPS + 1))
    assert ids["two"] == ids["one"] == {s: want.global_ids(s - 1).tolist() for s in range(1, STEPS + 1)}
    info = json.loads((base / "two" / "train_info.json").read_text())
    assert (info["processes"], info["devices"]) == (2, 8)
    assert json.loads((base / "one" / "train_info.json").read_text())["processes"] == 1
    # process 0 alone wrote the logs: one record per step (step 3 twice: before the stop and after the resume)
    recs = [training.MetricsLog(base / k / "metrics.jsonl").records() for k in ("one", "two")]
    assert [r["step"] for r in recs[1]] == list(range(1, STEPS + 1))
    assert len((base / "two" / "metrics.jsonl").read_text().splitlines()) == STEPS + 1
    for a, b in zip(*recs):
        assert a["data_crc"] == b["data_crc"]
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # every process saved its data position in the same checkpoints
    assert sorted(p.name for p in (base / "two" / str(STEPS) / training.DATA).glob("*.json")) == [
        "process_0-of-2.json",
        "process_1-of-2.json",
    ]
    # The same partitioned program on 8 devices either way; only the cross-process all-reduce (gloo)
    # adds the 8 partial gradients in another order than the in-process one, a float32 rounding
    # difference (~1e-7 relative) that Adam's first steps, which divide a gradient by its own size, can
    # grow to a small fraction of a step (lr 1e-3). Observed: 1e-5; the tolerance is a tenth of a step.
    cfg, one = _state(base / "one")
    _, two = _state(base / "two")
    chex.assert_trees_all_close(two, one, rtol=1e-4, atol=1e-4)
    init = jax.device_get(ft.init_state(cfg).eg.params)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(one["eg"]), jax.tree.leaves(init)))
    assert moved > 1e-3  # training moved the parameters by far more than the tolerance


@pytest.mark.multiprocess
def test_stop_and_resume_on_two_processes(runs):
    base = runs["base"]
    assert "stopped after step 3" in runs["stopped"][0]
    assert runs["steps_saved"] == [1, 2]  # the step-3 work was lost; the newest checkpoint is step 2
    assert list(runs["data_before"]) == [1, 2, 3]
    assert "resumed from step 2" in runs["resumed"][0]
    assert json.loads((base / "two" / "train_info.json").read_text())["resumed_from"] == 2
    # step 3 was trained twice (before the stop and after the resume) on the same global batch
    raw = [json.loads(l) for l in (base / "two" / ft.DATA_LOG).read_text().splitlines()]
    assert [r["step"] for r in raw] == [1, 2, 3, 3, 4]
    assert raw[2]["ids"] == raw[3]["ids"]
    assert ft.data_log(base / "two") == ft.data_log(base / "one")  # as an uninterrupted run (previous test)
    # the restored data position is each process's grain state after 2 (then 4) global batches
    for p in range(2):
        saved = (base / "two" / str(STEPS) / training.DATA / f"process_{p}-of-2.json").read_text()
        want = ShardedLoader(
            synthetic_faces(64, 0),
            32,
            8,
            seed=0,
            indices=np.arange(48),
            shard_options=grain.ShardOptions(p, 2, drop_remainder=True),
        ).state_at(STEPS)
        assert json.loads(saved) == json.loads(want)
