"""The dataset-scale DFI job: chunk plan, index round trip, the distributed helpers in one process, and
the job itself as 2 CPU processes (2 devices each) on localhost: full coverage, stop and resume."""

import dataclasses
import json
import pathlib

import chex
import jax
import numpy as np
import pytest

from dfijax import config
from dfijax import distributed as dist
from dfijax.dfi import dataset_job
from dfijax.dfi.sweep_config import SweepConfig
from tests import multihost as mh

ARGS = [
    "--n-synthetic",
    "300",
    "--k",
    "8",
    "--batch",
    "8",
    "--size",
    "32",
    "--iters",
    "4",
    "--limit",
    "6",
    "--alphas",
    "0.2,0.4",
    "--probe-steps",
    "10",
    "--probe-train",
    "100",
    "--chunk",
    "2",
]
N_ROWS, N_CHUNKS, N_ALPHAS = 6, 3, 2


# ------------------------------------------------------------------------------------------ in process


def test_assign_chunks_disjoint_and_covering():
    for n, p in ((3, 2), (10, 3), (1, 4)):
        parts = [dataset_job.assign_chunks(n, i, p) for i in range(p)]
        flat = sorted(c for part in parts for c in part)
        assert flat == list(range(n))
    assert dataset_job.assign_chunks(5, 1, 2) == [1, 3]


def test_select_rows_lacking_and_limit():
    from dfijax.data.synthetic_faces import synthetic_faces

    data = synthetic_faces(60)
    rows = dataset_job.select_rows(data, ("Smiling+", "Eyeglasses+"), "lacking", limit=4)
    assert len(rows) == 8 and [e for _, e in rows] == [0] * 4 + [1] * 4
    smile, glasses = data.attr_index("Smiling"), data.attr_index("Eyeglasses")
    assert all(data.attrs[i, smile] < 0 for i, e in rows if e == 0)
    assert all(data.attrs[i, glasses] < 0 for i, e in rows if e == 1)
    assert dataset_job.select_rows(data, ("Smiling+",), "all") == [(i, 0) for i in range(60)]


def test_distributed_helpers_round_trip_in_one_process(all_devices):
    info = dist.initialize(num_processes=1)
    assert (info.index, info.count) == (0, 1) and dist.is_main()
    mesh = dist.global_mesh()
    n = jax.device_count()
    x = np.arange(n * 2 * 3, dtype=np.float32).reshape(n * 2, 3)
    g = dist.global_batch({"x": x}, mesh)["x"]
    chex.assert_shape(g, (n * 2, 3))
    assert len(g.sharding.device_set) == n
    y = jax.jit(lambda a, w: a * w)(g, dist.replicate(np.full((1, 3), 2.0, np.float32), mesh))
    np.testing.assert_array_equal(dist.local_batch(y, mesh), 2 * x)
    np.testing.assert_array_equal(dist.allgather(np.int32(7)), [7])
    with pytest.raises(ValueError, match="multiple of"):
        dist.global_batch(np.zeros((n + 1, 2)), mesh)
    with pytest.raises(ValueError, match="together"):
        dist.initialize("127.0.0.1:1", None, None)


