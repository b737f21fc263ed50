"""Write the Colab notebooks (notebooks/alpha_sweep_colab.ipynb, notebooks/fusion_gan_colab.ipynb) from
the cells below (edit here, then run this script).

    python scripts/make_colab_notebook.py
"""

import argparse
import copy
import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    new_markdown_cell("""# dfijax: Deep Feature Interpolation alpha sweep on a Colab TPU

Runtime → Change runtime type → **TPU** (v2-8 has 8 cores: the sweep's images × alphas are split across
all of them). The notebook installs dfijax, fetches and converts the torchvision VGG-19, prepares
CelebA with tensorflow-datasets, runs a sweep and shows the grid.

Outside Colab (or with `DFIJAX_NOTEBOOK_SMALL=1`) it runs the same steps small, on the embedded
synthetic faces and a seeded random VGG-19, so it also executes on a laptop CPU (the project's
tests run it that way)."""),
    new_code_cell("""import os, sys, subprocess, pathlib
ON_COLAB = "google.colab" in sys.modules
SMALL = os.environ.get("DFIJAX_NOTEBOOK_SMALL") == "1" or not ON_COLAB
REPO_URL = "https://github.com/YOUR-ORG/dfijax"  # where you keep dfijax
if ON_COLAB and not pathlib.Path("dfijax").exists():
    subprocess.run(["git", "clone", "-q", REPO_URL, "dfijax"], check=True)
    os.chdir("dfijax")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "."], check=True)
root = pathlib.Path.cwd()
while not (root / "pyproject.toml").exists() and root != root.parent:
    root = root.parent
os.chdir(root)
sys.path.insert(0, str(root))
import jax
from dfijax import runtime
runtime.enable_compilation_cache()  # a restarted runtime reuses the compiled programs
print("devices:", jax.devices())"""),
    new_markdown_cell("## VGG-19 weights: fetch (575 MB, checksum-verified, resumable) and convert"),
    new_code_cell("""weights = None
if not SMALL:
    subprocess.run([sys.executable, "scripts/fetch_vgg19.py", "torchvision", "--dest", "weights"], check=True)
    weights = "weights/vgg19_torchvision.safetensors"
else:
    print("small run: a seeded random VGG-19 (not pretrained) instead of downloading weights")"""),
    new_markdown_cell("""## CelebA through tensorflow-datasets

`celeb_a` downloads from Google Drive, which sometimes refuses (quota); if it fails, put the CelebA
folder (`img_align_celeba/`, `list_attr_celeba.txt`) on Drive and use `--dataset celeba --data-dir`."""),
    new_code_cell("""from dfijax.data.synthetic_faces import synthetic_faces
if SMALL:
    data = synthetic_faces(600)
else:
    import tensorflow_datasets as tfds
    from dfijax.data.celeba import load_celeba_tfds
    tfds.builder("celeb_a", data_dir="/content/tfds").download_and_prepare()
    data = load_celeba_tfds("/content/tfds")
print(data.describe())"""),
    new_markdown_cell("## The sweep: inputs × alphas in one compiled, sharded L-BFGS call"),
    new_code_cell("""from dfijax import dfi
from dfijax.weights import load_vgg19
vgg = load_vgg19(weights)
print(vgg.description)
if SMALL:  # the tests' preset: 32 px, 6 iterations, K = 10
    config = dfi.preset("tiny", edits=("Smiling+",))
else:  # the references' 200 px and 500 iterations
    config = dfi.preset("dfijax", edits=("Smiling+",), size=200, iters=500)
inputs = dfi.dataset_inputs(data, "Smiling+", config.size, count=8 if not SMALL else 2)
cache = pathlib.Path(os.environ.get("DFIJAX_CACHE", "~/.cache/dfijax")).expanduser()
result = dfi.run_sweep(config, data, vgg, inputs, cache_root=cache)"""),
    new_code_cell("""import json
from IPython.display import Image, display
from dfijax import images as im
out = pathlib.Path(os.environ.get("DFIJAX_NOTEBOOK_OUT", "runs/colab_sweep")).absolute()
grid = im.make_grid([[x] + list(e) for x, e in zip(result.inputs, result.edited)],
                    col_labels=["input"] + [f"a={a:g}" for a in config.alphas])
im.save_image(out / "grid.png", grid)
display(Image(filename=str(out / "grid.png")))
summary = {"weights": vgg.description, "weights_pretrained": vgg.pretrained, "alphas": list(config.alphas),
           "metrics_per_alpha": result.metrics_per_alpha}
(out / "results.json").write_text(json.dumps(summary, indent=2))
for m in result.metrics_per_alpha:
    print(m)"""),
]


