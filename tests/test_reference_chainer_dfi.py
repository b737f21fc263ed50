"""The `chainer` DFI preset against dsanno/chainer-dfi's own code: residual correction and colour
adjustment, the 8-bit output, the CelebA and LFW neighbour rules, the crop, and a tiny run.

Expected values come from numpy (and PIL) transcriptions of the reference in this file, each line
citing the reference file and line (src/train.py, src/train_lfw.py, src/extract_image.py, src/net.py,
README.md of dsanno/chainer-dfi); the transcriptions work in its space (BGR, 0-255, minus the Caffe
mean, NCHW), dfijax in RGB [0, 1] NHWC.
"""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.torch_reference import TorchVGG, load_hwio
from dfijax.data import FaceDataset
from dfijax.data.celeba import CelebAFolder
from dfijax.dfi import chainer, finish, postprocess, presets
from dfijax.vgg import tap_shapes
from dfijax.weights import random_weights
from tests.conftest import smooth_images

CAFFE_MEAN = np.asarray([104, 117, 124], dtype=np.float32)  # net.py:L8
TAPS = ("relu3_1", "relu4_1", "relu5_1")  # train.py:L72 layers=['3_1', '4_1', '5_1'] (F.relu outputs)


def ref_preprocess(rgb01):
    """net.py:L11-15 on an [H, W, 3] RGB image in [0, 1] (x255 first, as train.py:L39 reads 8-bit)."""
    image = (np.asarray(rgb01, np.float32) * 255.0)[:, :, ::-1]  # net.py:L12-13
    image = np.rollaxis(image - CAFFE_MEAN, 2)  # net.py:L14
    return image.reshape((1,) + image.shape)  # net.py:L15


def ref_adjust_color_distribution(x, mean, std):
    m = np.mean(x, axis=(2, 3), keepdims=True)  # train.py:L140
    s = np.std(x, axis=(2, 3), keepdims=True)  # train.py:L141
    return (x - m) / s * std + mean  # train.py:L142


def ref_find_nearest(xs, t):
    return min(xs, key=lambda x: np.linalg.norm(x - t))  # train.py:L145


def to_rgb01_diff(d):
    """A preprocessed-space difference [1, 3, H, W] -> RGB [H, W, 3] in the [0, 1] scale (train.py:L43-44)."""
    d = d.transpose((0, 2, 3, 1))  # train.py:L43
    return d.reshape(d.shape[1:])[:, :, ::-1] / 255.0  # train.py:L44


@pytest.fixture(scope="module")
def caffe_vgg():
    """The seeded random VGG-19 with Caffe preprocessing (chainer-dfi loads the original Caffe model)."""
    return random_weights(0, preprocess="caffe")


def ref_net(caffe_vgg):
    """net.py:L50-62's forward: ReLU after every conv, F.max_pooling_2d(h, 2, stride=2) with Chainer's
    default cover_all=True (the output covers every input pixel: ceil)."""
    return load_hwio(TorchVGG("max", ceil_mode=True), caffe_vgg.variables["params"]).eval()


def ref_feature(net, x):
    """train.py:L72-74 feature(net, x, layers=['3_1', '4_1', '5_1']): each layer flattened per image."""
    y = net(x, ["relu3_1", "relu4_1", "relu5_1"])
    return [y[f"relu{layer}"].reshape(y[f"relu{layer}"].shape[0], -1) for layer in ["3_1", "4_1", "5_1"]]


def ref_total_variation(x):
    """train.py:L116-121: [1, -1] kernels down and across, squared, summed, over x's element count."""
    dh = x[:, :, :-1, :] - x[:, :, 1:, :]  # L119 wh = [[1], [-1]] per channel (cross-correlation)
    dw = x[:, :, :, :-1] - x[:, :, :, 1:]  # L120 ww = [[1, -1]]
    return (torch.sum(dh**2) + torch.sum(dw**2)) / float(np.prod(x.shape))  # L121


