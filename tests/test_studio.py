"""The studio: a real server on a free localhost port, driven through gradio_client (its typed API)
and through a real browser (Debian's Chromium via Playwright); the upload checks; 8 clients at once."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import struct
import time
import zlib

import chex
import jax
import numpy as np
import pytest
from PIL import Image

from dfijax import config
from tests import pictures
from tests.conftest import smooth_images

# gradio itself is imported when the app is built, not while every worker collects the tests (5 s each)
if importlib.util.find_spec("gradio") is None:
    pytest.skip('the studio needs its app extra: pip install -e ".[app]"', allow_module_level=True)
from gradio_client import Client, handle_file  # noqa: E402

from dfijax import images as im  # noqa: E402
from dfijax.data.faces import FaceSource  # noqa: E402
from dfijax.studio import app, uploads  # noqa: E402
from dfijax.studio import session as S  # noqa: E402

LADDER = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TINY_STUDIO = dict(
    size=32,
    faces=FaceSource(n_synthetic=300),
    k=10,
    iters=2,
    probe_steps=20,
    probe_train=200,
    style_size=48,
    style_iters=4,
)
MAX_PIXELS = 300_000
SIZE = TINY_STUDIO["size"]
VIEW = -(-256 // SIZE)  # small results are shown enlarged by this whole factor, nearest


def _tiny_runs(root: pathlib.Path, vgg) -> None:
    """A trained fusion, fast-style and DTN run, each a few steps, where the studio looks for them."""
    from dfijax import fusion
    from dfijax.style import fast, fast_run
    from experiments import train_dtn

    # tests/test_fusion.py's programs; 30 steps, so that moving one Λ changes the picture (0.019, not 0.001)
    cfg = fusion.training_config("tiny", stage1_steps=30, stage2_steps=1)
    data = fusion.load_data("synthetic", n_synthetic=40, holdout=cfg.holdout)
    fusion.run_training(cfg, data, vgg.variables, root / "fusion" / "tiny")
    fcfg = fast.preset("tiny", width=4, blocks=1, style_layers=("relu1_2",), content_layer="relu1_2", steps=2)
    fast_run.run_training(fcfg, vgg.variables, root / "fast_style" / "tiny")  # as in tests/test_fast_style.py
    tiny_dtn = "--scale tiny --n-source 64 --steps 2 --f-steps 4 --clf-steps 4 --no-ablations"  # test_dtn.py's programs
    assert train_dtn.main(tiny_dtn.split() + ["--out", str(root / "dtn" / "tiny")]) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory, random_vgg):
    base = tmp_path_factory.mktemp("studio")
    old = os.environ.get("DFIJAX_CACHE")
    os.environ["DFIJAX_CACHE"] = str(base / "cache")
    try:
        runs = os.environ.get("DFIJAX_STUDIO_RUNS")  # trained runs for the README's screenshots
        if not runs:
            runs = base / "runs"
            _tiny_runs(runs, random_vgg)
        # the screenshots' run: more iterations, so that the pictures show the methods
        over = dict(size=64, iters=60, style_size=128, style_iters=80) if os.environ.get("DFIJAX_STUDIO_RUNS") else {}
        studio = S.Studio(
            S.StudioConfig(**{**TINY_STUDIO, **over}, runs=str(runs), cache=str(base / "cache"), max_pixels=MAX_PIXELS)
        )
        demo = app.build(studio, base / "examples")
        _, url, _ = app.launch(demo, port=None, block=False, quiet=True)
        yield studio, url, base
        demo.close()
    finally:
        if old is None:
            os.environ.pop("DFIJAX_CACHE", None)
        else:
            os.environ["DFIJAX_CACHE"] = old


def _img(value) -> np.ndarray:
    """An image the API returned (a file path, or a dict holding one) as [H, W, 3] in [0, 1]."""
    while isinstance(value, dict) and "path" not in value:  # a component update: {"value": ..., "visible": ...}
        value = value["value"]
    path = value["path"] if isinstance(value, dict) else value
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def _face(server, i: int, size: int = 192) -> str:
    studio, _, base = server
    return str(im.save_image(base / "inputs" / f"face{i}_{size}.png", studio.face_example(i, size)))


def _edit(client: Client, path: str, edit=("Smiling+",), alpha: float = 0.5, **kw):
    args = dict(eyes="", attrs="auto", preset="dfijax", iters=TINY_STUDIO["iters"], faces=[])
    args.update(kw)
    return client.predict(
        handle_file(path),
        args["eyes"],
        args["attrs"],
        list(edit),
        args["preset"],
        args["iters"],
        alpha,
        args["faces"],
        api_name="/edit",
    )


def test_header_says_what_it_runs_on(server):
    studio, url, _ = server
    text = studio.header()
    assert "NOT pretrained" in text and "synthetic_faces" in text and jax.devices()[0].platform in text
    import urllib.request

    page = urllib.request.urlopen(url, timeout=30).read().decode()
    assert "dfijax studio" in page


def test_dfi_ladder_is_one_engine_call_and_the_slider_scrubs_it(server, monkeypatch):
    studio, url, _ = server
    from dfijax.dfi import vectors

    calls, compiles, solve_compiles = [], [], []
    real = vectors.edit

    def counted(*a, **k):
        calls.append(len(a[4]))  # the alphas of this engine call
        n = len(compiles)
        out = real(*a, **k)
        solve_compiles.append(len(compiles) - n)
        return out

    monkeypatch.setattr(vectors, "edit", counted)
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *_a, **_k: compiles.append(name) if name == "/jax/core/compile/backend_compile_duration" else None
    )
    client = Client(url, verbose=False)
    shown, gallery, info = _edit(client, _face(server, 0))
    assert calls == [len(LADDER)], "one engine call inverts the whole ladder"
    assert len(gallery) == 1 + len(LADDER) and "10 alphas in one press" in info
    pics = [_img(g["image"]) for g in gallery]
    chex.assert_shape(pics, (SIZE, SIZE, 3))
    pictures.assert_not_degenerate(pics)
    np.testing.assert_allclose(_img(shown)[::VIEW, ::VIEW], pics[1 + LADDER.index(0.5)], atol=1 / 255)
    # the slider picks pictures of the ladder, no solve
    lo, hi = (_img(client.predict(a, api_name="/alpha"))[::VIEW, ::VIEW] for a in (0.1, 1.0))
    np.testing.assert_allclose(lo, pics[1], atol=1 / 255)
    np.testing.assert_allclose(hi, pics[-1], atol=1 / 255)
    assert np.abs(hi - lo).mean() > 1e-3 and calls == [len(LADDER)]
    # another face of the same size: one more call, and the solve compiles nothing new
    _, _, info2 = _edit(client, _face(server, 1))
    assert calls == [len(LADDER)] * 2 and "attribute vector" in info2
    assert solve_compiles[1] == 0, f"{solve_compiles} compilations in the engine calls"


def test_dfi_inspect_full_resolution_and_no_eyes(server):
    studio, url, base = server
    client = Client(url, verbose=False)
    face = _face(server, 2)
    drawn, eyes, probs, note, picks = client.predict(handle_file(face), api_name="/inspect")
    # neither dlib nor OpenCV's Haar cascades find this drawn face: the centre crop, and no faces to pick
    assert eyes == "" and "no eyes found" in note and picks["choices"] == []
    assert {c["label"] for c in probs["confidences"]} >= {"Smiling", "Male"}
    assert all(0 <= c["confidence"] <= 1 for c in probs["confidences"])
    chex.assert_shape(_img(drawn), (192, 192, 3))
    # eyes given by hand: the rings are drawn there, and the edit goes back into the full photo
    big = im.resize_array(im.load_image(face), (300, 240))
    path = str(im.save_image(base / "inputs" / "wide.png", big))
    eyes = "105,140,135,140"
    _edit(client, path, eyes=eyes)
    full = _img(client.predict(handle_file(path), 0.5, api_name="/full_resolution"))
    chex.assert_shape(full, (300, 240, 3))
    diff = np.abs(full - _img(path)).max(-1)
    from dfijax.dfi import align

    m = align.similarity_from_eyes(np.array([[105, 140], [135, 140]]), align.template_eyes(studio.data, SIZE))
    corners = align.transform_points(align.invert_affine(m), np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]]))
    (x0, y0), (x1, y1) = np.floor(corners.min(0)).astype(int) - 1, np.ceil(corners.max(0)).astype(int) + 1
    outside = np.ones_like(diff, bool)
    outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert outside.any() and diff[outside].max() < 1 / 255, "the photo outside the face crop changed"
    assert diff[~outside].mean() > 1e-3


def test_dfi_group_photo_rings_picked_faces_distances_and_forming_iterates(server):
    """A real group photo (matplotlib's portrait beside scikit-image's astronaut): numbered rings on both faces,
    the second picked on the page, its ladder with dlib's distance under each picture, only its place changed
    in the full photo; and the engine's iterates offered while it solves."""
    from tests.test_faces import group_photo, needs_dlib

    if needs_dlib.args[0]:
        pytest.skip(needs_dlib.kwargs["reason"])
    studio, url, base = server
    client = Client(url, verbose=False)
    photo = group_photo()
    photo = im.resize_array(photo, (300, round(photo.shape[1] * 300 / 600)))  # under the server's 0.3 MP
    path = str(im.save_image(base / "inputs" / "group.png", photo))
    photo = im.load_image(path)
    drawn, eyes, probs, note, picks = client.predict(handle_file(path), api_name="/inspect")
    assert "dlib finds 2 face(s)" in note and eyes == ""
    assert [c[0] if isinstance(c, (list, tuple)) else c for c in picks["choices"]] == ["1", "2"]
    rings = _img(drawn)
    assert np.abs(rings - photo).max(-1).mean() > 0.005  # the rings are drawn on it
    shown, gallery, info = _edit(client, path, faces=["2"])
    assert len(gallery) == 1 + len(LADDER) and "Face recognition (dlib)" in info and "face 2: 0.1: " in info
    captions = [g["caption"] for g in gallery]
    assert captions[0] == "#2 input" and all(c.startswith("#2 α=") and " d=" in c for c in captions[1:])
    d = [float(c.split("d=")[1]) for c in captions[1:]]
    assert all(0 < v < 2 for v in d) and d[-1] > d[0]  # the stronger edit moves further from the person
    full = _img(client.predict(handle_file(path), 1.0, api_name="/full_resolution"))
    changed = np.abs(full - photo).max(-1) > 2 / 255
    assert changed[:, 256:].mean() > 0.01 and not changed[:, :240].any()  # only the astronaut's face moved
    seen = []
    lad = studio.edit(photo, "Smiling+", faces=["1"], snapshot=lambda k, z: seen.append((k, z.shape)))
    n = TINY_STUDIO["iters"]
    assert [k for k, _ in seen] == sorted({min(k, n) for k in range(5, n + 5, 5)})  # every 5 iterations and the last
    assert all(shape == (1, len(LADDER), SIZE, SIZE, 3) for _, shape in seen) and lad.faces == (1,)


