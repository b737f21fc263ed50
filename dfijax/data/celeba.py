"""CelebA (Liu et al. 2015): 202,599 aligned 178×218 celebrity faces with 40 binary attributes.

Two sources, same result (attributes ±1 in the file's order, which is sorted; faces cut by the same
square box and resized):

- `load_celeba_folder(root)`: the official download, `root/img_align_celeba/*.jpg` plus
  `root/list_attr_celeba.txt` (line 1: image count, line 2: the 40 names, then
  `000001.jpg  -1  1 ...`). Also accepted: the Google Drive tree (`Img/`, `Anno/`) and Kaggle's
  "celeba-dataset" (`img_align_celeba/img_align_celeba/`, `list_attr_celeba.csv`). The official
  train/validation/test partition, `list_eval_partition.txt` (or Kaggle's .csv), is read separately
  by `load_celeba_partition(root)`.
- `load_celeba_tfds(data_dir)`: a `tfds` celeb_a prepared in the array_record format, read through
  `tfds.data_source` (no TensorFlow needed to read).
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from dfijax.data import DataError, FaceDataset
from dfijax.images import ImageError, load_image

# (top, left, height, width) on the aligned 178×218 image: a centred 160×160 square around the face.
DEFAULT_CROP: tuple[int, int, int, int] = (40, 9, 160, 160)

CELEBA_SOURCES = (
    "download 'Align&Cropped Images' and 'Attributes Annotations' from the CelebA website "
    "(mmlab.ie.cuhk.edu.hk/projects/CelebA.html) or Kaggle 'celeba-dataset', "
    "or prepare tfds celeb_a"
)


def crop_resize(image: np.ndarray, box: tuple[int, int, int, int] | None, size: int, source: str) -> np.ndarray:
    """Cut box = (left, top, right, bottom) (PIL crop convention, right/bottom exclusive; None: whole
    image) out of image [H, W, 3] float32 in [0, 1] and resize it to [size, size, 3] float32 in [0, 1]
    (PIL LANCZOS on float channels). A box that does not fit the image -> DataError naming source."""
    h, w = image.shape[:2]
    if box is not None:
        left, top, right, bottom = (int(v) for v in box)
        if not (0 <= left < right <= w and 0 <= top < bottom <= h):
            raise DataError(
                f"{source} is {w}x{h}: crop box (left={left}, top={top}, right={right}, "
                f"bottom={bottom}) does not fit; is this the aligned image set?"
            )
        image = image[top:bottom, left:right]
    if image.shape[:2] != (size, size):
        image = np.stack(
            [
                np.asarray(
                    Image.fromarray(np.ascontiguousarray(image[..., c], np.float32)).resize((size, size), Image.LANCZOS)
                )
                for c in range(3)
            ],
            -1,
        )
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _box(crop: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) -> PIL (left, top, right, bottom)."""
    if crop is None:
        return None
    if len(crop) != 4:
        raise ValueError(f"crop must be (top, left, height, width), got {crop!r}")
    top, left, height, width = (int(v) for v in crop)
    return left, top, left + width, top + height


@dataclasses.dataclass
class CelebAFolder(FaceDataset):
    """CelebA read from its files: ids are the image file names (e.g. '000001.jpg') in image_dir;
    crop = (top, left, height, width) on the 178×218 aligned image, None for the whole image."""

    image_dir: pathlib.Path = pathlib.Path(".")
    crop: tuple[int, int, int, int] | None = DEFAULT_CROP

    def load(self, index: int, size: int) -> np.ndarray:
        """Face `index` cropped and resized: [size, size, 3] float32 in [0, 1]."""
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range (dataset has {len(self)})")
        path = self.image_dir / self.ids[index]
        try:
            image = load_image(path)
        except ImageError as e:
            raise DataError(f"CelebA: {e}") from None
        return crop_resize(image, _box(self.crop), size, f"CelebA image {path}")


def _celeba_paths(root: pathlib.Path) -> tuple[pathlib.Path | None, pathlib.Path | None]:
    attr = next(
        (
            p
            for p in (
                root / "list_attr_celeba.txt",
                root / "Anno" / "list_attr_celeba.txt",
                root / "list_attr_celeba.csv",
            )
            if p.is_file()
        ),
        None,
    )
    images = next(
        (
            d
            for d in (
                root / "img_align_celeba" / "img_align_celeba",
                root / "img_align_celeba",
                root / "Img" / "img_align_celeba",
            )
            if d.is_dir()
        ),
        None,
    )
    return attr, images