def ref_update_loss(net, x, target_layers, tv_weight):
    """train.py:L123-133 update(): Σ F.mean_squared_error(layer, target) + tv_weight · TV, and its gradient."""
    x = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    total_loss = 0
    for layer, target in zip(ref_feature(net, x), target_layers):  # L127
        total_loss = total_loss + torch.mean((layer - torch.tensor(target)) ** 2)  # L128, L130
    total_loss = total_loss + tv_weight * ref_total_variation(x)  # L131-133
    total_loss.backward()  # L135
    return float(total_loss.detach()), x.grad.detach().numpy().astype(np.float64)


def chainer_pooled(size):
    """chainer/utils/conv.py get_conv_outsize(size, k, s, p, cover_all=True) for F.max_pooling_2d(h, 2,
    stride=2) (net.py:L58; pad 0): (size + p * 2 - k + s - 1) // s + 1."""
    k, s, p = 2, 2, 0
    return (size + p * 2 - k + s - 1) // s + 1


def test_chainer_network_has_chainers_layer_shapes(caffe_vgg):
    """net.py:L51-53 layer order: 3_1, 4_1, 5_1 after 2, 3, 4 pools; at 200x200 (train.py:L15) 5_1 is
    13x13 where flooring gives 12x12."""
    model = presets.preset("chainer").objective.feature_loss(pretrained=True).model
    for h, w in [(200, 200), (350, 450), (37, 53)]:
        want = {}
        for pools, tap in [(2, "relu3_1"), (3, "relu4_1"), (4, "relu5_1")]:
            hh, ww = h, w
            for _ in range(pools):
                hh, ww = chainer_pooled(hh), chainer_pooled(ww)
            want[tap] = (1, hh, ww)
        x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
        got = jax.eval_shape(lambda v, x: model.apply(v, x, taps=TAPS), caffe_vgg.variables, x)
        assert {t: tuple(v.shape[:3]) for t, v in got.items()} == want, (h, w)
        if (h, w) == (200, 200):
            assert want["relu5_1"] == (1, 13, 13)


def test_chainer_objective_and_gradient_equal_train_py_update(caffe_vgg):
    h, w = 72, 56  # odd at pool4: cover_all's relu5_1 is 5x4, flooring's 4x3
    x01, other01 = smooth_images(2, h, w, seed=3)
    net = ref_net(caffe_vgg)
    base = [f.detach().numpy() for f in ref_feature(net, torch.tensor(ref_preprocess(other01)))]
    targets = [f + 0.3 * np.sign(np.sin(np.arange(f.size))).reshape(f.shape).astype(np.float32) for f in base]
    want, want_grad = ref_update_loss(net, ref_preprocess(x01), targets, tv_weight=100.0)  # --tv-weight 100 (L32)

    cfg = presets.preset("chainer")
    loss = cfg.objective.feature_loss(pretrained=True)
    weights = cfg.objective.network(caffe_vgg)
    shapes = {t: v[:2] for t, v in tap_shapes((h, w), TAPS, pool_rounding=cfg.objective.pool_rounding).items()}
    assert shapes == {"relu3_1": (18, 14), "relu4_1": (9, 7), "relu5_1": (5, 4)}
    t = {}
    for tap, f, (th, tw) in zip(TAPS, targets, shapes.values()):
        t[tap] = jnp.asarray(f.reshape(-1, th, tw).transpose(1, 2, 0))  # [C·h·w] NCHW -> [h, w, C]
    got, grad = jax.value_and_grad(loss)(jnp.asarray(x01), weights.variables, t)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # dfijax's gradient is with respect to RGB in [0, 1]: the reference's is on BGR 0-255 (net.py:L12-14)
    want_rgb = 255.0 * want_grad[0].transpose(1, 2, 0)[:, :, ::-1]
    assert np.linalg.norm(np.asarray(grad, np.float64) - want_rgb) <= 1e-4 * np.linalg.norm(want_rgb)
    # the mean is net.py's: the preset's relu3_1 is the reference's, the Caffe model's own mean is not
    ref3 = ref_feature(net, torch.tensor(ref_preprocess(x01)))[0].detach().numpy().reshape(-1, 18, 14)
    ref3 = ref3.transpose(1, 2, 0)
    errs = [
        np.linalg.norm(np.asarray(loss.features(v, jnp.asarray(x01))["relu3_1"]) - ref3) / np.linalg.norm(ref3)
        for v in (weights.variables, caffe_vgg.variables)
    ]
    assert errs[0] < 1e-6 < 1e-4 < errs[1], errs


