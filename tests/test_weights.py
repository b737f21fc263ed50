"""Weight conversion: an independent torch VGG-19 (and VGG-16) saved in every source layout must give the same taps."""

import hashlib
import pathlib
import subprocess
import sys

import chex
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from benchmarks import torch_reference as tr
from dfijax import weights as W
from dfijax.vgg import LAYERS, VGG16, VGG19, layers
from tests.conftest import smooth_images

ROOT = pathlib.Path(__file__).resolve().parent.parent
_apply_all = jax.jit(lambda v, x: VGG19().apply(v, x, taps=LAYERS))
_apply_all16 = jax.jit(lambda v, x: VGG16().apply(v, x, taps=layers(16)))


@pytest.fixture(scope="module")
def torch_net():
    return tr.seeded_vgg19(seed=123)


def _save(kind: str, net, d: pathlib.Path) -> pathlib.Path:
    if kind == "torchvision_pth":
        p = d / f"vgg{net.depth}-test.pth"
        torch.save(tr.torchvision_state_dict(net), p)
    elif kind == "gatys_pth":
        p = d / "vgg_conv.pth"
        torch.save(tr.gatys_state_dict(net), p)
    elif kind == "safetensors":
        p = d / f"vgg{net.depth}.safetensors"
        save_file({k: v.numpy() for k, v in tr.torchvision_state_dict(net).items()}, str(p))
    elif kind in ("keras_h5", "keras_h5_nested"):
        p = d / f"vgg{net.depth}_weights_tf_dim_ordering_tf_kernels_notop.h5"
        with h5py.File(p, "w") as f:
            names = []
            for group, (k, b) in tr.keras_arrays(net).items():
                g = f.create_group(group)
                if kind == "keras_h5":  # keras-applications' file: block1_conv1/block1_conv1_W_1:0
                    g.create_dataset(f"{group}_W_1:0", data=k)
                    g.create_dataset(f"{group}_b_1:0", data=b)
                else:  # Keras 2 save_weights layout: block1_conv1/block1_conv1/kernel:0
                    g.create_dataset(f"{group}/kernel:0", data=k)
                    g.create_dataset(f"{group}/bias:0", data=b)
                names.append(group.encode())
            f.attrs["layer_names"] = names
    else:
        raise ValueError(kind)
    return p


PREPROCESS = {
    "torchvision_pth": "torchvision",
    "safetensors": "torchvision",
    "gatys_pth": "caffe",
    "keras_h5": "caffe",
    "keras_h5_nested": "caffe",
}


@pytest.mark.parametrize("kind", list(PREPROCESS))
def test_converted_weights_match_an_independent_torch_vgg19(torch_net, tmp_path, kind):
    src = _save(kind, torch_net, tmp_path)
    meta = W.convert_file(src, tmp_path / "out.safetensors")
    assert meta["preprocess"] == PREPROCESS[kind]
    assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["pretrained"] == "true"
    loaded = W.load_vgg19(tmp_path / "out.safetensors")
    for hw in [(32, 32), (41, 37)]:
        x = smooth_images(2, *hw, seed=hw[0])
        ours = _apply_all(loaded.variables, jnp.asarray(x))
        with torch.no_grad():
            ref = torch_net(tr.preprocess(x, PREPROCESS[kind]), LAYERS)
        for tap in LAYERS:
            r = ref[tap].permute(0, 2, 3, 1).numpy()
            assert ours[tap].shape == r.shape, tap
            rel = float(np.linalg.norm(np.asarray(ours[tap]) - r) / np.linalg.norm(r))
            assert rel < 1e-4, (kind, hw, tap, rel)