FUSION_CELLS = [
    new_markdown_cell("""# dfijax: the fusion GAN on a Colab TPU

Runtime → Change runtime type → **TPU**. Trains the fusion GAN (Takagi & Okadome) on CelebA at
128×128 with the paper's settings (latent 4×4×1024 in 5 chunks, w1…w5 = 1, 1e-6, 5e-5, 30, 1), data
parallel over all TPU cores, with orbax checkpoints on Drive so a disconnected runtime resumes; then
fuses two faces (Λ from 1 to 0, and a per-chunk Λ). Every step is one call of the library
(`dfijax.fusion`): a config from a preset, the data, `run_training`, `run_fuse`.

Outside Colab (or with `DFIJAX_NOTEBOOK_SMALL=1`) it runs the same steps tiny, on the embedded
synthetic faces and a seeded random VGG-19 (the project's tests run it that way)."""),
    CELLS[1],
    new_markdown_cell("## VGG-19 weights for the perceptual losses (575 MB, checksum-verified)"),
    CELLS[3],
    new_markdown_cell("""## Config, data and checkpoints

The config is a preset (`dfijax/fusion/presets.py`: `tiny`, `cpu_small`, `paper_gp`, `paper`) with any setting
given over it. CelebA comes through tensorflow-datasets (`celeb_a`; if Google Drive refuses the
download, put the CelebA folder on Drive and use `fusion.load_data("celeba", folder)`). Checkpoints go
to Drive when mounted."""),
    new_code_cell("""from dfijax import fusion
out = pathlib.Path(os.environ.get("DFIJAX_NOTEBOOK_OUT", "runs/colab_fusion")).absolute()
if SMALL:
    config = fusion.training_config("tiny", stage1_steps=20, stage2_steps=2, save_every=10, sample_every=10)
    data = fusion.load_data("synthetic", n_synthetic=64, holdout=config.holdout)
else:
    import tensorflow_datasets as tfds
    from google.colab import drive
    drive.mount("/content/drive")
    tfds.builder("celeb_a", data_dir="/content/tfds").download_and_prepare()
    config = fusion.training_config("paper_gp", batch=128)  # the paper's 128 px, width 64, schedule; batch fits a TPU
    data = fusion.load_data("celeba-tfds", "/content/tfds", holdout=config.holdout)
    out = pathlib.Path("/content/drive/MyDrive/dfijax/fusion")
print(f"{data.describe()}; {data.description}; {config.total} steps; {config.fusion}")"""),
    new_markdown_cell("## Train: stage 1 (autoencoder), then stage 2 (the full objective); rerun this cell to resume"),
    new_code_cell("""from IPython.display import Image, display
from dfijax import images as im
from dfijax.weights import load_vgg19
vgg = load_vgg19(weights)
print(vgg.description)

def progress(step, total, record):
    if record and (step % 500 == 0 or step == total):
        print(f"step {step}/{total}:", {k: round(v, 4) for k, v in record.items() if k in ("l1", "wdist", "loss")})

def on_sample(step, grid):  # rows: A, B; their reconstructions; the fusions for Λ = 1 … 0
    im.save_image(out / "samples" / f"step_{step:06d}.png", grid)

result = fusion.run_training(config, data, vgg.variables, out, progress=progress, on_sample=on_sample)
print(f"trained from step {result.start} to {config.total} in {result.seconds:.0f} s; held-out reconstruction:",
      result.held_out)
im.save_image(out / "samples.png", result.samples)
display(Image(filename=str(out / "samples.png")))"""),
    new_markdown_cell("""## Fuse two faces: the paper's figure (Λ = 1 … 0) and a per-chunk Λ

Two embedded synthetic faces here; for your own photos pass `a=im.load_image("a.jpg"), b=im.load_image("b.jpg")`
(any size: centre-cropped to a square and resized)."""),
    new_code_cell("""import json
fused = fusion.run_fuse(out, lambdas=[*fusion.LAMBDAS, [1, 1, 0, 0, 0.5]])
im.save_image(out / "fusion.png", fused.figure())
display(Image(filename=str(out / "fusion.png")))
checks = fused.checks()  # Λ = 1 against A and Λ = 0 against B (small), the cross errors for scale
print({k: round(v, 4) for k, v in checks.items()})
summary = {"checkpoint_step": fused.step, "lambdas": fused.lambdas, **checks, "held_out": result.held_out,
           "weights": vgg.description, "weights_pretrained": vgg.pretrained}
(out / "fusion.json").write_text(json.dumps(summary, indent=2))"""),
]

NOTEBOOKS = {"alpha_sweep_colab.ipynb": CELLS, "fusion_gan_colab.ipynb": FUSION_CELLS}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook `name`, with deterministic cell ids (so regenerating it changes nothing)."""
    cells = copy.deepcopy(NOTEBOOKS[name])
    for i, c in enumerate(cells):
        c["id"] = f"{name.split('_colab')[0]}-{i}"
    return new_notebook(
        cells=cells,
        metadata={
            "accelerator": "TPU",
            "colab": {"provenance": []},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
        },
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (no options: it rewrites every notebook), read without running anything."""
    return argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parse(argv)
    for name in NOTEBOOKS:
        path = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / name
        nbformat.write(build(name), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
