"""Fusion GAN: shapes and chunks, mixing, the loss terms' values (the paper's per-chunk λ_n split by
hand), the paper preset's BatchNorm critic and weight clipping, the CelebA hold-out splits, training
(stage-1 L1 falls, exact resume after a kill, 4 devices == 1 device) and the two experiments with their
bad-input messages, the feature-map figure and the pictures, on one shared run.

One tiny config (32 px, width 8, shallow VGG taps) everywhere, so the jitted steps compile once per
mesh for the whole file."""

import json
import pathlib
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dfijax import losses as core
from dfijax import training
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.fusion import losses as fl
from dfijax.fusion import model
from dfijax.fusion import train as ft
from dfijax.fusion.data import Batches, to_signed, to_unit
from dfijax.vgg import VGG19
from tests.conftest import FAST_COMPILE, one_run
from tests.conftest import isolate as _isolated

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY_LOSS = fl.FusionLoss(content_layers=("conv2_1",), style_layers=("conv1_1",))
TINY = ft.FusionConfig(size=32, width=8, loss=TINY_LOSS)
TINY_ARGS = ["--preset", "tiny", "--n-synthetic", "64"]  # fusion.presets "tiny": TINY, batch 8


def test_paper_shapes_and_chunk_rule(key):
    cfg = ft.FusionConfig()  # the paper's: 128 px, width 64
    state = jax.eval_shape(lambda: ft.init_state(cfg))
    enc, gen, disc = cfg.nets()
    x = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
    z = jax.eval_shape(
        lambda p, s, x: enc.apply({"params": p["E"], "batch_stats": s["E"]}, x, train=False),
        state.eg.params,
        state.eg.batch_stats,
        x,
    )
    chex.assert_shape(z, (2, 4, 4, 1024))
    y = jax.eval_shape(
        lambda p, s, z: gen.apply({"params": p["G"], "batch_stats": s["G"]}, z, train=False),
        state.eg.params,
        state.eg.batch_stats,
        z,
    )
    chex.assert_shape(y, (2, 128, 128, 3))
    chex.assert_shape(jax.eval_shape(lambda p, x: disc.apply({"params": p}, x, train=False), state.d.params, x), (2,))
    # Table 1: E 64..1024 channels with 4x4 kernels; D has no norm on its first block, then a linear output
    assert [state.eg.params["E"][f"conv{i}"]["kernel"].shape for i in range(5)] == [
        (4, 4, 3, 64),
        (4, 4, 64, 128),
        (4, 4, 128, 256),
        (4, 4, 256, 512),
        (4, 4, 512, 1024),
    ]
    assert "norm0" not in state.d.params and state.d.params["out"]["kernel"].shape == (4 * 4 * 1024, 1)
    assert cfg.chunks == (204, 204, 204, 204, 208)
    # the rule: N-1 chunks of floor(C/N), the last takes the rest
    assert model.chunk_sizes(64) == (12, 12, 12, 12, 16) and TINY.chunks == (6, 6, 6, 6, 8)
    assert model.chunk_sizes(1024, 4) == (256,) * 4 and sum(model.chunk_sizes(100, 7)) == 100
    assert TINY.latent_shape == (4, 4, 32) and ft.FusionConfig(size=64, width=16).latent_shape == (4, 4, 128)
    with pytest.raises(ValueError, match="power of two"):
        ft.FusionConfig(size=48)
    with pytest.raises(ValueError, match="chunks"):
        model.chunk_sizes(4, 5)


def test_a_run_saved_in_the_older_loss_layout_still_loads():
    """fusion_config.json of runs saved when w1..w5 were five fields reads as the same FusionConfig."""
    from dfijax import config

    cfg = ft.FusionConfig(size=32, width=8, loss=fl.FusionLoss(weights=(1.0, 2.0, 3.0, 4.0, 5.0)))
    old = config.to_dict(cfg)
    old["loss"] = {k: v for k, v in old["loss"].items() if k != "weights"}
    old["loss"] |= dict(w_adv=1.0, w_content=2.0, w_style=3.0, w_recon=4.0, w_tv=5.0)
    back = config.from_dict(ft.FusionConfig, old)
    assert back == cfg and (back.loss.w_adv, back.loss.w_recon, back.loss.w_tv) == (1.0, 4.0, 5.0)