def test_converted_vgg16_matches_an_independent_torch_vgg16(tmp_path):
    """torchvision's vgg16-397923af layout and both Keras .h5 layouts; the depth comes from the file."""
    net = tr.seeded_vgg(seed=321, depth=16)
    taps = layers(16)
    xs = {hw: smooth_images(1, *hw, seed=hw[0]) for hw in [(32, 32), (41, 37)]}
    with torch.no_grad():
        refs = {(hw, pre): net(tr.preprocess(x, pre), taps) for hw, x in xs.items() for pre in ("torchvision", "caffe")}
    converted = {}
    for kind in ("torchvision_pth", "keras_h5", "keras_h5_nested"):
        (tmp_path / kind).mkdir()
        src = _save(kind, net, tmp_path / kind)
        out = tmp_path / kind / "out.safetensors"
        meta = W.convert_file(src, out)
        assert (meta["depth"], meta["preprocess"]) == ("16", PREPROCESS[kind])
        assert W.converted_depth(out) == 16
        loaded = converted[kind] = W.load_vgg(out)
        assert loaded.depth == 16 and loaded.pretrained and "VGG-16" in loaded.description
        assert set(loaded.variables["params"]) == {t for t in taps if t.startswith("conv")}
        if kind == "keras_h5_nested":  # same arrays as the flat layout: no second forward pass needed
            chex.assert_trees_all_equal(loaded.variables, converted["keras_h5"].variables)
            continue
        for hw, x in xs.items():
            ours = _apply_all16(loaded.variables, jnp.asarray(x))
            for tap in taps:
                r = refs[hw, PREPROCESS[kind]][tap].permute(0, 2, 3, 1).numpy()
                assert ours[tap].shape == r.shape, tap
                rel = float(np.linalg.norm(np.asarray(ours[tap]) - r) / np.linalg.norm(r))
                assert rel < 1e-4, (kind, hw, tap, rel)
    # a VGG-16 file where VGG-19 is required (and the other way round) is a one-line error
    with pytest.raises(W.WeightsError, match="holds VGG-16 weights, expected VGG-19"):
        W.load_vgg19(out)
    with pytest.raises(W.WeightsError, match="holds VGG-16 weights, expected VGG-19"):
        W.convert_file(src, tmp_path / "x.safetensors", depth=19)
    assert W.default_converted_name(src, 16) == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.safetensors"
    assert W.default_converted_name("vgg_conv.pth", 19) == "vgg19_vgg_conv.safetensors"


def test_vgg16_and_vgg19_files_are_found_by_depth(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(W, "DEFAULT_WEIGHTS_DIR", tmp_path / "nothing")
    r16 = W.load_vgg(depth=16, seed=2)
    assert (r16.depth, r16.pretrained) == (
        16,
        False,
    ) and "seeded random VGG-16 (seed 2), NOT pretrained" in r16.description
    assert "fetch_vgg19.py torchvision16" in r16.description
    np.testing.assert_array_equal(
        r16.variables["params"]["conv5_3"]["kernel"], W.random_params(2, 16)["conv5_3"]["kernel"]
    )
    assert "conv5_4" not in r16.variables["params"]
    with pytest.raises(FileNotFoundError, match="no VGG-16 weights found.*fetch_vgg19.py torchvision16"):
        W.load_vgg(depth=16, allow_random=False)
    W.save_converted(
        tmp_path / "weights" / "vgg16_t.safetensors",
        W.random_params(4, 16),
        {"preprocess": "torchvision", "pretrained": "true", "source_name": "t.pth"},
    )
    assert W.find_weights(depth=16) == pathlib.Path("weights/vgg16_t.safetensors").absolute()
    assert W.find_weights() is None  # a VGG-16 file never becomes the VGG-19 default
    assert W.load_vgg(depth=16).depth == 16 and not W.load_vgg19().pretrained
    # $DFIJAX_WEIGHTS counts for VGG-16 only when it is a VGG-16 file
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "weights" / "vgg16_t.safetensors"))
    assert W.find_weights(depth=16) == tmp_path / "weights" / "vgg16_t.safetensors"
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "elsewhere.safetensors"))
    assert W.find_weights(depth=16) == pathlib.Path("weights/vgg16_t.safetensors").absolute()
    # files written before VGG-16 support (format dfijax-vgg19/1, no depth) load as VGG-19
    p19 = W.random_params(5)
    save_file(
        {f"{n}.{k}": p19[n][k] for n in p19 for k in ("kernel", "bias")},
        str(tmp_path / "old.safetensors"),
        metadata={"format": "dfijax-vgg19/1", "preprocess": "caffe", "pretrained": "true"},
    )
    old = W.load_vgg(tmp_path / "old.safetensors")
    assert old.depth == 19 and W.converted_depth(tmp_path / "old.safetensors") == 19


