"""The DFI sweep pipeline: inputs × edits × alphas, from neighbour sets to scored edits.

`run_sweep(config, data, weights, inputs)` picks each input's neighbours for each edit, forms the
attribute vectors (cached on disk), inverts φ(x) + α·w for every input × edit × alpha in one compiled,
vmapped engine call, post-processes, and scores the results (pixel and VGG distance to the input; an
attribute probe's score). It prints nothing: progress goes to a callback, files are the caller's.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np

from dfijax import config, losses, mesh
from dfijax import images as im
from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.dfi import align, chainer, features, postprocess, specs, vectors
from dfijax.dfi import neighbours as nb
from dfijax.dfi.probe import ProbeConfig, train_probe
from dfijax.vgg import POOL_ROUNDINGS, VGG19, layer_index
from dfijax.weights import VGGWeights, with_caffe_mean

if TYPE_CHECKING:
    from dfijax.dfi.probe import Probe, ProbeConfig

# progress(stage, done, total, info): stage is "features", "solve" or "probe"; done counts up to total.
Progress = Callable[[str, int, int, dict], None]


# The official code's solve box, (low, high) on its input: BGR 0–255 minus this mean (RGB order here).
CAFFE_BOUNDS = (-128.0, 162.0)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
# "attributes": select_neighbours with metric/rank/same_gender; "official": the official DFI code's
# selection (LFW: demo1's make_manifolds on binarised scores; binary datasets: celeba_attributes.select);
# "chainer": chainer-dfi's (dfi.chainer.select_neighbours).
NEIGHBOUR_RULES = ("attributes", "official", "chainer")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a sweep's result (`presets` holds the references' settings).

    Objective: Σ_taps d(φ(z), φ(x) + α·w) + tv_weight · TV(z). Solve: L-BFGS from the input (or noise)
    on an optional pixel box; bounded results are clipped to [0, 1] as the official code does.
    Neighbours, post-processing and chainer-dfi's procedures (dfi.chainer) as each field says.
    """

    RENAMED: ClassVar[dict[str, str]] = {"tv": "tv_weight"}

    edits: Annotated[tuple[str, ...], config.flag("edit"), config.comma_list(str, ";", "SPEC;SPEC")] = ("Smiling+",)
    """attribute specs, e.g. 'Smiling+ Mouth_Open+' or 'Young-'; several edits in one call separated by ';',
    e.g. 'Smiling+;Eyeglasses+' (rows = input x edit)"""
    alphas: Annotated[tuple[float, ...], config.comma_list(float)] = (0.1, 0.2, 0.3, 0.4, 0.5)
    """comma-separated edit strengths"""
    k: Annotated[int, config.POSITIVE] = 100
    """neighbours in each of the target and source sets"""
    allow_fewer: bool = False
    """go on with fewer than K neighbours"""
    same_gender: bool = False
    """neighbours share the input's gender"""
    hold: Annotated[tuple[str, ...], config.comma_list(str)] = ()
    """attributes the neighbours share with the input besides gender, unless the edit changes them
    (official: Smiling, as demo2 holds gender and smile; not used by LFW's demo1 rule or chainer's)"""
    scaling: Literal["chainer", "paper", "beta", "none"] = "chainer"
    """attribute vector scaling: chainer-dfi's per-layer ‖φ_l(x)‖·w_l/‖w_l‖, the paper's, the official
    code's w/mean(w²) (beta), or none"""
    taps: Annotated[tuple[str, ...], config.comma_list(str)] = ("relu3_1", "relu4_1", "relu5_1")
    """comma-separated VGG-19 layers the objective compares"""
    pool_rounding: Literal[POOL_ROUNDINGS] = "floor"
    """VGG pools on odd sizes: floor, or ceil as Caffe and Chainer round (official, chainer)"""
    caffe_mean: Annotated[tuple[float, float, float] | None, config.comma_list(float)] = None
    """BGR mean Caffe-preprocessed weights subtract (None: the weights' own 103.939,116.779,123.68;
    chainer: 104,117,124); torchvision-preprocessed weights keep their own normalisation"""
    size: Annotated[int, config.Bounds(ge=32)] = 64
    """working size in pixels (dfijax preset 64, the references 200)"""
    iters: Annotated[int, config.POSITIVE] = 100
    """L-BFGS iterations (dfijax 100, official 500, chainer 1000)"""
    tv_weight: Annotated[float | None, config.NONNEG, config.flag(aliases=("--tv",))] = None
    """TV weight (None: 1e-3 with pretrained weights, 1e-6 with the random net, whose activations are
    ~100x smaller)"""
    tv_form: Literal[inv.TV_FORMS] = "beta"
    """TV form (see invert.FeatureLoss; tv-norm: the official code's, with its 1e-3 floor)"""
    reduction: Annotated[Literal[losses.REDUCTIONS], config.flag("loss-reduction")] = "sum"
    """½‖·‖² per tap (sum), the same ÷ number of taps (sum/taps, the official code), or mean of squares"""
    bounds: Literal["none", "lbfgsb", "project"] = "none"
    """pixel box during the solve (--box): true L-BFGS-B, or clipping after each step"""
    box: Literal["unit", "caffe"] = "unit"
    """the box: [0, 1], or the official code's (-128, 162) on the Caffe input (per channel)"""
    optimizer: Literal["engine", "scipy"] = "engine"
    """engine: every problem in one compiled, vmapped L-BFGS call (fast); scipy: scipy's L-BFGS-B itself,
    one problem at a time on the Caffe input's 0-255 scale, as the official code runs it (--history,
    --ftol, the box and --iters apply; its line search is scipy's)"""
    linesearch: Literal["none", "zoom", "backtracking", "hager-zhang"] | None = None
    """engine's L-BFGS line search (none: a fixed unit step)"""
    ftol: Annotated[float, config.NONNEG] = 0.0
    """stop at a relative decrease below this (official: scipy L-BFGS-B's factr·eps = 2.2e-9)"""
    history: Annotated[int, config.POSITIVE] = 10
    """L-BFGS history size"""
    init: Literal["input", "noise"] = "input"
    """start from the input, or from noise (chainer-dfi's uniform ±10/255 around the Caffe mean colour)"""
    alpha_mode: Literal["parallel", "warm"] = "parallel"
    """all alphas in one call, or in order warm-started from the previous one with half the iterations"""
    metric: Literal["auto", "hamming", "l2"] = "auto"
    """neighbour ranking distance (auto: Hamming for binary datasets, else L2)"""
    rank: Literal["other", "all"] = "other"
    """rank neighbours on the other attributes or on all"""
    neighbours: Literal[NEIGHBOUR_RULES] = "attributes"
    """neighbour rule: by attributes (metric, rank, same_gender), the official code's, or chainer-dfi's
    (CelebA: the include/exclude filter ranked by pixel distance; LFW: ±0.5 thresholds, L2)"""
    include_input: bool = False
    """the input may be its own neighbour (chainer-dfi)"""
    color_match: Literal["none", "channel", "global"] = "none"
    """match each output's colour to its input: per-channel mean/std, or one global mean/std (official)"""
    residual: bool = False
    """subtract what inverting φ(x) alone changes"""
    residual_mode: Literal["single", "nearest"] = "single"
    """single: subtract one reconstruction's residual; nearest (chainer-dfi): reconstruct from the edits'
    start, keep a snapshot every --residual-every of --residual-iters, subtract the nearest"""
    residual_iters: Annotated[int, config.POSITIVE] = 600
    """iterations of the residual reconstruction (chainer 600)"""
    residual_every: Annotated[int, config.POSITIVE] = 20
    """a residual snapshot every this many iterations (chainer 20)"""
    color_eps: Annotated[float, config.NONNEG] = 1e-6
    """epsilon of the per-channel colour match (chainer 0)"""
    output: Literal["image", "diff8"] = "image"
    """the edited image, or chainer-dfi's: the 8-bit difference (+128, clipped) added to the input"""
    crop: Literal["dataset", "chainer"] = "dataset"
    """the dataset's face crop, or chainer-dfi's boxes with PIL bilinear resize (CelebA/LFW folders)"""
    include: Annotated[tuple[str, ...], config.comma_list(str)] = ()
    """chainer neighbours: attributes the neighbours must share with the input (comma-separated)"""
    exclude: Annotated[tuple[str, ...], config.comma_list(str)] = ()
    """chainer neighbours: attributes left out of the filter (comma-separated)"""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """the network's dtype"""
    shard: bool = True
    """shard the solve's batch over all local devices"""
    batch: Annotated[int, config.POSITIVE] = 32
    """images per batch when averaging neighbour features"""
    feature_cache: bool = True
    """keep per-image neighbour features (float16, ~200 KB per image at 64 px, ~2 MB at 200 px) under
    ~/.cache/dfijax/features-*"""
    probe: bool = True
    """score the edits with the attribute probe (trained once, cached)"""
    probe_steps: Annotated[int, config.POSITIVE] = 300
    """probe training steps"""
    probe_train: Annotated[int, config.POSITIVE] = 2000
    """probe training images"""
    seed: int = 0
    """random seed"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if not self.edits or not all(e.strip() for e in self.edits):
            raise ValueError("give at least one edit, e.g. 'Smiling+'")
        if not self.alphas:
            raise ValueError("give at least one alpha, e.g. 0.4")
        for t in self.taps:
            layer_index(t)
        vectors.uses_normalized_features(self.scaling)  # validates the name
        _check_chainer_fields(self)

    def resolved_tv_weight(self, pretrained: bool) -> float:
        return self.tv_weight if self.tv_weight is not None else (1e-3 if pretrained else 1e-6)

    def network(self, weights: VGGWeights) -> VGGWeights:
        """The weights as the objective sees them (with caffe_mean when set and they are Caffe's)."""
        return with_caffe_mean(weights, self.caffe_mean)

    def feature_loss(self, pretrained: bool) -> inv.FeatureLoss:
        model = VGG19(dtype=jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32, pool_rounding=self.pool_rounding)
        return inv.FeatureLoss(
            model=model,
            taps=self.taps,
            reduction=self.reduction,
            tv_weight=self.resolved_tv_weight(pretrained),
            tv_form=self.tv_form,
        )

    def pixel_box(self) -> tuple[float, float] | tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The solve's pixel bounds in RGB [0, 1] terms: None, [0, 1], or per channel the official code's
        (−128, 162) box on its BGR 0–255 input minus the Caffe mean (deepmodels.py dfi_reconstruct)."""
        if self.bounds == "none":
            return None
        if self.box == "unit":
            return (0.0, 1.0)
        return tuple(tuple(float((v + m) / 255.0) for m in CAFFE_MEAN_RGB) for v in CAFFE_BOUNDS)

    def solver(self, iters: int | None = None) -> inv.SolverConfig:
        scipy = self.optimizer == "scipy"
        return inv.SolverConfig(
            maxiter=iters or self.iters,
            history_size=self.history,
            backend="scipy" if scipy else "optax" if self.bounds == "project" else "jaxopt",
            bounds=self.pixel_box(),
            linesearch=None if (scipy or self.linesearch == "none") else self.linesearch,
            ftol=self.ftol,
            patience=1 if self.ftol else 3,
            units=255.0 if scipy else 1.0,
        )


def _check_chainer_fields(c: SweepConfig) -> None:
    if c.residual_iters < c.residual_every:
        raise ValueError(f"need residual_every <= residual_iters, got {c.residual_every} and {c.residual_iters}")
    if not all(isinstance(n, str) and n.strip() for n in c.include + c.exclude):
        raise ValueError(f"include/exclude must be attribute names, got {c.include} and {c.exclude}")
    if set(c.include) & set(c.exclude):
        raise ValueError(f"attributes {sorted(set(c.include) & set(c.exclude))} are both included and excluded")
    if (c.include or c.exclude) and c.neighbours != "chainer":
        raise ValueError("include/exclude filter chainer-dfi's neighbours: set neighbours='chainer' too")
    if c.same_gender and c.neighbours == "chainer":
        raise ValueError("chainer neighbours ignore same_gender: include or exclude 'Male' instead")
    if c.hold and c.neighbours == "chainer":
        raise ValueError("chainer neighbours ignore hold: use include instead")
    if c.caffe_mean is not None and len(c.caffe_mean) != 3:
        raise ValueError(f"caffe_mean is three BGR values, e.g. 104,117,124; got {c.caffe_mean}")
    if c.optimizer == "scipy" and c.bounds == "project":
        raise ValueError("the scipy solver boxes the pixels itself (L-BFGS-B): use bounds 'lbfgsb' or 'none'")
    if c.optimizer == "scipy" and c.linesearch not in (None, "none"):
        raise ValueError("the scipy solver searches its own Wolfe step: drop --linesearch")


@dataclasses.dataclass(frozen=True)
class SweepInputs:
    """The images to edit, [N, size, size, 3] in [0, 1], with their attributes [N, A] (NaN: unknown),
    the dataset index each must not take as a neighbour (None for outside photos) and a label each."""

    images: np.ndarray
    queries: np.ndarray
    excludes: tuple[int | None, ...]
    labels: tuple[str, ...]


def dataset_inputs(
    data: FaceDataset, edit: str, size: int, count: int = 3, indices: Sequence[int] | None = None
) -> SweepInputs:
    """Dataset faces to edit: the given indices, or the first `count` that lack the edit."""
    if indices is not None:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(data)]
        if bad:
            raise ValueError(f"indices {bad} out of range: the dataset has {len(data)} images")
    else:
        lacking = np.ones(len(data), bool)
        for i, sign in specs.parse_edit(edit, data.attr_names):
            lacking &= (data.attrs[:, i] < -0.5) if sign > 0 else (data.attrs[:, i] >= 0.5)
        idx = np.flatnonzero(lacking)[:count].tolist()
        if not idx:
            raise ValueError(f"no face in {data.name} lacks the edit {edit!r}")
    return SweepInputs(data.images(idx, size), data.attrs[idx], tuple(idx), tuple(data.ids[i] for i in idx))


@dataclasses.dataclass(frozen=True)
class PhotoCrops:
    """Own photos brought to the dataset's working crop: images [N, size, size, 3] in [0, 1];
    matrices [N, 2, 3] (photo pixels -> crop pixels, see dfijax.dfi.align); eyes [N, 2, 2] the
    photo's eye positions used (NaN where the photo was centre-cropped or padded instead)."""

    images: np.ndarray
    matrices: np.ndarray
    eyes: np.ndarray


def prepare_photos(
    photos: Sequence[np.ndarray],
    data: FaceDataset,
    size: int,
    eyes: Sequence[np.ndarray | str | None] | None = None,
    fit: str = "crop",
) -> PhotoCrops:
    """Photos [H_i, W_i, 3] in [0, 1] (any sizes) -> the dataset's size×size crop, never stretched.
    eyes[i]: [2, 2] (x, y) eye positions in photo i -> aligned to the dataset's eye template by a
    similarity transform; "auto" -> the same with eyes found by OpenCV's Haar cascades; None (or
    eyes None) -> centre-cropped to the square (fit="crop") or padded with edge pixels (fit="pad")."""

    eyes = [None] * len(photos) if eyes is None else list(eyes)
    if len(eyes) != len(photos):
        raise ValueError(f"{len(eyes)} eye pairs for {len(photos)} photos: give one per photo")
    out, mats, used = [], [], []
    for photo, e in zip(photos, eyes):
        photo = np.asarray(photo, np.float32)
        if e is None:
            m = align.fit_matrix(photo.shape[:2], (size, size), fit)
            out.append(im.resize_array(im.fit_aspect(photo, 1.0, fit), (size, size)))  # as load_image does
            used.append(np.full((2, 2), np.nan))
        else:
            e = align.detect_eyes(photo) if isinstance(e, str) else align.order_eyes(e)
            m = align.similarity_from_eyes(e, align.template_eyes(data, size))
            out.append(align.align(photo, m, (size, size)))
            used.append(e)
        mats.append(m)
    return PhotoCrops(np.clip(np.stack(out), 0, 1).astype(np.float32), np.stack(mats), np.stack(used))


def probe_config(config: SweepConfig) -> "ProbeConfig":
    """The attribute probe's settings for a sweep config (at most 64 px)."""

    return ProbeConfig(
        size=min(64, config.size), steps=config.probe_steps, n_train=config.probe_train, seed=config.seed
    )


def train_sweep_probe(
    config: SweepConfig,
    data: FaceDataset,
    cache_root: str | pathlib.Path | None = None,
    progress: Progress | None = None,
) -> tuple["Probe", bool]:
    """The attribute probe the sweep scores with, trained on first use and kept under cache_root/probe
    (None: not kept); and whether it came from that cache."""

    progress = progress or (lambda *a: None)
    pc = probe_config(config)
    root = pathlib.Path(cache_root) / "probe" if cache_root is not None else None
    return train_probe(data, pc, root, progress=lambda i, m: progress("probe", i, pc.steps, {}))


def photo_probe(
    config: SweepConfig,
    data: FaceDataset,
    cache_root: str | pathlib.Path | None = None,
    progress: Progress | None = None,
) -> "Probe":
    """The attribute probe the sweep scores with (same settings, so the same cached probe): a
    dfijax.dfi.probe.Probe, trained on first use."""
    return train_sweep_probe(config, data, cache_root, progress)[0]


def predict_photo_attrs(probe: "Probe", images: np.ndarray, data: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    """The probe's reading of photos [N, S, S, 3]: (values [N, A], probabilities [N, A]). A value is
    the dataset's mean attribute among its faces on the predicted side (p > 0.5 or not): ±1 for
    binary attributes, a typical score for continuous ones (LFW)."""
    probs = probe.scores(np.asarray(images, np.float32))
    a = np.asarray(data.attrs, np.float32)
    pos, neg = a > 0, a <= 0
    pos_mean = np.where(pos.any(0), np.nansum(np.where(pos, a, 0), 0) / np.maximum(pos.sum(0), 1), 1.0)
    neg_mean = np.where(neg.any(0), np.nansum(np.where(neg, a, 0), 0) / np.maximum(neg.sum(0), 1), -1.0)
    return np.where(probs > 0.5, pos_mean, neg_mean).astype(np.float32), probs


def wants_predicted_attrs(attrs: str) -> bool:
    """Whether an --attrs text asks for the probe's prediction ('auto' or 'auto,Male=-1')."""
    return "auto" in [t.strip().lower() for t in attrs.replace(" ", ",").split(",")]


def photo_inputs(
    images: np.ndarray, attrs: str, data: FaceDataset, labels: Sequence[str], predicted: np.ndarray | None = None
) -> SweepInputs:
    """Photos of one's own ([N, size, size, 3], aligned or face-centred, see `prepare_photos`) with
    attributes given by hand ('Young=1,Male=-1', names from the dataset; the rest unknown), or
    predicted: 'auto' takes predicted [N, A] (see `predict_photo_attrs`), 'auto,Male=-1' overrides
    single attributes of the prediction."""
    n = len(images)
    tokens = [t for t in attrs.replace(" ", ",").split(",") if t.strip()]
    auto = any(t.strip().lower() == "auto" for t in tokens)
    given = specs.parse_attrs(",".join(t for t in tokens if t.strip().lower() != "auto"), data.attr_names)
    if auto:
        if predicted is None:
            raise ValueError("--attrs auto needs the probe's predictions (predict_photo_attrs)")
        predicted = np.asarray(predicted, np.float32)
        if predicted.shape != (n, len(data.attr_names)):
            raise ValueError(f"predicted attributes have shape {predicted.shape}, expected {(n, len(data.attr_names))}")
        query = np.where(np.isnan(given)[None], predicted, given[None]).astype(np.float32)
    else:
        query = np.repeat(given[None], n, 0)
    return SweepInputs(np.asarray(images, np.float32), query, (None,) * n, tuple(labels))


@dataclasses.dataclass
class SweepResult:
    """edited: [R, A, H, W, 3] in [0, 1] for rows R = inputs × edits (input-major) and the config's
    alphas; inputs: [R, H, W, 3] (each row's input); rows: (input index, edit index) per row."""

    config: SweepConfig
    edited: np.ndarray
    inputs: np.ndarray
    rows: list[tuple[int, int]]
    labels: tuple[str, ...]
    neighbours: list[nb.Neighbours]
    final_loss: np.ndarray
    metrics_per_alpha: list[dict[str, float]]
    metrics_per_edit: dict[str, list[dict[str, float]]]
    probe: dict[str, Any] | None
    tv_weight: float
    vectors_from_cache: int
    seconds: dict[str, float]
    warnings: list[str]
    probe_model: Any = None  # the attribute probe (dfi.probe.Probe) that scored the edits

    def row_names(self) -> list[dict[str, str]]:
        return [{"input": self.labels[i], "edit": self.config.edits[e]} for i, e in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """The result's named values (JSON-ready): rows, neighbours, losses, metrics, probe, timings."""
        cfg = self.config
        neighbours = [
            {
                "target": n.target.tolist(),
                "source": n.source.tolist(),
                "target_available": n.n_target_available,
                "source_available": n.n_source_available,
            }
            for n in self.neighbours
        ]
        return {
            "edit": ";".join(cfg.edits),
            "edits": list(cfg.edits),
            "alphas": list(cfg.alphas),
            "inputs": list(self.labels),
            "rows": self.row_names(),
            "tv_weight": self.tv_weight,
            "neighbours": neighbours,
            "attribute_vectors_from_cache": self.vectors_from_cache,
            "seconds": self.seconds,
            "final_loss": self.final_loss.tolist(),
            "metrics_per_alpha": self.metrics_per_alpha,
            "metrics_per_edit": self.metrics_per_edit,
            "probe": self.probe,
            "warnings": self.warnings,
        }

    def metrics_table(self) -> dict[str, list]:
        """Per edit and alpha (mean over inputs): pixel RMSE and VGG feature distance to the input, and
        the probe's target attribute score when the probe ran: {"headers", "rows"}."""
        probe = self.probe is not None
        names = ["pixel_rmse_to_input", "vgg_feature_distance_to_input"] + ["target_attribute_score"] * probe
        headers = ["edit", "alpha", "pixel RMSE to input", "VGG feature distance to input"]
        return {
            "headers": headers + ["target attribute score (probe)"] * probe,
            "rows": [[e, m["alpha"], *(m[k] for k in names)] for e, ms in self.metrics_per_edit.items() for m in ms],
        }


def _metrics(pix: np.ndarray, feat: np.ndarray, score: np.ndarray | None, alphas, sel) -> list[dict[str, float]]:
    out = []
    for j, a in enumerate(alphas):
        m = {
            "alpha": a,
            "pixel_rmse_to_input": float(pix[sel, j].mean()),
            "vgg_feature_distance_to_input": float(feat[sel, j].mean()),
        }
        if score is not None:
            m["target_attribute_score"] = float(score[sel, j].mean())
        out.append(m)
    return out


def run_sweep(
    config: SweepConfig,
    data: FaceDataset,
    weights: VGGWeights,
    inputs: SweepInputs,
    *,
    mask: np.ndarray | None = None,
    cache_root: str | pathlib.Path | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Edit every input by every edit at every alpha. mask: [size, size] in [0, 1] (1 takes the edit).
    cache_root: folder for the attribute-vector, feature and probe caches (None: no caching)."""
    progress = progress or (lambda *a: None)
    t_start = time.perf_counter()
    edit_specs = [specs.parse_edit(e, data.attr_names) for e in config.edits]
    rows = [(i, e) for i in range(len(inputs.images)) for e in range(len(edit_specs))]
    warnings, sets = [], []
    official = config.neighbours == "official"
    ndata = chainer.reference_crop(data) if config.crop == "chainer" else data  # the neighbours' images
    binary = nb.binarize_scores(data.attrs, data.attr_names) if official and not data.binary else None
    for i, e in rows:
        exclude = None if config.include_input else inputs.excludes[i]
        if official:
            n = _official_neighbours(config, data, inputs, i, edit_specs[e], exclude, binary)
        elif config.neighbours == "chainer":
            n = chainer.select_neighbours(
                ndata,
                inputs.images[i],
                inputs.queries[i],
                edit_specs[e],
                config.k,
                include=config.include,
                exclude_attrs=config.exclude,
                exclude=exclude,
                allow_fewer=config.allow_fewer,
                batch=config.batch,
            )
        else:
            n = attribute_neighbours(config, data, inputs.queries[i], edit_specs[e], exclude)
        if min(len(n.target), len(n.source)) < config.k:
            warnings.append(f"only {len(n.target)} target / {len(n.source)} source neighbours (K = {config.k})")
        sets.append(n)

    if config.caffe_mean is not None and weights.meta.get("preprocess") != "caffe":
        warnings.append(f"caffe_mean {config.caffe_mean} not applied: these weights use torchvision preprocessing")
    weights = config.network(weights)
    loss = config.feature_loss(weights.pretrained)
    root = pathlib.Path(cache_root) if cache_root is not None else None
    t0 = time.perf_counter()
    ws, cached = attribute_vectors(config, loss, weights, ndata, sets, root, progress)
    t_features = time.perf_counter() - t0

    w = {t: jnp.asarray(np.stack([wi[t] for wi in ws])) for t in config.taps}
    alphas = list(config.alphas)
    single = config.residual and config.residual_mode == "single"
    run_alphas = ([0.0] if single else []) + alphas
    x = jnp.asarray(inputs.images[[i for i, _ in rows]], jnp.float32)
    t0 = time.perf_counter()
    edited, final_loss = solve_alphas(config, loss, weights.variables, x, w, run_alphas, progress)
    if config.residual and not single:  # chainer-dfi: snapshots of the unedited reconstruction from the same start
        snaps = chainer.reconstruction_snapshots(
            loss,
            weights.variables,
            x,
            initial_images(config, x),
            config.solver(config.residual_iters),
            config.residual_every,
            shard=config.shard and mesh.local_device_count() > 1,
            progress=lambda k: progress("residual", k, config.residual_iters, {}),
        )
    t_edit = time.perf_counter() - t0
    if single:
        recon, edited = edited[:, :1], edited[:, 1:]
        edited = postprocess.subtract_residual(edited, recon, x[:, None])
    edited = _match_colors(config, edited, x)
    if config.residual and not single:
        edited = nearest_residual_correction(config, edited, snaps, x)
    if mask is not None:
        edited = postprocess.mask_blend(edited, x[:, None], jnp.asarray(mask))
    if config.output == "diff8":
        edited = diff8_images(edited, x)
    edited = np.clip(np.asarray(edited), 0, 1)

    b, a = len(rows), len(alphas)
    flat = jnp.asarray(edited.reshape((b * a,) + edited.shape[2:]))
    ref = jnp.repeat(x, a, axis=0)
    pix = np.sqrt(np.mean((np.asarray(flat) - np.asarray(ref)) ** 2, axis=(1, 2, 3))).reshape(b, a)
    feat = features.feature_distance(loss, weights.variables, flat, ref).reshape(b, a)
    score, probe_info, probe_model = None, None, None
    if config.probe:
        score, probe_info, probe_model = _probe_scores(
            config, data, edit_specs, rows, np.asarray(x), np.asarray(flat), b, a, root, progress
        )
    edit_of_row = np.array([e for _, e in rows])
    per_alpha = _metrics(pix, feat, score, alphas, slice(None))
    per_edit = {name: _metrics(pix, feat, score, alphas, edit_of_row == e) for e, name in enumerate(config.edits)}
    return SweepResult(
        config,
        edited,
        np.asarray(x),
        rows,
        inputs.labels,
        sets,
        final_loss,
        per_alpha,
        per_edit,
        probe_info,
        loss.tv_weight,
        cached,
        {"neighbour_features": t_features, "edit_including_compile": t_edit, "total": time.perf_counter() - t_start},
        warnings,
        probe_model,
    )


def _held(config: SweepConfig, data: FaceDataset, spec: specs.Spec) -> list[int]:
    """The attributes neighbours share with the input: the gender (same_gender, where the data has one),
    then `hold`'s that the data has and the edit leaves alone."""
    held = [data.attr_index(data.gender)] if (config.same_gender and data.gender) else []
    edited = {i for i, _ in spec}
    held += [data.attr_index(n) for n in config.hold if n in data.attr_names]
    return [j for j in dict.fromkeys(held) if j not in edited]


def attribute_neighbours(
    config: SweepConfig, data: FaceDataset, query: np.ndarray, spec: specs.Spec, exclude: int | None
) -> nb.Neighbours:
    """The "attributes" rule: the K faces nearest the query [A] in the attributes (config.metric, auto:
    Hamming for binary datasets; config.rank; same_gender) with and without the edit, never `exclude`."""
    metric = ("hamming" if data.binary else "l2") if config.metric == "auto" else config.metric
    return nb.select_neighbours(
        data.attrs,
        query,
        spec,
        config.k,
        metric=metric,
        same=_held(config, data, spec),
        exclude=exclude,
        allow_fewer=config.allow_fewer,
        rank=config.rank,
    )


def attribute_vectors(
    config: SweepConfig,
    loss: inv.FeatureLoss,
    weights: VGGWeights,
    data: FaceDataset,
    sets: Sequence[nb.Neighbours],
    cache_root: pathlib.Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, np.ndarray]], int]:
    """The attribute vector ({tap: array}) of each neighbour set, and how many came from the cache.
    cache_root: the vectors (attrvec/) and, with config.feature_cache, each neighbour image's features
    (features-*/) are kept there (None: nothing kept). Reports stage "features" in neighbour images."""
    progress = progress or (lambda *a: None)
    vec_cache = cache_root / "attrvec" if cache_root else None
    fcache = (
        features.feature_cache_dir(cache_root / "features", loss, weights.meta, data, config.size)
        if cache_root and config.feature_cache
        else None
    )
    total = sum(len(n.target) + len(n.source) for n in sets)
    done, ws, cached = 0, [], 0

    def count(k):
        nonlocal done
        done += k
        progress("features", done, total, {})

    for n in sets:
        w, hit = features.attribute_vector_cached(
            loss,
            weights.variables,
            weights.meta,
            data,
            n,
            config.size,
            config.scaling,
            vec_cache,
            config.batch,
            count,
            fcache,
        )
        if hit:
            count(len(n.target) + len(n.source))
        ws.append(w)
        cached += hit
    return ws, cached


def nearest_residual_correction(config: SweepConfig, edited: Any, snapshots: np.ndarray, x: Any) -> np.ndarray:
    """train.py's correction: colour-matched edits [B, A, H, W, 3] minus, each, the nearest of the
    colour-matched reconstruction snapshots [S, B, H, W, 3] less the input x [B, H, W, 3]."""
    x = jnp.asarray(x, jnp.float32)
    snaps = jnp.asarray(np.swapaxes(np.asarray(snapshots, np.float32), 0, 1))  # [B, S, H, W, 3]
    residuals = np.asarray(_match_colors(config, snaps, x)) - np.asarray(x)[:, None]
    edited = np.asarray(edited, np.float32)
    return np.stack([chainer.subtract_nearest_residual(edited[r], x[r], residuals[r]) for r in range(len(x))])


def diff8_images(edited: Any, x: Any) -> np.ndarray:
    """chainer-dfi's output for edits [B, A, H, W, 3] of inputs x [B, H, W, 3]: each 8-bit difference
    added to the 8-bit input (`chainer.diff8_output`), back in [0, 1]."""
    x8, xs, edited = chainer.to_uint8(x), np.asarray(x, np.float32), np.asarray(edited, np.float32)
    out = [[chainer.diff8_output(x8[r], (z - xs[r]) * 255.0) for z in edited[r]] for r in range(len(xs))]
    return np.asarray(out, np.float32) / np.float32(255.0)


def _match_colors(config: SweepConfig, edited: jax.Array, x: jax.Array) -> jax.Array:
    """config's colour match of edited [B, A, H, W, 3] to each row's input x [B, H, W, 3]."""
    if config.color_match == "global":
        return jax.vmap(postprocess.match_color_global)(edited, x)
    if config.color_match == "channel":
        eps = config.color_eps
        return jax.vmap(lambda e, r: jax.vmap(lambda z: postprocess.match_color(z, r, eps=eps))(e))(edited, x)
    return edited


def _official_neighbours(
    config: SweepConfig,
    data: FaceDataset,
    inputs: SweepInputs,
    i: int,
    spec: tuple[tuple[int, int], ...],
    exclude: int | None,
    binary: nb.BinaryAttributes | None,
) -> nb.Neighbours:
    """The official code's rule: binary datasets as celeba_attributes.select (the held attributes, gender
    and `hold`, constrained to the input's side as demo2.py:L99-112 does), continuous (LFW) scores as
    demo1's make_manifolds."""
    if binary is None:
        held = _held(config, data, spec)
        return nb.official_binary_neighbours(
            data.attrs, inputs.queries[i], spec, config.k, same=held, exclude=exclude, allow_fewer=config.allow_fewer
        )
    own = inputs.excludes[i]
    query = binary.members[own] if own is not None else binary.member(inputs.queries[i], data.attr_names)
    named = [(data.attr_names[j], sign) for j, sign in spec]
    return nb.official_lfw_neighbours(binary, query, named, config.k, exclude=exclude, allow_fewer=config.allow_fewer)


def initial_images(config: SweepConfig, images: jax.Array) -> jax.Array:
    """Where the solve starts, [B, H, W, 3]: the inputs, or chainer-dfi's noise (`noise_start`)
    seeded by config.seed."""
    if config.init == "input":
        return images
    return noise_start(jax.random.key(config.seed), images.shape)


def noise_start(key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """chainer-dfi's noise start, [..., H, W, 3] in [0, 1] terms: uniform ±10 (0-255 scale) around the
    Caffe mean colour (RGB 124, 117, 104)."""
    noise = jax.random.uniform(key, tuple(shape), jnp.float32, -10.0, 10.0)
    mean = jnp.array([124.0, 117.0, 104.0]).reshape((1,) * (noise.ndim - 1) + (3,))
    return (mean + noise) / 255.0


def _mean_started(losses: jax.Array) -> float:
    """The mean loss of the problems that have started (the scipy solver reports NaN for the others), in
    jnp: losses may span several processes' devices (the dataset job)."""
    started = jnp.isfinite(losses)
    n = jnp.sum(started)
    return float(jnp.where(n > 0, jnp.sum(jnp.where(started, losses, 0.0)) / jnp.maximum(n, 1), jnp.nan))


def solve_alphas(
    config: SweepConfig,
    loss: inv.FeatureLoss,
    variables,
    x: jax.Array,
    w,
    alphas: Sequence[float],
    progress: Progress,
    *,
    x0: jax.Array | None = None,
    shard: bool | None = None,
    local: Callable[[jax.Array], np.ndarray] = np.asarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Invert φ(x) + α·w for B rows × A alphas. "parallel": one engine call for all; "warm": one call
    per alpha over all rows, each later alpha starting from the previous one's result with half the
    iterations. Bounded solves return images clipped to [0, 1] (and warm-start from them), as the
    official code's F_inverse does. Returns ([B, A, H, W, 3] images, [B, A] final losses).
    x0: the start (default `initial_images`); shard: split the rows over the local devices (default:
    config.shard, with several devices; False for rows already placed on a global mesh); local: a
    result as this process's rows in numpy (dist.local_batch for arrays on a global mesh)."""
    shard = (config.shard and mesh.local_device_count() > 1) if shard is None else shard
    x0 = initial_images(config, x) if x0 is None else x0
    clip = (lambda z: jnp.clip(z, 0.0, 1.0)) if config.bounds != "none" else (lambda z: z)

    def solve(start, al, iters, done, total, info):
        def report(k, losses):
            progress("solve", done + k, total, {"loss": _mean_started(losses), **info})

        out, r = vectors.edit(
            loss,
            variables,
            x,
            w,
            al,
            config.solver(iters),
            config.scaling,
            x0=start,
            check_every=5,
            shard=shard,
            progress=report,
        )
        return clip(out), r.final_loss.reshape(len(x), len(al))

    if config.alpha_mode == "parallel":
        out, final = solve(x0, alphas, config.iters, 0, config.iters, {})
        return local(out), local(final)
    iters = [config.iters] + [max(1, config.iters // 2)] * (len(alphas) - 1)
    done, outs, finals = 0, [], []
    for a, n in zip(alphas, iters):
        out, final = solve(x0, [a], n, done, sum(iters), {"alpha": a})
        x0 = out[:, 0]
        done += n
        outs.append(local(x0))
        finals.append(local(final)[:, 0])
    return np.stack(outs, 1), np.stack(finals, 1)


def _probe_scores(config, data, edit_specs, rows, x, flat, b, a, root, progress):
    probe, probe_cached = train_sweep_probe(config, data, root, progress)
    p_in = probe.scores(x)
    p_out = probe.scores(flat).reshape(b, a, -1)
    s_in = np.array([specs.target_score(p_in[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
    s_out = np.stack([specs.target_score(p_out[r], edit_specs[e]) for r, (_, e) in enumerate(rows)])
    info = {
        "input_target_attribute_score": float(s_in.mean()),
        "cached": probe_cached,
        "metrics": probe.metrics,
        "config": dataclasses.asdict(probe_config(config)),
    }
    return s_out, info, probe
