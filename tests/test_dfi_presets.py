"""The references' DFI presets as this project runs them: their settings, neighbour rules, noise init, the
bounded and warm-started solves, the chainer residual run, and repeating a run from its saved config
(their objectives, networks and procedures against each reference's code: tests/test_reference_*.py)."""

import dataclasses
import json

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dfijax import config, dfi
from dfijax import invert as inv
from dfijax.data.faces import load_faces
from dfijax.dfi import chainer, presets, solve
from dfijax.dfi.sweep_config import Finish, Solve
from dfijax.weights import random_weights
from tests.conftest import isolate, smooth_images

TAPS = ("relu3_1", "relu4_1", "relu5_1")


def test_presets_set_what_the_references_do():
    off, ch = presets.preset("official"), presets.preset("chainer")
    # the official preset's values are checked against its code in tests/test_reference_dfi.py
    assert (
        off.objective.scaling,
        off.objective.reduction,
        off.solve.iters,
        off.solve.alpha_mode,
        off.neighbours.k,
    ) == ("beta", "sum/taps", 500, "warm", 100)
    assert (
        ch.objective.scaling,
        ch.objective.reduction,
        ch.solve.iters,
        ch.solve.history,
        ch.solve.init,
        ch.objective.tv_weight,
        ch.neighbours.metric,
        ch.neighbours.rank,
    ) == (
        "chainer",
        "mean",
        1000,
        5,
        "noise",
        100.0,
        "l2",
        "all",
    )
    assert ch.neighbours.include_input and ch.finish.residual and ch.finish.color_match == "channel"
    assert (
        presets.preset("official", iters=20, tv_weight=None).solve.iters == 20
    )  # flags override; None keeps the preset
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


def test_each_declared_variant_is_a_registered_part():
    """Every choice SweepConfig declares for a variant has its part, and nothing else is registered."""
    import typing

    from dfijax.dfi import finish, residuals, rules, sweep_config

    fields = {"rule": sweep_config.Neighbours, "color_match": Finish, "output": Finish, "residual_mode": Finish}
    choices = {name: set(typing.get_args(typing.get_type_hints(group)[name])) for name, group in fields.items()}
    assert set(rules.RULES) == set(sweep_config.NEIGHBOUR_RULES) == choices["rule"]
    assert set(finish.COLOR_MATCH) == choices["color_match"] and set(finish.OUTPUTS) == choices["output"]
    assert set(residuals.RESIDUALS) == choices["residual_mode"] | {"none"}
    assert residuals.residual(dfi.SweepConfig(finish=Finish(residual=False))) is residuals.RESIDUALS["none"]
    nearest = dfi.SweepConfig(finish=Finish(residual=True, residual_mode="nearest"))
    assert residuals.residual(nearest) is residuals.RESIDUALS["nearest"]


def test_noise_init_is_chainer_dfi_noise_around_the_caffe_mean():
    x = jnp.zeros((2, 40, 40, 3))
    z = np.asarray(solve.initial_images(dfi.SweepConfig(solve=Solve(init="noise")), x)) * 255.0
    mean = np.array([124.0, 117.0, 104.0])
    assert np.all(np.abs(z - mean) <= 10.0 + 1e-4) and np.abs(z - mean).max() > 9.0
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), mean, atol=0.5)
    assert solve.initial_images(dfi.SweepConfig(), x) is x


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
    solved, objective, neighbours = cfg["solve"], cfg["objective"], cfg["neighbours"]
    assert solved["alpha_mode"] == "warm" and objective["scaling"] == "beta" and solved["iters"] == 4
    assert solved["box"] == "caffe" and neighbours == {**neighbours, "rule": "official", "k": 10}
    assert objective["reduction"] == "sum/taps"
    assert res["tv_weight"] == 1e-3 and all(np.isfinite(res["final_loss"][0]))
    # --config repeats the run exactly; a flag given with it still overrides
    again = alpha_sweep.parse(["--config", str(tmp_path / "a" / "config.json"), "--iters", "6"]).config
    assert config.replace(again, iters=4) == presets.from_dict(cfg) and again.solve.iters == 6


def test_official_bounded_solve_stays_in_its_box_and_clips():
    """The official preset's box on a small solve towards an image beyond it: every channel ends inside
    its own (−128, 162) range, pixels sit on it (a solve without the box goes past), and the sweep's
    results come back clipped to [0, 1] (tests/test_reference_dfi.py checks the range against
    deepmodels.py)."""
    caffe = random_weights(0, preprocess="caffe")
    lo, hi = (np.asarray(v) for v in presets.preset("official").solve.pixel_box())
    x = jnp.asarray(smooth_images(1, 32, 32, seed=1))
    small = presets.preset("official", taps=("relu2_1",), size=32, iters=6, shard=False, tv_weight=0.0)
    loss = small.objective.feature_loss(pretrained=True)
    beyond = jnp.clip(3.0 * x - 1.0, -1.0, 2.0)  # its features: the target
    t = inv.feature_targets(loss, caffe.variables, beyond)
    free = inv.invert(loss, caffe.variables, t, x, dataclasses.replace(small.solve.solver(), bounds=None))
    boxed = inv.invert(loss, caffe.variables, t, x, small.solve.solver())
    img, past = np.asarray(boxed.images), np.asarray(free.images)
    assert np.all(img >= lo - 1e-6) and np.all(img <= hi + 1e-6)
    on_box = np.isclose(img, lo, atol=1e-6) | np.isclose(img, hi, atol=1e-6)
    assert on_box.mean() > 0.1 and ((past < lo) | (past > hi)).mean() > 0.1  # seen: 0.56 and 0.55
    # the sweep's result is that solve clipped to [0, 1] (φ(x) + 1·w with w unscaled: the same targets)
    w = {"relu2_1": t["relu2_1"] - inv.feature_targets(loss, caffe.variables, x)["relu2_1"]}
    unscaled = config.replace(small, scaling="none")
    out, _ = solve.solve_alphas(unscaled, loss, caffe.variables, x, w, [1.0], lambda *a: None)
    np.testing.assert_allclose(out[:, 0], np.clip(img, 0, 1), atol=1e-4)
    assert out.min() == 0.0 and out.max() == 1.0 and (img.min() < 0 and img.max() > 1)


