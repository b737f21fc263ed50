import chex
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import invert as I
from dfijax import losses, style
from dfijax.style import color
from dfijax.vgg import VGG19
from tests.conftest import smooth_images

SMALL = style.StyleLoss(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))


def test_gatys_defaults():
    loss = style.StyleLoss()
    assert loss.model.pooling == "max" and loss.content_layers == ("relu4_2",)  # the notebook's VGG()
    assert loss.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    np.testing.assert_allclose(loss.weights, [1e3 / n**2 for n in (64, 128, 256, 512, 512)])
    assert loss.target_names() == (
        ("content/relu4_2",) + tuple(f"gram/{t}" for t in loss.style_layers) + ("style_scale",)
    )
    with pytest.raises(ValueError, match="1 style weights for 2"):
        style.StyleLoss(style_layers=("relu1_1", "relu2_1"), style_weights=(1.0,))


def test_targets_blend_and_loss_value(random_vgg):
    c = jnp.asarray(smooth_images(2, 40, 40, seed=1))
    s1, s2 = smooth_images(2, 48, 56, seed=2)  # style images of another size
    t = style.style_targets(SMALL, random_vgg.variables, c, [s1, s2], [3.0, 1.0])
    chex.assert_shape(t["content/relu2_1"], (2, 20, 20, 128))
    chex.assert_shape(t["gram/relu1_1"], (2, 64, 64))
    g1 = style.style_grams(SMALL, random_vgg.variables, [s1])
    g2 = style.style_grams(SMALL, random_vgg.variables, [s2])
    np.testing.assert_allclose(t["gram/relu2_1"][1], 0.75 * g1["relu2_1"] + 0.25 * g2["relu2_1"], rtol=1e-5)
    # at the content image itself: content term 0, style term = Σ w_l mean((G(c) − A)²)
    one = {k: v[0] for k, v in t.items()}
    parts = SMALL.parts(c[0], random_vgg.variables, one)
    assert float(parts["content"]) == pytest.approx(0.0, abs=1e-10)
    f = VGG19(pooling="max").apply(random_vgg.variables, c[:1], taps=("relu1_1", "relu2_1"))
    manual = sum(
        w * np.mean((np.asarray(losses.gram(f[l][0])) - np.asarray(one[f"gram/{l}"])) ** 2)
        for l, w in zip(SMALL.style_layers, SMALL.weights)
    )
    np.testing.assert_allclose(parts["style"], manual, rtol=1e-4)
    with pytest.raises(ValueError, match="non-negative"):
        style.style_grams(SMALL, random_vgg.variables, [s1], [-1.0])


def test_style_transfer_with_the_engine_moves_toward_the_style(random_vgg):
    """Several content images in one vmapped call: the style term falls a lot, content stays close."""
    c = jnp.asarray(smooth_images(2, 40, 40, seed=3))
    s = smooth_images(1, 40, 40, seed=4)[0][:, ::-1] ** 0.5
    t = style.style_targets(SMALL, random_vgg.variables, c, [s])
    loss = dataclass_replace(SMALL, content_weight=1e-2)
    r = I.invert(loss, random_vgg.variables, t, c, I.SolverConfig(maxiter=30))
    chex.assert_shape(r.images, c.shape)
    for i in range(2):
        before = SMALL.parts(c[i], random_vgg.variables, {k: v[i] for k, v in t.items()})
        after = SMALL.parts(r.images[i], random_vgg.variables, {k: v[i] for k, v in t.items()})
        assert float(after["style"]) < 0.2 * float(before["style"])
        assert float(after["content"]) > 0.0
    h = np.asarray(r.loss_history)
    assert np.all(h[:, -1] < 0.3 * h[:, 0])


def test_style_problems_contents_x_styles_x_scales_in_one_call(random_vgg):
    """2 contents x 2 separate styles x 2 scales = 8 problems, one compiled call; each batched result
    equals solving that problem alone, and a larger style scale lowers the style term further."""
    c = jnp.asarray(smooth_images(2, 32, 32, seed=5))
    s1, s2 = smooth_images(2, 36, 36, seed=6)
    sets = [[([s1], None), ([s2], None)]] * 2
    t, index = style.style_problems(SMALL, random_vgg.variables, c, sets, (1.0, 10.0))
    assert index == [(i, j, k) for i in range(2) for j in range(2) for k in range(2)]
    chex.assert_shape(t["gram/relu2_1"], (8, 128, 128))
    np.testing.assert_allclose(t["style_scale"], [1, 10] * 4)
    np.testing.assert_allclose(
        t["gram/relu1_1"][2], style.style_grams(SMALL, random_vgg.variables, [s2])["relu1_1"], rtol=1e-5
    )
    x0 = c[jnp.array([i for i, _, _ in index])]
    cfg = I.SolverConfig(maxiter=6)
    r = I.invert(SMALL, random_vgg.variables, t, x0, cfg)
    solo = I.invert(SMALL, random_vgg.variables, {k: v[5:6] for k, v in t.items()}, x0[5:6], cfg)
    np.testing.assert_allclose(r.images[5], solo.images[0], atol=2e-4)
    raw = lambda p: (
        float(SMALL.parts(r.images[p], random_vgg.variables, {k: v[p] for k, v in t.items()})["style"])
        / float(t["style_scale"][p])
    )
    assert raw(1) < raw(0) and raw(7) < raw(6)
    with pytest.raises(ValueError, match="positive"):
        style.style_problems(SMALL, random_vgg.variables, c, sets, (0.0,))


