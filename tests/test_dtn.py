"""Domain Transfer Network: losses on hand-made values, the digit sets, the D/G steps (f frozen, each
lowers its own loss, NaN guard), exact resume, missing data, and the experiment's smoke, pictures and bad
input."""

import json
import pathlib
import shutil
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import config
from dfijax import dtn as D
from dfijax.data import DataError
from dfijax.data import digits as dg
from dfijax.dtn import losses as L
from tests import pictures as P
from tests.conftest import isolate as _isolated
from tests.conftest import one_run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    return z - np.log(np.sum(np.exp(z), -1, keepdims=True))


def test_d_loss_and_gang_equal_hand_computed_cross_entropies():
    gs = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], np.float32)
    gt = np.array([[0.0, 3.0, 0.0], [1.0, -2.0, 0.0]], np.float32)
    t = np.array([[0.0, 0.0, 4.0], [-1.0, 1.0, 2.0]], np.float32)
    ce = lambda z, k: -np.mean(_log_softmax(z)[:, k])
    # 3-class: G(s) -> 0, G(t) -> 1, real target -> 2
    chex.assert_trees_all_close(L.d_loss(gs, gt, t), ce(gs, 0) + ce(gt, 1) + ce(t, 2), rtol=1e-5)
    chex.assert_trees_all_close(L.gan_g_loss(gs, gt), ce(gs, 2) + ce(gt, 2), rtol=1e-5)
    # the uniform row costs log 3 whatever its label
    chex.assert_trees_all_close(L.d_loss(gs[1:], gs[1:], gs[1:]), 3 * np.log(3.0), rtol=1e-5)
    # 2-class ablation: both generated sets -> 0, real -> 1
    g2, t2 = gs[:, :2], t[:, :2]
    chex.assert_trees_all_close(L.d_loss(g2, g2, t2, three_class=False), 2 * ce(g2, 0) + ce(t2, 1), rtol=1e-5)
    chex.assert_trees_all_close(L.gan_g_loss(g2, g2, three_class=False), 2 * ce(g2, 1), rtol=1e-5)


def test_const_tid_tv_and_total():
    a = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    b = jnp.array([[0.0, 1.0], [0.0, 1.0]])
    chex.assert_trees_all_close(L.const_loss(a, b, "mse"), (1 + 1 + 0 + 1) / 4.0)
    chex.assert_trees_all_close(L.const_loss(a, b, "cosine"), ((1 - 0) + (1 - 1)) / 2.0, atol=1e-6)
    chex.assert_trees_all_close(L.const_loss(a, 3 * a, "cosine"), 0.0, atol=1e-6)  # scale-free
    with pytest.raises(ValueError, match="mse' or 'cosine"):
        L.const_loss(a, b, "l1")
    t = jnp.zeros((1, 4, 4, 1))
    g = t.at[0, :, 2:, 0].set(1.0)  # a vertical edge: |Δx| = 1 on 1 of 3 column pairs
    chex.assert_trees_all_close(L.tid_loss(t, g), 0.5)
    chex.assert_trees_all_close(L.tv_loss(g), 1.0 / 3.0, rtol=1e-6)
    w = L.DTNWeights(alpha=2.0, beta=3.0, gamma=5.0)
    z = jnp.zeros((1, 3))
    total, parts = L.g_loss(w, z, z, a, b, t, g, g)
    chex.assert_trees_all_close(parts["gang"], 2 * np.log(3.0), rtol=1e-6)
    chex.assert_trees_all_close(total, 2 * np.log(3.0) + 2 * 0.75 + 3 * 0.5 + 5 / 3.0, rtol=1e-6)


