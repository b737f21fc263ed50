"""Deep Feature Interpolation alpha sweep: edit faces along an attribute at several strengths.

    python -m experiments.alpha_sweep                                   # embedded synthetic faces, ~1.5 min on CPU
    python -m experiments.alpha_sweep --preset official --size 64 --iters 100   # the official code's objective
    python -m experiments.alpha_sweep --edit "Smiling+ Mouth_Open+" --inputs 4 --alphas 0.1,0.3,0.5
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --preset official --edit Smiling+
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --images me.jpg --attrs Young=1,Male=-1
    python -m experiments.alpha_sweep --images me.jpg --eyes 412,530,590,522 --attrs auto,Male=-1 --full-res
    python -m experiments.alpha_sweep --images group.jpg --attrs auto --full-res          # every face, one call
    python -m experiments.alpha_sweep --preset demo2 --images me.jpg --attrs auto --edit Young- --max-side 256
    python -m experiments.alpha_sweep --config runs/alpha_sweep/<time>/config.json   # repeat a run

For every input it picks K neighbours with and without the edit (nearest in the attributes), forms
the attribute vector w (each neighbour's features and each vector are cached under ~/.cache/dfijax,
so a second sweep does not recompute them), and inverts φ(x) + α·w for every input × alpha (in one
compiled, vmapped L-BFGS call sharded over all local devices, or alpha by alpha warm-started). A
preset fixes the objective, solver, neighbours and post-processing of a reference (--preset official,
chainer; dfijax is the default: 64 px, 100 iterations, all alphas in parallel); every flag overrides it.
Writes, under runs/alpha_sweep/<time>/ (or --out): grid.png (rows = inputs; columns = the original,
then one per alpha), tradeoff.png (attribute gain against identity drift), report.html (pictures,
per-alpha metrics: pixel and VGG distance to the input, the attribute probe's score), results.json,
config.json (--config repeats it) and img<i>_a<alpha>.png (img<i>_a<alpha>_full.png: own photos with
--full-res, every face's edit put back into the whole photo under a feathered mask). Own photos: every
face dlib finds is aligned to the dataset's crop by the reference's landmark fit (OpenCV's Haar eyes
without the faces extra, --eyes by hand, --align none a centre crop), and its distance from the input
by dlib's face descriptor is reported; --preset demo2 edits at the photo's own resolution instead, the
database faces warped onto it (dfijax.dfi.full_photo). Photos are never stretched.
With the seeded random VGG-19 (no weights in weights/) it says so.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from dfijax import config
from dfijax import face_models as fm
from dfijax import images as im
from dfijax.data.faces import FaceSource
from dfijax.dfi import full_photo, identity, sweep, sweep_inputs, tradeoff
from dfijax.dfi import photos as ph
from dfijax.dfi.chainer import reference_crop
from dfijax.dfi.presets import PRESETS
from dfijax.dfi.sweep_config import SweepConfig
from dfijax.progress import Bars
from dfijax.runtime import cache_root
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[SweepConfig, runner.FLAT] = SweepConfig()
    preset: Literal[tuple(PRESETS)] = "dfijax"
    """the objective, solver, neighbour and post-processing settings of a reference (official: Upchurch et
    al.'s code; chainer: chainer-dfi; dfijax: this project's fast default); every flag given overrides it"""
    saved_config: Annotated[str | None, config.flag("config")] = None
    """repeat a run: its config.json (flags given here still override it)"""
    faces: Annotated[FaceSource, runner.FLAT] = FaceSource()
    inputs: Annotated[int, config.POSITIVE] = 3
    """how many dataset faces lacking the edit to edit"""
    indices: Annotated[tuple[int, ...], config.comma_list(int)] = ()
    """comma-separated dataset indices to edit instead"""
    images: tuple[str, ...] = ()
    """own photos to edit, any size; every face found (dlib, --align) is aligned to the dataset's face crop
    and edited, each one pasted back in its place; never stretched; needs --attrs"""
    align: Literal[ph.ALIGNS] = "auto"
    """own photos: dlib's face detector and 68 landmarks fitted to the dataset's template as the DFI
    reference does (auto: with the faces extra installed), OpenCV's Haar eyes (haar; auto without dlib),
    or none (centre crop, --fit); a photo without a face found is centre-cropped, which is said"""
    detector: Literal[fm.DETECTORS] = "hog"
    """own photos: dlib's face detector, HOG (the DFI reference's) or CNN (MMOD: finds turned and smaller
    faces; about 10 s per megapixel on a CPU)"""
    face: Annotated[int | None, config.POSITIVE] = None
    """own photos: edit only the N-th face from the left (1 = leftmost; default every face)"""
    attrs: str | None = None
    """the photos' attributes: by hand, e.g. Young=1,Male=-1; 'auto': predicted by the attribute probe
    (printed with their probabilities); 'auto,Male=-1': predicted, with single overrides"""
    eyes: str | None = None
    """align own photos to the dataset's face template by eye positions in pixels of each photo,
    'x1,y1,x2,y2' (';' between photos), or 'auto' (OpenCV Haar cascades: the largest face)"""
    fit: Literal["crop", "pad"] = "crop"
    """own photos not aligned to a face: centre-crop to the dataset's square aspect, or pad with edge pixels"""
    full_res: bool = False
    """own photos: also write each edit pasted back into the whole photo (feathered; the rest unchanged)"""
    max_side: Annotated[int | None, config.Bounds(ge=32)] = None
    """own photos with --own-photos full (the demo2 preset): edit at most this long side (a CPU's limit;
    default the photo's own resolution, short side at least 200)"""
    mask: str | None = None
    """image whose brightness weights where the edit applies (white: edit, black: keep)"""
    weights: str | None = None
    """converted weights (.safetensors); default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder (default runs/alpha_sweep/<time>)"""


