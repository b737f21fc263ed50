"""Own photos for DFI: eye alignment to the dataset's template, crops that never stretch, automatic
eyes and attributes, and the edit pasted back into the full-resolution photo."""

import json

import chex
import numpy as np
import pytest
from PIL import Image

from dfijax import images as im
from dfijax.data.synthetic_faces import synthetic_faces
from dfijax.dfi import align, sweep_inputs
from tests.conftest import isolate, smooth_images


def test_similarity_from_eyes_maps_the_eyes_exactly_and_inverts():
    rng = np.random.default_rng(0)
    for _ in range(5):
        src, dst = rng.uniform(0, 300, (2, 2)), rng.uniform(0, 64, (2, 2))
        m = align.similarity_from_eyes(src, dst)
        chex.assert_shape(m, (2, 3))
        np.testing.assert_allclose(align.transform_points(m, src), dst, atol=1e-9)
        a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
        assert a == pytest.approx(d) and b == pytest.approx(-c)  # rotation × uniform scale: no shear
        scale = np.linalg.norm(dst[1] - dst[0]) / np.linalg.norm(src[1] - src[0])
        assert np.sqrt(a * a + c * c) == pytest.approx(scale)
        inv = align.invert_affine(m)
        np.testing.assert_allclose(align.transform_points(inv, dst), src, atol=1e-9)
        pts = rng.uniform(-50, 50, (10, 2))
        np.testing.assert_allclose(align.transform_points(inv, align.transform_points(m, pts)), pts, atol=1e-9)
    with pytest.raises(ValueError, match="different places"):
        align.similarity_from_eyes([[5, 5], [5, 5]], [[1, 1], [2, 2]])


def test_templates_come_from_the_datasets():
    faces = synthetic_faces(4)
    t = align.template_eyes(faces, 64)  # render_face: eyes at (0.5 ∓ 0.105, 0.46) of the canvas
    np.testing.assert_allclose(t, [[0.395 * 64 - 0.5, 0.46 * 64 - 0.5], [0.605 * 64 - 0.5, 0.46 * 64 - 0.5]])
    from dfijax.data.celeba import CelebAFolder
    from dfijax.data.lfw import LFWFolder

    names, attrs = ("Male",), np.ones((1, 1), np.float32)
    celeba = CelebAFolder("celeba", names, attrs, ("a.jpg",), True)  # default crop (40, 9, 160, 160)
    np.testing.assert_allclose(align.template_fractions(celeba), [[60 / 160, 71 / 160], [99 / 160, 71 / 160]])
    lfw = LFWFolder("lfw", names, attrs, ("a.jpg",), False)  # default box (40, 20, 210, 190)
    np.testing.assert_allclose(align.template_fractions(lfw), [[60 / 170, 90 / 170], [110 / 170, 90 / 170]])


def test_align_then_unalign_returns_the_photo_inside_the_mask():
    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    photo = np.stack([0.5 + 0.3 * np.sin(3 * xx + 2 * yy + c) for c in range(3)], -1).astype(np.float32)
    eyes = np.array([[24.0, 20.0], [40.0, 26.0]])  # a tilted face
    m = align.similarity_from_eyes(eyes, [[12.0, 14.0], [27.0, 14.0]])
    aligned = align.align(photo, m, (40, 40))
    chex.assert_shape(aligned, (40, 40, 3))
    np.testing.assert_allclose(aligned[14, 12], photo[20, 24], atol=0.03)  # the eye lands on the template
    back, mask = align.unalign(aligned, m, photo.shape)
    chex.assert_shape(back, photo.shape)
    chex.assert_shape(mask, photo.shape[:2])
    inside = mask > 0.999
    assert inside.sum() > 200
    assert np.abs(back - photo)[inside].max() < 0.04
    # the mask is exactly 0 wherever the photo lies outside the aligned square
    ys, xs = np.mgrid[0:48, 0:64]
    q = align.transform_points(m, np.stack([xs, ys], -1).reshape(-1, 2).astype(float)).reshape(48, 64, 2)
    outside = (q < -1).any(-1) | (q > 40).any(-1)
    assert outside.sum() > 500 and mask[outside].max() == 0.0
    # pasting an edit back: untouched outside the mask, the full change well inside it
    pasted = align.paste_back(photo, aligned, np.clip(aligned + 0.1, 0, 1), m)
    np.testing.assert_array_equal(pasted[mask == 0], photo[mask == 0])
    deep = inside & (photo.max(-1) < 0.85)
    np.testing.assert_allclose((pasted - photo)[deep], 0.1, atol=0.03)


