"""The DTN's settings: one training run (`DTNConfig`, saved beside its checkpoints) and the two
experiments that train runs (`DigitsConfig`, `FacesConfig`: every setting of their command lines,
with its help, bounds and choices), with the experiments' presets as typed config instances
(`DIGITS_PRESETS` by run length, recorded in `scale`; `FACES_PRESETS` by networks, recorded in `nets`).
The settings a run takes from its experiment are declared once, in `RunSettings`, which the run and both
experiments hold (`run`, flat on the command line).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from dfijax import config, training
from dfijax.dtn import faces
from dfijax.dtn import losses as L
from dfijax.dtn.classifier import ClassifierConfig
from dfijax.dtn.model import SIZE, DigitClassifier
from dfijax.dtn.networks import DTN, make_dtn
from dfijax.dtn.steps import DTNState, init_state

DOMAINS = ("digits", "faces")
LOSS_PRESETS = tuple(L.PRESETS)
Weight = Annotated[float | None, config.NONNEG]


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The settings of a DTN run that its experiment chooses (losses, length, networks' widths, optimiser)."""

    RENAMED: ClassVar[dict[str, str]] = {"preset": "losses"}

    losses: Annotated[Literal[LOSS_PRESETS], config.flag("losses", aliases=("--preset",))] = "digits"
    """loss weights: digits α=β=15, γ=0; faces (the paper's) α=100, β=1, γ=0.05 (--alpha/--beta/--gamma
    override them)"""
    alpha: Annotated[Weight, config.flag("const-weight", aliases=("--alpha",))] = None
    """L_CONST weight, the paper's α (None: the preset's)"""
    beta: Annotated[Weight, config.flag("tid-weight", aliases=("--beta",))] = None
    """L_TID weight, the paper's β (None: the preset's)"""
    gamma: Annotated[Weight, config.flag("tv-weight", aliases=("--gamma",))] = None
    """L_TV weight, the paper's γ (None: the preset's)"""
    const: Literal["mse", "cosine"] = "mse"
    """distance for L_CONST"""
    steps: Annotated[int, config.NONNEG] = training.resumable(600)
    """DTN iterations (one D step, then --g-steps G steps, each)"""
    g_steps: Annotated[int, config.POSITIVE] = 1
    """G steps per D step"""
    width: Annotated[int, config.POSITIVE] = 32
    """base width of g"""
    d_width: Annotated[int, config.POSITIVE] = 16
    """base width of D"""
    batch: Annotated[int, config.POSITIVE] = 64
    """source and target images per iteration"""
    lr: Annotated[float, config.Bounds(gt=0)] = 3e-4
    """Adam learning rate of g and D (b1 = 0.5)"""
    save_every: Annotated[int, config.POSITIVE] = training.resumable(200)
    """checkpoint period"""
    seed: int = 0
    """random seed (data, networks, batches)"""

    def __post_init__(self):
        config.check(self)


