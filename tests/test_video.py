"""Video style transfer: frames in/out, flow, warping, reliability masks, temporal loss, flicker."""

import dataclasses
import json
import shutil

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dfijax.invert import SolverConfig
from dfijax.style import video as vid
from tests import pictures as P
from tests.conftest import isolate as _isolated
from tests.conftest import one_run


def test_warp_shifts_by_integer_flow_and_clamps_edges():
    x = np.random.default_rng(0).uniform(size=(6, 7, 3)).astype(np.float32)
    flow = np.zeros((6, 7, 2), np.float32)
    flow[..., 0] = 2.0  # sample two pixels to the right
    y = np.asarray(vid.warp(jnp.asarray(x), jnp.asarray(flow)))
    chex.assert_shape(y, (6, 7, 3))
    np.testing.assert_allclose(y[:, :5], x[:, 2:], atol=1e-6)
    np.testing.assert_allclose(y[:, 5:], np.repeat(x[:, 6:], 2, 1), atol=1e-6)
    flow[..., 0], flow[..., 1] = 0.0, 0.5  # half a pixel down: the mean of two rows
    y = np.asarray(vid.warp(jnp.asarray(x), jnp.asarray(flow)))
    np.testing.assert_allclose(y[:5], 0.5 * (x[:5] + x[1:]), atol=1e-6)


def test_optical_flow_recovers_the_pan_of_the_synthetic_clip():
    frames = vid.synthetic_clip(3, 64, 64, speed=1.5)
    chex.assert_shape(frames, (3, 64, 64, 3))
    assert 0 <= frames.min() and frames.max() <= 1
    bwd = vid.optical_flow(frames[1], frames[0])  # frame_1(p) = frame_0(p + 1.5 x)
    fwd = vid.optical_flow(frames[0], frames[1])
    chex.assert_shape(bwd, (64, 64, 2))
    assert abs(np.median(bwd[..., 0]) - 1.5) < 0.3 and abs(np.median(bwd[..., 1])) < 0.3
    assert abs(np.median(fwd[..., 0]) + 1.5) < 0.3
    # warping frame 0 by the backward flow predicts frame 1 far better than frame 0 itself does
    pair = vid.frame_pairs(frames[:2])[0]
    err = vid.warping_errors(frames[:2], [pair])[0]
    still = vid.warping_errors(frames[:2], [vid.FramePair(np.zeros_like(bwd), pair.mask)])[0]
    assert err < 0.3 * still, (err, still)
    assert np.asarray(vid.optical_flow(frames[1], frames[0], "farneback")).shape == (64, 64, 2)
    with pytest.raises(vid.VideoError, match="unknown flow method"):
        vid.optical_flow(frames[0], frames[1], "raft")


def test_reliability_marks_disocclusions_edges_and_motion_boundaries():
    h, w = 12, 16
    fwd = np.zeros((h, w, 2), np.float32)
    bwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0], bwd[..., 0] = 2.0, -2.0  # consistent pan: frame_t(p) = frame_{t-1}(p - 2 x)
    m = vid.reliability(fwd, bwd)
    chex.assert_shape(m, (h, w))
    assert (m[:, :2] == 0).all() and (m[:, 2:] == 1).all()  # the two columns that came in over the edge
    # backward flow that the forward flow does not undo: disoccluded (|w~ + w^|^2 = 9 > 0.01*9 + 0.5)
    bad = bwd.copy()
    bad[4:8, 8:12, 0] = 1.0
    m2 = vid.reliability(fwd, bad)
    assert (m2[5:7, 9:11] == 0).all() and m2[:, 2:7].all()
    # a sharp jump in the backward flow is a motion boundary even where the check passes
    f3, b3 = np.zeros((h, w, 2), np.float32), np.zeros((h, w, 2), np.float32)
    b3[:, 8:, 1] = 0.3
    f3[:, 8:, 1] = -0.3
    m3 = vid.reliability(f3, b3)
    assert (m3[2:-2, 7:9] == 0).all() and (m3[2:-2, :6] == 1).all() and (m3[2:-2, 10:] == 1).all()
    with pytest.raises(vid.VideoError, match=r"\[H, W, 2\]"):
        vid.reliability(fwd, bwd[:, :5])


