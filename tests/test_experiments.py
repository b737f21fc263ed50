"""One tiny-config smoke test per experiment: it runs, writes its files, and they hold real values."""

import json
import subprocess
import sys
import pathlib

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_invert_features_smoke(tmp_path, monkeypatch):
    from experiments import invert_features

    monkeypatch.setenv("DFIJAX_JAX_CACHE", str(tmp_path / "cache"))
    import dfijax.weights

    monkeypatch.delenv("DFIJAX_WEIGHTS", raising=False)
    monkeypatch.setattr(dfijax.weights, "DEFAULT_WEIGHTS_DIR", tmp_path / "no-weights")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    rc = invert_features.main(["--size", "32", "--iters", "8", "--layers", "relu1_1,relu2_1", "--out", str(out)])
    assert not (tmp_path / "runs").exists()  # --out was honoured
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["weights_pretrained"] is False and "NOT pretrained" in res["weights"]
    assert set(res["layers"]) == {"relu1_1", "relu2_1"}
    for layer in ("relu1_1", "relu2_1"):
        r = res["layers"][layer]
        assert len(r["psnr_db"]) == 2 and all(np.isfinite(r["psnr_db"]))
        assert all(f < 0.5 * i for f, i in zip(r["final_loss"], r["initial_loss"]))
    # shallower layer reconstructs better
    assert np.mean(res["layers"]["relu1_1"]["psnr_db"]) > np.mean(res["layers"]["relu2_1"]["psnr_db"])
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.shape[1] > 3 * 32
    assert (out / "relu2_1_1.png").is_file()


def test_invert_features_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    for args, msg in [(["--images", str(bad)], "cannot read"), (["--layers", "relu9_9"], "unknown VGG-19 tap"),
                      (["--size", "16"], "at least 32")]:
        p = subprocess.run([sys.executable, "-m", "experiments.invert_features", *args, "--out", str(tmp_path / "o")],
                           cwd=ROOT, capture_output=True, text=True, env={"DFIJAX_JAX_CACHE": str(tmp_path / "c"), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"})
        assert p.returncode == 1, p.stderr
        err = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0] and "Traceback" not in p.stderr, p.stderr
