"""dlib's face models on real portraits that registry packages ship (matplotlib's grace_hopper.jpg,
scikit-image's astronaut.png), and the landmark fit against a transcription of deepfeatinterp's
`fit_face_landmarks` (models/facemodel/alignface.py)."""

from __future__ import annotations

import dataclasses
import json
import math

import chex
import numpy as np
import pytest
import scipy.optimize
from matplotlib import cbook

from dfijax import face_models as fm
from dfijax import images as im
from dfijax.data.faces import load_faces
from dfijax.dfi import align, face_crops, full_photo, landmarks
from tests.conftest import isolate

needs_dlib = pytest.mark.skipif(not fm.available(), reason='needs the faces extra: pip install -e ".[faces]"')


def hopper() -> np.ndarray:
    return im.load_image(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut().astype(np.float32) / 255.0


def group_photo() -> np.ndarray:
    """Two people side by side: the portrait, and the astronaut scaled to the same height."""
    a, b = hopper(), astronaut()
    b = im.resize_array(b, (a.shape[0], round(b.shape[1] * a.shape[0] / b.shape[0])))
    return np.concatenate([a, b], axis=1)


# --- deepfeatinterp models/facemodel/alignface.py, transcribed (numpy + scipy, (y, x) order) --------------


def reference_objective(q, X, Y):
    """alignface.py:L64-76, f(scale1, scale2, theta, delta, X) with q = (scale1, scale2, theta, *delta)."""
    scale1, scale2, theta, delta = q[0], q[1], q[2], q[3:5]
    ct, st = math.cos(theta), math.sin(theta)  # L65-66
    M = np.array([ct * scale1, -st * scale1, delta[0] * scale1, st * scale2, ct * scale2, delta[1] * scale2])
    M = M.reshape(2, 3)  # L67
    MXmY = M.dot(X) - Y  # L68
    loss = 0.5 * (MXmY**2).sum()  # L69
    J1 = np.array([ct, -st, delta[0], 0.0, 0.0, 0.0]).reshape(2, 3)  # L70
    J2 = np.array([0.0, 0.0, 0.0, st, ct, delta[1]]).reshape(2, 3)  # L71
    J3 = np.array([-st * scale1, -ct * scale1, 0.0, ct * scale2, -st * scale2, 0.0]).reshape(2, 3)  # L72
    J4 = np.array([0.0, 0.0, 1.0 * scale1, 0.0, 0.0, 0.0]).reshape(2, 3)  # L73
    J5 = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0 * scale2]).reshape(2, 3)  # L74
    jac = np.array([(MXmY * (J.dot(X))).sum() for J in (J1, J2, J3, J4, J5)])  # L75
    return loss, jac


def reference_fit_face_landmarks(X, template, landmarks=(33, 39, 42, 8), image_dims=(400, 400)):
    landmarks, scale_landmarks, location_landmark = list(landmarks), [39, 42], 33  # alignface.py:L51
    Xsl = X[scale_landmarks].T.astype(np.float64)  # L57
    Xll = X[location_landmark].astype(np.float64)  # L58
    X = np.concatenate([X[landmarks].T, np.ones((1, len(landmarks)))], axis=0)  # L59
    Y = template[landmarks].T  # L62

    def f(scale1, scale2, theta, delta, X):  # L64-76
        return reference_objective(np.array([scale1, scale2, theta, *delta]), X, Y)

    def g(scale1, scale2, theta, delta):  # L77-83
        ct, st = math.cos(theta), math.sin(theta)
        M = np.array([ct * scale1, -st * scale1, delta[0] * scale1, st * scale2, ct * scale2, delta[1] * scale2])
        M = M.reshape(2, 3)
        return M, 0.5 * ((M.dot(X) - Y) ** 2).sum()

    tsl = template[scale_landmarks]  # L106
    initial_scale = min(
        np.linalg.norm(tsl[0] - tsl[1]) / (np.linalg.norm(Xsl[:, 0] - Xsl[:, 1]) + 1e-5), max(image_dims)
    )
    initial_delta = template[location_landmark] / initial_scale - Xll  # L108
    x0 = np.asarray([initial_scale, initial_scale, 0.0, initial_delta[0], initial_delta[1]]).astype(np.float64)  # L110
    big = max(image_dims)
    bounds = [(0, big), (0, big), (-3.1415926, 3.1415926), (-(big**2), big**2), (-(big**2), big**2)]  # L113
    result = [
        scipy.optimize.minimize(
            lambda x, X: f(x[0], x[1], x[2], x[3:5], X), x0, args=(X,), jac=True, method=m, bounds=bounds
        )
        for m in ("L-BFGS-B", "TNC")
    ]  # L122-124
    assert any(x.success for x in result)  # L126-127: FitError otherwise
    result = min(result, key=lambda x: x.fun)  # L129 argmin(result, lambda x: x.fun)
    return g(result.x[0], result.x[1], result.x[2], result.x[3:5])  # L131-136