def test_non_torch_formats_convert_without_torch(torch_net, tmp_path):
    st = _save("safetensors", torch_net, tmp_path)
    h5 = _save("keras_h5", torch_net, tmp_path)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from dfijax.weights import convert_file\n"
        f"print(convert_file({str(st)!r}, {str(tmp_path / 'a.safetensors')!r})['preprocess'])\n"
        f"print(convert_file({str(h5)!r}, {str(tmp_path / 'b.safetensors')!r})['preprocess'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["torchvision", "caffe"]
    code = (
        "import sys; sys.modules['torch'] = None\nfrom dfijax.weights import convert_file\n"
        f"convert_file({str(tmp_path / 'x.pth')!r}, 'y')"
    )
    (tmp_path / "x.pth").write_bytes(b"not really")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "needs torch" in out.stderr


def test_random_weights_never_pass_for_pretrained(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(W, "DEFAULT_WEIGHTS_DIR", tmp_path / "nothing")
    w = W.load_vgg19()
    assert not w.pretrained and "NOT pretrained" in w.description
    np.testing.assert_array_equal(
        w.variables["params"]["conv3_1"]["kernel"], W.random_weights(0).variables["params"]["conv3_1"]["kernel"]
    )
    assert not np.array_equal(
        w.variables["params"]["conv3_1"]["kernel"], W.random_weights(1).variables["params"]["conv3_1"]["kernel"]
    )
    with pytest.raises(FileNotFoundError, match="fetch_vgg19.py"):
        W.load_vgg19(allow_random=False)
    # a converted file in ./weights is found and reported as pretrained
    W.save_converted(
        tmp_path / "weights" / "vgg19_x.safetensors",
        W.random_params(3),
        {
            "format": W.FORMAT,
            "preprocess": "caffe",
            "pretrained": "true",
            "source_name": "x.pth",
            "source_format": "torchvision_pth",
        },
    )
    w = W.load_vgg19()
    assert w.pretrained and "x.pth" in w.description
    np.testing.assert_array_equal(
        w.variables["preprocess"]["offset"],
        -W.preprocess_constants("caffe")["matrix"].sum(0) * 0 - np.array([103.939, 116.779, 123.68], np.float32),
    )


def test_bad_weight_files_get_one_line_errors(torch_net, tmp_path):
    sd = tr.torchvision_state_dict(torch_net)
    vgg16 = {k: v for k, v in sd.items() if not k.startswith(("features.16.", "features.25.", "features.34."))}
    torch.save(vgg16, tmp_path / "vgg16.pth")
    bad_shape = dict(sd)
    bad_shape["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(bad_shape, tmp_path / "bad.pth")
    torch.save({"foo.weight": torch.zeros(1)}, tmp_path / "other.pth")
    (tmp_path / "corrupt.pth").write_bytes(b"\x00garbage")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00garbage")
    (tmp_path / "w.bin").write_bytes(b"")
    cases = [
        ("vgg16.pth", W.WeightsError, "missing features.16.weight"),
        ("bad.pth", W.WeightsError, r"conv1_1 has kernel \(3, 3, 1, 64\)"),
        ("other.pth", W.WeightsError, "unrecognised key layout"),
        ("corrupt.pth", W.WeightsError, "cannot read"),
        ("corrupt.safetensors", W.WeightsError, "cannot read"),
        ("w.bin", W.WeightsError, "cannot tell the format"),
        ("missing.pth", FileNotFoundError, "not found"),
    ]
    for name, exc, match in cases:
        with pytest.raises(exc, match=match) as e:
            W.convert_file(tmp_path / name, tmp_path / "o.safetensors")
        assert "\n" not in str(e.value), name
    with pytest.raises(W.WeightsError, match="convert it first"):
        W.load_vgg19(tmp_path / "vgg16.pth")


def test_convert_script(torch_net, tmp_path):
    src = _save("gatys_pth", torch_net, tmp_path)
    out = subprocess.run(
        [sys.executable, "scripts/convert_vgg19.py", str(src), "--out", str(tmp_path / "g.safetensors")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "VGG-19, gatys_pth, caffe preprocessing" in out.stdout
    assert W.load_vgg19(tmp_path / "g.safetensors").meta["source_format"] == "gatys_pth"
    out = subprocess.run(
        [sys.executable, "scripts/convert_vgg19.py", str(tmp_path / "nope.pth")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
