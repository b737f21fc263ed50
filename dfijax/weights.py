"""VGG-19 weights: convert the standard files into one format, load it, or build a seeded random net.

The converted format is a safetensors file: tensors `conv{b}_{l}.kernel` ([3, 3, Cin, Cout], HWIO) and
`conv{b}_{l}.bias`, and string metadata: `format`, `source_format`, `source_name`, `source_sha256`,
`preprocess` ("torchvision" or "caffe") and `pretrained` ("true"/"false").

Sources read (see REFERENCE in the README):
  torchvision_pth  vgg19-dcbb9e9d.pth, OIHW, keys features.N.{weight,bias}; RGB mean/std.  Needs torch.
  gatys_pth        vgg_conv.pth, OIHW, keys conv{b}_{l}.{weight,bias}; Caffe BGR 0-255.     Needs torch.
  safetensors      either key layout above (torchvision's -> torchvision preprocessing, Gatys' -> caffe).
  keras_h5         vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, HWIO, groups block{b}_conv{l}; caffe.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping

import numpy as np

from dfijax.fetch import sha256_file
from dfijax.vgg import CONV_CHANNELS, CONV_NAMES, PREPROCESS_KINDS, preprocess_constants

FORMAT = "dfijax-vgg19/1"
SOURCE_FORMATS = ("torchvision_pth", "gatys_pth", "safetensors", "keras_h5", "random")

# torchvision's nn.Sequential indices of the 16 convolutions.
TORCHVISION_INDEX = dict(zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)))

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"
ENV_VAR = "DFIJAX_WEIGHTS"


class WeightsError(ValueError):
    """A weight file that cannot be used; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class VGGWeights:
    """Variables for `VGG19.apply` and what they are.

    variables: {"params": {conv: {"kernel", "bias"}}, "preprocess": {"matrix", "offset"}}.
    meta: the string metadata of the converted file.
    """

    variables: dict
    meta: dict[str, str]

    @property
    def pretrained(self) -> bool:
        return self.meta.get("pretrained") == "true"

    @property
    def description(self) -> str:
        m = self.meta
        if not self.pretrained:
            return (
                f"seeded random VGG-19 (seed {m.get('seed', '?')}), NOT pretrained: features carry no "
                "natural-image knowledge; run scripts/fetch_vgg19.py for real weights"
            )
        return f"pretrained VGG-19 from {m.get('source_name', '?')} ({m.get('source_format')}, {m.get('preprocess')} preprocessing)"


def _variables(params: Mapping[str, Mapping[str, np.ndarray]], preprocess: str) -> dict:
    return {
        "params": {k: {"kernel": np.asarray(v["kernel"], np.float32), "bias": np.asarray(v["bias"], np.float32)}
                   for k, v in params.items()},
        "preprocess": preprocess_constants(preprocess),
    }


def _check_params(params: Mapping[str, Mapping[str, np.ndarray]], source: str) -> None:
    missing = [n for n in CONV_NAMES if n not in params]
    if missing:
        raise WeightsError(f"{source}: missing VGG-19 layers {missing}; is this a VGG-19 (not VGG-16) file?")
    for name in CONV_NAMES:
        cin, cout = CONV_CHANNELS[name]
        k, b = params[name]["kernel"], params[name]["bias"]
        if tuple(k.shape) != (3, 3, cin, cout) or tuple(b.shape) != (cout,):
            raise WeightsError(
                f"{source}: layer {name} has kernel {tuple(k.shape)} / bias {tuple(b.shape)}, "
                f"expected (3, 3, {cin}, {cout}) / ({cout},); not a standard VGG-19 file"
            )


