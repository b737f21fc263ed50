"""Domain Transfer Network, faces setting (Taigman et al. 2016, section 5.2): face photos -> cartoon
faces with f = frozen VGG-19 features (the paper's f is the DeepFace network).

    python -m experiments.train_dtn_faces                   # --nets small: offline, CPU, 32 px, minutes
    python -m experiments.train_dtn_faces --nets paper --data celeba --data-dir ~/data/celeba \\
        --out runs/dtn_faces/celeba                         # the paper's networks (a GPU run)

Networks (--nets, presets in dfijax.dtn.config.FACES_PRESETS; flags override them, results.json records
the preset and those flags): paper (the paper's faces networks, dfijax.dtn.model.PaperGenerator /
PaperDiscriminator: 64 px, D on 152 px, batch norm, 20000 iterations, batch 64, lr 2e-4) or small (light
GroupNorm networks on 32 px: 600 iterations, batch 16, lr 1e-3, 2000 images per domain).
L_G = L_GANG + α L_CONST + β L_TID + γ L_TV with the paper's faces weights α = 100, β = 1, γ = 0.05 (the
`faces` loss preset), 3-class D. f(x): VGG-19 taps (--taps), each average-pooled to --grid × --grid,
concatenated and standardised on --calib source images (dfijax.dtn.faces); f is never trained. With no
converted VGG-19 weights, f is a seeded random VGG-19, NOT pretrained, and every output says so.

Data: source (--data) "synthetic" (default, offline): dfijax.data.synthetic_faces, procedural
renders of faces that stand in for photos (not photos); "celeba": real photos from a CelebA folder
(--data-dir with list_attr_celeba.txt and img_align_celeba/), the first --n-train + --n-test images.
Target: dfijax.data.cartoon_faces, procedural emoji-style faces (--n-target of them, plus 12
held-out ones for the figure). The last --n-test source images are held out.

Writes to --out (default runs/dtn_faces/default; a rerun resumes from the newest checkpoint): results.json
(settings, data, weights, final losses, f-constancy on the held-out sources), config.json, report.html,
samples.png (held-out sources, G(source), held-out cartoons, G(cartoon)), loss.png, and dtn/ (orbax
checkpoints, the run's config, metrics.jsonl). Pipeline: dfijax.dtn.pipeline.run_faces, on every device
of every process (--coordinator/--num-processes/--process-id, or detected); process 0 writes.

Expected: `python -m experiments.train_dtn_faces --steps 150` (about 3 minutes on 2 CPU cores, random
VGG-19) keeps identity in f's space: cos(f(s), f(G(s))) 0.81 against 0.08 for another source, retrieval
1.0 (chance 0.016), "identity kept: yes"; L_TID falls (0.13 -> 0.05) while G's pictures are still
noisy face-shaped textures at this length.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import tyro

from dfijax import config, report
from dfijax import images as im
from dfijax.dtn import pipeline
from dfijax.dtn.config import FACES_PRESETS, FacesConfig
from dfijax.progress import Bars
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[FacesConfig, runner.FLAT] = FACES_PRESETS["small"]
    weights: str | None = None
    """converted VGG-19 weights; default: weights/ or a seeded random net"""
    out: str = "runs/dtn_faces/default"
    """output and checkpoint folder (resumes)"""
    processes: Annotated[runner.Processes, runner.FLAT] = runner.Processes()
    overridden: tyro.conf.Suppress[tuple[str, ...]] = ()  # the --nets preset's settings given as flags


def resolve(args: Args, start: FacesConfig) -> Args:
    """Record which of the --nets preset's settings the command line changed."""
    return dataclasses.replace(args, overridden=config.changed(start, args.config))