def test_warm_alphas_start_from_the_previous_clipped_result(random_vgg):
    """demo1.py:L121-132: the first delta from the original with `iter` iterations, each later one from
    the previous (clipped, deepmodels.py:L214) result with iter // 2."""
    x = jnp.asarray(smooth_images(2, 32, 32, seed=5))
    w = {"relu2_1": 0.5 * jnp.ones((2, 16, 16, 128))}
    cfg = config.replace(
        dfi.SweepConfig(),
        taps=("relu2_1",),
        size=32,
        iters=4,
        alpha_mode="warm",
        bounds="lbfgsb",
        box="caffe",
        shard=False,
    )
    loss = cfg.objective.feature_loss(pretrained=False)
    out, _ = solve.solve_alphas(cfg, loss, random_vgg.variables, x, w, [0.2, 0.5], lambda *a: None)
    first, _ = dfi.edit(loss, random_vgg.variables, x, w, [0.2], cfg.solve.solver(4), cfg.objective.scaling)
    start = jnp.clip(first[:, 0], 0.0, 1.0)
    second, _ = dfi.edit(loss, random_vgg.variables, x, w, [0.5], cfg.solve.solver(2), cfg.objective.scaling, x0=start)
    np.testing.assert_allclose(out[:, 0], np.asarray(start), atol=1e-5)
    np.testing.assert_allclose(out[:, 1], np.clip(np.asarray(second[:, 0]), 0, 1), atol=1e-5)


def test_chainer_preset_runs_with_the_residual_snapshots(tmp_path, monkeypatch, random_vgg):
    from experiments import alpha_sweep

    isolate(monkeypatch, tmp_path)
    cfg = presets.preset("chainer")
    assert (
        cfg.neighbours.rule,
        cfg.crop,
        cfg.finish.residual_mode,
        cfg.finish.residual_iters,
        cfg.finish.residual_every,
    ) == (
        "chainer",
        "chainer",
        "nearest",
        600,
        20,
    )
    assert (cfg.finish.color_match, cfg.finish.color_eps, cfg.finish.output, cfg.neighbours.k) == (
        "channel",
        0.0,
        "diff8",
        100,
    ) and cfg.neighbours.include_input
    tiny = ["--preset", "chainer", "--n-synthetic", "300", "--k", "10", "--inputs", "1", "--alphas", "0.3"]
    tiny += ["--iters", "4", "--residual-iters", "4", "--residual-every", "2", "--size", "32", "--batch", "10"]
    tiny += ["--no-probe", "--no-shard", "--taps", "relu2_1", "--include", "Young", "--out", str(tmp_path / "a")]
    assert alpha_sweep.main(tiny) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["config"]["neighbours"]["include"] == ["Young"] and res["config"]["finish"]["residual_iters"] == 4
    assert np.all(np.isfinite(res["final_loss"])) and len(res["final_loss"][0]) == 1
    rmse = res["metrics_per_alpha"][0]["pixel_rmse_to_input"]  # of the post-processed (residual, diff8) edit
    edit = np.asarray(Image.open(tmp_path / "a" / "img0_a0.3.png"), np.float32) / 255
    x = np.asarray(Image.open(tmp_path / "a" / "grid.png"), np.float32)[18:50, 4:36] / 255  # the input's tile
    assert rmse == pytest.approx(float(np.sqrt(np.mean((edit - x) ** 2))), abs=2e-3)  # the files: 7e-5 apart
    # 4 iterations from noise are nowhere near the face: the nearest residual snapshot's subtraction brings
    # the output back to the input but for the faint edit (seen 0.0011, the 8-bit rounding of the input)
    assert 0 < rmse < 0.01
    nbr = res["neighbours"][0]
    assert len(nbr["target"]) == len(nbr["source"]) == 10 and nbr["target_available"] > 10

    # the residual path itself: 2 snapshots of 4 iterations, from the edits' own noise start
    c = presets.preset("chainer", iters=4, residual_iters=4, residual_every=2, size=32, taps=("relu2_1",))
    x = jnp.asarray(np.asarray(load_faces("synthetic", n_synthetic=300).images([1], 32)))
    loss = c.objective.feature_loss(pretrained=False)
    seen = []
    snaps = chainer.reconstruction_snapshots(
        loss, random_vgg.variables, x, solve.initial_images(c, x), c.solve.solver(4), 2, progress=seen.append
    )
    chex.assert_shape(snaps, (2, 1, 32, 32, 3))
    chex.assert_tree_all_finite(snaps)
    assert seen == [2, 4] and not np.allclose(snaps[0], snaps[1])


def test_solve_progress_averages_the_problems_that_have_started():
    """The scipy solver reports NaN for problems not yet started; the sweep's progress line skips them."""
    assert solve._mean_started(jnp.array([jnp.nan, 2.0, 4.0])) == 3.0
    assert np.isnan(solve._mean_started(jnp.full((2,), jnp.nan)))
