"""Fast feed-forward style transfer (Johnson et al. 2016): an image transformation network trained
with perceptual losses from the shared VGG, with a pure train step, trained by `training.fit` (orbax
auto-resume; the run's `FastStyleConfig` saved beside the checkpoints), data parallel over every
device of every process (JAX's multi-controller runtime; see `train`). The pipelines that load the
style image, make sample pictures and apply a trained network are in `dfijax.style.fast_run`.

Network: c9s1-32, d64, d128, 5 residual blocks of 128, u64, u32, c9s1-3, instance norm. By default
the up-sampling layers are nearest-neighbour resize + 3x3 conv (same shapes as the paper's
fractionally strided convolutions, without their checkerboard artefacts) and the output a sigmoid;
`upsample="transpose"` and `output="tanh"` give the paper's layers. Loss network: VGG-16 as in the
paper (`johnson_loss(16)`), or VGG-19 with the analogous layers.

Presets (`PRESETS`, `preset`): "quick" is the project's own setting (unit-free "relative" losses,
per-layer reflection padding); "paper" is jcjohnson/fast-neural-style's train.lua with its defaults:
reflection padding once at the start and unpadded residual blocks, Caffe-preprocessed input, 150·tanh
output, instance-norm eps 1e-5, torch's initialisation and Adam, the loss terms as its Lua modules
compute them (`normalize="reference"`) on VGG-16 layers 16 / 4, 9, 16, 23.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Annotated, Any, Callable, Literal, Mapping, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tyro
from flax.training import train_state
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dfijax import batching, config, losses, training
from dfijax import images as im
from dfijax import mesh as mesh_lib
from dfijax.vgg import CAFFE_MEAN_BGR, POOL_ROUNDINGS, VGG, VGG19

# Johnson et al.'s loss layers on VGG-16 and their VGG-19 analogues (each block's last ReLU): content, style.
JOHNSON_LAYERS: dict[int, tuple[str, tuple[str, ...]]] = {
    16: ("relu2_2", ("relu1_2", "relu2_2", "relu3_3", "relu4_3")),
    19: ("relu2_2", ("relu1_2", "relu2_2", "relu3_4", "relu4_4")),
}
# train.lua's -content_layers '16' and -style_layers '4,9,16,23': module indices of vgg16.t7 (conv1_1,
# relu1_1, conv1_2, relu1_2 = 4, pool1, ..., relu2_2 = 9, ..., relu3_3 = 16, ..., relu4_3 = 23), and the
# VGG-19 analogues (each block's last ReLU).
REFERENCE_LAYERS: dict[int, tuple[str, tuple[str, ...]]] = {
    16: ("relu3_3", ("relu1_2", "relu2_2", "relu3_3", "relu4_3")),
    19: ("relu3_4", ("relu1_2", "relu2_2", "relu3_4", "relu4_4")),
}
OUTPUTS = ("sigmoid", "tanh")
UPSAMPLES = ("resize", "transpose")
PADDINGS = ("reflect", "reflect-start")
NET_INPUTS = ("center", "vgg")
INITS = ("flax", "torch")
NORMALIZES = ("relative", "absolute", "reference")
OPTIMIZERS = ("adam", "torch-adam")
FITS = ("short", "long")
CONTENT_FITS = ("crop", "squash")
_NET_CHOICES = (
    ("output", OUTPUTS),
    ("upsample", UPSAMPLES),
    ("padding", PADDINGS),
    ("preprocess", NET_INPUTS),
    ("weight_init", INITS),
)


def _check_choices(obj: Any, table: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    for name, options in table:
        if getattr(obj, name) not in options:
            raise ValueError(f"{name} must be one of {options}, got {getattr(obj, name)!r}")


# The paper's output is 150·tanh(a) added to the Caffe mean on the 0-255 scale; in [0, 1] RGB that is:
TANH_CENTER = (CAFFE_MEAN_BGR[::-1] / 255.0).copy()  # the ImageNet mean, RGB: 0.485, 0.458, 0.408
TANH_SCALE = 150.0 / 255.0


def _torch_uniform(fan_in: int) -> Callable:
    """torch nn's default init of (full) convolution weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    with fan_in = k·k·input planes (nn/SpatialConvolution.lua:34-54, SpatialFullConvolution.lua:43-55)."""
    bound = 1.0 / float(np.sqrt(fan_in))
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _conv(x, features, k, stride=1, name=None, dtype=None, pad="reflect", init="flax"):
    """k x k convolution; pad: "reflect" (reflection to keep the size), "zero" (zeros, (k-1)/2) or "none"."""
    p = k // 2 if pad != "none" else 0
    if pad == "reflect":
        x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        p = 0
    kw = {}
    if init == "torch":
        u = _torch_uniform(k * k * x.shape[-1])
        kw = dict(kernel_init=u, bias_init=u)
    conv = nn.Conv(features, (k, k), strides=(stride, stride), padding=((p, p), (p, p)), name=name, dtype=dtype, **kw)
    return conv(x)