def dataclass_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def test_yiq_and_luminance_transfer():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0, 1, (6, 7, 3)), jnp.float32)
    np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(x)), x, atol=1e-5)
    np.testing.assert_allclose(color.luminance(x), 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2], atol=1e-6)
    content = jnp.asarray(rng.uniform(0.3, 0.6, (8, 8, 3)), jnp.float32)
    style_img = jnp.asarray(rng.uniform(0.0, 1.0, (10, 12, 3)), jnp.float32)
    m = color.match_luminance(style_img, content)
    chex.assert_shape(m, (10, 12, 3))
    np.testing.assert_allclose(m[..., 0].mean(), color.luminance(content).mean(), rtol=1e-4)
    np.testing.assert_allclose(m[..., 0].std(), color.luminance(content).std(), rtol=1e-3)
    # recombining keeps the stylised luminance and the content's chroma
    stylised = jnp.asarray(rng.uniform(0.3, 0.7, (8, 8, 3)), jnp.float32)
    out = color.recombine_luminance(stylised, content)
    np.testing.assert_allclose(color.luminance(out), color.luminance(stylised), atol=1e-4)
    np.testing.assert_allclose(color.rgb_to_yiq(out)[..., 1:], color.rgb_to_yiq(content)[..., 1:], atol=1e-4)


@pytest.mark.parametrize("mode", ["chol", "pca", "sym"])
def test_colour_histogram_matching_matches_mean_and_covariance(mode):
    rng = np.random.default_rng(1)
    src = jnp.asarray(
        rng.uniform(0, 1, (20, 20, 3)) @ np.array([[1, 0.3, 0], [0, 0.5, 0.2], [0.1, 0, 0.8]]), jnp.float32
    )
    tgt = jnp.asarray(
        rng.normal(0.5, 0.1, (16, 24, 3)) @ np.array([[1, 0.5, 0.2], [0, 1, 0.4], [0, 0, 1]]), jnp.float32
    )
    out = color.match_color_histogram(src, tgt, mode)
    chex.assert_shape(out, src.shape)
    o, t = np.asarray(out).reshape(-1, 3), np.asarray(tgt).reshape(-1, 3)
    np.testing.assert_allclose(o.mean(0), t.mean(0), atol=1e-4)
    np.testing.assert_allclose(np.cov(o.T), np.cov(t.T), atol=2e-4)
    with pytest.raises(ValueError, match="mode must be"):
        color.match_color_histogram(src, tgt, "lab")


def test_neural_style_loss_equals_hand_computed_numpy(random_vgg):
    """jcjohnson/neural-style: 5·mean((F−P)²) + Σ_l 100·mean((FᵀF/(C·h·w) − SᵀS/(C·h'·w'))²)
    + 1e-3·½·Σ(Δx² + Δy²) on 0-255, max pooling, content relu4_2, style relu1_1…relu5_1."""
    loss = style.style_loss_preset("neural-style")
    assert (loss.normalize, loss.model.pooling, loss.content_weight, loss.tv_weight) == (
        "neural-style",
        "max",
        5.0,
        1e-3,
    )
    assert loss.weights == (100.0,) * 5 and loss.content_layers == ("relu4_2",)
    assert loss.style_layers == style.GATYS_STYLE_LAYERS
    c = smooth_images(1, 32, 40, seed=7)[0]
    s = smooth_images(1, 36, 32, seed=8)[0]
    x = np.clip(c + 0.1 * np.random.default_rng(0).standard_normal(c.shape), 0, 1).astype(np.float32)
    t = style.style_targets(loss, random_vgg.variables, c[None], [s])
    value = float(loss(jnp.asarray(x), random_vgg.variables, {k: v[0] for k, v in t.items()}))

    taps = loss.taps
    feats = lambda im: {
        k: np.asarray(v[0], np.float64)
        for k, v in VGG19(pooling="max").apply(random_vgg.variables, jnp.asarray(im)[None], taps=taps).items()
    }
    fx, fc, fs = feats(x), feats(c), feats(s)

    def gram(f):
        h, w, ch = f.shape
        m = f.reshape(h * w, ch)
        return m.T @ m / (ch * h * w)

    content = np.mean((fx["relu4_2"] - fc["relu4_2"]) ** 2)
    style_term = sum(100.0 * np.mean((gram(fx[l]) - gram(fs[l])) ** 2) for l in style.GATYS_STYLE_LAYERS)
    d = x.astype(np.float64) * 255
    tv = 0.5 * (np.sum((d[:-1, 1:] - d[:-1, :-1]) ** 2) + np.sum((d[1:, :-1] - d[:-1, :-1]) ** 2))
    expect = 5.0 * content + style_term + 1e-3 * tv
    assert style_term > 0 and tv > 0 and content > 0
    np.testing.assert_allclose(value, expect, rtol=1e-4)
    # the Gatys convention on the same problem differs (Gram / (h·w), weights 1e3/n², no TV)
    gatys = style.style_loss_preset("gatys")
    assert gatys.model.pooling == "max" and gatys.weights == style.StyleLoss().weights and gatys.tv_weight == 0
    with pytest.raises(ValueError, match="unknown normalize"):
        style.StyleLoss(normalize="johnson")
    with pytest.raises(ValueError, match="unknown style loss preset"):
        style.style_loss_preset("paper")


