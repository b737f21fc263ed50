"""The `official` DFI preset against paulu/deepfeatinterp's own code, transcribed line by line.

Every expected value here is computed by a numpy (and, for the network's backward pass, torch)
transcription of the reference: deepart.py, deepmodels.py, deepmodels_torch.py, totalvariation.py,
utils.py, demo1.py, demo2.py, datasets/lfw/lfw_binarize_attributes.py, and Caffe's pooling_layer.cpp for
the network's shapes (its pools round up: the torch net here uses ceil_mode). Line numbers are the
repository's newest commit. dfijax is only the thing under test; the VGG-19 weights are the seeded
random ones with Caffe preprocessing (as vgg_normalised.caffemodel is used: BGR, 0-255, minus the mean).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import torch

from benchmarks.torch_reference import TorchVGG, load_hwio
from dfijax import invert as inv
from dfijax.data import FaceDataset
from dfijax.dfi import neighbours as nb
from dfijax.dfi import postprocess, presets, rules
from dfijax.vgg import fit_to_quantum, tap_shapes, unfit_from_quantum, zero_colour
from dfijax.weights import random_weights
from tests.conftest import smooth_images

BLOBS = ["conv3_1", "conv4_1", "conv5_1"]  # deepmodels.py:L202
MEAN = np.asarray((103.939, 116.779, 123.68))  # deepmodels.py:L201 (BGR)
TAPS = ("relu3_1", "relu4_1", "relu5_1")  # the blobs after the prototxt's in-place ReLUs


# ----------------------------------------------------------------------------- transcriptions


def tv_norm(x, beta=2.0):
    """totalvariation.py:L5-48, operator 'naive'."""
    assert x.shape[0] == 1  # L21
    x_diff = x[:, :, :-1, :-1] - x[:, :, :-1, 1:]  # L23
    y_diff = x[:, :, :-1, :-1] - x[:, :, 1:, :-1]  # L24
    grad_norm2 = x_diff**2.0 + y_diff**2.0  # L37
    grad_norm2[grad_norm2 < 1e-3] = 1e-3  # L38
    grad_norm_beta = grad_norm2 ** (beta / 2.0)  # L39
    loss = np.sum(grad_norm_beta)  # L40
    dgrad_norm2 = (beta / 2.0) * grad_norm2 ** (beta / 2.0 - 1.0)  # L41
    dx_diff = 2.0 * x_diff * dgrad_norm2  # L42
    dy_diff = 2.0 * y_diff * dgrad_norm2  # L43
    dx = np.zeros_like(x)  # L44
    dx[:, :, :-1, :-1] += dx_diff + dy_diff  # L46
    dx[:, :, :-1, 1:] -= dx_diff  # L47
    dx[:, :, 1:, :-1] -= dy_diff  # L48
    return loss, dx


def content_grad(gen_data, target_data):
    """deepart.py:L53-62 (weight None)."""
    grad = gen_data - target_data  # L55
    loss = np.sum(grad**2) * 0.5  # L56
    return loss, grad


def objective_func(x, net, all_target_blob_names, targets, target_data_list, tv_lambda, tv_beta, shape):
    """deepart.py:L126-179. Caffe's forward and backward are the torch net's (same weights); a blob is
    the conv output after its in-place ReLU (VGG_ILSVRC_19_layers_deploy_fullconv.prototxt)."""
    data = torch.tensor(np.reshape(x, shape), dtype=torch.float32, requires_grad=True)  # L129
    out = net(data, ["relu" + b[4:] for b in all_target_blob_names])  # L131 net.forward()
    loss = 0
    diffs = {}
    for i in range(len(all_target_blob_names)):  # L135
        blob_i = len(all_target_blob_names) - 1 - i  # L136
        start = all_target_blob_names[blob_i]  # L137
        blob = out["relu" + start[4:]]
        gen_data = blob.detach().numpy().astype(np.float64).copy()  # L149
        pos_mask = gen_data > 0  # L151
        gen_data[~pos_mask] = 0  # L152
        target_blob_add_diff = np.zeros_like(gen_data)  # L155
        for target_i, (_, target_blob_names, is_gram, weight) in enumerate(targets):  # L156
            if start not in target_blob_names:  # L158
                continue
            target_data = target_data_list[target_i][start]  # L161
            c_loss, c_grad = content_grad(gen_data, target_data)  # L165
            c_grad[~pos_mask] = 0  # L168
            target_blob_add_diff += c_grad * weight / len(target_blob_names)  # L169
            loss += c_loss * weight / len(target_blob_names)  # L170
        diffs[start] = target_blob_add_diff  # L172
    # L173 net.backward(start=start, end=end), accumulated over the blobs: the input blob's diff
    blobs = [out["relu" + b[4:]] for b in all_target_blob_names]
    grads = [torch.tensor(diffs[b], dtype=torch.float32) for b in all_target_blob_names]
    (diff,) = torch.autograd.grad(blobs, [data], grads)
    if tv_lambda > 0:  # L175
        tv_loss, tv_grad = tv_norm(np.reshape(x, shape), beta=tv_beta)  # L176
        return loss + tv_loss * tv_lambda, np.ravel(diff.numpy()).astype(np.float64) + np.ravel(tv_grad) * tv_lambda
    return loss, np.ravel(diff.numpy()).astype(np.float64)


def dfi_reconstruct_objective(F2, net, blob_names, caffe_in, tv_lambda=0.001, tv_beta=2):
    """deepmodels.py:L105-133: the targets grouped as dfi_reconstruct groups them, loss0 at caffe_in."""
    blob_weights = [1.0] * len(blob_names)  # L111
    all_target_blob_names = list(blob_names)  # L112
    targets = []  # L113
    target_data_list = []  # L114
    for k, v in zip(blob_names, blob_weights):  # L115
        if len(targets) > 0 and targets[-1][3] == v:  # L116
            targets[-1][1].append(k)  # L117
            target_data_list[-1][k] = F2[k]  # L118
        else:
            targets.append((None, [k], False, v))  # L120
            target_data_list.append({k: F2[k]})  # L121
    x0 = caffe_in.ravel().astype(np.float64)  # L129
    return objective_func(x0, net, all_target_blob_names, targets, target_data_list, tv_lambda, tv_beta, caffe_in.shape)


def caffe_input(initial_image):
    """deepmodels.py:L211 (F_inverse): RGB [0, 1] HWC -> BGR 0-255 minus mean, [1, 3, H, W]."""
    return np.expand_dims((initial_image[:, :, ::-1] * 255 - MEAN).transpose(2, 0, 1), 0)


def deprocess(data):
    """deepmodels.py:L214: [1, 3, H, W] Caffe -> RGB [0, 1] HWC, clipped."""
    return deprocess_unclipped(data).clip(0, 1)


def deprocess_unclipped(data):
    """deepmodels.py:L214 before its clip (an iterate inside the box may leave [0, 1])."""
    return (data[0].transpose(1, 2, 0) + MEAN)[:, :, ::-1] / 255.0


# ----------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def caffe_vgg():
    return random_weights(0, preprocess="caffe")


@pytest.fixture(scope="module")
def caffe_net(caffe_vgg):
    """The Caffe VGG-19 as the prototxt builds it: pools rounding up (pooling_layer.cpp `ceil`)."""
    return load_hwio(TorchVGG("max", ceil_mode=True), caffe_vgg.variables["params"]).eval()


H, W = 72, 56  # odd at pool4 (9x7): Caffe's relu5_1 is 5x4 where flooring gives 4x3


def caffe_blobs(net, caffe_in):
    """net.forward() blobs conv3_1/4_1/5_1 (after the in-place ReLUs), [1, C, h, w] float64."""
    out = net(torch.tensor(caffe_in, dtype=torch.float32), list(TAPS))
    return {"conv" + t[4:]: out[t].detach().numpy().astype(np.float64) for t in TAPS}


def shifted(blobs):
    """Targets off the image's own features (a flat sign pattern), so the objective is not at a minimum."""
    return {k: v + 0.05 * np.sign(np.sin(np.arange(v.size))).reshape(v.shape) for k, v in blobs.items()}