class TransformNet(nn.Module):
    """[B, H, W, 3] RGB in [0, 1] -> [B, H, W, 3] RGB (H, W multiples of 4).

    width scales every layer (32 is Johnson's); blocks is the number of residual blocks (5); dtype:
    compute dtype (e.g. bfloat16; parameters stay float32, the output is float32).

    output:
      "sigmoid" (default): sigmoid(a), strictly inside (0, 1).
      "tanh": the paper's 150·tanh(a) on the 0-255, mean-subtracted (Caffe VGG) scale, mapped to
        [0, 1] RGB: y_c = m_c + (150/255)·tanh(a_c) with m = the ImageNet mean (0.485, 0.458, 0.408),
        i.e. y_c in (m_c - 0.588, m_c + 0.588): up to about -0.18..1.07, slightly beyond [0, 1]
        like the paper's (the loss sees it unclipped; `stylize` clips to [0, 1] as the paper's
        deprocessing does).
    upsample:
      "resize" (default): nearest-neighbour 2x resize + 3x3 conv.
      "transpose": the paper's fractionally strided 3x3 convolutions, stride 1/2 (torch's
        padding 1, output_padding 1: exactly 2x).
    padding:
      "reflect" (default): every convolution reflection-padded to keep the size; residual blocks add
        their input.
      "reflect-start": train.lua's -padding_type reflect-start: one reflection pad of 8·blocks px at
        the start (train.lua:169-175), the c and d convolutions zero-padded (models.lua:70-82, 95), the
        residual convolutions unpadded and the skip connection shaved by 2 px (models.lua:10-54).
    preprocess:
      "center" (default): the network sees x - 0.5.
      "vgg": it sees the Caffe-preprocessed image (BGR, 0-255, minus the mean; DataLoader.lua:92,
        preprocess.lua:57-62), and output="tanh" is read as BGR: y = deprocess(150·tanh(a))
        (models.lua:137-138, preprocess.lua:66-71), the same range as "tanh" above.
    eps: instance-norm epsilon (1e-5 in InstanceNormalization.lua:21; flax's default 1e-6).
    weight_init: "flax" (default: lecun-normal kernels, zero biases, unit norm scales) or "torch" (torch nn's
      defaults: conv weights and biases U(±1/sqrt(k·k·C_in)), instance-norm scale U(0, 1), bias 0:
      InstanceNormalization.lua:26-27).
    Every choice has the same parameter names and shapes, so the choices must be stored with a
    checkpoint (`FastStyleConfig`, saved beside it by `train`).
    """

    width: int = 32
    blocks: int = 5
    dtype: Any = None
    output: str = "sigmoid"
    upsample: str = "resize"
    padding: str = "reflect"
    preprocess: str = "center"
    eps: float = 1e-6
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_choices(self, _NET_CHOICES)
        w, dt, torch_init = self.width, self.dtype, self.weight_init == "torch"
        if self.preprocess == "vgg":
            h = x[..., ::-1] * 255.0 - jnp.asarray(CAFFE_MEAN_BGR)[None, None, None, :]
        else:
            h = x - 0.5
        h = h.astype(dt) if dt is not None else h
        start = self.padding == "reflect-start"
        if start:  # what the unpadded residual blocks take: 2 px per conv at 1/4 scale
            p = 8 * self.blocks
            h = jnp.pad(h, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        scale_init = (lambda k, shape, dtype=jnp.float32: jax.random.uniform(k, shape, dtype)) if torch_init else None
        norm_kw = {"scale_init": scale_init} if torch_init else {}
        norm = lambda name: nn.InstanceNorm(epsilon=self.eps, name=name, dtype=dt, **norm_kw)
        conv = functools.partial(_conv, dtype=dt, init=self.weight_init)
        edge = "zero" if start else "reflect"
        for i, (f, k, s) in enumerate([(w, 9, 1), (2 * w, 3, 2), (4 * w, 3, 2)]):
            h = nn.relu(norm(f"in_down{i}")(conv(h, f, k, s, name=f"down{i}", pad=edge)))
        inner = "none" if start else "reflect"
        for i in range(self.blocks):
            r = nn.relu(norm(f"res{i}_in1")(conv(h, 4 * w, 3, name=f"res{i}_conv1", pad=inner)))
            r = norm(f"res{i}_in2")(conv(r, 4 * w, 3, name=f"res{i}_conv2", pad=inner))
            h = (h[:, 2:-2, 2:-2] if start else h) + r
        for i, f in enumerate((2 * w, w)):
            if self.upsample == "transpose":
                kw = {}
                if torch_init:
                    u = _torch_uniform(9 * h.shape[-1])
                    kw = dict(kernel_init=u, bias_init=u)
                # torch's padding 1, adj 1 (models.lua:104): exactly 2x
                up = nn.ConvTranspose(
                    f, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)), name=f"up{i}", dtype=dt, **kw
                )
                h = up(h)
            else:
                b, hh, ww, c = h.shape
                h = conv(jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest"), f, 3, name=f"up{i}", pad=edge)
            h = nn.relu(norm(f"in_up{i}")(h))
        a = conv(h, 3, 9, name="out", pad=edge).astype(jnp.float32)
        if self.output == "tanh":
            if self.preprocess == "vgg":  # the output channels are BGR, as the loss network's input
                a = a[..., ::-1]
            return jnp.asarray(TANH_CENTER)[None, None, None, :] + TANH_SCALE * jnp.tanh(a)
        return nn.sigmoid(a)


@dataclasses.dataclass(frozen=True)
class PerceptualLoss:
    """Johnson's perceptual losses on the shared VGG: content (feature MSE at `content_layer`), style
    (Gram matrices divided by h·w·C, squared Frobenius distance summed over `style_layers`) and TV.

    normalize:
      "relative" (default): content ÷ mean(φ_c²), each layer's style term ÷ ‖G_style‖², TV = mean
        squared neighbour difference on [0, 1] pixels. Every term is then a unit-free ratio, so the
        same weights train on pretrained and on random weights (whose activations are ~100x smaller).
      "absolute": the paper's unnormalised terms (TV = Σ squared differences on 0–255 pixels); its
        weights (1, 5, 1e-6) assume pretrained Caffe-scale activations.
      "reference": what jcjohnson/fast-neural-style's Lua modules compute: content = mean over
        N·H·W·C of squared feature differences (ContentLoss.lua:43, MSECriterion's size average), style
        = Σ_layers mean over N·C·C of squared Gram differences, Gram ÷ C·H·W, the one style Gram
        expanded to the batch (StyleLoss.lua:45-49, GramMatrix.lua:38-49); weights multiply each
        (the modules' strengths). TV is a gradient only, as nn.TotalVariation adds it in its backward
        pass and never to the loss (TotalVariation.lua:12-34): tv_weight × the gradient of
        ½ Σ_{n,c} Σ_{i<H-1, j<W-1} ((a_ij - a_i,j+1)² + (a_ij - a_i+1,j)²) on the 0-255 output a.
        The total's value is then content + style, as train.lua reports it; parts["tv"] is that ½ Σ.
    """

    model: VGG19 = VGG19()
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
    content_weight: float = 1.0
    style_weight: float = 0.5
    tv_weight: float = 1e-4
    normalize: str = "relative"

    def __post_init__(self):
        if self.normalize not in NORMALIZES:
            raise ValueError(f"normalize must be one of {NORMALIZES}, got {self.normalize!r}")

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.content_layer,) + self.style_layers))

    def style_grams(self, variables: Mapping, style: jax.Array) -> dict[str, jax.Array]:
        """style: [H, W, 3] -> {layer: [C, C]}."""
        f = self.model.apply(variables, style[None], taps=self.style_layers)
        return {t: losses.gram(f[t][0], "hwc") for t in self.style_layers}

    def __call__(self, out: jax.Array, content: jax.Array, variables: Mapping, grams: Mapping[str, jax.Array]):
        """out, content: [B, H, W, 3]. Returns (total, {content, style, tv}), each a batch mean (with
        normalize="reference": as the Lua modules compute them, see above)."""
        rel = self.normalize == "relative"
        fo = self.model.apply(variables, out, taps=self.taps)
        target = jax.lax.stop_gradient(self.model.apply(variables, content, taps=(self.content_layer,)))
        if self.normalize == "reference":
            return self._reference(out, fo, target, grams)
        c = losses.feature_mse(fo, target, (self.content_layer,))
        if rel:
            c = c / (jnp.mean(jnp.square(target[self.content_layer])) + 1e-12)
        s = jnp.zeros((), jnp.float32)
        for t in self.style_layers:
            d = jnp.sum(jnp.square(jax.vmap(lambda f: losses.gram(f, "hwc"))(fo[t]) - grams[t][None])) / out.shape[0]
            s = s + (d / (jnp.sum(jnp.square(grams[t])) + 1e-20) if rel else d)
        tv_fn = losses.tv_squared if rel else lambda z: losses.tv_beta(z, 2.0)
        tv = jnp.mean(jax.vmap(tv_fn)(out))
        total = self.content_weight * c + self.style_weight * s + self.tv_weight * tv
        return total, {"content": c, "style": s, "tv": tv}

    def _reference(self, out, fo, target, grams):
        c = jnp.mean(jnp.square(fo[self.content_layer] - target[self.content_layer]))
        s = jnp.zeros((), jnp.float32)
        for t in self.style_layers:
            g = jax.vmap(lambda f: losses.gram(f, "hwc"))(fo[t])
            s = s + jnp.mean(jnp.square(g - grams[t][None]))
        a = 255.0 * out  # the 0-255 scale nn.TotalVariation sees (its mean shift and channel order do not matter)
        dx = a[:, :-1, :-1] - a[:, :-1, 1:]
        dy = a[:, :-1, :-1] - a[:, 1:, :-1]
        tv = 0.5 * (jnp.sum(jnp.square(dx)) + jnp.sum(jnp.square(dy)))
        total = self.content_weight * c + self.style_weight * s + self.tv_weight * (tv - jax.lax.stop_gradient(tv))
        return total, {"content": c, "style": s, "tv": tv}