def run(args: Args, ctx: runner.Context) -> runner.Outputs:
    if args.images and args.config.own_photos == "full":
        return run_full(args, ctx)

    cfg = args.config
    data = args.faces.load(cfg.seed)
    if cfg.crop == "chainer":  # the inputs too (chainer-dfi crops LFW inputs with the sets' box)
        data = reference_crop(data)
    if (args.eyes or args.face) and not args.images:
        raise ValueError("--eyes and --face are for own photos: give them with --images")
    photos = None
    if args.images:
        photos = _load_photos(args, data, ctx, args.eyes, args.align)
        inputs = photos.inputs
    else:
        inputs = sweep_inputs.dataset_inputs(data, cfg.edits[0], cfg.size, args.inputs, list(args.indices) or None)
    mask = im.load_image(args.mask, (cfg.size, cfg.size)).mean(-1) if args.mask else None
    out, weights = ctx.out(), ctx.load_weights(args.weights, cfg.seed)
    ctx.say(
        f"device: {ctx.device}; data: {data.describe()}; {len(inputs.images)} inputs x {len(cfg.edits)} edits x "
        f"{len(cfg.alphas)} alphas at {cfg.size}px, {cfg.solve.iters} iterations, "
        f"TV {cfg.objective.resolved_tv_weight(weights.pretrained):g}; output {out}"
    )
    with Bars() as bars:
        r = sweep.run_sweep(cfg, data, weights, inputs, mask=mask, cache_root=cache_root(), progress=bars.update)
    for w in r.warnings:
        ctx.say(f"warning: {w}")
    names = photos.stems() if photos is not None else [f"img{i}" for i in range(len(inputs.images))]
    tag = (lambda e: f"_e{e}") if len(cfg.edits) > 1 else (lambda e: "")
    for row, (i, e) in enumerate(r.rows):
        for j, al in enumerate(cfg.alphas):
            im.save_image(out / f"{names[i]}{tag(e)}_a{al:g}.png", r.edited[row, j])
    if photos is not None and args.full_res:  # each photo with every face's edit put back, feathered
        for k in range(len(photos.paths)):
            for e in range(len(cfg.edits)):
                rows_k = [row for row, (i, ee) in enumerate(r.rows) if ee == e and photos.crops.photo_of(i) == k]
                for j, al in enumerate(cfg.alphas):
                    crops = [r.rows[row][0] for row in rows_k]
                    full = photos.paste_all(k, crops, r.inputs[rows_k], r.edited[rows_k, j])
                    im.save_image(out / f"img{k}{tag(e)}_a{al:g}_full.png", full)
    rows = [[r.inputs[row]] + list(r.edited[row]) for row in range(len(r.rows))]
    im.save_image(out / "grid.png", im.make_grid(rows, col_labels=["input"] + [f"a={al:g}" for al in cfg.alphas]))
    results = {**r.to_dict(), "photos": photos.records() if photos is not None else None}
    sections = []
    face = None
    if fm.available():  # identity as face recognition judges it: dlib's descriptor distance
        face = identity.of_sweep(fm.load(), r, photos)
        results["face_identity"] = face.to_dict()
        if note := face.note():
            ctx.say(note)
    else:
        results["face_identity"] = f"not measured: dlib's face models are not installed ({fm.INSTALL})"
    trade = tradeoff.evaluate(r, data)
    if trade is not None or (face is not None and face.found.any()):  # the main figure
        title = f"{';'.join(cfg.edits)}: attribute gain vs identity drift"
        tradeoff.plot(out / "tradeoff.png", trade, title, face if face is not None and face.found.any() else None)
        if trade is not None:
            results["tradeoff"] = trade.to_dict()
        text = (tradeoff.EXPLAINED + " " if trade is not None else "") + identity.EXPLAINED
        title = "Attribute gain against identity drift" if trade is not None else "Identity by face recognition"
        sections.append({"title": title, "images": ["tradeoff.png"], "pixelated": False, "text": text})
    if face is not None:
        sections.append(
            {"title": "Face recognition distance per alpha", "table": face.table(), "text": face.note() or ""}
        )
    probe_text = ""
    if r.probe is not None:
        acc = {k: round(v, 3) for k, v in r.probe["metrics"].get("val_accuracy", {}).items()}
        probe_text = (
            f"Attribute probe: a small CNN trained on the dataset's attributes (held-out accuracy {acc}); "
            f"the inputs score {r.probe['input_target_attribute_score']:.3f} for the edit."
        )
    row_text = "Rows: " + ", ".join(f"{x['input']} / {x['edit']}" for x in r.row_names()) + "."
    sections += [
        {"title": "Inputs × alphas", "images": ["grid.png"], "text": row_text},
        {"title": "Per edit and alpha (mean over inputs)", "table": r.metrics_table(), "text": probe_text},
    ]
    summary = [
        f"alpha {m['alpha']:g}: pixel RMSE {m['pixel_rmse_to_input']:.4f}, "
        f"VGG distance {m['vgg_feature_distance_to_input']:.4f}"
        + (f", target attribute score {m['target_attribute_score']:.3f}" if "target_attribute_score" in m else "")
        for m in r.metrics_per_alpha
    ]
    title = f"DFI alpha sweep: {';'.join(cfg.edits)} ({args.preset} preset)"
    return runner.Outputs(title, results, sections, data=data.describe(), seconds=r.seconds, summary=summary)