def reference_k_best(losses, k):
    """demo2.py:L18-40 fit_submanifold_landmarks_to_image: failed fits get inf (L34), a = argsort(lossX) (L39);
    demo2.py:L126-127 keeps idxP[:K]."""
    return np.argsort(losses)[:k]


def yx_to_xy(m_yx: np.ndarray) -> np.ndarray:
    """A (y, x) affine [2, 3] as the same map on (x, y) points."""
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    return np.concatenate([p @ m_yx[:, :2] @ p, p @ m_yx[:, 2:]], axis=1)


def _faces_like_the_template(n: int, seed: int = 0) -> list[np.ndarray]:
    """68-landmark sets in (x, y): the CelebA template moved by random two-scale similarities, plus noise."""
    rng = np.random.default_rng(seed)
    t = landmarks.CELEBA_TEMPLATE_YX[:, ::-1]
    out = []
    for _ in range(n):
        th, sx, sy = rng.uniform(-0.4, 0.4), rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0)
        c, s = math.cos(th), math.sin(th)
        a = np.array([[c * sx, -s * sx], [s * sy, c * sy]])
        out.append(t @ a.T + rng.uniform(-50, 300, 2) + rng.normal(0, 2.0, t.shape))
    return out


def test_fit_face_landmarks_is_alignfaces():
    tpl_yx = landmarks.CELEBA_TEMPLATE_YX
    tpl_xy = tpl_yx[:, ::-1]
    faces, losses, close = _faces_like_the_template(6), [], 0
    # the objective and its gradient are alignface.py's f (L64-76) at any parameters
    X = np.concatenate([faces[0][list(range(68)), ::-1].T, np.ones((1, 68))])
    for q in np.random.default_rng(1).normal([2.0, 1.5, 0.2, 5.0, -3.0], 1.0, (5, 5)):
        want = reference_objective(q, X, tpl_yx.T)
        got = landmarks._loss_and_grad(q, X, tpl_yx.T)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-9, atol=1e-9)
    for pts in faces:
        for idx, dims in (((33, 39, 42, 8), (160, 160)), (tuple(range(68)), (600, 512))):  # fit_face; demo2's 68
            want_m, want_loss = reference_fit_face_landmarks(pts[:, ::-1], tpl_yx, idx, dims)
            got_m, got_loss = landmarks.fit_face_landmarks(pts, tpl_xy, dims, idx)
            chex.assert_shape(got_m, (2, 3))
            np.testing.assert_allclose(got_loss, want_loss, rtol=1e-3)
            # the same map; where the loss is flat the two stop apart by up to 2 px (the reference's result
            # itself moves that much with rounding), else within a hundredth of a pixel
            gap = np.abs(align.transform_points(got_m, pts) - align.transform_points(yx_to_xy(want_m), pts)).max()
            assert gap < 2.0
            close += gap < 0.01
        losses.append(got_loss)
    assert close >= 10, close
    # a perfect fit where the points are the template moved by the model's own map
    exact = align.transform_points(
        align.invert_affine(landmarks._affine(np.array([1.5, 0.8, 0.3, 10.0, -4.0]))), tpl_xy
    )
    m, loss = landmarks.fit_face_landmarks(exact, tpl_xy, (160, 160))
    assert loss < 1e-6 and np.allclose(align.transform_points(m, exact), tpl_xy, atol=1e-3)
    with_inf = np.array(losses[:5] + [np.inf, losses[5]])
    np.testing.assert_array_equal(landmarks.best_fits(with_inf, 4), reference_k_best(with_inf, 4))


