"""The studio's web page: a Gradio app with one tab per system over a shared `Studio`.

Every compute-bound handler runs through Gradio's queue, one job per device at a time (the others see
their place in the queue); cheap handlers (the α slider, which only picks a picture of the ladder)
skip it. A failing request shows one line in the page and the server serves the next. Uploads are
read only from Gradio's upload folder and the examples folder, and checked first (`uploads`).
"""

from __future__ import annotations

import functools
import inspect
import pathlib
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from dfijax import face_models as fm
from dfijax import images as im
from dfijax.data import digits
from dfijax.studio import session as S
from dfijax.studio import uploads

MAX_CHUNKS = 8  # sliders built; those beyond a checkpoint's chunk count are hidden
DEVICE = "device"  # the concurrency group of every compute-bound handler


def _u8(x: np.ndarray | None) -> np.ndarray | None:
    return None if x is None else im.to_uint8(x)


def _view(x: np.ndarray) -> np.ndarray:
    """A small result enlarged (nearest, whole factors) to at least 256 px for the page."""
    return im.to_uint8(im.upscale_nearest(x, 256))


def one_line(fn: Callable) -> Callable:
    """Handler errors as one line in the page (gr.Error), never a traceback."""
    import gradio as gr

    def error(e: Exception) -> gr.Error:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return gr.Error(text, print_exception=False)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001  (any failure is reported, the server goes on)
            raise error(e) from None

    @functools.wraps(fn)
    def streamed(*args, **kwargs):  # a handler that yields updates as it goes
        try:
            yield from fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001
            raise error(e) from None

    return streamed if inspect.isgeneratorfunction(fn) else wrapped


