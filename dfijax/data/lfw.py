"""LFW (Huang et al. 2007) with the 73 continuous attribute scores of Kumar et al.'s "Attribute and
Simile Classifiers" (lfw_attributes.txt): 13,143 250×250 photos, the dataset of the DFI LFW demo.

Layout: `root/lfw_attributes.txt` and the images `root/lfw/<Person_Name>/<Person_Name>_<num:04d>.jpg`
(`root/lfw-deepfunneled/`, `root/lfw_funneled/` or person folders directly in root also work).
lfw_attributes.txt is tab separated: a comment line, then the header
`#<TAB>person<TAB>imagenum<TAB>Male<TAB>Asian...` (one more field than the rows: the leading '#'), then
rows `Aaron Eckhart<TAB>1<TAB>1.56834<TAB>...`. Attribute names with spaces ('Middle Aged') become
underscored ('Middle_Aged'), matching CelebA's spelling where the two share an attribute.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from dfijax.data import DataError, FaceDataset
from dfijax.data.celeba import crop_resize
from dfijax.images import ImageError, load_image

# (left, top, right, bottom) on the 250×250 LFW image, PIL crop convention: the chainer-dfi LFW box.
DEFAULT_CROP: tuple[int, int, int, int] = (40, 20, 210, 190)

LFW_SOURCES = (
    "get lfw.tgz from the LFW site (vis-www.cs.umass.edu/lfw/) and lfw_attributes.txt from the "
    "Columbia 'Attribute and Simile Classifiers' page "
    "(www.cs.columbia.edu/CAVE/databases/pubfig/download/lfw_attributes.txt)"
)
_IMAGE_DIRS = ("lfw", "lfw-deepfunneled", "lfw_funneled", ".")


@dataclasses.dataclass
class LFWFolder(FaceDataset):
    """LFW read from its files: ids are image paths relative to root; crop = (left, top, right,
    bottom) on the 250×250 image (PIL crop convention), None for the whole image; skipped: attribute
    rows dropped because their image file is missing."""

    root: pathlib.Path = pathlib.Path(".")
    crop: tuple[int, int, int, int] | None = DEFAULT_CROP
    skipped: int = 0

    def load(self, index: int, size: int) -> np.ndarray:
        """Face `index` cropped and resized: [size, size, 3] float32 in [0, 1]."""
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range (dataset has {len(self)})")
        path = self.root / self.ids[index]
        try:
            image = load_image(path)
        except ImageError as e:
            raise DataError(f"LFW: {e}") from None
        return crop_resize(image, self.crop, size, f"LFW image {path}")


def parse_lfw_attributes(path: str | pathlib.Path) -> tuple[tuple[str, ...], list[tuple[str, int, int]], np.ndarray]:
    """Read lfw_attributes.txt. Returns (attr_names [A], rows [(person, imagenum, line number)],
    attrs [N, A] float32)."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"cannot read LFW attribute file {path} ({type(e).__name__})") from None
    names: list[str] | None = None
    rows: list[tuple[str, int, int]] = []
    values: list[list[float]] = []
    for lineno, line in enumerate(lines, 1):
        fields = [f.strip() for f in line.split("\t")]
        while fields and not fields[-1]:  # trailing tabs
            fields.pop()
        if names is None:
            header = fields[1:] if fields and fields[0] == "#" else fields
            if len(header) > 2 and header[0].lstrip("#").strip() == "person" and header[1] == "imagenum":
                names = ["_".join(n.split()) for n in header[2:]]
            elif line.strip() and not line.lstrip().startswith("#"):
                break  # data before any header
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(fields) != len(names) + 2:
            raise DataError(
                f"malformed LFW attribute file {path}: line {lineno} has {len(fields)} tab-separated "
                f"fields, expected {len(names) + 2} (person, imagenum, {len(names)} attributes)"
            )
        try:
            num = int(fields[1])
            vals = [float(v) for v in fields[2:]]
        except ValueError:
            raise DataError(
                f"malformed LFW attribute file {path}: line {lineno} has a non-numeric imagenum or attribute value"
            ) from None
        rows.append((fields[0], num, lineno))
        values.append(vals)
    if names is None:
        raise DataError(
            f"malformed LFW attribute file {path}: no header line "
            "'#<TAB>person<TAB>imagenum<TAB><attribute names>' found"
        )
    if not rows:
        raise DataError(f"LFW attribute file {path} lists no images")
    return tuple(names), rows, np.asarray(values, np.float32).reshape(len(rows), len(names))


def _image_rel(person: str, num: int) -> pathlib.PurePosixPath:
    folder = "_".join(person.split())
    return pathlib.PurePosixPath(folder) / f"{folder}_{num:04d}.jpg"


def load_lfw_folder(
    root: str | pathlib.Path, crop: tuple[int, int, int, int] | None = DEFAULT_CROP, limit: int | None = None
) -> LFWFolder:
    """LFW from root (see the module docstring for the layout). crop = (left, top, right, bottom) in
    pixels of the 250×250 image with PIL's crop convention (default (40, 20, 210, 190), the chainer-dfi
    box: a 170×170 face square), None for no crop. Rows whose image is missing are skipped and
    counted in `.skipped` (rows looked at before `limit` was reached); limit: first `limit` usable rows."""
    root = pathlib.Path(root).expanduser()
    attr_path = root / "lfw_attributes.txt"
    expected = f"expected {attr_path} and {root / 'lfw'}/<Person_Name>/<Person_Name>_0001.jpg"
    if not root.is_dir():
        raise DataError(f"LFW not found: {root} is not a directory ({expected}); {LFW_SOURCES}")
    if not attr_path.is_file():
        raise DataError(f"LFW not found: missing {attr_path} ({expected}); {LFW_SOURCES}")
    if crop is not None and len(crop) != 4:
        raise ValueError(f"crop must be (left, top, right, bottom), got {crop!r}")
    names, rows, attrs = parse_lfw_attributes(attr_path)
    # the image folder: the first candidate holding the first listed image, else the first that exists
    rels = [_image_rel(person, num) for person, num, _ in rows]
    dirs = [root / d for d in _IMAGE_DIRS if (root / d).is_dir()]
    image_dir = next((d for d in dirs if (d / rels[0]).is_file()), dirs[0])
    keep, ids, skipped = [], [], 0
    for i, rel in enumerate(rels):
        if limit is not None and len(keep) >= limit:
            break
        if (image_dir / rel).is_file():
            keep.append(i)
            ids.append((image_dir / rel).relative_to(root).as_posix())
        else:
            skipped += 1
    if not keep:
        raise DataError(
            f"LFW: none of the {len(rels)} images listed in {attr_path} found under {image_dir} "
            f"(e.g. {image_dir / rels[0]}); {expected}; {LFW_SOURCES}"
        )
    return LFWFolder(
        name="lfw",
        attr_names=names,
        attrs=attrs[keep],
        ids=tuple(ids),
        binary=False,
        gender="Male",
        root=root,
        crop=None if crop is None else tuple(int(v) for v in crop),
        skipped=skipped,
    )