def test_a_wide_photo_is_cropped_or_padded_never_stretched(tmp_path):
    h, w = 40, 120
    photo = np.full((h, w, 3), 0.8, np.float32)
    photo[:, :10] = (1.0, 0.0, 0.0)  # a red bar at the left edge
    yy, xx = np.mgrid[0:h, 0:w]
    photo[(xx - 60) ** 2 + (yy - 20) ** 2 < 15**2] = 0.0  # a round dark disc in the middle
    data = synthetic_faces(2)
    crop = sweep_inputs.prepare_photos([photo], data, 32)
    chex.assert_shape(crop.images, (1, 32, 32, 3))
    out = crop.images[0]
    assert not ((out[..., 0] > 0.6) & (out[..., 1] < 0.3)).any()  # the edge bar is cut away
    dark = out.max(-1) < 0.4
    rows, cols = np.flatnonzero(dark.any(1)), np.flatnonzero(dark.any(0))
    assert abs(len(rows) - len(cols)) <= 1 and len(rows) >= 20  # still a disc (stretching would squash it 3:1)
    np.testing.assert_allclose(align.transform_points(crop.matrices[0], [59.5, 19.5]), [15.5, 15.5], atol=1e-6)
    assert np.isnan(crop.eyes).all()
    path = tmp_path / "wide.png"
    im.save_image(path, photo)
    np.testing.assert_allclose(out, im.load_image(path, (32, 32)), atol=1.5 / 255)  # the same box as load_image
    pad = sweep_inputs.prepare_photos([photo], data, 30, fit="pad").images[0]
    dark = pad.max(-1) < 0.4
    rows, cols = np.flatnonzero(dark.any(1)), np.flatnonzero(dark.any(0))
    assert abs(len(rows) - len(cols)) <= 1 and 6 <= len(rows) <= 9  # 30 px of 120, scaled by 1/4
    assert ((pad[..., 0] > 0.6) & (pad[..., 1] < 0.3))[:, :2].all()  # padding keeps the whole width (the bar: 2.5 px)


def _drawn_face(h=240, w=320, eyes=((135, 110), (185, 110))):
    """A clearly drawn frontal face (skin oval, hair, brows, white eyes with iris and pupil, nose,
    mouth) with its eye centres at `eyes`: [h, w, 3] float32."""
    import cv2

    img = np.full((h, w, 3), (90, 110, 140), np.uint8)
    (x1, y1), (x2, y2) = eyes
    cx, cy, d = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1
    aa = cv2.LINE_AA
    cv2.ellipse(img, (int(cx), int(cy + 0.45 * d)), (int(0.95 * d), int(1.3 * d)), 0, 0, 360, (190, 150, 120), -1, aa)
    cv2.ellipse(img, (int(cx), int(cy - 0.55 * d)), (int(0.98 * d), int(0.6 * d)), 0, 180, 360, (40, 30, 25), -1, aa)
    for x, y in eyes:
        cv2.ellipse(img, (x, y - int(0.3 * d)), (int(0.28 * d), int(0.06 * d)), 0, 0, 360, (50, 35, 30), -1, aa)
        cv2.ellipse(img, (x, y), (int(0.25 * d), int(0.12 * d)), 0, 0, 360, (245, 245, 245), -1, aa)
        cv2.circle(img, (x, y), int(0.1 * d), (70, 50, 40), -1, aa)
        cv2.circle(img, (x, y), int(0.05 * d), (10, 10, 10), -1, aa)
    cv2.line(img, (int(cx), int(cy + 0.1 * d)), (int(cx - 0.08 * d), int(cy + 0.6 * d)), (150, 110, 90), 2, aa)
    cv2.ellipse(img, (int(cx), int(cy + 0.95 * d)), (int(0.4 * d), int(0.12 * d)), 0, 0, 180, (120, 40, 40), 3, aa)
    return img.astype(np.float32) / 255