def _solving(studio: S.Studio, every: float = 2.0, **edit_kwargs):
    """Run studio.edit in a thread; yield (None, snapshot [F, A, S, S, 3], iteration) every `every` seconds
    while it solves (the engine's current iterates), then (the Ladder, None, None)."""
    latest: dict[str, Any] = {}
    done: dict[str, Any] = {}

    def work():
        try:
            done["ladder"] = studio.edit(snapshot=lambda k, z: latest.update(k=k, z=z), **edit_kwargs)
        except Exception as e:  # noqa: BLE001  (raised again in the handler's thread)
            done["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    shown = None
    while t.is_alive():
        t.join(timeout=every)
        if t.is_alive() and "z" in latest and latest["k"] != shown:
            shown = latest["k"]
            yield None, latest["z"], shown
    if "error" in done:
        raise done["error"]
    yield done["ladder"], None, None


def _progress(bar) -> S.Progress:
    names = {"features": "neighbour features", "solve": "L-BFGS", "probe": "attribute probe", "residual": "residual"}

    def report(stage: str, done: int, total: int, info: dict) -> None:
        loss = f" (loss {info['loss']:.4g})" if "loss" in info else ""
        bar((int(done), int(total)), desc=names.get(stage, stage) + loss)

    return report


def write_examples(studio: S.Studio, folder: pathlib.Path) -> dict[str, list[str]]:
    """The example pictures as files: embedded faces, scene, painting, scikit-learn's photos, a digit."""

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {"faces": [], "photos": [], "scenes": [], "digits": []}
    for i in range(4):
        out["faces"].append(str(im.save_image(folder / f"face{i}.png", studio.face_example(i))))
    samples = S.sample_images(studio.config.seed)
    for name in ("china", "flower"):
        out["photos"].append(str(im.save_image(folder / f"{name}.jpg", samples[name])))
    for name in ("scene", "painting"):
        out["scenes"].append(str(im.save_image(folder / f"{name}.png", samples[name])))
    x, _ = digits.street_digits(3, seed=studio.config.seed)
    for i, d in enumerate(x):
        out["digits"].append(str(im.save_image(folder / f"digit{i}.png", d)))
    return out


def build(studio: S.Studio, examples_dir: str | pathlib.Path | None = None):
    """The Gradio Blocks of the studio (not launched; call .queue() and .launch() on it)."""
    import gradio as gr

    examples_dir = pathlib.Path(examples_dir or tempfile.mkdtemp(prefix="dfijax-studio-"))
    ex = write_examples(studio, examples_dir)
    roots = [uploads_folder(), str(examples_dir)]
    cfg = studio.config

    def read(path: Any, what: str) -> np.ndarray:
        return uploads.read_upload(_path(path), max_pixels=cfg.max_pixels, roots=roots, what=what)

    def read_or(path: Any, default: str, what: str) -> np.ndarray:
        return read(path, what) if _path(path) else im.load_image(default)

    names = studio.data.attr_names
    edit_choices = [f"{n}{s}" for n in names for s in ("+", "-")]

    with gr.Blocks(title="dfijax studio") as demo:
        gr.Markdown("# dfijax studio\n" + studio.header(), elem_id="header")
        with gr.Tabs():
            # -------------------------------------------------------------- Edit a face (DFI)
            with gr.Tab("Edit a face (DFI)", id="dfi"):
                ladder = gr.State(None)
                with gr.Row():
                    with gr.Column():
                        photo = _upload("Photo", "dfi-photo")
                        gr.Examples(ex["faces"] + ex["photos"], inputs=[photo], label="Examples")
                        shown = gr.Image(
                            format="png",
                            label="Photo and the faces (or eyes) found",
                            interactive=False,
                            elem_id="dfi-eyes-img",
                        )
                        note = gr.Markdown(elem_id="dfi-note")
                        pick = gr.CheckboxGroup(
                            [], label="Faces to edit (numbered on the photo; none ticked: all)", elem_id="dfi-faces"
                        )
                        eyes = gr.Textbox(label="Eyes x1,y1,x2,y2 (pixels; empty: centre crop)", elem_id="dfi-eyes")
                        attrs = gr.Textbox(
                            value="auto",
                            label="Attributes of the photo ('auto': the probe's reading; override e.g. auto,Male=-1)",
                            elem_id="dfi-attrs",
                        )
                        probs = gr.Label(label="Attributes read by the probe (probability)", num_top_classes=len(names))
                    with gr.Column():
                        edits = gr.Dropdown(
                            edit_choices,
                            value=[_default_edit(edit_choices)],
                            multiselect=True,
                            label="Edits",
                            elem_id="dfi-edits",
                        )
                        with gr.Row():
                            preset = gr.Radio(list(S.DFI_PRESETS), value="dfijax", label="Preset")
                            iters = gr.Number(value=cfg.iters, precision=0, minimum=1, label="L-BFGS iterations")
                        run = gr.Button("Edit", variant="primary", elem_id="dfi-run")
                        alpha = gr.Slider(
                            min(cfg.ladder),
                            max(cfg.ladder),
                            value=cfg.ladder[len(cfg.ladder) // 2],
                            step=_step(cfg.ladder),
                            label="α",
                            elem_id="dfi-alpha",
                        )
                        result = gr.Image(
                            format="png", label="Edited", interactive=False, height=300, elem_id="dfi-result"
                        )
                        gallery = gr.Gallery(
                            label="The α ladder", format="png", columns=5, height="auto", elem_id="dfi-ladder"
                        )
                        info = gr.Markdown(elem_id="dfi-info")
                        full = gr.Button("Full-resolution photo at this α")
                        download = gr.File(label="Download", interactive=False)

                @one_line
                def on_photo(path, progress=gr.Progress()):
                    if not _path(path):
                        return None, "", None, "", gr.update(choices=[], value=[])
                    x = read(path, "photo")
                    r = studio.inspect(x, "auto", progress=_progress(progress))  # the probe trains on first use
                    numbers = gr.update(choices=[str(n) for n in range(1, len(r.faces) + 1)], value=[])
                    if r.faces:  # the faces are edited by their landmarks: no eyes to type
                        return _u8(S.draw_faces(x, r.faces)), "", r.probabilities, r.note, numbers
                    e = "" if r.eyes is None else ",".join(f"{v:.0f}" for v in r.eyes.reshape(-1))
                    return _u8(S.draw_eyes(x, r.eyes)), e, r.probabilities, r.note, numbers

                @one_line
                def on_edit(
                    path, eyes_text, attrs_text, chosen, preset_name, n_iters, a, faces=None, progress=gr.Progress()
                ):
                    if not chosen:
                        raise ValueError("pick at least one edit, e.g. Smiling+")
                    x = read(path, "photo")
                    runs = _solving(
                        studio,
                        photo=x,
                        edit=" ".join(chosen),
                        eyes=S.parse_eyes(eyes_text),
                        faces=faces or None,
                        attrs=attrs_text or "auto",
                        preset=preset_name,
                        iters=int(n_iters) if n_iters else None,
                        progress=_progress(progress),
                    )
                    for lad, z, k in runs:
                        if lad is None:  # the current iterates, every few seconds while it solves
                            z = z[:, -len(cfg.ladder) :]  # (a residual's reconstruction column left out)
                            pics = [
                                (_u8(y), f"α={al:g} (iteration {k})") for row in z for al, y in zip(cfg.ladder, row)
                            ]
                            yield None, _view(z[0, len(cfg.ladder) // 2]), pics, f"solving: iteration {k} …"
                    text = (
                        f"{lad.edit} ({lad.preset}): {len(lad.alphas)} alphas in one press, {lad.seconds:.1f} s "
                        f"(solve {lad.engine_seconds:.1f} s incl. compilation); attribute vector "
                        f"{'from the cache' if lad.vector_cached else 'computed'}; neighbours for "
                        + ", ".join(f"{k}={v:g}" for k, v in lad.attributes.items())
                    )
                    pics = []
                    crops = lad.crops if lad.crops is not None else lad.crop[None]
                    ladders = lad.ladders if lad.ladders is not None else lad.edited[None]
                    for f, (crop, row) in enumerate(zip(crops, ladders)):
                        who = f"#{lad.faces[f]} " if lad.faces else ""
                        pics.append((_u8(crop), f"{who}input"))
                        for j, (al, y) in enumerate(zip(lad.alphas, row)):
                            d = "" if lad.distances is None else f" d={lad.distances[f, j]:.2f}"
                            pics.append((_u8(y), f"{who}α={al:g}{d}"))
                    if lad.distances is not None:
                        text += (
                            f". Face recognition (dlib): d, the distance of each edit from its face (below "
                            f"{fm.SAME_PERSON:g}: the same person): "
                            + "; ".join(
                                f"face {n}: "
                                + ", ".join(f"{al:g}: {v:.2f}" for al, v in zip(lad.alphas, lad.distances[f]))
                                for f, n in enumerate(lad.faces)
                            )
                        )
                    yield lad, _view(lad.edited[lad.nearest(a)]), pics, text

                def on_alpha(lad, a):
                    return None if lad is None else _view(lad.edited[lad.nearest(a)])

                @one_line
                def on_full(path, lad, a):
                    if lad is None:
                        raise ValueError("press Edit first")
                    y = studio.full_resolution(read(path, "photo"), lad, a)
                    out = (
                        pathlib.Path(tempfile.mkdtemp(prefix="dfijax-full-"))
                        / f"edit_{lad.edit.replace(' ', '_')}_a{a:g}.png"
                    )
                    return str(im.save_image(out, y))

                photo.change(
                    on_photo, [photo], [shown, eyes, probs, note, pick], concurrency_id=DEVICE, api_name="inspect"
                )
                run.click(
                    on_edit,
                    [photo, eyes, attrs, edits, preset, iters, alpha, pick],
                    [ladder, result, gallery, info],
                    concurrency_id=DEVICE,
                    api_name="edit",
                )
                alpha.change(on_alpha, [ladder, alpha], [result], queue=False, show_progress="hidden", api_name="alpha")
                full.click(
                    on_full, [photo, ladder, alpha], [download], concurrency_id=DEVICE, api_name="full_resolution"
                )

            # -------------------------------------------------------------- Mix two faces (fusion GAN)
            with gr.Tab("Mix two faces (fusion GAN)", id="fusion"):
                runs = studio.find_runs("fusion")
                with gr.Row():
                    fckpt = _run_picker(
                        studio,
                        runs,
                        "Fusion checkpoint (a run folder of experiments.train_fusion)",
                        elem_id="fusion-ckpt",
                    )
                    fstatus = gr.Markdown(_run_note(studio, "fusion", runs), elem_id="fusion-status")
                with gr.Row():
                    fa = _upload("Face A (empty: embedded face 0)", "fusion-a")
                    fb = _upload("Face B (empty: embedded face 1)", "fusion-b")
                gr.Examples([[ex["faces"][0], ex["faces"][1]], [ex["faces"][2], ex["faces"][3]]], inputs=[fa, fb])
                with gr.Row():
                    with gr.Column():
                        lam_all = gr.Slider(0, 1, value=0.5, step=0.05, label="Λ, all chunks", elem_id="fusion-all")
                        lams = [
                            gr.Slider(
                                0,
                                1,
                                value=0.5,
                                step=0.05,
                                label=f"λ_{n + 1}",
                                visible=n < 5,
                                elem_id=f"fusion-l{n + 1}",
                            )
                            for n in range(MAX_CHUNKS)
                        ]
                        show_feats = gr.Checkbox(False, label="Show the feature maps (Fig. 6)")
                    with gr.Column():
                        fused = gr.Image(
                            format="png", label="G(Λ∘E(A) + (1 − Λ)∘E(B))", interactive=False, elem_id="fusion-result"
                        )
                        finfo = gr.Markdown(elem_id="fusion-info")
                feats = gr.Image(
                    format="png", label="Feature maps of A, B and the fusion", visible=False, interactive=False
                )

                @one_line
                def on_fckpt(path):
                    c, _, step = studio.fusion_run(path)
                    return [f"{c.size} px, {c.n_chunks} chunks {list(c.chunks)}, step {step}"] + [
                        gr.update(visible=n < c.n_chunks) for n in range(MAX_CHUNKS)
                    ]

                @one_line
                def on_fuse(path, a_path, b_path, show, *lam):
                    c, _, _ = studio.fusion_run(path)
                    a = read_or(a_path, ex["faces"][0], "face A")
                    b = read_or(b_path, ex["faces"][1], "face B")
                    lam = [float(v) for v in lam[: c.n_chunks]]
                    y, sec = studio.fuse(a, b, lam, path)
                    fig = (
                        gr.update(value=_u8(studio.fusion_figure(a, b, lam, path)), visible=True)
                        if show
                        else gr.update(visible=False)
                    )
                    text = f"Λ = {', '.join(f'{v:g}' for v in lam)}: one encoder/generator pass, {sec * 1000:.0f} ms"
                    return (
                        _view(y),
                        text,
                        fig,
                    )

                def on_all(v):
                    return [gr.update(value=v) for _ in range(MAX_CHUNKS)]

                fuse_inputs = [fckpt, fa, fb, show_feats] + lams
                fckpt.change(on_fckpt, [fckpt], [fstatus] + lams, api_name="fusion_checkpoint")
                for s in lams:
                    s.input(
                        on_fuse, fuse_inputs, [fused, finfo, feats], concurrency_id=DEVICE, trigger_mode="always_last"
                    )
                lam_all.input(on_all, [lam_all], lams, queue=False, show_progress="hidden").then(
                    on_fuse, fuse_inputs, [fused, finfo, feats], concurrency_id=DEVICE
                )
                show_feats.change(on_fuse, fuse_inputs, [fused, finfo, feats], concurrency_id=DEVICE)
                gr.Button("Fuse", elem_id="fusion-run").click(
                    on_fuse, fuse_inputs, [fused, finfo, feats], concurrency_id=DEVICE, api_name="fuse"
                )

            # -------------------------------------------------------------- Stylise
            with gr.Tab("Stylise", id="style"):
                fruns = studio.find_runs("fast_style")
                with gr.Row():
                    content = _upload("Content (empty: the embedded scene)", "style-content")
                    style_img = _upload("Style (empty: the embedded painting)", "style-style")
                gr.Examples(
                    [
                        [ex["photos"][0], ex["scenes"][1]],
                        [ex["photos"][1], ex["scenes"][1]],
                        [ex["scenes"][0], ex["scenes"][1]],
                    ],
                    inputs=[content, style_img],
                )
                with gr.Row():
                    method = gr.Radio(["Gatys", "fast"], value="Gatys", label="Method")
                    spreset = gr.Radio(list(S.STYLE_PRESETS), value="quick", label="Gatys preset")
                    strength = gr.Slider(0.1, 10, value=1.0, step=0.1, label="Style strength (× style weight)")
                    preserve = gr.Dropdown(list(S.PRESERVE), value="none", label="Colour preservation")
                    sckpt = _run_picker(studio, fruns, "Fast-style checkpoint (experiments.train_fast_style)")
                gr.Markdown(_run_note(studio, "fast_style", fruns))
                srun = gr.Button("Stylise", variant="primary", elem_id="style-run")
                with gr.Row():
                    sout = gr.Image(
                        format="png", label="Stylised", interactive=False, height=300, elem_id="style-result"
                    )
                    sinfo = gr.Markdown(elem_id="style-info")

                @one_line
                def on_style(c_path, s_path, how, preset_name, k, keep, ckpt, progress=gr.Progress()):
                    c = read_or(c_path, ex["scenes"][0], "content picture")
                    if how == "fast":
                        y, sec = studio.fast_stylize(c, ckpt)
                        return _view(y), f"fast style network: {sec * 1000:.0f} ms (including compilation on first use)"
                    s = read_or(s_path, ex["scenes"][1], "style picture")
                    y, info_ = studio.stylize(
                        c, s, preset=preset_name, strength=float(k), preserve=keep, progress=_progress(progress)
                    )
                    return (
                        _view(y),
                        f"Gatys ({preset_name}): loss {info_['initial_loss']:.4g} → {info_['final_loss']:.4g} "
                        f"in {info_['total']:.1f} s",
                    )

                srun.click(
                    on_style,
                    [content, style_img, method, spreset, strength, preserve, sckpt],
                    [sout, sinfo],
                    concurrency_id=DEVICE,
                    api_name="stylize",
                )

            # -------------------------------------------------------------- Domain transfer
            with gr.Tab("Domain transfer (DTN)", id="dtn"):
                druns = studio.find_runs("dtn")
                dckpt = _run_picker(studio, druns, "DTN run (a folder of experiments.train_dtn or train_dtn_faces)")
                gr.Markdown(_run_note(studio, "dtn", druns))
                dinput = _upload("A digit or a face", "dtn-input")
                gr.Examples([[p] for p in ex["digits"] + ex["faces"][:1]], inputs=[dinput])
                drun = gr.Button("Translate", variant="primary", elem_id="dtn-run")
                with gr.Row():
                    din = gr.Image(format="png", label="x (as G sees it)", interactive=False, elem_id="dtn-as-seen")
                    dout = gr.Image(format="png", label="G(x)", interactive=False, elem_id="dtn-result")

                @one_line
                def on_dtn(ckpt, path):
                    x, y = studio.translate(read(path, "picture"), ckpt)
                    return _u8(im.upscale_nearest(x, 128)), _u8(im.upscale_nearest(y, 128))

                drun.click(on_dtn, [dckpt, dinput], [din, dout], concurrency_id=DEVICE, api_name="translate")
    return demo


def _run_note(studio: S.Studio, kind: str, found: list[str]) -> str:
    if found:
        return f"{len(found)} trained run(s) found."
    return f"No trained run yet: train one with `{S.TRAIN_COMMANDS[kind]}`, then reload this page."


def _upload(label: str, elem_id: str | None = None):
    """A picture upload: a file component (the studio's checks read it, not Gradio's image decoder)."""
    import gradio as gr

    return gr.File(label=label, file_types=["image"], type="filepath", elem_id=elem_id)


def _run_picker(studio: S.Studio, found: list[str], label: str, elem_id: str | None = None):
    """A trained run to use: the runs found (newest first), or any folder typed in."""
    import gradio as gr

    choices = _choices(found, studio)
    return gr.Dropdown(
        choices, value=found[0] if found else None, allow_custom_value=True, label=label, elem_id=elem_id
    )


def _choices(found: list[str], studio: S.Studio) -> list[tuple[str, str]]:
    """Run folders as (label relative to the runs folder, path)."""
    base = pathlib.Path(studio.config.runs).absolute()
    out = []
    for f in found:
        p = pathlib.Path(f).absolute()
        out.append((str(p.relative_to(base)) if p.is_relative_to(base) else f, f))
    return out


def _default_edit(choices: list[str]) -> str:
    return "Smiling+" if "Smiling+" in choices else choices[0]


def _step(ladder: tuple[float, ...]) -> float:
    d = np.diff(sorted(ladder))
    return float(np.min(d)) if len(d) else 0.1


def _path(value: Any) -> str | None:
    """A file component's value (a path, or a dict with one) as a path, or None."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if value else None


def uploads_folder() -> str:
    """Where Gradio keeps uploads (its cache folder)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


def launch(
    demo,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    auth=None,
    devices: int = 1,
    block: bool = True,
    quiet: bool = False,
):
    """Queue (one compute job per device) and serve. Returns (app, local url, share url)."""
    demo.queue(default_concurrency_limit=devices)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        prevent_thread_lock=not block,
        quiet=quiet,
        allowed_paths=[],
        show_error=True,
        state_session_capacity=256,  # each session's α ladder is kept: bound how many
    )
