"""The references' DFI presets: their settings, neighbour rules, noise init, and repeating a run from its
saved config (their objectives against each reference's code: tests/test_reference_*.py)."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import dfi
from dfijax.dfi import presets, sweep
from tests.conftest import isolate

TAPS = ("relu3_1", "relu4_1", "relu5_1")


def test_presets_set_what_the_references_do():
    off, ch = presets.preset("official"), presets.preset("chainer")
    # the official preset's values are checked against its code in tests/test_reference_dfi.py
    assert (off.scaling, off.reduction, off.iters, off.alpha_mode, off.k) == ("beta", "sum/taps", 500, "warm", 100)
    assert (ch.scaling, ch.reduction, ch.iters, ch.history, ch.init, ch.tv_weight, ch.metric, ch.rank) == (
        "chainer",
        "mean",
        1000,
        5,
        "noise",
        100.0,
        "l2",
        "all",
    )
    assert ch.include_input and ch.residual and ch.color_match == "channel"
    assert presets.preset("official", iters=20, tv_weight=None).iters == 20  # flags override; None keeps the preset
    with pytest.raises(ValueError, match="unknown preset"):
        presets.preset("paper")
    with pytest.raises(ValueError, match="bounds must be one of"):
        presets.preset("dfijax", bounds="box")


def test_neighbour_rules_of_the_presets():
    # columns: Male, Smiling, Young. Input 0 lacks Smiling.
    attrs = np.array([[1, -1, 1], [1, -1, 1], [-1, -1, 1], [1, 1, 1], [-1, 1, 1], [1, 1, -1], [1, -1, -1]], np.float32)
    edit = dfi.parse_edit("Smiling+", ["Male", "Smiling", "Young"])
    chainer = dfi.select_neighbours(attrs, attrs[0], edit, 2, metric="l2", rank="all")  # input allowed
    assert chainer.source[0] == 0
    hamming = dfi.select_neighbours(attrs, attrs[0], edit, 2, metric="hamming", rank="all", same=0, exclude=0)
    assert 0 not in hamming.source and all(attrs[i, 0] == 1 for i in np.r_[hamming.source, hamming.target])
    np.testing.assert_array_equal(hamming.target, [3, 5])


def test_noise_init_is_chainer_dfi_noise_around_the_caffe_mean():
    x = jnp.zeros((2, 40, 40, 3))
    z = np.asarray(sweep.initial_images(dfi.SweepConfig(init="noise"), x)) * 255.0
    mean = np.array([124.0, 117.0, 104.0])
    assert np.all(np.abs(z - mean) <= 10.0 + 1e-4) and np.abs(z - mean).max() > 9.0
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), mean, atol=0.5)
    assert sweep.initial_images(dfi.SweepConfig(), x) is x


def test_official_preset_runs_and_a_saved_config_repeats_the_run(tmp_path, monkeypatch):
    from experiments import alpha_sweep

    isolate(monkeypatch, tmp_path)
    tiny = [
        "--n-synthetic",
        "300",
        "--k",
        "10",
        "--inputs",
        "1",
        "--alphas",
        "0.2,0.4",
        "--iters",
        "4",
        "--size",
        "32",
        "--batch",
        "8",
        "--no-probe",
        "--taps",
        "relu3_1,relu4_1",
    ]
    assert alpha_sweep.main(["--preset", "official", *tiny, "--out", str(tmp_path / "a")]) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["alpha_mode"] == "warm" and cfg["scaling"] == "beta" and cfg["iters"] == 4 and cfg["k"] == 10
    assert cfg["box"] == "caffe" and cfg["neighbours"] == "official" and cfg["reduction"] == "sum/taps"
    assert res["tv_weight"] == 1e-3 and all(np.isfinite(res["final_loss"][0]))
    # --config repeats the run exactly; a flag given with it still overrides
    again = alpha_sweep.parse(["--config", str(tmp_path / "a" / "config.json"), "--iters", "6"]).config
    assert dataclasses.replace(again, iters=4) == presets.from_dict(cfg) and again.iters == 6
