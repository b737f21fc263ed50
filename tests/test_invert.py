"""The inversion engine: reconstruction, both backends, bounds, batching, compiles, PyTorch parity."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from dfijax import invert as I
from dfijax.losses import psnr
from tests.conftest import smooth_images

# A truncated network and tiny images keep CPU tests fast; shared objects share one compilation.
LOSS = I.FeatureLoss(taps=("relu1_2", "relu2_1"))
CFG = I.SolverConfig(maxiter=40)
HW = (40, 40)


@pytest.fixture(scope="module")
def problem(random_vgg):
    x = jnp.asarray(smooth_images(3, *HW, seed=5))
    targets = I.feature_targets(LOSS, random_vgg.variables, x)
    x0 = I.noise_init(jax.random.key(1), x.shape)
    return x, targets, x0


@pytest.fixture(scope="module")
def solved(random_vgg, problem):
    x, targets, x0 = problem
    return I.invert(LOSS, random_vgg.variables, targets, x0, CFG)


def test_inverting_features_from_noise_reconstructs_the_image(problem, solved):
    x, _, x0 = problem
    chex.assert_shape(solved.images, x.shape)
    chex.assert_shape(solved.loss_history, (3, CFG.maxiter + 1))
    chex.assert_trees_all_equal(solved.num_iters, jnp.full((3,), CFG.maxiter))
    p = [float(psnr(solved.images[i], x[i])) for i in range(3)]
    p_noise = [float(psnr(x0[i], x[i])) for i in range(3)]
    # Seen: ~47-52 dB after 40 iterations (noise init: ~8 dB).
    assert min(p) > 35.0, p
    assert max(p_noise) < 12.0


def test_loss_histories_decrease(solved):
    h = np.asarray(solved.loss_history)
    assert np.all(np.isfinite(h))
    assert np.all(h[:, -1] < 1e-3 * h[:, 0])
    assert np.mean(np.diff(h, axis=1) < 0) > 0.8  # fixed-step L-BFGS is not strictly monotone
    np.testing.assert_allclose(solved.final_loss, h.min(axis=1), rtol=1e-6)


def test_optax_backend_follows_the_same_trajectory(random_vgg, problem, solved):
    _, targets, x0 = problem
    r = I.invert(LOSS, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=40, backend="optax"))
    h_jaxopt, h_optax = np.asarray(solved.loss_history), np.asarray(r.loss_history)
    np.testing.assert_allclose(h_optax[:, :15], h_jaxopt[:, :15], rtol=1e-3)
    assert np.all(h_optax[:, -1] < 1e-3 * h_optax[:, 0])


@pytest.mark.parametrize("backend", ["jaxopt", "optax"])
def test_pixel_bounds_are_respected(random_vgg, problem, backend):
    x, targets, _ = problem
    x0 = I.noise_init(jax.random.key(2), x.shape, -0.5, 1.5)  # starts outside the box
    r = I.invert(
        LOSS, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=30, backend=backend, bounds=(0.0, 1.0))
    )
    assert float(r.images.min()) >= 0.0 and float(r.images.max()) <= 1.0
    h = np.asarray(r.loss_history)
    # Seen: optax (projected L-BFGS) ~1e-4 of the start after 30 iterations; jaxopt's L-BFGS-B 0.003-0.1.
    assert np.all(h[:, -1] < (0.2 if backend == "jaxopt" else 1e-2) * h[:, 0])


def test_batched_solve_equals_solving_each_problem_alone(random_vgg, problem, solved):
    _, targets, x0 = problem
    for i in range(3):
        one = I.invert(LOSS, random_vgg.variables, {k: v[i : i + 1] for k, v in targets.items()}, x0[i : i + 1], CFG)
        np.testing.assert_allclose(one.loss_history[0, :10], solved.loss_history[i, :10], rtol=1e-4)
        np.testing.assert_allclose(one.images[0], solved.images[i], atol=2e-3)


def test_one_compilation_per_shape(random_vgg, problem):
    x, targets, x0 = problem
    cfg = I.SolverConfig(maxiter=3)
    for impl in (I._solve_batch, I._step_batch):
        counted = jax.jit(chex.assert_max_traces(impl, n=1), static_argnums=(0, 1))
        arg = x0 if impl is I._solve_batch else I._init_batch_jit(LOSS, cfg, random_vgg.variables, targets, x0)
        counted(LOSS, cfg, random_vgg.variables, targets, arg)
        counted(
            LOSS, cfg, random_vgg.variables, jax.tree.map(lambda t: t * 1.1, targets), arg
        )  # new values: no retrace
        with pytest.raises(AssertionError):  # a new shape traces again
            counted(
                LOSS,
                cfg,
                random_vgg.variables,
                {k: v[:2] for k, v in targets.items()},
                jax.tree.map(lambda a: a[:2], arg),
            )
        chex.clear_trace_counter()
    for loop, fn in (("device", I._solve_batch_jit), ("host", I._step_batch_jit)):
        before = fn._cache_size()
        I.invert(LOSS, random_vgg.variables, targets, x0 * 0.5, cfg, loop=loop)
        I.invert(LOSS, random_vgg.variables, targets, x0 * 0.7, cfg, loop=loop)
        assert fn._cache_size() == before + 1, loop


def test_host_and_device_loops_agree(random_vgg, problem):
    _, targets, x0 = problem
    cfg = I.SolverConfig(maxiter=12, ftol=0.3, patience=2)
    seen = []
    host = I.invert(
        LOSS,
        random_vgg.variables,
        targets,
        x0,
        cfg,
        loop="host",
        progress=lambda k, losses: seen.append((k, np.asarray(losses))),
        check_every=4,
    )
    dev = I.invert(LOSS, random_vgg.variables, targets, x0, cfg, loop="device")
    # same algorithm, two compiled programs: rounding differs and L-BFGS amplifies it (seen: 0.7% by it. 10)
    np.testing.assert_allclose(host.loss_history[:, :4], dev.loss_history[:, :4], rtol=1e-4)
    np.testing.assert_allclose(host.loss_history, dev.loss_history, rtol=2e-2)
    np.testing.assert_allclose(host.images, dev.images, atol=5e-3)
    np.testing.assert_array_equal(host.num_iters, dev.num_iters)
    assert [k for k, _ in seen] == [4, 8, 12]
    chex.assert_shape(seen[0][1], (3,))
    np.testing.assert_allclose(seen[0][1], host.loss_history[:, 4], rtol=1e-6)
    with pytest.raises(ValueError, match="loop must be"):
        I.invert(LOSS, random_vgg.variables, targets, x0, cfg, loop="gpu")


def test_loop_environment_variable_decides_auto(random_vgg, problem, monkeypatch):
    _, targets, x0 = problem
    monkeypatch.setenv("DFIJAX_INVERT_LOOP", "gpu")
    with pytest.raises(ValueError, match="loop must be 'auto', 'host' or 'device', got 'gpu'"):
        I.invert(LOSS, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=2))
    monkeypatch.setenv("DFIJAX_INVERT_LOOP", "device")
    before = I._solve_batch_jit._cache_size()
    I.invert(LOSS, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=2))
    assert I._solve_batch_jit._cache_size() == before + 1  # the one-loop device solve ran, not host steps


def test_device_loop_reports_progress_between_compiled_chunks(random_vgg, problem):
    _, targets, x0 = problem
    cfg = I.SolverConfig(maxiter=12, ftol=0.3, patience=2)
    whole = I.invert(LOSS, random_vgg.variables, targets, x0, cfg, loop="device")
    seen = []
    before = I._run_batch_jit._cache_size()
    chunked = I.invert(
        LOSS,
        random_vgg.variables,
        targets,
        x0,
        cfg,
        loop="device",
        progress=lambda k, losses: seen.append((k, np.asarray(losses))),
        check_every=5,
    )
    # chunks of 5, 5 and the last 2: one compile for every chunk length
    assert [k for k, _ in seen] == [5, 10, 12]
    assert I._run_batch_jit._cache_size() == before + 1
    np.testing.assert_allclose(seen[0][1], chunked.loss_history[:, 5], rtol=1e-6)
    # the same while-loop body as the one-loop solve, stopped and restarted every 5 iterations
    np.testing.assert_array_equal(chunked.num_iters, whole.num_iters)
    np.testing.assert_allclose(chunked.loss_history, whole.loss_history, rtol=1e-5)
    np.testing.assert_allclose(chunked.images, whole.images, atol=1e-5)


def test_early_stop_on_relative_loss_change(random_vgg, problem, solved):
    _, targets, x0 = problem
    ftol, patience = 0.3, 2
    r = I.invert(
        LOSS, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=40, ftol=ftol, patience=patience), check_every=1
    )
    full = np.asarray(solved.loss_history)  # the same problems run for all 40 iterations
    h, n = np.asarray(r.loss_history), np.asarray(r.num_iters)
    for i in range(3):
        rel = np.abs(np.diff(full[i])) / np.abs(full[i, :-1])  # rel[k-1]: change at iteration k
        small = (rel <= ftol) & (np.arange(1, 41) > 1)
        expected = next(k for k in range(2, 41) if small[k - patience : k].all())
        assert n[i] == expected < 40
        np.testing.assert_allclose(h[i, : n[i] + 1], full[i, : n[i] + 1], rtol=1e-5)
        assert np.all(np.isnan(h[i, n[i] + 1 :]))


@pytest.mark.parametrize("backend, linesearch", [("optax", "zoom"), ("jaxopt", "backtracking")])
def test_line_search_variants_decrease_the_loss(random_vgg, problem, backend, linesearch):
    _, targets, x0 = problem
    r = I.invert(
        LOSS,
        random_vgg.variables,
        {k: v[:1] for k, v in targets.items()},
        x0[:1],
        I.SolverConfig(maxiter=15, backend=backend, linesearch=linesearch),
    )
    h = np.asarray(r.loss_history[0])
    assert np.all(np.diff(h) <= 1e-6 * h[0])  # line searches enforce decrease
    # a backtracking search's first steps are tiny and its trajectory chaotic: seen at 15 iterations 0.20·h[0]
    # with XLA's default CPU settings and 0.0015·h[0] with others (zoom: 5e-6 either way)
    assert h[-1] < 0.3 * h[0]


def test_tv_term_smooths_the_result(random_vgg, problem):
    _, targets, x0 = problem
    from dfijax.losses import tv_squared

    smooth_loss = I.FeatureLoss(taps=LOSS.taps, tv_weight=1e-2)
    a = I.invert(LOSS, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=10))
    b = I.invert(smooth_loss, random_vgg.variables, targets, x0, I.SolverConfig(maxiter=10))
    assert float(jnp.mean(jax.vmap(tv_squared)(b.images))) < float(jnp.mean(jax.vmap(tv_squared)(a.images)))


def test_matches_torch_lbfgs_on_the_same_problem(random_vgg):
    """Same weights, target and start: our fixed-step L-BFGS follows torch.optim.LBFGS (no line search)."""
    torch = pytest.importorskip("torch")
    from benchmarks import torch_reference as tr

    x = smooth_images(1, 36, 36, seed=9)
    x0 = np.asarray(I.noise_init(jax.random.key(4), x.shape))
    loss = I.FeatureLoss(taps=("relu2_1",), tv_weight=1e-3)
    targets = I.feature_targets(loss, random_vgg.variables, jnp.asarray(x))
    ours = I.invert(loss, random_vgg.variables, targets, jnp.asarray(x0), I.SolverConfig(maxiter=20))
    net = tr.load_hwio(tr.TorchVGG19(), random_vgg.variables["params"])
    t_targets = {"relu2_1": torch.from_numpy(np.array(targets["relu2_1"])).permute(0, 3, 1, 2)}
    _, h_torch = tr.invert_lbfgs(net, t_targets, torch.from_numpy(x0.copy()), iters=20, history_size=10, tv_weight=1e-3)
    h_ours = np.asarray(ours.loss_history[0])
    np.testing.assert_allclose(h_ours[:8], h_torch[:8], rtol=2e-3)
    assert h_ours.min() <= 1.05 * min(h_torch)


def test_bad_configuration_and_inputs_get_one_line_errors(random_vgg, problem):
    _, targets, x0 = problem
    cases = [
        (lambda: I.SolverConfig(backend="lbfgs"), "unknown solver backend 'lbfgs'"),
        (lambda: I.SolverConfig(backend="scipy", linesearch="zoom"), "its own line search"),
        (lambda: I.SolverConfig(units=255.0), "units scale the scipy backend"),
        (lambda: I.SolverConfig(backend="scipy", units=0.0), "units must be a positive number"),
        (lambda: I.SolverConfig(linesearch="wolfe"), "unknown line search"),
        (lambda: I.SolverConfig(maxiter=0), "maxiter must be a positive integer"),
        (lambda: I.SolverConfig(bounds=(1.0, 0.0)), "bounds must be"),
        (lambda: I.FeatureLoss(taps=("relu9_1",)), "unknown VGG-19 tap"),
        (lambda: I.FeatureLoss(taps="relu1_1"), "non-empty tuple"),
        (lambda: I.FeatureLoss(taps=("relu1_1",), layer_weights=(1.0, 2.0)), "2 layer weights"),
        (
            lambda: I.invert(I.FeatureLoss(taps=("relu3_1",)), random_vgg.variables, targets, x0, CFG),
            "targets lack taps",
        ),
        (lambda: I.invert(LOSS, random_vgg.variables, targets, x0[:2], CFG), "has batch 3 but x0 has 2"),
        (lambda: I.invert(LOSS, random_vgg.variables, targets, x0[0], CFG), r"\[B, H, W, 3\]"),
        (lambda: I.invert(LOSS, random_vgg.variables, targets, x0.at[0, 0, 0, 0].set(jnp.nan), CFG), "NaN"),
        (
            lambda: I.invert(LOSS, random_vgg.variables, {**targets, "relu2_1": targets["relu2_1"] * jnp.inf}, x0, CFG),
            r"targets \['relu2_1'\] contain NaN",
        ),
    ]
    for fn, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            fn()
        assert "\n" not in str(e.value)


def test_sharded_across_4_devices_equals_one_device(random_vgg, problem, solved, all_devices):
    """conftest forces 4 host CPU devices; 3 problems are padded to 4 and split one per device."""
    assert all_devices == 4
    _, targets, x0 = problem
    r = I.invert(LOSS, random_vgg.variables, targets, x0, CFG, shard=True)
    chex.assert_shape(r.images, x0.shape)
    np.testing.assert_allclose(r.loss_history[:, :10], solved.loss_history[:, :10], rtol=1e-4)
    np.testing.assert_allclose(r.images, solved.images, atol=2e-3)


@dataclasses.dataclass(frozen=True)
class Quartic:
    """A small bounded objective with curvature that changes along the way (no VGG: milliseconds)."""

    def target_names(self):
        return ("t",)

    def __call__(self, x, variables, targets):
        return jnp.sum((x - targets["t"]) ** 2 * (1.0 + 4.0 * x**2)) + 0.1 * jnp.sum(jnp.diff(x, axis=0) ** 2)


def test_scipy_backend_is_scipys_lbfgsb_on_the_scaled_variable():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(0.3, 0.7, (2, 32, 33, 3)).astype(np.float32)
    t = {"t": jnp.asarray(rng.uniform(-0.5, 1.5, (2, 32, 33, 3)), jnp.float32)}
    loss = Quartic()
    seen, shots = [], []
    cfg = I.SolverConfig(backend="scipy", maxiter=12, history_size=4, bounds=(0.1, 0.9), units=255.0)
    r = I.invert(loss, {}, t, x0, cfg, check_every=3, progress=lambda k, f: seen.append((k, np.asarray(f))),
                 snapshot=lambda k, z: shots.append(np.asarray(z)))  # fmt: skip
    chex.assert_shape(r.images, x0.shape)
    chex.assert_shape(r.loss_history, (2, 13))
    for i in range(2):  # scipy itself, on u = 255·x with the box scaled alike (the same compiled objective)

        def fun(u, i=i):
            x = jnp.asarray(u.reshape(x0.shape[1:]) / 255.0, jnp.float32)
            f, g = I._value_and_grad(loss, x, {}, {"t": t["t"][i]})
            return float(f), np.asarray(g, np.float64).ravel() / 255.0

        u0 = x0[i].astype(np.float64).ravel() * 255.0
        box = [(0.1 * 255.0, 0.9 * 255.0)] * u0.size
        opts = {"maxiter": 12, "maxcor": 4}
        want = scipy.optimize.minimize(fun, u0, jac=True, method="L-BFGS-B", bounds=box, options=opts)
        np.testing.assert_allclose(np.asarray(r.images[i]).ravel(), want.x / 255.0, atol=1e-6)
        assert float(r.final_loss[i]) == pytest.approx(want.fun, rel=1e-5) and int(r.num_iters[i]) == want.nit
    assert np.all(np.isfinite(np.asarray(r.loss_history)[:, : int(min(r.num_iters)) + 1]))
    assert float(r.images.min()) >= 0.1 - 1e-6 and float(r.images.max()) <= 0.9 + 1e-6
    # progress counts both problems' iterations in one problem's units, each problem's latest loss
    ks = [k for k, _ in seen]
    assert ks == sorted(ks) and ks[-1] == 12 and np.isnan(seen[0][1][1]) and np.all(np.isfinite(seen[-1][1]))
    assert len(shots) >= 4 and not np.allclose(shots[0], shots[-1])
    # units matter: the first step of L-BFGS-B (x − ∇f when boxed) on [0, 1] units goes elsewhere
    plain = I.invert(loss, {}, t, x0, dataclasses.replace(cfg, units=1.0))
    assert np.abs(np.asarray(plain.images) - np.asarray(r.images)).max() > 1e-3