@dataclasses.dataclass(frozen=True)
class _Zero:
    def target_names(self):
        return ("dummy",)

    def __call__(self, x, variables, targets):
        return jnp.sum(targets["dummy"]) * 0.0


def test_temporal_loss_value_and_gradient():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(5, 4, 3)).astype(np.float32)
    warped = rng.uniform(size=(5, 4, 3)).astype(np.float32)
    c = (rng.uniform(size=(5, 4)) > 0.5).astype(np.float32)
    loss = vid.TemporalLoss(_Zero(), temporal_weight=3.0)
    assert loss.target_names() == ("dummy", "warped", "reliability")
    tg = {"dummy": jnp.ones(2), "warped": jnp.asarray(warped), "reliability": jnp.asarray(c)}
    want = 3.0 * np.sum(c[..., None] * (255 * (x - warped)) ** 2) / x.size
    np.testing.assert_allclose(float(loss(jnp.asarray(x), None, tg)), want, rtol=1e-5)
    import jax

    g = np.asarray(jax.grad(lambda z: loss(z, None, tg))(jnp.asarray(x)))
    assert (g[c == 0] == 0).all() and (np.abs(g[c == 1]) > 0).any()  # unreliable pixels are free
    # several warped frames (long-term): one size-averaged term per frame, an all-zero slot adds nothing
    w2 = np.stack([warped, rng.uniform(size=(5, 4, 3)).astype(np.float32), warped])
    c2 = np.stack([c, 1 - c, np.zeros_like(c)])
    tg2 = {"dummy": jnp.ones(2), "warped": jnp.asarray(w2), "reliability": jnp.asarray(c2)}
    want2 = want + 3.0 * np.sum((1 - c)[..., None] * (255 * (x - w2[1])) ** 2) / x.size
    np.testing.assert_allclose(float(loss(jnp.asarray(x), None, tg2)), want2, rtol=1e-5)


def test_long_term_weights_tie_each_pixel_to_the_closest_visible_frame():
    c1 = np.array([[1, 0, 0, 0, 0.5]], np.float32)  # c(i-1, i)
    c2 = np.array([[1, 1, 0, 0, 1.0]], np.float32)  # c(i-2, i)
    c5 = np.array([[1, 1, 1, 0, 1.0]], np.float32)  # c(i-5, i)
    w = vid.long_term_weights(np.stack([c1, c2, c5]))
    chex.assert_shape(w, (3, 1, 5))
    np.testing.assert_allclose(w[0], c1)  # the previous frame keeps its reliability
    np.testing.assert_allclose(w[1], [[0, 1, 0, 0, 0.5]])  # max(c2 - c1, 0)
    np.testing.assert_allclose(w[2], [[0, 0, 1, 0, 0]])  # max(c5 - c1 - c2, 0)
    assert vid.check_offsets(["4", "1", "2"]) == (1, 2, 4)
    for bad in (["2", "4"], ["x"], []):
        with pytest.raises(vid.VideoError, match="offsets"):
            vid.check_offsets(bad)
    with pytest.raises(vid.VideoError, match=r"\[K, H, W\]"):
        vid.long_term_weights(c1[0])


TINY_SOLVE = SolverConfig(maxiter=12)  # one config: the sequence tests share their compiled solves