def to_nhwc(blobs):
    return {"relu" + k[4:]: jnp.asarray(v[0].transpose(1, 2, 0), jnp.float32) for k, v in blobs.items()}


def test_official_objective_and_gradient_equal_deepart_objective_func(caffe_vgg, caffe_net):
    x, other = smooth_images(2, H, W, seed=3)
    x = x.copy()
    x[4:14, 6:20] = 0.5  # a flat patch: tv_norm's 1e-3 floor and its gradient there
    F2 = shifted(caffe_blobs(caffe_net, caffe_input(other.astype(np.float64))))
    assert F2["conv5_1"].shape == (1, 512, 5, 4) and F2["conv3_1"].shape == (1, 256, 18, 14)

    cfg = presets.preset("official")
    loss = cfg.objective.feature_loss(pretrained=True)
    t = to_nhwc(F2)
    assert loss.model.pool_rounding == "ceil"
    assert {k: v[:2] for k, v in tap_shapes((H, W), TAPS, pool_rounding="ceil").items()} == {
        k: tuple(v.shape[:2]) for k, v in t.items()
    }
    got, grad = jax.value_and_grad(loss)(jnp.asarray(x), caffe_vgg.variables, t)

    want, want_grad = dfi_reconstruct_objective(F2, caffe_net, BLOBS, caffe_input(x.astype(np.float64)))
    # the gradient in dfijax's RGB [0, 1] coordinates: caffe_in = rgb[..., ::-1] * 255 - mean (deepmodels.py:L211)
    want_grad = 255.0 * want_grad.reshape(1, 3, H, W)[0].transpose(1, 2, 0)[:, :, ::-1]

    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    g = np.asarray(grad, np.float64)
    assert np.linalg.norm(g - want_grad) <= 1e-4 * np.linalg.norm(want_grad)
    # the ÷3 of deepart.py:L170 is what the preset computes: ½‖·‖² summed would be 3x the feature term
    feat_only = presets.preset("official", tv_weight=0.0).objective.feature_loss(pretrained=True)
    tv_term = want - float(feat_only(jnp.asarray(x), caffe_vgg.variables, t))
    assert tv_term == pytest.approx(1e-3 * tv_norm(caffe_input(x.astype(np.float64)))[0], rel=1e-4)