def test_index_round_trip_and_manifest_check(tmp_path):
    (tmp_path / "index").mkdir()
    (tmp_path / "shards").mkdir()
    imgs = np.arange(2 * 1 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 1, 4, 4, 3)
    np.savez(tmp_path / "shards" / "chunk-00001.npz", images=imgs, rows=np.array([3, 2]))
    recs = [{"row": r, "alpha_index": 0, "shard": "shards/chunk-00001.npz"} for r in (3, 2)]
    (tmp_path / "index" / "chunk-00001.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    (tmp_path / "index" / ".chunk-00002.jsonl.99.tmp").write_text("half written")  # a killed write
    assert dataset_job.finished_chunks(tmp_path) == {1}
    got = dataset_job.read_index(tmp_path)
    assert [r["row"] for r in got] == [2, 3]
    np.testing.assert_allclose(dataset_job.load_images(tmp_path, got), np.stack([imgs[1, 0], imgs[0, 0]]) / 255.0)
    dataset_job.check_manifest(tmp_path, {"chunk": 2})
    dataset_job.check_manifest(tmp_path, {"chunk": 2})
    with pytest.raises(ValueError, match="different job"):
        dataset_job.check_manifest(tmp_path, {"chunk": 4})
    # a job written with the flat settings layout (and without the settings that do not change the
    # result) resumes under the grouped one; another iteration count does not
    flat = {"edits": ["Young-"], "k": 7, "iters": 9, "tv": 0.5, "probe": False, "residual": True}
    (tmp_path / "job.json").write_text(json.dumps({"chunk": 2, "sweep": flat}))
    job = dataset_job.JobConfig(sweep=config.replace(SweepConfig(), edits=("Young-",), k=7, iters=9, tv_weight=0.5))
    job = dataclasses.replace(job, sweep=config.replace(job.sweep, probe=False, residual=True, batch=4, shard=False))
    dataset_job.check_manifest(tmp_path, {"chunk": 2, "sweep": dataset_job._result_settings(job.sweep)})
    with pytest.raises(ValueError, match=r"\(sweep differ\)"):
        other = config.replace(job.sweep, iters=10)
        dataset_job.check_manifest(tmp_path, {"chunk": 2, "sweep": dataset_job._result_settings(other)})


# ------------------------------------------------------------------------------------------ 2 processes


def _run_job(out: pathlib.Path, cache: pathlib.Path, *extra: str, timeout: float = 150) -> list[dict]:
    """The CLI as 2 processes of 2 CPU devices each; returns each process's summary line."""
    argv = ["-m", "experiments.dfi_dataset", *ARGS, "--out", str(out), *extra]
    cache.mkdir(parents=True, exist_ok=True)
    outs = mh.outputs(mh.start(argv, processes=2, devices=2, cache=cache, stdout=True), timeout)
    return [json.loads([line for line in so.splitlines() if line.startswith("{")][-1]) for so, _ in outs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, and a run stopped after one chunk per process and then rerun."""
    base = tmp_path_factory.mktemp("dfi_dataset")
    cache = base / "cache"
    full = _run_job(base / "full", cache)
    stopped = _run_job(base / "resumed", cache, "--stop-after-chunks", "1")
    marks = {p.name: p.stat().st_mtime_ns for p in (base / "resumed" / "index").glob("*.jsonl")}
    shards = {p.name: p.read_bytes() for p in (base / "resumed" / "shards").glob("*.npz")}
    resumed = _run_job(base / "resumed", cache)
    return dict(base=base, full=full, stopped=stopped, resumed=resumed, marks=marks, shards=shards)


@pytest.mark.multiprocess
def test_two_processes_cover_every_image_once(runs):
    full = runs["full"]
    assert [s["process"] for s in full] == [0, 1] and all(s["devices"] == 4 for s in full)
    assert full[0]["solved"] == [0, 2] and full[1]["solved"] == [1]  # chunk c -> process c mod 2
    assert all(s["images"] == N_ROWS * N_ALPHAS and s["chunks"] == N_CHUNKS for s in full)
    assert full[0]["images_per_s"] > 0
    recs = dataset_job.read_index(runs["base"] / "full")
    assert len(recs) == N_ROWS * N_ALPHAS
    keys = [(r["input"], r["edit"], r["alpha"]) for r in recs]
    assert len(set(keys)) == len(keys)  # nothing twice
    assert sorted({r["row"] for r in recs}) == list(range(N_ROWS))
    assert {r["process"] for r in recs} == {0, 1}
    assert all(r["process"] == r["chunk"] % 2 and r["row"] // 2 == r["chunk"] for r in recs)
    from dfijax.data.synthetic_faces import synthetic_faces

    data = synthetic_faces(300)
    want = dataset_job.select_rows(data, ("Smiling+",), "lacking", N_ROWS)
    assert sorted({r["input"] for r in recs}) == sorted(data.ids[i] for i, _ in want)
    for r in recs:
        assert np.isfinite(r["final_loss"]) and 0 <= r["probe_score"] <= 1
    images = dataset_job.load_images(runs["base"] / "full", recs)
    chex.assert_shape(images, (N_ROWS * N_ALPHAS, 32, 32, 3))
    assert images.std() > 0.05
    # each record's pixel RMSE is its stored edit's against its own input (up to the 8-bit shards)
    inputs = data.images([data.ids.index(r["input"]) for r in recs], 32)
    direct = np.sqrt(np.mean((images - inputs) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose([r["pixel_rmse_to_input"] for r in recs], direct, atol=2e-3)
    assert direct.min() > 0.005  # every edit changed its face


@pytest.mark.multiprocess
def test_stop_and_resume_redoes_nothing_and_matches(runs):
    stopped, resumed = runs["stopped"], runs["resumed"]
    assert [s["solved"] for s in stopped] == [[0], [1]]
    assert [s["skipped"] for s in resumed] == [[0], [1]]
    assert [s["solved"] for s in resumed] == [[2], []]  # process 1 only fills its step
    after = {p.name: p.stat().st_mtime_ns for p in (runs["base"] / "resumed" / "index").glob("*.jsonl")}
    assert all(after[k] == v for k, v in runs["marks"].items())  # finished chunks untouched
    assert all((runs["base"] / "resumed" / "shards" / k).read_bytes() == v for k, v in runs["shards"].items())
    assert len(after) == N_CHUNKS
    a, b = dataset_job.read_index(runs["base"] / "full"), dataset_job.read_index(runs["base"] / "resumed")
    strip = ("process",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in a] == [
        {k: v for k, v in r.items() if k not in strip} for r in b
    ]
    np.testing.assert_array_equal(
        dataset_job.load_images(runs["base"] / "full", a), dataset_job.load_images(runs["base"] / "resumed", b)
    )
