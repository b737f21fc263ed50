import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from dfijax import losses as L


def _feats(key, shapes):
    keys = jax.random.split(key, len(shapes))
    return {n: jax.random.normal(k, s) for (n, s), k in zip(shapes.items(), keys)}


SHAPES = {"relu3_1": (8, 8, 16), "relu4_1": (4, 4, 32)}


def test_feature_mse_values(key):
    f = _feats(key, SHAPES)
    t = _feats(jax.random.fold_in(key, 1), SHAPES)
    manual_mean = sum(np.mean((np.asarray(f[l]) - np.asarray(t[l])) ** 2) * w for l, w in zip(SHAPES, (2.0, 0.5)))
    np.testing.assert_allclose(L.feature_mse(f, t, tuple(SHAPES), (2.0, 0.5)), manual_mean, rtol=1e-5)
    manual_sum = sum(0.5 * np.sum((np.asarray(f[l]) - np.asarray(t[l])) ** 2) for l in SHAPES)
    np.testing.assert_allclose(L.feature_mse(f, t, tuple(SHAPES), reduction="sum"), manual_sum, rtol=1e-5)
    np.testing.assert_allclose(
        L.feature_mse(f, t, tuple(SHAPES), {"relu4_1": 1.0}),
        np.mean((np.asarray(f["relu4_1"]) - np.asarray(t["relu4_1"])) ** 2),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="1 layer weights for 2 layers"):
        L.feature_mse(f, t, tuple(SHAPES), (1.0,))


def test_feature_vector_concatenates_and_normalises(key):
    f = _feats(key, SHAPES)
    v = L.feature_vector(f, tuple(SHAPES))
    chex.assert_shape(v, (8 * 8 * 16 + 4 * 4 * 32,))
    np.testing.assert_array_equal(v[: 8 * 8 * 16], np.asarray(f["relu3_1"]).reshape(-1))
    n = L.feature_vector(f, tuple(SHAPES), normalize=True)
    np.testing.assert_allclose(np.linalg.norm(n[: 8 * 8 * 16]), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(n[8 * 8 * 16 :]), 1.0, rtol=1e-5)


def test_gram_and_style_loss_values(key):
    f = jax.random.normal(key, (5, 6, 7))
    g = L.gram(f)
    chex.assert_shape(g, (7, 7))
    flat = np.asarray(f).reshape(30, 7)
    np.testing.assert_allclose(g, flat.T @ flat / 30, rtol=1e-5)
    np.testing.assert_allclose(L.gram(f, "hwc"), flat.T @ flat / 210, rtol=1e-5)
    np.testing.assert_allclose(g, g.T, rtol=1e-6)
    target = {"a": jnp.eye(7)}
    np.testing.assert_allclose(
        L.style_loss({"a": f}, target, ("a",), (3.0,)), 3.0 * np.mean((flat.T @ flat / 30 - np.eye(7)) ** 2), rtol=1e-5
    )
    assert L.gatys_style_weights(("a", "b"), {"a": 64, "b": 512}) == [1e3 / 64**2, 1e3 / 512**2]


def test_tv_values():
    x = np.zeros((4, 5, 3), np.float32)
    x[:, 2:, 0] = 1.0  # one vertical edge in the red channel
    # squared: horizontal diffs 1 on 4 rows of 4 diffs, one channel of 3 -> mean 4/(4*4*3)
    np.testing.assert_allclose(L.tv_squared(jnp.asarray(x)), 4 / 48, rtol=1e-6)
    # beta=2 on 0-255: cropped to 3x4; edge at column 1->2 in 3 rows: 3 * 255^2
    np.testing.assert_allclose(L.tv_beta(jnp.asarray(x), beta=2.0), 3 * 255.0**2, rtol=1e-6)
    np.testing.assert_allclose(L.tv_beta(jnp.asarray(x), beta=1.0, scale=1.0, eps=0.0), 3.0, rtol=1e-5)
    np.testing.assert_allclose(L.tv_anisotropic(jnp.asarray(x)), 4 / 48, rtol=1e-6)
    assert float(L.tv_squared(jnp.ones((6, 6, 3)) * 0.3)) == 0.0


def test_psnr():
    x = jnp.zeros((4, 4, 3))
    np.testing.assert_allclose(L.psnr(x, x + 0.1), 20.0, rtol=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        "feature_mse",
        "feature_mse_sum",
        "style",
        "content",
        "tv_squared",
        "tv_beta2",
        "tv_beta1.5",
        "feature_vector_norm",
    ],
)
def test_gradients_match_finite_differences(key, name):
    f = _feats(key, SHAPES)
    t = _feats(jax.random.fold_in(key, 7), SHAPES)
    img = jax.random.uniform(jax.random.fold_in(key, 3), (6, 7, 3))
    grams = {l: L.gram(t[l]) for l in SHAPES}
    fns = {
        "feature_mse": (
            lambda a: L.feature_mse({"relu3_1": a, "relu4_1": f["relu4_1"]}, t, tuple(SHAPES)),
            f["relu3_1"],
        ),
        "feature_mse_sum": (
            lambda a: L.feature_mse({"relu3_1": a, "relu4_1": f["relu4_1"]}, t, tuple(SHAPES), reduction="sum"),
            f["relu3_1"],
        ),
        "style": (lambda a: L.style_loss({"relu3_1": a}, grams, ("relu3_1",)), f["relu3_1"]),
        "content": (lambda a: L.content_loss({"c": a}, {"c": t["relu3_1"]}, "c"), f["relu3_1"]),
        "tv_squared": (L.tv_squared, img),
        "tv_beta2": (lambda x: L.tv_beta(x, 2.0, scale=1.0), img),
        "tv_beta1.5": (lambda x: L.tv_beta(x, 1.5, scale=1.0), img),
        "feature_vector_norm": (
            lambda a: jnp.sum(
                L.feature_vector({"relu3_1": a}, ("relu3_1",), normalize=True) * t["relu3_1"].reshape(-1)
            ),
            f["relu3_1"],
        ),
    }
    fn, arg = fns[name]
    check_grads(fn, (arg,), order=1, modes=["rev"], eps=1e-3, atol=2e-2, rtol=2e-2)
