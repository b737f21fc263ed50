"""One tiny-config smoke test per experiment: it runs, writes its files, and they hold real values."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests import pictures as P
from tests.conftest import isolate as _isolated

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_invert_features_smoke(tmp_path, monkeypatch):
    import dfijax.weights
    from experiments import invert_features

    monkeypatch.delenv("DFIJAX_WEIGHTS", raising=False)
    monkeypatch.setattr(dfijax.weights, "DEFAULT_WEIGHTS_DIR", tmp_path / "no-weights")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    rc = invert_features.main(["--preset", "tiny", "--out", str(out)])  # 32 px, 8 iterations, relu1_1 and relu2_1
    assert not (tmp_path / "runs").exists()  # --out was honoured
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["weights_pretrained"] is False and "NOT pretrained" in res["weights"]
    assert set(res["layers"]) == {"relu1_1", "relu2_1"}
    for layer in ("relu1_1", "relu2_1"):
        r = res["layers"][layer]
        assert len(r["psnr_db"]) == 2 and all(np.isfinite(r["psnr_db"]))
        assert all(f < 0.5 * i for f, i in zip(r["final_loss"], r["initial_loss"]))
    # shallower layer reconstructs better
    assert np.mean(res["layers"]["relu1_1"]["psnr_db"]) > np.mean(res["layers"]["relu2_1"]["psnr_db"])
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.shape[1] > 3 * 32
    assert (out / "relu2_1_1.png").is_file()
    # the pictures: the reconstructions keep the scenes' structure (floors: tests/test_pictures.py)
    from dfijax.images import synthetic_scene

    refs = [synthetic_scene(32, 32, seed=s) for s in (1, 2)]
    for layer in ("relu1_1", "relu2_1"):  # seen: relu1_1 1.00, 1.00; relu2_1 0.96, 0.90
        rec = P.load_all(P.pngs(out, f"{layer}_*.png"))
        P.assert_not_degenerate(rec, min_std=0.1)  # seen: std 0.18-0.22
        P.assert_keeps_structure(rec, refs, 0.5, f"{layer} reconstruction")
    P.assert_floor_discriminates(P.load_png(out / "relu2_1_0.png"), refs[0], 0.5)
    originals = [row[0] for row in P.grid_cells(P.load_png(out / "grid.png"), 32, 32, 2, 3, top=14)]
    P.assert_keeps_structure(originals, refs, 0.95, "grid original")


def test_invert_features_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    from experiments import invert_features

    _isolated(monkeypatch, tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    for args, msg in [
        (["--images", str(bad)], "cannot read"),
        (["--layers", "relu9_9"], "unknown VGG-19 tap"),
    ]:
        assert invert_features.main([*args, "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert err.count("error: ") == 1 and msg in err and "Traceback" not in err, err
    # from the command line too: one line, no traceback
    msg = "size must be an integer >= 32, got 16"
    p = subprocess.run(
        [sys.executable, "-m", "experiments.invert_features", "--size", "16", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DFIJAX_JAX_CACHE": str(tmp_path / "c"), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
    )
    assert p.returncode == 1, p.stderr
    err = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
    assert len(err) == 1 and msg in err[0] and "Traceback" not in p.stderr, p.stderr


TINY_SWEEP = ["--preset", "tiny", "--n-synthetic", "300", "--inputs", "2"]  # dfi.presets "tiny"


def test_alpha_sweep_smoke(tmp_path, monkeypatch):
    from experiments import alpha_sweep

    _isolated(monkeypatch, tmp_path)
    assert alpha_sweep.main(TINY_SWEEP + ["--out", str(tmp_path / "a")]) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["weights_pretrained"] is False and res["tv_weight"] == 1e-6
    assert res["alphas"] == [0.2, 0.6] and len(res["inputs"]) == 2
    assert all(len(n["target"]) == 10 and len(n["source"]) == 10 for n in res["neighbours"])
    m = res["metrics_per_alpha"]
    assert m[1]["vgg_feature_distance_to_input"] > m[0]["vgg_feature_distance_to_input"] > 0
    assert m[1]["pixel_rmse_to_input"] > m[0]["pixel_rmse_to_input"] > 0
    assert res["attribute_vectors_from_cache"] == 0
    page = (tmp_path / "a" / "report.html").read_text()
    assert 'src="grid.png"' in page and "not pretrained" in page
    grid = np.asarray(Image.open(tmp_path / "a" / "grid.png"))
    assert grid.shape[1] > 3 * 32 and grid.shape[0] > 2 * 32
    assert (tmp_path / "a" / "img1_a0.6.png").is_file()
    # the pictures: the edits keep their own input's structure
    edited = P.load_all([tmp_path / "a" / "img0_a0.2.png", tmp_path / "a" / "img1_a0.2.png"])
    inputs = [row[0] for row in P.grid_cells(P.load_png(tmp_path / "a" / "grid.png"), 32, 32, 2, 3, top=14)]
    P.assert_not_degenerate(edited + inputs, min_std=0.1)  # seen: std 0.21-0.22
    P.assert_keeps_structure(edited, inputs, 0.6, "edit at alpha 0.2")  # seen: 0.99, 1.00
    P.assert_matches_own_input(edited, inputs, 0.2, "edit")  # seen: 0.55
    # the reported pixel RMSE is each edit's against its own input (mean over inputs), up to 8-bit files
    for j, a in enumerate(res["alphas"]):
        pics = [P.load_png(tmp_path / "a" / f"img{i}_a{a}.png") for i in range(2)]
        direct = np.mean([np.sqrt(np.mean((e - x) ** 2)) for e, x in zip(pics, inputs)])
        assert m[j]["pixel_rmse_to_input"] == pytest.approx(direct, abs=2e-3), a  # seen: 0.030, 0.068 (3e-5 off)
    # a second sweep reuses the cached attribute vectors
    assert alpha_sweep.main(TINY_SWEEP + ["--out", str(tmp_path / "b"), "--alphas", "0.4"]) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["attribute_vectors_from_cache"] == 2


def test_alpha_sweep_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    from experiments import alpha_sweep

    _isolated(monkeypatch, tmp_path)
    cases = [
        (["--edit", "Smilng+"], "unknown attribute 'Smilng' (did you mean Smiling?)"),
        (["--dataset", "celeba"], "needs --data-dir"),
        (["--k", "500"], "only"),
        (["--images", str(tmp_path / "me.jpg"), "--attrs", "Young=1"], "not found"),
        (["--images", str(tmp_path / "me.jpg")], "need their attributes"),
    ]
    for extra, msg in cases:
        assert alpha_sweep.main(TINY_SWEEP + extra + ["--out", str(tmp_path / "x")]) == 1, extra
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], (extra, err)
    # a flag tyro cannot read: its own message and status 2, before any work
    assert alpha_sweep.main(TINY_SWEEP + ["--alphas", "0.1,lots", "--out", str(tmp_path / "x")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--alphas: '0.1,lots' is not a list of finite numbers separated by ','" in err and "Traceback" not in err


def test_alpha_sweep_raises_the_target_attribute_score(tmp_path, monkeypatch):
    """On the embedded synthetic faces, the probe's smile probability rises with alpha (random VGG-19;
    seen: 0.25 at alpha 0.1, 0.43 at 0.5)."""
    from experiments import alpha_sweep

    _isolated(monkeypatch, tmp_path)
    args = [
        "--n-synthetic",
        "800",
        "--k",
        "30",
        "--inputs",
        "4",
        "--alphas",
        "0.1,0.5",
        "--iters",
        "12",
        "--size",
        "40",
        "--probe-steps",
        "120",
        "--probe-train",
        "700",
        "--out",
        str(tmp_path / "p"),
    ]
    assert alpha_sweep.main(args) == 0
    res = json.loads((tmp_path / "p" / "results.json").read_text())
    assert res["probe"]["metrics"]["val_accuracy"]["Smiling"] > 0.7
    lo, hi = (m["target_attribute_score"] for m in res["metrics_per_alpha"])
    assert hi > lo + 0.1, (lo, hi)
    assert "target attribute score (probe)" in (tmp_path / "p" / "report.html").read_text()
    # the main figure: attribute gain and identity drift both rise with alpha, for DFI and for the pixel blend
    # (seen here: DFI gain 0.034 / 0.219 at drift 0.043 / 0.189). How DFI compares with the blend depends on a
    # real solve: at this 40 px, 12-iteration size they are close; the default run (64 px, 100 iterations) has
    # DFI above the blend from alpha 0.2 on (README).
    t = res["tradeoff"]
    dfi = [x for x in t["summary"] if x["method"] == "dfi"]
    blend = [x for x in t["summary"] if x["method"] == "pixel blend"]
    assert (
        dfi[1]["attribute_gain"] > dfi[0]["attribute_gain"] > 0 and dfi[1]["identity_drift"] > dfi[0]["identity_drift"]
    )
    bd, bg = np.array([b["identity_drift"] for b in blend]), np.array([b["attribute_gain"] for b in blend])
    assert (np.diff(bd) > 0).all()
    assert bg[-1] > bg[0] and dfi[1]["attribute_gain"] > 0.15, (dfi, blend)
    np.testing.assert_array_equal(np.array(t["dfi_gain"]).shape, (4, 2))
    assert 'src="tradeoff.png"' in (tmp_path / "p" / "report.html").read_text()
    # beside it, face recognition's distance per alpha: dlib finds some of the drawn faces (on the crops)
    face = res["face_identity"]
    assert face["measured_on"] == "crop" and face["inputs"] == 4 and np.shape(face["distance"]) == (4, 2)
    found = [row for row in face["distance"] if row[0] is not None]
    assert len(found) == face["inputs_with_a_face"] and all(0 <= d < 2 for row in found for d in row if d is not None)
    panels = 2 if face["inputs_with_a_face"] else 1
    assert np.asarray(Image.open(tmp_path / "p" / "tradeoff.png")).shape == (360, 560 * panels, 3)


def test_alpha_sweep_on_a_celeba_folder(tmp_path, monkeypatch):
    """The real-data path end to end: a CelebA folder in the official layout (tiny, made here)."""
    from experiments import alpha_sweep
    from tests.test_data_folders import make_celeba

    _isolated(monkeypatch, tmp_path)
    root = make_celeba(tmp_path / "celeba", n=24)
    out = tmp_path / "c"
    args = [
        "--dataset",
        "celeba",
        "--data-dir",
        str(root),
        "--edit",
        "Smiling+",
        "--k",
        "3",
        "--allow-fewer",
        "--inputs",
        "2",
        "--alphas",
        "0.3",
        "--iters",
        "4",
        "--size",
        "32",
        "--no-probe",
        "--batch",
        "4",
        "--out",
        str(out),
    ]
    assert alpha_sweep.main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["data"].startswith("celeba: 24 faces, 40 binary")
    assert all(i.endswith(".jpg") for i in res["inputs"])
    assert (out / "img1_a0.3.png").is_file()
    # the references' presets run on the same folder with the same flags (their own objective, neighbours, init)
    big = make_celeba(tmp_path / "celeba64", n=64)  # same-gender neighbours need a few more faces
    for name in ("official", "chainer"):
        run = [big if a == str(root) else a for a in args[:-2]] + ["--no-shard", "--residual-iters", "4"]
        run += ["--residual-every", "2", "--out", tmp_path / name, "--preset", name]
        assert alpha_sweep.main([str(a) for a in run]) == 0
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        assert cfg["objective"]["scaling"] == ("beta" if name == "official" else "chainer") and cfg["size"] == 32
        assert np.isfinite(json.loads((tmp_path / name / "results.json").read_text())["final_loss"]).all()


def test_alpha_sweep_several_edits_own_photos_and_devices(tmp_path, monkeypatch, all_devices):
    """Two edits in one call; greyscale and RGBA photos with hand-given attributes; full-resolution
    output; sharded over the 4 forced CPU devices equals one device."""
    from dfijax.data.synthetic_faces import synthetic_faces
    from experiments import alpha_sweep

    _isolated(monkeypatch, tmp_path)
    faces = synthetic_faces(2).images([0, 1], 80)
    Image.fromarray((faces[0] * 255).astype(np.uint8)).convert("L").save(tmp_path / "grey.png")
    rgba = Image.fromarray((faces[1] * 255).astype(np.uint8)).convert("RGBA").resize((90, 70))
    rgba.save(tmp_path / "rgba.png")
    mask = np.zeros((50, 50), np.uint8)
    mask[:, 25:] = 255  # edit the right half only
    Image.fromarray(mask).save(tmp_path / "mask.png")
    base = [
        "--mask",
        str(tmp_path / "mask.png"),
        "--n-synthetic",
        "300",
        "--k",
        "10",
        "--alphas",
        "0.3",
        "--iters",
        "4",
        "--size",
        "32",
        "--batch",
        "8",
        "--no-probe",
        "--edit",
        "Smiling+;Eyeglasses+",
        "--images",
        str(tmp_path / "grey.png"),
        str(tmp_path / "rgba.png"),
        "--attrs",
        "Young=1,Male=-1",
        "--full-res",
        "--align",
        "none",  # the whole photo, as the mask is drawn on it
    ]
    assert alpha_sweep.main(base + ["--out", str(tmp_path / "s")]) == 0
    assert alpha_sweep.main(base + ["--out", str(tmp_path / "one"), "--no-shard"]) == 0
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert [r["edit"] for r in res["rows"]] == ["Smiling+", "Eyeglasses+"] * 2
    assert set(res["metrics_per_edit"]) == {"Smiling+", "Eyeglasses+"}
    assert np.asarray(Image.open(tmp_path / "s" / "img1_e1_a0.3_full.png")).shape == (70, 90, 3)
    for name in ("img0_e0_a0.3.png", "img1_e1_a0.3.png"):
        a = np.asarray(Image.open(tmp_path / "s" / name), np.float32)
        b = np.asarray(Image.open(tmp_path / "one" / name), np.float32)
        assert np.abs(a - b).max() <= 2.0  # 8-bit PNGs: equal up to rounding
    grey_in = np.asarray(Image.open(tmp_path / "s" / "grid.png"), np.float32)  # sanity: the grid exists
    assert grey_in.ndim == 3
    out = np.asarray(Image.open(tmp_path / "s" / "img0_e0_a0.3.png"), np.float32) / 255
    src = np.asarray(Image.open(tmp_path / "grey.png").convert("RGB").resize((32, 32), Image.LANCZOS), np.float32) / 255
    assert np.abs(out[:, :14] - src[:, :14]).max() < 0.02  # masked-out half keeps the input
    assert np.abs(out[:, 18:] - src[:, 18:]).max() > 0.02  # the edited half changed


def test_style_transfer_smoke_and_colour_preservation(tmp_path, monkeypatch, capsys):
    from dfijax.style import color
    from experiments import style_transfer

    _isolated(monkeypatch, tmp_path)
    tiny = ["--preset", "tiny"]  # 40 px, 8 iterations
    assert style_transfer.main(tiny + ["--style-scales", "1,10", "--out", str(tmp_path / "s")]) == 0
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert res["weights_pretrained"] is False and res["problems_in_one_call"] == 4
    assert [(r["content"], r["style_scale"]) for r in res["results"]] == [(0, 1.0), (0, 10.0), (1, 1.0), (1, 10.0)]
    for r in res["results"]:
        assert r["final_loss"] < 0.9 * r["initial_loss"]
    assert (tmp_path / "s" / "content1_painting_x10.png").is_file()
    grid = np.asarray(Image.open(tmp_path / "s" / "grid.png"))
    assert grid.shape[1] > 4 * 40
    # the pictures: the stylised contents keep their structure
    from dfijax.images import synthetic_scene

    painted = P.load_all(P.pngs(tmp_path / "s", "content*_painting_x1.png"))
    assert len(painted) == 2
    P.assert_not_degenerate(painted, min_std=0.1)  # seen: std 0.21, 0.23
    scenes = [synthetic_scene(40, 40, seed=s) for s in (1, 2)]
    P.assert_keeps_structure(painted, scenes, 0.4, "stylised content")  # seen: 0.71, 0.89
    # luminance-only transfer keeps the content's chroma
    assert style_transfer.main(tiny + ["--preserve-color", "luminance", "--out", str(tmp_path / "l")]) == 0
    out = np.asarray(Image.open(tmp_path / "l" / "content0_painting_x1.png"), np.float32) / 255
    content = synthetic_scene(40, 40, seed=1)
    iq_out, iq_in = np.asarray(color.rgb_to_yiq(out))[..., 1:], np.asarray(color.rgb_to_yiq(content))[..., 1:]
    assert np.abs(iq_out - iq_in).mean() < 0.02
    # two style files, one result each (same batched call), colour-matched, from noise
    from dfijax.images import save_image, synthetic_painting

    for q in (1, 2):
        save_image(tmp_path / f"st{q}.png", synthetic_painting(44, 52, seed=q))
    assert (
        style_transfer.main(
            tiny
            + [
                "--preserve-color",
                "chol",
                "--init",
                "noise",
                "--separate-styles",
                "--style",
                str(tmp_path / "st1.png"),
                str(tmp_path / "st2.png"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "c" / "results.json").read_text())
    assert res["problems_in_one_call"] == 4 and {r["style"] for r in res["results"]} == {"st1", "st2"}
    assert all(r["final_loss"] < r["initial_loss"] for r in res["results"])
    assert (tmp_path / "c" / "content0_st2_x1.png").is_file()
    capsys.readouterr()
    for extra, msg in [
        (["--style", str(tmp_path / "nope.jpg")], "not found"),
        (["--blend", "0.5,0.5"], "style blend weights must be 1"),
    ]:
        assert style_transfer.main(tiny + extra + ["--out", str(tmp_path / "x")]) == 1
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], err