@pytest.mark.skipif(
    not align.haar_available(), reason="this OpenCV ships no Haar cascades (opencv-python-headless<5 does)"
)
def test_eyes_auto_finds_drawn_eyes():
    for eyes in (((135, 110), (185, 110)), ((120, 100), (200, 104))):
        found = align.detect_eyes(_drawn_face(eyes=eyes))
        np.testing.assert_allclose(found, eyes, atol=4.0)
    # the synthetic template agrees with where the detector finds the embedded faces' eyes
    faces = synthetic_faces(16)
    hits = []
    for i in range(16):
        try:
            hits.append(align.detect_eyes(faces.load(i, 256)))
        except align.EyeDetectionError:
            pass
    assert len(hits) >= 8
    np.testing.assert_allclose(np.median(hits, 0), align.template_eyes(faces, 256), atol=6.0)


def test_eyes_auto_error_is_one_line_saying_to_pass_eyes(monkeypatch, tmp_path, capsys):
    from experiments import alpha_sweep

    flat = np.full((60, 80, 3), 0.5, np.float32)
    with pytest.raises(align.EyeDetectionError, match=r"--eyes x1,y1,x2,y2") as e:
        align.detect_eyes(flat)
    assert "\n" not in str(e.value)
    isolate(monkeypatch, tmp_path)
    im.save_image(tmp_path / "flat.png", flat)
    base = [
        "--n-synthetic",
        "20",
        "--images",
        str(tmp_path / "flat.png"),
        "--attrs",
        "Young=1",
        "--out",
        str(tmp_path / "x"),
    ]
    for extra, msg in (
        (["--eyes", "auto"], "--eyes x1,y1,x2,y2"),
        (["--eyes", "1,2,3,4;5,6,7,8"], "2 eye pairs for 1 photos"),
        (["--eyes", "1,2,1,2"], "different places"),
    ):
        capsys.readouterr()
        assert alpha_sweep.main(base + extra) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and msg in err and "\n" not in err, err
    import cv2

    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)  # an OpenCV without the cascades
    assert not align.haar_available()
    with pytest.raises(align.EyeDetectionError, match=r"Haar cascades.*--eyes x1,y1,x2,y2"):
        align.detect_eyes(_drawn_face())
    with pytest.raises(ValueError, match="2 eye pairs for 1 photos"):
        align.parse_eyes("1,2,3,4;5,6,7,8", 1)
    with pytest.raises(ValueError, match="four numbers"):
        align.parse_eyes("1,2,3", 1)
    np.testing.assert_array_equal(align.parse_eyes("30,5,10,6", 1)[0], [[10, 6], [30, 5]])  # ordered left to right
    assert align.parse_eyes("auto", 3) is None


class _FixedProbe:
    def __init__(self, probs):
        self.probs = np.asarray(probs, np.float32)

    def scores(self, images):
        return np.repeat(self.probs[None], len(images), 0)


def test_attrs_auto_takes_the_probe_prediction_with_overrides():
    data = synthetic_faces(50)
    names = data.attr_names
    probs = np.full(len(names), 0.2, np.float32)
    probs[names.index("Male")] = 0.9
    probs[names.index("Young")] = 0.7
    imgs = np.zeros((2, 32, 32, 3), np.float32)
    values, p = sweep_inputs.predict_photo_attrs(_FixedProbe(probs), imgs, data)
    chex.assert_shape(values, (2, len(names)))
    np.testing.assert_array_equal(values[0], np.where(probs > 0.5, 1.0, -1.0))  # binary: ±1
    assert sweep_inputs.wants_predicted_attrs("auto,Male=-1") and not sweep_inputs.wants_predicted_attrs("Young=1")
    inputs = sweep_inputs.photo_inputs(imgs, "auto,Male=-1", data, ["a", "b"], values)
    expect = values.copy()
    expect[:, names.index("Male")] = -1.0
    np.testing.assert_array_equal(inputs.queries, expect)
    with pytest.raises(ValueError, match="unknown attribute 'Mael'"):
        sweep_inputs.photo_inputs(imgs, "auto,Mael=-1", data, ["a", "b"], values)
    with pytest.raises(ValueError, match="needs the probe's predictions"):
        sweep_inputs.photo_inputs(imgs, "auto", data, ["a", "b"])
    # a continuous dataset: the predicted side's typical score
    cont = synthetic_faces(50)
    cont.attrs = cont.attrs * np.linspace(0.5, 2.0, len(cont))[:, None].astype(np.float32)
    v, _ = sweep_inputs.predict_photo_attrs(_FixedProbe(probs), imgs[:1], cont)
    i = names.index("Male")
    assert v[0, i] == pytest.approx(cont.attrs[cont.attrs[:, i] > 0, i].mean(), rel=1e-5)