def johnson_loss(depth: int = 16, **kwargs: Any) -> PerceptualLoss:
    """PerceptualLoss on VGG-`depth` with Johnson's layers (VGG-16: content relu2_2, style relu1_2,
    relu2_2, relu3_3, relu4_3) or their VGG-19 analogues (relu3_4, relu4_4); kwargs: weights etc."""
    if depth not in JOHNSON_LAYERS:
        raise ValueError(f"VGG depth must be 16 or 19, got {depth!r}")
    content, style = JOHNSON_LAYERS[depth]
    model = kwargs.pop("model", VGG(depth=depth))
    return PerceptualLoss(model=model, content_layer=content, style_layers=style, **kwargs)


TrainState = train_state.TrainState

# each preset's loss layers on VGG-16 and VGG-19 (`loss_layers`)
PRESET_LAYERS = {"quick": JOHNSON_LAYERS, "paper": REFERENCE_LAYERS}


class TorchAdamState(NamedTuple):
    count: jax.Array
    mu: Any
    nu: Any


def torch_adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
    """torch optim.adam (optim/adam.lua:54-68): x -= lr·sqrt(1-b2^t)/(1-b1^t) · m / (sqrt(v) + eps). Unlike
    optax.adam, eps is added to the uncorrected sqrt(v)."""

    def init(params):
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)
        return TorchAdamState(jnp.zeros((), jnp.int32), zeros(), zeros())

    def update(grads, state, params=None):
        t = state.count + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, grads)
        tf = t.astype(jnp.float32)
        step = lr * jnp.sqrt(1 - b2**tf) / (1 - b1**tf)
        updates = jax.tree.map(lambda m, v: -step * m / (jnp.sqrt(v) + eps), mu, nu)
        return updates, TorchAdamState(t, mu, nu)

    return optax.GradientTransformation(init, update)


