"""The `paper` style preset against leongatys/PytorchNeuralStyleTransfer, transcribed.

Expected values come from a PyTorch transcription of NeuralStyleTransfer.ipynb (commit
be6c8e2b35568669a5a0ac10b66c912207ad355d); each `ipynb:Lnnn` comment is the line of the notebook's raw
JSON that the line below transcribes. Nothing here computes an expected value with dfijax. Same seeded
random VGG-19 weights on both sides; the notebook's `vgg_conv.pth` expects Caffe preprocessing, so dfijax
gets its "caffe" constants.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfijax import style
from dfijax.invert import SolverConfig
from dfijax.vgg import preprocess_constants
from tests.conftest import smooth_images

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

# ipynb:L59-L74: conv{b}_{l} = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
CONVS = [
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("conv4_1", 256, 512),
    ("conv4_2", 512, 512),
    ("conv4_3", 512, 512),
    ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
    ("conv5_2", 512, 512),
    ("conv5_3", 512, 512),
    ("conv5_4", 512, 512),
]


class NotebookVGG(nn.Module):
    def __init__(self, pool="max"):  # ipynb:L56 (the default `VGG()` of ipynb:L177 is max)
        super().__init__()
        for name, cin, cout in CONVS:  # ipynb:L59-L74
            setattr(self, name, nn.Conv2d(cin, cout, kernel_size=3, padding=1))
        for i in range(1, 6):
            if pool == "max":  # ipynb:L75-L80
                setattr(self, f"pool{i}", nn.MaxPool2d(kernel_size=2, stride=2))
            elif pool == "avg":  # ipynb:L81-L86
                setattr(self, f"pool{i}", nn.AvgPool2d(kernel_size=2, stride=2))

    def forward(self, x, out_keys):  # ipynb:L88
        out = {}  # ipynb:L89
        out["r11"] = F.relu(self.conv1_1(x))  # ipynb:L90
        out["r12"] = F.relu(self.conv1_2(out["r11"]))  # ipynb:L91
        out["p1"] = self.pool1(out["r12"])  # ipynb:L92
        out["r21"] = F.relu(self.conv2_1(out["p1"]))  # ipynb:L93
        out["r22"] = F.relu(self.conv2_2(out["r21"]))  # ipynb:L94
        out["p2"] = self.pool2(out["r22"])  # ipynb:L95
        out["r31"] = F.relu(self.conv3_1(out["p2"]))  # ipynb:L96
        out["r32"] = F.relu(self.conv3_2(out["r31"]))  # ipynb:L97
        out["r33"] = F.relu(self.conv3_3(out["r32"]))  # ipynb:L98
        out["r34"] = F.relu(self.conv3_4(out["r33"]))  # ipynb:L99
        out["p3"] = self.pool3(out["r34"])  # ipynb:L100
        out["r41"] = F.relu(self.conv4_1(out["p3"]))  # ipynb:L101
        out["r42"] = F.relu(self.conv4_2(out["r41"]))  # ipynb:L102
        out["r43"] = F.relu(self.conv4_3(out["r42"]))  # ipynb:L103
        out["r44"] = F.relu(self.conv4_4(out["r43"]))  # ipynb:L104
        out["p4"] = self.pool4(out["r44"])  # ipynb:L105
        out["r51"] = F.relu(self.conv5_1(out["p4"]))  # ipynb:L106
        return [out[key] for key in out_keys]  # ipynb:L111 (r52…p5, ipynb:L107-L110, unused by the loss)


class GramMatrix(nn.Module):  # ipynb:L123
    def forward(self, input):  # ipynb:L124
        b, c, h, w = input.size()  # ipynb:L125
        F_ = input.view(b, c, h * w)  # ipynb:L126
        G = torch.bmm(F_, F_.transpose(1, 2))  # ipynb:L127
        G.div_(h * w)  # ipynb:L128
        return G  # ipynb:L129


class GramMSELoss(nn.Module):  # ipynb:L131
    def forward(self, input, target):  # ipynb:L132
        out = nn.MSELoss()(GramMatrix()(input), target)  # ipynb:L133
        return out  # ipynb:L134


def prep(x_hwc01: np.ndarray) -> torch.Tensor:
    """ipynb:L147-L153 after transforms.Scale (the test images are already at the stage size)."""
    x = torch.from_numpy(np.ascontiguousarray(x_hwc01.transpose(2, 0, 1)))  # ToTensor, ipynb:L148
    x = x[torch.LongTensor([2, 1, 0])]  # turn to BGR, ipynb:L149
    x = x - torch.tensor([0.40760392, 0.45795686, 0.48501961]).view(3, 1, 1)  # Normalize, std 1: ipynb:L150-L151
    return x.mul_(255)  # ipynb:L152


def notebook_net(params, pool: str) -> NotebookVGG:
    """The notebook's VGG with the same weights (vgg.load_state_dict, ipynb:L177-L180), OIHW from HWIO."""
    vgg = NotebookVGG(pool)
    sd = {}
    for name, _, _ in CONVS:
        sd[f"{name}.weight"] = torch.from_numpy(np.asarray(params[name]["kernel"]).transpose(3, 2, 0, 1).copy())
        sd[f"{name}.bias"] = torch.from_numpy(np.asarray(params[name]["bias"]).copy())
    vgg.load_state_dict(sd)
    for param in vgg.parameters():  # ipynb:L179-L180
        param.requires_grad = False
    return vgg


