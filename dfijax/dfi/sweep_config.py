"""The DFI sweep's settings (`SweepConfig`), grouped as the method's steps: which neighbours
(`Neighbours`), the objective (`Objective`), its solve (`Solve`), the post-processing (`Finish`) and the
attribute probe (`Probe`). Every field carries its type, bounds and help; the groups are flat on the
command line (each flag keeps its own name) and `presets` holds the references' instances."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

import jax.numpy as jnp

from dfijax import config, losses
from dfijax import invert as inv
from dfijax.dfi import vectors
from dfijax.vgg import POOL_ROUNDINGS, VGG19, layer_index
from dfijax.weights import VGGWeights, with_caffe_mean

# The official code's solve box, (low, high) on its input: BGR 0–255 minus this mean (RGB order here).
CAFFE_BOUNDS = (-128.0, 162.0)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
# "attributes": select_neighbours with metric/rank/same_gender; "official": the official DFI code's
# selection (LFW: demo1's make_manifolds on binarised scores; binary datasets: celeba_attributes.select);
# "chainer": chainer-dfi's (dfi.chainer.select_neighbours).
NEIGHBOUR_RULES = ("attributes", "official", "chainer")
OWN_PHOTO_PIPELINES = ("crop", "full")


@dataclasses.dataclass(frozen=True)
class Neighbours:
    """Which K dataset faces form the target (with the edit) and source (without) sets."""

    rule: Annotated[Literal[NEIGHBOUR_RULES], config.flag("neighbours")] = "attributes"
    """neighbour rule: by attributes (metric, rank, same_gender), the official code's, or chainer-dfi's
    (CelebA: the include/exclude filter ranked by pixel distance; LFW: ±0.5 thresholds, L2)"""
    k: Annotated[int, config.POSITIVE] = 100
    """neighbours in each of the target and source sets"""
    allow_fewer: bool = False
    """go on with fewer than K neighbours"""
    same_gender: bool = False
    """neighbours share the input's gender"""
    hold: Annotated[tuple[str, ...], config.comma_list(str)] = ()
    """attributes the neighbours share with the input besides gender, unless the edit changes them
    (official: Smiling, as demo2 holds gender and smile; not used by LFW's demo1 rule or chainer's)"""
    metric: Literal["auto", "hamming", "l2"] = "auto"
    """neighbour ranking distance (auto: Hamming for binary datasets, else L2)"""
    rank: Literal["other", "all"] = "other"
    """rank neighbours on the other attributes or on all"""
    include_input: bool = False
    """the input may be its own neighbour (chainer-dfi)"""
    include: Annotated[tuple[str, ...], config.comma_list(str)] = ()
    """chainer neighbours: attributes the neighbours must share with the input (comma-separated)"""
    exclude: Annotated[tuple[str, ...], config.comma_list(str)] = ()
    """chainer neighbours: attributes left out of the filter (comma-separated)"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if not all(isinstance(n, str) and n.strip() for n in self.include + self.exclude):
            raise ValueError(f"include/exclude must be attribute names, got {self.include} and {self.exclude}")
        if both := sorted(set(self.include) & set(self.exclude)):
            raise ValueError(f"attributes {both} are both included and excluded")
        if (self.include or self.exclude) and self.rule != "chainer":
            raise ValueError("include/exclude filter chainer-dfi's neighbours: set neighbours='chainer' too")
        if self.same_gender and self.rule == "chainer":
            raise ValueError("chainer neighbours ignore same_gender: include or exclude 'Male' instead")
        if self.hold and self.rule == "chainer":
            raise ValueError("chainer neighbours ignore hold: use include instead")


@dataclasses.dataclass(frozen=True)
class Objective:
    """Σ_taps d(φ(z), φ(x) + α·w) + tv_weight · TV(z): the network, the taps, the vector's scaling."""

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
    tv_weight: Annotated[float | None, config.NONNEG, config.flag(aliases=("--tv",))] = None
    """TV weight (None: 1e-3 with pretrained weights, 1e-6 with the random net, whose activations are
    ~100x smaller)"""
    tv_form: Literal[inv.TV_FORMS] = "beta"
    """TV form (see invert.FeatureLoss; tv-norm: the official code's, with its 1e-3 floor)"""
    reduction: Annotated[Literal[losses.REDUCTIONS], config.flag("loss-reduction")] = "sum"
    """½‖·‖² per tap (sum), the same ÷ number of taps (sum/taps, the official code), or mean of squares"""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """the network's dtype"""

    def __post_init__(self):
        config.freeze_tuples(self)
        if self.caffe_mean is not None and len(self.caffe_mean) != 3:
            raise ValueError(f"caffe_mean is three BGR values, e.g. 104,117,124; got {self.caffe_mean}")
        config.check(self)
        for t in self.taps:
            layer_index(t)
        vectors.uses_normalized_features(self.scaling)  # validates the name

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