def optimizer(name: str, lr: float) -> optax.GradientTransformation:
    """ "adam" (optax's) or "torch-adam" (`torch_adam`)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return optax.adam(lr) if name == "adam" else torch_adam(lr)


@dataclasses.dataclass(frozen=True)
class FastStyleConfig:
    """One fast-style run: the network, the training crops, the style image, the optimiser, the loss
    (VGG depth, layers, weights, normalisation) and the seed; saved beside the checkpoints, so that
    `restore` rebuilds the same network. steps, save_every, log_every and keep may change when a run
    resumes. The defaults are the "quick" preset's network and loss; `preset(name, vgg)` builds a
    preset (PRESETS) with its loss layers on VGG-16 or VGG-19."""

    width: Annotated[int, config.POSITIVE] = 32
    """network width (32 = Johnson)"""
    blocks: Annotated[int, config.POSITIVE] = 5
    """residual blocks of the network"""
    output: Literal[OUTPUTS] = "sigmoid"
    """output layer: sigmoid (quick) or the paper's 150·tanh"""
    upsample: Literal[UPSAMPLES] = "resize"
    """resize+conv (quick) or the paper's fractionally strided (transposed) convolutions"""
    size: Annotated[int, config.Bounds(ge=32)] = 256
    """training crop size in px, a multiple of 4"""
    batch: Annotated[int, config.POSITIVE] = 4
    """batch size (split over every device of the job)"""
    lr: Annotated[float, config.Bounds(gt=0)] = 1e-3
    """learning rate"""
    vgg: Annotated[Literal[16, 19], tyro.conf.Suppress] = 19
    """loss network depth (its layers: content_layer, style_layers)"""
    content_layer: Annotated[str, tyro.conf.Suppress] = JOHNSON_LAYERS[19][0]
    """the content loss's VGG layer (`loss_layers` gives a preset's)"""
    style_layers: Annotated[tuple[str, ...], tyro.conf.Suppress] = JOHNSON_LAYERS[19][1]
    """the style loss's VGG layers"""
    pool_rounding: Literal[POOL_ROUNDINGS] = "floor"
    """loss network pools on odd sizes: floor, or ceil as the paper preset's loadcaffe net rounds"""
    content_weight: Annotated[float, config.NONNEG] = 1.0
    """content loss weight"""
    style_weight: Annotated[float, config.NONNEG] = 0.5
    """style loss weight (quick 0.5, paper 5)"""
    tv_weight: Annotated[float, config.NONNEG, config.flag(aliases=("--tv",))] = 1e-4
    """TV weight (quick 1e-4, paper 1e-6)"""
    normalize: Annotated[Literal[NORMALIZES], config.flag(aliases=("--loss-normalize",))] = "relative"
    """loss terms: relative (quick): unit-free, the same weights work on pretrained and random VGG weights;
    absolute: the paper's unnormalised sums; reference (paper): the reference code's means"""
    seed: int = 0
    """random seed (network initialisation, content crops, a random loss network)"""
    steps: Annotated[int, config.POSITIVE] = training.resumable(40000)
    """training steps (may change when a run resumes)"""
    save_every: Annotated[int, config.NONNEG] = training.resumable(100)
    """checkpoint interval in steps (may change when a run resumes)"""
    log_every: Annotated[int, config.NONNEG] = training.resumable(10)
    """metrics.jsonl interval in steps"""
    keep: Annotated[int, config.POSITIVE] = training.resumable(3)
    """checkpoints kept"""
    padding: Literal[PADDINGS] = "reflect"
    """reflect: every convolution reflection-padded; reflect-start: the paper's one pad at the start"""
    preprocess: Literal[NET_INPUTS] = "center"
    """the network's input: center (x - 0.5) or vgg (the Caffe-preprocessed image)"""
    eps: Annotated[float, config.Bounds(gt=0)] = 1e-6
    """instance-norm epsilon"""
    weight_init: Literal[INITS] = "flax"
    """initialisation: flax's defaults or torch nn's"""
    optimizer: Literal[OPTIMIZERS] = "adam"
    """adam (optax's) or torch-adam (torch optim.adam's eps placement)"""
    content_fit: Literal[CONTENT_FITS] = "crop"
    """content images: crop (random square crops of short-side-resized images) or squash (the whole
    image cropped to a multiple of 16 px and resized to size x size)"""
    style_size: Annotated[int, config.NONNEG] = 0
    """style image size in px (0: size)"""
    style_fit: Literal[FITS] = "short"
    """which side of the style image style_size sets: short or long"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)
        if self.size % 4:
            raise ValueError(f"size must be a multiple of 4, got {self.size}")

    @classmethod
    def johnson(cls, vgg: int = 16, **kwargs: Any) -> "FastStyleConfig":
        """Johnson's loss layers on VGG-`vgg` (see JOHNSON_LAYERS); kwargs: any other field."""
        return cls(**{**loss_layers("quick", vgg), **kwargs})

    def net(self, dtype: Any = None) -> TransformNet:
        return TransformNet(
            width=self.width,
            blocks=self.blocks,
            dtype=dtype,
            output=self.output,
            upsample=self.upsample,
            padding=self.padding,
            preprocess=self.preprocess,
            eps=self.eps,
            weight_init=self.weight_init,
        )

    def loss(self) -> PerceptualLoss:
        return PerceptualLoss(
            model=VGG(depth=self.vgg, pool_rounding=self.pool_rounding),
            content_layer=self.content_layer,
            style_layers=tuple(self.style_layers),
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            tv_weight=self.tv_weight,
            normalize=self.normalize,
        )


