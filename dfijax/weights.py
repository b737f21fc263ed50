"""VGG-16 / VGG-19 weights: convert the standard files into one format, load it, or build a seeded
random net.

The converted format is a safetensors file: tensors `conv{b}_{l}.kernel` ([3, 3, Cin, Cout], HWIO) and
`conv{b}_{l}.bias`, and string metadata: `format`, `depth` ("16" or "19"), `source_format`,
`source_name`, `source_sha256`, `preprocess` ("torchvision" or "caffe") and `pretrained` ("true"/"false").
Files written before VGG-16 support (format dfijax-vgg19/1, no `depth`) load as VGG-19.

Sources read (docs/weights-and-data.md has the table); the depth is detected from the layers present:
  torchvision_pth  vgg19-dcbb9e9d.pth / vgg16-397923af.pth, OIHW, keys features.N.{weight,bias};
                   RGB mean/std.  Needs torch.
  gatys_pth        vgg_conv.pth, OIHW, keys conv{b}_{l}.{weight,bias}; Caffe BGR 0-255.  Needs torch.
  safetensors      either key layout above (torchvision's -> torchvision preprocessing, Gatys' -> caffe).
  keras_h5         vgg{16,19}_weights_tf_dim_ordering_tf_kernels_notop.h5, HWIO, groups block{b}_conv{l};
                   caffe.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping

import h5py
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from dfijax.fetch import sha256_file
from dfijax.vgg import DEPTHS, PREPROCESS_KINDS, VGG, conv_channels, conv_names, layers, preprocess_constants

FORMAT = "dfijax-vgg/2"
READ_FORMATS = (FORMAT, "dfijax-vgg19/1")  # the second: VGG-19-only files written before VGG-16 support
SOURCE_FORMATS = ("torchvision_pth", "gatys_pth", "safetensors", "keras_h5", "random")


def _torchvision_index(depth: int) -> dict[str, int]:
    # torchvision's nn.Sequential holds one module per tap (conv, ReLU, pool), in forward order.
    return {name: i for i, name in enumerate(layers(depth)) if name.startswith("conv")}


# torchvision's nn.Sequential indices of the convolutions (VGG-19: 0, 2, 5, ..., 34; VGG-16: 0, ..., 28).
TORCHVISION_INDICES = {d: _torchvision_index(d) for d in DEPTHS}
TORCHVISION_INDEX = TORCHVISION_INDICES[19]
FETCH_NAME = {16: "torchvision16", 19: "torchvision"}  # scripts/fetch_vgg19.py's name for the default file

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"
ENV_VAR = "DFIJAX_WEIGHTS"


class WeightsError(ValueError):
    """A weight file that cannot be used; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class VGGWeights:
    """Variables for `VGG(depth).apply` (`VGG19`, `VGG16`) and what they are.

    variables: {"params": {conv: {"kernel", "bias"}}, "preprocess": {"matrix", "offset"}}.
    meta: the string metadata of the converted file (`depth` "16" or "19").
    """

    variables: dict
    meta: dict[str, str]

    @property
    def pretrained(self) -> bool:
        return self.meta.get("pretrained") == "true"

    @property
    def depth(self) -> int:
        return int(self.meta.get("depth", "19"))

    def module(self, pooling: str = "max", dtype: Any = None, pool_rounding: str = "floor") -> VGG:
        """The VGG module these weights fit."""
        kw = {"dtype": dtype} if dtype is not None else {}
        return VGG(pooling=pooling, depth=self.depth, pool_rounding=pool_rounding, **kw)

    @property
    def description(self) -> str:
        m, net = self.meta, f"VGG-{self.depth}"
        if not self.pretrained:
            return (
                f"seeded random {net} (seed {m.get('seed', '?')}), NOT pretrained: features carry no "
                f"natural-image knowledge; run scripts/fetch_vgg19.py {FETCH_NAME[self.depth]} for real weights"
            )
        src = f"{m.get('source_name', '?')} ({m.get('source_format')}, {m.get('preprocess')} preprocessing)"
        return f"pretrained {net} from {src}"


