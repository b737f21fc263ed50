import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import dfi
from dfijax import invert as I
from tests.conftest import smooth_images

NAMES = ["Male", "Smiling", "Mouth_Closed", "Young", "Eyeglasses"]


def test_parse_edit_and_attrs():
    assert dfi.parse_edit("Smiling+ Mouth_Closed-", NAMES) == ((1, 1), (2, -1))
    assert dfi.parse_edit("Smiling,Young-", NAMES) == ((1, 1), (3, -1))
    with pytest.raises(
        ValueError, match=r"unknown attribute 'Smilng' \(did you mean Smiling\?\); valid: Male, Smiling"
    ):
        dfi.parse_edit("Smilng+", NAMES)
    with pytest.raises(ValueError, match="empty edit spec"):
        dfi.parse_edit("  ", NAMES)
    with pytest.raises(ValueError, match="appears twice"):
        dfi.parse_edit("Smiling+ Smiling-", NAMES)
    q = dfi.parse_attrs("Young=1,Male=-1", NAMES)
    np.testing.assert_array_equal(q[[0, 3]], [-1, 1])
    assert np.isnan(q[[1, 2, 4]]).all()
    with pytest.raises(ValueError, match="is not a number"):
        dfi.parse_attrs("Young=yes", NAMES)
    with pytest.raises(ValueError, match="needs a value"):
        dfi.parse_attrs("Young", NAMES)


def _table():
    # columns: Male, Smiling, Mouth_Closed, Young, Eyeglasses
    return np.array(
        [
            [1, 1, 1, 1, -1],  # 0 smiling, mouth closed
            [1, -1, 1, 1, -1],  # 1 not smiling
            [1, 1, -1, 1, -1],  # 2 smiling, open mouth
            [-1, 1, -1, -1, 1],  # 3 smiling, open mouth, female, old, glasses
            [1, -1, 1, -1, 1],  # 4 not smiling, closed
            [-1, -1, 1, 1, -1],  # 5 not smiling, female
            [1, 0, 1, 1, -1],  # 6 neutral: neither set
            [1, 1, -1, 1, 1],  # 7 smiling open, glasses
        ],
        np.float32,
    )


def test_select_neighbours_sets_ranking_and_restrictions():
    attrs = _table()
    query = np.array([1, -1, 1, 1, -1], np.float32)
    n = dfi.select_neighbours(attrs, query, [(1, 1)], k=3, metric="hamming", exclude=1, allow_fewer=True)
    # smiling: 0, 2, 3, 7; Hamming over Male, Mouth_Closed, Young, Eyeglasses to (1, 1, 1, -1): 0->0, 2->1, 7->2, 3->4
    np.testing.assert_array_equal(n.target, [0, 2, 7])
    assert n.n_target_available == 4
    # not smiling (excluding the input 1): 4 (dist 2: Young, Eyeglasses), 5 (dist 1: Male)
    n = dfi.select_neighbours(attrs, query, [(1, 1)], k=2, metric="hamming", exclude=1)
    np.testing.assert_array_equal(n.source, [5, 4])
    # multi-attribute: smiling with an open mouth vs not smiling with a closed mouth
    n = dfi.select_neighbours(attrs, query, [(1, 1), (2, -1)], k=2, exclude=1)
    np.testing.assert_array_equal(np.sort(n.target), [2, 7])
    np.testing.assert_array_equal(np.sort(n.source), [4, 5])
    # same gender (Male, index 0): female 3 and 5 drop out
    n = dfi.select_neighbours(attrs, query, [(1, 1)], k=1, same=0, exclude=1)
    assert 3 not in n.target and n.source.tolist() == [4]
    # L2 ranking with continuous scores
    cont = np.array([[0.1, 2.0], [0.9, 0.6], [0.5, 0.9], [0.3, -1.0], [0.0, -0.7]], np.float32)
    n = dfi.select_neighbours(cont, np.array([0.0, -1.0], np.float32), [(1, 1)], k=3, allow_fewer=True)
    np.testing.assert_array_equal(n.target, [0, 2, 1])
    # NaN (unknown) query entries are left out of the distance
    q = np.array([np.nan, -1, np.nan, 1, np.nan], np.float32)
    n = dfi.select_neighbours(attrs, q, [(1, 1)], k=4, metric="hamming", allow_fewer=True)
    assert n.target[-1] == 3  # the only old one among the smiling