def test_templates_put_the_landmarks_where_each_dataset_has_its_face():
    celeba = landmarks.celeba_template((40, 9, 160, 160), 64)  # the project's default CelebA crop
    chex.assert_shape(celeba, (68, 2))
    # the reference template's inner eye corners are 22.7 px apart at 160 px: 9.07 px at 64
    assert np.linalg.norm(celeba[39] - celeba[42]) == pytest.approx(22.68 * 64 / 160, abs=0.01)
    # its eye centres within 2 px (at 160) of CelebA's aligned eyes (dfi.align.CELEBA_ALIGNED_EYES)
    eyes160 = (landmarks.eye_centres(landmarks.celeba_template((40, 9, 160, 160), 160)) + 0.5) + [9, 40] - 0.5
    np.testing.assert_allclose(eyes160, align.CELEBA_ALIGNED_EYES, atol=2.5)
    synth = load_faces("synthetic", n_synthetic=8)
    t = landmarks.template(synth, 64)
    # the measured synthetic template has its eyes where the renderer draws them (within 1 px at 64)
    np.testing.assert_allclose(landmarks.eye_centres(t), align.template_eyes(synth, 64), atol=1.0)
    assert t[8, 1] > t[33, 1] > t[39, 1]  # chin below the nose below the eyes


@needs_dlib
def test_the_synthetic_template_is_dlibs_measurement_of_the_drawn_faces():
    """compute_template (alignface.py's, over the dataset's crops) measured afresh on other faces agrees with
    the stored template within 2.5 px at 160 px on the landmarks the fit uses."""
    data = load_faces("synthetic", n_synthetic=200, seed=1)
    fractions, n = landmarks.compute_template(data, fm.load().detect, count=50, size=160)
    chex.assert_shape(fractions, (68, 2))
    assert n >= 15
    idx = list(landmarks.FIT_LANDMARKS) + list(range(36, 48))
    np.testing.assert_allclose(fractions[idx] * 160, landmarks.SYNTHETIC_TEMPLATE[idx] * 160, atol=2.5)
    with pytest.raises(ValueError, match="no landmark template for dataset 'plain'"):
        landmarks.template(dataclasses.replace(data, name="plain"), 64)


@needs_dlib
def test_dlib_finds_the_portrait_its_landmarks_and_eyes():
    photo = hopper()
    faces = fm.load().detect(photo)
    assert len(faces) == 1
    face = faces[0]
    chex.assert_shape(face.landmarks, (68, 2))
    left, top, right, bottom = face.box
    assert (left, top, right, bottom) == pytest.approx((161, 137, 376, 352), abs=12) and face.score > 1.0
    inside = (face.landmarks[:, 0] > left - 20) & (face.landmarks[:, 0] < right + 20)
    assert inside.all() and face.landmarks[8, 1] > face.landmarks[33, 1] > face.landmarks[39, 1]
    # the eye centres against positions marked by hand on the photo, within 8 % of their distance (88 px)
    np.testing.assert_allclose(face.eyes, [[222.0, 195.0], [308.0, 190.0]], atol=0.08 * 88)