def test_mixing_is_exact_at_the_ends(key):
    ka, kb = jax.random.split(key)
    za, zb = jax.random.normal(ka, (4, 4, 32)), jax.random.normal(kb, (4, 4, 32))
    sizes = TINY.chunks
    np.testing.assert_array_equal(model.mix(za, zb, model.chunk_lambda(jnp.ones(5), sizes)), za)
    np.testing.assert_array_equal(model.mix(za, zb, model.chunk_lambda(jnp.zeros(5), sizes)), zb)
    lam = model.chunk_lambda(jnp.array([1.0, 0.0, 1.0, 0.0, 0.5]), sizes)
    chex.assert_shape(lam, (32,))
    zc = model.mix(za, zb, lam)
    np.testing.assert_array_equal(zc[..., :6], za[..., :6])
    np.testing.assert_array_equal(zc[..., 6:12], zb[..., 6:12])
    np.testing.assert_allclose(zc[..., 24:], 0.5 * (za[..., 24:] + zb[..., 24:]), rtol=1e-6)
    # a spatial Λ: the left half of the 4x4 grid from A
    spatial = jnp.zeros((4, 4, 1)).at[:, :2].set(1.0)
    zs = model.mix(za, zb, spatial)
    np.testing.assert_array_equal(zs[:, :2], za[:, :2])
    np.testing.assert_array_equal(zs[:, 2:], zb[:, 2:])
    chex.assert_shape(ft.lambda_map(TINY, [1, 0, 1, 0, 1]), (4, 4, 32))
    chex.assert_shape(ft.lambda_map(TINY, np.ones((4, 4, 1))), (4, 4, 32))
    with pytest.raises(ValueError, match="per-chunk"):
        ft.lambda_map(TINY, [1, 0, 1])
    # training Λ: binary, constant within each chunk, about p_ends of the pairs all 1 or all 0
    lam = np.asarray(ft.sample_lambda(TINY, key, 2000))
    chex.assert_shape(lam, (2000, 4, 4, 32))
    assert set(np.unique(lam)) == {0.0, 1.0}
    starts = np.cumsum((0,) + TINY.chunks[:-1])
    for s, n in zip(starts, TINY.chunks):
        assert np.all(lam[..., s : s + n] == lam[..., s : s + 1])
    ends = np.mean(np.all(lam == 1, axis=(1, 2, 3)) | np.all(lam == 0, axis=(1, 2, 3)))
    assert abs(ends - (0.2 + 0.8 * 2 / 32)) < 0.04


def test_to_unit_on_numpy_and_jax():
    x = np.array([[-1.0, 0.0, 1.0, 1.5]], np.float64)
    want = np.array([[0.0, 0.5, 1.0, 1.0]], np.float32)  # clipped to [0, 1]
    got = to_unit(x)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    traced = jax.jit(to_unit)(jnp.asarray(x, jnp.float32))
    assert isinstance(traced, jax.Array)
    np.testing.assert_array_equal(traced, want)
    np.testing.assert_allclose(to_unit(to_signed(np.array([0.25, 0.75]))), [0.25, 0.75])


def test_loss_terms(random_vgg, images):
    x = jnp.asarray(images(3, 32, 32, seed=4)) * 2 - 1  # A, B, C in [-1, 1]
    feats = VGG19().apply(random_vgg.variables, to_unit(x), taps=TINY_LOSS.taps)
    fa, fb, fc = ({k: v[i] for k, v in feats.items()} for i in range(3))
    # content = the paper's sum of squares; style = Frobenius distance of Gram / (C·H·W)
    want_c = float(jnp.sum((fc["conv2_1"] - fa["conv2_1"]) ** 2))
    np.testing.assert_allclose(fl.content(fc, fa, ("conv2_1",)), want_c, rtol=1e-5)
    h, w, c = fc["conv1_1"].shape
    g = lambda f: f.reshape(-1, c).T @ f.reshape(-1, c) / (h * w * c)  # noqa: E731
    want_s = float(jnp.sum((g(fc["conv1_1"]) - g(fa["conv1_1"])) ** 2))
    np.testing.assert_allclose(fl.style(fc, fa, ("conv1_1",)), want_s, rtol=1e-4)
    np.testing.assert_allclose(core.gram(fc["conv1_1"], "hwc"), g(fc["conv1_1"]), rtol=1e-5, atol=1e-7)
    # Λ-weighted: the A-loss at Λ = 1, the B-loss at Λ = 0, linear between
    at = {lb: fl.mixed_perceptual(fc, fa, fb, jnp.float32(lb), TINY_LOSS) for lb in (1.0, 0.0, 0.25)}
    np.testing.assert_allclose(at[1.0], (fl.content(fc, fa, ("conv2_1",)), fl.style(fc, fa, ("conv1_1",))), rtol=1e-6)
    np.testing.assert_allclose(at[0.0], (fl.content(fc, fb, ("conv2_1",)), fl.style(fc, fb, ("conv1_1",))), rtol=1e-6)
    np.testing.assert_allclose(at[0.25], 0.25 * np.array(at[1.0]) + 0.75 * np.array(at[0.0]), rtol=1e-5)
    assert at[1.0][0] != at[0.0][0]
    # reconstruction: R(I) only when Λ is all ones (C vs A) or all zeros (C vs B)
    a, b, cc = x
    base = fl.l1(a * 0.9, a) + fl.l1(b * 0.9, b)
    ones, zeros, mixed = jnp.ones((4, 4, 32)), jnp.zeros((4, 4, 32)), jnp.zeros((4, 4, 32)).at[..., 0].set(1)
    np.testing.assert_allclose(fl.reconstruction(a, a * 0.9, b, b * 0.9, cc, ones), base + fl.l1(cc, a), rtol=1e-6)
    np.testing.assert_allclose(fl.reconstruction(a, a * 0.9, b, b * 0.9, cc, zeros), base + fl.l1(cc, b), rtol=1e-6)
    np.testing.assert_allclose(fl.reconstruction(a, a * 0.9, b, b * 0.9, cc, mixed), base, rtol=1e-6)
    np.testing.assert_allclose(fl.total_variation(a, a, b), 2 * core.tv_squared(a) + core.tv_squared(b), rtol=1e-6)