# Training presets: the same name means the same run on every device; explicit settings override
# them. "quick" is the project's own setting (the FastStyleConfig defaults, CPU-sized); "paper" is
# jcjohnson/fast-neural-style's train.lua defaults.
PRESETS: dict[str, FastStyleConfig] = config.registry(
    config.Preset("quick", FastStyleConfig(size=64, steps=200, save_every=50), "minutes on a CPU"),
    config.Preset(
        "tiny",
        FastStyleConfig(size=32, batch=2, width=8, steps=30, save_every=30),
        "the tests': seconds, the scene kept",
    ),
    config.Preset(
        "paper",
        FastStyleConfig(
            width=32,  # -arch c9s1-32,d64,d128,R128 x5,u64,u32,c9s1-3 (train.lua:20)
            blocks=5,
            output="tanh",  # nn.Tanh, nn.MulConstant(-tanh_constant 150) (models.lua:137-138, train.lua:25)
            upsample="transpose",  # 'u': SpatialFullConvolution 3x3, stride 2, pad 1, adj 1 (models.lua:101-104)
            padding="reflect-start",  # -padding_type (train.lua:24)
            preprocess="vgg",  # -preprocessing vgg (train.lua:26)
            eps=1e-5,  # InstanceNormalization.lua:21 (-use_instance_norm 1, train.lua:21)
            weight_init="torch",
            vgg=16,  # -loss_network models/vgg16.t7 (train.lua:38)
            pool_rounding="ceil",  # vgg16.t7 comes through loadcaffe: nn.SpatialMaxPooling(...):ceil()
            content_layer=REFERENCE_LAYERS[16][0],  # -content_layers 16 (train.lua:37)
            style_layers=REFERENCE_LAYERS[16][1],  # -style_layers 4,9,16,23 (train.lua:44)
            content_weight=1.0,  # -content_weights 1.0 (train.lua:36)
            style_weight=5.0,  # -style_weights 5.0, one per layer (train.lua:43, utils.lua:28-34)
            tv_weight=1e-6,  # -tv_strength (train.lua:33)
            normalize="reference",
            size=256,  # the 256x256 images of ms-coco-256.h5 (make_style_dataset.py:17-18)
            content_fit="squash",  # make_style_dataset.py:53-58
            style_size=256,  # -style_image_size (train.lua:42), the long side (image.scale)
            style_fit="long",
            batch=4,  # -batch_size (train.lua:53)
            lr=1e-3,  # -learning_rate (train.lua:54), no decay (-lr_decay_every -1)
            optimizer="torch-adam",  # optim.adam (train.lua:239)
            steps=40000,  # -num_iterations (train.lua:51)
            save_every=1000,  # -checkpoint_every (train.lua:61)
        ),
        "jcjohnson/fast-neural-style's train.lua defaults",
    ),
)


