"""Video style transfer: frames in/out, flow, warping, reliability masks, temporal loss, flicker."""

import dataclasses
import json

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dfijax import video as vid
from tests.conftest import isolate as _isolated


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
    for path, msg in [(bad, "cannot decode"), (tmp_path / "missing.mp4", "not found"),
                      (tmp_path / "empty", "holds no frame images")]:
        if path.name == "empty":
            path.mkdir()
        with pytest.raises(vid.VideoError, match=msg):
            vid.read_frames(path)




TINY = ["--size", "40", "--frames", "4", "--iters-first", "20", "--iters", "10"]


def test_video_style_temporal_loss_cuts_flicker_and_resumes(tmp_path, monkeypatch):
    """Short synthetic moving clip: the temporal version flickers far less than per-frame stylisation
    (seen at 40 px: ~3e-4 vs ~3e-2), at a similar style objective."""
    from experiments import video_style

    _isolated(monkeypatch, tmp_path)
    out = tmp_path / "v"
    assert video_style.main(TINY + ["--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["weights_pretrained"] is False and res["temporal_weight"] == 1e-6 and res["n_frames"] == 4
    fl = res["flicker"]
    assert len(fl["per-frame"]["per_pair"]) == 3
    assert fl["with temporal loss"]["mean"] < 0.2 * fl["per-frame"]["mean"], fl
    so = res["style_objective"]
    assert np.mean(so["with temporal loss"]) < 1.5 * np.mean(so["per-frame"]), so
    assert all(0.5 < f <= 1 for f in res["reliable_fraction"])
    assert Image.open(out / "compare.gif").n_frames == 4 and Image.open(out / "compare.gif").size == (3 * 40, 40)
    assert (out / "frames" / "temporal_0003.png").is_file() and (out / "flicker.png").is_file()
    assert "not pretrained" in (out / "report.html").read_text()
    # a rerun into the same folder resumes after the finished frames (no frame is recomputed)
    first = np.load(out / "frames" / "temporal_0002.npy")
    (out / "frames" / "temporal_0003.npy").unlink()
    assert video_style.main(TINY + ["--out", str(out), "--no-baseline"]) == 0
    res2 = json.loads((out / "results.json").read_text())
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
    cases = [(["--video", str(bad)], "cannot decode"), (["--video", str(one)], "at least 2"),
             (["--temporal-weight", "-1"], "non-negative"), (["--style", str(bad)], "cannot read"),
             (["--video", str(tmp_path / "nope")], "not found")]
    for extra, msg in cases:
        assert video_style.main(TINY + extra + ["--out", str(tmp_path / "o")]) == 1, extra
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], (extra, err)
