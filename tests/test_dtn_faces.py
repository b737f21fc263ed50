"""The DTN faces setting: the cartoon target domain, f = frozen VGG-19 features, and the experiment."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import dtn as D
from dfijax.data.cartoon_faces import ATTRIBUTES, HAIR, HAIR_STYLES, cartoon_faces
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dtn import faces as F
from tests import pictures as P
from tests.conftest import isolate


def test_cartoon_faces_deterministic_shape_range_varied():
    ds = cartoon_faces(24, seed=1)
    x = ds.images(range(24), 32)
    chex.assert_shape(x, (24, 32, 32, 3))
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, cartoon_faces(24, seed=1).images(range(24), 32))
    np.testing.assert_array_equal(ds.load(5, 32), x[5])  # image i depends on (seed, i) only
    np.testing.assert_array_equal(cartoon_faces(30, seed=1).images([7], 32)[0], x[7])
    assert np.abs(x - cartoon_faces(24, seed=2).images(range(24), 32)).mean() > 0.05
    assert cartoon_faces(2).images([0], 64).shape == (1, 64, 64, 3)
    # flat rendering: the outline is near-black and most pixels take one of a few colours
    assert x.min() < 0.12 and np.mean([len(np.unique(im.reshape(-1, 3), axis=0)) for im in x]) < 200
    # varied: every pair of faces differs, and the attribute table is ±1, one hair colour and style each
    diff = np.abs(x[:, None] - x[None]).mean(axis=(2, 3, 4))
    assert diff[~np.eye(24, dtype=bool)].min() > 0.01
    a = cartoon_faces(400, seed=0).attrs
    assert set(np.unique(a).tolist()) == {-1.0, 1.0} and a.shape == (400, len(ATTRIBUTES))
    col = {k: a[:, ATTRIBUTES.index(k)] > 0 for k in ATTRIBUTES}
    assert np.all(sum(col[h].astype(int) for h in HAIR) == 1)
    assert np.all(sum(col[s].astype(int) for s in HAIR_STYLES) == 1)
    for k in ("Smiling", "Mouth_Open", "Eyeglasses", "Pale_Skin", "Bald", "Long_Hair", "Blond_Hair", "Red_Hair"):
        assert 0.05 < col[k].mean() < 0.95, k
    # sampled independently: no pair of non-exclusive attributes is correlated beyond sampling noise (≈ 3/√400)
    free = [k for k in ("Smiling", "Mouth_Open", "Eyeglasses", "Pale_Skin", "Long_Hair", "Black_Hair")]
    corr = np.corrcoef(np.stack([col[k] for k in free]).astype(float))
    assert np.abs(corr[~np.eye(len(free), dtype=bool)]).max() < 0.15
    with pytest.raises(ValueError, match="at least one"):
        cartoon_faces(0)
    with pytest.raises(IndexError, match=r"cartoon face 24 out of range \(dataset has 24\)"):
        ds.load(24, 32)


# A tiny problem: 32 px, narrow g and D, a shallow tap (relu2_1), 8 sources and 8 cartoons. The smoke
# test below uses the same structure, batch and lr, so it reuses these compilations.
TINY_F = F.VGGFeatures(("relu2_1",), grid=2)
XS = synthetic_faces(8, seed=4).images(range(8), 32)
XT = cartoon_faces(8, seed=4).images(range(8), 32)


def test_vgg_f_standardised_and_checked(random_vgg):
    assert TINY_F.feat_dim == 128 * 4 and F.VGGFeatures().feat_dim == (256 + 512) * 4
    fp = F.make_f_params(TINY_F, random_vgg.variables, XS)
    z = F.features(TINY_F, fp, XS)
    chex.assert_shape(z, (8, 512))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-3)  # source-standardised
    np.testing.assert_allclose(z.var(0).mean(), 1.0, rtol=1e-3)
    with pytest.raises(ValueError, match="at least 32"):
        F.make_faces_dtn(f=TINY_F, size=16)
    with pytest.raises(ValueError, match="power of two"):
        F.make_faces_dtn(f=TINY_F, size=48)
    with pytest.raises(ValueError, match="not divisible"):
        F.VGGFeatures(("relu5_1",), grid=4).check_size(32)  # relu5_1 is 2x2 at 32 px
    with pytest.raises(ValueError, match="unknown VGG-19 tap"):
        F.VGGFeatures(("relu9_1",))


def test_vgg_f_dtn_g_step_lowers_l_g_and_keeps_vgg_frozen(random_vgg):
    f_params = F.make_f_params(TINY_F, random_vgg.variables, XS)
    frozen = jax.tree.map(np.array, f_params)
    dtn = F.make_faces_dtn(D.preset("faces"), TINY_F, size=32, width=8, d_width=8)
    state = D.init_state(dtn, lr=1e-3, seed=0)
    n_vgg = sum(x.size for x in jax.tree.leaves(f_params["vgg"]))
    assert sum(x.size for x in jax.tree.leaves(state)) < n_vgg / 4  # no VGG arrays in the trained state
    batch, rng = (jnp.asarray(XS), jnp.asarray(XT)), jax.random.key(0)
    g_before = jax.tree.map(np.array, state.g.params)  # host copies: the steps donate the state
    state, md = D.make_d_step(dtn)(state, batch, rng, f_params)
    assert np.isfinite(float(md["d_loss"]))
    chex.assert_trees_all_close(state.g.params, g_before)
    g_step, d_before, losses = D.make_g_step(dtn), jax.tree.map(np.array, state.d.params), []
    for _ in range(6):
        state, m = g_step(state, batch, rng, f_params)
        losses.append(float(m["g_loss"]))
    assert losses[-1] < 0.8 * losses[0], losses
    chex.assert_trees_all_close(state.d.params, d_before)
    chex.assert_trees_all_close(f_params, frozen)  # VGG variables and f's statistics untouched
    out = D.translate(dtn, f_params, state.g.params, XT[:3])
    chex.assert_shape(out, (3, 32, 32, 3))
    assert 0 <= out.min() and out.max() <= 1
    c = F.constancy(dtn, f_params, state.g.params, XS)
    assert c["n"] == 8 and c["retrieval_chance"] == 1 / 8
    # the metrics by their definitions, from f(s) and f(G(s)) here (unit rows u; a pairing without fixed points)
    f_s = F.features(TINY_F, f_params, XS).astype(np.float64)
    f_gs = F.features(TINY_F, f_params, D.translate(dtn, f_params, state.g.params, XS)).astype(np.float64)
    u = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
    cos = u(f_s) @ u(f_gs).T
    assert c["const_mse"] == pytest.approx(np.mean((f_s - f_gs) ** 2), rel=1e-6)
    assert c["cos_s_gs"] == pytest.approx(np.mean(np.diag(cos)), rel=1e-6)
    assert c["retrieval_top1"] == np.mean(np.argmax(cos, 1) == np.arange(8))
    pairs = [(i, j) for i in range(8) for j in range(8) if i != j]  # the baselines pair each s with another s'
    s_s = [np.sum(u(f_s)[i] * u(f_s)[j]) for i, j in pairs]
    assert min(s_s) - 1e-9 <= c["cos_s_other_s"] <= max(s_s) + 1e-9 and c["cos_s_other_s"] < 0.99
    assert c["const_mse_random_pair"] >= min(np.mean((f_s[i] - f_s[j]) ** 2) for i, j in pairs) > 0
    assert min(cos[i, j] for i, j in pairs) - 1e-9 <= c["cos_s_other_gs"] <= max(cos[i, j] for i, j in pairs) + 1e-9


TINY_RUN = (
    "--n-train 16 --n-test 8 --n-target 16 --taps relu2_1 --calib 8 --size 32 --steps 3 --batch 8 --lr 1e-3 "
    "--width 8 --d-width 8 --save-every 2 --log-every 1"
).split()


def test_train_dtn_faces_smoke_resume_and_bad_input(tmp_path, monkeypatch, capsys, random_vgg):
    from experiments import train_dtn_faces

    isolate(monkeypatch, tmp_path)
    out = tmp_path / "run"
    assert train_dtn_faces.main(TINY_RUN + ["--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["weights"]["pretrained"] is False and "NOT pretrained" in res["weights"]["description"]
    assert res["loss_weights"] == {"alpha": 100.0, "beta": 1.0, "gamma": 0.05, "const": "mse", "d_classes": 3}
    assert res["steps"] == 3 and res["resumed_from"] == 0 and res["f"]["feat_dim"] == 512
    assert res["config"]["nets"] == "small" and res["config"]["run"]["width"] == 8  # the resolved settings
    # every setting the flags changed from the small preset (--size 32 and --lr 1e-3 are its own values)
    assert res["net_preset"]["nets"] == "small" and res["net_preset"]["overridden"] == [
        "batch",
        "calib",
        "d_width",
        "log_every",
        "n_target",
        "n_test",
        "n_train",
        "save_every",
        "steps",
        "taps",
        "width",
    ]
    assert res["net_preset"]["preset"]["run"]["width"] == 32 and res["networks"]["g"] == "Generator"
    assert res["networks"]["norm"] == "group" and res["networks"]["g_batch_stats"] == 0
    for k in ("d_loss", "g_loss", "gang", "const", "tid", "tv"):
        assert np.isfinite(res["final_metrics"][k]), k
    for part in ("constancy", "constancy_untrained_g"):  # their formulas: test_vgg_f_dtn_g_step_… above
        assert all(np.isfinite(v) for v in res[part].values()) and res[part]["n"] == 8
    # the trained G and the untrained one are two different G: three steps moved every G-dependent number
    for k in ("const_mse", "cos_s_gs", "cos_s_other_gs"):
        assert res["constancy"][k] != res["constancy_untrained_g"][k], k
    assert res["constancy"]["const_mse_random_pair"] == res["constancy_untrained_g"]["const_mse_random_pair"]
    assert (out / "samples.png").stat().st_size > 0 and (out / "loss.png").is_file()
    assert "NOT pretrained" in (out / "report.html").read_text()
    # the pictures: after 3 steps G is still untrained (noise-like textures, structure similarity 0.0-0.2;
    # 300 steps do not change that at this width), so what is checked is that the figure shows G of its
    # faces and that they differ with the face; the source and target faces must be real pictures
    src, g_src, tgt, g_tgt = P.grid_cells(P.load_png(out / "samples.png"), 64, 64, 4, 8)
    P.assert_not_degenerate(src + g_src + tgt + g_tgt, min_std=0.05)
    P.assert_input_dependent(src, 0.05, "source face")
    P.assert_input_dependent(tgt, 0.05, "target face")
    # G's row is G of the row above (64 px tiles of 32 px faces): the translator of the run, on those faces
    from dfijax.dtn import translator

    g = translator.load_translator(out, random_vgg.variables)(np.stack([x[::2, ::2] for x in src]))
    err = max(float(np.abs(np.repeat(np.repeat(y, 2, 0), 2, 1) - t).max()) for y, t in zip(g, g_src))
    assert err < 0.02, err  # seen: 0.0033 (8-bit PNGs)
    P.assert_input_dependent(g_src, 0.03, "G(source)")  # seen: 0.085 (one face's G for all: 0)
    P.assert_input_dependent(g_tgt, 0.02, "G(target)")  # seen: 0.047
    assert any(p.name.isdigit() for p in (out / "dtn").iterdir())  # orbax step folders
    saved, state = D.restore(out / "dtn")  # the run's settings and newest state, as evaluation reads them
    assert (saved.domain, saved.taps, saved.run.width, saved.run.steps, int(state.g.step)) == (
        "faces",
        ("relu2_1",),
        8,
        3,
        3,
    )
    assert saved.weights == D.preset("faces") and res["networks"]["g_params"] == sum(
        x.size for x in jax.tree.leaves(state.g.params)
    )
    # a rerun resumes (nothing left to train); other settings in the same --out are refused
    assert train_dtn_faces.main(TINY_RUN + ["--out", str(out)]) == 0
    res2 = json.loads((out / "results.json").read_text())
    assert res2["resumed_from"] == 3 and res2["constancy"] == res["constancy"]
    capsys.readouterr()
    for args, msg in [
        (["--size", "16"], "size must be a power of two >= 32"),
        (["--alpha", "-1"], "const_weight must be a finite number >= 0"),
        (["--lr", "0"], "lr must be a finite number > 0"),
        (["--taps", "relu9_9"], "unknown VGG-19 tap"),
        (["--data", "celeba"], "needs --data-dir"),
        (["--data", "celeba", "--data-dir", str(tmp_path / "nowhere")], "CelebA not found"),
        (["--width", "16"], "other settings: width 8 (now 16)"),
    ]:
        o = out if args == ["--width", "16"] else tmp_path / "bad"
        assert train_dtn_faces.main(TINY_RUN + args + ["--out", str(o)]) == 1, args
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], (args, err)


# --- the paper's faces networks (section 5.2) -----------------------------------------------------------
# Hand count from the layer table in dfijax/dtn/model.py, width w = 64, F = 256 features. BN layers hold
# a scale and a bias per channel (and a running mean and variance); convolutions before a BN have no bias.
W, FEAT = 64, 256
PAPER_G_TABLE = {  # layer: kernel shape (bias only on "out")
    "up0": (4, 4, FEAT, 8 * W),
    "mix0": (1, 1, 8 * W, 8 * W),
    "up1": (4, 4, 8 * W, 4 * W),
    "mix1": (1, 1, 4 * W, 4 * W),
    "up2": (4, 4, 4 * W, 2 * W),
    "mix2": (1, 1, 2 * W, 2 * W),
    "up3": (4, 4, 2 * W, W),
    "mix3": (1, 1, W, W),
    "out": (4, 4, W, 3),
}
PAPER_D_TABLE = {
    "conv0": (4, 4, 3, W),
    "conv1": (4, 4, W, 2 * W),
    "conv2": (4, 4, 2 * W, 4 * W),
    "conv3": (4, 4, 4 * W, 8 * W),
    "conv4": (4, 4, 8 * W, 8 * W),
    "conv5": (4, 4, 8 * W, 8 * W),
    "logits": (3 * 3 * 8 * W, 3),
}  # 152 -> 76 -> 38 -> 19 -> 10 -> 5 -> 3, then dense
# g: 16·256·512 + 512² + 16·512·256 + 256² + 16·256·128 + 128² + 16·128·64 + 64² + (16·64·3 + 3) weights
#    + 2·(512 + 512 + 256 + 256 + 128 + 128 + 64 + 64) BN scale/bias = 5 200 899 + 3 840
PAPER_G_PARAMS = 5_204_739
# D: 16·(3·64 + 64·128 + 128·256 + 256·512 + 2·512²) + (4608·3 + 3) + 2·(64 + 128 + 256 + 3·512) = 11 161 987
PAPER_D_PARAMS = 11_161_987


def _size(tree):
    return sum(int(np.size(x)) for x in jax.tree.leaves(tree))


def _tables_of(variables):
    """({layer: kernel shape}, {layers with a bias}, {layers followed by a BN}) of a paper net's variables."""
    p = variables["params"]
    kernels = {k: tuple(v["kernel"].shape) for k, v in p.items() if "kernel" in v}
    return kernels, {k for k in kernels if "bias" in p[k]}, {k[: -len("_bn")] for k in p if k.endswith("_bn")}


