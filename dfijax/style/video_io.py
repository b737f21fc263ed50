"""Video frames in and out: a file or a folder of frames read as [T, H, W, 3] in [0, 1], GIF/MP4
written (and a run's named pictures and videos, `write_pictures`); one-line VideoErrors."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from PIL import Image

from dfijax import images as im

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class VideoError(ValueError):
    """A video or frame folder that cannot be used; the message names the file and the fix."""


def read_frames(
    path: str | os.PathLike, size: int | None = None, max_frames: int | None = None, stride: int = 1
) -> np.ndarray:
    """A video file (anything OpenCV decodes) or a folder of frame images (sorted by name) as
    [T, H, W, 3] float32 RGB in [0, 1]. size: resize the short side (frames of a folder are all
    brought to the first frame's size). Every `stride`-th frame, at most max_frames of them."""
    path = pathlib.Path(path)
    if not path.exists():
        raise VideoError(f"video {path} not found")
    if stride < 1:
        raise VideoError(f"stride must be >= 1, got {stride}")
    frames: list[np.ndarray] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[::stride]
        if not files:
            raise VideoError(f"{path} holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
        for f in files[:max_frames]:
            x = im.load_image(f, size)
            if frames and x.shape != frames[0].shape:
                x = im.resize_array(x, frames[0].shape[:2])
            frames.append(x)
    else:
        cap = cv2.VideoCapture(str(path))
        try:
            i = 0
            while cap.isOpened() and (max_frames is None or len(frames) < max_frames):
                ok, bgr = cap.read()
                if not ok:
                    break
                if i % stride == 0:
                    x = np.asarray(bgr[..., ::-1], np.float32) / 255.0
                    if size is not None:
                        h, w = x.shape[:2]
                        s = size / min(h, w)
                        x = im.resize_array(x, (max(1, round(h * s)), max(1, round(w * s))))
                    frames.append(x)
                i += 1
        finally:
            cap.release()
        if not frames:
            raise VideoError(
                f"cannot decode {path} as a video (OpenCV read no frames); convert it to an H.264 "
                f".mp4, or pass a folder of frame images"
            )
    return np.stack(frames).astype(np.float32)


def write_video(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 8.0) -> pathlib.Path:
    """Write [T, H, W, 3] in [0, 1] as .gif (Pillow, loops) or .mp4/.avi (OpenCV)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    u8 = [im.to_uint8(f) for f in frames]
    if path.suffix.lower() == ".gif":
        pics = [Image.fromarray(f) for f in u8]
        pics[0].save(path, save_all=True, append_images=pics[1:], duration=max(1, round(1000 / fps)), loop=0)
        return path
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    h, w = u8[0].shape[:2]
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {path}; use a .gif or .avi name instead")
    for f in u8:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path


def write_pictures(folder: str | os.PathLike, pictures: Mapping[str, np.ndarray], fps: float = 8.0) -> list[str]:
    """Write {relative path: [H, W, 3] image or [T, H, W, 3] video} under `folder` (images as
    `images.save_image`, videos as `write_video`); returns the paths, in order."""
    for name, x in pictures.items():
        if np.ndim(x) == 4:
            write_video(pathlib.Path(folder) / name, x, fps)
        else:
            im.save_image(pathlib.Path(folder) / name, x)
    return list(pictures)
