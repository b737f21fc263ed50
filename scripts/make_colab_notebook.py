"""Write notebooks/alpha_sweep_colab.ipynb from the cells below (edit here, then run this script).

    python scripts/make_colab_notebook.py
"""

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
    new_code_cell("""data_args = ["--dataset", "synthetic", "--n-synthetic", "600"]
if not SMALL:
    import tensorflow_datasets as tfds
    tfds.builder("celeb_a", data_dir="/content/tfds").download_and_prepare()
    data_args = ["--dataset", "celeba-tfds", "--data-dir", "/content/tfds"]"""),
    new_markdown_cell("## The sweep: inputs × alphas in one compiled, sharded L-BFGS call"),
    new_code_cell("""from experiments import alpha_sweep
out = pathlib.Path(os.environ.get("DFIJAX_NOTEBOOK_OUT", "runs/colab_sweep")).absolute()
settings = (["--size", "200", "--iters", "500", "--inputs", "8"] if not SMALL else
            ["--size", "32", "--iters", "5", "--inputs", "2", "--k", "10", "--alphas", "0.2,0.5",
             "--no-probe", "--batch", "8"])
args = data_args + settings + ["--edit", "Smiling+", "--out", str(out)]
if weights:
    args += ["--weights", weights]
assert alpha_sweep.main(args) == 0"""),
    new_code_cell("""import json
from IPython.display import Image, display
display(Image(filename=str(out / "grid.png")))
results = json.loads((out / "results.json").read_text())
print(results["weights"])
for m in results["metrics_per_alpha"]:
    print(m)"""),
]


def main() -> None:
    nb = new_notebook(cells=CELLS, metadata={"accelerator": "TPU", "colab": {"provenance": []},
                                             "kernelspec": {"name": "python3", "display_name": "Python 3"}})
    path = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "alpha_sweep_colab.ipynb"
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