def test_residual_correction_and_colour_adjust_follow_train_py():
    rng = np.random.default_rng(0)
    image01 = rng.uniform(0.1, 0.9, (8, 8, 3)).astype(np.float32)
    snaps01 = np.clip(image01[None] + rng.normal(0, 0.2, (3, 8, 8, 3)), -0.2, 1.2).astype(np.float32)
    # two edits, near snapshots 0 and 2, with their own colour cast (what the adjustment removes)
    edits01 = np.stack([snaps01[0] * 1.3 + 0.05, snaps01[2] * 0.8 - 0.04]) + rng.normal(0, 0.01, (2, 8, 8, 3))
    edits01 = edits01.astype(np.float32)

    image = ref_preprocess(image01)
    image_mean = np.mean(image, axis=(2, 3), keepdims=True)  # train.py:L165
    image_std = np.std(image, axis=(2, 3), keepdims=True)  # train.py:L166
    residuals = []  # train.py:L185
    for snap in snaps01:  # train.py:L194-196, one snapshot every 20 iterations
        z = ref_preprocess(snap)  # train.py:L197 (the current iterate)
        z = ref_adjust_color_distribution(z, image_mean, image_std)  # train.py:L198
        residuals.append(z - image)  # train.py:L199
    want, chosen = [], []
    for e in edits01:
        z = ref_preprocess(e)  # train.py:L221
        z = ref_adjust_color_distribution(z, image_mean, image_std)  # train.py:L222
        r = ref_find_nearest(residuals, z - image)  # train.py:L223
        chosen.append(next(k for k, x in enumerate(residuals) if x is r))
        z -= r  # train.py:L223
        want.append(to_rgb01_diff(z - image))  # train.py:L225 (postprocess_image(original_image, z - image))
    assert chosen == [0, 2]  # the nearest residual is chosen per edit

    mean, std = chainer.channel_stats(image01)
    adjusted = chainer.adjust_color(edits01, mean, std)
    for e, a in zip(edits01, adjusted):  # the sweep's colour match with the preset's color_eps = 0
        np.testing.assert_allclose(np.asarray(postprocess.match_color(jnp.asarray(e), image01, eps=0.0)), a, atol=1e-5)
    res = chainer.residuals_from_snapshots(snaps01, image01, lambda z: chainer.adjust_color(z, mean, std))
    got = chainer.subtract_nearest_residual(adjusted, image01, res) - image01[None]
    assert [chainer.nearest_residual(res, a - image01) for a in adjusted] == chosen
    np.testing.assert_allclose(got, np.stack(want), atol=2e-5)
    # run_sweep's wiring of the same steps under the preset (colour match, then the nearest residual)
    cfg = presets.preset("chainer")
    wired = finish.nearest_residual_correction(
        cfg, finish.match_colors(cfg, edits01[None], image01[None]), snaps01[:, None], image01[None]
    )
    np.testing.assert_allclose(wired[0] - image01[None], np.stack(want), atol=2e-5)


def ref_postprocess_image(original_image, diff):
    diff = diff.transpose((0, 2, 3, 1))  # train.py:L43
    diff = diff.reshape(diff.shape[1:])[:, :, ::-1]  # train.py:L44
    diff = (diff + 128).clip(0, 255).astype(np.uint8)  # train.py:L45
    diff_image = Image.fromarray(diff).resize(original_image.size, Image.BILINEAR)  # train.py:L46
    image = np.asarray(original_image, dtype=np.int32) + np.asarray(diff_image, dtype=np.int32) - 128  # train.py:L47
    return Image.fromarray(image.clip(0, 255).astype(np.uint8))  # train.py:L48


