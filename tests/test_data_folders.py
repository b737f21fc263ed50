"""CelebA and LFW folder loaders on tiny fake datasets written in the real file formats."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from PIL import Image

from dfijax.data import DataError
from dfijax.data.celeba import DEFAULT_CROP, load_celeba_folder, load_celeba_tfds
from dfijax.data.lfw import load_lfw_folder

CELEBA_ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

# The real lfw_attributes.txt header (73 attributes), as published with "Attribute and Simile Classifiers".
LFW_ATTRS = (
    "Male\tAsian\tWhite\tBlack\tBaby\tChild\tYouth\tMiddle Aged\tSenior\tBlack Hair\tBlond Hair\tBrown Hair\tBald\t"
    "No Eyewear\tEyeglasses\tSunglasses\tMustache\tSmiling\tFrowning\tChubby\tBlurry\tHarsh Lighting\tFlash\t"
    "Soft Lighting\tOutdoor\tCurly Hair\tWavy Hair\tStraight Hair\tReceding Hairline\tBangs\tSideburns\t"
    "Fully Visible Forehead\tPartially Visible Forehead\tObstructed Forehead\tBushy Eyebrows\tArched Eyebrows\t"
    "Narrow Eyes\tEyes Open\tBig Nose\tPointy Nose\tBig Lips\tMouth Closed\tMouth Slightly Open\tMouth Wide Open\t"
    "Teeth Not Visible\tNo Beard\tGoatee\tRound Jaw\tDouble Chin\tWearing Hat\tOval Face\tSquare Face\tRound Face\t"
    "Color Photo\tPosed Photo\tAttractive Man\tAttractive Woman\tIndian\tGray Hair\tBags Under Eyes\tHeavy Makeup\t"
    "Rosy Cheeks\tShiny Skin\tPale Skin\t5 o' Clock Shadow\tStrong Nose-Mouth Lines\tWearing Lipstick\tFlushed Face\t"
    "High Cheekbones\tBrown Eyes\tWearing Earrings\tWearing Necktie\tWearing Necklace"
).split("\t")

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _face_image(w: int, h: int, box: tuple[int, int, int, int], inner=RED, outer=BLUE) -> Image.Image:
    """outer colour everywhere, inner colour exactly inside box = (left, top, right, bottom)."""
    im = Image.new("RGB", (w, h), outer)
    im.paste(inner, box)
    return im


def _celeba_values(i: int) -> list[int]:
    rng = np.random.default_rng(i)
    return [int(v) for v in rng.choice([-1, 1], size=len(CELEBA_ATTRS))]


def make_celeba(root: pathlib.Path, n: int = 6) -> pathlib.Path:
    """Official layout: img_align_celeba/00000k.jpg (178×218, red face square on blue) + list_attr_celeba.txt."""
    top, left, hh, ww = DEFAULT_CROP
    (root / "img_align_celeba").mkdir(parents=True)
    lines = [f"{n}", " ".join(CELEBA_ATTRS) + " "]  # the real file has a trailing space here
    for i in range(1, n + 1):
        _face_image(178, 218, (left, top, left + ww, top + hh)).save(
            root / "img_align_celeba" / f"{i:06d}.jpg", quality=95
        )
        lines.append(f"{i:06d}.jpg " + "".join(f"{v:3d}" for v in _celeba_values(i)))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


LFW_PEOPLE = [("Aaron Eckhart", 1), ("Aaron Peirsol", 1), ("Aaron Peirsol", 2), ("Abdullah Gul", 1)]
LFW_BOX = (40, 20, 210, 190)


def _lfw_values(i: int) -> list[float]:
    return [round(float(v), 5) for v in np.random.default_rng(100 + i).normal(0, 1.5, len(LFW_ATTRS))]


def make_lfw(root: pathlib.Path, image_dir: str = "lfw", missing: tuple[int, ...] = ()) -> pathlib.Path:
    """lfw_attributes.txt in the real layout + <image_dir>/<Person_Name>/<Person_Name>_000k.jpg (250×250);
    rows listed in `missing` get no image."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["# 13143 images", "#\tperson\timagenum\t" + "\t".join(LFW_ATTRS)]
    for i, (person, num) in enumerate(LFW_PEOPLE):
        lines.append(f"{person}\t{num}\t" + "\t".join(f"{v:.5f}" for v in _lfw_values(i)))
        if i in missing:
            continue
        folder = root / image_dir / person.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        _face_image(250, 250, LFW_BOX).save(folder / f"{person.replace(' ', '_')}_{num:04d}.jpg", quality=95)
    (root / "lfw_attributes.txt").write_text("\n".join(lines) + "\n")
    return root


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- CelebA