def notebook_loss_and_grad(vgg, content, style_img, x):
    """The notebook's objective at opt_img = prep(x) and its gradient w.r.t. opt_img, with targets
    from the content and style images; returns (loss, d loss / d x) with x RGB in [0, 1]."""
    style_image, content_image = prep(style_img)[None], prep(content)[None]  # ipynb:L197-L202
    style_layers = ["r11", "r21", "r31", "r41", "r51"]  # ipynb:L251
    content_layers = ["r42"]  # ipynb:L252
    loss_layers = style_layers + content_layers  # ipynb:L253
    loss_fns = [GramMSELoss()] * len(style_layers) + [nn.MSELoss()] * len(content_layers)  # ipynb:L254
    style_weights = [1e3 / n**2 for n in [64, 128, 256, 512, 512]]  # ipynb:L259
    content_weights = [1e0]  # ipynb:L260
    weights = style_weights + content_weights  # ipynb:L261
    style_targets = [GramMatrix()(A).detach() for A in vgg(style_image, style_layers)]  # ipynb:L264
    content_targets = [A.detach() for A in vgg(content_image, content_layers)]  # ipynb:L265
    targets = style_targets + content_targets  # ipynb:L266
    opt_img = prep(x)[None].clone().requires_grad_(True)  # the optimised variable, ipynb:L205
    out = vgg(opt_img, loss_layers)  # ipynb:L315
    layer_losses = [weights[a] * loss_fns[a](A, targets[a]) for a, A in enumerate(out)]  # ipynb:L316
    loss = sum(layer_losses)  # ipynb:L317
    loss.backward()  # ipynb:L318
    # chain rule through prep (ipynb:L149-L152): d/dx_rgb = 255 · (d/d opt_img) in reversed channel order
    g = opt_img.grad[0].numpy()[::-1].transpose(1, 2, 0) * 255.0
    return loss.item(), g


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_paper_preset_objective_and_gradient_equal_the_notebook(random_vgg, pooling):
    """Value and image gradient of the `paper` preset's objective (max pooling; `--pooling avg` for
    the other pooling the notebook offers) equal the notebook's loss on a 40×36 content and a 36×44 style."""
    content = smooth_images(1, 40, 36, seed=11)[0]
    style_img = smooth_images(1, 36, 44, seed=12)[0][:, ::-1] ** 0.5
    x = np.clip(content + 0.15 * np.random.default_rng(0).standard_normal(content.shape), 0, 1).astype(np.float32)

    cfg = style.style_config("paper") if pooling == "max" else style.style_config("paper", pooling="avg")
    loss = cfg.loss()
    assert loss.model.pooling == pooling
    variables = {**random_vgg.variables, "preprocess": preprocess_constants("caffe")}
    t = style.style_targets(loss, variables, jnp.asarray(content)[None], [jnp.asarray(style_img)])
    t = {k: v[0] for k, v in t.items()}
    value, grad = jax.jit(jax.value_and_grad(lambda y, v, tg: loss(y, v, tg)))(jnp.asarray(x), variables, t)

    vgg = notebook_net(random_vgg.variables["params"], pooling)
    ref_value, ref_grad = notebook_loss_and_grad(vgg, content, np.ascontiguousarray(style_img), x)
    assert ref_value > 0
    np.testing.assert_allclose(float(value), ref_value, rtol=2e-4)
    grad = np.asarray(grad)
    assert np.linalg.norm(ref_grad) > 0
    assert np.linalg.norm(grad - ref_grad) <= 2e-4 * np.linalg.norm(ref_grad)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-3 * np.abs(ref_grad).max())