@needs_dlib
def test_descriptors_tell_the_same_person_from_another():
    models, a, b = fm.load(), hopper(), astronaut()
    da = models.descriptor(a, models.detect(a)[0].landmarks)
    chex.assert_shape(da, (128,))
    half = im.resize_array(a, (a.shape[0] // 2, a.shape[1] // 2))
    mirrored = np.ascontiguousarray(a[:, ::-1])
    same = [fm.distance(da, models.descriptor(x, models.detect(x)[0].landmarks)) for x in (half, mirrored)]
    other = fm.distance(da, models.descriptor(b, models.detect(b)[0].landmarks))
    assert max(same) < 0.3 < fm.SAME_PERSON < other, (same, other)
    assert fm.same_person_share(np.array(same + [other, np.nan])) == pytest.approx(2 / 3)


@needs_dlib
def test_a_group_photo_gives_every_face_left_to_right_and_a_photo_without_one_none():
    faces = fm.load().detect(group_photo())
    assert len(faces) == 2 and faces[0].box[2] < 512 <= faces[1].box[0]
    assert fm.load().detect(np.full((200, 200, 3), 0.5, np.float32)) == []


def test_without_the_extra_the_error_names_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "face_recognition_models" else real(n, *a)
    )
    assert not fm.available()
    with pytest.raises(fm.FaceModelsMissing, match=r'pip install -e "\.\[faces\]"'):
        fm.model_dir()


# --- own photos through the alpha sweep -------------------------------------------------------------------


@needs_dlib
def test_the_round_trip_keeps_the_person():
    """Aligned by the landmark fit, not edited, pasted back: the photo is unchanged (only the change is put
    back); the crop itself, warped back over the face, is still the same person (resampling costs 0.1)."""
    photo, models = hopper(), fm.load()
    crops, notes = face_crops.crop_faces([photo], landmarks.celeba_template((40, 9, 160, 160), 200), 200, models)
    assert notes == ["photo 0: dlib finds 1 face(s)"] and crops.fit_loss[0] < 5.0
    back = align.paste_back(photo, crops.images[0], crops.images[0], crops.matrices[0])
    ref = models.descriptor(photo, models.detect(photo)[0].landmarks)
    again = models.detect(back)[0]
    assert fm.distance(ref, models.descriptor(back, again.landmarks)) < 0.05
    warped, mask = align.unalign(crops.images[0], crops.matrices[0], photo.shape)
    composite = photo * (1 - mask[..., None]) + warped * mask[..., None]
    assert fm.distance(ref, models.descriptor(composite, models.detect(composite)[0].landmarks)) < 0.2
    # the crop holds the face where the template has it: eyes and nose tip within 3 px at 200 px
    tpl = landmarks.celeba_template((40, 9, 160, 160), 200)
    moved = align.transform_points(crops.matrices[0], crops.faces[0].landmarks)
    assert np.abs(moved[[33, 39, 42]] - tpl[[33, 39, 42]]).max() < 3.0


@needs_dlib
def test_a_group_photo_is_edited_in_one_engine_call_each_face_put_back_in_place(tmp_path, monkeypatch):
    from dfijax.dfi import solve as dfi_solve
    from experiments import alpha_sweep

    isolate(monkeypatch, tmp_path)
    calls, real = [], dfi_solve.vectors.edit
    monkeypatch.setattr(
        dfi_solve.vectors, "edit", lambda loss, v, x, *a, **k: (calls.append(x.shape), real(loss, v, x, *a, **k))[1]
    )
    photo = group_photo()
    im.save_image(tmp_path / "group.png", photo)
    photo = im.load_image(str(tmp_path / "group.png"))
    argv = ["--images", "group.png", "--attrs", "Young=1", "--full-res", "--preset", "tiny", "--out", "run"]
    assert alpha_sweep.main(argv) == 0
    assert calls == [(2, 32, 32, 3)]  # both faces, every alpha: one compiled, vmapped engine call
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    recs = res["photos"]
    assert [r["stem"] for r in recs] == ["img0f1", "img0f2"] and [r["fit"] for r in recs] == ["dlib", "dlib"]
    assert all(len(r["face"]["landmarks"]) == 68 and np.shape(r["matrix"]) == (2, 3) for r in recs)
    ident = res["face_identity"]
    assert ident["measured_on"] == "photo" and np.shape(ident["distance"]) == (2, 2)
    assert all(0 < d < fm.SAME_PERSON for row in ident["distance"] for d in row)  # a tiny edit keeps the person
    assert ident["same_person_share_per_alpha"] == [1.0, 1.0]
    full = im.load_image(str(tmp_path / "run" / "img0_a0.6_full.png"))
    changed = np.abs(full - photo).max(-1) > 2 / 255
    footprints = [
        align.unalign(np.ones((32, 32, 1), np.float32), np.array(r["matrix"]), photo.shape)[1] > 0 for r in recs
    ]
    assert not (changed & ~(footprints[0] | footprints[1])).any()  # nothing changed outside the two faces
    assert all((changed & f).mean() > 0.02 for f in footprints)  # and each face changed in its own place
    assert (
        footprints[0][:, :512].sum() > 0.99 * footprints[0].sum()
        and footprints[1][:, 512:].sum() > 0.99 * footprints[1].sum()
    )
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Face recognition distance per alpha" in page and "tradeoff.png" in page


@needs_dlib
def test_picking_a_face_and_photos_without_one(tmp_path, monkeypatch, capsys):
    from experiments import alpha_sweep

    isolate(monkeypatch, tmp_path)
    im.save_image(tmp_path / "group.png", group_photo())
    im.save_image(tmp_path / "wall.png", np.full((120, 160, 3), 0.5, np.float32))
    base = ["--attrs", "Young=1", "--preset", "tiny", "--iters", "2", "--alphas", "0.3"]
    assert alpha_sweep.main(["--images", "group.png", "--face", "2", *base, "--out", "two"]) == 0
    rec = json.loads((tmp_path / "two" / "results.json").read_text())["photos"]
    assert len(rec) == 1 and rec[0]["face"]["box"][0] >= 512  # the second from the left: the astronaut
    assert alpha_sweep.main(["--images", "group.png", "--face", "3", *base, "--out", "three"]) == 1
    err = capsys.readouterr().err
    assert "error: --face 3: dlib finds 2 face(s) in group.png; pick 1 to 2" in err and "Traceback" not in err
    assert alpha_sweep.main(["--images", "wall.png", *base, "--out", "wall"]) == 0
    said = capsys.readouterr()
    assert "wall.png: dlib finds no face; centre-cropped instead" in said.out + said.err
    res = json.loads((tmp_path / "wall" / "results.json").read_text())
    assert res["photos"][0]["fit"] == "crop" and res["photos"][0]["face"] is None
    assert res["face_identity"]["inputs_with_a_face"] == 0 and res["face_identity"]["distance"] == [[None]]


# --- demo2: the photo at its own resolution, the database warped onto it ----------------------------------


def test_demo2_preset_is_demo2s_settings():
    from dfijax.dfi import presets

    d = presets.preset("demo2")
    assert d.own_photos == "full"  # demo2.py:L91-96: the photo is not cropped
    assert d.alphas == (3.5,) and d.objective.scaling == "none"  # demo2.py:L50, L53 --scaling none --delta 3.5
    assert d.neighbours.k == 100 and d.solve.iters == 500  # demo2.py:L49, L51 --K 100 --iter 500
    assert d.neighbours.same_gender and d.neighbours.hold == ("Smiling",)  # demo2.py:L102-112 cP, cQ
    assert d.solve.init == "input" and d.solve.alpha_mode == "warm"  # demo2.py:L135, L141-149
    assert full_photo.working_size((150, 120)) == (250, 200)  # demo2.py:L65, L91-96: short side >= 200
    assert full_photo.working_size((600, 512)) == (600, 512) and full_photo.working_size((600, 512), 300) == (300, 256)


@needs_dlib
def test_demo2_edits_the_photo_at_its_resolution_from_the_best_fitted_database_faces(tmp_path, monkeypatch):
    from dfijax.data.faces import load_faces
    from dfijax.dfi import rules, specs
    from dfijax.dfi.sweep_inputs import SweepInputs
    from experiments import alpha_sweep

    isolate(monkeypatch, tmp_path)
    im.save_image(tmp_path / "hopper.png", hopper())
    mask = np.zeros((600, 512, 3), np.float32)
    mask[:, 256:] = 1.0  # demo2's `mask` post-processing: a <photo>-mask.png beside it, white = edit
    im.save_image(tmp_path / "hopper-mask.png", mask)
    argv = ["--preset", "demo2", "--images", "hopper.png", "--attrs", "Young=1,Male=-1,Smiling=1", "--edit", "Young-"]
    argv += ["--max-side", "160", "--k", "3", "--iters", "3", "--tv", "1e-6", "--no-probe", "--out", "run"]
    assert alpha_sweep.main(argv) == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    edit = res["edits"][0]
    out = im.load_image(str(tmp_path / "run" / "img0_a3.5_full.png"))
    chex.assert_shape(out, (160, 137, 3))  # the photo's own aspect at --max-side, not the dataset's crop
    assert edit["size"] == [160, 137] and np.isfinite(edit["final_loss"]).all() and edit["mask"]
    photo = im.resize_array(hopper(), (160, 137))
    assert np.abs(out[:, :66] - photo[:, :66]).max() <= 1 / 255 and np.abs(out[:, 72:] - photo[:, 72:]).max() > 0.05
    # the sets: demo2's 4K candidates by attributes (gender and smile held), the K best fits of all 68
    # landmarks kept, as a transcription of fit_face_landmarks ranks them
    data, cfg = load_faces("synthetic"), alpha_sweep.parse(argv).config
    wide = dataclasses.replace(cfg, neighbours=dataclasses.replace(cfg.neighbours, k=12, allow_fewer=True))
    query = np.full(len(data.attr_names), np.nan, np.float32)
    for name, v in (("Young", 1), ("Male", -1), ("Smiling", 1)):
        query[data.attr_index(name)] = v
    one = SweepInputs(np.zeros((1, 8, 8, 3), np.float32), query[None], (None,), ("photo",))
    sets = rules.RULES["official"](wide, data, one)(0, specs.parse_edit("Young-", data.attr_names), None)
    # the photo's landmarks: found at its own resolution, moved with it to the working size
    target = full_photo.at_size(hopper(), fm.load().detect(hopper())[0], (160, 137))[1].landmarks
    for name, idx in (("target", sets.target), ("source", sets.source)):
        losses = []
        for face in data.images(idx.tolist(), full_photo.DATABASE_SIZE):
            found = fm.load().detect(face)
            if len(found) != 1:
                losses.append(np.inf)  # demo2.py:L34
                continue
            _, loss = reference_fit_face_landmarks(found[0].landmarks[:, ::-1], target[:, ::-1], range(68), (160, 137))
            losses.append(loss)
        want = idx[reference_k_best(np.array(losses), 3)]
        want = [int(i) for i, loss in zip(want, np.sort(losses)[:3]) if np.isfinite(loss)]
        assert edit[name] == want, (name, edit[name], want)
        np.testing.assert_allclose(edit[f"{name}_fit_loss"], np.sort(losses)[: len(want)], rtol=1e-2)
    ident = res["face_identity"]
    assert ident["measured_on"] == "photo" and np.shape(ident["distance"]) == (1, 1)


@needs_dlib
def test_the_cnn_detector_finds_the_same_face():
    photo = im.resize_array(hopper(), (300, 256))
    hog, cnn = fm.load().detect(photo), fm.load().detect(photo, detector="cnn", upsample=0)
    assert len(hog) == len(cnn) == 1
    np.testing.assert_allclose(cnn[0].eyes, hog[0].eyes, atol=4.0)  # the landmarks from either box agree
    with pytest.raises(ValueError, match="detector must be one of hog, cnn"):
        fm.load().detect(photo, detector="haar")