def test_celeba_folder_table(tmp_path):
    ds = load_celeba_folder(make_celeba(tmp_path / "celeba"))
    assert ds.name == "celeba" and ds.binary and ds.gender == "Male"
    assert ds.attr_names == tuple(CELEBA_ATTRS) and len(ds.attr_names) == 40
    assert list(ds.attr_names) == sorted(ds.attr_names)  # same order as load_celeba_tfds
    assert ds.ids == tuple(f"{i:06d}.jpg" for i in range(1, 7)) and len(ds) == 6
    assert ds.attrs.shape == (6, 40) and ds.attrs.dtype == np.float32
    np.testing.assert_array_equal(ds.attrs, np.asarray([_celeba_values(i) for i in range(1, 7)], np.float32))
    assert ds.attr_index("Male") == 20


def test_celeba_images_and_crop(tmp_path):
    ds = load_celeba_folder(make_celeba(tmp_path / "celeba"))
    x = ds.images([0, 2], 64)
    assert x.shape == (2, 64, 64, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # the default box is exactly the red square: no blue anywhere in the crop
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), np.asarray(RED) / 255, atol=0.03)
    # (top, left, height, width): a box moved 40 px up shows blue in its top quarter
    shifted = load_celeba_folder(tmp_path / "celeba", crop=(0, 9, 160, 160)).load(0, 32)
    assert shifted[:6, :, 2].mean() > 0.7 and shifted[16:, :, 0].mean() > 0.7
    # no crop: the whole 178×218 frame squashed to a square, mostly blue border visible
    whole = load_celeba_folder(tmp_path / "celeba", crop=None).load(1, 32)
    assert whole.shape == (32, 32, 3) and whole[0, 0, 2] > 0.7


