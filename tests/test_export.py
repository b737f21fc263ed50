"""Every compiled entry point exports for CPU, CUDA and TPU from this CPU, with nothing CPU-only inside.

Lowering only (jax.export with abstract shapes): nothing here runs except one round-trip check.
"""

import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state

from dfijax import batching
from dfijax import export as E
from dfijax import invert as inv
from dfijax.dfi import probe as pr
from dfijax.dtn import train as dt
from dfijax.dtn.losses import preset
from dfijax.dtn.model import DigitClassifier
from dfijax.fusion import train as ft
from dfijax.style import fast as fs
from dfijax.vgg import VGG19, layer_index

S, B = 32, 2
IMAGES = jax.ShapeDtypeStruct((B, S, S, 3), jnp.float32)
KEY = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)


def vgg_spec(last_tap: str):
    return jax.eval_shape(lambda: VGG19().init(jax.random.key(0), jnp.zeros((1, S, S, 3)), taps=(last_tap,)))


def assert_portable(fun_jit, *args):
    exp = E.export_portable(fun_jit, *args)
    assert tuple(exp.platforms) == E.PLATFORMS
    assert E.portability_problems(exp) == [], E.portability_problems(exp)
    assert "f64" not in exp.mlir_module() and "callback" not in exp.mlir_module()
    return exp


@pytest.mark.parametrize(
    "backend, dtype", [("jaxopt", jnp.bfloat16), ("optax", jnp.float32)], ids=["jaxopt-bf16", "optax-f32"]
)
def test_inversion_solve_exports_in_both_loop_modes(backend, dtype):
    loss = inv.FeatureLoss(model=VGG19(dtype=dtype), tv_weight=1e-3)
    cfg = inv.SolverConfig(maxiter=5, backend=backend, ftol=1e-6)
    variables = vgg_spec("relu5_1")
    targets = jax.eval_shape(lambda v, x: jax.vmap(lambda z: loss.features(v, z))(x), variables, IMAGES)
    state = jax.eval_shape(lambda v, t, x: inv._init_batch(loss, cfg, v, t, x), variables, targets, IMAGES)
    host = assert_portable(inv._step_batch_jit, loss, cfg, variables, targets, state)  # loop="host"
    device = assert_portable(inv._solve_batch_jit, loss, cfg, variables, targets, IMAGES)  # loop="device"
    # loop="device" with progress: chunks of iterations up to a traced iteration count
    until = jax.ShapeDtypeStruct((), jnp.int32)
    chunk = assert_portable(inv._run_batch_jit, loss, cfg, variables, targets, state, until)
    assert [a.shape for a in chunk.out_avals] == [a.shape for a in jax.tree.leaves(state)]
    # the device solve adds the iteration loop around the step's (L-BFGS two-loop recursion) loops
    assert device.mlir_module().count("stablehlo.while") > host.mlir_module().count("stablehlo.while")
    assert [a.shape for a in device.out_avals] == [(B, S, S, 3), (B, cfg.maxiter + 1), (B,), (B,)]


@pytest.mark.parametrize("dtype", [None, jnp.bfloat16], ids=["f32", "bf16"])
def test_fast_style_train_step_and_inference_export(dtype):
    net = fs.TransformNet(width=8, blocks=1, dtype=dtype)
    loss = fs.PerceptualLoss(model=VGG19(dtype=dtype or jnp.float32))
    state = jax.eval_shape(lambda: fs.create_state(net, S, 1e-3, 0))
    variables = vgg_spec("relu4_4")
    grams = jax.eval_shape(lambda v: loss.style_grams(v, jnp.zeros((S, S, 3))), variables)
    assert_portable(fs.make_train_step(loss), state, IMAGES, variables, grams)
    assert_portable(batching.apply, net, {"params": state.params}, IMAGES)


def test_fusion_gan_steps_export():
    cfg = ft.FusionConfig(size=S, width=8)
    state = jax.eval_shape(lambda: ft.init_state(cfg, 0))
    variables = vgg_spec(max(cfg.loss.taps, key=layer_index))
    for step in ft.make_steps(cfg):  # stage-1 autoencoder, stage-2 critic, stage-2 (E, G)
        assert_portable(step, state, IMAGES, KEY, variables)