@dataclasses.dataclass(frozen=True)
class DTNConfig:
    """One DTN training run, saved beside its checkpoints (`training.Checkpointer(config=)`); resuming
    under settings that differ in a field not marked resumable is a one-line `CheckpointMismatch`.

    domain: "digits" (f = `DigitClassifier(f_width, feat_dim)`, trained beforehand; 32 px; g of
    `out_channels`) or "faces" (f = `faces.VGGFeatures(taps, grid)`, frozen VGG-19; nets "small" or
    "paper", `faces.make_faces_dtn`). Each of `steps` iterations is one D step then `g_steps` G steps on
    the same batch of `batch` source and `batch` target images (batch must divide over the mesh's
    devices)."""

    RENAMED: ClassVar[dict[str, str]] = {"preset": "losses"}

    run: Annotated[RunSettings, config.FLAT] = RunSettings()
    """the losses, length, widths and optimiser the experiment chose"""
    domain: Literal[DOMAINS] = "digits"
    """digits (f a small classifier trained beforehand) or faces (f frozen VGG-19 features)"""
    nets: Literal[faces.NETS] = "small"
    """g and D: the light networks, or the paper's faces networks (faces only)"""
    size: Annotated[int, config.POSITIVE] = SIZE
    """image size of g's output and D's input (digits: 32)"""
    out_channels: Annotated[int, config.POSITIVE] = 3
    """g's output channels (1: grey, repeated to RGB)"""
    f_width: Annotated[int, config.POSITIVE] = 32
    """digits: base width of f"""
    feat_dim: Annotated[int, config.POSITIVE] = 128
    """digits: f's feature size"""
    taps: tuple[str, ...] = ("relu3_1", "relu4_1")
    """faces: the VGG-19 taps that make f"""
    grid: Annotated[int, config.POSITIVE] = 2
    """faces: each tap average-pooled to grid x grid"""
    three_class: bool = True
    """D with 3 classes (G(source), G(target), real target), or 2 (generated, real)"""
    data: str = ""
    """free text naming the training data (and f), so a resume on other data is refused"""
    log_every: Annotated[int, config.POSITIVE] = training.resumable(10)
    """metrics period"""
    keep: Annotated[int, config.POSITIVE] = training.resumable(2)
    """checkpoints kept"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if self.domain == "digits" and (self.size != SIZE or self.nets != "small"):
            raise ValueError(f"the digits DTN has the small nets at {SIZE} px, not {self.nets!r} at {self.size} px")
        self.weights  # noqa: B018  (validates the weights)

    @property
    def weights(self) -> L.DTNWeights:
        r = self.run
        over = {k: float(getattr(r, k)) for k in ("alpha", "beta", "gamma") if getattr(r, k) is not None}
        return L.preset(r.losses).replace(const=r.const, three_class=self.three_class, **over)

    def build(self) -> DTN:
        """The networks this run trains."""
        if self.domain == "digits":
            f = DigitClassifier(width=self.f_width, feat_dim=self.feat_dim)
            return make_dtn(self.weights, f, self.run.width, self.run.d_width, self.out_channels)
        f = faces.VGGFeatures(self.taps, self.grid)
        return faces.make_faces_dtn(self.weights, f, self.size, self.run.width, self.run.d_width, self.nets)

    def init(self) -> DTNState:
        """The untrained state (g and D from the seed)."""
        return init_state(self.build(), self.run.lr, self.run.seed)


# --- the experiments ------------------------------------------------------------------------------------

SCALES = ("quick", "paper", "tiny")  # DIGITS_PRESETS', below the class
NETS_PRESETS = ("small", "paper")  # FACES_PRESETS', below the class


@dataclasses.dataclass(frozen=True)
class DigitsConfig:
    """The digits experiment (`pipeline.run_digits`): its data, f's and the evaluation classifier's
    training, the DTN run (`dtn_config`) and its ablations (`runs`)."""

    RENAMED: ClassVar[dict[str, str]] = {"preset": "losses"}

    run: Annotated[RunSettings, config.FLAT] = RunSettings()
    """the DTN run's losses, length, widths and optimiser"""
    scale: Literal[SCALES] = "quick"
    """run length: quick (600 DTN steps, batch 64: minutes on a CPU), paper (20000, batch 100, f 5000
    and classifier 3000 steps) or tiny (the tests': width 8, 512 sources, 600 steps of batch 16); flags
    override"""
    data: Literal["digits", "svhn-mnist"] = "digits"
    """digits: generated street-number digits -> scikit-learn's handwritten digits (offline);
    svhn-mnist: tfds svhn_cropped -> mnist, prepared in --data-dir"""
    data_dir: str | None = None
    """tfds data_dir holding svhn_cropped and mnist (for --data svhn-mnist)"""
    n_source: Annotated[int, config.POSITIVE] = 8000
    """generated source training images (digits)"""
    n_test: Annotated[int, config.POSITIVE] = 1000
    """source test images for the transfer accuracy"""
    source_limit: Annotated[int | None, config.POSITIVE] = None
    """svhn-mnist: a seeded random subset of each SVHN split (train, extra) and of MNIST train"""
    ablation_steps: Annotated[int | None, config.NONNEG] = None
    """iterations per ablation (default: --steps / 2); the full DTN is also evaluated there"""
    ablations: bool = True
    """also train the ablations: without L_TID (β = 0) and with a 2-class D"""
    f_width: Annotated[int, config.POSITIVE] = 32
    """base width of f and the evaluation classifier"""
    feat_dim: Annotated[int, config.POSITIVE] = 128
    """f's feature size"""
    f_steps: Annotated[int, config.POSITIVE] = 500
    """training steps of f"""
    clf_steps: Annotated[int, config.POSITIVE] = 400
    """training steps of the evaluation classifier"""
    clf_batch: Annotated[int, config.POSITIVE] = 64
    """batch size of both classifiers"""

    def __post_init__(self):
        config.check(self)
        if self.data == "svhn-mnist" and not self.data_dir:
            raise ValueError("--data svhn-mnist needs --data-dir, the tfds data_dir holding svhn_cropped and mnist")

    @property
    def abl_steps(self) -> int:
        return self.run.steps // 2 if self.ablation_steps is None else self.ablation_steps

    def dtn_config(self) -> DTNConfig:
        """The full DTN's run (grey targets: g of one channel)."""
        data = (
            f"{self.data} n_source={self.n_source} limit={self.source_limit}; f {self.f_steps} steps b{self.clf_batch}"
        )
        f = dict(f_width=self.f_width, feat_dim=self.feat_dim)
        return DTNConfig(run=self.run, **f, out_channels=1, data=data)

    def runs(self) -> dict[str, DTNConfig]:
        """{run name: its settings}: the full DTN, then (with ablations) β = 0 and the 2-class D."""
        dtn = self.dtn_config()
        out = {"dtn": dtn}
        if self.ablations:
            out["no_tid"] = config.replace(dtn, beta=0.0, steps=self.abl_steps)
            out["two_class"] = config.replace(dtn, three_class=False, steps=self.abl_steps)
        return out

    def classifier(self, which: str) -> ClassifierConfig:
        """f ("f", on sources, ±1 px shifts) or the evaluation classifier ("target", ±2 px)."""
        steps, shift = (self.f_steps, 1) if which == "f" else (self.clf_steps, 2)
        return ClassifierConfig(
            steps, self.clf_batch, shift=shift, seed=self.run.seed, width=self.f_width, feat_dim=self.feat_dim
        )