def test_diff8_output_follows_postprocess_image():
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (11, 9, 3), dtype=np.uint8)  # another size than the 6x6 working image
    diff = rng.uniform(-200, 200, (1, 3, 6, 6)).astype(np.float32)  # clipped on both sides
    diff[0, 0, 0, :3] = [-0.5, 0.7, 126.9]  # truncation, not rounding
    want = np.asarray(ref_postprocess_image(Image.fromarray(original), diff))
    got = chainer.diff8_output(original, to_rgb01_diff(diff) * 255.0)
    chex.assert_shape(got, (11, 9, 3))
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.uint8 and 0 in got and 255 in got
    # run_sweep's use: the original is the 8-bit input itself, at the working size
    x = rng.integers(0, 256, (6, 6, 3)).astype(np.float32) / 255.0
    z = x[None] + to_rgb01_diff(diff)[None]
    want = np.asarray(ref_postprocess_image(Image.fromarray(np.round(x * 255).astype(np.uint8)), diff))
    np.testing.assert_array_equal(np.round(finish.diff8_images(z[None], x[None])[0, 0] * 255), want)


CELEBA_NAMES = ("Bald", "Eyeglasses", "Male", "Smiling", "Young", "Mouth_Slightly_Open")


def ref_extract_image(attributes, features, include_attributes, exclude_attributes):
    """extract_image.py:L23-60 on an attribute table (rows in file order), returning row indices."""
    attribute_names = [n.lower() for n in CELEBA_NAMES]  # extract_image.py:L8
    attribute_ids = {k: i for i, k in enumerate(attribute_names)}  # extract_image.py:L9
    attribute_flag = np.zeros(len(attribute_names), dtype=np.int32)  # extract_image.py:L26
    feature_ids = [attribute_ids[f] for f in features]  # extract_image.py:L28
    for attr in include_attributes:
        attribute_flag[attribute_ids[attr]] = 1  # extract_image.py:L42
    for attr in exclude_attributes:
        attribute_flag[attribute_ids[attr]] = -1  # extract_image.py:L47
    source_paths, target_paths = [], []  # extract_image.py:L50-51
    for i, attr in enumerate(attributes):  # extract_image.py:L52
        if not np.all(attr * attribute_flag >= 0):  # extract_image.py:L53
            continue
        feature_flags = [attr[j] >= 0 for j in feature_ids]  # extract_image.py:L55
        if all(feature_flags):  # extract_image.py:L57
            target_paths.append(i)
        elif not any(feature_flags):  # extract_image.py:L59
            source_paths.append(i)
    return target_paths, source_paths


def ref_rank_image(paths, images, image, top_num):
    diffs = []  # train.py:L79
    for path in paths:  # train.py:L80
        im = ref_preprocess(images[path])  # train.py:L82 (crop + bilinear resize: see the crop test)
        diffs.append(np.sum(np.square(image - im)))  # train.py:L83
    diffs = np.asarray(diffs, dtype=np.float32)  # train.py:L84
    rank = np.argsort(diffs)  # train.py:L85
    return [paths[r] for r in rank[:top_num]]  # train.py:L86


@dataclasses.dataclass
class ArrayFaces(FaceDataset):
    pictures: np.ndarray | None = None

    def load(self, index, size):
        assert size == self.pictures.shape[1]
        return self.pictures[index]


def test_celeba_neighbours_follow_extract_image_and_rank_image():
    rng = np.random.default_rng(1)
    p_on = np.array([0.1, 0.1, 0.8, 0.6, 0.7, 0.5])  # per column of CELEBA_NAMES
    attrs = np.where(rng.uniform(size=(60, len(CELEBA_NAMES))) < p_on, 1, -1).astype(np.int32)
    pics = (rng.integers(0, 256, (60, 8, 8, 3)) / 255.0).astype(np.float32)
    image01 = pics[5] * 0.5 + 0.25  # the input (an outside photo: no exclusion)
    near = 4  # --near-image, train.py:L31 (100 in the preset)
    targets, sources = ref_extract_image(attrs, ["smiling", "young"], ["male"], ["eyeglasses", "bald"])
    image = ref_preprocess(image01)
    want = []
    for paths in (targets, sources):
        if len(paths) > near:  # train.py:L173, L178
            paths = ref_rank_image(paths, pics, image, near)  # train.py:L174, L179
        want.append(paths)
    assert len(targets) > near and 1 <= len(sources) < near  # both branches of train.py:L173 run

    edit = ((3, 1), (4, 1))  # Smiling+ Young+
    t, s = chainer.celeba_sets(attrs, edit, include=[2], exclude=[1, 0])
    np.testing.assert_array_equal(t, targets)
    np.testing.assert_array_equal(s, sources)
    data = ArrayFaces("faces", CELEBA_NAMES, attrs.astype(np.float32), tuple(map(str, range(60))), True, None, pics)
    n = chainer.select_neighbours(
        data, image01, np.full(6, np.nan), edit, near, include=("Male",), exclude_attrs=("Eyeglasses", "Bald"),
        allow_fewer=True, batch=7,
    )  # fmt: skip
    np.testing.assert_array_equal(n.target, want[0])
    np.testing.assert_array_equal(n.source, want[1])
    assert (n.n_target_available, n.n_source_available) == (len(targets), len(sources))
    with pytest.raises(chainer.NeighbourError, match="only"):
        chainer.select_neighbours(
            data, image01, np.full(6, np.nan), edit, near, include=("Male",), exclude_attrs=("Eyeglasses", "Bald")
        )


