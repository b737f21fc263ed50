import dataclasses
import json
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dfijax import training
from dfijax.images import synthetic_painting, synthetic_scene
from dfijax.style import fast as fs
from dfijax.style import fast_run
from dfijax.vgg import VGG
from tests import pictures as P
from tests.conftest import isolate, one_run

NET = fs.TransformNet(width=8, blocks=2)
LOSS = fs.PerceptualLoss(content_layer="relu2_2", style_layers=("relu1_2", "relu2_2"))
SIZE = 32


def batches(step: int) -> np.ndarray:
    """A pure function of the step: resumed runs see the same data."""
    return np.stack([synthetic_scene(SIZE, SIZE, seed=1000 + 2 * step + i) for i in range(2)])


def test_transform_net_shapes_and_range(key):
    x = jax.random.uniform(key, (2, 36, 44, 3))
    params = NET.init(key, x)["params"]
    y = NET.apply({"params": params}, x)
    chex.assert_shape(y, x.shape)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    full = fs.TransformNet()  # Johnson's sizes: c9s1-32 ... 5 residual blocks of 128
    p = jax.eval_shape(lambda: full.init(key, jnp.zeros((1, 64, 64, 3))))["params"]
    chex.assert_shape(p["down0"]["Conv_0"]["kernel"] if "Conv_0" in p["down0"] else p["down0"]["kernel"], (9, 9, 3, 32))
    assert sum(k.startswith("res") and k.endswith("conv1") for k in p) == 5
    # bfloat16 compute: same parameters, float32 output close to the float32 network's
    yb = fs.TransformNet(width=NET.width, blocks=NET.blocks, dtype=jnp.bfloat16).apply({"params": params}, x)
    assert yb.dtype == jnp.float32 and float(jnp.abs(yb - y).max()) < 0.05


@pytest.mark.parametrize("output", fs.OUTPUTS)
@pytest.mark.parametrize("upsample", fs.UPSAMPLES)
def test_transform_net_options_shapes_and_output_range(key, output, upsample):
    x = jax.random.uniform(key, (2, 36, 44, 3))
    net = fs.TransformNet(width=4, blocks=1, output=output, upsample=upsample)
    params = net.init(key, x)["params"]
    y = net.apply({"params": params}, x)
    chex.assert_shape(y, x.shape)
    chex.assert_type(y, jnp.float32)
    # same parameter tree for every option (the choice lives in train_info.json, not in the checkpoint)
    chex.assert_trees_all_equal_shapes(params, fs.TransformNet(width=4, blocks=1).init(key, x)["params"])
    # saturate the last layer: the output reaches the bounds the docstring gives, never past them
    big = {**params, "out": {**params["out"], "kernel": params["out"]["kernel"] * 1e4}}
    ys = np.asarray(net.apply({"params": big}, x)).reshape(-1, 3)
    lo, hi = (fs.TANH_CENTER - 150 / 255, fs.TANH_CENTER + 150 / 255) if output == "tanh" else (np.zeros(3), np.ones(3))
    assert np.all(ys >= lo - 1e-6) and np.all(ys <= hi + 1e-6)
    np.testing.assert_allclose(ys.min(0), lo, atol=1e-3)
    np.testing.assert_allclose(ys.max(0), hi, atol=1e-3)
    if output == "tanh":
        np.testing.assert_allclose(fs.TANH_CENTER, np.array([123.68, 116.779, 103.939]) / 255, rtol=1e-6)
        assert ys.min() < -0.15 and ys.max() > 1.05  # slightly beyond [0, 1], as documented
        out = fs.stylize(net, big, np.asarray(x[:1, :30, :26]))  # stylize clips to [0, 1]
        chex.assert_shape(out, (1, 30, 26, 3))
        assert out.min() == 0.0 and out.max() == 1.0
    with pytest.raises(ValueError, match="upsample must be one of"):
        fs.TransformNet(upsample="bilinear").init(key, x)


def test_johnson_layers_on_vgg16_and_vgg19():
    l16, l19 = fs.johnson_loss(16, style_weight=2.0), fs.johnson_loss(19)
    assert (l16.model.depth, l16.content_layer, l16.style_layers, l16.style_weight) == (
        16,
        "relu2_2",
        ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        2.0,
    )
    assert (l19.model.depth, l19.style_layers) == (19, ("relu1_2", "relu2_2", "relu3_4", "relu4_4"))
    with pytest.raises(ValueError, match="depth must be 16 or 19"):
        fs.johnson_loss(11)