def loss_layers(preset_name: str, depth: int) -> dict[str, Any]:
    """The loss fields of preset `preset_name` on VGG-`depth` (16 or 19): vgg, content_layer and
    style_layers (PRESET_LAYERS: quick Johnson's layers, paper train.lua's, or their VGG-19 analogues)."""
    if depth not in JOHNSON_LAYERS:
        raise ValueError(f"VGG depth must be 16 or 19, got {depth!r}")
    content, style = PRESET_LAYERS.get(preset_name, JOHNSON_LAYERS)[depth]
    return dict(vgg=depth, content_layer=content, style_layers=style)


def preset(name: str, vgg: int | None = None, **overrides: Any) -> FastStyleConfig:
    """The named preset (PRESETS) with its loss on VGG-`vgg` (None: the preset's) and that depth's
    layers (`loss_layers`); overrides: any field (None values are ignored)."""
    depth = vgg if vgg is not None else PRESETS[name].vgg if name in PRESETS else FastStyleConfig.vgg
    return config.preset(FastStyleConfig, PRESETS, name, **{**loss_layers(name, depth), **overrides})


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init_params(net: TransformNet, key: jax.Array, size: int) -> Any:
    """One jitted init per network and size (the same values as an eager init, one compilation)."""
    return net.init(key, jnp.zeros((1, size, size, 3)))["params"]