def test_reference_crop_reads_celeba_as_preprocess_image(tmp_path):
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))
    photo.save(tmp_path / "000001.png")
    base = CelebAFolder("celeba", ("Smiling",), np.ones((1, 1), np.float32), ("000001.png",), True, image_dir=tmp_path)
    clip_rect = (19, 39, 159, 179)  # README.md:L79, `-c 19,39,159,179`
    want = np.asarray(photo.crop(clip_rect).resize((24, 24), Image.BILINEAR), np.float32)  # train.py:L36-39
    data = chainer.reference_crop(base)
    np.testing.assert_allclose(data.load(0, 24) * 255.0, want, atol=1e-3)
    assert data.crop == (39, 19, 140, 140) and data.name == "celeba-chainer"  # CelebAFolder's (top, left, h, w)


def ref_nearest_attributes(attributes, attribute, feature_flags, nearest_num, reverse=False):
    # train_lfw.py:L47 (`indices = np.arange(len(names))`) is unused there
    selected = True  # train_lfw.py:L48
    for attribute_id, on in feature_flags:  # train_lfw.py:L49-50
        if reverse:  # train_lfw.py:L51-52
            on = not on
        if on:
            feature_selected = attributes[:, attribute_id] >= 0.5  # train_lfw.py:L54
        else:
            feature_selected = attributes[:, attribute_id] < -0.5  # train_lfw.py:L56
        selected = np.logical_and(selected, feature_selected)  # train_lfw.py:L57
    distance = np.linalg.norm(attributes[selected] - attribute, axis=1)  # train_lfw.py:L58
    tops = np.argsort(distance)[:nearest_num]  # train_lfw.py:L59
    return np.arange(attributes.shape[0])[selected][tops]  # train_lfw.py:L60


def test_lfw_neighbours_follow_nearest_attributes():
    rng = np.random.default_rng(5)
    attrs = rng.normal(0, 1.2, (80, 7)).astype(np.float32)
    i = int(np.flatnonzero((attrs[:, 2] >= 0.5) & (attrs[:, 5] < -0.5))[0])  # an input in the target set
    # its attributes are its own row (find_attribute, train_lfw.py:L62-65)
    flags = [(2, True), (5, False)]  # 'c,~f' (train_lfw.py:L71-78)
    source = ref_nearest_attributes(attrs, attrs[i], flags, 6, reverse=True)  # train_lfw.py:L82
    target = ref_nearest_attributes(attrs, attrs[i], flags, 6)  # train_lfw.py:L83
    edit = ((2, 1), (5, -1))
    t, s, nt, ns = chainer.lfw_sets(attrs, attrs[i], edit, 6)
    np.testing.assert_array_equal(t, target)
    np.testing.assert_array_equal(s, source)
    data = ArrayFaces("lfw", tuple("abcdefg"), attrs, tuple(map(str, range(80))), False, None, None)
    n = chainer.select_neighbours(data, np.zeros((8, 8, 3)), attrs[i], edit, 6)
    np.testing.assert_array_equal(n.target, target)
    np.testing.assert_array_equal(n.source, source)
    assert n.target[0] == i  # the input is not excluded: its own nearest neighbour
    assert len(t) == len(s) == 6 and nt > 6 and ns > 6