def _load_photos(args: Args, data, ctx: runner.Context, eyes: str | None, align: str) -> ph.Photos:
    """The own photos, their faces found and aligned (progress shown, what was found said)."""
    with Bars() as bars:
        photos = ph.load(
            args.images, args.attrs, args.config, data, eyes, args.fit, cache_root(), bars.update, align, args.face,
            args.detector,
        )  # fmt: skip
    for line in photos.notes():
        ctx.say(line)
    return photos


def _face_view(photo, face, side: int = 256):
    """A square around the face (its box enlarged 1.8 times, inside the photo) at side×side."""
    left, top, right, bottom = face.box
    half = 0.9 * max(right - left, bottom - top)
    h, w = photo.shape[:2]
    half = min(half, h / 2, w / 2)
    cx = min(max((left + right) / 2, half), w - half)
    cy = min(max((top + bottom) / 2, half), h - half)
    y0, x0 = round(cy - half), round(cx - half)
    return im.resize_array(photo[y0 : y0 + round(2 * half), x0 : x0 + round(2 * half)], (side, side))


def run_full(args: Args, ctx: runner.Context) -> runner.Outputs:
    """demo2's pipeline: each face of each photo edited at the photo's own resolution (`dfi.full_photo`)."""
    cfg = args.config
    if len(cfg.edits) != 1:
        raise ValueError("the full-photo pipeline edits one --edit at a time")
    if not fm.available():
        raise ValueError(f"the full-photo pipeline finds faces with dlib: {fm.INSTALL}")
    data = args.faces.load(cfg.seed)
    photos = _load_photos(args, data, ctx, None, "dlib")
    models, out, weights = fm.load(), ctx.out(), ctx.load_weights(args.weights, cfg.seed)
    records, grid, rows = [], [], []
    for i, stem in enumerate(photos.stems()):
        face, original = photos.crops.face_of(i), photos.originals[photos.crops.photo_of(i)]
        if face is None:
            continue  # said by the notes
        size = full_photo.working_size(original.shape[:2], args.max_side)
        photo, face = full_photo.at_size(original, face, size)
        ctx.say(
            f"device: {ctx.device}; {photos.inputs.labels[i]} edited at {size[1]}x{size[0]} px: {cfg.neighbours.k} "
            f"of {4 * cfg.neighbours.k} database faces per set fitted by landmarks, {cfg.solve.iters} iterations"
        )
        with Bars() as bars:
            r = full_photo.edit_photo(
                cfg,
                data,
                weights,
                photo,
                photos.inputs.queries[i],
                cfg.edits[0],
                models,
                face,
                cache_root(),
                bars.update,
            )
        mask = full_photo.mask_for(args.images[photos.crops.photo_of(i)], args.mask, size)
        edited = r.edited if mask is None else r.edited * mask[..., None] + photo * (1 - mask[..., None])
        for j, al in enumerate(cfg.alphas):
            im.save_image(out / f"{stem}_a{al:g}_full.png", edited[j])
        records.append({"input": photos.inputs.labels[i], "stem": stem, "mask": mask is not None, **r.to_dict()})
        rows.append((photo, face, edited))
        grid.append([_face_view(x, face) for x in (photo, *edited)])  # the face, where the edit shows
    if not rows:
        raise ValueError("dlib finds no face in the photos: the full-photo pipeline has nothing to edit")
    face_id = identity.measure(
        models, [p for p, _, _ in rows], [list(e) for _, _, e in rows], cfg.alphas, [f for _, f, _ in rows], "photo"
    )
    im.save_image(out / "grid.png", im.make_grid(grid, col_labels=["input"] + [f"delta={al:g}" for al in cfg.alphas]))
    tradeoff.plot(out / "tradeoff.png", None, face=face_id)
    results = {
        "pipeline": "full (demo2)",
        "edits": records,
        "photos": photos.records(),
        "face_identity": face_id.to_dict(),
    }
    sections = [
        {
            "title": "Each face at full resolution × δ (the whole photos: img*_full.png)",
            "images": ["grid.png"],
            "text": full_photo.__doc__,
        },
        {
            "title": "Identity by face recognition",
            "images": ["tradeoff.png"],
            "pixelated": False,
            "text": identity.EXPLAINED,
        },
        {"title": "Face recognition distance per δ", "table": face_id.table(), "text": ""},
    ]
    summary = [f"{r['input']}: final loss {r['final_loss']}, {r['seconds']}" for r in records]
    title = f"DFI on own photos at full resolution (demo2): {cfg.edits[0]}"
    return runner.Outputs(title, results, sections, data=data.describe(), summary=summary)


main, parse = runner.Experiment("alpha_sweep", Args, run, __doc__, PRESETS).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
