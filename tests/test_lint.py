"""The code base stays ruff-clean (pyproject's [tool.ruff]: line length 120, pycodestyle, pyflakes, isort)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ruff_check_and_format_are_clean():
    pytest.importorskip("ruff")
    for cmd in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        p = subprocess.run([sys.executable, "-m", "ruff", *cmd], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_implicit_rank_promotion_is_an_error_in_the_tests():
    import jax.numpy as jnp
    import pytest

    with pytest.raises(ValueError, match="rank_promotion"):
        jnp.ones((2, 3)) + jnp.ones(3)
    assert (jnp.ones((2, 3)) + jnp.ones(3)[None]).shape == (2, 3)