def test_training_resumes_exactly_and_restores_the_network(random_vgg, tmp_path):
    style = synthetic_painting(SIZE, SIZE, seed=3)
    a, b = tmp_path / "a", tmp_path / "b"
    cfg = fs.FastStyleConfig(
        width=NET.width,
        blocks=NET.blocks,
        size=SIZE,
        batch=2,
        lr=1e-2,
        style_layers=LOSS.style_layers,
        save_every=3,
        steps=6,
    )
    assert cfg.loss() == dataclasses.replace(LOSS, model=VGG(depth=19)) and cfg.net() == NET
    full, start = fs.train(cfg, random_vgg.variables, style, batches, a)
    assert start == 0
    logged = []
    fs.train(dataclasses.replace(cfg, steps=3), random_vgg.variables, style, batches, b)  # "killed" after step 3
    resumed, start = fs.train(cfg, random_vgg.variables, style, batches, b, progress=lambda s, r: logged.append(s))
    assert start == 3 and int(resumed.step) == 6 and logged == [4, 5, 6]
    chex.assert_trees_all_close(resumed.params, full.params, rtol=1e-5, atol=1e-6)
    recs = [json.loads(l) for l in (a / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["step"] == 6 and recs[-1]["finite"] == 1.0
    got, params = fs.restore(a)  # the network comes back from the saved settings
    assert got == cfg
    chex.assert_trees_all_close(params, full.params)
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        fs.restore(tmp_path / "none")
    with pytest.raises(ValueError, match=r"other settings: width 8 \(now 16\)"):
        fs.train(dataclasses.replace(cfg, width=16), random_vgg.variables, style, batches, b)


def test_train_step_reduces_the_perceptual_loss(random_vgg):
    style = jnp.asarray(synthetic_painting(SIZE, SIZE, seed=3))
    grams = LOSS.style_grams(random_vgg.variables, style)
    state = fs.create_state(NET, SIZE, 3e-3, 0)
    step = fs.make_train_step(LOSS)
    batch = jnp.asarray(batches(0))
    losses = []
    for _ in range(15):
        state, m = step(state, batch, random_vgg.variables, grams)
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses
    assert float(m["out_std"]) > 0.05  # not collapsing to a constant image
    # NaN guard: a poisoned batch leaves the state as it was
    before, old = jax.tree.map(np.array, state.params), state  # host copies: the step donates the state
    state, m = step(state, batch * jnp.nan, random_vgg.variables, grams)
    assert all(x.is_deleted() for x in jax.tree.leaves(old.params))  # donated here too, as on a GPU
    assert m["finite"] == 0.0
    chex.assert_trees_all_close(state.params, before)
    out = fs.stylize(NET, state.params, np.asarray(batches(1))[:, :30, :26], batch=1)  # odd sizes are padded
    chex.assert_shape(out, (2, 30, 26, 3))


def test_relative_loss_is_unit_free_and_absolute_is_not(random_vgg):
    """Zero biases and preprocessing offset, conv1_1 scaled by k: every feature scales by k (ReLU and
    max pooling are positively homogeneous). The relative terms must not move; the paper's absolute
    terms scale as k² (content) and k⁴ (style)."""
    v = jax.tree_util.tree_map(jnp.asarray, random_vgg.variables)
    params = {n: {"kernel": p["kernel"], "bias": jnp.zeros_like(p["bias"])} for n, p in v["params"].items()}
    base = {"params": params, "preprocess": {**v["preprocess"], "offset": jnp.zeros_like(v["preprocess"]["offset"])}}
    k = 7.0
    scaled = {**base, "params": {**params, "conv1_1": {**params["conv1_1"], "kernel": k * params["conv1_1"]["kernel"]}}}
    content = jnp.asarray(batches(0))
    out = jnp.clip(content + 0.1 * jax.random.normal(jax.random.key(1), content.shape), 0, 1)
    style = jnp.asarray(synthetic_painting(SIZE, SIZE, seed=3))
    for norm, powers in (("relative", (0, 0)), ("absolute", (2, 4))):
        loss = fs.PerceptualLoss(content_layer="relu2_2", style_layers=("relu1_2", "relu2_2"), normalize=norm)
        _, a = loss(out, content, base, loss.style_grams(base, style))
        _, b = loss(out, content, scaled, loss.style_grams(scaled, style))
        np.testing.assert_allclose(float(b["content"]), k ** powers[0] * float(a["content"]), rtol=1e-3)
        np.testing.assert_allclose(float(b["style"]), k ** powers[1] * float(a["style"]), rtol=1e-3)
        assert float(a["content"]) > 0 and float(a["style"]) > 0
    with pytest.raises(ValueError, match="normalize"):
        fs.PerceptualLoss(normalize="mean")


def test_stylize_chunks_pad_and_keep_the_order(key):
    net = fs.TransformNet(width=4, blocks=1)
    params = jax.jit(net.init)(key, jnp.zeros((1, SIZE, SIZE, 3)))["params"]
    x = np.random.default_rng(0).uniform(size=(3, 30, 26, 3)).astype(np.float32)
    whole = fs.stylize(net, params, x, batch=3)
    chex.assert_shape(whole, (3, 30, 26, 3))
    assert float(whole.std()) > 1e-3
    np.testing.assert_allclose(fs.stylize(net, params, x, batch=2), whole, atol=1e-5)  # 2 + 1 (zero-padded)
    # mixed sizes: grouped by size, given back in the input order, one progress report per size
    pics = [x[0], x[1, :24, :20], x[2]]
    seen = []
    out = fast_run.stylize_images(net, params, pics, batch=2, progress=lambda *a: seen.append(a[:3]))
    assert [y.shape for y in out] == [p.shape for p in pics] and seen == [("stylize", 1, 3), ("stylize", 3, 3)]
    np.testing.assert_allclose(np.stack([out[0], out[2]]), whole[[0, 2]], atol=1e-5)
    assert np.abs(out[1] - whole[1, :24, :20]).max() > 1e-4  # styled as a 24 x 20 image, not cropped


def test_train_mesh_splits_the_batch_over_the_devices_that_divide_it(all_devices):
    assert all_devices == 4  # tests/conftest.py
    assert [fs.train_mesh(b).devices.size for b in (1, 2, 3, 4, 6, 8, 9)] == [1, 2, 3, 4, 3, 4, 3]
    m = fs.train_mesh(4)
    x = training.put_global(np.arange(8.0).reshape(4, 2), m)
    assert len(x.sharding.device_set) == 4 and x.addressable_shards[1].data.shape == (1, 2)
    np.testing.assert_array_equal(np.asarray(x), np.arange(8.0).reshape(4, 2))


def test_run_training_gives_records_and_samples_and_inputs_load_from_folders(random_vgg, tmp_path):
    cfg = fs.FastStyleConfig(
        width=4, blocks=1, size=SIZE, batch=2, style_layers=("relu1_2",), content_layer="relu1_2", steps=2
    )
    seen = []
    r = fast_run.run_training(cfg, random_vgg.variables, tmp_path / "run", progress=lambda *a: seen.append(a[:3]))
    assert r.resumed_from == 0 and [x["step"] for x in r.records] == [2] and r.final["finite"] == 1.0
    assert seen == [("train", 1, 2), ("train", 2, 2)]
    chex.assert_shape([r.content, r.styled], (2, SIZE, SIZE, 3))
    np.testing.assert_array_equal(r.content, fs.content_batches(None, SIZE, 2)(fast_run.SAMPLE_STEP))
    np.testing.assert_allclose(r.styled, fs.stylize(cfg.net(), jax.device_get(r.state.params), r.content), atol=1e-6)
    np.testing.assert_array_equal(fast_run.style_image(None, 40), synthetic_painting(40, 40, fast_run.STYLE_SEED))
    # files and folders of images (sorted), short sides resized
    from dfijax import images as im

    (tmp_path / "pics" / "sub").mkdir(parents=True)
    for name, hw in (("b.png", (40, 48)), ("sub/a.png", (36, 36)), ("c.jpg", (32, 64))):
        im.save_image(tmp_path / "pics" / name, np.full(hw + (3,), 0.5, np.float32))
    pics, names = fast_run.load_inputs([tmp_path / "pics" / "c.jpg", tmp_path / "pics"], 32)
    assert names == ["c", "b", "c", "a"] and [p.shape[:2] for p in pics] == [(32, 64), (32, 38), (32, 64), (32, 32)]
    with pytest.raises(ValueError, match="no images"):
        fast_run.load_inputs([tmp_path / "run" / "tb"], None)


def test_content_batches_rows_are_the_global_batch_rows(tmp_path):
    from dfijax import images as im

    for i in range(3):
        im.save_image(tmp_path / f"{i}.png", im.synthetic_scene(24, 40, seed=i))
    for folder in (None, tmp_path):
        b = fs.content_batches(folder, 16, 4, seed=3)
        whole = b(5)
        chex.assert_shape(whole, (4, 16, 16, 3))
        np.testing.assert_array_equal(np.concatenate([b.rows(5, slice(0, 1)), b.rows(5, slice(1, 4))]), whole)
        np.testing.assert_array_equal(b(5), whole)  # a pure function of the step
        assert np.abs(b(6) - whole).max() > 0.05


# ---- the experiments: one tiny run shared by the pictures and the command-line checks ------------

TINY_RUN = ["--preset", "tiny", "--vgg", "16", "--output", "tanh", "--upsample", "transpose"]  # the paper's choices


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One `train_fast_style --preset tiny` run (32 px, batch 2, width 8, 30 steps) with the paper's
    loss network and output choices, in an isolated folder: (its --out, what it printed to stderr)."""
    from experiments import train_fast_style

    _, run, err = one_run(tmp_path_factory, "fast_style", train_fast_style.main, TINY_RUN)
    return run, err


def test_fast_style_pictures(tiny_run, tmp_path, monkeypatch):
    """30 steps at 32 px: the network already keeps the scene (sun, house, hills) under its texture.
    Checked through stylize's default input, the 4 embedded scenes at 128 px (noise < 0.06 there)."""
    from experiments import stylize

    isolate(monkeypatch, tmp_path)
    ck = tiny_run[0]
    rows = P.grid_cells(P.load_png(ck / "samples.png"), 32, 32, 2, 2)
    P.assert_not_degenerate(rows[0] + rows[1], min_std=0.1)  # seen: styled std 0.19, 0.19
    P.assert_input_dependent(rows[1], 0.04, "sample")  # seen: 0.064
    out = tmp_path / "st"
    assert stylize.main(["--ckpt", str(ck), "--out", str(out)]) == 0
    styled = P.load_all(P.pngs(out, "scene*_styled.png"))
    assert len(styled) == 4 and styled[0].shape == (128, 128, 3)
    P.assert_not_degenerate(styled, min_std=0.1)  # seen: std 0.17-0.18
    scenes = [synthetic_scene(128, 128, seed=s) for s in range(4)]
    P.assert_keeps_structure(styled, scenes, 0.15, "stylised scene")  # seen: 0.29, 0.31, 0.33, 0.23
    P.assert_matches_own_input(styled, scenes, 0.05, "stylised scene")


def test_train_fast_style_resumes_and_stylize_applies(tiny_run, tmp_path, monkeypatch, capsys):
    from experiments import stylize, train_fast_style

    isolate(monkeypatch, tmp_path)
    assert "loss network: VGG-16 (seeded random, NOT pretrained), content relu2_2" in tiny_run[1]
    ck = tmp_path / "fs"
    shutil.copytree(tiny_run[0], ck)
    assert train_fast_style.main(TINY_RUN + ["--steps", "32", "--save-every", "2", "--out", str(ck)]) == 0
    info = json.loads((ck / "train_info.json").read_text())
    assert info["resumed_from"] == 30 and info["final"]["step"] == 32
    assert info["network"] == {"width": 8, "output": "tanh", "upsample": "transpose"}
    assert info["loss_network"]["vgg"] == 16 and "NOT pretrained" in info["loss_network"]["weights"]
    assert info["loss_network"]["style_layers"] == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert np.asarray(Image.open(ck / "loss.png")).shape == (280, 560, 3)
    assert (ck / "samples.png").is_file()
    img = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).uniform(size=(30, 42, 3)) * 255).astype(np.uint8)).save(img)
    assert stylize.main(["--ckpt", str(ck), "--images", str(img), "--out", str(tmp_path / "st")]) == 0
    styled = np.asarray(Image.open(tmp_path / "st" / "photo_styled.png"))
    assert styled.shape == (30, 42, 3)
    cfg, params = fs.restore(ck)  # stylize rebuilt the trained network from the saved settings
    assert cfg.net() == fs.TransformNet(width=8, output="tanh", upsample="transpose") and cfg.steps == 32
    photo = np.asarray(Image.open(img), np.float32)[None] / 255
    expect = fs.stylize(cfg.net(), params, photo)[0] * 255
    assert np.abs(styled.astype(np.float32) - expect).max() <= 1.0
    assert "images/s" in capsys.readouterr().out
    assert stylize.main(["--ckpt", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert "no checkpoint folder" in capsys.readouterr().err
    # a video through the same network, with its flicker reported
    from dfijax.style import video as vid

    vid.write_video(tmp_path / "clip.avi", vid.synthetic_clip(3, 32, 40))
    assert stylize.main(["--ckpt", str(ck), "--video", str(tmp_path / "clip.avi"), "--out", str(tmp_path / "sv")]) == 0
    res = json.loads((tmp_path / "sv" / "results.json").read_text())
    r = fast_run.run_stylize(ck, video=tmp_path / "clip.avi")  # the flicker by its definition, on the same frames
    x, y = np.stack(r.inputs), np.stack(r.outputs)
    pairs = vid.frame_pairs(x)  # the input clip's flow and reliability, for both
    want = {"input": vid.warping_errors(x, pairs).mean(), "stylized": vid.warping_errors(y, pairs).mean()}
    assert res["frames"] == 3 and res["flicker"] == pytest.approx(want, rel=1e-6)
    assert abs(want["stylized"] - want["input"]) > 1e-3 * want["input"] > 0  # seen: 0.033 against 0.0040
    assert Image.open(tmp_path / "sv" / "compare.gif").size == (80, 32)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 20)
    capsys.readouterr()
    assert stylize.main(["--ckpt", str(ck), "--video", str(bad), "--out", str(tmp_path / "x")]) == 1
    assert "cannot decode" in capsys.readouterr().err