def create_state(net: TransformNet, size: int, lr: float, seed: int, optim: str = "adam") -> TrainState:
    params = _init_params(net, jax.random.key(seed), size)
    return TrainState.create(apply_fn=net.apply, params=params, tx=optimizer(optim, lr))


def initial_state(config: FastStyleConfig) -> TrainState:
    """The untrained network and Adam state of a run (also the template its checkpoints restore into)."""
    return create_state(config.net(), config.size, config.lr, config.seed, config.optimizer)


def make_train_step(loss: PerceptualLoss, donate: bool = True, mesh: jax.sharding.Mesh | None = None) -> Callable:
    """Pure (state, batch [B, H, W, 3], vgg variables, grams) -> (state, metrics). A non-finite loss
    leaves the state unchanged (metrics["finite"] = 0). mesh: the state and metrics come back
    replicated over it (the batch split over its "data" axis, everything else replicated)."""

    def step(state: TrainState, batch: jax.Array, variables, grams):
        def objective(params):
            out = state.apply_fn({"params": params}, batch)
            total, parts = loss(out, batch, variables, grams)
            # a collapsed network (constant output) shows up here before anyone looks at a sample
            return total, {**parts, "out_std": jnp.mean(jnp.std(out, axis=(1, 2, 3)))}

        (total, parts), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new = state.apply_gradients(grads=grads)
        ok = jnp.isfinite(total)
        return training.nan_guard(new, state, ok), {"loss": total, **parts, "finite": ok.astype(jnp.float32)}

    out = {} if mesh is None else dict(out_shardings=NamedSharding(mesh, P()))
    return jax.jit(step, donate_argnums=(0,) if donate else (), **out)


