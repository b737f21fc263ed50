"""Shared test set-up: CPU only, 4 forced host devices for the sharding tests (enough to split batches
unevenly), the library using one of them in every other test, as on a one-device machine (`all_devices`
below), XLA's backend at
optimisation level 1 and its loop emitters instead of the fusion emitters (compiling was half of the
suite's CPU time: LLVM's level-2 passes cost up to 4x on the PRNG and init programs every training test
builds, the fusion emitters ~1.8x on every program, for programs at most 20 % faster at test sizes),
implicit rank promotion an error (every broadcast in the code is explicit; worker processes inherit it),
one persistent compilation cache for the whole test session (both workers and every experiment share
compiled programs; removed at the end), PRNG keys, tiny images."""

import contextlib
import io
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_NUMPY_RANK_PROMOTION"] = "raise"
DEVICES = 4
# also for the tests' own subprocesses (one device)
FAST_COMPILE = "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), FAST_COMPILE, f"--xla_force_host_platform_device_count={DEVICES}"]
).strip()

# Set by the first process (the controller, whose environment the workers inherit), so one folder serves
# the session; never the user's ~/.cache.
os.environ.setdefault("DFIJAX_TEST_JAX_CACHE", tempfile.mkdtemp(prefix="dfijax-test-jax-"))
os.environ["DFIJAX_JAX_CACHE"] = os.environ["DFIJAX_TEST_JAX_CACHE"]
os.environ["DFIJAX_JAX_CACHE_MIN_SECS"] = "0.2"

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dfijax  # noqa: E402,F401  (filters jaxopt's import warning)
from dfijax import mesh, runtime  # noqa: E402

assert jax.config.jax_numpy_rank_promotion == "raise"
runtime.enable_compilation_cache()

# The library uses the first forced device only, as on a one-device machine ($DFIJAX_DEVICES, which
# dfijax.mesh reads): the systems split every batch over all the devices they use, and 4 devices on 2
# cores cost a tenth of the suite's CPU time (SPMD compilation, per-device threads) in tests that are not
# about sharding. A test about sharding takes the `all_devices` fixture, which gives the library all 4.
os.environ[mesh.ENV_DEVICES] = "1"


@pytest.fixture
def all_devices(monkeypatch) -> int:
    """All the forced CPU devices, used by the library for this test: their count."""
    monkeypatch.delenv(mesh.ENV_DEVICES)
    assert mesh.local_device_count() == jax.local_device_count() == DEVICES
    return DEVICES


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller, after every worker is done
        shutil.rmtree(os.environ["DFIJAX_TEST_JAX_CACHE"], ignore_errors=True)


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
    """Run an experiment in tmp_path with no real weights (the seeded random VGG-19) and a private
    feature cache (compiled programs: the session's shared cache), so tests never touch the user's
    weights/ or ~/.cache."""
    import dfijax.weights

    monkeypatch.delenv("DFIJAX_WEIGHTS", raising=False)
    monkeypatch.setattr(dfijax.weights, "DEFAULT_WEIGHTS_DIR", tmp_path / "no-weights")
    monkeypatch.setenv("DFIJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def one_run(tmp_path_factory, name: str, main, argv: list[str]) -> tuple[pathlib.Path, pathlib.Path, str]:
    """An experiment run once for a module's tests (its pictures, resume and command-line checks):
    main(argv + ["--out", <base>/run]) must return 0, isolated in a fresh folder <base> whose feature
    cache later runs may reuse. Returns (<base>, <base>/run, what the run printed to stderr)."""
    base = tmp_path_factory.mktemp(name)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        isolate(mp, base)
        assert main([*argv, "--out", str(base / "run")]) == 0
    return base, base / "run", err.getvalue()


@pytest.fixture
def images():
    return smooth_images