def caffe_pooled(height):
    """pooling_layer.cpp (Reshape): pooled_height_ = static_cast<int>(ceil(static_cast<float>(height_ +
    2 * pad_h_ - kernel_h_) / stride_h_)) + 1, with VGG's kernel 2, stride 2, pad 0."""
    return int(np.ceil(np.float32(height + 2 * 0 - 2) / 2)) + 1


def test_official_network_has_caffes_blob_shapes(caffe_vgg):
    """conv3_1/4_1/5_1 sit after 2/3/4 pools (VGG_ILSVRC_19_layers_deploy_fullconv.prototxt); at 200x200
    (demo1's size) Caffe's conv5_1 is 13x13 where flooring gives 12x12."""
    model = presets.preset("official").objective.feature_loss(pretrained=True).model
    for h, w in [(200, 200), (350, 450), (37, 53)]:
        want = {}
        for pools, tap in [(2, "relu3_1"), (3, "relu4_1"), (4, "relu5_1")]:
            hh, ww = h, w
            for _ in range(pools):
                hh, ww = caffe_pooled(hh), caffe_pooled(ww)
            want[tap] = (1, hh, ww)
        x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
        got = jax.eval_shape(lambda v, x: model.apply(v, x, taps=TAPS), caffe_vgg.variables, x)
        assert {t: tuple(v.shape[:3]) for t, v in got.items()} == want, (h, w)
    assert want["relu5_1"] == (1, 3, 4)  # 37x53
    assert tap_shapes((200, 200), ["relu5_1"], pool_rounding="ceil")["relu5_1"][:2] == (13, 13)