def test_paper_nets_layer_table():
    g, d = D.PaperGenerator(W), D.PaperDiscriminator(W, num_classes=3)
    assert D.uses_batch_stats(g) and D.uses_batch_stats(d) and not D.uses_batch_stats(D.Generator())
    key = jax.random.key(0, impl="rbg")
    gv = jax.eval_shape(g.init, key, jnp.zeros((1, FEAT)))
    dv = jax.eval_shape(d.init, key, jnp.zeros((1, 152, 152, 3)))
    # 9 weight layers in g (5 upscaling + 4 1×1), 6 stride-2 convolutions + a dense layer in D; every
    # hidden layer batch-normalised, biases only on the output layers
    assert len(PAPER_G_TABLE) == 9 and len(PAPER_D_TABLE) == 7
    assert _tables_of(gv) == (PAPER_G_TABLE, {"out"}, set(PAPER_G_TABLE) - {"out"})
    assert _tables_of(dv) == (PAPER_D_TABLE, {"logits"}, set(PAPER_D_TABLE) - {"logits"})
    assert _size(gv["params"]) == PAPER_G_PARAMS and _size(dv["params"]) == PAPER_D_PARAMS
    assert _size(gv["batch_stats"]) == 2 * 1920 and _size(dv["batch_stats"]) == 2 * 1984  # mean + var
    chex.assert_shape(jax.eval_shape(g.apply, gv, jnp.zeros((5, FEAT))), (5, 64, 64, 3))
    chex.assert_shape(jax.eval_shape(d.apply, dv, jnp.zeros((5, 64, 64, 3))), (5, 3))  # scaled up inside
    with pytest.raises(ValueError, match="64x64 RGB"):
        jax.eval_shape(D.PaperGenerator(W, size=32).init, key, jnp.zeros((1, FEAT)))
    with pytest.raises(ValueError, match="size 64 or the small"):
        F.make_faces_dtn(f=TINY_F, size=32, nets="paper")
    with pytest.raises(ValueError, match="unknown DTN networks"):
        F.make_faces_dtn(f=TINY_F, size=32, nets="big")