def test_fusion_sliders_at_the_ends_give_the_reconstructions(server):
    studio, url, _ = server
    from dfijax import fusion

    client = Client(url, verbose=False)
    a_path, b_path = _face(server, 0, 32), _face(server, 1, 32)
    run = studio.find_runs("fusion")[0]
    lams = [[1.0] * 5, [0.0] * 5, [1, 0, 1, 0, 1]]
    want = fusion.run_fuse(run, im.load_image(a_path), im.load_image(b_path), lams)  # G(E(A)), G(E(B)), a mix
    for lam, y in zip(lams, want.fused):
        got, text, _ = client.predict(
            run, handle_file(a_path), handle_file(b_path), False, *lam, 0, 0, 0, api_name="/fuse"
        )
        chex.assert_shape(_img(got), (256, 256, 3))  # shown 8x enlarged, nearest
        np.testing.assert_allclose(_img(got)[::8, ::8], y, atol=1 / 255)
        assert "one encoder/generator pass" in text
    assert np.abs(want.fused[0] - want.fused[1]).mean() > 1e-4
    # the Fig. 6 toggle: feature maps and latent chunks of A, B and the fusion
    from dfijax.fusion import figures

    _, _, fig = client.predict(run, handle_file(a_path), handle_file(b_path), True, *lams[2], 0, 0, 0, api_name="/fuse")
    cfg = studio.fusion_run(run)[0]
    fig = _img(fig)
    w, h = figures.figure_size(len(figures.FIG6_LAYERS), cfg.n_chunks)
    chex.assert_shape(fig, (h, w, 3))
    pictures.assert_not_degenerate(fig)