def test_celeba_limit_and_loose_whitespace(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    attr = root / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[3] = "\t" + lines[3].replace(" ", "   ") + "  \t"  # tabs, runs of spaces, trailing blanks
    attr.write_text("\r\n".join(lines) + "\r\n\r\n")
    ds = load_celeba_folder(root, limit=3)
    assert len(ds) == 3 and ds.ids == ("000001.jpg", "000002.jpg", "000003.jpg")
    np.testing.assert_array_equal(ds.attrs[1], _celeba_values(2))


def test_celeba_kaggle_layout(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    nested = root / "img_align_celeba" / "img_align_celeba"
    nested.mkdir()
    for f in (root / "img_align_celeba").glob("*.jpg"):
        f.rename(nested / f.name)
    lines = (root / "list_attr_celeba.txt").read_text().split("\n")
    csv = ["image_id," + ",".join(CELEBA_ATTRS)] + [",".join(l.split()) for l in lines[2:] if l]
    (root / "list_attr_celeba.txt").unlink()
    (root / "list_attr_celeba.csv").write_text("\n".join(csv) + "\n")
    ds = load_celeba_folder(root)
    assert len(ds) == 6 and ds.attr_names == tuple(CELEBA_ATTRS)
    np.testing.assert_array_equal(ds.attrs[5], _celeba_values(6))
    assert ds.load(5, 16).shape == (16, 16, 3)


def test_celeba_missing_files(tmp_path):
    with pytest.raises(DataError) as e:
        load_celeba_folder(tmp_path / "nowhere")
    msg = _one_line(e)
    assert str(tmp_path / "nowhere") in msg and "list_attr_celeba.txt" in msg and "CelebA" in msg

    root = make_celeba(tmp_path / "a")
    (root / "list_attr_celeba.txt").unlink()
    with pytest.raises(DataError) as e:
        load_celeba_folder(root)
    msg = _one_line(e)
    assert f"missing {root / 'list_attr_celeba.txt'}" in msg and "img_align_celeba" in msg and "tfds" in msg

    root = make_celeba(tmp_path / "b")
    for f in (root / "img_align_celeba").iterdir():
        f.unlink()
    (root / "img_align_celeba").rmdir()
    with pytest.raises(DataError) as e:
        load_celeba_folder(root)
    assert f"missing {root / 'img_align_celeba'}/" in _one_line(e)

    root = make_celeba(tmp_path / "c")
    (root / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(DataError) as e:
        load_celeba_folder(root)
    assert str(root / "img_align_celeba" / "000001.jpg") in _one_line(e)


def _set_field(line: str, k: int, value: str | None, sep: str | None = None) -> str:
    """Replace (or with None drop) whitespace/sep-separated field k of line."""
    fields = line.split(sep)
    if value is None:
        del fields[k]
    else:
        fields[k] = value
    return (sep or " ").join(fields)


@pytest.mark.parametrize(
    "row, field, value, words",
    [
        (4, 40, None, ["line 5", "40 fields", "expected 41"]),
        (6, 7, "x", ["line 7", "non-numeric", "'x'"]),
        (3, 12, "2", ["line 4", "value 2"]),
        (0, 0, "count", ["line 1", "image count"]),
    ],
)
def test_celeba_malformed_attr_file(tmp_path, row, field, value, words):
    root = make_celeba(tmp_path / "celeba")
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().split("\n")
    lines[row] = _set_field(lines[row], field, value)
    path.write_text("\n".join(lines))
    with pytest.raises(DataError) as e:
        load_celeba_folder(root)
    msg = _one_line(e)
    assert str(path) in msg
    for w in words:
        assert w in msg


def test_celeba_corrupt_and_wrong_size_images(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    bad = root / "img_align_celeba" / "000003.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = load_celeba_folder(root)
    assert ds.load(0, 8).shape == (8, 8, 3)
    with pytest.raises(DataError) as e:
        ds.load(2, 8)
    assert str(bad) in _one_line(e)
    Image.new("RGB", (100, 100)).save(bad)  # an in-the-wild sized image: the box does not fit
    with pytest.raises(DataError) as e:
        ds.load(2, 8)
    assert str(bad) in _one_line(e) and "100x100" in str(e.value)
    with pytest.raises(IndexError, match="out of range"):
        ds.load(6, 8)


def test_celeba_tfds_not_prepared(tmp_path):
    with pytest.raises(DataError) as e:
        load_celeba_tfds(data_dir=tmp_path)
    msg = _one_line(e)
    assert f"not prepared in {tmp_path}" in msg and "tfds build celeb_a" in msg and "CelebA folder" in msg


def test_celeba_tfds_conversion(tmp_path, monkeypatch):
    """A fake tfds.data_source (list of example dicts shaped like celeb_a's) exercises the conversion."""
    top, left, hh, ww = DEFAULT_CROP
    image = np.asarray(_face_image(178, 218, (left, top, left + ww, top + hh)))  # [218, 178, 3] uint8
    rng = np.random.default_rng(0)
    examples = [
        {
            "image": image,
            "landmarks": {},
            "attributes": {k: np.bool_(rng.random() < 0.5) for k in reversed(CELEBA_ATTRS)},
        }
        for _ in range(5)
    ]
    calls = []

    def data_source(name, *, split, data_dir=None, download=True):
        calls.append((name, split, data_dir, download))
        return examples

    import tensorflow_datasets

    monkeypatch.setattr(tensorflow_datasets, "data_source", data_source)
    ds = load_celeba_tfds(data_dir=tmp_path, split="test", limit=3)
    assert calls == [("celeb_a", "test", str(tmp_path), False)]
    assert ds.attr_names == tuple(CELEBA_ATTRS) and ds.binary and len(ds) == 3
    assert ds.ids == ("test/000000", "test/000001", "test/000002")
    want = np.asarray([[1.0 if ex["attributes"][k] else -1.0 for k in CELEBA_ATTRS] for ex in examples[:3]])
    np.testing.assert_array_equal(ds.attrs, want)
    x = ds.images([0, 2], 64)
    assert x.shape == (2, 64, 64, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), np.asarray(RED) / 255, atol=0.01)


# ---------------------------------------------------------------- LFW


def test_lfw_folder_table(tmp_path):
    root = make_lfw(tmp_path / "lfw_root")
    ds = load_lfw_folder(root)
    assert ds.name == "lfw" and not ds.binary and ds.gender == "Male" and ds.skipped == 0
    assert len(ds.attr_names) == 73 and ds.attr_names[:3] == ("Male", "Asian", "White")
    assert "Middle_Aged" in ds.attr_names and "5_o'_Clock_Shadow" in ds.attr_names
    assert ds.attr_names.index("Smiling") == 17
    assert ds.ids == (
        "lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
        "lfw/Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
        "lfw/Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
        "lfw/Abdullah_Gul/Abdullah_Gul_0001.jpg",
    )
    assert ds.attrs.shape == (4, 73) and ds.attrs.dtype == np.float32
    np.testing.assert_allclose(ds.attrs, np.asarray([_lfw_values(i) for i in range(4)]), atol=1e-5)


def test_lfw_images_and_crop(tmp_path):
    ds = load_lfw_folder(make_lfw(tmp_path / "r"))
    x = ds.images([0, 2], 64)
    assert x.shape == (2, 64, 64, 3) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), np.asarray(RED) / 255, atol=0.03)
    # (left, top, right, bottom): moving the box 40 px left shows blue in its left quarter
    shifted = load_lfw_folder(tmp_path / "r", crop=(0, 20, 170, 190)).load(0, 34)
    assert shifted[:, :6, 2].mean() > 0.7 and shifted[:, 12:, 0].mean() > 0.7


@pytest.mark.parametrize("image_dir", ["lfw-deepfunneled", "."])
def test_lfw_other_layouts(tmp_path, image_dir):
    root = make_lfw(tmp_path / "r", image_dir=image_dir)
    ds = load_lfw_folder(root, limit=2)
    prefix = "" if image_dir == "." else image_dir + "/"
    assert ds.ids == (f"{prefix}Aaron_Eckhart/Aaron_Eckhart_0001.jpg", f"{prefix}Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
    assert ds.attrs.shape == (2, 73) and ds.load(1, 16).shape == (16, 16, 3)


def test_lfw_skipped_rows(tmp_path):
    ds = load_lfw_folder(make_lfw(tmp_path / "r", missing=(1, 3)))
    assert ds.skipped == 2 and len(ds) == 2
    assert ds.ids == ("lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "lfw/Aaron_Peirsol/Aaron_Peirsol_0002.jpg")
    np.testing.assert_allclose(ds.attrs[1], _lfw_values(2), atol=1e-5)

    with pytest.raises(DataError) as e:
        load_lfw_folder(make_lfw(tmp_path / "none", missing=(0, 1, 2, 3)))
    msg = _one_line(e)
    assert "none of the 4 images" in msg and "Aaron_Eckhart_0001.jpg" in msg and "lfw.tgz" in msg


def test_lfw_missing_files(tmp_path):
    with pytest.raises(DataError) as e:
        load_lfw_folder(tmp_path / "nowhere")
    msg = _one_line(e)
    assert str(tmp_path / "nowhere") in msg and "lfw_attributes.txt" in msg and "lfw.tgz" in msg

    root = make_lfw(tmp_path / "r")
    (root / "lfw_attributes.txt").unlink()
    with pytest.raises(DataError) as e:
        load_lfw_folder(root)
    msg = _one_line(e)
    assert f"missing {root / 'lfw_attributes.txt'}" in msg and "Attribute and Simile Classifiers" in msg


def test_lfw_malformed_and_corrupt(tmp_path):
    root = make_lfw(tmp_path / "r")
    path = root / "lfw_attributes.txt"
    lines = path.read_text().split("\n")
    lines[3] = _set_field(lines[3], 74, None, "\t")
    path.write_text("\n".join(lines))
    with pytest.raises(DataError) as e:
        load_lfw_folder(root)
    msg = _one_line(e)
    assert str(path) in msg and "line 4" in msg and "expected 75" in msg

    lines = make_lfw(tmp_path / "s").joinpath("lfw_attributes.txt").read_text().split("\n")
    lines[4] = _set_field(lines[4], 1, "two", "\t")
    (tmp_path / "s" / "lfw_attributes.txt").write_text("\n".join(lines))
    with pytest.raises(DataError) as e:
        load_lfw_folder(tmp_path / "s")
    assert "line 5" in _one_line(e) and "non-numeric" in str(e.value)

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "lfw_attributes.txt").write_text("Aaron Eckhart\t1\t0.5\n")
    with pytest.raises(DataError) as e:
        load_lfw_folder(tmp_path / "t")
    assert "no header line" in _one_line(e)

    ds = load_lfw_folder(make_lfw(tmp_path / "u"), limit=1)
    bad = tmp_path / "u" / ds.ids[0]
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError) as e:
        ds.load(0, 8)
    assert str(bad) in _one_line(e)
