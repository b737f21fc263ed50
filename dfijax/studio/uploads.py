"""Uploaded pictures, checked before any work: one-line errors, converted where a photo is usable.

Refused: a path outside the upload folders, a missing or empty file, a file that is not an image, a
decompression bomb (Pillow's limit) and an image over `max_pixels`. Converted: greyscale, palette,
RGBA/LA (composited on white), 16-bit and float images (scaled by their range) and EXIF-rotated photos
(turned upright).
"""

from __future__ import annotations

import os
import pathlib
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 24_000_000  # a 6000 x 4000 photo


class UploadError(ValueError):
    """An upload that cannot be used; the message says what is wrong and what to do."""


def check_inside(path: str | os.PathLike, roots: Sequence[str | os.PathLike]) -> pathlib.Path:
    """The resolved path, when it lies inside one of `roots` (the server's upload folders); else an
    UploadError: a client never names a file on the server that was not uploaded."""
    p = pathlib.Path(path).resolve()
    for r in roots:
        if p.is_relative_to(pathlib.Path(r).resolve()):
            return p
    raise UploadError("that file was not uploaded through this page: upload the picture instead")


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or float: scale its range to 8 bits
        a = np.asarray(im, np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        if im.mode == "F":
            hi = max(float(a.max()), 1e-12) if a.max() > 1.0 else 1.0
        im = Image.fromarray((np.clip(a / hi, 0, 1) * 255 + 0.5).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")


def read_upload(
    path: str | os.PathLike | None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    roots: Sequence[str | os.PathLike] | None = None,
    what: str = "picture",
) -> np.ndarray:
    """An uploaded picture as [H, W, 3] float32 in [0, 1], upright. roots: the folders uploads may
    come from (None: any path, for library callers that name their own files)."""
    if path is None or str(path) == "":
        raise UploadError(f"no {what}: upload one or pick an example")
    p = check_inside(path, roots) if roots is not None else pathlib.Path(path)
    name = p.name
    if not p.is_file():
        raise UploadError(f"the {what} {name} is missing: upload it again")
    if p.stat().st_size == 0:
        raise UploadError(f"the {what} {name} is an empty file: upload a JPEG or PNG photo")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise UploadError(
                        f"the {what} {name} is {w}x{h} = {w * h / 1e6:.1f} MP, over this server's limit of "
                        f"{max_pixels / 1e6:.1f} MP: make it smaller (or start the server with a larger --max-pixels)"
                    )
                im.load()
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(
            f"the {what} {name} would decode to more than {limit or 0:,} pixels (a decompression bomb?): "
            "upload an ordinary photo"
        ) from None
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UploadError(
            f"the {what} {name} is not a readable image ({type(e).__name__}): upload a JPEG or PNG photo"
        ) from None
    x = np.asarray(im, np.float32) / 255.0
    if min(x.shape[:2]) < 8:
        raise UploadError(f"the {what} {name} is {x.shape[1]}x{x.shape[0]} pixels: upload a larger photo")
    return x