def _parse_values(path: pathlib.Path, lineno: int, fields: Sequence[str], n_attrs: int) -> tuple[str, list[float]]:
    if len(fields) != n_attrs + 1:
        raise DataError(
            f"malformed CelebA attribute file {path}: line {lineno} has {len(fields)} fields, "
            f"expected {n_attrs + 1} (file name + {n_attrs} values)"
        )
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        bad = next(v for v in fields[1:] if not _is_number(v))
        raise DataError(
            f"malformed CelebA attribute file {path}: line {lineno} has non-numeric value {bad!r}"
        ) from None
    if any(v not in (-1.0, 1.0) for v in values):
        bad = next(v for v in values if v not in (-1.0, 1.0))
        raise DataError(f"malformed CelebA attribute file {path}: line {lineno} has value {bad:g}, expected -1 or 1")
    return fields[0], values


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def parse_celeba_attributes(
    path: str | pathlib.Path, limit: int | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    """Read list_attr_celeba.txt (official: count line, names line, whitespace-separated rows) or
    Kaggle's list_attr_celeba.csv (header 'image_id,<names>', comma-separated rows).
    Returns (attr_names [A], file names [N], attrs [N, A] float32 ±1); first `limit` rows only."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"cannot read CelebA attribute file {path} ({type(e).__name__})") from None
    csv = path.suffix.lower() == ".csv"
    split = (lambda s: [f.strip() for f in s.split(",")]) if csv else str.split
    if csv:
        header = split(lines[0]) if lines else []
        names, start = header[1:], 1
    else:
        if not lines:
            raise DataError(f"CelebA attribute file {path} is empty")
        if not lines[0].strip().isdigit():
            raise DataError(
                f"malformed CelebA attribute file {path}: line 1 should be the image count, "
                f"got {lines[0].strip()[:40]!r}"
            )
        names, start = split(lines[1]) if len(lines) > 1 else [], 2
    if not names:
        raise DataError(f"malformed CelebA attribute file {path}: line {start} should list the attribute names")
    files, rows = [], []
    for lineno, line in enumerate(lines[start:], start + 1):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        name, values = _parse_values(path, lineno, split(line), len(names))
        files.append(name)
        rows.append(values)
    if not rows:
        raise DataError(f"CelebA attribute file {path} lists no images")
    return tuple(names), tuple(files), np.asarray(rows, np.float32).reshape(len(rows), len(names))


PARTITION_NAMES = ("train", "valid", "test")  # list_eval_partition's 0, 1, 2
# CelebA's official list_eval_partition.txt: 162,770 train, 19,867 validation, 19,962 test images
PARTITION_COUNTS = {"train": 162_770, "valid": 19_867, "test": 19_962}


def find_celeba_partition(root: str | pathlib.Path) -> pathlib.Path | None:
    """list_eval_partition.txt (official, also under Eval/ in the Google Drive tree) or Kaggle's
    list_eval_partition.csv in root, or None."""
    root = pathlib.Path(root).expanduser()
    return next(
        (
            p
            for p in (
                root / "list_eval_partition.txt",
                root / "Eval" / "list_eval_partition.txt",
                root / "list_eval_partition.csv",
            )
            if p.is_file()
        ),
        None,
    )


def parse_celeba_partition(path: str | pathlib.Path) -> dict[str, int]:
    """Read list_eval_partition.txt (rows `000001.jpg 0`) or Kaggle's .csv (header 'image_id,partition',
    rows `000001.jpg,0`): file name -> 0 (train), 1 (validation) or 2 (test)."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"cannot read CelebA partition file {path} ({type(e).__name__})") from None
    csv = path.suffix.lower() == ".csv"
    out: dict[str, int] = {}
    for lineno, line in enumerate(lines, 1):
        fields = [f.strip() for f in line.split(",")] if csv else line.split()
        if not fields or (csv and lineno == 1 and not fields[-1].isdigit()):
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(
                f"malformed CelebA partition file {path}: line {lineno} should be '<file> <0|1|2>', "
                f"got {line.strip()[:40]!r}"
            )
        out[fields[0]] = int(fields[1])
    if not out:
        raise DataError(f"CelebA partition file {path} lists no images")
    return out


def load_celeba_partition(root: str | pathlib.Path) -> dict[str, int]:
    """The partition of the CelebA folder `root` (see `parse_celeba_partition`); DataError naming the
    expected file when it is missing."""
    path = find_celeba_partition(root)
    if path is None:
        expected = pathlib.Path(root).expanduser() / "list_eval_partition.txt"
        raise DataError(
            f"CelebA partition not found: expected {expected} ('Train/Val/Test Partitions' on the "
            "CelebA website, or Kaggle's list_eval_partition.csv)"
        )
    return parse_celeba_partition(path)


