"""The fast style `paper` preset against jcjohnson/fast-neural-style (Lua Torch).

Expected values come from a torch/numpy transcription of the reference's code, each line citing the file
and line it transcribes (train.lua, fast_neural_style/*.lua; torch's optim/adam.lua), never from dfijax's
own functions. Files of fast-neural-style cited as <file>.lua:<line> are under fast_neural_style/ unless
they are train.lua or fast_neural_style.lua.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from dfijax.style import fast as fs
from dfijax.style import fast_run
from dfijax.weights import random_weights

VGG_MEAN = np.array([103.939, 116.779, 123.68])  # preprocess.lua:48


def test_paper_preset_is_train_lua_defaults():
    cfg = fs.preset("paper")
    lua = dict(
        width=32,  # train.lua:20 -arch c9s1-32,d64,d128,R128,R128,R128,R128,R128,u64,u32,c9s1-3
        blocks=5,  # train.lua:20 (five R128)
        upsample="transpose",  # train.lua:20 'u64,u32' -> models.lua:101-104 SpatialFullConvolution
        padding="reflect-start",  # train.lua:24 -padding_type reflect-start
        output="tanh",  # models.lua:137-138 nn.Tanh, nn.MulConstant(opt.tanh_constant)
        preprocess="vgg",  # train.lua:26 -preprocessing vgg
        eps=1e-5,  # InstanceNormalization.lua:21 eps or 1e-5 (train.lua:21 -use_instance_norm 1)
        weight_init="torch",  # models.lua builds fresh nn modules: their reset() defaults
        tv_weight=1e-6,  # train.lua:33 -tv_strength 1e-6
        content_weight=1.0,  # train.lua:36 -content_weights 1.0
        content_layer="relu3_3",  # train.lua:37 -content_layers 16 (vgg16.t7 module 16)
        vgg=16,  # train.lua:38 -loss_network models/vgg16.t7
        style_size=256,  # train.lua:42 -style_image_size 256
        style_fit="long",  # train.lua:131 image.scale(img, 256): the long side (torch image init.lua:676-682)
        style_weight=5.0,  # train.lua:43 -style_weights 5.0, repeated per layer (utils.lua:28-34)
        style_layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"),  # train.lua:44 -style_layers 4,9,16,23
        steps=40000,  # train.lua:51 -num_iterations 40000
        batch=4,  # train.lua:53 -batch_size 4
        lr=1e-3,  # train.lua:54 -learning_rate 1e-3 (train.lua:55 -lr_decay_every -1: no decay)
        optimizer="torch-adam",  # train.lua:239 optim.adam
        save_every=1000,  # train.lua:61 -checkpoint_every 1000
        size=256,  # make_style_dataset.py:17-18 --height 256 --width 256
        content_fit="squash",  # make_style_dataset.py:53-58 crop to a multiple of 16, imresize to 256x256
        normalize="reference",  # the Lua modules' losses, checked below
    )
    assert {k: getattr(cfg, k) for k in lua} == lua
    # the settings reach the network and the loss
    assert cfg.net() == fs.TransformNet(
        output="tanh", upsample="transpose", padding="reflect-start", preprocess="vgg", eps=1e-5, weight_init="torch"
    )
    loss = cfg.loss()
    assert (loss.model.depth, loss.model.pooling, loss.normalize) == (16, "max", "reference")
    assert (loss.content_weight, loss.style_weight, loss.tv_weight) == (1.0, 5.0, 1e-6)
    # vgg16.t7 (loadcaffe) module order: conv1_1 relu1_1 conv1_2 relu1_2(4) pool1 conv2_1 relu2_1 conv2_2
    # relu2_2(9) pool2 conv3_1 relu3_1 conv3_2 relu3_2 conv3_3 relu3_3(16) pool3 ... relu4_3(23)
    names = [
        n
        for b, k in ((1, 2), (2, 2), (3, 3), (4, 3))
        for l in range(1, k + 1)
        for n in (f"conv{b}_{l}", f"relu{b}_{l}")
    ]
    names = names[:4] + ["pool1"] + names[4:8] + ["pool2"] + names[8:14] + ["pool3"] + names[14:]
    assert [names[i - 1] for i in (4, 9, 16, 23)] == list(cfg.style_layers) and names[16 - 1] == cfg.content_layer
    # the project's own behaviour stays the quick preset
    quick = fs.preset("quick")
    assert quick == fs.FastStyleConfig(size=64, steps=200, save_every=50)
    assert (quick.normalize, quick.padding, quick.output, quick.upsample, quick.optimizer) == (
        "relative",
        "reflect",
        "sigmoid",
        "resize",
        "adam",
    )
    assert fs.preset("paper", vgg=19).content_layer == "relu3_4"
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        fs.preset("fast")


# ---------------------------------------------------------------- transcription of the Lua loss (torch)


def torch_vgg16(params, a, upto="relu4_3"):
    """vgg16.t7's layers on the Caffe-preprocessed batch a [N, 3, H, W] (BGR, 0-255, minus the mean):
    3x3 convs pad 1, ReLU, 2x2 max pools rounding up (loadcaffe.cpp writes SpatialMaxPooling `:ceil()`);
    returns every relu output by name."""
    out, h = {}, a
    for b, n in ((1, 2), (2, 2), (3, 3), (4, 3)):
        for l in range(1, n + 1):
            k = torch.tensor(np.asarray(params[f"conv{b}_{l}"]["kernel"]), dtype=torch.float64).permute(3, 2, 0, 1)
            bias = torch.tensor(np.asarray(params[f"conv{b}_{l}"]["bias"]), dtype=torch.float64)
            h = torch.relu(torch.nn.functional.conv2d(h, k, bias, padding=1))
            out[f"relu{b}_{l}"] = h
            if f"relu{b}_{l}" == upto:
                return out
        h = torch.nn.functional.max_pool2d(h, 2, 2, ceil_mode=True)
    return out


def lua_preprocess(x_nhwc):
    """preprocess.lua:57-62: RGB [0, 1] -> index BGR, *255, minus the mean; NHWC -> NCHW."""
    x = torch.tensor(np.asarray(x_nhwc, np.float64)).permute(0, 3, 1, 2)
    return x[:, [2, 1, 0]] * 255 - torch.tensor(VGG_MEAN).view(1, 3, 1, 1)


def lua_gram(f):
    """GramMatrix.lua:38-49 (4-D input): x_flat = view(N, C, H*W); bmm(x_flat, x_flat^T) / (C*H*W)."""
    n, c, h, w = f.shape
    x_flat = f.reshape(n, c, h * w)  # GramMatrix.lua:42
    return torch.bmm(x_flat, x_flat.transpose(1, 2)) / (c * h * w)  # GramMatrix.lua:44, 48


def lua_tv_grad(a, strength):
    """TotalVariation.lua:19-34 on a [N, C, H, W] (numpy): the gradient it adds; its forward adds no loss."""
    g = np.zeros_like(a)  # :20
    x_diff = a[:, :, :-1, :-1] - a[:, :, :-1, 1:]  # :25-26
    y_diff = a[:, :, :-1, :-1] - a[:, :, 1:, :-1]  # :27-28
    g[:, :, :-1, :-1] += x_diff + y_diff  # :29
    g[:, :, :-1, 1:] -= x_diff  # :30
    g[:, :, 1:, :-1] -= y_diff  # :31
    return g * strength  # :32


def torch_pooled(size):
    """torch/nn lib/THNN/generic/SpatialMaxPooling.c, ceil_mode (loadcaffe's `:ceil()` in vgg16.t7),
    kernel 2, stride 2, pad 0: (long)(ceil((float)(inputHeight - kH + 2*padH) / dH)) + 1."""
    kH, dH, padH = 2, 2, 0
    return int(np.ceil(np.float32(size - kH + 2 * padH) / dH)) + 1


def test_paper_loss_network_has_loadcaffes_layer_shapes():
    """vgg16.t7's relu1_2, relu2_2, relu3_3, relu4_3 (train.lua:44 style, :37 content) sit after 0-3
    pools; at the 256 px training size they agree with flooring, on a long-side-256 style image not."""
    cfg = fs.preset("paper")
    model = cfg.loss().model
    taps = tuple(dict.fromkeys((*cfg.style_layers, cfg.content_layer)))
    pools = {"relu1_2": 0, "relu2_2": 1, "relu3_3": 2, "relu4_3": 3}
    w16 = random_weights(0, preprocess="caffe", depth=16)
    for h, w in [(200, 200), (350, 450), (256, 171), (37, 53)]:
        want = {}
        for t in taps:
            hh, ww = h, w
            for _ in range(pools[t]):
                hh, ww = torch_pooled(hh), torch_pooled(ww)
            want[t] = (hh, ww)
        x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
        got = jax.eval_shape(lambda v, x: model.apply(v, x, taps=taps), w16.variables, x)
        assert {t: tuple(v.shape[1:3]) for t, v in got.items()} == want, (h, w)
    assert want["relu4_3"] == (5, 7)  # 37x53: flooring gives 4x6


def test_paper_loss_value_and_gradient_match_the_lua_modules(images):
    w = random_weights(0, preprocess="caffe", depth=16)
    cfg = fs.preset("paper", size=32, batch=2)
    loss = cfg.loss()
    gen = images(2, 32, 32, seed=1) * 0.8 + 0.1  # the network's output, RGB [0, 1]
    content = images(2, 32, 32, seed=2)
    style = images(1, 40, 36, seed=3)[0]
    grams = jax.jit(loss.style_grams)(w.variables, jnp.asarray(style))
    (total, parts), g = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        jnp.asarray(gen), jnp.asarray(content), w.variables, grams
    )

    p = w.variables["params"]
    # train.lua:130-134 + PerceptualCriterion.lua:71-79: the style image preprocessed, its Grams captured
    fs_style = torch_vgg16(p, lua_preprocess(style[None]))
    targets = {l: lua_gram(fs_style[l]) for l in cfg.style_layers}  # StyleLoss.lua:40-42 (capture)
    # PerceptualCriterion.lua:85-93: content targets from y = the preprocessed content batch (DataLoader.lua:106-108)
    content_target = torch_vgg16(p, lua_preprocess(content))["relu3_3"].detach()  # ContentLoss.lua:41
    a = lua_preprocess(gen).requires_grad_(True)  # the model output in the preprocessed space
    f = torch_vgg16(p, a)
    mse = torch.nn.functional.mse_loss  # MSECriterion, sizeAverage true (nn/MSECriterion.lua:5-9)
    content_loss = 1.0 * mse(f["relu3_3"], content_target)  # ContentLoss.lua:43 strength * crit
    style_losses = []
    for l in cfg.style_layers:
        agg = lua_gram(f[l])  # StyleLoss.lua:40
        target = targets[l].expand_as(agg)  # StyleLoss.lua:45-48, one target expanded to the batch
        style_losses.append(5.0 * mse(agg, target))  # StyleLoss.lua:49
    percep = content_loss + sum(style_losses)  # PerceptualCriterion.lua:144-153
    percep.backward()  # PerceptualCriterion.lua:158-161
    grad_a = a.grad.numpy() + lua_tv_grad(a.detach().numpy(), 1e-6)  # models.lua:139 TotalVariation after the output
    # the same gradient w.r.t. dfijax's RGB [0, 1] image: a = 255 * y[BGR] - mean
    grad_y = 255 * grad_a[:, [2, 1, 0]].transpose(0, 2, 3, 1)

    np.testing.assert_allclose(float(total), percep.item(), rtol=2e-4)  # TV adds no value (TotalVariation.lua:12-15)
    np.testing.assert_allclose(float(parts["content"]), content_loss.item(), rtol=2e-4)
    np.testing.assert_allclose(float(parts["style"]), sum(s.item() for s in style_losses) / 5.0, rtol=2e-4)
    g = np.asarray(g, np.float64)
    scale = np.abs(grad_y).max()
    np.testing.assert_allclose(g / scale, grad_y / scale, atol=2e-4)
    # the TV part alone is well above the tolerance, so the test sees it
    tv_only = 255 * lua_tv_grad(a.detach().numpy(), 1e-6)[:, [2, 1, 0]].transpose(0, 2, 3, 1)
    assert np.abs(tv_only).max() / scale > 1e-3


# ---------------------------------------------------------- transcription of the Lua network (torch)


def lua_instance_norm(x, weight, bias, eps=1e-5):
    """InstanceNormalization.lua:33-53: SpatialBatchNormalization(N*C, eps) in training mode on the
    view [1, N*C, H, W], weight and bias repeated N times."""
    n, c, h, w = x.shape
    out = torch.nn.functional.batch_norm(
        x.reshape(1, n * c, h, w), None, None, weight.repeat(n), bias.repeat(n), training=True, eps=eps
    )  # :45-50
    return out.reshape(n, c, h, w)  # :50 viewAs(input)


def t(x):
    return torch.tensor(np.asarray(x, np.float64))


def test_paper_network_matches_the_lua_model(images):
    # a tiny instance of the paper's network: width 4, 1 residual block (the layout is train.lua's)
    cfg = fs.preset("paper", width=4, blocks=1, size=32, batch=2)
    net = cfg.net()
    x = images(2, 32, 40, seed=4)
    init = jax.jit(lambda k, z: net.init_with_output(k, z, capture_intermediates=True))  # one compilation
    y, variables = init(jax.random.key(1), jnp.asarray(x))
    p, inter = variables["params"], variables

    def conv(h, name, stride=1, pad=0):
        k = t(p[name]["kernel"]).permute(3, 2, 0, 1)
        return torch.nn.functional.conv2d(h, k, t(p[name]["bias"]), stride=stride, padding=pad)

    def norm(h, name):
        return lua_instance_norm(h, t(p[name]["scale"]), t(p[name]["bias"]))

    ups = []

    def full_conv(h, name):
        # nn.SpatialFullConvolution(prev, next, 3, 3, 2, 2, 1, 1, 1, 1) (models.lua:104) ==
        # ConvTranspose2d(stride 2, padding 1, output_padding 1); flax stores the kernel unflipped
        k = t(p[name]["kernel"]).flip(0, 1).permute(2, 3, 0, 1)
        out = torch.nn.functional.conv_transpose2d(h, k, t(p[name]["bias"]), stride=2, padding=1, output_padding=1)
        ups.append(out)
        return out

    h = lua_preprocess(x)  # DataLoader.lua:92 preprocess_fn
    h = torch.nn.functional.pad(h, (8, 8, 8, 8), mode="reflect")  # train.lua:169-175 (ph = (H - out H)/2 = 8)
    h = torch.relu(norm(conv(h, "down0", 1, 4), "in_down0"))  # c9s1-4: models.lua:67-82 (p = 4, zeros), 123-132
    h = torch.relu(norm(conv(h, "down1", 2, 1), "in_down1"))  # d8: models.lua:92-95, 123-132
    h = torch.relu(norm(conv(h, "down2", 2, 1), "in_down2"))  # d16
    r = torch.relu(norm(conv(h, "res0_conv1"), "res0_in1"))  # R16: models.lua:10-26, p = 0 (reflect-start)
    r = norm(conv(r, "res0_conv2"), "res0_in2")  # models.lua:32-37
    h = r + h[:, :, 2:-2, 2:-2]  # models.lua:45-52 ShaveImage(2) + CAddTable; ShaveImage.lua:9-15
    h = torch.relu(norm(full_conv(h, "up0"), "in_up0"))  # u8: models.lua:101-104, 123-132
    h = torch.relu(norm(full_conv(h, "up1"), "in_up1"))  # u4
    h = conv(h, "out", 1, 4)  # c9s1-3, last layer: no norm, no ReLU (models.lua:119-122)
    h = 150 * torch.tanh(h)  # models.lua:137-138
    out = (h + t(VGG_MEAN).view(1, 3, 1, 1)) / 255  # preprocess.lua:66-71 deprocess
    out = out[:, [2, 1, 0]].permute(0, 2, 3, 1).numpy()

    assert y.shape == x.shape
    np.testing.assert_allclose(np.asarray(y), out, atol=2e-5)
    # the upsampling layers: exactly 2x, the same values as torch's fractionally strided convolution
    for name, ref in zip(("up0", "up1"), ups):
        got = np.asarray(inter["intermediates"][name]["__call__"][0]).transpose(0, 3, 1, 2)
        assert got.shape == tuple(ref.shape)
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-4 * np.abs(ref.numpy()).max())
    # 32 x 40 padded to 48 x 56, 12 x 14 at 1/4 scale, 8 x 10 after the unpadded block, then doubled twice
    assert ups[0].shape[-2:] == (16, 20) and ups[1].shape[-2:] == (32, 40)
    # torch's init (nn/SpatialConvolution.lua:34-54): |w| <= 1/sqrt(k*k*C_in); instance-norm scale U(0, 1)
    assert float(jnp.abs(p["down0"]["kernel"]).max()) <= 1 / np.sqrt(9 * 9 * 3)
    assert 0 <= float(p["in_down0"]["scale"].min()) and float(p["in_down0"]["scale"].max()) < 1


def test_torch_adam_is_optim_adam():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=5)
    grads = [rng.normal(size=5) * 10.0**-k for k in range(4)]  # small gradients make eps matter
    tx = fs.torch_adam(1e-3)
    x, state = jnp.asarray(x0), tx.init(jnp.asarray(x0))
    for g in grads:
        upd, state = tx.update(jnp.asarray(g), state)
        x = x + upd
    m, v, xr = np.zeros(5), np.zeros(5), x0.copy()
    for step, g in enumerate(grads, 1):  # optim/adam.lua:28-34 defaults; :56-68
        m = 0.9 * m + (1 - 0.9) * g  # :59
        v = 0.999 * v + (1 - 0.999) * g * g  # :60
        denom = np.sqrt(v) + 1e-8  # :62
        step_size = 1e-3 * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)  # :64-66
        xr = xr - step_size * m / denom  # :68
    np.testing.assert_allclose(np.asarray(x), xr, rtol=1e-6, atol=1e-9)


def test_median_filter_is_utils_lua():
    img = np.random.default_rng(0).uniform(size=(9, 11, 3)).astype(np.float32)
    u = torch.tensor(img).permute(2, 0, 1)
    u = u.unfold(1, 3, 1).contiguous().unfold(2, 3, 1).contiguous()  # utils.lua:130-131
    med = u.reshape(3, 7, 9, 9).median(dim=-1).values  # utils.lua:132-136
    ref = med.permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(fast_run.median_filter(img, 3, keep_size=False), ref)
    kept = fast_run.median_filter(img, 3)
    assert kept.shape == img.shape
    np.testing.assert_array_equal(kept[1:-1, 1:-1], ref)


def test_paper_style_and_content_image_sizes(tmp_path):
    from PIL import Image

    path = tmp_path / "style.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(path)
    # image.scale(img, 32): the long side to 32 (torch image init.lua:676-682)
    assert fast_run.style_image(path, 32, "long").shape == (21, 32, 3)
    assert fast_run.style_image(path, 32).shape == (32, 48, 3)  # quick: the short side
    x = np.random.default_rng(0).uniform(size=(50, 70, 3)).astype(np.float32)
    assert fs.squash(x, 32).shape == (32, 32, 3)  # make_style_dataset.py:53-58


def test_paper_preset_stops_without_vgg16_weights(tmp_path, monkeypatch, capsys):
    from experiments import train_fast_style
    from tests.conftest import isolate

    isolate(monkeypatch, tmp_path)
    assert train_fast_style.main(["--preset", "paper", "--out", str(tmp_path / "run")]) == 1
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert (
        len(err) == 1 and err[0].startswith("error: the paper preset's loss network is VGG-16") and "--vgg 19" in err[0]
    )
    assert not (tmp_path / "run").exists()
    assert train_fast_style.main(["--preset", "paper", "--vgg", "16", "--out", str(tmp_path / "run")]) == 1
    # an explicit --vgg 19 runs on VGG-19 with the analogous layers
    args = train_fast_style.parse(["--preset", "paper", "--vgg", "19", "--size", "32"])
    assert fast_run.loss_depth(args.preset, args.vgg, args.weights) == 19
    cfg = dataclasses.replace(args.config, **fs.loss_layers(args.preset, 19))
    assert (cfg.vgg, cfg.content_layer, cfg.size, cfg.normalize) == (19, "relu3_4", 32, "reference")
