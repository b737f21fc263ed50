"""Attribute gain against identity drift: the probe-space measure and the pixel-blend baseline."""

import chex
import numpy as np
import pytest
from PIL import Image

from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dfi import neighbours as nb
from dfijax.dfi import tradeoff
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


def test_gain_and_drift_equal_a_direct_computation(faces_and_probe):
    """measure() against the definitions computed here by hand from the probe's scores and embeddings:
    gain = P(edit's direction | edit) − P(… | input); drift = ‖(e(edit) − e(input))·Π‖ / median over
    stranger pairs of ‖(e(a) − e(b))·Π‖, Π removing the edited attribute's read-out direction. The
    'edits' are real faces: each input's nearest target neighbour, and the input itself (no change)."""
    data, probe = faces_and_probe
    size, ts, n_strangers = 32, (0.0, 0.3, 0.6), 40
    smile = data.attr_names.index("Smiling")
    add, remove = [(smile, 1)], [(smile, -1)]
    rows = [i for i in range(len(data)) if data.attrs[i, smile] < 0][:2]
    rows += [i for i in range(len(data)) if data.attrs[i, smile] >= 0.5][:1]
    specs_ = [add, add, remove]
    inputs = data.images(rows, size)
    sets = [nb.select_neighbours(data.attrs, data.attrs[i], sp, 20, exclude=i) for i, sp in zip(rows, specs_)]
    edits = np.stack([np.stack([data.images(n.target[:1], size)[0], x]) for n, x in zip(sets, inputs)])
    res = tradeoff.measure(
        probe, data, inputs, edits, specs_, sets, (1.0, 0.0), size, blend_t=ts, n_strangers=n_strangers
    )
    chex.assert_shape([res.dfi_gain, res.dfi_drift], (3, 2))
    chex.assert_shape([res.blend_gain, res.blend_drift], (3, 3))

    k = probe.head()[0][:, smile]
    proj = np.eye(len(k)) - np.outer(k, k) / (k @ k)  # the complement of the smile read-out
    e_s = probe.embed(data.images(range(n_strangers), size)) @ proj
    pairs = [np.linalg.norm(e_s[a] - e_s[b]) for a in range(n_strangers) for b in range(a + 1, n_strangers)]
    stranger = float(np.median(pairs))
    assert res.stranger_distance == pytest.approx({"+Smiling": stranger, "-Smiling": stranger}, rel=1e-4)

    def direct(images, x, sign):
        p, p_in = probe.scores(images)[:, smile], probe.scores(x[None])[0, smile]
        gain = p - p_in if sign > 0 else (1 - p) - (1 - p_in)
        drift = np.linalg.norm((probe.embed(images) - probe.embed(x[None])) @ proj, axis=1) / stranger
        return gain, drift

    for r, (x, sp, n) in enumerate(zip(inputs, specs_, sets)):
        gain, drift = direct(edits[r], x, sp[0][1])
        np.testing.assert_allclose(res.dfi_gain[r], gain, atol=1e-5)
        np.testing.assert_allclose(res.dfi_drift[r], drift, rtol=1e-4, atol=1e-6)
        mean = data.images(n.target, size).mean(0)
        blends = np.stack([(1 - t) * x + t * mean for t in ts])
        gain, drift = direct(blends, x, sp[0][1])
        np.testing.assert_allclose(res.blend_gain[r], gain, atol=1e-5)
        np.testing.assert_allclose(res.blend_drift[r], drift, rtol=1e-4, atol=1e-6)
    # another face with the edit's attribute gains it (seen 0.05-0.12 from this 60-step probe) and is
    # another person (seen drift 0.36-0.93 of the stranger distance)
    assert (res.dfi_gain[:, 0] > 0.02).all() and (res.dfi_drift[:, 0] > 0.2).all()
    np.testing.assert_allclose(res.dfi_gain[:, 1], 0, atol=1e-6)  # the input itself: no change
    np.testing.assert_allclose(res.dfi_drift[:, 1], 0, atol=1e-6)
    assert (np.diff(res.blend_drift, axis=1) > 0).all()
    assert [s["method"] for s in res.summary()] == ["dfi"] * 2 + ["pixel blend"] * 3
    with pytest.raises(ValueError, match="rows"):
        tradeoff.measure(probe, data, inputs[:2], edits, specs_, sets, (1.0, 0.0), size)


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
