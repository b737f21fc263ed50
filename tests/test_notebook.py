"""The Colab notebook executes top to bottom on CPU with its small settings, so it cannot rot."""

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
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the grid is shown
    res = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert res["alphas"] == [0.2, 0.5] and res["weights_pretrained"] is False