def test_alpha_sweep_own_photo_aligned_by_eyes_attrs_predicted_full_res(tmp_path, monkeypatch, capsys):
    """A tilted synthetic face in a wide photo, aligned by its eyes, attributes from the real (tiny)
    probe with Male overridden, the edit pasted back into the full-size photo."""
    import cv2

    from experiments import alpha_sweep

    isolate(monkeypatch, tmp_path)
    face = synthetic_faces(3).load(2, 96)
    photo = np.asarray(smooth_images(1, 120, 200, seed=5)[0])
    photo[12:108, 60:156] = face  # the face off-centre in a wide picture
    rot = cv2.getRotationMatrix2D((108.0, 60.0), 12.0, 1.1)  # tilted and scaled
    photo = cv2.warpAffine(photo, rot, (200, 120), borderMode=cv2.BORDER_REFLECT)
    eyes = align.transform_points(rot, align.template_eyes(synthetic_faces(1), 96) + [60, 12])
    path = tmp_path / "me.png"
    im.save_image(path, photo)
    args = [
        "--n-synthetic",
        "300",
        "--k",
        "10",
        "--alphas",
        "0.4",
        "--iters",
        "4",
        "--size",
        "32",
        "--batch",
        "8",
        "--probe-steps",
        "10",
        "--probe-train",
        "200",
        "--no-shard",
        "--edit",
        "Smiling+",
        "--images",
        str(path),
        "--eyes",
        ",".join(f"{v:.2f}" for v in eyes.ravel()),
        "--attrs",
        "auto,Male=-1",
        "--full-res",
        "--out",
        str(tmp_path / "run"),
    ]
    assert alpha_sweep.main(args) == 0
    err = capsys.readouterr().err
    assert "predicted attributes (probability): Male" in err and "Male=-1" in err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    ph = res["photos"][0]
    assert ph["size"] == [120, 200] and ph["fit"] == "eyes"
    assert ph["attributes"]["Male"] == -1.0 and set(ph["attributes"]) == set(synthetic_faces(1).attr_names)
    probs = ph["attribute_probabilities"]
    assert all(0.0 < p < 1.0 for p in probs.values())
    others = {n: v for n, v in ph["attributes"].items() if n != "Male"}
    assert all(v == (1.0 if probs[n] > 0.5 else -1.0) for n, v in others.items())
    m = np.asarray(ph["matrix"])
    np.testing.assert_allclose(align.transform_points(m, eyes), align.template_eyes(synthetic_faces(1), 32), atol=0.01)
    original = np.asarray(Image.open(path).convert("RGB"))
    full = np.asarray(Image.open(tmp_path / "run" / "img0_a0.4_full.png"))
    assert full.shape == original.shape == (120, 200, 3)
    _, mask = align.unalign(np.zeros((32, 32, 3), np.float32), m, (120, 200))
    assert (mask == 0).mean() > 0.3
    np.testing.assert_array_equal(full[mask == 0], original[mask == 0])  # untouched outside the face mask
    assert np.abs(full.astype(int) - original)[mask > 0.9].max() > 2  # and edited inside it
    small = np.asarray(Image.open(tmp_path / "run" / "img0_a0.4.png"))
    assert small.shape == (32, 32, 3)
