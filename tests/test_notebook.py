"""The Colab notebooks execute top to bottom on CPU with their small settings, and equal what
scripts/make_colab_notebook.py writes, so they cannot rot."""

import json
import pathlib

import pytest

from tests.conftest import FAST_COMPILE

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_colab_notebook_runs_on_cpu(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("DFIJAX_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("DFIJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XLA_FLAGS", FAST_COMPILE)
    monkeypatch.setenv("DFIJAX_NOTEBOOK_OUT", str(tmp_path / "sweep"))
    nb = nbformat.read(ROOT / "notebooks" / "alpha_sweep_colab.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the grid is shown
    res = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert res["alphas"] == [0.2, 0.6] and res["weights_pretrained"] is False  # dfi.presets "tiny"


def _execute(name, tmp_path, monkeypatch, out_env):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for k, v in {
        "DFIJAX_NOTEBOOK_SMALL": "1",
        "JAX_PLATFORMS": "cpu",
        "DFIJAX_CACHE": str(tmp_path / "cache"),
        "XLA_FLAGS": FAST_COMPILE,
        "DFIJAX_NOTEBOOK_OUT": out_env,
    }.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_fusion_notebook_runs_on_cpu(tmp_path, monkeypatch):
    """The fusion cells call the library (training_config, load_data, run_training, run_fuse) at the tiny
    preset: 20 + 2 steps, then the samples and the fusion figure are shown."""
    from PIL import Image

    out = tmp_path / "fusion"
    outputs = _execute("fusion_gan_colab.ipynb", tmp_path, monkeypatch, str(out))
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the samples and the fusion figure
    res = json.loads((out / "fusion.json").read_text())
    assert res["checkpoint_step"] == 22 and res["lambdas"][-1] == [1, 1, 0, 0, 0.5] and len(res["lambdas"]) == 7
    assert res["weights_pretrained"] is False and res["held_out"]["images"] == 16
    assert 0 < res["l1_lambda1_vs_a"] < 2 and 0 < res["l1_a_vs_b"] < 2
    # samples at 10, 20 (the end of stage 1) and 22; checkpoints at 10, 20, 22; 3 rows x 6 columns of 96 px
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"step_0000{s}.png" for s in (10, 20, 22)]
    assert {"10", "20", "22", "fusion_config.json", "metrics.jsonl"} <= {p.name for p in out.iterdir()}
    assert Image.open(out / "samples.png").size == (6 * 100 + 4, 14 + 3 * 100 + 4)
    assert Image.open(out / "fusion.png").size == (6 * 100 + 4, 14 + 3 * 100 + 4)  # A, B / sweep / custom Λ


def test_notebooks_match_their_generator():
    nbformat = pytest.importorskip("nbformat")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_colab_notebook", ROOT / "scripts" / "make_colab_notebook.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name in gen.NOTEBOOKS:
        on_disk = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        assert [c.source for c in on_disk.cells] == [c.source for c in gen.build(name).cells], name
        assert [c.id for c in on_disk.cells] == [c.id for c in gen.build(name).cells]
