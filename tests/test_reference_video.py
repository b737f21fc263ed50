"""The video `paper` preset against manuelruder/artistic-videos (commit 40e7447), transcribed line by line.

Every expected value here is computed by a transcription of the reference's Lua/C code (torch for the
network and its gradient, numpy elsewhere), never by dfijax's own functions; each line cites the
reference file and line it transcribes. Files: artistic_video.lua (AV), artistic_video_core.lua
(CORE), artistic_video_multiPass.lua (MP), lbfgs.lua, flowFileLoader.lua, consistencyChecker/*.
image.warp is torch/image's generic/image.c Main_warp (bilinear, offset mode, 'pad' mode).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from dfijax.style import flow_files as ff
from dfijax.style import video as vid
from dfijax.vgg import CAFFE_MEAN_BGR, preprocess_constants

torch.set_num_threads(1)  # the transcription is tiny; threads only add start-up cost
MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)  # CORE:L476


# ------------------------------------------------------------------ transcription of the Lua objective


def lua_preprocess(img_chw_rgb):
    """CORE:L475-482: RGB [0, 1] CHW -> BGR, ×256, minus the mean pixel."""
    perm = [2, 1, 0]  # CORE:L477 `torch.LongTensor{3, 2, 1}`
    img = img_chw_rgb[perm] * 256.0  # CORE:L478
    return (
        img - torch.as_tensor(MEAN_BGR).reshape(3, 1, 1) if torch.is_tensor(img) else img - MEAN_BGR.reshape(3, 1, 1)
    )  # CORE:L479-480


def torch_vgg_taps(params, x_chw, taps):
    """loadcaffe VGG-19 up to the deepest tap: conv3x3 pad 1, ReLU, max pooling 2x2/2 rounding up (AV:L58
    `-pooling max`, CORE:L197-209 keeps the SpatialMaxPooling, which loadcaffe.cpp writes with `:ceil()`).
    Returns {tap: [C, h, w]} and keeps the graph."""
    order = [
        (1, 2),
        (2, 2),
        (3, 4),
        (4, 4),
        (5, 4),
    ]
    out, h = {}, x_chw[None]
    for b, n in order:
        for l in range(1, n + 1):
            k = torch.from_numpy(np.asarray(params[f"conv{b}_{l}"]["kernel"])).permute(3, 2, 0, 1)
            bias = torch.from_numpy(np.asarray(params[f"conv{b}_{l}"]["bias"]))
            h = torch.nn.functional.conv2d(h, k, bias, padding=1)
            h = torch.relu(h)
            if f"relu{b}_{l}" in taps:
                out[f"relu{b}_{l}"] = h[0]
            if len(out) == len(taps):
                return out
        h = torch.nn.functional.max_pool2d(h, 2, 2, ceil_mode=True)
    return out


def lua_gram(f):
    """CORE:L351-360 GramMatrix: View(-1) to C x HW, then MM(F, Fᵀ)."""
    flat = f.reshape(f.shape[0], -1)
    return flat @ flat.T


def mse(a, b):
    """nn.MSECriterion (sizeAverage): mean of squared differences."""
    return ((a - b) ** 2).mean()


def lua_objective(params, z_chw, content_rgb, style_rgb, warped_rgb, c, weights):
    """The value feval returns and the gradient net:backward returns (CORE:L90-113) for the single-pass
    net of AV (temporal 'initWeighted' module at index 1, TV, then the VGG with loss modules)."""
    cw, sw, tw, tvw = weights
    content_layers, style_layers = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    taps = content_layers + style_layers
    with torch.no_grad():
        pc = torch_vgg_taps(params, lua_preprocess(content_rgb), taps)  # CORE:L584, L438 content target
        fs = torch_vgg_taps(params, lua_preprocess(style_rgb), taps)  # CORE:L601, L229
        targets = {t: lua_gram(fs[t]) / fs[t].numel() for t in style_layers}  # CORE:L230-231 (one style, blend 1)
    z = z_chw.clone().requires_grad_(True)
    f = torch_vgg_taps(params, z, taps)
    loss, grads_out = 0.0, {}
    for t in content_layers:
        loss = loss + mse(f[t], pc[t]).item() * cw  # CORE:L270
        g = 2 * (f[t] - pc[t]) / f[t].numel()  # CORE:L280 crit:backward
        grads_out[t] = grads_out.get(t, 0) + g * cw  # CORE:L285
    for t in style_layers:
        G = lua_gram(f[t]) / f[t].numel()  # CORE:L379-380
        loss = loss + mse(G, targets[t]).item() * sw  # CORE:L381-382
        dG = 2 * (G - targets[t]) / G.numel()  # CORE:L388 crit:backward
        dG = dG / f[t].numel()  # CORE:L389
        flat = f[t].reshape(f[t].shape[0], -1)
        g = ((dG + dG.T) @ flat).reshape(f[t].shape)  # CORE:L390 gram:backward (MM of F and Fᵀ)
        grads_out[t] = grads_out.get(t, 0) + g * sw  # CORE:L394
    names = list(grads_out)
    torch.autograd.backward([f[t] for t in names], [grads_out[t].detach() for t in names])
    grad = z.grad.detach().clone()
    zd = z.detach()
    # TVLoss (CORE:L409-430): identity forward (no loss), gradient of ½Σ(x_diff² + y_diff²)
    x_diff = zd[:, :-1, :-1] - zd[:, :-1, 1:]  # CORE:L420-421
    y_diff = zd[:, :-1, :-1] - zd[:, 1:, :-1]  # CORE:L422-423
    tv = torch.zeros_like(zd)
    tv[:, :-1, :-1] += x_diff + y_diff  # CORE:L424
    tv[:, :-1, 1:] -= x_diff  # CORE:L425
    tv[:, 1:, :-1] -= y_diff  # CORE:L426
    grad += tv * tvw  # CORE:L427-428
    # WeightedContentLoss per previous frame j (AV:L217-227, CORE:L293-347)
    for j in range(len(warped_rgb)):
        w = torch.sqrt(c[j]).expand(3, *c[j].shape)  # AV:L219 expand to 3 channels; CORE:L300 sqrt
        target = lua_preprocess(warped_rgb[j]) * w  # AV:L183 preprocess; CORE:L301 cmul(target, weights)
        loss = loss + mse(zd * w, target).item() * tw  # CORE:L322
        grad += 2 * (zd * w - target) / zd.numel() * tw  # CORE:L336 crit:backward(cmul(input, w)), L344
    return loss, grad


def torch_pooled(size):
    """torch/nn lib/THNN/generic/SpatialMaxPooling.c, ceil_mode (loadcaffe's `:ceil()`), kernel 2, stride
    2, pad 0: (long)(ceil((float)(inputHeight - kH + 2*padH) / dH)) + 1."""
    kH, dH, padH = 2, 2, 0
    return int(np.ceil(np.float32(size - kH + 2 * padH) / dH)) + 1


def test_paper_network_has_loadcaffes_layer_shapes(random_vgg):
    """The paper preset's VGG-19 at artistic-videos' 450x350 frames (relu3_1 88x113 where flooring gives
    87x112), at 200x200 and at an odd size: every tap the objective reads, as the Lua net sizes it."""
    model = vid.video_config("paper").loss().model
    taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")  # AV:L63-64 content, style
    pools = {"relu1_1": 0, "relu2_1": 1, "relu3_1": 2, "relu4_1": 3, "relu4_2": 3, "relu5_1": 4}
    for h, w in [(350, 450), (200, 200), (37, 53)]:
        want = {}
        for t in taps:
            hh, ww = h, w
            for _ in range(pools[t]):
                hh, ww = torch_pooled(hh), torch_pooled(ww)
            want[t] = (hh, ww)
        x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
        got = jax.eval_shape(lambda v, x: model.apply(v, x, taps=taps), random_vgg.variables, x)
        assert {t: tuple(v.shape[1:3]) for t, v in got.items()} == want, (h, w)
        if (h, w) == (350, 450):
            assert want["relu3_1"] == (88, 113) and want["relu5_1"] == (22, 29)


def test_paper_objective_value_and_gradient_match_the_lua_code(random_vgg):
    """36x44 px (odd at pool4: loadcaffe's ceil pools give relu5_1 3x3 where flooring gives 2x2), seeded
    random VGG-19 with Caffe preprocessing (so the network sees the Lua's input), two earlier frames
    with fractional reliabilities: value and gradient of ArtisticVideosLoss (paper settings) against the
    transcription; 'exact' temporal gradient and TV in the value as variants."""
    H, W = 36, 44
    pre = {k: jnp.asarray(v) for k, v in preprocess_constants("caffe").items()}
    variables = {"params": random_vgg.variables["params"], "preprocess": pre}
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 1, (H, W, 3)).astype(np.float32)
    style = rng.uniform(0, 1, (H, W, 3)).astype(np.float32)
    warped = rng.uniform(0, 1, (2, H, W, 3)).astype(np.float32)
    c = rng.uniform(0, 1, (2, H, W)).astype(np.float32)
    c[0, :4] = 0.0
    c[1, -4:] = 1.0
    z = (rng.normal(0, 30, (H, W, 3))).astype(np.float32)
    weights = (5.0, 1e2, 1e3, 1e-3)  # AV:L35-38 content, style, temporal, tv

    loss = vid.ArtisticVideosLoss()  # the paper defaults
    assert (loss.content_weight, loss.style_weight, loss.temporal_weight, loss.tv_weight) == weights
    assert loss.model.pooling == "max" and loss.content_layers == ("relu4_2",)
    assert loss.model.pool_rounding == "ceil" and vid.video_config("paper").loss().model == loss.model
    grams = vid.av_style_grams(loss, variables, [style], None, (H, W))
    tg = vid.av_targets(loss, variables, content[None], grams, 2)
    tg = {k: v[0] for k, v in tg.items()}
    tg["warped"] = vid.to_caffe(warped)
    tg["reliability"] = jnp.asarray(c)

    @jax.jit
    def everything(x):  # one compile: value, gradient, parts, and the value with TV
        value, grad = jax.value_and_grad(lambda x: loss(x, variables, tg))(x)
        with_tv = vid.ArtisticVideosLoss(tv_in_value=True)(x, variables, tg)
        return value, grad, loss.parts(x, variables, tg), with_tv

    value, grad, parts, value_with_tv = everything(jnp.asarray(z))

    chw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))
    z_chw = chw(z)  # z is the Caffe-space BGR image already: only move channels first
    want_value, want_grad = lua_objective(
        random_vgg.variables["params"],
        z_chw,
        chw(content),
        chw(style),
        [chw(w) for w in warped],
        [torch.from_numpy(cj) for cj in c],
        weights,
    )
    want_grad = np.moveaxis(want_grad.numpy(), 0, -1)
    np.testing.assert_allclose(float(value), want_value, rtol=2e-4)
    scale = np.abs(want_grad).max()
    np.testing.assert_allclose(np.asarray(grad) / scale, want_grad / scale, atol=2e-4)

    # the TV and √c handling are visible: the value has no TV, and the 'exact' gradient differs
    np.testing.assert_allclose(float(value), float(parts["content"] + parts["style"] + parts["temporal"]), rtol=1e-6)
    np.testing.assert_allclose(float(value_with_tv), float(value + parts["tv"]), rtol=1e-6)
    # temporal_gradient: "reference" (CORE:L336, no chain factor √c) vs "exact" (∇value), on a shallow net
    for kind, factor in [("reference", np.sqrt(c)), ("exact", c)]:
        shallow = vid.ArtisticVideosLoss(
            content_layers=("relu1_1",), style_layers=(), content_weight=0.0, tv_weight=0.0, temporal_gradient=kind
        )
        tg1 = {**tg, "content/relu1_1": jnp.zeros((H, W, 64))}
        g = jax.jit(jax.grad(lambda x, s=shallow: s(x, variables, tg1)))(jnp.asarray(z))
        d = np.asarray(z)[None] - np.asarray(tg["warped"])
        want_t = (1e3 * 2 * factor[..., None] * d / z.size).sum(0)
        np.testing.assert_allclose(np.asarray(g), want_t, rtol=1e-4, atol=1e-6 * np.abs(want_t).max())
    with pytest.raises(vid.VideoError, match="temporal_gradient"):
        vid.ArtisticVideosLoss(temporal_gradient="sqrt")


# ------------------------------------------------------------------ initialisation


def lua_image_warp(img_chw, flow_yx, pad_value=None):
    """torch/image generic/image.c Main_warp, mode bilinear, offset_mode true, clamp_mode 'pad' (with
    pad_value) or 'clamp' (pad_value None, image.warp's default); the field is (y, x) as
    flowFileLoader.lua:L20-31 builds it."""
    C, H, W = img_chw.shape
    out = np.empty_like(img_chw)
    for y in range(H):
        for x in range(W):
            iy = y + flow_yx[0, y, x]
            ix = x + flow_yx[1, y, x]
            if iy < 0 or iy > H - 1 or ix < 0 or ix > W - 1:
                if pad_value is not None:
                    out[:, y, x] = pad_value
                    continue
            ix, iy = min(max(ix, 0), W - 1), min(max(iy, 0), H - 1)
            ix_nw, iy_nw = int(np.floor(ix)), int(np.floor(iy))
            ix_se, iy_se = ix_nw + 1, iy_nw + 1
            nw = (ix_se - ix) * (iy_se - iy)
            ne = (ix - ix_nw) * (iy_se - iy)
            sw = (ix_se - ix) * (iy - iy_nw)
            se = (ix - ix_nw) * (iy - iy_nw)
            out[:, y, x] = (
                img_chw[:, iy_nw, ix_nw] * nw
                + img_chw[:, iy_nw, min(ix_se, W - 1)] * ne
                + img_chw[:, min(iy_se, H - 1), ix_nw] * sw
                + img_chw[:, min(iy_se, H - 1), min(ix_se, W - 1)] * se
            )
    return out


def lua_warp_image(img_chw, flow_yx):
    """AV:L291-304 warpImage: pad with -1, then pixels that are -1 in all channels get the mean pixel."""
    mean_pixel = np.array([123.68 / 256.0, 116.779 / 256.0, 103.939 / 256.0])  # AV:L292
    result = lua_image_warp(img_chw, flow_yx, -1.0)  # AV:L293
    off = (result[0] == -1) & (result[1] == -1) & (result[2] == -1)  # AV:L296
    result[:, off] = mean_pixel[:, None]  # AV:L297-299
    return result


def test_init_first_frame_noise_and_later_frame_prev_warped():
    """Frame 1: `torch.randn(content_image:size()):mul(0.001)` (AV:L233-234) used as the Caffe-space
    image; later frames: the previous output warped by the backward flow, out-of-frame pixels the mean
    pixel, preprocessed (AV:L237-243)."""
    z = np.asarray(vid.caffe_noise(jax.random.key(3), (40, 36)))
    chex.assert_shape(z, (40, 36, 3))
    assert abs(z.std() - 0.001) < 1e-4 and abs(z.mean()) < 1e-4  # N(0, 0.001²), the scale of AV:L234
    # in pixels: the mean colour
    np.testing.assert_allclose(np.asarray(vid.from_caffe(z)), np.broadcast_to(MEAN_BGR[::-1] / 256, z.shape), atol=3e-5)

    rng = np.random.default_rng(1)
    prev = rng.uniform(0, 1, (9, 11, 3)).astype(np.float32)
    flow = rng.uniform(-2.5, 2.5, (9, 11, 2)).astype(np.float32)  # (dx, dy); some pixels leave the frame
    flow[0, 0] = (0.0, 8.0)  # exactly on the last row: inside (image.c compares iy > H - 1)
    got = np.asarray(vid.to_caffe(vid.warp_mean_pad(jnp.asarray(prev), jnp.asarray(flow))))
    flow_yx = np.stack([flow[..., 1], flow[..., 0]])  # flowFileLoader.lua:L28-29: plane 1 = v, plane 2 = u
    want = lua_warp_image(np.moveaxis(prev, -1, 0).astype(np.float64), flow_yx)
    want = lua_preprocess(want)  # AV:L243
    want = np.moveaxis(want, 0, -1)  # CHW BGR -> HWC BGR (z's layout)
    assert (np.abs(want).max(-1) < 1e-3).sum() >= 5  # out-of-frame pixels: the mean pixel, 0 preprocessed
    np.testing.assert_allclose(got, want, atol=2e-3)
    np.testing.assert_allclose(np.asarray(vid.from_caffe(vid.to_caffe(prev))), prev, atol=1e-6)
    assert np.allclose(np.asarray(vid.to_caffe(prev))[..., 0], prev[..., 2] * 256 - CAFFE_MEAN_BGR[0], atol=1e-4)


# ------------------------------------------------------------------ long-term weights, multi-pass start


def lua_process_flow_weights(tabl, method):
    """AV:L307-329 processFlowWeights (invert 0), on a list of [H, W] arrays, in place."""
    tabl = [t.copy() for t in tabl]
    if method == "normalize":
        s = tabl[0].copy()  # CORE:L511-517 tabl_sum
        for t in tabl[1:]:
            s += t
        s = np.maximum(s, 1)  # AV:L316
        for j in range(len(tabl)):
            tabl[j] = tabl[j] / s  # AV:L318
    elif method == "closestFirst":
        for j in range(2, len(tabl) + 1):  # AV:L322 (1-based)
            for k in range(1, j):  # AV:L323
                tabl[j - 1] = tabl[j - 1] - tabl[j - k - 1]  # AV:L324 (the closer, already reduced weights)
            tabl[j - 1] = np.maximum(tabl[j - 1], 0)  # AV:L326
    return np.stack(tabl)


def test_long_term_weights_closest_first_and_normalize():
    """J sorted descending (AV:L174), i.e. the closest earlier frame first; fractional reliabilities
    where the code's in-place closestFirst differs from the paper's formula."""
    rng = np.random.default_rng(2)
    masks = rng.choice([0.0, 0.3, 0.5, 1.0], size=(3, 6, 7)).astype(np.float32)
    masks[:, 0, 0] = (0.5, 0.3, 1.0)  # closestFirst: 0.5, 0, 0.5; formula: 0.5, 0, 0.2
    for method in ("closestFirst", "normalize"):
        np.testing.assert_allclose(
            vid.long_term_weights(masks, method), lua_process_flow_weights(list(masks), method), atol=1e-6
        )
    np.testing.assert_allclose(vid.long_term_weights(masks, "closestFirst")[:, 0, 0], [0.5, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(vid.long_term_weights(masks, "formula")[:, 0, 0], [0.5, 0.0, 0.2], atol=1e-6)
    with pytest.raises(vid.VideoError, match="long-term weighting"):
        vid.long_term_weights(masks, "closest")


def lua_multipass_start(img, prev_warped, prev_w, next_warped, next_w, flag, blend, blend_last):
    """MP:L224-248 for run > 1; images CHW in [0, 1], weights [1, H, W]."""
    divisor = np.zeros(img.shape)  # MP:L227
    divisor += 1  # MP:L228
    img = img.copy()
    if prev_warped is not None:  # MP:L229 frameIdx > start_number
        w = np.broadcast_to(prev_w, img.shape) * (blend if flag == 1 else blend_last)  # MP:L233-234
        img += prev_warped * w  # MP:L235
        divisor += w  # MP:L236
    if next_warped is not None:  # MP:L238 frameIdx < end_image_idx
        w = np.broadcast_to(next_w, img.shape) * (blend if flag == 0 else blend_last)  # MP:L242-243
        img += next_warped * w  # MP:L244
        divisor += w  # MP:L245
    return img / divisor  # MP:L247


def test_multipass_start_blend():
    rng = np.random.default_rng(4)
    x, wp, wn = (rng.uniform(0, 1, (3, 5, 6)) for _ in range(3))
    cp, cn = rng.uniform(0, 1, (1, 5, 6)), rng.choice([0.0, 1.0], (1, 5, 6))
    hwc = lambda a: np.moveaxis(a, 0, -1)
    for flag, blend, last in [(1, 1.0, 0.0), (0, 1.0, 0.0), (1, 0.7, 0.2), (0, 2.0, 0.5)]:
        come_from, other = ((wp, cp), (wn, cn)) if flag == 1 else ((wn, cn), (wp, cp))
        got = vid.multipass_start(
            hwc(x), [(hwc(come_from[0]), come_from[1][0], blend), (hwc(other[0]), other[1][0], last)]
        )
        want = lua_multipass_start(x, wp, cp, wn, cn, flag, blend, last)
        np.testing.assert_allclose(np.asarray(got), hwc(want), atol=1e-6)
    # the first frame of the clip has no earlier neighbour (MP:L229)
    got = vid.multipass_start(hwc(x), [(hwc(wn), cn[0], 1.0)])
    np.testing.assert_allclose(np.asarray(got), hwc(lua_multipass_start(x, None, None, wn, cn, 0, 1.0, 0.0)), atol=1e-6)


# with an objective whose gradient is 0, lbfgs.lua's first step d = -g (L115) leaves each start unchanged,
# so one iteration per solve exposes which images av_single_pass / av_multipass start from
FROZEN = dict(content_layers=("relu1_1",), style_layers=(), content_weight=0.0, tv_weight=0.0, temporal_weight=0.0)


def _frozen_targets(n, h, w, slots):
    return {
        "content/relu1_1": jnp.zeros((n, h, w, 64)),
        "warped": jnp.zeros((n, slots, h, w, 3)),
        "reliability": jnp.zeros((n, slots, h, w)),
    }


def _yx(flow):
    return np.stack([flow[..., 1], flow[..., 0]]).astype(np.float64)  # flowFileLoader.lua:L28-29


def test_single_pass_starts_later_frames_from_prev_warped(random_vgg):
    from dfijax.invert import SolverConfig

    rng = np.random.default_rng(6)
    n, h, w = 3, 32, 32
    done = [rng.uniform(0, 1, (h, w, 3)).astype(np.float32) for _ in range(2)]
    pairs = {
        (t, t - 1): vid.FramePair(rng.uniform(-3, 3, (h, w, 2)).astype(np.float32), np.ones((h, w))) for t in (1, 2)
    }
    one = SolverConfig(maxiter=1)
    outs = vid.av_single_pass(
        vid.ArtisticVideosLoss(**FROZEN), random_vgg.variables, _frozen_targets(n, h, w, 1), pairs, one, one, done=done
    )
    want = lua_warp_image(np.moveaxis(done[1], -1, 0).astype(np.float64), _yx(pairs[(2, 1)].backward))  # AV:L237-243
    np.testing.assert_allclose(outs[2], np.clip(np.moveaxis(want, 0, -1), 0, 1), atol=2e-5)  # CORE:L496 saturate


def lua_multipass(previous, bwd, fwd, c_bwd, c_fwd, first_run, num_passes, blend, blend_last):
    """MP:L145-271 with a zero-gradient objective (each run's image is its start); images HWC in [0, 1],
    bwd[t] carries t-1 onto t (backward_t_(t-1).flo), fwd[t] carries t+1 onto t (forward_t_(t+1).flo)."""
    n = len(previous)
    chw = lambda a: np.moveaxis(a, -1, 0).astype(np.float64)
    results = {first_run - 1: [chw(x) for x in previous]}
    for run in range(first_run, num_passes + 1):  # MP:L145
        flag = run % 2  # MP:L147
        order = range(n) if flag == 1 else range(n - 1, -1, -1)  # MP:L148-152
        results[run] = [None] * n
        for idx in order:
            prev_w = next_w = None
            if idx > 0:  # MP:L165-166, L280-302 (no mean-pixel padding)
                prev_w = lua_image_warp(results[run - (1 - flag)][idx - 1], _yx(bwd[idx]))
            if run > 1 and idx < n - 1:  # MP:L168-170, L306-327
                next_w = lua_image_warp(results[run - flag][idx + 1], _yx(fwd[idx]))
            img = results[run - 1][idx]  # MP:L225
            img = lua_multipass_start(
                img,
                prev_w,
                None if idx == 0 else c_bwd[idx][None],  # MP:L230 reliable_idx_(idx-1)
                next_w,
                None if idx == n - 1 else c_fwd[idx][None],  # MP:L239 reliable_idx_(idx+1)
                flag,
                blend,
                blend_last,
            )
            results[run][idx] = np.clip(img, 0, 1)  # CORE:L494-497 save_image saturates
    return [np.moveaxis(x, 0, -1) for x in results[num_passes]]


def test_multipass_passes_alternate_and_blend_the_right_neighbours(random_vgg):
    from dfijax.invert import SolverConfig

    rng = np.random.default_rng(7)
    n, h, w = 3, 32, 32
    previous = [rng.uniform(0, 1, (h, w, 3)).astype(np.float32) for _ in range(n)]
    bwd = {t: rng.uniform(-3, 3, (h, w, 2)).astype(np.float32) for t in range(1, n)}
    fwd = {t: rng.uniform(-3, 3, (h, w, 2)).astype(np.float32) for t in range(n - 1)}
    c_bwd = {t: rng.uniform(0, 1, (h, w)).astype(np.float32) for t in range(1, n)}
    c_fwd = {t: rng.uniform(0, 1, (h, w)).astype(np.float32) for t in range(n - 1)}
    pairs = {(t, t - 1): vid.FramePair(bwd[t], c_bwd[t]) for t in bwd}
    pairs.update({(t, t + 1): vid.FramePair(fwd[t], c_fwd[t]) for t in fwd})
    outs = vid.av_multipass(
        vid.ArtisticVideosLoss(**FROZEN),
        random_vgg.variables,
        _frozen_targets(n, h, w, 1),
        pairs,
        SolverConfig(maxiter=1),
        passes=4,
        temporal_after=3,
        blend=1.0,
        blend_other=0.5,
        first_pass=2,
        previous=previous,
    )
    want = lua_multipass(previous, bwd, fwd, c_bwd, c_fwd, 2, 4, 1.0, 0.5)
    for t in range(n):
        np.testing.assert_allclose(outs[t], want[t], atol=3e-5)


# ------------------------------------------------------------------ stop rule


class _Quadratic:
    """A slowly converging problem for the stop rule (hashable, engine interface)."""

    def __hash__(self):
        return 7

    def __eq__(self, other):
        return isinstance(other, _Quadratic)

    def target_names(self):
        return ("a",)

    def __call__(self, x, variables, targets):
        return jnp.sum(targets["a"] * x * x) + 1.0


def lua_stop_iteration(f_hist, max_iter, tol, interval):
    """lbfgs.lua:L227, L259-265: after iteration nIter (f = f_hist[nIter]) stop at maxIter, or when
    nIter % interval == 0 and |f − f_past| / f_past < tol; f_past = f at every interval."""
    f_past = None
    for n_iter in range(1, max_iter + 1):
        f = f_hist[n_iter]
        if n_iter == max_iter:
            return n_iter
        if n_iter % interval == 0:
            if f_past is not None and abs(f - f_past) / f_past < tol:
                return n_iter
            f_past = f
    return max_iter


def test_interval_stop_rule_matches_lbfgs_lua():
    from dfijax.invert import SolverConfig

    a = jnp.asarray(np.geomspace(1e-3, 1.0, 12, dtype=np.float32).reshape(1, 2, 2, 3))
    x0 = jnp.ones((1, 2, 2, 3), jnp.float32)
    cfg = SolverConfig(maxiter=40, history_size=3)
    full = []
    r = vid.solve_with_interval_stop(_Quadratic(), {}, {"a": a}, x0, cfg, 0.0, 1, lambda k, f: full.append(f[0]))
    assert int(r.iterations[0]) == 40
    hist = [None] + full
    for tol, interval in [(1e-2, 5), (1e-3, 4), (1e-9, 5)]:
        r = vid.solve_with_interval_stop(_Quadratic(), {}, {"a": a}, x0, cfg, tol, interval)
        assert int(r.iterations[0]) == lua_stop_iteration(hist, 40, tol, interval), (tol, interval)
    assert int(vid.solve_with_interval_stop(_Quadratic(), {}, {"a": a}, x0, cfg, 1e-2, 5).iterations[0]) < 40


# ------------------------------------------------------------------ flow and reliability files


def middlebury_write(path, u, v):
    """The Middlebury writer format flowFileLoader.lua:L4-13 reads: float 202021.25 ('PIEH'), int
    width, int height, then per row, per pixel, u then v (float32, little-endian)."""
    h, w = u.shape
    with open(path, "wb") as f:
        f.write(np.array([202021.25], "<f4").tobytes())
        f.write(np.array([w, h], "<i4").tobytes())
        data = np.empty((h, w, 2), "<f4")
        data[..., 0], data[..., 1] = u, v
        f.write(data.tobytes())


def checker_write_pgm(path, values):
    """consistencyChecker CMatrix.h:L1059-1071 writeToPGM: "P5\\n%d %d\\n255\\n", then `(char)mData[i]`
    row by row (values already clipped to [0, 255], consistencyChecker.cpp:L110)."""
    h, w = values.shape
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h))
        f.write(np.trunc(values).astype(np.uint8).tobytes())


def test_flo_and_pgm_round_trip_and_makeoptflow_names(tmp_path):
    rng = np.random.default_rng(5)
    h, w = 33, 35
    u, v = rng.normal(0, 3, (h, w)).astype(np.float32), rng.normal(0, 3, (h, w)).astype(np.float32)
    middlebury_write(tmp_path / "a.flo", u, v)
    flow = ff.read_flo(tmp_path / "a.flo")
    chex.assert_shape(flow, (h, w, 2))
    np.testing.assert_array_equal(flow[..., 0], u)  # flowFileLoader.lua:L28: storage[2·shift + 1] = u
    np.testing.assert_array_equal(flow[..., 1], v)
    ff.write_flo(tmp_path / "b.flo", flow)
    assert (tmp_path / "b.flo").read_bytes() == (tmp_path / "a.flo").read_bytes()
    rel = rng.uniform(0, 255, (h, w)).astype(np.float32)
    rel[0, :3] = (0.0, 254.9, 255.0)
    checker_write_pgm(tmp_path / "r.pgm", rel)
    got = ff.read_pgm(tmp_path / "r.pgm")
    np.testing.assert_allclose(got, np.trunc(rel) / 255.0, atol=1e-7)  # image.load: byte / 255
    np.testing.assert_allclose(got[0, :3], [0.0, 254 / 255, 1.0])

    # makeOptFlow.sh:L43-50 names, frames numbered from 1; AV:L178, L210 read backward_[t]_{s}, reliable_[t]_{s}
    folder = tmp_path / "flow"
    folder.mkdir()
    for i, j in [(1, 2), (2, 3), (1, 3)]:
        middlebury_write(folder / f"forward_{i}_{j}.flo", u + i, v + j)
        middlebury_write(folder / f"backward_{j}_{i}.flo", u - i, v - j)
        checker_write_pgm(folder / f"reliable_{j}_{i}.pgm", rel * 0 + 10 * i + j)
        checker_write_pgm(folder / f"reliable_{i}_{j}.pgm", rel * 0 + 10 * j + i)
    pairs = vid.flow_dir_pairs(folder, 3, (h, w), (1, 2), following=True)
    assert set(pairs) == {(1, 0), (2, 1), (2, 0), (0, 1), (1, 2)}
    np.testing.assert_array_equal(pairs[(2, 0)].backward[..., 0], u - 1)  # backward_3_1.flo
    np.testing.assert_allclose(pairs[(2, 0)].mask, 13 / 255)  # reliable_3_1.pgm
    np.testing.assert_array_equal(pairs[(0, 1)].backward[..., 1], v + 2)  # forward_1_2.flo (MP:L307)
    np.testing.assert_allclose(pairs[(0, 1)].mask, 21 / 255)  # reliable_1_2.pgm (MP:L194)

    # bad files: one-line errors that name the file and the fix
    (tmp_path / "short.flo").write_bytes(b"PIEH")
    bad_tag = tmp_path / "tag.flo"
    bad_tag.write_bytes(np.array([1.0], "<f4").tobytes() + np.array([2, 2], "<i4").tobytes() + bytes(32))
    cut = tmp_path / "cut.flo"
    cut.write_bytes((tmp_path / "a.flo").read_bytes()[:-8])
    (tmp_path / "p2.pgm").write_bytes(b"P2\n2 2\n255\n0 0 0 0\n")
    for path, reader, msg in [
        (tmp_path / "none.flo", ff.read_flo, "not found"),
        (tmp_path / "short.flo", ff.read_flo, "too short"),
        (bad_tag, ff.read_flo, "202021.25"),
        (cut, ff.read_flo, "truncated"),
        (tmp_path / "none.pgm", ff.read_pgm, "not found"),
        (tmp_path / "p2.pgm", ff.read_pgm, "P5"),
    ]:
        with pytest.raises(ff.FlowFileError, match=msg) as e:
            reader(path)
        assert path.name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ff.FlowFileError, match="frames are"):
        vid.flow_dir_pairs(folder, 3, (h, w + 1), (1,))
    with pytest.raises(ff.FlowFileError, match="backward_4_3.flo"):
        vid.flow_dir_pairs(folder, 4, (h, w), (1,))


def test_video_style_flow_dir_errors_are_one_line(tmp_path, monkeypatch, capsys):
    """--flow-dir problems stop the run before any solve, with one line naming the file and the fix."""
    from experiments import video_style
    from tests.conftest import isolate

    isolate(monkeypatch, tmp_path)
    folder = tmp_path / "flow"
    folder.mkdir()
    middlebury_write(folder / "backward_2_1.flo", np.zeros((40, 41)), np.zeros((40, 41)))
    checker_write_pgm(folder / "reliable_2_1.pgm", np.full((40, 41), 255.0))
    base = ["--size", "40", "--frames", "3", "--iters-first", "2", "--iters", "2", "--out", str(tmp_path / "o")]
    for flow_dir, msg in [
        (tmp_path / "nope", "makeOptFlow.sh"),
        (folder, "backward_2_1.flo is 41x40 but the frames are 40x40"),
    ]:
        assert video_style.main(base + ["--flow-dir", str(flow_dir)]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(err) == 1 and msg in err[0], err
    cfg = video_style.parse(["--preset", "paper", "--flow-dir", str(folder), "--objective", "dfijax"]).config
    assert cfg.flow_dir == str(folder) and cfg.objective == "dfijax" and cfg.iters_first == 2000
