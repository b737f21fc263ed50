"""A plain PyTorch VGG-16 / VGG-19 and L-BFGS feature inversion, written independently of dfijax.

Used two ways: the weight-conversion cross-check (tests save this net in each source layout and
compare every tap with dfijax's output), and the speed reference of benchmarks/bench_inversion.py.
Only torch and numpy here; nothing imported from dfijax.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# torchvision's layer lists: numbers are conv widths, "M" a 2x2 max pool.
CFGS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
CFG = CFGS[19]


def _names(cfg: list = CFG) -> list[str]:
    names, block, conv = [], 1, 1
    for v in cfg:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


NAMES = _names()  # index i of VGG-19's `features` produces NAMES[i]
CONVS = [n for n in NAMES if n.startswith("conv")]


class TorchVGG(nn.Module):
    """VGG-16/19 features as torchvision lays them out (`features.N`), NCHW, returning named taps.
    `names[i]` is the tap that features[i] produces; `convs` the convolution names in order.
    ceil_mode: pools round odd sizes up, as Caffe, Chainer (cover_all) and loadcaffe's nets do."""

    def __init__(self, pooling: str = "max", depth: int = 19, ceil_mode: bool = False):
        super().__init__()
        self.depth, self.names = depth, _names(CFGS[depth])
        self.convs = [n for n in self.names if n.startswith("conv")]
        layers, cin = [], 3
        for v in CFGS[depth]:
            if v == "M":
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                layers.append(pool(2, 2, ceil_mode=ceil_mode))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, taps: list[str]) -> dict[str, torch.Tensor]:
        last = max(self.names.index(t) for t in taps)
        out = {}
        for i in range(last + 1):
            x = self.features[i](x)
            if self.names[i] in taps:
                out[self.names[i]] = x
        return out


class TorchVGG19(TorchVGG):
    def __init__(self, pooling: str = "max"):
        super().__init__(pooling, 19)


def seeded_vgg19(seed: int = 0, pooling: str = "max") -> TorchVGG:
    """Random VGG-19 from torch's own RNG (kaiming fan-out weights, small random biases)."""
    return seeded_vgg(seed, pooling, depth=19)


def seeded_vgg(seed: int = 0, pooling: str = "max", depth: int = 19) -> TorchVGG:
    """Random VGG-`depth` from torch's own RNG (kaiming fan-out weights, small random biases)."""
    g = torch.Generator().manual_seed(seed)
    net = TorchVGG(pooling, depth)
    with torch.no_grad():
        for m in net.features:
            if isinstance(m, nn.Conv2d):
                std = (2.0 / (m.out_channels * 9)) ** 0.5
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
    return net.eval()


def load_hwio(net: TorchVGG, params: dict) -> TorchVGG:
    """Copy {conv: {"kernel": HWIO, "bias"}} numpy weights into the net (for same-weights benchmarks)."""
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for name, m in zip(net.convs, convs):
            m.weight.copy_(torch.from_numpy(np.transpose(np.asarray(params[name]["kernel"]), (3, 2, 0, 1)).copy()))
            m.bias.copy_(torch.from_numpy(np.asarray(params[name]["bias"]).copy()))
    return net


def torchvision_state_dict(net: TorchVGG) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def gatys_state_dict(net: TorchVGG) -> dict[str, torch.Tensor]:
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    sd = {}
    for name, m in zip(net.convs, convs):
        sd[f"{name}.weight"] = m.weight.detach().clone()
        sd[f"{name}.bias"] = m.bias.detach().clone()
    return sd


def keras_arrays(net: TorchVGG) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{block{b}_conv{l}: (HWIO kernel, bias)} as Keras stores them."""
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    out = {}
    for name, m in zip(net.convs, convs):
        b, l = name[4], name[6]
        out[f"block{b}_conv{l}"] = (
            m.weight.detach().numpy().transpose(2, 3, 1, 0).copy(),
            m.bias.detach().numpy().copy(),
        )
    return out


def preprocess(x_nhwc_01: np.ndarray | torch.Tensor, kind: str) -> torch.Tensor:
    """RGB [B, H, W, 3] in [0, 1] -> the NCHW tensor the weights expect."""
    x = torch.as_tensor(np.asarray(x_nhwc_01), dtype=torch.float32).permute(0, 3, 1, 2)
    if kind == "torchvision":
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (x - mean) / std
    if kind == "caffe":
        bgr = x.flip(1) * 255.0
        return bgr - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    raise ValueError(kind)


def tv_beta2(x: torch.Tensor, scale: float = 255.0) -> torch.Tensor:
    """Σ over images, channels, pixels of squared right + down differences of x·scale (NCHW)."""
    x = x * scale
    dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return (dx.square() + dy.square()).sum()


def invert_lbfgs(
    net: TorchVGG,
    targets: dict[str, torch.Tensor],
    x0: torch.Tensor,
    iters: int,
    history_size: int = 10,
    tv_weight: float = 0.0,
    autocast_bf16: bool = False,
    preprocess_kind: str = "torchvision",
) -> tuple[torch.Tensor, list[float]]:
    """Minimise Σ_taps ½‖φ(x) − t‖² + tv_weight·TV(x) over x (NHWC in [0, 1]) jointly with
    torch.optim.LBFGS, no line search, exactly `iters` iterations. Returns (x, per-iteration losses)."""
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=iters,
        max_eval=iters * 2,
        history_size=history_size,
        tolerance_grad=-1.0,
        tolerance_change=-1.0,
        line_search_fn=None,
    )
    mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
    losses: list[torch.Tensor] = []

    def closure():
        opt.zero_grad(set_to_none=True)
        xc = x.permute(0, 3, 1, 2)
        if preprocess_kind == "torchvision":
            inp = (xc - mean) / std
        else:
            inp = xc.flip(1) * 255.0 - torch.tensor([103.939, 116.779, 123.68], device=x.device).view(1, 3, 1, 1)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            feats = net(inp, list(targets))
        loss = sum(0.5 * (feats[t].float() - targets[t]).square().sum() for t in targets)
        if tv_weight:
            loss = loss + tv_weight * tv_beta2(xc)
        loss.backward()
        losses.append(loss.detach())
        return loss

    opt.step(closure)
    return x.detach(), [float(v) for v in losses]
