import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax.vgg import LAYERS, VGG, VGG16, VGG19, conv_names, layers, preprocess_constants, tap_shapes
from tests.conftest import smooth_images

_apply = jax.jit(lambda model, v, x, taps: model.apply(v, x, taps=taps), static_argnums=(0, 3))


@pytest.mark.parametrize("hw", [(32, 32), (37, 45)])
def test_every_tap_has_the_expected_shape(random_vgg, hw):
    x = jnp.asarray(smooth_images(2, *hw))
    out = _apply(VGG19(), random_vgg.variables, x, LAYERS)
    assert set(out) == set(LAYERS)
    expected = {k: (2,) + s for k, s in tap_shapes(hw, LAYERS).items()}
    chex.assert_trees_all_equal_shapes_and_dtypes(out, {k: jnp.zeros(s, jnp.float32) for k, s in expected.items()})
    assert out["pool5"].shape == (2, hw[0] // 32, hw[1] // 32, 512)
    assert float(jnp.min(out["relu3_1"])) >= 0.0 and float(jnp.min(out["conv3_1"])) < 0.0
    np.testing.assert_allclose(out["relu2_1"], np.maximum(out["conv2_1"], 0.0), rtol=0, atol=0)


def test_computes_nothing_past_the_deepest_tap(random_vgg):
    # Only conv1_1's weights given: asking for relu1_1 must work, pool1 (needs conv1_2) must not.
    v = {
        "params": {"conv1_1": random_vgg.variables["params"]["conv1_1"]},
        "preprocess": random_vgg.variables["preprocess"],
    }
    x = jnp.asarray(smooth_images(1, 32, 32))
    out = VGG19().apply(v, x, taps=("relu1_1",))
    chex.assert_shape(out["relu1_1"], (1, 32, 32, 64))
    with pytest.raises(flax.errors.ScopeParamNotFoundError, match='"kernel" in scope "/conv1_2"'):
        VGG19().apply(v, x, taps=("pool1",))


def test_average_pooling_is_the_mean_of_each_window(random_vgg):
    x = jnp.asarray(smooth_images(1, 34, 34))
    out = VGG19(pooling="avg").apply(random_vgg.variables, x, taps=("relu1_2", "pool1"))
    r = np.asarray(out["relu1_2"])[0]
    manual = r.reshape(17, 2, 17, 2, 64).mean(axis=(1, 3))
    np.testing.assert_allclose(out["pool1"][0], manual, rtol=1e-5, atol=1e-6)
    out_max = VGG19(pooling="max").apply(random_vgg.variables, x, taps=("pool1",))
    np.testing.assert_allclose(out_max["pool1"][0], r.reshape(17, 2, 17, 2, 64).max(axis=(1, 3)), rtol=1e-6)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_ceil_pools_cover_the_odd_edge(random_vgg, pooling):
    """Rounding up (Caffe, Chainer's cover_all, loadcaffe): the last window hangs over the bottom/right
    edge and pools what it covers (the average divides by the pixels covered, as Caffe does unpadded)."""
    x = jnp.asarray(smooth_images(1, 35, 33, seed=2))
    model = VGG19(pooling=pooling, pool_rounding="ceil")
    out = model.apply(random_vgg.variables, x, taps=("relu1_2", "pool1", "relu5_1"))
    r = np.asarray(out["relu1_2"])[0]
    reduce = np.max if pooling == "max" else np.mean
    manual = np.array(
        [[reduce(r[2 * i : 2 * i + 2, 2 * j : 2 * j + 2], axis=(0, 1)) for j in range(17)] for i in range(18)]
    )
    chex.assert_shape(out["pool1"], (1, 18, 17, 64))
    np.testing.assert_allclose(out["pool1"][0], manual, rtol=1e-5, atol=1e-6)
    assert tap_shapes((35, 33), ["pool1", "relu5_1"], pool_rounding="ceil") == {
        "pool1": (18, 17, 64),
        "relu5_1": (3, 3, 512),
    }
    chex.assert_shape(out["relu5_1"], (1, 3, 3, 512))
    assert tap_shapes((35, 33), ["relu5_1"])["relu5_1"] == (2, 2, 512)  # flooring
    floor = VGG19(pooling=pooling).apply(random_vgg.variables, x, taps=("pool1",))["pool1"][0]
    np.testing.assert_allclose(floor, out["pool1"][0, :17, :16], rtol=1e-6)  # the windows both have
    with pytest.raises(ValueError, match="pool_rounding must be one of"):
        VGG19(pool_rounding="round").apply(random_vgg.variables, x, taps=("pool1",))


def test_bfloat16_compute_returns_float32_close_to_float32(random_vgg):
    x = jnp.asarray(smooth_images(2, 40, 40))
    taps = ("relu3_1", "relu4_1", "relu5_1")
    f32 = _apply(VGG19(), random_vgg.variables, x, taps)
    bf16 = _apply(VGG19(dtype=jnp.bfloat16), random_vgg.variables, x, taps)
    for t in taps:
        assert bf16[t].dtype == jnp.float32
        rel = float(jnp.linalg.norm(bf16[t] - f32[t]) / jnp.linalg.norm(f32[t]))
        assert rel < 3e-2, (t, rel)


def test_preprocessing_comes_from_the_variables(random_vgg):
    x = jnp.asarray(smooth_images(1, 32, 32))
    v_caffe = {**random_vgg.variables, "preprocess": preprocess_constants("caffe")}
    a = VGG19().apply(random_vgg.variables, x, taps=("conv1_1",))["conv1_1"]
    b = VGG19().apply(v_caffe, x, taps=("conv1_1",))["conv1_1"]
    assert float(jnp.max(jnp.abs(a - b))) > 1.0
    # caffe: BGR, 0-255, minus the BGR mean
    c = preprocess_constants("caffe")
    pix = np.array([0.2, 0.5, 0.9], np.float32)
    np.testing.assert_allclose(
        c["matrix"] @ pix + c["offset"], [0.9 * 255 - 103.939, 0.5 * 255 - 116.779, 0.2 * 255 - 123.68], rtol=1e-6
    )
    t = preprocess_constants("torchvision")
    np.testing.assert_allclose(
        t["matrix"] @ pix + t["offset"], (pix - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], rtol=1e-6
    )


@pytest.mark.parametrize(
    "shape, taps, match",
    [
        ((32, 32, 3), ("relu1_1",), r"\[B, H, W, 3\]"),
        ((1, 32, 32, 4), ("relu1_1",), r"\[B, H, W, 3\]"),
        ((1, 3, 32, 32), ("relu1_1",), r"\[B, H, W, 3\]"),
        ((1, 31, 40, 3), ("relu1_1",), "at least 32x32"),
        ((1, 32, 32, 3), ("relu6_1",), "unknown VGG-19 tap 'relu6_1'; valid taps are conv1_1..conv5_4"),
        ((1, 32, 32, 3), (), "at least one tap"),
    ],
)
def test_bad_input_gets_a_one_line_error(random_vgg, shape, taps, match):
    with pytest.raises(ValueError, match=match) as e:
        VGG19().apply(random_vgg.variables, jnp.zeros(shape), taps=taps)
    assert "\n" not in str(e.value)


def test_vgg16_has_johnsons_layers_and_shapes():
    from dfijax.weights import random_weights

    assert conv_names(16) == tuple(
        f"conv{b}_{l}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for l in range(1, n + 1)
    )
    assert layers(19) == LAYERS and VGG16().depth == 16 and VGG19().depth == 19
    hw = (37, 45)
    w = random_weights(0, depth=16)
    out = _apply(VGG16(), w.variables, jnp.asarray(smooth_images(1, *hw)), layers(16))
    expected = {k: (1,) + s for k, s in tap_shapes(hw, layers(16), depth=16).items()}
    chex.assert_trees_all_equal_shapes_and_dtypes(out, {k: jnp.zeros(s, jnp.float32) for k, s in expected.items()})
    assert expected["relu4_3"] == (1, 4, 5, 512) and expected["pool5"] == (1, 1, 1, 512)
    with pytest.raises(ValueError, match=r"unknown VGG-16 tap 'relu3_4'; valid taps are conv1_1..conv5_3") as e:
        VGG16().apply(w.variables, jnp.zeros((1, 32, 32, 3)), taps=("relu3_4",))
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="at least 32x32 pixels for VGG-16"):
        VGG16().apply(w.variables, jnp.zeros((1, 16, 32, 3)), taps=("relu1_1",))
    with pytest.raises(ValueError, match="depth must be one of"):
        VGG(depth=11).apply(w.variables, jnp.zeros((1, 32, 32, 3)), taps=("relu1_1",))