def load_celeba_folder(
    root: str | pathlib.Path, crop: tuple[int, int, int, int] | None = DEFAULT_CROP, limit: int | None = None
) -> CelebAFolder:
    """CelebA from root (see the module docstring for the accepted layouts). crop = (top, left,
    height, width) on the 178×218 aligned image (default: centred 160×160 face square), None for no
    crop. limit: first `limit` images of the attribute file."""
    root = pathlib.Path(root).expanduser()
    expected = f"expected {root / 'list_attr_celeba.txt'} and {root / 'img_align_celeba'}/"
    if not root.is_dir():
        raise DataError(f"CelebA not found: {root} is not a directory ({expected}); {CELEBA_SOURCES}")
    attr_path, image_dir = _celeba_paths(root)
    if attr_path is None and image_dir is None:
        raise DataError(f"CelebA not found: {expected}; {CELEBA_SOURCES}")
    if attr_path is None or image_dir is None:
        missing = root / "list_attr_celeba.txt" if attr_path is None else f"{root / 'img_align_celeba'}/"
        raise DataError(f"CelebA not found: missing {missing} ({expected}); {CELEBA_SOURCES}")
    names, files, attrs = parse_celeba_attributes(attr_path, limit)
    if not (image_dir / files[0]).is_file():
        raise DataError(
            f"CelebA image {image_dir / files[0]} (first entry of {attr_path}) not found; "
            f"is {image_dir} the 'img_align_celeba' folder?"
        )
    _box(crop)  # validate the shape now
    return CelebAFolder(
        name="celeba",
        attr_names=names,
        attrs=attrs,
        ids=files,
        binary=True,
        gender="Male",
        image_dir=image_dir,
        crop=None if crop is None else tuple(int(v) for v in crop),
    )


@dataclasses.dataclass
class CelebATfds(FaceDataset):
    """CelebA read from a tfds array_record data source; ids are '<split>/<index>'."""

    source: Any = None
    crop: tuple[int, int, int, int] | None = DEFAULT_CROP

    def load(self, index: int, size: int) -> np.ndarray:
        """Face `index` cropped and resized: [size, size, 3] float32 in [0, 1]."""
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range (dataset has {len(self)})")
        image = self.source[index]["image"]
        if isinstance(image, bytes):  # undecoded JPEG
            image = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
        image = np.asarray(image)
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, -1)
        return crop_resize(image[..., :3].astype(np.float32), _box(self.crop), size, f"tfds celeb_a {self.ids[index]}")


def load_celeba_tfds(
    data_dir: str | pathlib.Path | None = None,
    split: str = "train",
    limit: int | None = None,
    crop: tuple[int, int, int, int] | None = DEFAULT_CROP,
) -> CelebATfds:
    """CelebA from a prepared tfds celeb_a (array_record format; nothing is downloaded). Attributes
    in sorted name order (the official file order), bools -> ±1; limit: first `limit` examples.
    Building the table reads every example (images included), so the full split takes minutes."""
    where = str(data_dir) if data_dir is not None else "the default tfds data_dir"
    try:
        import tensorflow_datasets as tfds

        source = tfds.data_source(
            "celeb_a", split=split, data_dir=None if data_dir is None else str(data_dir), download=False
        )
        n = len(source)
    except Exception as e:  # tfds raises many kinds when the data is absent or in the wrong format
        cmd = f"tfds build celeb_a --file_format array_record{'' if data_dir is None else f' --data_dir {data_dir}'}"
        raise DataError(
            f"tfds celeb_a is not prepared in {where} ({type(e).__name__}): run `{cmd}` "
            "(needs TensorFlow and the CelebA download) or use the CelebA folder"
        ) from None
    n = n if limit is None else min(n, limit)
    if n == 0:
        raise DataError(f"tfds celeb_a split {split!r} in {where} is empty")
    names: tuple[str, ...] | None = None
    rows = []
    for i in range(n):
        attributes = source[i]["attributes"]
        if names is None:
            names = tuple(sorted(attributes))
        rows.append([1.0 if bool(np.asarray(attributes[k])) else -1.0 for k in names])
    _box(crop)
    return CelebATfds(
        name="celeba",
        attr_names=names,
        attrs=np.asarray(rows, np.float32),
        ids=tuple(f"{split}/{i:06d}" for i in range(n)),
        binary=True,
        gender="Male",
        source=source,
        crop=None if crop is None else tuple(int(v) for v in crop),
    )