def stylize(net: TransformNet, params: Any, images: np.ndarray | jax.Array, batch: int = 16) -> np.ndarray:
    """Apply a trained network to [N, H, W, 3] images in [0, 1] -> [N, H, W, 3] in [0, 1] (clipped:
    output="tanh" reaches slightly past it), in chunks of `batch` of one shape (H, W reflect-padded to
    multiples of 4, the last chunk zero-padded; one compilation per image size)."""
    images = np.asarray(images, np.float32)
    n, h, w, _ = images.shape
    x = np.pad(images, ((0, 0), (0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
    out = batching.map_batches(lambda chunk: batching.apply_params(net, params, chunk), x, max(1, min(batch, n)))
    return np.clip(out[:, :h, :w], 0.0, 1.0)


def train_mesh(batch: int) -> jax.sharding.Mesh:
    """The ("data",) mesh `train` splits each batch over: every device of every process (the batch
    must divide over them), or, in a single process, the most local devices that divide the batch."""
    if jax.process_count() > 1:
        mesh = training.global_mesh()
        if batch % mesh.devices.size:
            n = mesh.devices.size
            raise ValueError(f"batch {batch} does not split over the job's {n} devices; use a multiple of {n}")
        return mesh
    devices = mesh_lib.local_devices()
    return training.data_mesh(devices[: max(k for k in range(1, len(devices) + 1) if batch % k == 0)])


def train(
    config: FastStyleConfig,
    variables: Mapping,
    style: np.ndarray,
    batches: Callable[[int], np.ndarray],
    directory: str | os.PathLike,
    *,
    hooks: Sequence[training.Hook] = (),
    progress: Callable[[int, dict | None], None] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[TrainState, int]:
    """Train to config.steps, resuming from the newest checkpoint in `directory` (its settings must
        agree with config, see `training.Checkpointer`).

        variables: the loss VGG's (depth config.vgg); style: [H, W, 3] in [0, 1]; batches(step) -> the
        global batch [batch, size, size, 3] in [0, 1], a pure function of the step, so a resumed run (or
        another process count) sees exactly the data the uninterrupted one would (a `ContentBatches`: each
    process loads only the rows its devices hold). Data parallel over
        `mesh` (default `train_mesh(config.batch)`: every device of every process): the state and VGG
        variables replicated, each batch split over the devices. Every process of a multi-process job
        calls train with the same arguments; process 0 alone writes the metrics (every log_every steps to
        directory/metrics.jsonl, and progress(step, record) on every process) and the settings; hooks as
        in `training.fit` (they run on every process: one that writes files checks `training.is_main()`).
        Returns (state, replicated over the mesh; the step it resumed from)."""
    mesh = mesh or train_mesh(config.batch)
    if config.batch % mesh.devices.size:
        n = mesh.devices.size
        raise ValueError(f"batch {config.batch} does not split over the mesh's {n} devices; use a multiple of {n}")
    loss = config.loss()
    variables = training.replicate(variables, mesh)
    style = training.replicate(np.asarray(style, np.float32), mesh)
    grams = jax.jit(loss.style_grams, out_shardings=NamedSharding(mesh, P()))(variables, style)
    step_fn = make_train_step(loss, mesh=mesh)
    rows = training.process_rows(mesh, config.batch)
    if isinstance(batches, ContentBatches):  # each process loads only its own rows

        def batch_at(i: int) -> jax.Array:
            return training.global_batch(batches.rows(i, rows), mesh)
    else:

        def batch_at(i: int) -> jax.Array:
            return training.put_global(batches(i), mesh)

    log = training.MetricsLog(pathlib.Path(directory).absolute() / "metrics.jsonl")
    with training.Checkpointer(directory, keep=config.keep, save_every=config.save_every, config=config) as ck:
        start = ck.latest_step or 0
        state, _ = training.fit(
            lambda st, batch, rng: step_fn(st, batch, variables, grams),
            training.replicate(initial_state(config), mesh),
            batch_at,
            config.steps,
            ck,
            rng=jax.random.key(config.seed),
            log=log,
            log_every=config.log_every,
            hooks=hooks,
            progress=progress,
        )
    log.close()
    return state, min(start, config.steps)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def image_files(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The images under a folder (recursively, sorted); a one-line ValueError when there are none."""
    files = sorted(p for p in pathlib.Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images (.jpg/.png/...) under {folder}; give a folder that holds some")
    return files


@dataclasses.dataclass(frozen=True)
class ContentBatches:
    """batches(step) -> the global batch [batch, size, size, 3] in [0, 1] of a step, a pure function of
    it: random square crops (short side resized to size) of `files`, or embedded procedural scenes
    (files None). batches.rows(step, rows) -> only those rows of it: what one process of many loads.
    Each row is drawn from its own seed (seed, step, row), so any split of the rows sees the same data."""

    size: int
    batch: int
    seed: int = 0
    files: tuple[pathlib.Path, ...] | None = None
    fit: str = "crop"

    def __call__(self, step: int) -> np.ndarray:
        return self.rows(step, slice(0, self.batch))

    def rows(self, step: int, rows: slice) -> np.ndarray:
        return np.stack([self._row(step, r) for r in range(*rows.indices(self.batch))])

    def _row(self, step: int, row: int) -> np.ndarray:

        if self.files is None:
            return im.synthetic_scene(self.size, self.size, seed=10_000 + step * self.batch + row)
        rng = np.random.default_rng([self.seed, step, row])
        if self.fit == "squash":
            return squash(im.load_image(self.files[rng.integers(len(self.files))]), self.size)
        x = im.load_image(self.files[rng.integers(len(self.files))], self.size)
        h0, w0 = rng.integers(0, x.shape[0] - self.size + 1), rng.integers(0, x.shape[1] - self.size + 1)
        return x[h0 : h0 + self.size, w0 : w0 + self.size]


def squash(x: np.ndarray, size: int) -> np.ndarray:
    """[H, W, 3] -> [size, size, 3]: cropped to a multiple of 16 px from the top left, then resized
    without keeping the aspect, as make_style_dataset.py:53-58 builds ms-coco-256.h5."""

    h, w = x.shape[:2]
    return im.resize_array(x[: max(16, h - h % 16), : max(16, w - w % 16)], (size, size))


def content_batches(
    folder: str | os.PathLike | None, size: int, batch: int, seed: int = 0, fit: str = "crop"
) -> ContentBatches:
    """The training batches: random crops (fit "crop") or squashed whole images ("squash", see `squash`)
    of a folder's images, or embedded procedural scenes (None)."""
    if fit not in CONTENT_FITS:
        raise ValueError(f"content fit must be one of {CONTENT_FITS}, got {fit!r}")
    return ContentBatches(size, batch, seed, None if folder is None else tuple(image_files(folder)), fit)


def restore(directory: str | os.PathLike) -> tuple[FastStyleConfig, Any]:
    """(the run's settings, the newest checkpoint's network parameters) from a folder written by
    `train`; one-line FileNotFoundError / CheckpointMismatch."""
    try:
        config, state = training.restore(directory, FastStyleConfig, initial_state)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; train one with python -m experiments.train_fast_style") from None
    return config, state.params
