"""One batched-apply helper: chunked, padded to one shape, outputs equal to one big call."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dfijax import batching


class _Lin(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(x.reshape(len(x), -1))


def test_map_batches_equals_one_call_and_compiles_once(key):
    x = np.asarray(jax.random.normal(key, (10, 4, 4, 2)))
    module = _Lin()
    params = module.init(key, x[:1])["params"]
    shapes = []

    def fn(chunk):
        shapes.append(chunk.shape)
        return {"y": batching.apply_params(module, params, jnp.asarray(chunk)), "n": jnp.sum(chunk, (1, 2, 3))}

    out = batching.map_batches(fn, x, 4)
    chex.assert_shape(out["y"], (10, 3))
    assert set(shapes) == {(4, 4, 4, 2)}  # 4 + 4 + 2 padded to 4
    np.testing.assert_allclose(out["y"], module.apply({"params": params}, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["n"], x.sum((1, 2, 3)), rtol=1e-5)
    empty = batching.map_batches(fn, x[:0], 4)
    chex.assert_shape(empty["y"], (0, 3))
