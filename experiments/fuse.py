"""Fuse two face images with a trained fusion GAN: G(Λ∘E(A) + (1 − Λ)∘E(B)).

    python -m experiments.fuse --ckpt runs/fusion/default                      # two embedded synthetic faces
    python -m experiments.fuse --ckpt runs/fusion/celeba --a me.jpg --b you.jpg --lambda 1,1,0,0,0.5

Images are centre-cropped to a square and resized to the checkpoint's size. Writes <out>/fusion.png
(the paper's figure: A top left and B top right, below them Λ = 1, 0.8, …, 0 for every chunk; with
--lambda a third row with the per-chunk result), fused_<Λ>.png per column, and results.json with the L1 errors (on
[-1, 1]) of Λ = 1 against A and of Λ = 0 against B (these should be small: reconstructions), the
cross errors (Λ = 1 against B, Λ = 0 against A) for scale, and the checkpoint it used.

--show-features also writes <out>/features.png, the paper's Fig. 6 for A, B and their fusion C (the
--lambda Λ, or 1,0,1,0,… per chunk without it): rows A, B, C, each with all channels and then the first
four enlarged; columns the image, the VGG-19 maps at conv1_1 … conv5_1 (--weights: the same VGG-19 as
training, default weights/ or the seeded random net) and the latent chunks z_1 … z_N.

    python -m experiments.fuse --ckpt runs/fusion/default --show-features
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from experiments import common

SWEEP = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


def parse_lambda(text: str, n_chunks: int) -> list[float]:
    """'1,1,0,0,0.5' -> per-chunk values; one value means every chunk. One-line ValueErrors."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--lambda must be comma-separated numbers, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * n_chunks
    if len(vals) != n_chunks:
        raise ValueError(f"--lambda needs {n_chunks} values (one per latent chunk) or one, got {len(vals)}")
    bad = [v for v in vals if not 0.0 <= v <= 1.0]
    if bad:
        raise ValueError(f"--lambda values must lie in [0, 1], got {bad[0]:g}")
    return vals


def square(x: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop of [H, W, 3], resized to [size, size, 3]."""
    from dfijax.images import resize_array

    h, w, _ = x.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[top : top + s, left : left + s]
    return x if s == size else resize_array(x, (size, size))


def main(argv=None) -> int:
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
    args = p.parse_args(argv)
    if err := common.out_error(args.out):
        return common.fail(err)
    if (args.a is None) != (args.b is None):
        return common.fail("give both --a and --b, or neither (two synthetic faces)")
    from dfijax import images as im
    from dfijax.fusion import train as ft
    from dfijax.fusion.data import to_signed, to_unit

    common.setup()
    try:
        cfg, state, step = ft.restore(args.ckpt)
        custom = parse_lambda(args.lam, cfg.n_chunks) if args.lam else None
        if args.a:
            a, b = (square(im.load_image(f), cfg.size) for f in (args.a, args.b))
        else:
            from dfijax.data.synthetic_faces import synthetic_faces

            a, b = synthetic_faces(2, args.seed).images([0, 1], cfg.size)
    except (ValueError, FileNotFoundError, im.ImageError) as e:
        return common.fail(str(e))
    a, b = to_signed(a), to_signed(b)
    lams = [[l] * cfg.n_chunks for l in SWEEP] + ([custom] if custom else [])
    fused = np.asarray(ft.fuse(cfg, state.eg, a, b, lams))
    out = common.out_dir(args.out, "fuse")
    l1 = lambda x, y: float(np.mean(np.abs(x - y)))  # noqa: E731
    first, last = fused[0], fused[len(SWEEP) - 1]
    res = {
        "checkpoint": str(args.ckpt),
        "checkpoint_step": step,
        "size": cfg.size,
        "chunks": list(cfg.chunks),
        "a": args.a or f"synthetic face 0 (seed {args.seed})",
        "b": args.b or f"synthetic face 1 (seed {args.seed})",
        "sweep": list(SWEEP),
        "l1_lambda1_vs_a": l1(first, a),
        "l1_lambda0_vs_b": l1(last, b),
        "l1_lambda1_vs_b": l1(first, b),
        "l1_lambda0_vs_a": l1(last, a),
        "l1_a_vs_b": l1(a, b),
    }
    from experiments.train_fusion import ends

    rows = [
        ends(im.upscale_nearest(to_unit(a)), im.upscale_nearest(to_unit(b)), len(SWEEP)),
        [im.upscale_nearest(y) for y in to_unit(fused[: len(SWEEP)])],
    ]
    for lam, y in zip(SWEEP, fused):
        im.save_image(out / f"fused_{lam:.1f}.png", to_unit(y))
    if custom:
        res["lambda"] = custom
        res["l1_custom_vs_a"], res["l1_custom_vs_b"] = l1(fused[-1], a), l1(fused[-1], b)
        rows.append([im.upscale_nearest(to_unit(fused[-1]))])
        im.save_image(out / "fused_custom.png", to_unit(fused[-1]))
    im.save_image(out / "fusion.png", im.make_grid(rows, col_labels=[f"{l:.1f}" for l in SWEEP]))
    if args.show_features:
        from dfijax.fusion import figures

        feat_lam = custom or [float((n + 1) % 2) for n in range(cfg.n_chunks)]
        try:
            weights = common.load_weights(args.weights)
        except (ValueError, FileNotFoundError) as e:
            return common.fail(str(e))
        imgs, lat, feats = figures.fusion_features(cfg, state.eg, weights.variables, a, b, feat_lam)
        res["features_png"] = str(out / "features.png")
        res["features_lambda"] = feat_lam
        size = figures.feature_figure(out / "features.png", imgs, lat, feats, cfg.chunks, feat_lam)
        res["features_size"] = list(size)
    common.write_json(out / "results.json", res)
    print(
        f"Λ=1 vs A: L1 {res['l1_lambda1_vs_a']:.4f}; Λ=0 vs B: L1 {res['l1_lambda0_vs_b']:.4f} "
        f"(cross: Λ=1 vs B {res['l1_lambda1_vs_b']:.4f}, A vs B {res['l1_a_vs_b']:.4f}); wrote {out / 'fusion.png'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
