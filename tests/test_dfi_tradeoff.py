"""Attribute gain against identity drift: the probe-space measure and the pixel-blend baseline."""

import chex
import numpy as np
import pytest
from PIL import Image

from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dfi import neighbours as nb
from dfijax.dfi import specs, tradeoff
from dfijax.dfi.probe import ProbeConfig, train_probe


@pytest.fixture(scope="module")
def faces_and_probe():
    data = synthetic_faces(300, seed=0)
    probe, _ = train_probe(data, ProbeConfig(size=32, steps=60, batch=32, n_train=250))
    return data, probe


def test_projector_removes_only_the_edited_directions(faces_and_probe):
    _, probe = faces_and_probe
    kernel, _ = probe.head()
    spec = [(probe.attr_names.index("Smiling"), 1)]
    p = tradeoff.identity_projector(probe, spec)
    chex.assert_shape(p, (kernel.shape[0], kernel.shape[0]))
    np.testing.assert_allclose(p @ p, p, atol=1e-5)  # a projector
    np.testing.assert_allclose(p @ kernel[:, spec[0][0]], 0, atol=1e-5)  # moving along the read-out: no drift
    other = kernel[:, probe.attr_names.index("Male")]
    assert np.linalg.norm(p @ other) > 0.3 * np.linalg.norm(other)  # a gender change still counts as drift


def test_blend_measured_as_an_edit_gives_the_blend_curve(faces_and_probe):
    """Feeding the baseline's own blends in as the 'edits' must reproduce the baseline numbers, and
    t = 0 is no change: zero gain, zero drift; drift grows with t."""
    data, probe = faces_and_probe
    size, ts = 32, (0.0, 0.3, 0.6)
    spec = specs.parse_edit("Smiling+", data.attr_names)
    rows = [i for i in range(len(data)) if data.attrs[i, spec[0][0]] < 0][:3]
    inputs = data.images(rows, size)
    sets = [nb.select_neighbours(data.attrs, data.attrs[i], spec, 20, exclude=i) for i in rows]
    means = np.stack([data.images(n.target, size).mean(0) for n in sets])
    t = np.asarray(ts, np.float32)[None, :, None, None, None]
    blends = (1 - t) * inputs[:, None] + t * means[:, None]
    res = tradeoff.measure(probe, data, inputs, blends, [spec] * 3, sets, ts, size, blend_t=ts, n_strangers=50)
    chex.assert_shape([res.dfi_gain, res.dfi_drift, res.blend_gain, res.blend_drift], (3, 3))
    np.testing.assert_allclose(res.dfi_gain, res.blend_gain, atol=1e-5)
    np.testing.assert_allclose(res.dfi_drift, res.blend_drift, atol=1e-5)
    np.testing.assert_allclose(res.blend_gain[:, 0], 0, atol=1e-6)
    np.testing.assert_allclose(res.blend_drift[:, 0], 0, atol=1e-6)
    assert (np.diff(res.blend_drift, axis=1) > 0).all()
    assert list(res.stranger_distance) == ["+Smiling"] and res.stranger_distance["+Smiling"] > 0
    assert [s["method"] for s in res.summary()] == ["dfi"] * 3 + ["pixel blend"] * 3
    with pytest.raises(ValueError, match="rows"):
        tradeoff.measure(probe, data, inputs[:2], blends, [spec] * 3, sets, ts, size)


def test_tradeoff_plot_has_axes(faces_and_probe, tmp_path):
    r = tradeoff.TradeOff(
        np.array([0.2, 0.4]),
        np.array([[0.1, 0.3]]),
        np.array([[0.1, 0.2]]),
        np.array([0.1, 0.2]),
        np.array([[0.05, 0.1]]),
        np.array([[0.1, 0.3]]),
        {"+Smiling": 1.0},
    )
    tradeoff.plot(tmp_path / "t.png", r)
    img = np.asarray(Image.open(tmp_path / "t.png"))
    chex.assert_shape(img, (360, 560, 3))
    assert img.std() > 10  # drawn, not blank


def test_probe_is_trained_once_per_setting_and_cached(tmp_path):
    import json

    import chex

    data = synthetic_faces(40, seed=1)
    cfg = ProbeConfig(size=32, steps=4, batch=8, n_train=30)
    seen = []
    first, cached = train_probe(data, cfg, tmp_path, progress=lambda i, r: seen.append(i))
    assert not cached and seen == [4] and set(first.metrics) == {"train_loss", "steps", "val_accuracy"}
    folder = tmp_path / f"{data.name}-s32-t4-b8-n30-seed0-v2"
    assert json.loads((folder / "config.json").read_text())["steps"] == 4
    assert sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) == [4]
    again, cached = train_probe(data, cfg, tmp_path)
    assert cached and again.metrics == first.metrics
    chex.assert_trees_all_equal(again.params, first.params)
    uncached, cached = train_probe(data, cfg)  # the same training without a cache: the same probe
    assert not cached
    chex.assert_trees_all_close(uncached.params, first.params, rtol=1e-6, atol=1e-7)
    _, cached = train_probe(data, ProbeConfig(size=32, steps=5, batch=8, n_train=30), tmp_path)
    assert not cached  # another setting, another cache entry