@pytest.mark.slow
def test_paper_preset_one_training_step(random_vgg):
    """The paper's nets at full width (g from a 256-D f to 64 px, D at 152 px) on a batch of 2: their
    shapes, then one D step and one G step."""
    f = F.VGGFeatures(("relu3_1",), grid=1)  # 256-D, the size of the paper's f
    assert f.feat_dim == FEAT
    xs = synthetic_faces(4, seed=5).images(range(4), 64)
    xt = cartoon_faces(4, seed=5).images(range(4), 64)
    f_params = F.make_f_params(f, random_vgg.variables, xs)
    dtn = F.make_faces_dtn(D.preset("faces"), f, size=64, width=W, d_width=W, nets="paper")
    assert (type(dtn.g), type(dtn.d), dtn.d.input_size) == (D.PaperGenerator, D.PaperDiscriminator, 152)
    state = D.init_state(dtn, lr=1e-4, seed=0)
    assert _size(state.g.params) == PAPER_G_PARAMS and _size(state.d.params) == PAPER_D_PARAMS
    z = F.features(f, f_params, xs[:2])
    chex.assert_shape(z, (2, FEAT))
    img = jax.jit(dtn.g.apply)({"params": state.g.params, "batch_stats": state.g_stats}, jnp.asarray(z))
    chex.assert_shape(img, (2, 64, 64, 3))
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0 and float(img.std()) > 0
    logits = jax.jit(dtn.d.apply)(  # one program each, not some hundred op-by-op ones
        {"params": state.d.params, "batch_stats": state.d_stats},
        jax.random.uniform(jax.random.key(2), (2, 152, 152, 3)),
    )
    chex.assert_shape(logits, (2, 3))
    chex.assert_tree_all_finite(logits)

    batch, rng = (jnp.asarray(xs[:2]), jnp.asarray(xt[:2])), jax.random.key(0)
    s0 = jax.tree.map(np.array, state)
    state, md = D.make_d_step(dtn)(state, batch, rng, f_params)
    assert np.isfinite(float(md["d_loss"])) and float(md["d_loss"]) > 0 and float(md["d_finite"]) == 1.0
    chex.assert_trees_all_close((state.g.params, state.g_stats), (s0.g.params, s0.g_stats))  # g left alone
    for name in PAPER_D_TABLE:
        assert not np.allclose(state.d.params[name]["kernel"], s0.d.params[name]["kernel"]), name
    assert not np.allclose(state.d_stats["conv5_bn"]["var"], s0.d_stats["conv5_bn"]["var"])
    s1 = jax.tree.map(np.array, state)
    state, mg = D.make_g_step(dtn)(state, batch, rng, f_params)
    for k in ("g_loss", "gang", "const", "tid", "tv"):
        assert np.isfinite(float(mg[k])), k
    assert float(mg["g_finite"]) == 1.0 and float(mg["const"]) > 0
    chex.assert_trees_all_close((state.d.params, state.d_stats), (s1.d.params, s1.d_stats))  # D left alone
    for name in PAPER_G_TABLE:
        assert not np.allclose(state.g.params[name]["kernel"], s1.g.params[name]["kernel"]), name
    assert not np.allclose(state.g_stats["mix0_bn"]["mean"], s1.g_stats["mix0_bn"]["mean"])
    with pytest.raises(ValueError, match="pass g_stats"):  # eval mode needs g's running statistics
        D.translate(dtn, f_params, state.g.params, xt[:3])


def test_train_dtn_faces_net_presets_resolve():
    from experiments import train_dtn_faces as E

    p = E.parse(["--nets", "paper"])
    a = p.config
    assert (a.size, a.run.width, a.run.d_width, a.run.batch, a.run.lr, a.run.steps, p.overridden) == (
        64,
        64,
        64,
        64,
        2e-4,
        20000,
        (),
    )
    p = E.parse(["--nets", "paper", "--steps", "5", "--batch", "2"])
    a = p.config
    assert (a.run.steps, a.run.batch, a.size, p.overridden) == (5, 2, 64, ("batch", "steps"))
    a = E.parse([]).config
    assert (a.nets, a.size, a.run.width, a.run.d_width, a.run.batch, a.run.lr, a.run.steps) == (
        "small",
        32,
        32,
        32,
        16,
        1e-3,
        600,
    )
    dtn = a.dtn_config("w")  # what a resumed run compares with the settings saved beside its checkpoints
    assert (dtn.domain, dtn.taps, dtn.data) == (
        "faces",
        a.taps,
        "synthetic  n_train=2000 n_target=2000; f: w, calibrated on 256",
    )
    with pytest.raises(ValueError, match="nets paper makes 64x64"):
        E.parse(["--nets", "paper", "--size", "32"])
