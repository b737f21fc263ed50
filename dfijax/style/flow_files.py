"""Optical flow and reliability files as artistic-videos' `makeOptFlow.sh` writes them, so flow from
DeepFlow / EpicFlow (or any Middlebury `.flo` writer) can replace OpenCV's.

Naming (1-based frame numbers i, j = i + step, in one folder):
  forward_i_j.flo, backward_j_i.flo   flow from the first frame to the second
  reliable_j_i.pgm, reliable_i_j.pgm  the consistency checker's weights for warping the second onto the first
So frame t is pulled towards frame s (s < t: an earlier frame, s > t: the next one in a backward pass)
through `backward_t_s.flo` / `forward_t_s.flo` and `reliable_t_s.pgm`.

`.flo` (Middlebury): float32 202021.25 ("PIEH"), int32 width, int32 height, then width·height pairs
(u, v), row by row, little-endian. The flow of pixel p points to where p is found in the second frame.
`.pgm`: binary P5 greyscale, maxval <= 255; read as value / maxval in [0, 1].
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

FLO_MAGIC = np.float32(202021.25)


class FlowFileError(ValueError):
    """A flow or reliability file that cannot be used; the message names the file and the fix."""


def _fix(path: pathlib.Path) -> str:
    return f"rewrite {path.name} with makeOptFlow.sh (or your flow tool's Middlebury .flo writer)"


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """A Middlebury .flo file as [H, W, 2] float32 (dx, dy): frame_a(p) ≈ frame_b(p + flow(p))."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FlowFileError(f"flow file {path} not found; compute it with makeOptFlow.sh or give another --flow-dir")
    raw = path.read_bytes()
    if len(raw) < 12:
        raise FlowFileError(f"{path} is {len(raw)} bytes, too short for a .flo header; {_fix(path)}")
    magic = np.frombuffer(raw[:4], "<f4")[0]
    if magic != FLO_MAGIC:
        raise FlowFileError(
            f"{path} does not start with the .flo tag 202021.25 ('PIEH') but {magic!r}; not a Middlebury flow "
            f"file, or big-endian: {_fix(path)}"
        )
    w, h = (int(v) for v in np.frombuffer(raw[4:12], "<i4"))
    if not (0 < w < 100_000 and 0 < h < 100_000):
        raise FlowFileError(f"{path} declares a {w}x{h} flow; {_fix(path)}")
    need = 12 + 8 * w * h
    if len(raw) < need:
        raise FlowFileError(
            f"{path} holds {len(raw)} bytes but a {w}x{h} flow needs {need}: the file is truncated; {_fix(path)}"
        )
    return np.frombuffer(raw[12:need], "<f4").reshape(h, w, 2).astype(np.float32)


def write_flo(path: str | os.PathLike, flow: np.ndarray) -> pathlib.Path:
    """Write [H, W, 2] (dx, dy) as a Middlebury .flo file."""
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise FlowFileError(f"a flow must be [H, W, 2] (dx, dy), got shape {flow.shape}")
    path = pathlib.Path(path)
    h, w = flow.shape[:2]
    path.write_bytes(
        FLO_MAGIC.astype("<f4").tobytes() + np.array([w, h], "<i4").tobytes() + flow.astype("<f4").tobytes()
    )
    return path


def _pgm_tokens(raw: bytes, path: pathlib.Path) -> tuple[list[int], int]:
    """The three header numbers (width, height, maxval) of a P5 file and the offset of its pixels."""
    pos, out = 2, []
    while len(out) < 3:
        while pos < len(raw) and raw[pos : pos + 1].isspace():
            pos += 1
        if raw[pos : pos + 1] == b"#":
            while pos < len(raw) and raw[pos : pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(raw) and raw[pos : pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise FlowFileError(f"{path} has a broken PGM header; write it as binary P5 with maxval 255")
        out.append(int(raw[start:pos]))
    return out, pos + 1  # one whitespace byte ends the header


def read_pgm(path: str | os.PathLike) -> np.ndarray:
    """A binary (P5) PGM reliability map as [H, W] float32 in [0, 1] (value / maxval, as Torch's
    image.load reads 8-bit images)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FlowFileError(
            f"reliability file {path} not found; compute it with makeOptFlow.sh (consistencyChecker) or give "
            f"another --flow-dir"
        )
    raw = path.read_bytes()
    if raw[:2] != b"P5":
        raise FlowFileError(f"{path} is not a binary PGM (P5); write the reliability as an 8-bit P5 PGM")
    (w, h, maxval), start = _pgm_tokens(raw, path)
    if not (0 < maxval < 256) or w <= 0 or h <= 0:
        raise FlowFileError(f"{path} declares {w}x{h} with maxval {maxval}; write an 8-bit (maxval <= 255) P5 PGM")
    data = raw[start : start + w * h]
    if len(data) < w * h:
        raise FlowFileError(
            f"{path} holds {len(data)} pixel bytes but {w}x{h} needs {w * h}: the file is truncated; "
            f"rewrite it with consistencyChecker"
        )
    return np.frombuffer(data, np.uint8).reshape(h, w).astype(np.float32) / np.float32(maxval)


def flow_names(t: int, s: int, start: int = 1) -> tuple[str, str]:
    """The .flo and .pgm names that carry frame s onto frame t (0-based; files numbered from `start`)."""
    if t == s:
        raise FlowFileError(f"no flow file carries frame {t} onto itself")
    a, b = t + start, s + start
    kind = "backward" if s < t else "forward"
    return f"{kind}_{a}_{b}.flo", f"reliable_{a}_{b}.pgm"


def read_pair(
    folder: str | os.PathLike, t: int, s: int, hw: tuple[int, int], start: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(flow [H, W, 2], reliability [H, W]) carrying frame s onto frame t, read from folder and checked
    against the frames' size hw."""
    folder = pathlib.Path(folder)
    flo, pgm = flow_names(t, s, start)
    flow, rel = read_flo(folder / flo), read_pgm(folder / pgm)
    for name, got in ((flo, flow.shape[:2]), (pgm, rel.shape)):
        if tuple(got) != tuple(hw):
            raise FlowFileError(
                f"{folder / name} is {got[1]}x{got[0]} but the frames are {hw[1]}x{hw[0]}; compute the flow "
                f"at the frames' size (--size) or resize the frames to the flow's"
            )
    return flow, rel