@dataclasses.dataclass(frozen=True)
class Solve:
    """The L-BFGS inversion: from the input (or noise), on an optional pixel box; bounded results are
    clipped to [0, 1] as the official code does."""

    iters: Annotated[int, config.POSITIVE] = 100
    """L-BFGS iterations (dfijax 100, official 500, chainer 1000)"""
    optimizer: Literal["engine", "scipy"] = "engine"
    """engine: every problem in one compiled, vmapped L-BFGS call (fast); scipy: scipy's L-BFGS-B itself,
    one problem at a time on the Caffe input's 0-255 scale, as the official code runs it (--history,
    --ftol, the box and --iters apply; its line search is scipy's)"""
    bounds: Literal["none", "lbfgsb", "project"] = "none"
    """pixel box during the solve (--box): true L-BFGS-B, or clipping after each step"""
    box: Literal["unit", "caffe"] = "unit"
    """the box: [0, 1], or the official code's (-128, 162) on the Caffe input (per channel)"""
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
    shard: bool = True
    """shard the solve's batch over all local devices"""

    def __post_init__(self):
        config.check(self)
        if self.optimizer == "scipy" and self.bounds == "project":
            raise ValueError("the scipy solver boxes the pixels itself (L-BFGS-B): use bounds 'lbfgsb' or 'none'")
        if self.optimizer == "scipy" and self.linesearch not in (None, "none"):
            raise ValueError("the scipy solver searches its own Wolfe step: drop --linesearch")

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


@dataclasses.dataclass(frozen=True)
class Finish:
    """What is done to the solved images: chainer-dfi's residual correction, a colour match to the input,
    the output format."""

    residual: bool = False
    """subtract what inverting φ(x) alone changes"""
    residual_mode: Literal["single", "nearest"] = "single"
    """single: subtract one reconstruction's residual; nearest (chainer-dfi): reconstruct from the edits'
    start, keep a snapshot every --residual-every of --residual-iters, subtract the nearest"""
    residual_iters: Annotated[int, config.POSITIVE] = 600
    """iterations of the residual reconstruction (chainer 600)"""
    residual_every: Annotated[int, config.POSITIVE] = 20
    """a residual snapshot every this many iterations (chainer 20)"""
    color_match: Literal["none", "channel", "global"] = "none"
    """match each output's colour to its input: per-channel mean/std, or one global mean/std (official)"""
    color_eps: Annotated[float, config.NONNEG] = 1e-6
    """epsilon of the per-channel colour match (chainer 0)"""
    output: Literal["image", "diff8"] = "image"
    """the edited image, or chainer-dfi's: the 8-bit difference (+128, clipped) added to the input"""

    def __post_init__(self):
        config.check(self)
        if self.residual_iters < self.residual_every:
            raise ValueError(
                f"need residual_every <= residual_iters, got {self.residual_every} and {self.residual_iters}"
            )


@dataclasses.dataclass(frozen=True)
class Probe:
    """The attribute probe that scores the edits (trained once on the dataset's features, cached)."""

    enabled: Annotated[bool, config.flag("probe")] = True
    """score the edits with the attribute probe (trained once, cached)"""
    steps: Annotated[int, config.POSITIVE, config.flag("probe-steps")] = 300
    """probe training steps"""
    train: Annotated[int, config.POSITIVE, config.flag("probe-train")] = 2000
    """probe training images"""

    def __post_init__(self):
        config.check(self)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a sweep's result (`presets` holds the references' settings): the edits,
    their strengths and size, then one group per step of the method.

    Built flat from command-line names with `config.replace(SweepConfig(), iters=500, k=50)`; saved
    configs of the older flat layout load too (`config.from_dict` nests them).
    """

    RENAMED: ClassVar[dict[str, str]] = {"tv": "tv_weight"}

    edits: Annotated[tuple[str, ...], config.flag("edit"), config.comma_list(str, ";", "SPEC;SPEC")] = ("Smiling+",)
    """attribute specs, e.g. 'Smiling+ Mouth_Open+' or 'Young-'; several edits in one call separated by ';',
    e.g. 'Smiling+;Eyeglasses+' (rows = input x edit)"""
    alphas: Annotated[tuple[float, ...], config.comma_list(float)] = (0.1, 0.2, 0.3, 0.4, 0.5)
    """comma-separated edit strengths"""
    size: Annotated[int, config.Bounds(ge=32)] = 64
    """working size in pixels (dfijax preset 64, the references 200)"""
    crop: Literal["dataset", "chainer"] = "dataset"
    """the dataset's face crop, or chainer-dfi's boxes with PIL bilinear resize (CelebA/LFW folders)"""
    own_photos: Literal[OWN_PHOTO_PIPELINES] = "crop"
    """own photos: each face aligned to the dataset's crop, edited there and put back (crop), or the DFI
    reference's demo2 (full): the photo kept at its resolution, the database faces fitted by their
    landmarks and warped onto it (needs the faces extra)"""
    neighbours: Annotated[Neighbours, config.FLAT] = Neighbours()
    objective: Annotated[Objective, config.FLAT] = Objective()
    solve: Annotated[Solve, config.FLAT] = Solve()
    finish: Annotated[Finish, config.FLAT] = Finish()
    probe: Annotated[Probe, config.FLAT] = Probe()
    batch: Annotated[int, config.POSITIVE] = 32
    """images per batch when averaging neighbour features"""
    feature_cache: bool = True
    """keep per-image neighbour features (float16, ~200 KB per image at 64 px, ~2 MB at 200 px) under
    ~/.cache/dfijax/features-*"""
    seed: int = 0
    """random seed"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if not self.edits or not all(e.strip() for e in self.edits):
            raise ValueError("give at least one edit, e.g. 'Smiling+'")
        if not self.alphas:
            raise ValueError("give at least one alpha, e.g. 0.4")
