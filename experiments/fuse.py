"""Fuse two face images with a trained fusion GAN: G(Λ∘E(A) + (1 − Λ)∘E(B)).

    python -m experiments.fuse --ckpt runs/fusion/default                      # two embedded synthetic faces
    python -m experiments.fuse --ckpt runs/fusion/celeba --a me.jpg --b you.jpg --lambda 1,1,0,0,0.5

Images are centre-cropped to a square and resized to the checkpoint's size. Writes <out>/fusion.png
(the paper's figure: A top left and B top right, below them Λ = 1, 0.8, …, 0 for every chunk; with
--lambda a third row with the per-chunk result), fused_<Λ>.png per column, and results.json with the L1 errors (on
[-1, 1]) of Λ = 1 against A and of Λ = 0 against B (these should be small: reconstructions), the
cross errors (Λ = 1 against B, Λ = 0 against A) for scale, and the checkpoint it used, and report.html
(the figure and those errors). The work is one library call, dfijax.fusion.run_fuse.

--show-features also writes <out>/features.png, the paper's Fig. 6 for A, B and their fusion C (the
--lambda Λ, or 1,0,1,0,… per chunk without it): rows A, B, C, each with all channels and then the first
four enlarged; columns the image, the VGG-19 maps at conv1_1 … conv5_1 (--weights: the same VGG-19 as
training, default weights/ or the seeded random net) and the latent chunks z_1 … z_N.

    python -m experiments.fuse --ckpt runs/fusion/default --show-features
"""

from __future__ import annotations

import argparse
import sys

from experiments import common


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="folder written by experiments.train_fusion")
    p.add_argument("--a", help="image A (default: an embedded synthetic face)")
    p.add_argument("--b", help="image B (default: another embedded synthetic face)")
    p.add_argument("--lambda", dest="lam", help="per-chunk Λ, e.g. 1,1,0,0,0.5 (one value per latent chunk)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the default synthetic faces")
    p.add_argument(
        "--show-features",
        action="store_true",
        help="also write features.png: VGG-19 feature maps and latent chunks of A, B and C (Fig. 6)",
    )
    p.add_argument("--weights", help="VGG-19 for --show-features; default: weights/ or a seeded random net")
    p.add_argument("--out", help="output folder (default runs/fuse/<time>)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    if (args.a is None) != (args.b is None):
        return common.fail("give both --a and --b, or neither (two synthetic faces)")
    from dfijax import fusion
    from dfijax import images as im

    device = common.setup()
    try:
        run = fusion.restore(args.ckpt)
        custom = fusion.parse_lambda(args.lam, run[0].n_chunks) if args.lam else None
        a, b = (im.load_image(f) for f in (args.a, args.b)) if args.a else (None, None)
        r = fusion.run_fuse(run, a, b, list(fusion.LAMBDAS) + ([custom] if custom else []), seed=args.seed)
    except (ValueError, FileNotFoundError, im.ImageError) as e:
        return common.fail(str(e))
    out = common.out_dir(args.out, "fuse")
    sweep = fusion.LAMBDAS
    res = {
        "checkpoint": str(args.ckpt),
        "checkpoint_step": r.step,
        "size": r.config.size,
        "chunks": list(r.config.chunks),
        "a": args.a or f"synthetic face 0 (seed {args.seed})",
        "b": args.b or f"synthetic face 1 (seed {args.seed})",
        "sweep": list(sweep),
        **r.checks(),
    }
    for lam, y in zip(sweep, r.fused):
        im.save_image(out / f"fused_{lam:.1f}.png", y)
    if custom:
        res["lambda"] = custom
        res["l1_custom_vs_a"], res["l1_custom_vs_b"] = float(r.l1_vs_a[-1]), float(r.l1_vs_b[-1])
        im.save_image(out / "fused_custom.png", r.fused[-1])
    im.save_image(out / "fusion.png", r.figure(sweep))
    if args.show_features:
        try:
            weights = common.load_weights(args.weights)
        except (ValueError, FileNotFoundError) as e:
            return common.fail(str(e))
        res.update(write_features(out, r, weights, custom))
    common.write_json(out / "results.json", res)
    write_report(out, res, device, weights if args.show_features else None)
    print(
        f"Λ=1 vs A: L1 {res['l1_lambda1_vs_a']:.4f}; Λ=0 vs B: L1 {res['l1_lambda0_vs_b']:.4f} "
        f"(cross: Λ=1 vs B {res['l1_lambda1_vs_b']:.4f}, A vs B {res['l1_a_vs_b']:.4f}); wrote {out / 'fusion.png'}"
    )
    return 0


def write_features(out, r, weights, custom: list[float] | None) -> dict:
    """features.png (the paper's Fig. 6) for A, B and C fused with the custom Λ (default 1, 0, 1, 0, … per
    chunk); returns its results.json entries."""
    from dfijax.fusion import figures
    from dfijax.fusion.data import to_signed

    cfg = r.config
    lam = custom or [float((n + 1) % 2) for n in range(cfg.n_chunks)]
    imgs, lat, feats = figures.fusion_features(cfg, r.state.eg, weights.variables, to_signed(r.a), to_signed(r.b), lam)
    size = figures.feature_figure(out / "features.png", imgs, lat, feats, cfg.chunks, lam)
    return {"features_png": str(out / "features.png"), "features_lambda": lam, "features_size": list(size)}


def write_report(out, res: dict, device: str, weights=None) -> None:
    """report.html: the fusion figure, the reconstruction checks and (with --show-features) Fig. 6."""
    from experiments import report

    errors = [k for k in res if k.startswith("l1_")]
    sections = [
        {
            "title": "Fusion of A and B",
            "images": ["fusion.png"],
            "text": "Top: A (left) and B (right). Below: G(Λ∘E(A) + (1 − Λ)∘E(B)) for Λ = 1, 0.8, …, 0 on every "
            "chunk" + (f", then Λ = {res['lambda']} per chunk." if "lambda" in res else "."),
        },
        {
            "title": "Reconstruction checks (L1 on [-1, 1])",
            "text": "Λ = 1 should reproduce A and Λ = 0 B: their errors should lie well below the cross errors.",
            "table": {"headers": ["measure", "L1"], "rows": [[k[3:], res[k]] for k in errors]},
        },
    ]
    if weights is not None:
        sections.append({"title": "Feature maps (Fig. 6)", "images": ["features.png"], "pixelated": False})
    report.write_report(
        out / "report.html",
        f"Fusion GAN: fusing two faces (checkpoint step {res['checkpoint_step']})",
        weights="none (the fusion uses the trained E and G only)" if weights is None else weights.description,
        pretrained=True if weights is None else weights.pretrained,
        device=device,
        data=f"A: {res['a']}; B: {res['b']}",
        config={k: v for k, v in res.items() if k not in errors},
        sections=sections,
    )


if __name__ == "__main__":
    sys.exit(main())
