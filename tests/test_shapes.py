"""The engine's jaxtyping annotations are real: checked at runtime they accept the documented shapes
and refuse others."""

import beartype
import jax.numpy as jnp
import pytest
from jaxtyping import TypeCheckError, jaxtyped

from dfijax import invert, losses


def checked(fn):
    return jaxtyped(typechecker=beartype.beartype)(fn)


def test_loss_shapes_are_checked():
    img = jnp.zeros((8, 9, 3))
    assert checked(losses.tv_squared)(img).shape == ()
    assert checked(losses.tv_beta)(img).shape == ()
    assert checked(losses.gram)(jnp.ones((4, 5, 16))).shape == (16, 16)
    with pytest.raises(TypeCheckError):
        checked(losses.tv_squared)(jnp.zeros((8, 9, 4)))  # not RGB
    with pytest.raises(TypeCheckError):
        checked(losses.gram)(jnp.ones((2, 4, 5, 16)))  # batched: vmap it instead
    assert checked(invert.noise_init)(__import__("jax").random.key(0), (2, 8, 8, 3)).shape == (2, 8, 8, 3)
