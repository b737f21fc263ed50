"""The shared training utilities: NaN guard, checkpoints with resume, metrics log, data sharding, the
one training loop (fit), its schedule (due) and the run settings saved beside the checkpoints."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import training


def test_nan_guard_and_all_finite():
    old = {"a": jnp.ones(3), "b": (jnp.zeros(2),)}
    new = {"a": jnp.full(3, 5.0), "b": (jnp.full(2, 7.0),)}
    chex.assert_trees_all_equal(training.nan_guard(new, old, jnp.array(True)), new)
    chex.assert_trees_all_equal(training.nan_guard(new, old, jnp.array(False)), old)
    assert bool(training.all_finite(old, new))
    assert not bool(training.all_finite(old, {"x": jnp.array([1.0, jnp.nan])}))


def test_checkpointer_saves_keeps_and_resumes(tmp_path):
    state = {"w": jnp.arange(4.0), "step": jnp.array(0)}
    with training.Checkpointer(tmp_path / "ck", keep=2, save_every=3) as ck:
        assert ck.restore_or(state) == (state, 0)
        saved = [s for s in range(1, 8) if ck.maybe_save(s, {"w": state["w"] * s, "step": jnp.array(s)}, final=s == 7)]
    assert saved == [3, 6, 7]
    again = training.Checkpointer(str(tmp_path / "ck"))  # a new process: relative/str paths work too
    restored, start = again.restore_or(state)
    assert start == 7 and again.latest_step == 7
    np.testing.assert_array_equal(restored["w"], np.arange(4.0) * 7)
    assert sorted(again.manager.all_steps()) == [6, 7]  # keep=2
    again.close()


def test_metrics_log_keeps_the_last_record_per_step(tmp_path):
    log = training.MetricsLog(tmp_path / "m" / "metrics.jsonl")
    assert log.records() == []
    log.write(1, {"loss": jnp.array(2.0)})
    log.write(2, {"loss": 1.5})
    log.write(2, {"loss": 1.25})  # a resumed run rewrote step 2
    assert [(r["step"], r["loss"]) for r in log] == [(1, 2.0), (2, 1.25)]


def test_tests_see_one_device_unless_they_ask_for_all(monkeypatch):
    """tests/conftest.py sets $DFIJAX_DEVICES=1: the library uses the first of JAX's 4 forced devices."""
    from dfijax import mesh

    assert jax.local_device_count() == 4 and mesh.local_devices() == mesh.devices() == jax.local_devices()[:1]
    assert training.data_mesh().devices.size == training.global_mesh().devices.size == 1
    monkeypatch.setenv("DFIJAX_DEVICES", "3")
    assert mesh.local_devices() == jax.local_devices()[:3] and mesh.device_count() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("DFIJAX_DEVICES", bad)
        with pytest.raises(ValueError, match=rf"\$DFIJAX_DEVICES must be a positive number of devices, got '{bad}'"):
            mesh.local_devices()


def test_shard_batch_splits_over_the_mesh(all_devices):
    mesh = training.data_mesh()
    n = mesh.devices.size
    assert n == jax.local_device_count() == 4  # conftest forces 4 CPU devices
    x = training.shard_batch({"img": np.zeros((2 * n, 4, 4, 3), np.float32)}, mesh)["img"]
    assert len(x.sharding.device_set) == n and x.addressable_shards[0].data.shape == (2, 4, 4, 3)
    p = training.replicate({"w": jnp.ones(3)}, mesh)["w"]
    assert p.addressable_shards[0].data.shape == (3,)
    with pytest.raises(ValueError, match="does not split over 4 devices"):
        training.shard_batch(np.zeros((5, 2)), mesh)


def test_one_mesh_constructor_and_process_rows(all_devices):
    from dfijax import distributed as dist

    mesh, local = dist.global_mesh(), training.data_mesh()
    assert mesh.axis_names == local.axis_names == ("data",) and mesh.shape == local.shape == {"data": 4}
    assert list(mesh.devices.flat) == jax.devices()  # one process: the global mesh is the local one
    assert dist.global_mesh("batch").axis_names == ("batch",)
    assert training.process_rows(mesh, 16) == slice(0, 16)  # one process holds every row
    assert training.process_rows(training.data_mesh(jax.devices()[:2]), 6) == slice(0, 6)
    with pytest.raises(ValueError, match="a batch of 10 does not split over the 4 devices"):
        training.process_rows(mesh, 10)


