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