def test_stylise_and_translate(server):
    studio, url, _ = server
    client = Client(url, verbose=False)
    y, text = client.predict(None, None, "Gatys", "quick", 2.0, "luminance", None, api_name="/stylize")
    k = -(-256 // TINY_STUDIO["style_size"])  # shown enlarged by a whole factor, nearest
    y = _img(y)[::k, ::k]
    assert min(y.shape[:2]) == TINY_STUDIO["style_size"] and "Gatys (quick)" in text
    pictures.assert_not_degenerate(y)
    run = studio.find_runs("fast_style")[0]
    y2, text2 = client.predict(None, None, "fast", "quick", 1.0, "none", run, api_name="/stylize")
    assert min(_img(y2).shape[:2]) == 256 and "fast style network" in text2
    dtn = studio.find_runs("dtn")[0]
    digit = app.write_examples(studio, server[2] / "ex2")["digits"][0]
    x, gx = client.predict(dtn, handle_file(digit), api_name="/translate")
    x, gx = _img(x), _img(gx)
    chex.assert_shape([x, gx], (128, 128, 3))
    want = studio.dtn_run(dtn)(im.load_image(digit)[None])[0]
    np.testing.assert_allclose(gx[::4, ::4], want, atol=1.5 / 255)


def test_missing_runs_say_which_command_trains_one(tmp_path):
    studio = S.Studio(S.StudioConfig(**TINY_STUDIO, runs=str(tmp_path / "none")))
    for kind, call in (("fusion", studio.fusion_run), ("fast_style", studio.fast_style_run), ("dtn", studio.dtn_run)):
        with pytest.raises(FileNotFoundError, match=f"train one with python -m experiments.train_{kind}"):
            call()


def _bomb_png(path: pathlib.Path, w: int = 20_000, h: int = 20_000) -> None:
    """A PNG whose header claims w x h pixels (Pillow's bomb check reads only the header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )


def test_bad_uploads_one_line_each_and_the_server_goes_on(server):
    _, url, base = server
    client = Client(url, verbose=False)
    bad = base / "bad"
    bad.mkdir(exist_ok=True)
    (bad / "notes.png").write_text("not a picture")
    (bad / "empty.png").write_bytes(b"")
    _bomb_png(bad / "bomb.png")
    im.save_image(bad / "big.png", np.zeros((700, 700, 3), np.float32))
    cases = {
        "notes.png": "not a readable image",
        "empty.png": "empty file",
        "bomb.png": "decompression bomb",
        "big.png": "over this server's limit",
    }
    for name, message in cases.items():
        with pytest.raises(Exception, match=message) as err:
            client.predict(handle_file(str(bad / name)), api_name="/inspect")
        assert "\n" not in str(err.value).strip() and "Traceback" not in str(err.value)
        drawn, *_ = client.predict(handle_file(_face(server, 3)), api_name="/inspect")  # still serving
        chex.assert_shape(_img(drawn), (192, 192, 3))
    # a path the client names on the server is never opened
    import httpx

    r = httpx.post(
        url + "gradio_api/call/inspect",
        json={"data": [{"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}]},
    )
    events = []
    if r.status_code == 200:
        with httpx.stream("GET", url + f"gradio_api/call/inspect/{r.json()['event_id']}", timeout=60) as stream:
            events = list(stream.iter_lines())
    assert r.status_code != 200 or ("event: error" in events and "not uploaded by a user" in " ".join(events)), events
    with pytest.raises(Exception, match="pick at least one edit"):
        client.predict(handle_file(_face(server, 3)), "", "auto", [], "dfijax", 4, 0.5, api_name="/edit")
    with pytest.raises(Exception, match="unknown attribute 'Smilng'"):
        client.predict(
            handle_file(_face(server, 3)), "", "auto,Smilng=1", ["Smiling+"], "dfijax", 4, 0.5, api_name="/edit"
        )
    with pytest.raises(Exception, match="four numbers"):
        client.predict(
            handle_file(_face(server, 3)), "1,2,nan", "auto", ["Smiling+"], "dfijax", 4, 0.5, api_name="/edit"
        )


def test_read_upload_converts_usable_photos(tmp_path):
    rgb = (smooth_images(1, 40, 60)[0] * 255).astype(np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    rgba = np.concatenate([rgb, np.full((40, 60, 1), 128, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    exif = Image.Exif()
    exif[274] = 6  # rotated 90° clockwise: shown upright as 40 wide, 60 high
    Image.fromarray(rgb).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    grey = uploads.read_upload(tmp_path / "grey.png")
    np.testing.assert_allclose(grey, np.repeat(rgb[..., :1], 3, -1) / 255, atol=1e-6)
    np.testing.assert_allclose(
        uploads.read_upload(tmp_path / "rgba.png"), (rgb * (128 / 255) + 255 * (127 / 255)) / 255, atol=1.01 / 255
    )
    np.testing.assert_allclose(uploads.read_upload(tmp_path / "deep.png"), grey, atol=1 / 255)
    turned = uploads.read_upload(tmp_path / "turned.jpg")
    chex.assert_shape(turned, (60, 40, 3))
    assert np.abs(turned - np.rot90(rgb, -1) / 255).mean() < 0.01  # upright (JPEG error only)
    with pytest.raises(uploads.UploadError, match="not uploaded through this page"):
        uploads.read_upload("/etc/hostname", roots=[tmp_path])
    shutil.copy(tmp_path / "grey.png", tmp_path / "sub.png")
    chex.assert_shape(uploads.read_upload(tmp_path / "sub.png", roots=[tmp_path]), (40, 60, 3))


def test_eight_clients_at_once(server):
    _, url, _ = server
    from tests.test_studio import _rss

    faces = [_face(server, i % 4) for i in range(8)]
    Client(url, verbose=False)  # warm
    before = _rss()
    clients = [Client(url, verbose=False) for _ in range(8)]
    jobs = [
        c.submit(handle_file(f), "", "auto", ["Smiling+"], "dfijax", TINY_STUDIO["iters"], 0.5, [], api_name="/edit")
        for c, f in zip(clients, faces)
    ]
    ranks: dict[int, list[int]] = {i: [] for i in range(8)}
    while not all(j.done() for j in jobs):
        for i, j in enumerate(jobs):
            s = j.status()
            if s.rank is not None and s.code.name in ("IN_QUEUE",):
                ranks[i].append(int(s.rank))
        time.sleep(0.2)
    outs = [j.result(timeout=600) for j in jobs]
    own = [im.load_image(f, SIZE) for f in faces[:4]]
    for k, (shown, gallery, info) in enumerate(outs):
        pictures.assert_not_degenerate(_img(shown))
        assert len(gallery) == 11
        crop = _img(gallery[0]["image"])  # each got its own face (centre-cropped, or aligned by dlib)
        assert int(np.argmin([np.abs(crop - o).mean() for o in own])) == k % 4
    for r in ranks.values():
        assert all(0 <= x < 8 for x in r) and r == sorted(r, reverse=True), ranks  # positions only move forward
    assert any(ranks.values()), "the queue reported no positions"
    assert _rss() - before < 1.5e9, f"memory grew by {(_rss() - before) / 1e9:.2f} GB over 8 edits"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_in_a_real_browser(server, tmp_path):
    browser_path = _chromium()
    if browser_path is None:
        if os.environ.get("CI"):
            pytest.fail("CI: no Chromium for the browser test (apt-get install -y chromium)")
        pytest.skip("no Chromium: apt-get install -y chromium (as root), then pip install playwright")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from dfijax import fusion

    _, url, _ = server
    shots = tmp_path / "screens"
    shots.mkdir()

    def shown(page, selector: str) -> np.ndarray:
        el = page.locator(f"{selector} img").first
        el.wait_for(state="visible", timeout=300_000)
        path = shots / "_el.png"
        el.screenshot(path=str(path))
        return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255

    def off(shot: np.ndarray, want: np.ndarray) -> float:
        """Mean |shot − want| with the screenshot resized to the picture the server computed."""
        h, w = want.shape[:2]
        return float(
            np.abs(np.asarray(Image.fromarray(im.to_uint8(shot)).resize((w, h), Image.BILINEAR)) / 255 - want).mean()
        )

    studio, ex = server[0], app.write_examples(server[0], tmp_path / "ex")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(url)
        page.get_by_text("dfijax studio").first.wait_for(timeout=60_000)
        page.locator("#dfi-photo input[type=file]").set_input_files(_face(server, 0, 256))
        page.locator("#dfi-note").get_by_text("face").wait_for(timeout=300_000)  # dlib finds this drawn face
        page.locator("#dfi-run").click()
        first = shown(page, "#dfi-result")
        page.locator("#dfi-info").get_by_text("alphas in one press").wait_for(timeout=300_000)
        pictures.assert_not_degenerate(first)
        page.screenshot(path=str(shots / "studio_dfi.png"), full_page=True)
        slider = page.locator("#dfi-alpha input[type=range]")
        slider.fill("1")
        page.wait_for_timeout(1500)
        second = shown(page, "#dfi-result")
        pictures.assert_not_degenerate(second)
        assert np.abs(second - first).mean() > 2e-4, "moving α did not change the picture"  # same: 0; seen 7.7e-4
        page.get_by_role("tab", name="Mix two faces (fusion GAN)").click()
        page.locator("#fusion-run").click()
        mixed = shown(page, "#fusion-result")
        page.locator("#fusion-info").get_by_text("Λ = 0.5, 0.5, 0.5, 0.5, 0.5").wait_for(timeout=120_000)
        page.locator("#fusion-l1 input[type=range]").fill("0")
        page.locator("#fusion-info").get_by_text("Λ = 0, 0.5, 0.5, 0.5, 0.5").wait_for(timeout=120_000)
        page.wait_for_timeout(1000)
        moved = shown(page, "#fusion-result")
        chex.assert_equal_shape([moved, mixed])
        faces = [im.load_image(f) for f in ex["faces"][:2]]  # the page's default A and B, fused by the library
        for shot, lam in ((mixed, [0.5] * 5), (moved, [0.0] + [0.5] * 4)):
            want = fusion.run_fuse(studio.fusion_run(None), *faces, [lam]).fused[0]
            assert off(shot, im.upscale_nearest(want, 256)) < 0.015, lam  # seen 0.007 (the page scales it)
        assert np.abs(moved - mixed).mean() > 5e-3, "moving Λ₁ did not change the fusion"  # seen 0.019
        page.screenshot(path=str(shots / "studio_fusion.png"), full_page=True)
        page.get_by_role("tab", name="Stylise").click()
        page.locator("#style-run").click()
        pictures.assert_not_degenerate(shown(page, "#style-result"))
        page.locator("#style-info").get_by_text("Gatys").wait_for(timeout=300_000)
        page.screenshot(path=str(shots / "studio_style.png"), full_page=True)
        page.get_by_role("tab", name="Domain transfer (DTN)").click()
        page.locator("#dtn-input input[type=file]").set_input_files(ex["digits"][0])
        page.locator("#dtn-run").click()
        g_shot = shown(page, "#dtn-result")
        x_shot = shown(page, "#dtn-as-seen")
        x, g = studio.translate(im.load_image(ex["digits"][0]))
        g_want, x_want = (im.upscale_nearest(v, 128) for v in (g, x))
        pictures.assert_not_degenerate(g_shot)
        assert off(g_shot, g_want) < 0.05 and off(x_shot, x_want) < 0.05  # seen: 0.027 and 0.016
        assert off(g_shot, x_want) > 0.1  # G(x) is not x (seen 0.20)
        page.screenshot(path=str(shots / "studio_dtn.png"), full_page=True)
        browser.close()
    if os.environ.get("DFIJAX_SCREENSHOTS"):  # scripts/studio_screenshots.sh: docs/studio.md's
        dest = pathlib.Path(os.environ["DFIJAX_SCREENSHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        for f in shots.glob("studio_*.png"):  # small enough to commit: 900 px wide, 64 colours
            pic = Image.open(f).convert("RGB")
            pic = pic.resize((900, round(pic.height * 900 / pic.width)), Image.LANCZOS)
            pic.quantize(64, method=Image.Quantize.MEDIANCUT).save(dest / f.name, optimize=True)


def test_cli_warns_off_loopback_and_refuses_bad_flags(tmp_path, monkeypatch, capsys):
    from experiments import studio as cli

    seen = {}
    monkeypatch.setattr(app, "launch", lambda demo, **kw: seen.update(kw))
    monkeypatch.setattr(app, "build", lambda studio: seen.update(studio=studio))
    base = ["--n-synthetic", "50", "--runs", str(tmp_path), "--no-cache"]
    assert cli.main(base + ["--host", "0.0.0.0", "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0" in err and "no authentication" in err and "NOT pretrained" in err
    assert seen["host"] == "0.0.0.0" and seen["auth"] is None and seen["share"] is False
    assert seen["studio"].config.ladder == LADDER and seen["studio"].config.cache is None
    assert cli.main(base + ["--host", "0.0.0.0", "--auth", "me:secret"]) == 0
    assert "no authentication" not in capsys.readouterr().err and seen["auth"] == ("me", "secret")
    assert cli.main(base) == 0 and "warning" not in capsys.readouterr().err and seen["host"] == "127.0.0.1"
    for args, message in (
        (["--alphas", "0.1,nan"], "--alphas: '0.1,nan' is not a list of finite numbers"),
        (["--alphas", "0.1,x"], "--alphas: '0.1,x' is not a list of finite numbers"),
    ):  # tyro's own message, status 2
        assert cli.main(base + args) == 2
        assert message in " ".join(capsys.readouterr().err.split())
    for args, message in (
        (["--auth", "nocolon"], "--auth takes user:pass"),
        (["--size", "16"], "size must be an integer >= 32"),
        (["--port", "70000"], "port must be an integer >= 0 and <= 65535"),
        (["--dataset", "celeba"], "needs --data-dir"),
    ):
        assert cli.main(base + args) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_presets_keep_their_objective_at_the_studio_sizes():
    from dfijax.dfi import presets

    studio = S.Studio(S.StudioConfig(size=64, iters=100, k=20))
    for name in S.DFI_PRESETS:
        cfg, ref = studio.sweep_config(name, "Smiling+"), presets.preset(name)
        assert (cfg.size, cfg.solve.iters, cfg.neighbours.k, cfg.alphas, cfg.probe.enabled) == (
            64,
            100,
            20,
            LADDER,
            False,
        )
        assert (cfg.objective, cfg.neighbours.rule) == (ref.objective, ref.neighbours.rule), name
        assert config.replace(cfg.solve, iters=ref.solve.iters) == ref.solve, name
    assert studio.sweep_config("chainer", "Smiling+").finish.residual_iters == 60  # 600 of 1000, at 100
    assert studio.sweep_config("chainer", "Smiling+", iters=1000).finish.residual_iters == 600
    with pytest.raises(ValueError, match="unknown preset 'paper'"):
        studio.sweep_config("paper", "Smiling+")


def test_an_edit_streams_the_forming_iterates_then_the_ladder():
    """`app._solving` runs the edit in a thread and hands on the engine's latest iterates every `every`
    seconds, then the finished ladder; an error in the edit comes back as the error."""

    class Slow:
        def edit(self, snapshot, **kw):
            for k in (5, 10, 15):
                snapshot(k, np.full((1, 2, 4, 4, 3), k / 20, np.float32))
                time.sleep(0.4)
            return ("ladder", kw["edit"])

    got = list(app._solving(Slow(), every=0.1, edit="Smiling+"))
    steps = [k for lad, _, k in got[:-1]]
    assert steps and steps == sorted(set(steps)) and set(steps) <= {5, 10, 15}
    assert all(lad is None and z.shape == (1, 2, 4, 4, 3) and z[0, 0, 0, 0, 0] == k / 20 for lad, z, k in got[:-1])
    assert got[-1] == (("ladder", "Smiling+"), None, None)

    class Broken:
        def edit(self, snapshot, **kw):
            raise ValueError("no face")

    with pytest.raises(ValueError, match="no face"):
        list(app._solving(Broken(), every=0.1))