def test_paper_perceptual_split_by_hand():
    # tiny feature maps [2, 2, 2]: C = 1, A = 0, B = 3 everywhere
    one = jnp.ones((2, 2, 2))
    fc, fa, fb = ({"conv2_1": v * one, "conv1_1": v * one} for v in (1.0, 0.0, 3.0))
    # content Σ(C − X)² over 8 values: vs A 8·1 = 8, vs B 8·(1 − 3)² = 32
    # style: Gram / (C·H·W) of v·ones has every entry v²·4 / 8, so C: 0.5, A: 0, B: 4.5;
    # ‖ψ(C) − ψ(X)‖²_F over 4 entries: vs A 4·0.25 = 1, vs B 4·16 = 64
    lam = jnp.array([1.0, 0.0, 1.0, 0.0, 0.5])
    c, s = fl.paper_perceptual(fc, fa, fb, lam, TINY_LOSS)
    chex.assert_shape((c, s), (5,))
    np.testing.assert_allclose(c, [8, 32, 8, 32, 0], rtol=1e-6)
    np.testing.assert_allclose(s, [1, 64, 1, 64, 0], rtol=1e-6)
    # λ_n = 1: both terms of that chunk are against A only (B does not enter); λ_n = 0: against B only
    c2, s2 = fl.paper_perceptual(fc, fa, {k: v * 10 for k, v in fb.items()}, lam, TINY_LOSS)
    np.testing.assert_array_equal(c2[::2][:2], c[::2][:2])
    np.testing.assert_array_equal(s2[::2][:2], s[::2][:2])
    assert float(c2[1]) != float(c[1]) and float(s2[1]) != float(s[1])
    c3, s3 = fl.paper_perceptual(fc, {k: v + 5 for k, v in fa.items()}, fb, lam, TINY_LOSS)
    np.testing.assert_array_equal(c3[1::2][:2], c[1::2][:2])
    np.testing.assert_array_equal(s3[1::2][:2], s[1::2][:2])
    # Λ all ones / all zeros: the chunk mean is exactly the paper's single case of eqs. (4), (5)
    for v, want in ((1.0, (8.0, 1.0)), (0.0, (32.0, 64.0))):
        c, s = fl.paper_perceptual(fc, fa, fb, jnp.full(5, v), TINY_LOSS)
        np.testing.assert_allclose((jnp.mean(c), jnp.mean(s)), want, rtol=1e-6)
    # the training step reads λ_n at each chunk's first channel
    assert TINY.chunk_starts == (0, 6, 12, 18, 24)
    with pytest.raises(ValueError, match="lambda_values 'binary'"):
        ft.FusionConfig(size=32, width=8, perceptual="paper", lambda_values="uniform")