def test_too_few_neighbours():
    attrs = _table()
    query = np.array([1, -1, 1, 1, -1], np.float32)
    with pytest.raises(dfi.NeighbourError, match=r"only 4 images with the edit qualify \(K = 100\)") as e:
        dfi.select_neighbours(attrs, query, [(1, 1)], k=100)
    assert "\n" not in str(e.value)
    n = dfi.select_neighbours(attrs, query, [(1, 1)], k=100, allow_fewer=True)
    assert len(n.target) == 4 and len(n.source) == 3
    with pytest.raises(dfi.NeighbourError, match="only 0 images"):
        dfi.select_neighbours(attrs, query, [(1, 1), (2, 1), (4, 1)], k=1, allow_fewer=True)


def test_attribute_vector_and_scalings(key):
    k1, k2, k3 = jax.random.split(key, 3)
    shapes = {"a": (4, 4, 8), "b": (2, 2, 16)}
    ft = {t: jax.random.normal(jax.random.fold_in(k1, i), (5,) + s) for i, (t, s) in enumerate(shapes.items())}
    fs = {t: jax.random.normal(jax.random.fold_in(k2, i), (7,) + s) for i, (t, s) in enumerate(shapes.items())}
    phi = {t: jax.random.normal(jax.random.fold_in(k3, i), s) for i, (t, s) in enumerate(shapes.items())}
    w = dfi.attribute_vector(ft, fs)
    np.testing.assert_allclose(w["a"], ft["a"].mean(0) - fs["a"].mean(0), rtol=1e-5, atol=1e-6)
    alphas = jnp.array([0.0, 0.5, 1.0])
    t = dfi.edit_targets(phi, w, alphas, "chainer")
    chex.assert_shape(t["a"], (3, 4, 4, 8))
    np.testing.assert_allclose(t["a"][0], phi["a"], atol=1e-6)
    for tap in shapes:  # per layer: ‖t − φ‖ = α‖φ‖, along w
        np.testing.assert_allclose(jnp.linalg.norm(t[tap][2] - phi[tap]), jnp.linalg.norm(phi[tap]), rtol=1e-5)
        cos = jnp.vdot(t[tap][2] - phi[tap], w[tap]) / jnp.linalg.norm(t[tap][2] - phi[tap]) / jnp.linalg.norm(w[tap])
        np.testing.assert_allclose(cos, 1.0, rtol=1e-5)
    t = dfi.edit_targets(phi, w, alphas, "none")
    np.testing.assert_allclose(t["b"][1], phi["b"] + 0.5 * w["b"], rtol=1e-6)
    t = dfi.edit_targets(phi, w, alphas, "beta")
    msq = (jnp.sum(w["a"] ** 2) + jnp.sum(w["b"] ** 2)) / (w["a"].size + w["b"].size)
    np.testing.assert_allclose(t["b"][2], phi["b"] + w["b"] / msq, rtol=1e-5)
    wn = dfi.attribute_vector(ft, fs, normalize=dfi.uses_normalized_features("paper"))
    t = dfi.edit_targets(phi, wn, alphas, "paper")
    # in normalised units the step is α·w/‖w‖ over all layers: Σ_l (‖t_l − φ_l‖/‖φ_l‖)² = α²
    s = sum((jnp.linalg.norm(t[l][1] - phi[l]) / jnp.linalg.norm(phi[l])) ** 2 for l in shapes)
    np.testing.assert_allclose(s, 0.25, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown scaling"):
        dfi.edit_targets(phi, w, alphas, "gatys")


def test_edit_moves_images_along_the_attribute(random_vgg):
    """Toy attribute: a bright square in the middle. Editing images without it with growing α moves
    them toward the mean pixel difference of the two sets, monotonically (random weights)."""
    hw = 40
    base = smooth_images(12, hw, hw, seed=3) * 0.6
    with_sq = base[:6].copy()
    with_sq[:, 14:26, 14:26] = 0.95
    without = base[6:10]
    inputs = jnp.asarray(base[10:12])
    loss = I.FeatureLoss(taps=("relu1_2", "relu2_1"), tv_weight=1e-6)
    ft = I.feature_targets(loss, random_vgg.variables, jnp.asarray(with_sq))
    fs = I.feature_targets(loss, random_vgg.variables, jnp.asarray(without))
    w1 = dfi.attribute_vector(ft, fs)
    w = {t: jnp.stack([v, v]) for t, v in w1.items()}
    alphas = [0.0, 0.2, 0.4, 0.6]
    out, r = dfi.edit(loss, random_vgg.variables, inputs, w, alphas, I.SolverConfig(maxiter=25))
    chex.assert_shape(out, (2, 4, hw, hw, 3))
    chex.assert_shape(r.loss_history, (8, 26))
    d = (with_sq.mean(0) - without.mean(0)).reshape(-1)
    d /= np.linalg.norm(d)
    proj = np.array([[np.dot(np.asarray(out[i, j] - inputs[i]).reshape(-1), d) for j in range(4)] for i in range(2)])
    assert np.all(np.diff(proj, axis=1) > 0), proj
    assert np.all(np.abs(proj[:, 0]) < 0.2 * proj[:, -1]), proj
    centre = np.asarray(out[:, :, 14:26, 14:26]).mean(axis=(2, 3, 4))
    assert np.all(centre[:, -1] > centre[:, 0] + 0.05), centre
    with pytest.raises(ValueError, match="has 1 rows for 2 images"):
        dfi.edit(loss, random_vgg.variables, inputs, w1 | {t: v[None] for t, v in w1.items()}, alphas)


def test_post_processing():
    rng = np.random.default_rng(0)
    img = jnp.asarray(rng.uniform(0.2, 0.4, (8, 8, 3)), jnp.float32)
    ref = jnp.asarray(rng.uniform(0.5, 0.9, (8, 8, 3)), jnp.float32)
    m = dfi.match_color(img, ref)
    np.testing.assert_allclose(m.mean((0, 1)), ref.mean((0, 1)), atol=1e-5)
    np.testing.assert_allclose(m.std((0, 1)), ref.std((0, 1)), rtol=1e-4)
    np.testing.assert_allclose(dfi.subtract_residual(img + 0.1, ref, ref - 0.05), img + 0.05, atol=1e-6)
    mask = jnp.zeros((8, 8)).at[:4].set(1.0)
    b = dfi.mask_blend(img, ref, mask)
    np.testing.assert_array_equal(b[:4], img[:4])
    np.testing.assert_array_equal(b[4:], ref[4:])
    full = jnp.asarray(rng.uniform(0.2, 0.8, (32, 32, 3)), jnp.float32)
    small = jax.image.resize(full, (8, 8, 3), "linear")
    same = dfi.apply_at_full_resolution(full, small, small)
    np.testing.assert_allclose(same, full, atol=1e-6)
    brighter = dfi.apply_at_full_resolution(full, small, small + 0.1)
    np.testing.assert_allclose(brighter, jnp.clip(full + 0.1, 0, 1), atol=1e-5)


def test_mean_features_cache_gives_the_same_means_without_the_network(random_vgg, tmp_path, monkeypatch):
    from dfijax.data.synthetic_faces import synthetic_faces
    from dfijax.dfi import features as sweep

    data = synthetic_faces(20)
    loss = I.FeatureLoss(taps=("relu2_1", "relu3_1"))
    fc = sweep.feature_cache_dir(tmp_path, loss, random_vgg.meta, data, 32)
    plain = sweep.mean_features(loss, random_vgg.variables, data, range(12), 32, batch=5)
    first = sweep.mean_features(loss, random_vgg.variables, data, range(12), 32, batch=5, feature_cache=fc)
    assert len(list(fc.glob("*.npz"))) == 12
    calls = []
    monkeypatch.setattr(I, "feature_targets", lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    again = sweep.mean_features(loss, random_vgg.variables, data, list(range(12))[::-1], 32, batch=5, feature_cache=fc)
    assert not calls  # every image came from the cache
    for t in loss.taps:
        np.testing.assert_allclose(first[t], plain[t], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(again[t], plain[t], rtol=2e-3, atol=1e-4 * float(np.abs(plain[t]).max()))
    norm = sweep.mean_features(
        loss, random_vgg.variables, data, range(12), 32, normalize=True, batch=5, feature_cache=fc
    )
    assert not calls
    assert abs(float(np.linalg.norm(norm["relu2_1"])) - 1.0) < 0.5  # a mean of unit vectors
    other = sweep.feature_cache_dir(tmp_path, I.FeatureLoss(taps=("relu3_1",)), random_vgg.meta, data, 32)
    assert other != fc
