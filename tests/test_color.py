"""Colour transfer: the PCA mode is Σt^½ Σs^-½ with symmetric roots, so it is unique."""

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from dfijax.style import color


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    mix_s, mix_t = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    src = np.clip(0.5 + 0.15 * rng.normal(size=(24, 20, 3)) @ mix_s, 0, 1).astype(np.float32)
    tgt = np.clip(0.4 + 0.1 * rng.normal(size=(16, 18, 3)) @ mix_t, 0, 1).astype(np.float32)
    return src, tgt


def _cov(x):
    return np.cov(np.asarray(x, np.float64).reshape(-1, 3).T)


def test_pca_equals_direct_matrix_square_roots():
    src, tgt = _pair()
    out = np.asarray(color.match_color_histogram(src, tgt, "pca"), np.float64)
    eps = 1e-5 * np.eye(3)
    cs, ct = _cov(src) + eps, _cov(tgt) + eps
    a = np.real(scipy.linalg.sqrtm(ct)) @ np.linalg.inv(np.real(scipy.linalg.sqrtm(cs)))
    xs = src.reshape(-1, 3).astype(np.float64)
    want = ((xs - xs.mean(0)) @ a.T + tgt.reshape(-1, 3).mean(0)).reshape(src.shape)
    np.testing.assert_allclose(out, want, atol=2e-4)
    np.testing.assert_allclose(_cov(out), _cov(tgt), rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), tgt.reshape(-1, 3).mean(0), atol=1e-5)


def test_pca_is_invariant_to_eigenvector_signs(monkeypatch):
    src, tgt = _pair(1)
    before = np.asarray(color.match_color_histogram(src, tgt, "pca"))
    eigh = jnp.linalg.eigh
    calls = []

    def flipped(c):  # flip some eigenvector signs on every other call only (a different backend's choice)
        calls.append(1)
        w, v = eigh(c)
        return w, v * (jnp.array([[-1.0, 1.0, -1.0]]) if len(calls) % 2 else 1.0)

    monkeypatch.setattr(jnp.linalg, "eigh", flipped)
    after = np.asarray(color.match_color_histogram(src, tgt, "pca"))
    np.testing.assert_allclose(after, before, atol=1e-5)
    assert calls


def test_every_mode_matches_mean_and_covariance_and_modes_differ():
    src, tgt = _pair(2)
    outs = {m: np.asarray(color.match_color_histogram(src, tgt, m), np.float64) for m in ("chol", "pca", "sym")}
    for out in outs.values():  # up to the 1e-5 ridge added to both covariances
        np.testing.assert_allclose(_cov(out), _cov(tgt), rtol=2e-3, atol=1e-4)
    assert np.abs(outs["chol"] - outs["pca"]).max() > 1e-3  # different solutions of the same constraint
