"""Every experiment: --out naming a file is a one-line error; the picture checks of tests/pictures.py
fail constant and noise pictures. Each experiment's smoke test checks the pictures of its tiny run with
them (tests/test_experiments.py, test_dtn.py, test_dtn_faces.py, test_fast_style.py, test_fusion.py,
test_video.py): not degenerate and, where the method keeps the content, keeping its structure."""

import importlib
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import isolate

ROOT = pathlib.Path(__file__).resolve().parent.parent

EXPERIMENTS = [
    "alpha_sweep",
    "invert_features",
    "style_transfer",
    "stylize",
    "video_style",
    "train_fast_style",
    "train_fusion",
    "fuse",
    "train_dtn",
    "train_dtn_faces",
    "dfi_dataset",
]


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("where", ["file", "below a file"])
def test_out_that_is_a_file_is_one_line_error(name, where, tmp_path, monkeypatch, capsys):
    """Refused before any work: setup, weights and data are never reached."""

    isolate(monkeypatch, tmp_path)

    def never(*a, **k):
        raise AssertionError("reached work before checking --out")

    from experiments import runner

    monkeypatch.setattr(runner.runtime, "device_summary", never)
    monkeypatch.setattr(runner, "load_vgg", never)
    f = tmp_path / "x.png"
    f.write_bytes(b"\x89PNG not a folder")
    out = f if where == "file" else f / "sub"
    argv = (["--ckpt", str(tmp_path / "ck")] if name in ("stylize", "fuse") else []) + ["--out", str(out)]
    rc = importlib.import_module(f"experiments.{name}").main(argv)
    err = capsys.readouterr().err
    assert rc == 1, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --out ") and "give a folder" in lines[0], err
    assert str(f) in lines[0] and "Traceback" not in err
    assert f.read_bytes() == b"\x89PNG not a folder" and not (tmp_path / "runs").exists()


def test_out_that_is_a_file_from_the_command_line(tmp_path):
    f = tmp_path / "x.png"
    f.write_text("a file")
    p = subprocess.run(
        [sys.executable, "-m", "experiments.train_fast_style", "--out", str(f)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "DFIJAX_JAX_CACHE": str(tmp_path / "c")},
    )
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip() == f"error: --out {f} is a file; give a folder", p.stderr


def test_check_out_accepts_folders_and_new_paths(tmp_path):
    from experiments import runner

    (tmp_path / "d").mkdir()
    for ok in (None, str(tmp_path / "d"), str(tmp_path / "new" / "deeper"), "relative/new"):
        runner.check_out(ok)
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match=r"^--out .*f is a file; give a folder$"):
        runner.check_out(tmp_path / "f")
    with pytest.raises(ValueError, match=r"^--out .*: .*f is a file, not a folder; give a folder$"):
        runner.out_dir(str(tmp_path / "f" / "a" / "b"), "x")


# ---- the picture checks ----------------------------------------------------------------------------
#
# The experiments' floors come from values measured on CPU with the seeded random VGG-19, noted beside
# each check. For scale: uniform noise scores |structure similarity| < 0.22 against a 32 px reference (300 draws) and
# < 0.06 at 128 px; a constant picture scores 0 and fails assert_not_degenerate.

from tests import pictures as P  # noqa: E402


def _scenes(size, seeds):
    from dfijax.images import synthetic_scene

    return [synthetic_scene(size, size, seed=s) for s in seeds]


def test_picture_checks_fail_constant_and_noise():
    from dfijax.images import make_grid

    ref = _scenes(32, [1])[0]
    rng = np.random.default_rng(0)
    constant, noise = np.full_like(ref, 0.5), rng.uniform(size=ref.shape).astype(np.float32)
    blurred = P.gaussian_blur(P.grey(ref), 1.0)
    P.assert_not_degenerate([ref, noise, blurred])
    assert P.structure_similarity(ref, ref) == pytest.approx(1.0)
    assert P.structure_similarity(blurred, ref) > 0.9
    assert P.structure_similarity(_scenes(64, [1])[0], ref) > 0.8  # resized to the smaller size
    with pytest.raises(AssertionError, match="flat"):
        P.assert_not_degenerate(constant)
    with pytest.raises(AssertionError, match="non-finite"):
        P.assert_not_degenerate(np.where(ref > 0.5, np.nan, ref))
    with pytest.raises(AssertionError, match="values in"):
        P.assert_not_degenerate(ref * 2)
    assert P.structure_similarity(constant, ref) == 0.0
    for bad in (constant, noise):
        with pytest.raises(AssertionError, match="structure similarity"):
            P.assert_keeps_structure(bad, ref, 0.3)
    # one template drawn for every input: input-independent, and not matching its own input
    refs = _scenes(32, [1, 2, 3])
    with pytest.raises(AssertionError, match="barely depend"):
        P.assert_input_dependent([refs[0]] * 3, 0.02)
    with pytest.raises(AssertionError, match="match their own inputs"):
        P.assert_matches_own_input([refs[0]] * 3, refs, 0.05)
    assert P.assert_matches_own_input(refs, refs, 0.3) > 0.3
    cells = P.grid_cells(make_grid([refs], col_labels=["a", "b", "c"]), 32, 32, 1, 3, top=14)
    assert all(np.abs(c - r).max() <= 0.5 / 255 + 1e-6 for c, r in zip(cells[0], refs))  # 8-bit rounding