def test_put_global_splits_a_known_batch_and_local_copy_brings_back_one(all_devices):
    mesh = training.global_mesh()
    x = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
    g = training.put_global({"x": x, "y": x[:, 0].astype(np.int32)}, mesh)
    chex.assert_shape(g["x"], (16, 3))
    assert g["x"].sharding.spec[0] == "data" and len(g["x"].addressable_shards) == 4
    chex.assert_shape(g["x"].addressable_shards[3].data, (4, 3))
    np.testing.assert_array_equal(g["x"].addressable_shards[3].data, x[12:16])  # device i holds rows 4i to 4i + 3
    np.testing.assert_array_equal(np.asarray(g["y"]), np.arange(0, 48, 3))
    state = training.replicate({"w": jnp.arange(4.0), "n": jnp.array(7)}, mesh)
    mine = training.local_copy(state)
    assert mine["w"].sharding.device_set == {jax.local_devices()[0]}
    chex.assert_trees_all_equal(mine, {"w": jnp.arange(4.0), "n": jnp.array(7)})
    with pytest.raises(ValueError, match=r"shape \(16, 3\) is split over 4 devices; local_copy takes replicated"):
        training.local_copy(g)
    with pytest.raises(ValueError, match="does not split over the 4 devices"):
        training.put_global(np.zeros((5, 2)), mesh)


def _tb_events(folder):
    """(tag, step, scalar or image size) from TensorBoard event files (TFRecord framing)."""
    import struct

    from tensorboardX.proto import event_pb2

    out = []
    for f in sorted(folder.glob("events.out.tfevents.*")):
        data = f.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            ev = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                out.append(
                    (v.tag, ev.step, v.simple_value if v.HasField("simple_value") else (v.image.height, v.image.width))
                )
    return out


def test_metrics_log_writes_tensorboard_scalars_and_images(tmp_path):
    log = training.MetricsLog(tmp_path / "run" / "metrics.jsonl")
    log.write(10, {"loss": 0.5, "acc": jnp.array(0.25)})
    log.image(10, "samples", np.full((6, 9, 3), 0.5, np.float32))
    log.close()
    events = _tb_events(tmp_path / "run" / "tb")
    assert ("loss", 10, 0.5) in events and ("acc", 10, 0.25) in events
    assert ("samples", 10, (6, 9)) in events
    off = training.MetricsLog(tmp_path / "quiet" / "metrics.jsonl", tensorboard=False)
    off.write(1, {"loss": 1.0})
    assert not (tmp_path / "quiet" / "tb").exists()


# ------------------------------------------------------------------------------------------------ fit


@dataclasses.dataclass(frozen=True)
class Inner:
    depth: int = 2
    every: int = training.resumable(5)


@dataclasses.dataclass(frozen=True)
class Cfg:
    width: int = 3
    layers: tuple[str, ...] = ("a", "b")
    inner: Inner = Inner()
    steps: int = training.resumable(7)


def _template(cfg: Cfg):
    return {"w": jnp.zeros(cfg.width), "step": jnp.zeros((), jnp.int32)}


@jax.jit
def _step(state, batch, rng):
    """A pure step whose result depends on the batch, the rng and the order of the steps."""
    noise = jax.random.normal(rng, state["w"].shape)
    w = 0.9 * state["w"] + batch + 0.1 * noise
    return {"w": w, "step": state["step"] + 1}, {"loss": jnp.sum(w**2), "first": w[0]}


def _batches(i: int) -> np.ndarray:
    return np.full(3, float(i), np.float32)


def test_due_schedule():
    assert [s for s in range(1, 9) if training.due(s, 3, 8)] == [3, 6, 8]
    assert [s for s in range(1, 9) if training.due(s, None, 8)] == [8]
    assert [s for s in range(1, 9) if training.due(s, 0, 8, at=(2,))] == [2, 8]
    assert [s for s in range(1, 9) if training.due(s, 4, 8, at=(3,))] == [3, 4, 8]


class Stop(Exception):
    pass


def test_fit_resumes_exactly_and_schedules_logs_saves_and_hooks(tmp_path):
    rng = jax.random.key(4)
    full, recs = training.fit(_step, _template(Cfg()), _batches, 7, rng=rng, log_every=2)
    assert [r["step"] for r in recs] == [2, 4, 6, 7] and int(full["step"]) == 7
    seen, progress = [], []

    def sample(step, state, rec):
        seen.append((step, int(state["step"]), rec is not None))
        return {"eval": float(state["w"][1]) * 2}

    def stop(step, state, rec):
        if step == 5:
            raise Stop()

    log = training.MetricsLog(tmp_path / "run" / "metrics.jsonl", tensorboard=False)
    with training.Checkpointer(tmp_path / "run", save_every=3, config=Cfg()) as ck:
        with pytest.raises(Stop):
            training.fit(
                _step, _template(Cfg()), _batches, 7, ck, rng=rng, log=log, log_every=2, hooks=[(3, sample), (1, stop)]
            )
        assert sorted(ck.manager.all_steps()) == [3]  # step 4 was no save step, 5 never finished
    assert seen == [(3, 3, False)]
    with training.Checkpointer(tmp_path / "run", save_every=3, config=Cfg()) as ck:
        resumed, recs = training.fit(
            _step,
            _template(Cfg()),
            _batches,
            7,
            ck,
            rng=rng,
            log=log,
            log_every=2,
            hooks=[(3, sample)],
            progress=lambda s, r: progress.append((s, r is not None)),
        )
        assert sorted(ck.manager.all_steps()) == [3, 6, 7]
    chex.assert_trees_all_equal(resumed, full)  # the same batches and rngs as the uninterrupted run
    assert seen == [(3, 3, False), (6, 6, True), (7, 7, True)]
    assert progress == [(4, True), (5, False), (6, True), (7, True)]
    assert [r["step"] for r in recs] == [4, 6, 7] and recs[-1]["eval"] == float(full["w"][1]) * 2
    logged = log.records()  # steps 2, 4 before the stop; 4 again, 6, 7 after; hook values joined their step
    assert [r["step"] for r in logged] == [2, 3, 4, 6, 7] and "loss" not in logged[1] and "loss" in logged[2]
    assert logged[-1]["first"] == pytest.approx(float(full["w"][0]))
    # nothing left to do: a rerun restores step 7 and returns it untouched
    with training.Checkpointer(tmp_path / "run", config=Cfg(steps=7)) as ck:
        again, recs = training.fit(_step, _template(Cfg()), _batches, 7, ck, rng=rng)
    assert recs == [] and int(again["step"]) == 7
    # start= skips the restore: two calls of 3 + 4 steps are one of 7
    half, _ = training.fit(_step, _template(Cfg()), _batches, 3, rng=rng)
    rest, _ = training.fit(_step, half, _batches, 7, rng=rng, start=3)
    chex.assert_trees_all_equal(rest, full)