def _variables(params: Mapping[str, Mapping[str, np.ndarray]], preprocess: str) -> dict:
    return {
        "params": {
            k: {"kernel": np.asarray(v["kernel"], np.float32), "bias": np.asarray(v["bias"], np.float32)}
            for k, v in params.items()
        },
        "preprocess": preprocess_constants(preprocess),
    }


def _depth_of_names(names: set[str]) -> int:
    """19 when any VGG-19-only convolution is there, else 16."""
    return 19 if names & {"conv3_4", "conv4_4", "conv5_4"} else 16


def _check_depth_wanted(found: int, depth: int | None, source: str) -> None:
    if depth is not None and found != depth:
        raise WeightsError(f"{source} holds VGG-{found} weights, expected VGG-{depth}; pass a VGG-{depth} file")


def _check_params(params: Mapping[str, Mapping[str, np.ndarray]], source: str, depth: int = 19) -> None:
    names = conv_names(depth)
    missing = [n for n in names if n not in params]
    if missing:
        raise WeightsError(f"{source}: missing VGG-{depth} layers {missing}; is this a complete VGG-{depth} file?")
    for name, (cin, cout) in conv_channels(depth).items():
        k, b = params[name]["kernel"], params[name]["bias"]
        if tuple(k.shape) != (3, 3, cin, cout) or tuple(b.shape) != (cout,):
            raise WeightsError(
                f"{source}: layer {name} has kernel {tuple(k.shape)} / bias {tuple(b.shape)}, "
                f"expected (3, 3, {cin}, {cout}) / ({cout},); not a standard VGG-{depth} file"
            )