def test_presets_and_bad_weights():
    assert (L.PRESETS["faces"].alpha, L.PRESETS["faces"].beta, L.PRESETS["faces"].gamma) == (100.0, 1.0, 0.05)
    assert (L.PRESETS["digits"].alpha, L.PRESETS["digits"].beta, L.PRESETS["digits"].gamma) == (15.0, 15.0, 0.0)
    assert L.preset("digits").three_class and L.preset("digits").num_classes == 3
    assert L.preset("digits").replace(three_class=False).num_classes == 2
    for kw, msg in [
        ({"alpha": -1.0}, "alpha must be"),
        ({"gamma": float("nan")}, "gamma must be"),
        ({"const": "hinge"}, "const distance"),
    ]:
        with pytest.raises(ValueError, match=msg):
            L.DTNWeights(**kw)
    with pytest.raises(ValueError, match="unknown DTN preset"):
        L.preset("emoji")
    with pytest.raises(ValueError, match="3 classes"):
        D.DTN(D.DigitClassifier(), D.Generator(), D.Discriminator(num_classes=3), L.DTNWeights(three_class=False))


def test_street_digits_deterministic_labelled_varied():
    x, y = dg.street_digits(60, seed=3)
    chex.assert_shape(x, (60, 32, 32, 3))
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == np.int32 and set(y.tolist()) <= set(range(10)) and len(set(y.tolist())) == 10
    x2, y2 = dg.street_digits(60, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    tail, ytail = dg.street_digits(5, seed=3, start=55)  # image i depends on (seed, i) only
    np.testing.assert_array_equal(tail, x[55:])
    np.testing.assert_array_equal(ytail, y[55:])
    x3, _ = dg.street_digits(60, seed=4)
    assert np.abs(x - x3).mean() > 0.1
    # varied: mean colours, contrasts and textures differ a lot from image to image
    means, stds = x.mean(axis=(1, 2)), x.std(axis=(1, 2, 3))
    assert means.std(0).min() > 0.1 and stds.std() > 0.02 and stds.min() > 0.03  # no blank images
    sat = (x.max(-1) - x.min(-1)).mean(axis=(1, 2))
    assert sat.max() > 3 * sat.min()  # grey-ish and colourful images
    xtr, _ = dg.street_digits_split("train", 4)
    xte, _ = dg.street_digits_split("test", 4)
    assert not np.allclose(xtr, xte)
    with pytest.raises(ValueError, match="split"):
        dg.street_digits_split("val", 4)


def test_sklearn_target_range_shape_split():
    xtr, ytr = dg.sklearn_digits("train")
    xte, yte = dg.sklearn_digits("test")
    chex.assert_shape(xtr, (1437, 32, 32, 3))
    chex.assert_shape(xte, (360, 32, 32, 3))
    assert xtr.min() >= 0.0 and xtr.max() <= 1.0 and xtr.max() > 0.9
    np.testing.assert_array_equal(xtr[..., 0], xtr[..., 2])  # grey as RGB
    assert np.all(xtr[:, :4] == 0) and np.all(xtr[:, :, -4:] == 0)  # the 4 px black frame
    assert set(ytr.tolist()) == set(range(10)) and len(ytr) + len(yte) == 1797
    np.testing.assert_array_equal(dg.sklearn_digits("test")[1], yte)
    up = dg.upscale_8x8(np.full((1, 8, 8), 16.0))
    chex.assert_trees_all_close(up[0, 4:28, 4:28], np.ones((24, 24, 3), np.float32), atol=1e-5)


def test_missing_tfds_data_says_what_to_prepare(tmp_path):
    empty = tmp_path / "tfds"
    empty.mkdir()
    for load, name in ((dg.load_svhn, "svhn_cropped"), (dg.load_mnist, "mnist")):
        with pytest.raises(DataError) as e:
            load(empty, "train")
        msg = str(e.value)
        assert "\n" not in msg and f"tfds build {name} --file_format array_record --data_dir {empty}" in msg
        assert f"not prepared in {empty}" in msg and "--data digits" in msg


def test_tfds_loaders_convert_with_a_fake_source(monkeypatch):
    rng = np.random.default_rng(0)
    fake = {
        "mnist": [{"image": rng.integers(0, 256, (28, 28, 1), dtype=np.uint8), "label": i % 10} for i in range(6)],
        "svhn_cropped": [
            {"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "label": 9 - i} for i in range(5)
        ],
    }
    monkeypatch.setattr(dg, "_tfds_source", lambda name, split, data_dir: (fake[name], len(fake[name])))
    x, y = dg.load_mnist("somewhere", "train", limit=4)
    chex.assert_shape(x, (4, 32, 32, 3))
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and len(set(y.tolist())) == 4
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    x, y = dg.load_svhn("somewhere", "train+extra")  # both parts, concatenated
    chex.assert_shape(x, (10, 32, 32, 3))
    np.testing.assert_allclose(x[0], fake["svhn_cropped"][0]["image"] / 255.0, atol=1e-6)
    assert y.tolist() == [9, 8, 7, 6, 5] * 2


def test_check_images_mismatched_sizes():
    with pytest.raises(ValueError, match=r"shape \(2, 28, 28, 1\).*\[N, 32, 32, 3\]"):
        D.check_images(np.zeros((2, 28, 28, 1), np.float32), "target")
    with pytest.raises(ValueError, match="expected floats in"):
        D.check_images(np.full((2, 32, 32, 3), 255.0, np.float32), "source")
    D.check_images(np.zeros((2, 32, 32, 3), np.float32), "ok")


# A tiny problem: the networks and batch of the experiment's `--scale tiny` (so that the steps compile once
# for the file), 16 source and 16 target images.
TINY_F = D.DigitClassifier(width=8, feat_dim=16)
XS, YS = dg.street_digits(16, seed=11)
XT = dg.sklearn_digits("test")[0][:16]
TINY = D.DTNConfig(D.RunSettings(width=8, d_width=8, lr=1e-3, batch=16), out_channels=1, f_width=8, feat_dim=16)


@pytest.fixture(scope="module")
def tiny_f():
    cfg = D.ClassifierConfig(steps=30, batch=16, shift=1, width=8, feat_dim=16)  # f's program in the tiny run
    params, metrics, _ = D.train_classifier(cfg, XS, YS, eval_set=(XS, YS))
    return params, metrics


def test_classifier_learns_and_is_cached(tiny_f, tmp_path):
    params, metrics = tiny_f
    assert metrics["test_accuracy"] > 0.5 and metrics["steps"] == 30  # fits its 16 training images
    cfg = D.ClassifierConfig(steps=3, batch=16, shift=1, width=8, feat_dim=16)
    p1, m1, c1 = D.train_classifier(cfg, XS, YS, cache_dir=tmp_path, name="k")
    p2, m2, c2 = D.train_classifier(cfg, XS, YS, cache_dir=tmp_path, name="k")
    assert (c1, c2) == (False, True) and m1 == m2 and m1["n_train"] == 16
    chex.assert_trees_all_close(p1, p2)
    (folder,) = tmp_path.iterdir()  # one run: checkpoints beside its settings
    assert folder.name.startswith("k-") and json.loads((folder / "config.json").read_text())["steps"] == 3
    _, _, c3 = D.train_classifier(cfg, XS[:8], YS[:8], cache_dir=tmp_path, name="k")  # other data: another run
    assert not c3 and len(list(tmp_path.iterdir())) == 2


def test_d_and_g_steps_lower_their_losses_and_keep_f_frozen(tiny_f):
    f_params = tiny_f[0]
    frozen = jax.tree.map(np.array, f_params)
    dtn = D.make_dtn(D.preset("digits"), TINY_F, width=8, d_width=8, out_channels=1)
    assert TINY.build() == dtn  # the config builds the same networks
    state = D.init_state(dtn, lr=1e-3, seed=0)
    assert set(jax.tree.leaves(jax.tree.map(lambda _: 0, state))) == {0}  # only g, D and optimiser arrays
    assert "encoder" not in state.g.params and "encoder" not in state.d.params
    batch = (jnp.asarray(XS), jnp.asarray(XT))
    d_step, g_step = D.make_d_step(dtn), D.make_g_step(dtn)
    rng = jax.random.key(0)
    g_before = jax.tree.map(np.array, state.g.params)  # host copies: the steps donate the state
    d_losses = []
    for i in range(8):
        state, m = d_step(state, batch, rng, f_params)
        d_losses.append(float(m["d_loss"]))
    chex.assert_trees_all_close(state.g.params, g_before)  # the D step leaves g alone
    assert d_losses[-1] < 0.8 * d_losses[0], d_losses
    d_before = jax.tree.map(np.array, state.d.params)
    g_losses = []
    for i in range(8):
        state, m = g_step(state, batch, rng, f_params)
        g_losses.append(float(m["g_loss"]))
    chex.assert_trees_all_close(state.d.params, d_before)  # the G step leaves D alone
    assert g_losses[-1] < 0.8 * g_losses[0], g_losses
    chex.assert_trees_all_close(f_params, frozen)  # f untouched by either step
    out = D.translate(dtn, f_params, state.g.params, XT[:3])
    chex.assert_shape(out, (3, 32, 32, 3))
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out[..., 0], out[..., 1])  # out_channels=1: grey
    # NaN guard: a poisoned batch leaves the state as it was
    before, old = jax.tree.map(np.array, state), state
    state, m = g_step(state, (batch[0] * jnp.nan, batch[1]), rng, f_params)
    assert all(x.is_deleted() for x in jax.tree.leaves(old))  # donated here too, as on a GPU
    assert m["g_finite"] == 0.0
    chex.assert_trees_all_close(state.g.params, before.g.params)
    state, m = d_step(state, (batch[0], batch[1] * jnp.nan), rng, f_params)
    assert m["d_finite"] == 0.0
    chex.assert_trees_all_close(state.d.params, before.d.params)


def test_transfer_accuracy_scores_g_of_the_source_against_its_labels(tiny_f):
    """The paper's digits metric, recomputed: the classifier's argmax on G(source) against the labels."""
    f_params = tiny_f[0]
    dtn = TINY.build()
    g_params = D.init_state(dtn, lr=1e-3, seed=3).g.params
    g_xs = D.translate(dtn, f_params, g_params, XS)
    # the classifier here is f itself (any DigitClassifier scores), applied by hand
    pred = np.argmax(np.asarray(TINY_F.apply({"params": f_params}, jnp.asarray(g_xs))), -1)
    got = D.transfer_accuracy(dtn, f_params, g_params, TINY_F, f_params, XS, YS)
    assert got == float(np.mean(pred == YS))
    for y in (YS[::-1], np.zeros(16, np.int32)):  # other labels, other scores: the labels are the source's
        assert D.transfer_accuracy(dtn, f_params, g_params, TINY_F, f_params, XS, y) == float(np.mean(pred == y))
    assert D.transfer_accuracy(dtn, f_params, g_params, TINY_F, f_params, XS, pred) == 1.0


def test_training_resumes_exactly_and_refuses_other_settings(tiny_f, tmp_path, all_devices):

    from dfijax import training

    f_params = tiny_f[0]
    cfg = config.replace(TINY, steps=4, save_every=2, log_every=1)
    full, start = D.train_dtn(cfg, f_params, XS, XT, tmp_path / "a")
    assert start == 0 and int(full.g.step) == 4 and int(full.d.step) == 4
    D.train_dtn(config.replace(cfg, steps=2), f_params, XS, XT, tmp_path / "b")  # "killed" after 2
    resumed, start = D.train_dtn(cfg, f_params, XS, XT, tmp_path / "b")
    assert start == 2 and int(resumed.g.step) == 4
    chex.assert_trees_all_close(training.local_copy(resumed), training.local_copy(full), rtol=1e-5, atol=1e-6)
    saved, state = D.restore(tmp_path / "b")  # what evaluation after training reads
    assert saved == cfg and int(state.g.step) == 4
    chex.assert_trees_all_close(state.g.params, training.local_copy(full.g.params), rtol=1e-5, atol=1e-6)
    recs = D.records(tmp_path / "a")
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert {"d_loss", "g_loss", "gang", "const", "tid", "tv", "d_finite", "g_finite"} <= set(recs[-1])
    with pytest.raises(training.CheckpointMismatch, match=r"other settings: lr 0.001 \(now 0.002\)"):
        D.train_dtn(config.replace(cfg, lr=2e-3), f_params, XS, XT, tmp_path / "b")
    with pytest.raises(ValueError, match="g_steps must be an integer >= 1"):
        config.replace(cfg, g_steps=0)
    with pytest.raises(ValueError, match="does not split"):
        D.train_dtn(config.replace(cfg, batch=3), f_params, XS, XT, tmp_path / "c")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One `--scale tiny` run with its ablations (2 steps each), in an isolated folder whose cache later
    runs reuse: (that folder, the run's --out)."""
    from experiments import train_dtn

    base, run, _ = one_run(tmp_path_factory, "dtn", train_dtn.main, ["--scale", "tiny", "--ablation-steps", "2"])
    assert not (base / "runs").exists()
    return base, run


def test_train_dtn_pictures(tiny_run):
    """Long enough (600 cheap steps, f trained 1000) for G to depend on its input: with f barely trained
    (4 steps) G drew one template for every input (spread 0.011, own-input gap 0.005), which these
    checks catch although the template scored 0.65 against the targets."""
    src, g_src, tgt, g_tgt = P.grid_cells(P.load_png(tiny_run[1] / "samples_dtn.png"), 32, 32, 4, 12, top=14)
    P.assert_not_degenerate(src + g_src + tgt + g_tgt, min_std=0.1)  # seen: G std 0.29-0.31
    P.assert_input_dependent(g_src, 0.04, "G(source)")  # seen: 0.096
    P.assert_input_dependent(g_tgt, 0.04, "G(target)")  # seen: 0.084
    P.assert_keeps_structure(g_tgt, tgt, 0.5, "G(target)")  # seen: 0.62-0.92
    P.assert_matches_own_input(g_tgt, tgt, 0.06, "G(target)")  # seen: 0.11


def test_train_dtn_smoke(tiny_run, tmp_path, monkeypatch, capsys):
    from experiments import train_dtn

    base, first = tiny_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    res = json.loads((out / "results.json").read_text())
    # what the run exists to show: G(source) is read as its own digit far more often than the source
    # itself, with classifiers that work (24 test digits, chance 0.1; seen: f 0.625 on the source test set,
    # the evaluation classifier 0.95 on the target's, transfer 0.625, untranslated 0.208)
    dtn_acc, raw = res["runs"]["dtn"]["transfer_accuracy"], res["no_transfer_accuracy"]
    assert res["f_source_test_accuracy"] >= 0.45 and res["target_classifier_test_accuracy"] >= 0.85
    assert dtn_acc >= raw + 0.25 and dtn_acc >= 0.7 * res["f_source_test_accuracy"]
    assert res["f_source_test_accuracy"] == res["classifiers"]["f"]["test_accuracy"]
    assert res["runs"]["dtn"]["transfer_accuracy_at"]["600"] == dtn_acc
    assert res["runs"]["dtn"]["transfer_accuracy_at"]["2"] <= raw + 0.1  # an untrained G transfers nothing
    assert set(res["runs"]) == {"dtn", "no_tid", "two_class"}
    assert res["runs"]["no_tid"]["weights"]["beta"] == 0.0 and res["runs"]["two_class"]["weights"]["d_classes"] == 2
    assert res["runs"]["dtn"]["weights"] == {"alpha": 15.0, "beta": 15.0, "gamma": 0.0, "const": "mse", "d_classes": 3}
    for name, r in res["runs"].items():
        assert (
            r["steps"] == (600 if name == "dtn" else 2)
            and r["transfer_accuracy_at"][str(r["steps"])] == (r["transfer_accuracy"])
        )
        if name != "dtn":  # the 2-step ablations against the trained G (seen 0.083 each)
            assert r["transfer_accuracy"] <= dtn_acc - 0.25
        assert (out / r["samples"]).stat().st_size > 0 and (out / r["loss_plot"]).is_file()
    page = (out / "report.html").read_text()
    assert "samples_dtn.png" in page and "2-class D" in page
    assert f"{res['runs']['dtn']['transfer_accuracy']:.4f}" in page
    assert not res["classifiers"]["f"]["cached"]
    # a rerun (a copy of the run, the same cache) resumes with nothing left to train and reuses the classifiers
    _isolated(monkeypatch, base)
    tiny = ["--scale", "tiny", "--out", str(out)]
    assert train_dtn.main(tiny + ["--no-ablations"]) == 0
    res2 = json.loads((out / "results.json").read_text())
    assert res2["classifiers"]["f"]["cached"] and res2["classifiers"]["target"]["cached"]
    assert res2["runs"]["dtn"]["resumed_from"] == 600
    assert res2["runs"]["dtn"]["transfer_accuracy"] == res["runs"]["dtn"]["transfer_accuracy"]
    assert set(res["runs"]["dtn"]["transfer_accuracy_at"]) == {"2", "600"}  # also evaluated at the ablations' 2
    assert json.loads((out / "dtn" / "config.json").read_text())["run"]["beta"] is None
    assert json.loads((out / "no_tid" / "config.json").read_text())["run"]["beta"] == 0.0
    # other settings in the same --out: one line, before any training
    assert train_dtn.main(tiny + ["--width", "16"]) == 1
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
    assert len(err) == 1 and "other settings: width 8 (now 16)" in err[0], err


def test_train_dtn_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    from experiments import train_dtn

    _isolated(monkeypatch, tmp_path)
    (tmp_path / "empty").mkdir()
    for args, msg in [
        (["--alpha", "-1"], "const_weight must be a finite number >= 0"),
        (["--lr", "0"], "lr must be a finite number > 0"),
        (["--batch", "0"], "batch must be an integer >= 1"),
        (["--num-processes", "2"], "give coordinator, num_processes and process_id together"),
        (["--data", "svhn-mnist"], "needs --data-dir"),
        (["--data", "svhn-mnist", "--data-dir", str(tmp_path / "empty")], "tfds build svhn_cropped"),
    ]:
        assert train_dtn.main(args + ["--out", str(tmp_path / "o")]) == 1
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], (args, err)
    # and from the command line: exactly one line, no traceback
    p = subprocess.run(
        [sys.executable, "-m", "experiments.train_dtn", "--gamma", "-0.5", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DFIJAX_JAX_CACHE": str(tmp_path / "c"), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
    )
    assert p.returncode == 1, p.stderr
    err = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
    assert len(err) == 1 and "tv_weight must be" in err[0] and "Traceback" not in p.stderr, p.stderr


def test_train_dtn_scale_presets_resolve():
    from experiments import train_dtn as E

    a = E.parse(["--scale", "paper"]).config
    assert (a.scale, a.run.steps, a.run.batch, a.f_steps, a.clf_steps, a.run.losses) == (
        "paper",
        20000,
        100,
        5000,
        3000,
        "digits",
    )
    a = E.parse(["--scale", "paper", "--steps", "5", "--preset", "faces", "--beta", "2", "--no-ablations"]).config
    assert (a.scale, a.run.steps, a.run.batch, a.f_steps, a.run.losses, a.ablations) == (
        "paper",
        5,
        100,
        5000,
        "faces",
        False,
    )
    assert a.dtn_config().weights == L.preset("faces").replace(beta=2.0) and list(a.runs()) == ["dtn"]
    a = E.parse([]).config
    assert (a.scale, a.run.steps, a.run.batch, a.f_steps, a.clf_steps, a.abl_steps) == ("quick", 600, 64, 500, 400, 300)
    dtn = a.dtn_config()  # what a resumed run compares with the settings saved beside its checkpoints
    assert (dtn.out_channels, dtn.data) == (1, "digits n_source=8000 limit=None; f 500 steps b64")
    p = E.parse(["--coordinator", "host:1234", "--num-processes", "2", "--process-id", "1"]).processes
    assert (p.coordinator, p.num_processes, p.process_id) == ("host:1234", 2, 1)