def random_params(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Seeded random ("untrained") VGG-19 convolutions, He-normal (fan-out) like torchvision's init.

    Biases are small and non-zero so that layouts that drop or permute them are caught by tests.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name in CONV_NAMES:
        cin, cout = CONV_CHANNELS[name]
        std = np.sqrt(2.0 / (9 * cout))
        params[name] = {
            "kernel": (rng.standard_normal((3, 3, cin, cout)) * std).astype(np.float32),
            "bias": (rng.standard_normal(cout) * 0.01).astype(np.float32),
        }
    return params


def random_weights(seed: int = 0, preprocess: str = "torchvision") -> VGGWeights:
    """A seeded random VGG-19 that says so in its metadata (never passes for pretrained)."""
    meta = {"format": FORMAT, "source_format": "random", "source_name": f"random(seed={seed})",
            "source_sha256": "", "preprocess": preprocess, "pretrained": "false", "seed": str(seed)}
    return VGGWeights(_variables(random_params(seed), preprocess), meta)


# ---------------------------------------------------------------- readers (all return HWIO params)


def params_from_state_dict(sd: Mapping[str, Any], source: str) -> tuple[dict, str]:
    """Map a torch-style state dict (OIHW) to params; returns (params, layout) with layout
    "torchvision" (features.N.*) or "gatys" (conv{b}_{l}.*)."""
    keys = set(sd)
    if f"features.0.weight" in keys:
        layout, key = "torchvision", lambda n, p: f"features.{TORCHVISION_INDEX[n]}.{p}"
    elif "conv1_1.weight" in keys:
        layout, key = "gatys", lambda n, p: f"{n}.{p}"
    else:
        sample = sorted(keys)[:4]
        raise WeightsError(
            f"{source}: unrecognised key layout (first keys {sample}); expected torchvision "
            "'features.N.weight' or Gatys 'conv1_1.weight'"
        )
    params = {}
    for name in CONV_NAMES:
        try:
            w, b = np.asarray(sd[key(name, "weight")]), np.asarray(sd[key(name, "bias")])
        except KeyError as e:
            raise WeightsError(f"{source}: missing {e.args[0]} for {name}; is this a VGG-19 file?") from None
        if w.ndim != 4:
            raise WeightsError(f"{source}: {key(name, 'weight')} has shape {w.shape}, expected OIHW 4-d")
        params[name] = {"kernel": np.transpose(w, (2, 3, 1, 0)).astype(np.float32), "bias": b.astype(np.float32)}
    return params, layout


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A torch state dict as numpy arrays (loaded with weights_only=True: no code from the file runs)."""
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"reading {pathlib.Path(path).name} needs torch (pip install torch==2.13.0); or convert it "
            "once on a machine with torch, or use the safetensors/.h5 variant"
        ) from None
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise WeightsError(f"cannot read {path} as a PyTorch state dict: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(sd).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in sd.items() if hasattr(v, "detach")}


def read_safetensors_source(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
        return load_file(str(path)), meta
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"cannot read {path} as safetensors: {e}") from None


def read_keras_h5(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Keras VGG19 .h5 (groups block{b}_conv{l}, datasets *_W_1:0 / *_b_1:0 or kernel:0 / bias:0)."""
    import h5py

    try:
        f = h5py.File(str(path), "r")
    except OSError as e:
        raise WeightsError(f"cannot read {path} as HDF5: {e}") from None
    params = {}
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        for name in CONV_NAMES:
            b, l = name[4], name[6]
            group_name = f"block{b}_conv{l}"
            if group_name not in root:
                raise WeightsError(f"{path}: no group {group_name}; is this Keras' VGG19 (not VGG16) file?")
            datasets: list[tuple[str, np.ndarray]] = []
            root[group_name].visititems(
                lambda n, obj: datasets.append((n, np.asarray(obj))) if isinstance(obj, h5py.Dataset) else None
            )
            kernel = [a for n, a in datasets if a.ndim == 4]
            bias = [a for n, a in datasets if a.ndim == 1]
            if len(kernel) != 1 or len(bias) != 1:
                raise WeightsError(f"{path}: group {group_name} holds {[n for n, _ in datasets]}, expected one kernel and one bias")
            params[name] = {"kernel": kernel[0].astype(np.float32), "bias": bias[0].astype(np.float32)}
    return params


def detect_format(path: str | os.PathLike) -> str:
    suffix = pathlib.Path(path).suffix.lower()
    return {".pth": "pth", ".pt": "pth", ".h5": "keras_h5", ".hdf5": "keras_h5", ".safetensors": "safetensors"}.get(
        suffix, ""
    )


def read_source(path: str | os.PathLike, source_format: str | None = None, preprocess: str | None = None
                ) -> tuple[dict, str, str]:
    """Read any supported source file. Returns (params HWIO, source_format, preprocess)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} not found; run scripts/fetch_vgg19.py or pass the right path")
    fmt = source_format or detect_format(path)
    if fmt in ("pth", "torchvision_pth", "gatys_pth"):
        params, layout = params_from_state_dict(read_pth(path), str(path))
        fmt, default_pre = f"{layout}_pth", ("torchvision" if layout == "torchvision" else "caffe")
    elif fmt == "safetensors":
        tensors, meta = read_safetensors_source(path)
        if meta.get("format") == FORMAT:
            params = {n: {"kernel": tensors[f"{n}.kernel"], "bias": tensors[f"{n}.bias"]} for n in CONV_NAMES}
            default_pre = meta.get("preprocess", "torchvision")
        else:
            params, layout = params_from_state_dict(tensors, str(path))
            default_pre = "torchvision" if layout == "torchvision" else "caffe"
    elif fmt == "keras_h5":
        params, default_pre = read_keras_h5(path), "caffe"
    else:
        raise WeightsError(
            f"cannot tell the format of {path.name}; pass source_format as one of "
            "torchvision_pth, gatys_pth, safetensors, keras_h5"
        )
    _check_params(params, str(path))
    pre = preprocess or default_pre
    if pre not in PREPROCESS_KINDS:
        raise WeightsError(f"unknown preprocessing {pre!r}; use one of {PREPROCESS_KINDS}")
    return params, fmt, pre


def save_converted(path: str | os.PathLike, params: Mapping, meta: Mapping[str, str]) -> pathlib.Path:
    from safetensors.numpy import save_file

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name in CONV_NAMES:
        tensors[f"{name}.kernel"] = np.ascontiguousarray(params[name]["kernel"], np.float32)
        tensors[f"{name}.bias"] = np.ascontiguousarray(params[name]["bias"], np.float32)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    os.replace(tmp, path)
    return path


def convert_file(src: str | os.PathLike, dst: str | os.PathLike, source_format: str | None = None,
                 preprocess: str | None = None, pretrained: bool = True) -> dict[str, str]:
    """Convert a source weight file into the dfijax format at dst. Returns the metadata written."""
    params, fmt, pre = read_source(src, source_format, preprocess)
    meta = {"format": FORMAT, "source_format": fmt, "source_name": pathlib.Path(src).name,
            "source_sha256": sha256_file(src), "preprocess": pre, "pretrained": "true" if pretrained else "false"}
    save_converted(dst, params, meta)
    return meta


def load_converted(path: str | os.PathLike) -> VGGWeights:
    """Load a converted file (dfijax format)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} not found; run scripts/fetch_vgg19.py or scripts/convert_vgg19.py")
    tensors, meta = read_safetensors_source(path)
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a converted dfijax file; convert it with scripts/convert_vgg19.py {path}")
    params = {n: {"kernel": tensors[f"{n}.kernel"], "bias": tensors[f"{n}.bias"]} for n in CONV_NAMES}
    _check_params(params, str(path))
    return VGGWeights(_variables(params, meta["preprocess"]), meta)