DIGITS_PRESETS: dict[str, DigitsConfig] = config.registry(  # the same command means the same run on every device
    config.Preset("quick", DigitsConfig(), "600 DTN steps of batch 64, f 500 and classifier 400 steps"),
    config.Preset(
        "paper",
        DigitsConfig(scale="paper", run=RunSettings(steps=20000, batch=100), f_steps=5000, clf_steps=3000),
        "the paper's 20000 iterations of batch 100; f 5000 and the evaluation classifier 3000 steps",
    ),
    # f's 1000 steps give G features worth translating (transfer accuracy 0.62 against 0.21
    # untranslated; with f at 300 steps 0.33), and the evaluation classifier scores (0.95 on its test set)
    config.Preset(
        "tiny",
        DigitsConfig(
            scale="tiny",
            run=RunSettings(steps=600, batch=16, lr=1e-3, width=8, d_width=8, save_every=300),
            n_source=512,
            n_test=24,
            f_width=8,
            feat_dim=16,
            f_steps=1000,
            clf_steps=200,
            clf_batch=16,
        ),
        "the tests': the narrowest networks, trained just long enough that G transfers",
    ),
    field="scale",
    names=SCALES,
)


@dataclasses.dataclass(frozen=True)
class FacesConfig:
    """The faces experiment (`pipeline.run_faces`): its data, f (VGG-19 taps, pooling, the images that
    fix its standardisation) and the DTN run (`dtn_config`); FACES_PRESETS hold its two starting points."""

    RENAMED: ClassVar[dict[str, str]] = {"preset": "losses"}

    run: Annotated[RunSettings, config.FLAT] = RunSettings()
    """the DTN run's losses, length, widths and optimiser"""
    nets: Literal[NETS_PRESETS] = "small"
    """networks and run-size preset: paper (the paper's faces nets, 64 px g, 152 px D; 20000 iterations,
    batch 64, lr 2e-4, 20000 source and target images) or small (light CPU nets, 32 px; 600, 16, 1e-3,
    2000); flags override"""
    data: Literal["synthetic", "celeba"] = "synthetic"
    """source domain"""
    data_dir: str | None = None
    """CelebA folder (list_attr_celeba.txt + img_align_celeba/), for --data celeba"""
    n_train: Annotated[int, config.POSITIVE] = 2000
    """source training images"""
    n_test: Annotated[int, config.Bounds(ge=2)] = 64
    """held-out source images (constancy measure)"""
    n_target: Annotated[int, config.POSITIVE] = 2000
    """cartoon training images"""
    size: int = 32
    """image size of g's output, D and the data (a power of two >= 32; paper nets: 64)"""
    taps: Annotated[tuple[str, ...], config.comma_list(str)] = ("relu3_1", "relu4_1")
    """VGG-19 taps that make f"""
    grid: Annotated[int, config.POSITIVE] = 2
    """each tap average-pooled to grid x grid"""
    calib: Annotated[int, config.Bounds(ge=2)] = 256
    """source training images that fix f's standardisation"""
    log_every: Annotated[int, config.POSITIVE] = 10
    """metrics period"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if self.size < 32 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two >= 32 (VGG-19 and g need it), got {self.size}")
        if self.nets == "paper" and self.size != 64:
            raise ValueError(f"nets paper makes 64x64 images, got size {self.size}; use size 64 or the small nets")
        if self.data == "celeba" and not self.data_dir:
            raise ValueError(
                "--data celeba needs --data-dir (the folder with list_attr_celeba.txt and img_align_celeba/)"
            )
        self.f.check_size(self.size)

    @property
    def f(self) -> faces.VGGFeatures:
        """f: the taps, each pooled to grid x grid (`faces.VGGFeatures`)."""
        return faces.VGGFeatures(faces.parse_taps(self.taps), self.grid)

    def dtn_config(self, f_description: str) -> DTNConfig:
        """The DTN run; f_description names the VGG-19 weights (a resume with other weights is refused)."""
        data = f"{self.data} {self.data_dir or ''} n_train={self.n_train} n_target={self.n_target}; "
        data += f"f: {f_description}, calibrated on {self.calib}"
        own = dict(nets=self.nets, size=self.size, grid=self.grid, log_every=self.log_every)
        return DTNConfig(run=self.run, domain="faces", taps=faces.parse_taps(self.taps), data=data, **own)


FACES_PRESETS: dict[str, FacesConfig] = config.registry(  # the networks and the run settings that suit them
    config.Preset(
        "small",
        FacesConfig(run=RunSettings(losses="faces", width=32, d_width=32, batch=16, lr=1e-3)),
        "light CPU networks at 32 px: 600 iterations of 16, lr 1e-3, 2000 images each",
    ),
    config.Preset(
        "paper",
        FacesConfig(
            nets="paper",
            run=RunSettings(losses="faces", width=64, d_width=64, steps=20000, batch=64, lr=2e-4, save_every=1000),
            size=64,
            n_train=20000,
            n_target=20000,
        ),
        "the paper's faces networks (64 px g, 152 px D): 20000 iterations of 64, lr 2e-4, 20000 images each",
    ),
    field="nets",
    names=NETS_PRESETS,
)