def test_coarse_to_fine_second_stage_starts_from_upsampled_first(random_vgg):
    """Two stages (32 then 48 px short side) on a 3:4 content: aspect kept, the last stage's shape,
    and stage 2 starts exactly at the upsampled stage-1 result, which beats starting from the content."""
    c = smooth_images(1, 60, 80, seed=9)  # 3:4, any resolution
    s = smooth_images(1, 50, 50, seed=10)[0][:, ::-1] ** 0.5
    loss = dataclass_replace(SMALL, content_weight=1e-2)
    r = style.coarse_to_fine(loss, random_vgg.variables, c, [s], sizes=(32, 48), iters=(12, 3))
    assert r.shapes == ((32, 43), (48, 64)) and len(r.stages) == 2 and r.index == [(0, 0, 0)]
    chex.assert_shape(r.stages[0].images, (1, 32, 43, 3))
    chex.assert_shape(r.images, (1, 48, 64, 3))
    t = {k: v[0] for k, v in r.targets.items()}
    chex.assert_shape(t["content/relu2_1"], (24, 32, 128))
    up = style.upsample(r.stages[0].images, (48, 64))[0]
    start = float(r.stages[1].loss_history[0, 0])
    np.testing.assert_allclose(start, float(loss(up, random_vgg.variables, t)), rtol=1e-5)
    from_content = float(loss(style.resize_images(c[0], (48, 64)), random_vgg.variables, t))
    assert start < 0.5 * from_content
    assert float(r.stages[1].final_loss[0]) <= start
    with pytest.raises(ValueError, match="one iteration count per stage"):
        style.coarse_to_fine(loss, random_vgg.variables, c, [s], sizes=(32, 48), iters=(3,))