def test_holdout_splits(tmp_path):
    from dfijax.data import DataError, celeba
    from dfijax.fusion.data import HELD_OUT_LAST, PAPER_TEST_COUNT, PAPER_TRAIN_COUNT, holdout_split

    parts = [0, 0, 0, 1, 1, 2, 2, 0, 2, 1]
    names = [f"{i:06d}.jpg" for i in range(1, 11)]
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, parts)))
    part = celeba.load_celeba_partition(tmp_path)
    assert part == dict(zip(names, parts))
    train, held = holdout_split(names, "celeba-test", part)
    np.testing.assert_array_equal(train, [0, 1, 2, 7])  # partition 0; validation (1) unused
    np.testing.assert_array_equal(held, [5, 6, 8])
    # a subset in another order (e.g. --limit or a sorted listing): indices into that list
    train, held = holdout_split(names[8:2:-1], "celeba-test", part)  # 9, 8, 7, 6, 5, 4
    assert [names[8:2:-1][i] for i in held] == ["000009.jpg", "000007.jpg", "000006.jpg"]
    assert [names[8:2:-1][i] for i in train] == ["000008.jpg"]
    # Kaggle's csv gives the same
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "list_eval_partition.csv").write_text(
        "image_id,partition\n" + "".join(f"{n},{p}\n" for n, p in zip(names, parts))
    )
    assert celeba.load_celeba_partition(tmp_path / "k") == part
    # the paper's split by file number: 200,000 train, the remaining 2,599 held out
    assert (PAPER_TRAIN_COUNT, PAPER_TEST_COUNT) == (200_000, 2_599) and celeba.PARTITION_COUNTS["test"] == 19_962
    assert PAPER_TRAIN_COUNT + PAPER_TEST_COUNT == sum(celeba.PARTITION_COUNTS.values()) == 202_599
    ids = ["000001.jpg", "199999.jpg", "200000.jpg", "200001.jpg", "202599.jpg"]
    train, held = holdout_split(ids, "paper-count")
    np.testing.assert_array_equal(train, [0, 1, 2])
    np.testing.assert_array_equal(held, [3, 4])
    train, held = holdout_split(names * 2, "last")
    assert len(held) == HELD_OUT_LAST == 16 and held[0] == 4 and len(train) == 4
    with pytest.raises(ValueError, match="not in the CelebA partition"):
        holdout_split(names + ["999999.jpg"], "celeba-test", part)
    with pytest.raises(ValueError, match="list_eval_partition"):
        holdout_split(names, "celeba-test")
    with pytest.raises(ValueError, match="no held-out images"):
        holdout_split(ids[:3], "paper-count")
    with pytest.raises(ValueError, match="file names"):
        holdout_split(["face000001"], "paper-count")
    with pytest.raises(DataError, match="partition not found"):
        celeba.load_celeba_partition(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(DataError, match="line 1"):
        celeba.load_celeba_partition(tmp_path / "bad")


def test_paper_preset_critic_batchnorm_and_clipping(random_vgg, tmp_path):
    from dfijax import fusion
    from dfijax.fusion import presets
    from experiments import train_fusion

    small = {"size": 32, "width": 8, "content_layers": ("conv2_1",), "style_layers": ("conv1_1",)}
    s = {**presets.PRESETS["paper"].settings, **small}
    run = fusion.training_config("paper", devices=4, **small)
    assert run.settings == s and run.overrides == tuple(sorted(small)) and run.total == 35000
    cfg = run.fusion
    clip = 0.01
    assert (cfg.d_norm, cfg.clip, cfg.d_optimizer, cfg.d_lr, cfg.n_critic, cfg.loss.gp_weight, cfg.perceptual) == (
        "batch",
        clip,
        "rmsprop",
        5e-5,
        5,
        0.0,
        "paper",
    )
    assert (s["holdout"], s["batch"], cfg.lr, cfg.loss.w_recon, cfg.lambda_values) == (
        "celeba-test",
        100,
        1e-3,
        30.0,
        "binary",
    )
    default = presets.PRESETS[presets.DEFAULT].settings
    assert presets.DEFAULT == "cpu_small" and presets.PRESETS["cpu_small"] == fusion.TrainingConfig()
    assert (default["d_norm"], default["gp"], default["clip"]) == ("layer", 10.0, None)
    state = ft.init_state(cfg)
    init = jax.device_get(state.d)
    # Table 1's critic: BatchNorm on every block but the first (no bias before it), a linear output
    assert set(init.batch_stats) == {"norm1", "norm2"} and set(init.params["norm1"]) == {"scale", "bias"}
    assert "bias" not in init.params["conv1"] and "bias" in init.params["conv0"]
    assert max(float(np.abs(p).max()) for p in jax.tree.leaves(init.params)) <= clip  # clipped from the start
    assert "ScaleByRms" in type(init.opt_state[0]).__name__

    # one critic step (RMSProp 5e-5, then clipping): every parameter stays within ±clip
    _, d_step, eg_step = ft.make_steps(cfg)
    x = jnp.asarray(Batches(synthetic_faces(40, 0), 32, 8, seed=1)(0))
    state, m = d_step(state, x, jax.random.key(1), random_vgg.variables)
    d = jax.device_get(state.d)
    leaves = jax.tree.leaves(d.params)
    assert max(float(np.abs(p).max()) for p in leaves) <= clip
    assert any(np.any(np.abs(p) == np.float32(clip)) for p in leaves)  # the bound is active
    moved = [float(np.abs(a - b).max()) for a, b in zip(leaves, jax.tree.leaves(init.params))]
    assert 0 < max(moved) <= 2 * clip
    assert not np.allclose(d.batch_stats["norm1"]["mean"], init.batch_stats["norm1"]["mean"])
    assert float(m["d_finite"]) == 1.0 and float(m["gp"]) == 0.0 and np.isfinite(float(m["wdist"]))
    # the (E, G) step with the per-chunk perceptual split traces to scalar losses
    out = jax.eval_shape(eg_step, state, x, jax.random.key(2), random_vgg.variables)[1]
    assert out["content"].shape == out["style"].shape == ()

    # the CLI: --preset paper with explicit flags over it (what run_config.json records)
    argv = ["--preset", "paper", "--holdout", "last", "--clip", "0.02"]
    for k, v in small.items():
        argv += ["--" + k.replace("_", "-"), ",".join(v) if isinstance(v, tuple) else str(v)]
    run = fusion.for_devices(train_fusion.parse(argv).config, devices=3)
    settings, overrides = run.settings, run.overrides
    assert overrides == tuple(sorted(["holdout", "clip", *small])) and settings["clip"] == 0.02
    assert settings["batch"] == 99  # the preset's 100, rounded down to a multiple of the 3 devices
    assert {k: v for k, v in settings.items() if k not in (*overrides, "batch")} == {
        k: v for k, v in presets.PRESETS["paper"].settings.items() if k not in (*overrides, "batch")
    }
    paper = fusion.for_devices(train_fusion.parse(["--preset", "paper", "--clip", "0"]).config, devices=1)
    assert paper.fusion.clip is None and paper.overrides == ("clip",)
    with pytest.raises(ValueError, match="multiple of the 3 devices"):
        fusion.training_config("paper", devices=3, batch=100)
    with pytest.raises(ValueError, match="needs 5 values"):
        fusion.training_config(devices=1, loss_weights="1,2")
    with pytest.raises(ValueError, match="not both 0"):
        fusion.training_config(devices=1, stage1_steps=0, stage2_steps=0)


def test_gradient_penalty_on_a_linear_critic(key):
    w = jax.random.normal(key, (8, 8, 3))
    critic = lambda x: jnp.sum(x * w[None], axis=(1, 2, 3))  # noqa: E731  (gradient w everywhere)
    real, fake = jnp.ones((4, 8, 8, 3)), jnp.zeros((4, 8, 8, 3))
    eps = jnp.linspace(0, 1, 4)
    norm = float(jnp.linalg.norm(w))
    np.testing.assert_allclose(fl.gradient_penalty(critic, real, fake, eps), (norm - 1) ** 2, rtol=1e-5)
    unit = lambda x: jnp.sum(x * w[None] / norm, axis=(1, 2, 3))  # noqa: E731
    assert float(fl.gradient_penalty(unit, real, fake, eps)) < 1e-8
    np.testing.assert_allclose(fl.wasserstein(critic(real), critic(fake)), float(jnp.sum(w)), rtol=1e-5)


class Killed(Exception):
    pass


def _params(state):
    return jax.device_get(
        {"eg": state.eg.params, "stats": state.eg.batch_stats, "d": state.d.params, "opt": state.d.opt_state}
    )


def test_training_resumes_exactly_and_shards(random_vgg, tmp_path, all_devices):
    batches = Batches(synthetic_faces(40, 0), 32, 8, seed=1)
    np.testing.assert_array_equal(batches(3), batches(3))
    kw = dict(save_every=2, log_every=1)
    v = random_vgg.variables
    assert all_devices == 4
    full, start = ft.train(TINY, batches, v, 2, 4, tmp_path / "a", **kw)  # 2 autoencoder + 4 GAN steps
    assert start == 0 and int(full.step) == 6 and int(full.stage) == 2
    recs = training.MetricsLog(tmp_path / "a" / "metrics.jsonl").records()
    assert [r["stage"] for r in recs] == [1, 1, 2, 2, 2, 2]
    assert all(r["finite"] == 1.0 for r in recs) and all(r["d_finite"] == 1.0 for r in recs[2:])
    assert {"l1", "wdist", "gp", "adv", "content", "style", "recon", "tv"} <= set(recs[-1])

    def kill(step, state, rec):
        if step == 5:  # mid stage 2: after the checkpoint at 4, before the one at 6
            raise Killed()

    with pytest.raises(Killed):
        ft.train(TINY, batches, v, 2, 4, tmp_path / "b", callback=kill, **kw)
    resumed, start = ft.train(TINY, batches, v, 2, 4, tmp_path / "b", **kw)  # new objects, same folder
    assert start == 4 and int(resumed.step) == 6
    chex.assert_trees_all_close(_params(resumed), _params(full), rtol=1e-6, atol=1e-7)
    cfg, restored, step = ft.restore(tmp_path / "a")
    assert cfg == TINY and step == 6
    chex.assert_trees_all_close(jax.device_get(restored.eg.params), _params(full)["eg"])

    # GAN steps on 4 devices and on one: the same losses (BatchNorm statistics are over the global
    # batch). Parameters agree loosely only: Adam divides float-rounding-sized gradients by their own size.
    runs = {}
    for n in (4, 1):
        runs[n], _ = ft.train(
            TINY,
            batches,
            v,
            0,
            2,
            tmp_path / f"c{n}",
            mesh=training.data_mesh(jax.devices()[:n]),
            save_every=100,
            log_every=1,
        )
    r4, r1 = (training.MetricsLog(tmp_path / f"c{n}" / "metrics.jsonl").records() for n in (4, 1))
    assert len(r4) == len(r1) == 2
    for a, b in zip(r4, r1):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=2e-4, atol=1e-5, err_msg=k)
    chex.assert_trees_all_close(_params(runs[1]), _params(runs[4]), rtol=1e-2, atol=5e-4)