@pytest.fixture(scope="module")
def tiny_style(random_vgg):
    """A shallow style objective on 32 px frames, shared by the sequence tests (one compile each)."""
    from dfijax import images as im
    from dfijax import style
    from dfijax.vgg import VGG19

    variables = random_vgg.variables
    loss = style.StyleLoss(model=VGG19(pooling="avg"), content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
    return loss, variables, im.synthetic_painting(32, 32, seed=3)


def test_long_term_loss_keeps_regions_that_reappear_after_an_occlusion(tiny_style):
    """A bar sweeps over a still scene: with J = {1, 2, 4} a pixel uncovered at frame i is tied to
    how it looked before the bar hid it, so outputs i and i - j agree better over the pixels
    visible in both (seen at 32 px: j = 2 error ~2x lower, j = 4 ~15% lower)."""
    from dfijax import style

    loss, variables, painting = tiny_style
    frames = vid.occlusion_clip(6, 32, 32)
    chex.assert_shape(frames, (6, 32, 32, 3))
    targets = style.style_targets(loss, variables, frames, [painting])
    pairs = vid.offset_pairs(frames, (1, 2, 4))
    assert set(pairs) == {(t, t - j) for j in (1, 2, 4) for t in range(j, 6)}
    errs = {}
    for offsets in [(1,), (1, 2, 4)]:
        out = np.stack(
            vid.stylize_sequence(loss, variables, frames, targets, pairs, TINY_SOLVE, TINY_SOLVE, 1e-5, offsets=offsets)
        )
        chex.assert_shape(out, frames.shape)
        errs[offsets] = {j: vid.long_range_errors(out, pairs, j).mean() for j in (1, 2, 4)}
    short, long = errs[(1,)], errs[(1, 2, 4)]
    assert long[2] < 0.75 * short[2] and long[4] < short[4], errs
    assert long[1] < 3 * short[1] + 1e-4, errs  # the previous frame still binds


def test_multipass_ends_as_steady_as_single_pass(tiny_style):
    """Per-frame stylisation flickers; after a backward and a forward pass with the temporal loss the
    multi-pass result is about as steady as the single-pass one (seen: ~1e-4 vs ~1e-4, per-frame ~5e-3)."""
    import jax.numpy as jnp

    from dfijax import style
    from dfijax.invert import invert

    loss, variables, painting = tiny_style
    frames = vid.synthetic_clip(4, 32, 32)
    targets = style.style_targets(loss, variables, frames, [painting])
    pairs = vid.offset_pairs(frames, (1,), following=True)
    assert (0, 1) in pairs and (3, 2) in pairs and (1, 0) in pairs
    consecutive = [pairs[(t, t - 1)] for t in range(1, 4)]
    cfg = TINY_SOLVE
    per_frame = np.clip(np.asarray(invert(loss, variables, targets, jnp.asarray(frames), cfg).images), 0, 1)
    single = np.stack(vid.stylize_sequence(loss, variables, frames, targets, pairs, cfg, cfg, 1e-5))
    seen = []
    multi = np.stack(
        vid.stylize_multipass(
            loss,
            variables,
            frames,
            targets,
            pairs,
            vid.MultiPass(cfg, passes=3, temporal_after=2, temporal_weight=1e-5),
            first=per_frame,
            on_pass=lambda p, o: seen.append(p),
        )
    )
    chex.assert_shape(multi, frames.shape)
    assert seen == [1, 2, 3]
    f_pf, f_single, f_multi = (vid.warping_errors(v, consecutive).mean() for v in (per_frame, single, multi))
    assert f_multi < 0.1 * f_pf and f_multi < 2 * f_single, (f_pf, f_single, f_multi)
    with pytest.raises(vid.VideoError, match="passes"):
        vid.MultiPass(cfg, passes=0)
    with pytest.raises(vid.VideoError, match="following=True"):
        vid.stylize_multipass(
            loss,
            variables,
            frames,
            targets,
            {(t, t - 1): p for t, p in enumerate(consecutive, 1)},
            vid.MultiPass(cfg),
            first=per_frame,
        )


def test_read_and_write_frames(tmp_path):
    clip = vid.synthetic_clip(4, 40, 48)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(4):
        Image.fromarray((clip[t] * 255 + 0.5).astype(np.uint8)).save(folder / f"f{t:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    back = vid.read_frames(folder)
    chex.assert_shape(back, (4, 40, 48, 3))
    np.testing.assert_allclose(back, clip, atol=1 / 255 + 1e-6)
    chex.assert_shape(vid.read_frames(folder, size=32, max_frames=3, stride=1), (3, 32, 38, 3))
    chex.assert_shape(vid.read_frames(folder, stride=2), (2, 40, 48, 3))
    gif = vid.write_video(tmp_path / "a.gif", clip)
    assert Image.open(gif).n_frames == 4
    for suffix in (".avi", ".mp4"):
        path = vid.write_video(tmp_path / f"a{suffix}", clip)
        frames = vid.read_frames(path)
        chex.assert_shape(frames, (4, 40, 48, 3))
        assert np.abs(frames - clip).mean() < 0.08  # lossy codecs, same pictures
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not a video" * 10)
    for path, msg in [
        (bad, "cannot decode"),
        (tmp_path / "missing.mp4", "not found"),
        (tmp_path / "empty", "holds no frame images"),
    ]:
        if path.name == "empty":
            path.mkdir()
        with pytest.raises(vid.VideoError, match=msg):
            vid.read_frames(path)


TINY = ["--preset", "tiny", "--frames", "4", "--offsets", "1,2"]  # 40 px, 20 iterations for frame 0, 10 after


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One `--preset tiny` run of the experiment on 4 frames of the embedded clip, offsets 1 and 2."""
    from experiments import video_style

    return one_run(tmp_path_factory, "video", video_style.main, TINY)[1]


def test_video_style_pictures(tiny_run):
    """Both versions keep each frame's structure under the style."""
    frames = list(vid.synthetic_clip(4, 40, 40, seed=0))
    for kind in ("temporal", "per_frame"):
        styled = P.load_all(P.pngs(tiny_run / "frames", f"{kind}_*.png"))
        assert len(styled) == 4
        P.assert_not_degenerate(styled, min_std=0.1)
        P.assert_keeps_structure(styled, frames, 0.3, f"{kind} frame")


def test_video_style_temporal_loss_cuts_flicker_and_resumes(tiny_run, tmp_path, monkeypatch):
    """Short synthetic moving clip: the temporal version flickers far less than per-frame stylisation
    (seen at 40 px: ~3e-4 vs ~3e-2), at a similar style objective."""
    from experiments import video_style

    _isolated(monkeypatch, tmp_path)
    out = tmp_path / "v"
    shutil.copytree(tiny_run, out)
    res = json.loads((out / "results.json").read_text())
    assert res["weights_pretrained"] is False and res["temporal_weight"] == 1e-6 and res["n_frames"] == 4
    fl = res["flicker"]
    assert len(fl["per-frame"]["per_pair"]) == 3
    assert fl["with temporal loss"]["mean"] < 0.2 * fl["per-frame"]["mean"], fl
    so = res["style_objective"]
    assert np.mean(so["with temporal loss"]) < 1.5 * np.mean(so["per-frame"]), so
    assert all(0.5 < f <= 1 for f in res["reliable_fraction"])
    assert res["offsets"] == [1, 2] and set(res["long_range_error"]["j=2"]) == {
        "input video",
        "with temporal loss",
        "per-frame",
    }
    assert res["long_range_error"]["j=2"]["with temporal loss"] < 0.2 * res["long_range_error"]["j=2"]["per-frame"]
    assert Image.open(out / "compare.gif").n_frames == 4 and Image.open(out / "compare.gif").size == (3 * 40, 40)
    assert (out / "frames" / "temporal_0003.png").is_file() and (out / "flicker.png").is_file()
    page = (out / "report.html").read_text()  # written by dfijax.report: its common header and config
    assert "not pretrained" in page and "<dt>weights</dt>" in page and "<dt>device</dt>" in page
    assert "<h2>Config</h2>" in page and '<img src="flicker.png"' in page and '<img src="compare.gif"' in page
    assert json.loads((out / "config.json").read_text()) == res["config"] and res["config"]["offsets"] == [1, 2]
    flicker_png = np.asarray(Image.open(out / "flicker.png"))
    assert flicker_png.ndim == 3 and flicker_png.shape[2] == 3 and flicker_png.std() > 10  # a real figure
    # a rerun into the same folder resumes after the finished frames (no frame is recomputed); --config
    # repeats the saved settings (here with one flag overriding them)
    first = np.load(out / "frames" / "temporal_0002.npy")
    (out / "frames" / "temporal_0003.npy").unlink()
    (tmp_path / "saved.json").write_text((out / "config.json").read_text())
    assert (
        video_style.main(
            ["--frames", "4", "--config", str(tmp_path / "saved.json"), "--out", str(out), "--no-baseline"]
        )
        == 0
    )
    res2 = json.loads((out / "results.json").read_text())
    assert res2["config"] == {**res["config"], "baseline": False}
    assert res2["resumed_after_frames"] == 3 and "per-frame" not in res2["flicker"]
    np.testing.assert_array_equal(np.load(out / "frames" / "temporal_0002.npy"), first)
    assert (out / "frames" / "temporal_0003.npy").is_file()


def test_video_style_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    from experiments import video_style

    _isolated(monkeypatch, tmp_path)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 50)
    one = tmp_path / "one"
    one.mkdir()
    Image.new("RGB", (40, 40)).save(one / "0.png")
    cases = [
        (["--video", str(bad)], "cannot decode"),
        (["--video", str(one)], "at least 2"),
        (["--temporal-weight", "-1"], "temporal_weight must be a finite number >= 0"),
        (["--style", str(bad)], "cannot read"),
        (["--video", str(tmp_path / "nope")], "not found"),
        (["--offsets", "2,3"], "including 1"),
        (["--multipass", "1"], "multipass must be 0 (off) or >= 2"),
        (["--preserve-color", "none", "--config", str(bad)], "cannot read --config"),
    ]
    for extra, msg in cases:
        assert video_style.main(TINY + extra + ["--out", str(tmp_path / "o")]) == 1, extra
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], (extra, err)


