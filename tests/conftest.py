"""Shared test set-up: CPU only, 8 forced host devices for sharding tests, implicit rank promotion an
error (every broadcast in the code is explicit; worker processes inherit it), PRNG keys, tiny images."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_NUMPY_RANK_PROMOTION"] = "raise"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dfijax  # noqa: E402,F401  (filters jaxopt's import warning)

assert jax.config.jax_numpy_rank_promotion == "raise"


@pytest.fixture
def key():
    """A fresh PRNG key per test."""
    return jax.random.key(0)


@pytest.fixture(scope="session")
def random_vgg():
    """The seeded random VGG-19 (dfijax.weights.random_weights(0)), built once."""
    from dfijax.weights import random_weights

    return random_weights(0)


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """[n, h, w, 3] float32 in [0, 1]: random smooth colour fields with an edge, deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = []
    for _ in range(n):
        f = rng.uniform(2, 7, size=(3, 2))
        p = rng.uniform(0, 6.3, size=3)
        img = np.stack([0.5 + 0.35 * np.sin(f[c, 0] * xx + f[c, 1] * yy + p[c]) for c in range(3)], -1)
        img[(xx - rng.uniform(0.3, 0.7)) ** 2 + (yy - 0.5) ** 2 < 0.04] *= 0.5
        out.append(img)
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


def isolate(monkeypatch, tmp_path) -> None:
    """Run an experiment in tmp_path with no real weights (the seeded random VGG-19) and private
    compilation/feature caches, so tests never touch the user's weights/ or ~/.cache."""
    import dfijax.weights

    monkeypatch.delenv("DFIJAX_WEIGHTS", raising=False)
    monkeypatch.setattr(dfijax.weights, "DEFAULT_WEIGHTS_DIR", tmp_path / "no-weights")
    monkeypatch.setenv("DFIJAX_JAX_CACHE", str(tmp_path / "jaxcache"))
    monkeypatch.setenv("DFIJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def images():
    return smooth_images