def random_params(seed: int = 0, depth: int = 19) -> dict[str, dict[str, np.ndarray]]:
    """Seeded random ("untrained") VGG-`depth` convolutions, He-normal (fan-out) like torchvision's init.

    Biases are small and non-zero so that layouts that drop or permute them are caught by tests.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, (cin, cout) in conv_channels(depth).items():
        std = np.sqrt(2.0 / (9 * cout))
        params[name] = {
            "kernel": (rng.standard_normal((3, 3, cin, cout)) * std).astype(np.float32),
            "bias": (rng.standard_normal(cout) * 0.01).astype(np.float32),
        }
    return params


def random_weights(seed: int = 0, preprocess: str = "torchvision", depth: int = 19) -> VGGWeights:
    """A seeded random VGG-`depth` that says so in its metadata (never passes for pretrained)."""
    meta = {
        "format": FORMAT,
        "depth": str(depth),
        "source_format": "random",
        "source_name": f"random(seed={seed})",
        "source_sha256": "",
        "preprocess": preprocess,
        "pretrained": "false",
        "seed": str(seed),
    }
    return VGGWeights(_variables(random_params(seed, depth), preprocess), meta)


def with_caffe_mean(weights: VGGWeights, mean_bgr: tuple[float, float, float] | None) -> VGGWeights:
    """Caffe-preprocessed weights with another BGR mean subtracted from the 0-255 input (chainer-dfi's
    net.py:8 subtracts 104, 117, 124 where the Caffe model's mean is 103.939, 116.779, 123.68); recorded
    in the metadata (`caffe_mean`) so caches tell the two apart. None, or weights with torchvision
    preprocessing (whose normalisation is their own), come back unchanged."""
    if mean_bgr is None or weights.meta.get("preprocess") != "caffe":
        return weights
    mean = np.asarray(mean_bgr, np.float32)
    if mean.shape != (3,) or not np.all(np.isfinite(mean)):
        raise WeightsError(f"a Caffe mean is three finite BGR values, e.g. 104,117,124; got {mean_bgr!r}")
    variables = {**weights.variables, "preprocess": {**weights.variables["preprocess"], "offset": -mean}}
    return VGGWeights(variables, {**weights.meta, "caffe_mean": ",".join(f"{v:g}" for v in mean)})


# ---------------------------------------------------------------- readers (all return HWIO params)


def params_from_state_dict(sd: Mapping[str, Any], source: str, depth: int | None = None) -> tuple[dict, str]:
    """Map a torch-style state dict (OIHW) to params; returns (params, layout) with layout
    "torchvision" (features.N.*) or "gatys" (conv{b}_{l}.*). depth None: detected from the keys
    (torchvision: VGG-16 when the conv indices are exactly VGG-16's)."""
    keys = set(sd)
    if "features.0.weight" in keys:
        if depth is None:
            convs = {k for k in keys if k.startswith("features.") and k.endswith(".weight") and np.ndim(sd[k]) == 4}
            depth = 16 if convs == {f"features.{i}.weight" for i in TORCHVISION_INDICES[16].values()} else 19
        layout, key = "torchvision", lambda n, p: f"features.{TORCHVISION_INDICES[depth][n]}.{p}"
    elif "conv1_1.weight" in keys:
        if depth is None:
            depth = _depth_of_names({k.split(".")[0] for k in keys})
        layout, key = "gatys", lambda n, p: f"{n}.{p}"
    else:
        sample = sorted(keys)[:4]
        raise WeightsError(
            f"{source}: unrecognised key layout (first keys {sample}); expected torchvision "
            "'features.N.weight' or Gatys 'conv1_1.weight'"
        )
    params = {}
    for name in conv_names(depth):
        try:
            w, b = np.asarray(sd[key(name, "weight")]), np.asarray(sd[key(name, "bias")])
        except KeyError as e:
            raise WeightsError(f"{source}: missing {e.args[0]} for {name}; is this a VGG-{depth} file?") from None
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
        raise WeightsError(
            f"cannot read {path} as a PyTorch state dict: {type(e).__name__}: {str(e).splitlines()[0]}"
        ) from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(sd).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in sd.items() if hasattr(v, "detach")}


def read_safetensors_source(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
        return load_file(str(path)), meta
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"cannot read {path} as safetensors: {e}") from None


def read_keras_h5(path: str | os.PathLike, depth: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Keras VGG16/VGG19 .h5 (groups block{b}_conv{l}, datasets *_W_1:0 / *_b_1:0 or kernel:0 / bias:0);
    depth None: 19 when a block{3,4,5}_conv4 group is there, else 16."""

    try:
        f = h5py.File(str(path), "r")
    except OSError as e:
        raise WeightsError(f"cannot read {path} as HDF5: {e}") from None
    params = {}
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        if depth is None:
            depth = _depth_of_names({f"conv{g[5]}_{g[-1]}" for g in root if g.startswith("block") and "_conv" in g})
        for name in conv_names(depth):
            b, l = name[4], name[6]
            group_name = f"block{b}_conv{l}"
            if group_name not in root:
                raise WeightsError(f"{path}: no group {group_name}; is this Keras' VGG{depth} file?")
            datasets: list[tuple[str, np.ndarray]] = []
            root[group_name].visititems(
                lambda n, obj: datasets.append((n, np.asarray(obj))) if isinstance(obj, h5py.Dataset) else None
            )
            kernel = [a for n, a in datasets if a.ndim == 4]
            bias = [a for n, a in datasets if a.ndim == 1]
            if len(kernel) != 1 or len(bias) != 1:
                raise WeightsError(
                    f"{path}: group {group_name} holds {[n for n, _ in datasets]}, expected one kernel and one bias"
                )
            params[name] = {"kernel": kernel[0].astype(np.float32), "bias": bias[0].astype(np.float32)}
    return params


def detect_format(path: str | os.PathLike) -> str:
    suffix = pathlib.Path(path).suffix.lower()
    return {".pth": "pth", ".pt": "pth", ".h5": "keras_h5", ".hdf5": "keras_h5", ".safetensors": "safetensors"}.get(
        suffix, ""
    )


def _converted_params(tensors: Mapping[str, np.ndarray], meta: Mapping[str, str]) -> tuple[dict, int]:
    depth = int(meta["depth"]) if "depth" in meta else _depth_of_names({k.split(".")[0] for k in tensors})
    if depth not in DEPTHS:
        raise WeightsError(f"converted file says depth {depth}; only VGG-{DEPTHS[0]} and VGG-{DEPTHS[1]} are known")
    names = [n for n in conv_names(depth) if f"{n}.kernel" in tensors and f"{n}.bias" in tensors]
    return {n: {"kernel": tensors[f"{n}.kernel"], "bias": tensors[f"{n}.bias"]} for n in names}, depth


def params_depth(params: Mapping[str, Any]) -> int:
    """16 or 19, from the convolutions present."""
    return _depth_of_names(set(params))


def read_source(
    path: str | os.PathLike, source_format: str | None = None, preprocess: str | None = None, depth: int | None = None
) -> tuple[dict, str, str]:
    """Read any supported source file. Returns (params HWIO, source_format, preprocess); the net's
    depth is `params_depth(params)`. depth: require VGG-16 or VGG-19 (None: detect it)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} not found; run scripts/fetch_vgg19.py or pass the right path")
    fmt = source_format or detect_format(path)
    if fmt in ("pth", "torchvision_pth", "gatys_pth"):
        params, layout = params_from_state_dict(read_pth(path), str(path))
        fmt, default_pre = f"{layout}_pth", ("torchvision" if layout == "torchvision" else "caffe")
    elif fmt == "safetensors":
        tensors, meta = read_safetensors_source(path)
        if meta.get("format") in READ_FORMATS:
            params, _ = _converted_params(tensors, meta)
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
    found = params_depth(params)
    _check_params(params, str(path), found)
    _check_depth_wanted(found, depth, path.name)
    pre = preprocess or default_pre
    if pre not in PREPROCESS_KINDS:
        raise WeightsError(f"unknown preprocessing {pre!r}; use one of {PREPROCESS_KINDS}")
    return params, fmt, pre


def save_converted(path: str | os.PathLike, params: Mapping, meta: Mapping[str, str]) -> pathlib.Path:
    """Write params (a VGG-16 or VGG-19) and meta; `format` and `depth` are filled in when absent."""

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    depth = params_depth(params)
    tensors = {}
    for name in conv_names(depth):
        tensors[f"{name}.kernel"] = np.ascontiguousarray(params[name]["kernel"], np.float32)
        tensors[f"{name}.bias"] = np.ascontiguousarray(params[name]["bias"], np.float32)
    meta = {"format": FORMAT, **{k: str(v) for k, v in meta.items()}, "depth": str(depth)}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def default_converted_name(src: str | os.PathLike, depth: int) -> str:
    """vgg{depth}_<stem>.safetensors, or <stem>.safetensors when the stem already starts vgg{depth}
    (find_weights looks for weights/vgg{depth}*.safetensors)."""
    stem = pathlib.Path(src).stem
    return f"{stem if stem.startswith(f'vgg{depth}') else f'vgg{depth}_{stem}'}.safetensors"


def convert_params(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    params: Mapping,
    source_format: str,
    preprocess: str,
    pretrained: bool = True,
) -> dict[str, str]:
    """Write params read from src (see read_source) to dst. Returns the metadata written."""
    meta = {
        "format": FORMAT,
        "depth": str(params_depth(params)),
        "source_format": source_format,
        "source_name": pathlib.Path(src).name,
        "source_sha256": sha256_file(src),
        "preprocess": preprocess,
        "pretrained": "true" if pretrained else "false",
    }
    save_converted(dst, params, meta)
    return meta


def convert_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    source_format: str | None = None,
    preprocess: str | None = None,
    pretrained: bool = True,
    depth: int | None = None,
) -> dict[str, str]:
    """Convert a source weight file (VGG-16 or VGG-19, detected; or required by depth) into the
    dfijax format at dst. Returns the metadata written."""
    params, fmt, pre = read_source(src, source_format, preprocess, depth)
    return convert_params(src, dst, params, fmt, pre, pretrained)