def test_run_training_pipeline_stops_resumes_and_samples(random_vgg, tmp_path):
    from dfijax import fusion

    config = fusion.training_config("tiny", stage1_steps=4, stage2_steps=1)
    assert config.fusion == TINY and config.total == 5 and config.preset == "tiny"
    data = fusion.load_data("synthetic", n_synthetic=40, holdout=config.holdout)
    assert (len(data.train_idx), len(data.held_idx)) == (24, 16) and data.evaluated_ids()[0] == "face000024"
    held = data.held_images(32)
    chex.assert_shape(held, (16, 32, 32, 3))
    seen, samples = [], {}
    progress = lambda step, total, rec: seen.append((step, total, rec is not None))  # noqa: E731
    r = fusion.run_training(config, data, random_vgg.variables, tmp_path, progress=progress, stop_after=3)
    assert r.stopped and r.start == 0 and r.samples is None and r.held_out is None
    assert seen == [(1, 5, True), (2, 5, True), (3, 5, True)]
    r = fusion.run_training(
        config, data, random_vgg.variables, tmp_path, on_sample=lambda step, grid: samples.update({step: grid})
    )
    assert not r.stopped and (r.start, r.steps_run, int(r.state.step)) == (2, 3, 5)
    assert sorted(samples) == [4, 5] and [x["step"] for x in r.records] == [1, 2, 3, 4, 5]
    assert r.final_stage1["step"] == 4 and r.final_stage2["step"] == 5 and "wdist" in r.final_stage2
    np.testing.assert_array_equal(r.samples, samples[5])
    np.testing.assert_array_equal(r.samples, fusion.sample_grid(TINY, r.state.eg, held[:2]))
    chex.assert_shape(r.samples, (14 + 3 * 100 + 4, 6 * 100 + 4, 3))  # labels; 3 rows, 6 columns of 96 px
    np.testing.assert_allclose(
        r.samples[18:114, 4:100], np.repeat(np.repeat((held[0] + 1) / 2, 3, 0), 3, 1), atol=0.51 / 255
    )
    assert r.held_out == fusion.evaluate(TINY, r.state.eg, held) and r.held_out["images"] == 16
    rec = np.asarray(ft.reconstruct(TINY, r.state.eg, held))  # the held-out numbers by their definitions
    mse = np.mean(((rec + 1) / 2 - (held + 1) / 2) ** 2)
    assert r.held_out["recon_l1"] == pytest.approx(float(np.mean(np.abs(rec - held))), rel=1e-5)
    assert r.held_out["recon_psnr_db"] == pytest.approx(float(10 * np.log10(1 / mse)), rel=1e-5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One `train_fusion` run at the tiny preset (60 + 2 steps) in an isolated folder, shared by the
    experiments test and the pictures test: (its --out, what it printed to stderr)."""
    from experiments import train_fusion

    args = ["--stage1-steps", "60", "--stage2-steps", "2", "--log-every", "5", "--sample-every", "30"]
    _, run, err = one_run(tmp_path_factory, "fusion", train_fusion.main, TINY_ARGS + args + ["--save-every", "30"])
    return run, err


def test_train_and_fuse_experiments(tiny_run, tmp_path, monkeypatch, capsys, random_vgg):
    from experiments import fuse, train_fusion

    _isolated(monkeypatch, tmp_path)
    out, err = tiny_run
    assert "random (NOT pretrained)" in err
    info = json.loads((out / "train_info.json").read_text())
    assert info["weights_pretrained"] is False and "NOT pretrained" in info["weights"]
    assert info["config"]["size"] == 32 and info["config"]["loss"]["weights"][3] == 30.0  # w4, L_rec
    rc = json.loads((out / "run_config.json").read_text())  # the preset, resolved
    assert (
        rc["preset"] == info["preset"] == "tiny" and "stage1_steps" in rc["overrides"] and "gp" not in rc["overrides"]
    )
    assert (rc["settings"]["d_norm"], rc["settings"]["gp"], rc["settings"]["clip"], rc["settings"]["batch"]) == (
        "layer",
        10.0,
        None,
        8,
    )
    assert rc["holdout"]["kind"] == "last" and rc["holdout"]["evaluated"][0] == "face000048"
    recs = training.MetricsLog(out / "metrics.jsonl").records()
    l1 = [r["l1"] for r in recs if r["stage"] == 1]
    assert l1[-1] < 0.75 * l1[0], l1  # stage 1: the autoencoder learns
    assert info["final_stage2"]["step"] == 62 and np.isfinite(info["final_stage2"]["loss"])
    assert 0 < info["held_out"]["recon_l1"] < 0.5 and info["held_out"]["recon_psnr_db"] > 10
    assert {"step_000030.png", "step_000060.png", "step_000062.png"} <= {p.name for p in (out / "samples").iterdir()}
    grid = np.asarray(Image.open(out / "samples.png"))
    assert grid.shape[0] > 3 * 32 and grid.shape[1] > 6 * 32
    assert Image.open(out / "loss.png").size == (560, 280)

    fo = tmp_path / "fused"
    assert fuse.main(["--ckpt", str(out), "--lambda", "1,1,0,0,0.5", "--out", str(fo)]) == 0
    res = json.loads((fo / "results.json").read_text())
    assert res["checkpoint_step"] == 62 and res["lambda"] == [1, 1, 0, 0, 0.5]
    # Λ = 1 reconstructs A and Λ = 0 reconstructs B better than either matches the other image
    assert res["l1_lambda1_vs_a"] < res["l1_lambda1_vs_b"] and res["l1_lambda0_vs_b"] < res["l1_lambda0_vs_a"]
    fig = np.asarray(Image.open(fo / "fusion.png"))
    assert fig.shape[0] > 3 * 32 and fig.shape[1] > 6 * 32  # A, B / 6 Λ columns / the custom Λ
    assert (fo / "fused_custom.png").is_file() and (fo / "fused_0.4.png").is_file()
    assert "Reconstruction checks" in (fo / "report.html").read_text()

    # the library pipeline behind the command: the same numbers and pictures
    from dfijax import fusion

    r = fusion.run_fuse(out, lambdas=[*fusion.LAMBDAS, [1, 1, 0, 0, 0.5]])
    chex.assert_shape(r.fused, (7, 32, 32, 3))
    assert r.step == 62 and r.checks() == {k: res[k] for k in r.checks()}
    assert (float(r.l1_vs_a[-1]), float(r.l1_vs_b[-1])) == (res["l1_custom_vs_a"], res["l1_custom_vs_b"])
    np.testing.assert_allclose(r.fused[4], np.asarray(Image.open(fo / "fused_0.2.png")) / 255, atol=0.51 / 255)
    np.testing.assert_allclose(r.figure(), fig / 255, atol=0.51 / 255)
    with pytest.raises(ValueError, match="no Λ = 1 on every chunk"):
        fusion.run_fuse(out, lambdas=[0.5, 0.0]).checks()
    with pytest.raises(ValueError, match="both images"):
        fusion.run_fuse(out, a=r.a)

    # --show-features: the Fig. 6 grid (rows A, B, C × all maps / first 4; columns image, 5 VGG layers,
    # 5 latent chunks) at its fixed size, not blank, with C's latent chunks taken from A or B as Λ says
    from dfijax.fusion import figures

    ff = tmp_path / "feat"
    assert fuse.main(["--ckpt", str(out), "--show-features", "--out", str(ff)]) == 0
    res = json.loads((ff / "results.json").read_text())
    assert res["features_lambda"] == [1, 0, 1, 0, 1]
    png = np.asarray(Image.open(ff / "features.png").convert("RGB"), np.float32)
    assert png.shape == (6 * 160 + 60, 11 * 160, 3) and tuple(res["features_size"]) == (11 * 160, 6 * 160 + 60)
    assert png.std() > 20 and len(np.unique(png.reshape(-1, 3), axis=0)) > 100
    cfg, st, _ = ft.restore(out)
    a, b = (jnp.asarray(v) * 2 - 1 for v in synthetic_faces(2, 12345).images([0, 1], 32))
    imgs, lat, feats = figures.fusion_features(cfg, st.eg, random_vgg.variables, a, b, [1, 0, 1, 0, 1])
    chex.assert_shape(imgs, (3, 32, 32, 3))
    chex.assert_shape(lat, (3, 4, 4, 32))
    assert [feats[k].shape for k in figures.FIG6_LAYERS] == [
        (3, 32, 32, 64),
        (3, 16, 16, 128),
        (3, 8, 8, 256),
        (3, 4, 4, 512),
        (3, 2, 2, 512),
    ]
    np.testing.assert_array_equal(lat[2, ..., :6], lat[0, ..., :6])  # z_1 from A
    np.testing.assert_array_equal(lat[2, ..., 6:12], lat[1, ..., 6:12])  # z_2 from B

    # bad inputs: exactly one "error: " line each, rc 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    (tmp_path / "empty").mkdir()
    cases = [
        (fuse, ["--ckpt", str(tmp_path / "none")], "no checkpoint folder"),
        (fuse, ["--ckpt", str(tmp_path / "empty")], "fusion_config.json"),
        (fuse, ["--ckpt", str(out), "--lambda", "1,0,1"], "needs 5 values"),
        (fuse, ["--ckpt", str(out), "--lambda", "1,1,1,1,1.5"], "lambda[4] must be a finite number >= 0 and <= 1"),
        (fuse, ["--ckpt", str(out), "--a", str(bad), "--b", str(bad)], "cannot read"),
        (fuse, ["--ckpt", str(out), "--a", str(bad)], "both --a and --b"),
        (
            train_fusion,
            [*TINY_ARGS, "--width", "16", "--out", str(out)],
            "trained with other settings: config.width 8 (now 16)",
        ),
        (train_fusion, ["--size", "48"], "power of two"),
        (train_fusion, ["--holdout", "celeba-test"], "list_eval_partition"),
        (train_fusion, ["--preset", "paper", "--lambda-values", "uniform", "--holdout", "last"], "perceptual 'mean'"),
        (train_fusion, ["--data", "celeba"], "--data-dir"),
        (train_fusion, ["--data", "celeba", "--data-dir", str(tmp_path / "nowhere")], "CelebA not found"),
    ]
    for mod, args, msg in cases:
        capsys.readouterr()
        extra = ["--out", str(tmp_path / "o")] if mod is train_fusion and "--out" not in args else []
        assert mod.main(args + extra) == 1, args
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], (args, err)


def test_fusion_pictures(tiny_run, tmp_path, monkeypatch):
    """The shared run's samples and `fuse`'s default pictures: not degenerate, and Λ = 1 keeps face A."""
    from experiments import fuse
    from tests import pictures as P

    _isolated(monkeypatch, tmp_path)
    ck = tiny_run[0]
    grid = P.load_png(ck / "samples.png")
    P.assert_not_degenerate(grid, min_std=0.1)
    # rows: A … B, their reconstructions, the fusions at Λ = 1.0 … 0.0 (32 px tiles drawn at 96)
    (a_, *_, b_), (ra, *_, rb), fused = P.grid_cells(grid, 96, 96, 3, 6, top=14)
    l1 = lambda x, y: float(np.abs(x - y).mean())
    for rec, own, other in ((ra, a_, b_), (rb, b_, a_)):  # seen: 0.13 to its own face, 0.16-0.17 to the other
        assert l1(rec, own) < 0.2 and l1(rec, own) < l1(rec, other) - 0.01
    assert l1(fused[0], ra) == 0 and l1(fused[-1], rb) == 0  # Λ = 1 is A's latent, Λ = 0 B's
    to_a, to_b = [l1(f, ra) for f in fused], [l1(f, rb) for f in fused]
    assert np.all(np.diff(to_a) > 0) and np.all(np.diff(to_b) < 0)  # seen: 0 → 0.11 and 0.11 → 0
    out = tmp_path / "fused"
    assert fuse.main(["--ckpt", str(ck), "--out", str(out)]) == 0
    fused = P.load_all(P.pngs(out, "fused_*.png"))
    assert len(fused) == 6
    P.assert_not_degenerate(fused, min_std=0.05)  # seen: std 0.12-0.15
    a, b = synthetic_faces(2, 12345).images([0, 1], 32)
    keep_a = P.load_png(out / "fused_1.0.png")
    s = P.assert_keeps_structure(keep_a, a, 0.35, "fused at lambda 1")[0]  # seen: 0.61 (vs B: 0.24)
    assert s > P.structure_similarity(keep_a, b) + 0.15


def test_fuse_cli_missing_checkpoint_is_one_line(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "experiments.fuse", "--ckpt", str(tmp_path / "nothing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "DFIJAX_JAX_CACHE": str(tmp_path / "c")},
    )
    assert p.returncode == 1, p.stderr
    err = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
    assert len(err) == 1 and "no checkpoint folder" in err[0] and "Traceback" not in p.stderr, p.stderr


def test_train_fusion_survives_sigkill(tmp_path):
    """A real kill: the experiment runs in its own process, gets SIGKILL mid-run (perhaps mid-save),
    and a rerun with the same --out finishes from the last checkpoint with the same parameters as an
    uninterrupted run (started alongside; one CPU device each, so the two runs are comparable)."""
    import os
    import signal
    import time

    args = [
        sys.executable,
        "-m",
        "experiments.train_fusion",
        *TINY_ARGS,
        *("--stage1-steps", "60", "--stage2-steps", "0"),
        *("--save-every", "10", "--log-every", "10", "--sample-every", "1000"),
    ]
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": FAST_COMPILE,
        "DFIJAX_CACHE": str(tmp_path / "cache"),  # compiled programs: the session's (the notebook's tiny run)
    }
    quiet = dict(cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    straight = subprocess.Popen(args + ["--out", str(tmp_path / "straight")], **quiet)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--out", str(killed)], **quiet)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if killed.is_dir() and any(p.name.isdigit() and int(p.name) >= 20 for p in killed.iterdir()):
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = subprocess.run(args + ["--out", str(killed)], **{**quiet, "stderr": subprocess.PIPE})
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert straight.wait() == 0
    info = json.loads((killed / "train_info.json").read_text())
    assert 20 <= info["resumed_from"] < 60, info["resumed_from"]
    steps = [r["step"] for r in training.MetricsLog(killed / "metrics.jsonl").records()]
    assert steps == list(range(10, 61, 10))
    _, a, sa = ft.restore(tmp_path / "straight")
    _, b, sb = ft.restore(killed)
    assert sa == sb == 60
    chex.assert_trees_all_close(jax.device_get(b.eg.params), jax.device_get(a.eg.params), rtol=1e-5, atol=1e-6)
