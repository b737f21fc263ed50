"""Fuse two face images with a trained fusion GAN: G(Λ∘E(A) + (1 − Λ)∘E(B)).

    python -m experiments.fuse --ckpt runs/fusion/default                      # two embedded synthetic faces
    python -m experiments.fuse --ckpt runs/fusion/celeba --a me.jpg --b you.jpg --lambda 1,1,0,0,0.5
    python -m experiments.fuse --ckpt runs/fusion/default --show-features

Images are centre-cropped to a square and resized to the checkpoint's size. Writes <out>/fusion.png
(the paper's figure: A top left and B top right, below them Λ = 1, 0.8, …, 0 for every chunk; with
--lambda a third row with the per-chunk result), fused_<Λ>.png per column, results.json with the
checkpoint and the L1 errors (on [-1, 1]) of Λ = 1 against A and Λ = 0 against B (small:
reconstructions) beside the cross errors for scale, and report.html. --show-features also writes
features.png, the paper's Fig. 6 for A, B and their fusion C (the --lambda Λ, or 1,0,1,0,… per chunk):
all channels and the first four enlarged of the image, the VGG-19 maps at conv1_1 … conv5_1
(--weights: the VGG-19 of training) and the latent chunks. The work is dfijax.fusion.run_fuse, its L1
table dfijax.fusion.evaluate_fuse.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro

from dfijax import fusion
from dfijax import images as im
from dfijax.fusion.pipeline import FuseConfig
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[FuseConfig, runner.FLAT] = FuseConfig()
    ckpt: str = tyro.MISSING
    """folder written by experiments.train_fusion"""
    a: str | None = None
    """image A (default: an embedded synthetic face)"""
    b: str | None = None
    """image B (default: another embedded synthetic face)"""
    show_features: bool = False
    """also write features.png: VGG-19 feature maps and latent chunks of A, B and C (Fig. 6)"""
    weights: str | None = None
    """VGG-19 for --show-features; default: weights/ or a seeded random net"""
    out: str | None = None
    """output folder (default runs/fuse/<time>)"""


def run(args: Args, ctx: runner.Context) -> runner.Outputs:

    if (args.a is None) != (args.b is None):
        raise ValueError("give both --a and --b, or neither (two synthetic faces)")
    cfg, sweep, checkpoint = args.config, fusion.LAMBDAS, fusion.restore(args.ckpt)
    custom = fusion.parse_lambda(cfg.lam, checkpoint[0].n_chunks) if cfg.lam else None
    a, b = (im.load_image(f) for f in (args.a, args.b)) if args.a else (None, None)
    r = fusion.run_fuse(checkpoint, a, b, list(sweep) + ([custom] if custom else []), seed=cfg.seed)
    weights = ctx.load_weights(args.weights) if args.show_features else None
    out = ctx.out()
    for name, y in zip([f"{lam:.1f}" for lam in sweep] + ["custom"], r.fused):
        im.save_image(out / f"fused_{name}.png", y)
    im.save_image(out / "fusion.png", r.figure(sweep))
    e = fusion.evaluate_fuse(r)
    a_text, b_text = (p or f"synthetic face {i} (seed {cfg.seed})" for i, p in enumerate((args.a, args.b)))
    results = {"checkpoint": args.ckpt, "checkpoint_step": r.step, "size": r.config.size, "chunks": r.config.chunks}
    results.update(a=a_text, b=b_text, sweep=sweep, **e, **({"lambda": custom} if custom else {}))
    text = "Top: A (left) and B (right). Below: G(Λ∘E(A) + (1 − Λ)∘E(B)) for Λ = 1, 0.8, …, 0 on every chunk"
    sections = [
        {
            "title": "Fusion of A and B",
            "images": ["fusion.png"],
            "text": text + (f", then Λ = {custom} per chunk." if custom else "."),
        },
        {
            "title": "Reconstruction checks (L1 on [-1, 1])",
            "text": "Λ = 1 should reproduce A and Λ = 0 B: their errors should lie well below the cross errors.",
            "table": {"headers": ["measure", "L1"], "rows": [[k[3:], v] for k, v in e.items()]},
        },
    ]
    if weights is not None:
        results.update(r.feature_figure(out / "features.png", weights.variables, custom))
        sections.append({"title": "Feature maps (Fig. 6)", "images": ["features.png"], "pixelated": False})
    return runner.Outputs(
        title=f"Fusion GAN: fusing two faces (checkpoint step {r.step})",
        results=results,
        sections=sections,
        files=("fusion.png",) + ("features.png",) * (weights is not None),
        data=f"A: {a_text}; B: {b_text}",
        summary=[
            f"Λ=1 vs A: L1 {e['l1_lambda1_vs_a']:.4f}; Λ=0 vs B: L1 {e['l1_lambda0_vs_b']:.4f} "
            f"(cross: Λ=1 vs B {e['l1_lambda1_vs_b']:.4f}, A vs B {e['l1_a_vs_b']:.4f})"
        ],
    )


main, parse = runner.Experiment("fuse", Args, run, __doc__).entry_points()

if __name__ == "__main__":
    raise SystemExit(main())
