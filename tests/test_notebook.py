"""The Colab notebooks execute top to bottom on CPU with their small settings, and equal what
scripts/make_colab_notebook.py writes, so they cannot rot."""

import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_colab_notebook_runs_on_cpu(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("DFIJAX_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("DFIJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DFIJAX_JAX_CACHE", str(tmp_path / "jaxcache"))
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("DFIJAX_NOTEBOOK_OUT", str(tmp_path / "sweep"))
    nb = nbformat.read(ROOT / "notebooks" / "alpha_sweep_colab.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the grid is shown
    res = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert res["alphas"] == [0.2, 0.5] and res["weights_pretrained"] is False


def _execute(name, tmp_path, monkeypatch, out_env):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for k, v in {
        "DFIJAX_NOTEBOOK_SMALL": "1",
        "JAX_PLATFORMS": "cpu",
        "DFIJAX_CACHE": str(tmp_path / "cache"),
        "DFIJAX_JAX_CACHE": str(tmp_path / "jaxcache"),
        "XLA_FLAGS": "",
        "DFIJAX_NOTEBOOK_OUT": out_env,
    }.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_fusion_notebook_runs_on_cpu(tmp_path, monkeypatch):
    outputs = _execute("fusion_gan_colab.ipynb", tmp_path, monkeypatch, str(tmp_path / "fusion"))
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the fusion figure is shown
    res = json.loads((tmp_path / "fusion" / "fused" / "results.json").read_text())
    assert res["checkpoint_step"] == 22 and res["lambda"] == [1, 1, 0, 0, 0.5]
    info = json.loads((tmp_path / "fusion" / "train_info.json").read_text())
    assert info["weights_pretrained"] is False


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