def converted_depth(path: str | os.PathLike) -> int | None:
    """The depth a converted file declares (reads only its header); None if it is not one."""

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta, keys = dict(f.metadata() or {}), set(f.keys())
    except Exception:  # missing, unreadable or not safetensors: the caller falls back
        return None
    if meta.get("format") not in READ_FORMATS:
        return None
    return int(meta["depth"]) if "depth" in meta else _depth_of_names({k.split(".")[0] for k in keys})


def load_converted(path: str | os.PathLike) -> VGGWeights:
    """Load a converted file (dfijax format, VGG-16 or VGG-19)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} not found; run scripts/fetch_vgg19.py or scripts/convert_vgg19.py")
    tensors, meta = read_safetensors_source(path)
    if meta.get("format") not in READ_FORMATS:
        raise WeightsError(f"{path} is not a converted dfijax file; convert it with scripts/convert_vgg19.py {path}")
    params, depth = _converted_params(tensors, meta)
    _check_params(params, str(path), depth)
    return VGGWeights(_variables(params, meta["preprocess"]), {**meta, "depth": str(depth)})


def find_weights(search_dirs: tuple[pathlib.Path, ...] | None = None, depth: int = 19) -> pathlib.Path | None:
    """The converted file to use by default: $DFIJAX_WEIGHTS, else the first weights/vgg{depth}*.safetensors.

    For VGG-19 (the project's default net) $DFIJAX_WEIGHTS is always taken; for VGG-16 only when
    it is a converted VGG-16 file."""
    env = os.environ.get(ENV_VAR)
    if env and (depth == 19 or converted_depth(env) == depth):
        return pathlib.Path(env)
    dirs = search_dirs if search_dirs is not None else (pathlib.Path.cwd() / "weights", DEFAULT_WEIGHTS_DIR)
    for d in dirs:
        found = sorted(pathlib.Path(d).glob(f"vgg{depth}*.safetensors"))
        if found:
            return found[0]
    return None


def load_vgg(
    path: str | os.PathLike | None = None, *, depth: int | None = None, allow_random: bool = True, seed: int = 0
) -> VGGWeights:
    """Load converted weights from `path` (its depth read from the file; with `depth` given, a file of
    the other depth is an error) or from the default location for VGG-`depth` (19 when None); with
    none found and allow_random, a seeded random VGG-`depth` whose `description` says it is not
    pretrained."""
    if path is None:
        d = 19 if depth is None else depth
        if d not in DEPTHS:
            raise WeightsError(f"VGG depth must be one of {DEPTHS}, got {d!r}")
        path = find_weights(depth=d)
        if path is None:
            if not allow_random:
                raise FileNotFoundError(
                    f"no VGG-{d} weights found (weights/vgg{d}*.safetensors or $DFIJAX_WEIGHTS); "
                    f"run: python scripts/fetch_vgg19.py {FETCH_NAME[d]}"
                )
            return random_weights(seed, depth=d)
    path = pathlib.Path(path)
    if path.suffix.lower() != ".safetensors":
        raise WeightsError(f"{path.name} is a source file; convert it first: python scripts/convert_vgg19.py {path}")
    w = load_converted(path)
    _check_depth_wanted(w.depth, depth, path.name)
    return w


def load_vgg19(path: str | os.PathLike | None = None, *, allow_random: bool = True, seed: int = 0) -> VGGWeights:
    """Load converted VGG-19 weights from `path` (or the default location); with none found and
    allow_random, a seeded random net whose `description` says it is not pretrained. A VGG-16 file
    is a clear error (use load_vgg for either)."""
    return load_vgg(path, depth=19, allow_random=allow_random, seed=seed)
