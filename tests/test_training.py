"""The shared training utilities: NaN guard, checkpoints with resume, metrics log, data sharding."""

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


def test_shard_batch_splits_over_the_mesh():
    mesh = training.data_mesh()
    n = mesh.devices.size
    assert n == jax.local_device_count() == 8  # conftest forces 8 CPU devices
    x = training.shard_batch({"img": np.zeros((2 * n, 4, 4, 3), np.float32)}, mesh)["img"]
    assert len(x.sharding.device_set) == n and x.addressable_shards[0].data.shape == (2, 4, 4, 3)
    p = training.replicate({"w": jnp.ones(3)}, mesh)["w"]
    assert p.addressable_shards[0].data.shape == (3,)
    with pytest.raises(ValueError, match="does not split over 8 devices"):
        training.shard_batch(np.zeros((5, 2)), mesh)


def _tb_events(folder):
    """(tag, step, scalar or image size) from TensorBoard event files (TFRecord framing)."""
    import struct

    from tensorboardX.proto import event_pb2

    out = []
    for f in sorted(folder.glob("events.out.tfevents.*")):
        data = f.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                out.append((v.tag, ev.step, v.simple_value if v.HasField("simple_value") else (v.image.height, v.image.width)))
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