def test_official_solve_is_dfi_reconstructs_scipy_call(caffe_vgg, caffe_net):
    """deepmodels.py:L105-134: scipy's L-BFGS-B on the Caffe input (BGR, 0-255, minus the mean), boxed in
    (-128, 162), options {'maxiter', 'iprint'}. Run on the preset's compiled objective (equal to
    objective_func, the test above) in the reference's coordinates, it gives the preset's first 10
    iterates; run on the torch transcription of objective_func, the same final loss. (The two networks'
    float32 gradients differ by ~1e-6, which L-BFGS-B's curvature pairs amplify within a few iterations,
    so iterates are compared on one objective.)"""
    x, other = smooth_images(2, H, W, seed=4)
    # a little noise: no exact ties in the max pools, whose gradient torch and XLA route differently
    x = (0.15 + 0.7 * x + np.random.default_rng(0).uniform(-0.02, 0.02, x.shape)).astype(np.float32)
    F2 = shifted(caffe_blobs(caffe_net, caffe_input(other.astype(np.float64))))
    cfg = presets.preset("official", iters=12)
    loss, variables, t = (
        cfg.objective.feature_loss(pretrained=True),
        cfg.objective.network(caffe_vgg).variables,
        to_nhwc(F2),
    )
    caffe_in = caffe_input(x.astype(np.float64))

    def preset_objective(v, *args):
        """The preset's objective at the Caffe input v (deepart.objective_func's signature and units), the
        program the preset's solve compiles (bit for bit the same values)."""
        x = jnp.asarray(deprocess_unclipped(v.reshape(caffe_in.shape)), jnp.float32)
        f, g = inv._value_and_grad(loss, x, variables, t)
        return float(f), np.asarray(g, np.float64)[:, :, ::-1].transpose(2, 0, 1).ravel() / 255.0

    def dfi_reconstruct_solve(objective, *args):
        x0 = caffe_in.ravel().astype(np.float64)  # L129
        solver_param = {"maxiter": cfg.solve.iters, "iprint": -1}  # L131
        bounds = (-128, 162)  # L105
        seen = []
        opt_res = scipy.optimize.minimize(
            objective,
            x0,
            args=args,
            bounds=list(zip(np.full_like(x0, bounds[0]), np.full_like(x0, bounds[1]))),
            method="L-BFGS-B",
            jac=True,
            options={"maxiter": solver_param["maxiter"]},
            callback=lambda xk: seen.append(deprocess_unclipped(xk.reshape(caffe_in.shape))),
        )  # L134 (Python 3: list(zip(...)); iprint, which only prints, left out)
        return seen, opt_res

    want, opt_res = dfi_reconstruct_solve(preset_objective)
    group = [(None, list(BLOBS), False, 1.0)]  # L111-121: one target group, equal blob weights
    _, transcribed = dfi_reconstruct_solve(
        objective_func, caffe_net, list(BLOBS), group, [F2], 0.001, 2, caffe_in.shape
    )

    got = {}
    r = inv.invert(
        loss, variables, {k: v[None] for k, v in t.items()}, jnp.asarray(x[None]), cfg.solve.solver(), check_every=1,
        snapshot=lambda k, z: got.setdefault(k, np.asarray(z[0], np.float64)),
    )  # fmt: skip
    assert len(want) == cfg.solve.iters and int(r.num_iters[0]) == cfg.solve.iters
    moved = [np.sqrt(np.mean((b - a) ** 2)) * 255 for a, b in zip([x] + want, want)]
    assert min(moved[:10]) > 0.5  # every iterate moves (0-255 units; seen 1.2 to 15)
    for k in range(10):  # seen: 3.3e-6 each (the iterates' float32 rounding)
        assert np.sqrt(np.mean((got[k + 1] - want[k]) ** 2)) * 255 <= 1e-4, k
    assert float(r.final_loss[0]) == pytest.approx(opt_res.fun, rel=1e-4)  # seen 0 (the same iterates)
    # on the transcription the path drifts apart after a few iterations (float32 noise, above), the loss not
    assert float(r.final_loss[0]) == pytest.approx(transcribed.fun, rel=5e-3)  # seen 2.3e-3 (12 iterations)
    # the first trial step, x − ∇f in Caffe units (lbfgsb.f lnsrlb: stp = 1 when boxed), was accepted:
    # on [0, 1] pixels the same solver would have stepped 255² times shorter
    g0 = preset_objective(caffe_in.ravel())[1].reshape(caffe_in.shape)
    first = deprocess_unclipped(caffe_in - g0)
    np.testing.assert_allclose(got[1], first, atol=1e-5)


def test_official_box_is_dfi_reconstructs_caffe_bounds(caffe_vgg):
    bounds = (-128, 162)  # deepmodels.py:L105
    lo = deprocess_unclipped = ((np.full((1, 1, 3), bounds[0]) + MEAN)[:, :, ::-1] / 255.0)[0, 0]  # L134, L214
    hi = ((np.full((1, 1, 3), bounds[1]) + MEAN)[:, :, ::-1] / 255.0)[0, 0]
    cfg = presets.preset("official")
    got_lo, got_hi = cfg.solve.pixel_box()
    np.testing.assert_allclose(got_lo, lo, rtol=1e-12)
    np.testing.assert_allclose(got_hi, hi, rtol=1e-12)
    assert deprocess_unclipped[0] < 0 < 1 < hi[2]  # wider than [0, 1] in every channel
    solver = cfg.solve.solver(3)
    assert solver.bounds == (tuple(lo), tuple(hi)) and solver.history_size == 10  # scipy's maxcor


