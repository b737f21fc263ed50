"""Deep Feature Interpolation alpha sweep: edit faces along an attribute at several strengths.

    python -m experiments.alpha_sweep                                   # embedded synthetic faces, CPU-sized
    python -m experiments.alpha_sweep --edit "Smiling+ Mouth_Open+" --inputs 4 --alphas 0.1,0.3,0.5
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --edit Smiling+ --size 200
    python -m experiments.alpha_sweep --dataset celeba --data-dir data/celeba --images me.jpg --attrs Young=1,Male=-1

For every input it picks K neighbours with and without the edit (nearest in the other attributes),
forms the attribute vector w (each neighbour's features and each vector are cached on disk under
~/.cache/dfijax, so a second sweep does not recompute them), and inverts
φ(x) + α·w for every input × alpha in one compiled, vmapped L-BFGS call (sharded over all local
devices). Writes, under runs/alpha_sweep/<time>/ (or --out):
  grid.png     rows = inputs; columns = the original, then one per alpha
  report.html  the grid, per-alpha metrics (pixel and VGG-feature distance to the input, and the
               target attribute's probability under an attribute probe trained on the dataset) and settings
  results.json every setting, the weights and data used, neighbours, timings, metrics
  img<i>_a<alpha>.png for each output.
Runs offline in a few minutes on a 2-core CPU with no arguments (64 px, 100 iterations); on a GPU
the defaults become 200 px and 500 iterations. With the seeded random VGG-19 it says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from experiments import common


def parse(argv):
    gpu = jax.default_backend() != "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["synthetic", "celeba", "celeba-tfds", "lfw"], default="synthetic")
    p.add_argument("--data-dir", help="dataset folder (celeba, lfw) or tfds data_dir (celeba-tfds)")
    p.add_argument("--n-synthetic", type=int, default=2000, help="size of the synthetic face set")
    p.add_argument("--edit", default="Smiling+",
                   help="attribute spec, e.g. 'Smiling+ Mouth_Open+' or 'Young-'; several edits in one call "
                        "separated by ';', e.g. 'Smiling+;Eyeglasses+' (rows = input x edit)")
    p.add_argument("--inputs", type=int, default=3, help="how many dataset faces lacking the edit to edit")
    p.add_argument("--indices", help="comma-separated dataset indices to edit instead")
    p.add_argument("--images", nargs="*", help="own photos to edit (aligned, face-centred); needs --attrs")
    p.add_argument("--attrs", help="the photos' attributes by hand, e.g. Young=1,Male=-1")
    p.add_argument("--alphas", default="0.1,0.2,0.3,0.4,0.5")
    p.add_argument("--k", type=int, default=100, help="neighbours in each of the target and source sets")
    p.add_argument("--allow-fewer", action="store_true", help="go on with fewer than K neighbours")
    p.add_argument("--same-gender", action="store_true", help="neighbours share the input's gender")
    p.add_argument("--scaling", choices=["chainer", "paper", "beta", "none"], default="chainer")
    p.add_argument("--taps", default="relu3_1,relu4_1,relu5_1")
    p.add_argument("--size", type=int, default=200 if gpu else 64)
    p.add_argument("--iters", type=int, default=500 if gpu else 100)
    p.add_argument("--tv", type=float, default=None,
                   help="TV^2 weight on the 0-255 scale (default: DFI's 1e-3 with pretrained weights, 1e-6 with "
                        "the random net, whose activations are ~100x smaller)")
    p.add_argument("--color-match", action="store_true", help="match each output's colour to its input")
    p.add_argument("--residual", action="store_true", help="subtract what inverting φ(x) alone changes")
    p.add_argument("--mask", help="greyscale mask image: white takes the edit, black keeps the input")
    p.add_argument("--full-res", action="store_true",
                   help="own photos: also add the edit (computed at --size) to the full-resolution original")
    p.add_argument("--no-shard", action="store_true", help="solve on one device even when there are several")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--weights", help="converted weights (.safetensors); default: weights/ or a seeded random net")
    p.add_argument("--no-feature-cache", action="store_true",
                   help="do not keep per-image neighbour features (float16, ~200 KB per image at 64 px, "
                        "~2 MB at 200 px) under ~/.cache/dfijax/features-*")
    p.add_argument("--no-probe", action="store_true", help="skip the attribute probe (trained once, cached)")
    p.add_argument("--probe-steps", type=int, default=300, help="probe training steps")
    p.add_argument("--probe-train", type=int, default=2000, help="probe training images")
    p.add_argument("--batch", type=int, default=32, help="images per batch when averaging neighbour features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/alpha_sweep/<time>)")
    return p.parse_args(argv)


def load_dataset(args):
    if args.dataset == "synthetic":
        from dfijax.data.synthetic_faces import synthetic_faces

        return synthetic_faces(args.n_synthetic, seed=args.seed)
    if not args.data_dir and args.dataset != "celeba-tfds":
        raise ValueError(f"--dataset {args.dataset} needs --data-dir (the folder holding the dataset)")
    if args.dataset == "celeba":
        from dfijax.data.celeba import load_celeba_folder

        return load_celeba_folder(args.data_dir)
    if args.dataset == "celeba-tfds":
        from dfijax.data.celeba import load_celeba_tfds

        return load_celeba_tfds(args.data_dir)
    from dfijax.data.lfw import load_lfw_folder

    return load_lfw_folder(args.data_dir)


def parse_alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise ValueError(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if not alphas or not all(np.isfinite(alphas)):
        raise ValueError(f"--alphas must be finite numbers, got {text!r}")
    return alphas


def main(argv=None) -> int:
    args = parse(argv)
    from dfijax import dfi, sweep
    from dfijax import images as im
    from dfijax import invert as inv
    from dfijax.data import DataError
    from dfijax.vgg import VGG19, layer_index

    device = common.setup()
    t_start = time.perf_counter()
    try:
        alphas = parse_alphas(args.alphas)
        taps = tuple(t.strip() for t in args.taps.split(",") if t.strip())
        for t in taps:
            layer_index(t)
        if args.size < 32:
            raise ValueError(f"--size must be at least 32 for VGG-19, got {args.size}")
        if args.k < 1 or args.iters < 1:
            raise ValueError("--k and --iters must be positive")
        data = load_dataset(args)
        edit_names = [e.strip() for e in args.edit.split(";") if e.strip()]
        if not edit_names:
            raise ValueError("--edit is empty; e.g. --edit Smiling+")
        edit_specs = [dfi.parse_edit(e, data.attr_names) for e in edit_names]
        edit_spec = edit_specs[0]  # chooses the default inputs
        gender = data.attr_index(data.gender) if (args.same_gender and data.gender) else None
        lacks = -0.5
        if args.images:
            if not args.attrs:
                raise ValueError("own photos need their attributes: --attrs Young=1,Male=-1 (names from the dataset)")
            query = dfi.parse_attrs(args.attrs, data.attr_names)
            inputs = np.stack([im.load_image(p, (args.size, args.size)) for p in args.images])
            queries, excludes, labels = [query] * len(inputs), [None] * len(inputs), list(args.images)
        else:
            if args.indices:
                idx = [int(i) for i in args.indices.split(",")]
                bad = [i for i in idx if not 0 <= i < len(data)]
                if bad:
                    raise ValueError(f"--indices {bad} out of range: the dataset has {len(data)} images")
            else:  # the first faces that lack the edit
                lacking = np.ones(len(data), bool)
                for i, sign in edit_spec:
                    lacking &= (data.attrs[:, i] < lacks) if sign > 0 else (data.attrs[:, i] >= 0.5)
                idx = np.flatnonzero(lacking)[: args.inputs].tolist()
                if not idx:
                    raise ValueError(f"no face in {data.name} lacks the edit {args.edit!r}")
            inputs = data.images(idx, args.size)
            queries, excludes, labels = [data.attrs[i] for i in idx], idx, [data.ids[i] for i in idx]
        mask = im.load_image(args.mask, (args.size, args.size)).mean(-1) if args.mask else None
        weights = common.load_weights(args.weights, args.seed)
        rows = [(i, e) for i in range(len(inputs)) for e in range(len(edit_specs))]  # input-major
        neighbours = []
        for i, e in rows:
            n = dfi.select_neighbours(data.attrs, queries[i], edit_specs[e], args.k,
                                      metric="hamming" if data.binary else "l2", same=gender, exclude=excludes[i],
                                      allow_fewer=args.allow_fewer)
            if min(len(n.target), len(n.source)) < args.k:
                print(f"warning: only {len(n.target)} target / {len(n.source)} source neighbours (K = {args.k})",
                      file=sys.stderr)
            neighbours.append(n)
    except (ValueError, FileNotFoundError, DataError, im.ImageError) as e:
        return common.fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    if args.tv is None:
        args.tv = 1e-3 if weights.pretrained else 1e-6
        print(f"TV weight {args.tv:g} (auto for {'pretrained' if weights.pretrained else 'random'} weights)",
              file=sys.stderr)
    out = common.out_dir(args.out, "alpha_sweep")
    print(f"device: {device}; data: {data.describe()}; {len(inputs)} inputs x {len(edit_specs)} edits x "
          f"{len(alphas)} alphas at "
          f"{args.size}px, {args.iters} iterations; output {out}", file=sys.stderr)
    model = VGG19(dtype=jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32)
    loss = inv.FeatureLoss(model=model, taps=taps, tv_weight=args.tv)
    cache = common.cache_dir("attrvec")
    fcache = None if args.no_feature_cache else sweep.feature_cache_dir(common.cache_dir("features"), loss,
                                                                         weights.meta, data, args.size)
    t0 = time.perf_counter()
    ws, cached = [], 0
    n_imgs = sum(len(n.target) + len(n.source) for n in neighbours)
    with tqdm(total=n_imgs, desc="neighbour features", unit="img", file=sys.stderr) as bar:
        for n in neighbours:
            w, hit = sweep.attribute_vector_cached(loss, weights.variables, weights.meta, data, n, args.size,
                                                   args.scaling, cache, args.batch, bar.update, fcache)
            if hit:
                bar.update(len(n.target) + len(n.source))
            ws.append(w)
            cached += hit
    t_features = time.perf_counter() - t0
    w = {t: jnp.asarray(np.stack([wi[t] for wi in ws])) for t in taps}
    run_alphas = ([0.0] if args.residual else []) + alphas
    cfg = inv.SolverConfig(maxiter=args.iters, bounds=None)
    t0 = time.perf_counter()
    with tqdm(total=args.iters, desc="L-BFGS", unit="it", file=sys.stderr) as bar:
        def progress(k, losses):
            bar.update(k - bar.n)
            bar.set_postfix(loss=f"{float(jnp.mean(losses)):.4g}")

        row_inputs = jnp.asarray(inputs[[i for i, _ in rows]])
        edited, result = dfi.edit(loss, weights.variables, row_inputs, w, run_alphas, cfg, args.scaling,
                                  progress=progress, check_every=5,
                                  shard=jax.local_device_count() > 1 and not args.no_shard)
        edited.block_until_ready()
    t_edit = time.perf_counter() - t0
    x = row_inputs
    if args.residual:
        recon, edited = edited[:, :1], edited[:, 1:]
        edited = dfi.subtract_residual(edited, recon, x[:, None])
    if args.color_match:
        edited = jax.vmap(lambda e, r: jax.vmap(lambda z: dfi.match_color(z, r))(e))(edited, x)
    if mask is not None:
        edited = dfi.mask_blend(edited, x[:, None], jnp.asarray(mask))
    edited = np.clip(np.asarray(edited), 0, 1)

    b, a = len(rows), len(alphas)
    flat = jnp.asarray(edited.reshape((b * a,) + edited.shape[2:]))
    ref = jnp.repeat(x, a, axis=0)
    pix = np.sqrt(np.mean((np.asarray(flat) - np.asarray(ref)) ** 2, axis=(1, 2, 3))).reshape(b, a)
    feat = sweep.feature_distance(loss, weights.variables, flat, ref).reshape(b, a)
    def table(sel):
        return [{"alpha": al, "pixel_rmse_to_input": float(pix[sel, j].mean()),
                 "vgg_feature_distance_to_input": float(feat[sel, j].mean())} for j, al in enumerate(alphas)]

    edit_of_row = np.array([e for _, e in rows])
    per_alpha = table(slice(None))
    per_edit = {name: table(edit_of_row == e) for e, name in enumerate(edit_names)}
    probe_info = None
    if not args.no_probe:
        from dfijax.probe import ProbeConfig, train_probe

        pc = ProbeConfig(size=min(64, args.size), steps=args.probe_steps, n_train=args.probe_train, seed=args.seed)
        with tqdm(total=pc.steps, desc="attribute probe", unit="step", file=sys.stderr) as bar:
            probe, probe_cached = train_probe(data, pc, common.cache_dir("probe"),
                                              progress=lambda i, m: bar.update(i - bar.n))
            bar.update(pc.steps - bar.n)

        def target_score(p, spec):  # probability of the edit's direction, averaged over its attributes
            return np.mean([p[..., i] if sign > 0 else 1 - p[..., i] for i, sign in spec], axis=0)

        p_in = probe.scores(np.asarray(x))
        p_out = probe.scores(np.asarray(flat)).reshape(b, a, -1)
        s_in = np.array([target_score(p_in[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
        s_out = np.stack([target_score(p_out[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
        for j, m in enumerate(per_alpha):
            m["target_attribute_score"] = float(s_out[:, j].mean())
        for e, name in enumerate(edit_names):
            for j, m in enumerate(per_edit[name]):
                m["target_attribute_score"] = float(s_out[edit_of_row == e, j].mean())
        probe_info = {"input_target_attribute_score": float(s_in.mean()), "cached": probe_cached,
                      "metrics": probe.metrics, "config": dataclasses.asdict(pc)}
    originals = [im.load_image(p) for p in args.images] if (args.images and args.full_res) else None
    for r, (i, e) in enumerate(rows):
        stem = f"img{i}" if len(edit_specs) == 1 else f"img{i}_e{e}"
        for j, al in enumerate(alphas):
            im.save_image(out / f"{stem}_a{al:g}.png", edited[r, j])
            if originals is not None:
                full = dfi.apply_at_full_resolution(jnp.asarray(originals[i]), x[r], jnp.asarray(edited[r, j]))
                im.save_image(out / f"{stem}_a{al:g}_full.png", np.asarray(full))
    grid = im.make_grid([[np.asarray(x[r])] + [edited[r, j] for j in range(a)] for r in range(b)],
                        col_labels=["input"] + [f"a={al:g}" for al in alphas])
    im.save_image(out / "grid.png", grid)
    results = {
        "experiment": "alpha_sweep", "settings": vars(args), "device": device, "data": data.describe(),
        "weights": weights.description, "weights_pretrained": weights.pretrained, "weights_meta": weights.meta,
        "edit": args.edit, "edits": edit_names, "alphas": alphas, "inputs": labels,
        "rows": [{"input": labels[i], "edit": edit_names[e]} for i, e in rows],
        "neighbours": [{"target": n.target.tolist(), "source": n.source.tolist(),
                        "target_available": n.n_target_available, "source_available": n.n_source_available}
                       for n in neighbours],
        "attribute_vectors_from_cache": cached, "seconds": {"neighbour_features": t_features,
                                                            "edit_including_compile": t_edit,
                                                            "total": time.perf_counter() - t_start},
        "final_loss": np.asarray(result.final_loss).tolist(), "metrics_per_alpha": per_alpha,
        "metrics_per_edit": per_edit, "probe": probe_info,
    }
    common.write_json(out / "results.json", results)
    write_report(out / "report.html", results)
    for m in per_alpha:
        score = f", target attribute score {m['target_attribute_score']:.3f}" if "target_attribute_score" in m else ""
        print(f"alpha {m['alpha']:g}: pixel RMSE {m['pixel_rmse_to_input']:.4f}, "
              f"VGG distance {m['vgg_feature_distance_to_input']:.4f}{score}", file=sys.stderr)
    print(f"wrote {out / 'grid.png'}, {out / 'report.html'} and {out / 'results.json'}")
    return 0


def write_report(path, r) -> None:
    notice = "" if r["weights_pretrained"] else (
        "<p style='color:#a00'><b>Weights are a seeded random VGG-19, not pretrained:</b> these pictures show "
        "what the method does, not what trained features give.</p>")
    has_probe = r.get("probe") is not None
    rows = "".join(f"<tr><td>{html.escape(edit)}</td><td>{m['alpha']:g}</td><td>{m['pixel_rmse_to_input']:.4f}</td>"
                   f"<td>{m['vgg_feature_distance_to_input']:.4f}</td>"
                   + (f"<td>{m['target_attribute_score']:.3f}</td>" if has_probe else "") + "</tr>"
                   for edit, table in r["metrics_per_edit"].items() for m in table)
    probe_th = "<th>target attribute score (probe)</th>" if has_probe else ""
    probe_p = (f"<p>Attribute probe: a small CNN trained on the dataset's attributes (held-out accuracy "
               f"{html.escape(str({k: round(v, 3) for k, v in r['probe']['metrics'].get('val_accuracy', {}).items()}))}); "
               f"the inputs score {r['probe']['input_target_attribute_score']:.3f} for the edit.</p>") if has_probe else ""
    settings = html.escape(str(r["settings"]))
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>DFI alpha sweep: {html.escape(r['edit'])}</title>
<body style="font-family:sans-serif;max-width:1100px;margin:auto">
<h1>DFI alpha sweep: {html.escape(r['edit'])}</h1>
<p>Data: {html.escape(r['data'])}. Weights: {html.escape(r['weights'])}. Device: {html.escape(r['device'])}.</p>
{notice}
<img src="grid.png" style="image-rendering:pixelated;width:100%">
<h2>Per edit and alpha (mean over inputs)</h2>
<p>Grid rows: {html.escape(", ".join(f"{x['input']} / {x['edit']}" for x in r["rows"]))}.</p>
<table border=1 cellpadding=4><tr><th>edit</th><th>alpha</th><th>pixel RMSE to input</th><th>VGG feature distance to input</th>{probe_th}</tr>{rows}</table>
{probe_p}
<h2>Timing</h2><p>{html.escape(str({k: round(v, 1) for k, v in r['seconds'].items()}))} seconds</p>
<h2>Settings</h2><pre style="white-space:pre-wrap">{settings}</pre>
</body>""")


if __name__ == "__main__":
    sys.exit(main())