def test_dtn_and_probe_steps_export():
    f = DigitClassifier(width=8, feat_dim=16)
    dtn = dt.make_dtn(preset("digits"), f, width=8, d_width=8, out_channels=1)
    state = jax.eval_shape(lambda: dt.init_state(dtn, lr=1e-3, seed=0))
    f_params = jax.eval_shape(lambda: f.init(jax.random.key(0), jnp.zeros((1, S, S, 3)))["params"])
    assert_portable(dt.make_d_step(dtn), state, (IMAGES, IMAGES), KEY, f_params)
    assert_portable(jax.jit(dt.make_g_step(dtn)), state, (IMAGES, IMAGES), KEY, f_params)

    model = pr.ProbeCNN(num_attrs=3, width=8)
    pstate = jax.eval_shape(
        lambda: train_state.TrainState.create(
            apply_fn=model.apply,
            params=model.init(jax.random.key(0), jnp.zeros((1, S, S, 3)))["params"],
            tx=optax.adam(1e-3),
        )
    )
    assert_portable(pr.make_train_step(model), pstate, (IMAGES, jax.ShapeDtypeStruct((B, 3), jnp.float32)), KEY)


def test_serialized_cpu_export_computes_what_jit_computes():
    model = pr.ProbeCNN(num_attrs=3, width=8)
    # jitted init with the rbg generator: eager threefry init compiles for seconds on XLA:CPU
    params = jax.jit(model.init)(jax.random.key(0, impl="rbg"), jnp.zeros((1, S, S, 3)))["params"]
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(B, S, S, 3)), jnp.float32)
    blob = E.export_portable(batching.apply, model, {"params": params}, x).serialize()
    restored = jax.export.deserialize(blob)
    assert tuple(restored.platforms) == E.PLATFORMS
    got = restored.call({"params": params}, x)
    want = batching.apply_params(model, params, x)
    chex.assert_shape(got, (B, 3))
    assert float(jnp.max(jnp.abs(want))) > 1e-3  # real logits, not zeros
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_portability_checks_flag_what_would_not_run_everywhere():
    def fake(text, platforms=E.PLATFORMS):
        return types.SimpleNamespace(mlir_module=lambda: text, platforms=platforms)

    ok = "stablehlo.custom_call @Sharding(%0) : (tensor<2xf32>) -> tensor<2xf32>"
    assert E.portability_problems(fake(ok)) == []
    bad = E.portability_problems(
        fake("stablehlo.custom_call @xla_ffi_python_cpu_callback(%0) : (tensor<2xf64>) -> tensor<2xf64>", ("cpu",))
    )
    assert len(bad) == 4 and "xla_ffi_python_cpu_callback" in bad[2], bad
    assert E.custom_call_targets(fake('%1 = "stablehlo.custom_call"(%0) {call_target_name = "lapack_sgesdd_ffi"}')) == {
        "lapack_sgesdd_ffi"
    }
    with jax.enable_x64(True):  # a real float64 module is caught too
        exp = jax.export.export(jax.jit(lambda x: x * 2), platforms=E.PLATFORMS)(jnp.ones(3, jnp.float64))
    assert any("float64" in p for p in E.portability_problems(exp))
    with pytest.raises(ValueError, match=r"cannot export for \('cpu', 'cuda', 'tpu'\)") as e:  # host callbacks
        E.export_portable(jax.jit(lambda x: jax.debug.print("{}", x) or x), jnp.ones(3))
    assert "\n" not in str(e.value)


def test_cost_analysis_counts_flops_and_bytes_that_grow_linearly_with_batch():
    from benchmarks import cost_analysis as ca

    one, two = (ca.analyze(S, b, "f32", "host", iters=5, taps=("relu1_2",)) for b in (1, 2))  # VGG to conv1_2
    assert one["flops"] > 0 and one["temp_size_in_bytes"] > 0
    # XLA counts exact multiply-adds (padding excluded): a little under 2 FLOP × (forward + input gradient)
    assert 0.8 < one["flops"] / (4 * ca.macs_to("conv1_2", S)) <= 1.05
    assert two["flops"] / one["flops"] == pytest.approx(2.0, rel=0.05)
    assert two["total_bytes"] > one["total_bytes"] and one["alias_size_in_bytes"] > 0  # the state is donated
    c, m = ca.fit_line([1, 2], [one["total_bytes"], two["total_bytes"]])
    assert c > 0 and m == pytest.approx(two["total_bytes"] - one["total_bytes"])
    assert ca.max_batch(c, m, c + 10.5 * m) == 10 and ca.max_batch(c, m, c / 2) == 0