def run(args: Args, ctx: runner.Context) -> runner.Outputs | None:

    t_start, cfg = time.perf_counter(), args.config
    vgg = ctx.load_weights(args.weights, cfg.run.seed)
    data = pipeline.load_faces(cfg)
    out = ctx.out()
    device = f"{ctx.device}; {ctx.proc.count} process(es), {ctx.proc.global_devices} device(s)"
    ctx.say(
        f"device: {device}; {cfg.nets} networks; {data.source}; {data.target}; {cfg.size}px; f: VGG-19 "
        f"{','.join(cfg.f.taps)} pooled {cfg.grid}x{cfg.grid} ({cfg.f.feat_dim} features); output {out}"
    )
    with Bars() as bars:
        r = pipeline.run_faces(cfg, vgg, data, out, progress=bars.update if ctx.main_proc else None)
    if not ctx.main_proc:
        return None
    im.save_image(out / "samples.png", r.pictures["samples.png"])
    report.plot_losses(out / "loss.png", r.records["dtn"], keys=("d_loss", "gang", "const", "tid", "tv"))
    s = r.summary
    s["seconds"]["total"] = time.perf_counter() - t_start
    c, w, n, f = s["constancy"], s["loss_weights"], s["networks"], s["f"]
    fm = s["final_metrics_mean_last_10pct"] or {}
    losses = ", ".join(f"{k} {fm[k]:.4g}" for k in ("d_loss", "g_loss", "gang", "const", "tid", "tv") if k in fm)
    setting = (
        f"f: {f['kind']} {', '.join(f['taps'])}, each pooled to {f['grid']}×{f['grid']} ({f['feat_dim']} features, "
        f"{f['standardisation']}). Networks ({cfg.nets}): g {n['g']} (width {n['g_width']}, {n['g_params']:,} "
        f"parameters) to {n['g_output_size']} px; D {n['d']} (width {n['d_width']}, {n['d_params']:,} parameters) on "
        f"{n['d_input_size']} px; {n['norm']} norm. L_G = L_GANG + {w['alpha']:g} L_CONST + {w['beta']:g} L_TID + "
        f"{w['gamma']:g} L_TV (d = {w['const']}, {w['d_classes']}-class D), {s['steps']} iterations. Mean of the "
        f"last 10% of logged losses: {losses}."
    )
    kept = (
        f"Baselines in f's space: cos(f(s), f(s′)) for a random other source = {c['cos_s_other_s']:.4f}; "
        f"(f(s) − f(s′))² = {c['const_mse_random_pair']:.4f}. Identity is kept when cos(f(s), f(G(s))) clearly "
        f"exceeds both cos(f(s), f(G(s′))) and cos(f(s), f(s′)); here: {'yes' if s['identity_kept'] else 'no'}. "
        "Retrieval: how often f(s) is closest to f(G(s)) among all G(s′)."
    )
    table = dict(zip(("headers", "rows"), pipeline.constancy_table(s)))
    rows_text = "Rows: held-out sources, G(source), held-out cartoons, G(cartoon)."
    start = config.to_dict(FACES_PRESETS[cfg.nets])
    preset = {"nets": cfg.nets, "preset": start, "overridden": list(args.overridden)}
    return runner.Outputs(
        title="Domain Transfer Network: faces → cartoons",
        results={
            **{"device": device, **s, "loss_plot": "loss.png", "net_preset": preset},
            "data": {"source": data.source, "target": data.target},
            "weights": {"description": vgg.description, "pretrained": vgg.pretrained},
        },
        sections=[
            {"title": "Setting", "text": setting},
            {"title": f"Identity keeping (f-constancy) on {c['n']} held-out sources", "text": kept, "table": table},
            {"title": "Samples", "text": rows_text, "images": ["samples.png"]},
            {"title": "Losses", "text": "|loss| on a log scale", "images": ["loss.png"], "pixelated": False},
        ],
        files=["samples.png", "loss.png"],
        device=device,
        data=f"{data.source}; {data.target}",
        seconds=s["seconds"],
        summary=[
            f"constancy on {c['n']} held-out sources: cos(f(s), f(G(s))) {c['cos_s_gs']:.3f} vs random other source "
            f"{c['cos_s_other_s']:.3f} / other G(s') {c['cos_s_other_gs']:.3f}; retrieval {c['retrieval_top1']:.3f} "
            f"(chance {c['retrieval_chance']:.3f})"
        ],
    )


main, parse = runner.Experiment("train_dtn_faces", Args, run, __doc__, FACES_PRESETS, resolve, "nets").entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