def test_config_is_saved_checked_on_resume_and_restored(tmp_path):
    d = tmp_path / "run"
    with training.Checkpointer(d, config=Cfg(layers=("x", "y", "z"))) as ck:
        ck.maybe_save(2, {"w": jnp.arange(3.0), "step": jnp.array(2, jnp.int32)}, final=True)
    saved = json.loads((d / "config.json").read_text())
    assert saved == {"width": 3, "layers": ["x", "y", "z"], "inner": {"depth": 2, "every": 5}, "steps": 7}
    # resumable fields may change (nested ones too); the new settings are written
    training.Checkpointer(d, config=Cfg(layers=("x", "y", "z"), steps=50, inner=Inner(every=1))).close()
    assert json.loads((d / "config.json").read_text())["steps"] == 50
    with pytest.raises(training.CheckpointMismatch) as e:
        training.Checkpointer(d, config=Cfg(width=4, inner=Inner(depth=3)))
    msg = str(e.value)
    assert (
        "\n" not in msg
        and "other settings: width 3 (now 4), layers ['x', 'y', 'z'] (now ['a', 'b']), inner.depth 2 (now 3)" in msg
        and "steps" not in msg
    )
    cfg, state = training.restore(d, Cfg, template=_template)
    assert cfg == Cfg(layers=("x", "y", "z"), steps=50, inner=Inner(every=1))
    chex.assert_trees_all_equal(state, {"w": jnp.arange(3.0), "step": jnp.array(2, jnp.int32)})
    _, again = training.restore(d, Cfg, template=_template(cfg))  # a template state works too
    chex.assert_trees_all_equal(again, state)
    (tmp_path / "empty").mkdir()
    with training.Checkpointer(tmp_path / "nockpt", config=Cfg()):
        pass
    for folder, msg in [
        (tmp_path / "none", "no checkpoint folder"),
        (tmp_path / "empty", "config.json not found"),
        (tmp_path / "nockpt", "holds no checkpoint"),
    ]:
        with pytest.raises(FileNotFoundError, match=msg):
            training.restore(folder, Cfg, _template)
    with pytest.raises(training.CheckpointMismatch, match="does not fit the state"):
        training.restore(d, Cfg, template=lambda c: {"w": jnp.zeros(5), "step": jnp.zeros((), jnp.int32)})


def test_a_run_and_its_resume_compile_one_step_program(tmp_path):
    """A fresh flax TrainState counts steps in a weakly typed int, a restored one in a strong int32:
    fit makes both strong, so resuming in the same process reuses the compiled step."""
    import optax
    from flax.training import train_state

    @jax.jit
    def step(state, batch, rng):
        grads = {"w": state.params["w"] - batch}
        return state.apply_gradients(grads=grads), {"loss": jnp.sum(grads["w"] ** 2)}

    fresh = train_state.TrainState.create(apply_fn=None, params={"w": jnp.zeros(3)}, tx=optax.sgd(0.5))
    fresh = training.replicate(fresh, training.data_mesh(jax.devices()[:2]))  # as the systems place states
    assert fresh.step.aval.weak_type and not training.strong_types(fresh).step.aval.weak_type
    with training.Checkpointer(tmp_path / "run", save_every=2) as ck:
        training.fit(step, fresh, _batches, 4, ck, rng=jax.random.key(0))
    with training.Checkpointer(tmp_path / "run", save_every=2) as ck:
        resumed, _ = training.fit(step, fresh, _batches, 6, ck, rng=jax.random.key(0))
    assert int(resumed.step) == 6 and step._cache_size() == 1
    whole, _ = training.fit(step, fresh, _batches, 6, rng=jax.random.key(0))
    chex.assert_trees_all_equal(resumed.params, whole.params)