def find_weights(search_dirs: tuple[pathlib.Path, ...] | None = None) -> pathlib.Path | None:
    """The converted file to use by default: $DFIJAX_WEIGHTS, else the first weights/vgg19*.safetensors."""
    env = os.environ.get(ENV_VAR)
    if env:
        return pathlib.Path(env)
    dirs = search_dirs if search_dirs is not None else (pathlib.Path.cwd() / "weights", DEFAULT_WEIGHTS_DIR)
    for d in dirs:
        found = sorted(pathlib.Path(d).glob("vgg19*.safetensors"))
        if found:
            return found[0]
    return None


def load_vgg19(path: str | os.PathLike | None = None, *, allow_random: bool = True, seed: int = 0) -> VGGWeights:
    """Load converted weights from `path` (or the default location); with none found and
    allow_random, a seeded random net whose `description` says it is not pretrained."""
    if path is None:
        path = find_weights()
        if path is None:
            if not allow_random:
                raise FileNotFoundError(
                    "no VGG-19 weights found (weights/vgg19*.safetensors or $DFIJAX_WEIGHTS); "
                    "run: python scripts/fetch_vgg19.py torchvision"
                )
            return random_weights(seed)
    path = pathlib.Path(path)
    if path.suffix.lower() != ".safetensors":
        raise WeightsError(f"{path.name} is a source file; convert it first: python scripts/convert_vgg19.py {path}")
    return load_converted(path)