def lfw_binarize(lfwattrname, lfwattr):
    """datasets/lfw/lfw_binarize_attributes.py:L19-37 (Python 3: items() for iteritems())."""
    S = {
        lfwattrname[i]: sorted(
            [j for j, x in enumerate(lfwattr) if float(x[i]) > 0], key=lambda k, i=i: -float(lfwattr[k][i])
        )
        for i in range(2, len(lfwattrname))
    }  # L20
    U = {lfwattrname[i]: lfwattrname[i] for i in range(2, len(lfwattrname))}  # L22

    def augment_neg(attr, negattr):  # L23
        i = lfwattrname.index(attr)  # L24
        S[negattr] = sorted([j for j, x in enumerate(lfwattr) if float(x[i]) < 0], key=lambda k: float(lfwattr[k][i]))
        U[negattr] = attr  # L27

    augment_neg("Male", "Female")  # L28
    S = {k: v[: len(v) * 2 // 3] for k, v in S.items()}  # L29
    M = set(S["Male"])  # L34
    F = set(S["Female"])  # L35
    G = {k: "Male" if sum(1 if j in M else (-1 if j in F else 0) for j in v) >= 0 else "Female" for k, v in S.items()}
    T = {k: [j for j in v if j in (M if G[k] == "Male" else F)] for k, v in S.items()}  # L37
    return {"attribute_members": S, "attribute_gender": G, "attribute_gender_members": T}


def make_manifolds(lfw, n_images, a, s, t, X):
    """demo1.py:L19-47 with X given (the input's index), N = 1."""
    S = {k: set(v) for k, v in lfw["attribute_members"].items()}  # L24
    T = lfw["attribute_gender_members"]  # L25
    G = set(T[lfw["attribute_gender"][a]])  # L26

    def distfn(y, z):  # L35-38
        fy = [True if y in S[b] else False for b in sorted(S.keys())]
        fz = [True if z in S[b] else False for b in sorted(S.keys())]
        return sum(0 if yy == zz else 1 for yy, zz in zip(fy, fz))

    rng = range(n_images)
    P = [i for i in rng if i in G and i not in S[a] and not any(i in S[b] for b in t) and all(i in S[b] for b in s)]
    P = sorted([j for j in P if j != X], key=lambda k: distfn(X, k))  # L42
    Q = [i for i in rng if i in G and i in S[a] and not any(i in S[b] for b in s) and all(i in S[b] for b in t)]
    Q = sorted([j for j in Q if j != X and j not in P], key=lambda k: distfn(X, k))  # L45
    return P, Q


def test_official_lfw_neighbours_are_make_manifolds_on_binarised_scores():
    rng = np.random.default_rng(7)
    names = ["Male", "Smiling", "Senior", "Youth", "Eyeglasses"]
    scores = np.round(rng.normal(size=(60, len(names))), 3)  # 3 decimals: ties in the scores, as in the file
    rows = [["p", "1"] + [f"{v:.3f}" for v in r] for r in scores]
    lfw = lfw_binarize(["person", "imagenum"] + names, rows)
    binary = nb.binarize_scores(scores, names)
    assert binary.names == tuple(sorted(lfw["attribute_members"]))
    for j, n in enumerate(binary.names):
        assert set(np.flatnonzero(binary.members[:, j])) == set(lfw["attribute_members"][n]), n
        assert binary.gender[j] == lfw["attribute_gender"][n], n
    for x, (a, s) in [(0, ("Senior", ["Youth"])), (5, ("Smiling", [])), (11, ("Eyeglasses", ["Smiling"]))]:
        P, Q = make_manifolds(lfw, len(scores), a, s, [], x)
        edit = [(n, -1) for n in s] + [(a, 1)]
        got = nb.official_lfw_neighbours(binary, binary.members[x], edit, k=4, exclude=x, allow_fewer=True)
        np.testing.assert_array_equal(got.target, Q[:4])  # demo1.py:L114-116 (xQ[:K])
        np.testing.assert_array_equal(got.source, P[:4])
        assert (got.n_target_available, got.n_source_available) == (len(Q), len(P))


def celeba_select(score, constraints, attributes):
    """deepmodels.py:L245-269 (celeba_attributes: __init__ and select) over a score table."""
    _binary_score = score >= 0  # L251
    _confident = np.ones_like(score, dtype=bool)  # L252
    distance_idx = np.arange(score.shape[1])  # L255

    def admissible(i):  # L265-266
        return all(_binary_score[i, j] == v and _confident[i, j] for j, v in constraints)

    S = np.asarray([i for i in range(len(score)) if admissible(i)])  # L267
    knn = np.argsort(
        scipy.spatial.distance.cdist(
            np.expand_dims(attributes[distance_idx], 0), _binary_score[S][:, distance_idx], "minkowski", p=1
        )
    ).astype(np.int32)  # L268
    return list(S[knn[0]])  # L269


@dataclasses.dataclass
class AttrTable(FaceDataset):
    def load(self, index, size):
        raise AssertionError("neighbour selection reads attributes only")


def test_official_celeba_neighbours_are_celeba_attributes_select():
    rng = np.random.default_rng(3)
    attrs = np.where(rng.random((80, 6)) < 0.5, -1.0, 1.0)  # CelebA's ±1 labels
    gender, smile, young = 0, 1, 2
    XA = attrs[7]
    # demo2.py:L103-104 (method 'older'): the input's gender and smile held, then the edited attribute
    cP = [(gender, XA[gender] >= 0), (smile, XA[smile] >= 0), (young, True)]
    cQ = [(gender, XA[gender] >= 0), (smile, XA[smile] >= 0), (young, False)]
    P, Q = celeba_select(attrs, cP, XA), celeba_select(attrs, cQ, XA)
    got = nb.official_binary_neighbours(attrs, XA, [(young, -1)], k=5, same=[gender, smile], allow_fewer=True)
    np.testing.assert_array_equal(got.source, P[:5])
    np.testing.assert_array_equal(got.target, Q[:5])
    gender_only = nb.official_binary_neighbours(attrs, XA, [(young, -1)], k=5, same=gender, allow_fewer=True)
    assert not np.array_equal(gender_only.source, got.source)  # holding the smile changes the sets here
    # the preset holds exactly these for that edit: gender (same_gender) and Smiling (hold), not an edited one
    names = ("Male", "Smiling", "Young", "Eyeglasses", "Bald", "Mouth_Slightly_Open")
    data = AttrTable("celeba", names, attrs, tuple(map(str, range(80))), True, "Male")
    cfg = presets.preset("official")
    assert rules._held(cfg, data, [(young, -1)]) == [gender, smile]
    assert rules._held(cfg, data, [(smile, 1)]) == [gender]
    # raw query scores (a classifier's, not ±1) are compared with the 0/1 binary table as they are
    q = rng.normal(size=6)
    cQ = [(smile, True)]
    got = nb.official_binary_neighbours(attrs, q, [(smile, 1)], k=6, allow_fewer=True)
    np.testing.assert_array_equal(got.target, celeba_select(attrs, cQ, q)[:6])


def test_official_color_match_is_utils_color_match():
    rng = np.random.default_rng(0)
    A = rng.random((1, 1, 12, 10, 3))  # utils.py:L47 a column of originals
    B = 0.5 * rng.random((1, 3, 12, 10, 3)) + 0.2  # L48 a grid of results
    # utils.py:L50-61
    m = A.reshape(A.shape[0], 1, -1).mean(axis=2)
    m = np.expand_dims(np.expand_dims(np.expand_dims(m, -1), -1), -1)
    s = (A - m).reshape(A.shape[0], 1, -1).std(axis=2)
    s = np.expand_dims(np.expand_dims(np.expand_dims(s, -1), -1), -1)
    m2 = B.reshape(B.shape[0], B.shape[1], -1).mean(axis=2)
    m2 = np.expand_dims(np.expand_dims(np.expand_dims(m2, -1), -1), -1)
    s2 = (B - m2).reshape(B.shape[0], B.shape[1], -1).std(axis=2)
    s2 = np.expand_dims(np.expand_dims(np.expand_dims(s2, -1), -1), -1)
    want = (B - m2) * (s + 1e-8) / (s2 + 1e-8) + m
    got = postprocess.match_color_global(jnp.asarray(B[0], jnp.float32), jnp.asarray(A[0, 0], jnp.float32))
    np.testing.assert_allclose(np.asarray(got), want[0], atol=1e-5)


def test_official_preset_settings_are_the_demos():
    cfg = presets.preset("official")
    assert cfg.neighbours.k == 100  # demo1.py:L54 --K
    assert cfg.objective.scaling == "beta"  # demo1.py:L55, L117-118 WF = (QF - PF) / mean((QF - PF)**2)
    assert cfg.solve.iters == 500  # demo1.py:L56 --iter
    assert cfg.finish.color_match == "global"  # demo1.py:L57, L135-136
    assert cfg.alphas == (0.4,)  # demo1.py:L58 --delta
    assert cfg.size == 200  # demo1.py:L64 minimum_resolution
    assert cfg.solve.alpha_mode == "warm" and cfg.solve.init == "input"  # demo1.py:L121-132: init=o, then Y, iter//2
    assert (
        cfg.objective.tv_weight == 1e-3 and cfg.objective.tv_form == "tv-norm" and cfg.objective.reduction == "sum/taps"
    )  # deepmodels.py:L204
    assert (
        cfg.solve.bounds == "lbfgsb" and cfg.solve.box == "caffe" and cfg.objective.taps == TAPS
    )  # deepmodels.py:L130, L202
    assert cfg.solve.optimizer == "scipy" and cfg.solve.history == 10  # deepmodels.py:L134, scipy's maxcor default
    assert cfg.objective.pool_rounding == "ceil"  # Caffe pooling_layer.cpp: ceil((H + 2 pad - k) / stride) + 1
    assert cfg.neighbours.same_gender and cfg.neighbours.hold == ("Smiling",)  # demo2.py:L103-112
    assert cfg.solve.ftol == pytest.approx(1e7 * np.finfo(np.float64).eps)  # scipy L-BFGS-B factr default
    assert cfg.neighbours.rule == "official" and not cfg.neighbours.include_input


def test_torch_backend_pads_to_a_multiple_of_64_as_fit_to_quantum():
    """deepmodels_torch.py:L29-60 (FitToQuantum after Normalize, unfit_from_quantum): demo2's torch backend
    pads each normalised CHW image with zeros, centred, to a multiple of 64; dfijax pads the RGB image with
    the colour its preprocessing maps to zero, so the network sees the same tensor."""

    def reference_fit(img, quantum=64.0):  # FitToQuantum.__call__, img [C, H, W] after Normalize
        size = img.size()
        pad_w = 0 if img.size(1) % int(quantum) == 0 else int((quantum - img.size(1) % int(quantum)) / 2)
        pad_h = 0 if img.size(2) % int(quantum) == 0 else int((quantum - img.size(2) % int(quantum)) / 2)
        res = torch.zeros(
            size[0], int(math.ceil(size[1] / quantum) * quantum), int(math.ceil(size[2] / quantum) * quantum)
        )
        res[:, pad_w : (pad_w + size[1]), pad_h : (pad_h + size[2])].copy_(img)
        return res

    weights = random_weights(0)  # torchvision preprocessing, as vgg19g_torch_base's Normalize
    mean, std = torch.tensor((0.485, 0.456, 0.406)), torch.tensor((0.229, 0.224, 0.225))
    for h, w in [(200, 150), (129, 64), (64, 65)]:
        img = smooth_images(1, h, w, seed=h)[0]
        normalised = (torch.from_numpy(img).permute(2, 0, 1) - mean[:, None, None]) / std[:, None, None]
        want = reference_fit(normalised).permute(1, 2, 0).numpy()
        padded, (top, left) = fit_to_quantum(img, zero_colour(weights.variables))
        pre = weights.variables["preprocess"]
        got = padded @ np.asarray(pre["matrix"]).T + np.asarray(pre["offset"])
        assert got.shape == want.shape and got.shape[0] % 64 == 0 and got.shape[1] % 64 == 0
        np.testing.assert_allclose(got, want, atol=1e-5)
        np.testing.assert_array_equal(unfit_from_quantum(padded, (h, w)), img)
        assert (top, left) == ((64 - h % 64) // 2 if h % 64 else 0, (64 - w % 64) // 2 if w % 64 else 0)