def test_cli_presets_aspect_groups_and_stages(tmp_path, monkeypatch):
    """Presets resolve with explicit flags overriding; contents keep their aspect (two shapes -> two
    batched calls) and results.json records the resolved config."""
    import json

    from PIL import Image

    from dfijax.images import save_image, synthetic_scene
    from experiments import style_transfer as st
    from tests.conftest import isolate

    paper = st.parse(["--preset", "paper"]).config
    assert paper.stages == ((512, 520), (800, 220)) and paper.history == 100
    assert paper.loss() == style.StyleLoss() and paper.init == "content"
    assert st.parse([]).config.loss().model.pooling == "avg"  # quick keeps average pooling
    one = st.parse(["--normalize", "neural-style"]).config.loss()  # a flag changes its own field only
    assert (one.normalize, one.model.pooling, one.content_weight, one.tv_weight) == ("neural-style", "avg", 1.0, 0.0)
    ns = st.parse(["--preset", "neural-style", "--tv", "0", "--iters", "50"]).config
    assert ns.stages == ((512, 50),) and ns.init == "noise"
    assert (ns.loss().normalize, ns.loss().content_weight, ns.loss().tv_weight, ns.loss().model.pooling) == (
        "neural-style",
        5.0,
        0.0,
        "max",
    )
    assert st.parse([]).config.stages == ((96, 100),)
    with pytest.raises(ValueError, match="--stages or --size"):
        st.parse(["--stages", "32:2", "--size", "40"]).config
    with pytest.raises(SystemExit, match="2"):  # tyro's own message: "'32x2' is not a list of SIZE:ITERS"
        st.parse(["--stages", "32x2"]).config
    with pytest.raises(ValueError, match="stage sizes must be >= 32"):
        st.parse(["--size", "16"]).config

    isolate(monkeypatch, tmp_path)
    save_image(tmp_path / "wide.png", synthetic_scene(40, 60, seed=1))
    save_image(tmp_path / "square.png", synthetic_scene(50, 50, seed=2))
    out = tmp_path / "o"
    assert (
        st.main(
            [
                "--content",
                str(tmp_path / "wide.png"),
                str(tmp_path / "square.png"),
                "--stages",
                "32:3",
                "--preset",
                "neural-style",
                "--init",
                "content",
                "--history",
                "10",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(out / "content0_painting_x1.png")).shape == (32, 48, 3)
    assert np.asarray(Image.open(out / "content1_painting_x1.png")).shape == (32, 32, 3)
    res = json.loads((out / "results.json").read_text())
    cfg = res["config"]
    assert cfg["preset"] == "neural-style" and cfg["stages"] == [[32, 3]] and cfg["init"] == "content"
    assert cfg["normalize"] == "neural-style" and res["loss"]["style_weights"] == [100.0] * 5
    assert res["loss"]["content_weight"] == 5.0 and res["loss"]["pooling"] == "max"
    assert [g["stage_shapes"] for g in res["aspect_groups"]] == [[[32, 48]], [[32, 32]]]
    assert [r["shape"] for r in res["results"]] == [[32, 48], [32, 32]]
    for r in res["results"]:
        assert r["final_loss"] < r["initial_loss"]
    assert np.asarray(Image.open(out / "grid.png")).shape[0] > 32  # cells of both shapes in one grid
    # --config repeats the run: the same resolved config, the same pictures (same shapes: no new compile)
    again = tmp_path / "again"
    assert (
        st.main(
            [
                "--content",
                str(tmp_path / "wide.png"),
                str(tmp_path / "square.png"),
                "--config",
                str(out / "config.json"),
                "--out",
                str(again),
            ]
        )
        == 0
    )
    assert (again / "config.json").read_text() == (out / "config.json").read_text()
    np.testing.assert_allclose(
        np.asarray(Image.open(again / "content0_painting_x1.png"), np.float32),
        np.asarray(Image.open(out / "content0_painting_x1.png"), np.float32),
        atol=1,
    )
    assert json.loads((again / "results.json").read_text())["config"] == cfg
    # a flag given with --config overrides it; an unknown saved setting is a one-line error
    assert st.parse(["--config", str(out / "config.json"), "--iters", "5"]).config.stages == ((32, 5),)
    (tmp_path / "bad.json").write_text(json.dumps({**cfg, "colour": "blue"}))
    with pytest.raises(ValueError, match="settings colour are not fields of StyleConfig"):
        st.parse(["--config", str(tmp_path / "bad.json")]).config


def test_run_style_transfer_preserves_the_contents_colour(random_vgg):
    """The pipeline with luminance-only transfer: the result's chroma (YIQ I, Q) is the content's, its
    luminance changed; with "chol" the colours are free to move (the style was recoloured instead)."""
    import chex

    from dfijax.images import synthetic_painting, synthetic_scene
    from dfijax.style import color

    # the shapes and objective of test_cli_presets_aspect_groups_and_stages' wide content: no new compile
    content, painting = synthetic_scene(32, 48, seed=1), synthetic_painting(48, 48, seed=3)
    calls = []
    cfg = style.style_config("neural-style", stages=((32, 3),), init="content", history=10, preserve_color="luminance")
    r = style.run_style_transfer(cfg, random_vgg, [content], [painting], progress=lambda *a: calls.append(a))
    assert len(r.images) == 1
    chex.assert_shape(r.images[0], (32, 48, 3))
    assert r.index == [(0, 0, 0)] and r.problems_in_one_call == 1 and r.config is cfg
    yiq_out, yiq_in = np.asarray(color.rgb_to_yiq(r.images[0])), np.asarray(color.rgb_to_yiq(content))
    chroma_err = np.abs(yiq_out[..., 1:] - yiq_in[..., 1:])  # only clipping to [0, 1] moves a few pixels
    assert np.mean(chroma_err < 0.01) > 0.98 and chroma_err.mean() < 0.005, (chroma_err.mean(), chroma_err.max())
    assert np.abs(yiq_out[..., 0] - yiq_in[..., 0]).mean() > 0.005  # the luminance was stylised
    assert r.problems[0]["final_loss"] < r.problems[0]["initial_loss"]
    assert calls[-1][:3] == ("solve", 3, 3) and np.isfinite(calls[-1][3]["loss"])
    with pytest.raises(ValueError, match="preserve_color must be one of none, luminance, chol, pca, sym; got 'hue'"):
        style.style_config(preserve_color="hue")