def test_run_video_style_preserves_the_clips_colour(random_vgg):
    """The pipeline with luminance-only transfer: every output frame has its input frame's chroma
    (YIQ I, Q) while its luminance is stylised; progress and on_frame report every frame."""
    from dfijax import style
    from dfijax.images import synthetic_painting
    from dfijax.style import color

    frames = vid.synthetic_clip(4, 40, 40)  # the shapes and solver of TINY above: no new compile
    cfg = style.video_config("tiny", offsets=(1, 2), baseline=False, preserve_color="luminance")
    seen, calls = [], []
    r = style.run_video_style(
        cfg,
        random_vgg,
        frames,
        [synthetic_painting(40, 40, seed=3)],
        progress=lambda *a: calls.append(a[:3]),
        on_frame=lambda t, x, _r: seen.append(t),
    )
    assert set(r.videos) == {"input video", "with temporal loss"} and r.temporal_weight == 1e-6
    out = r.videos["with temporal loss"]
    chex.assert_shape([out, r.raw["with temporal loss"]], frames.shape)
    yiq_out, yiq_in = np.asarray(color.rgb_to_yiq(out)), np.asarray(color.rgb_to_yiq(frames))
    chroma_err = np.abs(yiq_out[..., 1:] - yiq_in[..., 1:])  # only clipping to [0, 1] moves a few pixels
    assert np.mean(chroma_err < 0.01) > 0.98 and chroma_err.mean() < 0.005, (chroma_err.mean(), chroma_err.max())
    assert np.abs(yiq_out[..., 0] - yiq_in[..., 0]).mean() > 0.005  # the luminance was stylised
    assert seen == [0, 1, 2, 3] and calls[-1] == ("single pass", 4, 4)
    chex.assert_shape(r.flicker["with temporal loss"], (3,))
    assert len(r.style_objective["with temporal loss"]) == 4 and set(r.long_range["j=2"]) == set(r.videos)
    with pytest.raises(vid.VideoError, match="at least 2 frames"):
        style.run_video_style(cfg, random_vgg, frames[:1], [frames[0]])