def _notebook_schedule(max_iter: int) -> tuple[int, int]:
    """The notebook's optimisation loop (ipynb:L306-L326; the 800 px one, ipynb:L403-L421, is the same)
    on f(x) = Σx, whose fixed-step L-BFGS never stops early: (closure evaluations, L-BFGS updates)."""
    opt_img = torch.zeros(4, requires_grad=True)
    optimizer = torch.optim.LBFGS([opt_img])  # ipynb:L308: the defaults
    n_iter = [0]  # ipynb:L309
    while n_iter[0] <= max_iter:  # ipynb:L311

        def closure():  # ipynb:L313
            optimizer.zero_grad()  # ipynb:L314
            loss = opt_img.sum()  # stands in for ipynb:L315-L317
            loss.backward()  # ipynb:L318
            n_iter[0] += 1  # ipynb:L319
            return loss  # ipynb:L324

        optimizer.step(closure)  # ipynb:L326
    # every update moves each entry by −t·g = −1, except the first by −1/‖g‖₁ = −1/4
    updates = round(-opt_img[0].item() - 0.25) + 1
    return n_iter[0], updates


def test_paper_preset_schedule_init_and_solver_are_the_notebooks():
    cfg = style.style_config("paper")
    runs = [_notebook_schedule(500), _notebook_schedule(200)]  # max_iter, ipynb:L306; max_iter_hr, ipynb:L403
    assert runs == [(520, 520), (220, 220)]
    # 512 px, then 800 px (img_size ipynb:L146, img_size_hr ipynb:L347), one dfijax iteration per update
    assert cfg.stages == ((512, runs[0][1]), (800, runs[1][1]))
    assert cfg.init == "content"  # opt_img = content_image.data.clone(), ipynb:L205
    lbfgs = inspect.signature(torch.optim.LBFGS).parameters  # optim.LBFGS([opt_img]), ipynb:L308 and L404
    assert lbfgs["line_search_fn"].default is None and lbfgs["lr"].default == 1
    solver = cfg.solver()
    assert solver == SolverConfig(history_size=lbfgs["history_size"].default) and solver.history_size == 100
    assert solver.linesearch is None and solver.bounds is None and solver.ftol == 0
    loss = cfg.loss()
    assert loss.model.pooling == "max"  # vgg = VGG(), ipynb:L177, pool='max' by default, ipynb:L56
    assert loss.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # ipynb:L251
    assert loss.content_layers == ("relu4_2",) and loss.content_weight == 1.0  # ipynb:L252, L260
    np.testing.assert_allclose(loss.weights, [1e3 / n**2 for n in [64, 128, 256, 512, 512]])  # ipynb:L259
    assert loss.tv_weight == 0 and loss.gram_normalize == "hw"  # no TV term, ipynb:L316; G / (h·w), ipynb:L128
