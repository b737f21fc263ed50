"""Resumable, checksum-verified downloads of pretrained VGG-19 and VGG-16 weight files.

A pure library: no printing; progress is reported through a callback and every
failure is a :class:`FetchError` with a one-line message that names the
problem and the fix. Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pathlib
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FetchError",
    "KnownFile",
    "KNOWN_FILES",
    "known_file",
    "sha256_file",
    "md5_file",
    "download",
    "fetch_known",
]

ProgressFn = Callable[[int, int | None], None]

# Seconds to wait before retry n (times n); tests set it to 0.
_BACKOFF_S = 1.0
_USER_AGENT = "dfijax-fetch/1.0 (+urllib)"
_RANGE_START = re.compile(r"bytes\s+(\d+)-")
_RANGE_TOTAL = re.compile(r"bytes\s+(?:\d+-\d+|\*)/(\d+)")
_HEX = re.compile(r"[0-9a-f]+")


class FetchError(RuntimeError):
    """A download failed; the message is one line naming the problem and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class KnownFile:
    """A published weight file: where it lives and how to verify it.

    ``sha256`` may be the full hex digest or a hex prefix (torchvision names
    files by the first 8 hex digits of their sha256).
    """

    name: str
    url: str
    filename: str
    source_format: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    note: str = ""
    depth: int = 19

    @property
    def converted_name(self) -> str:
        """Default converted file: vgg{depth}_<family>.safetensors (what find_weights looks for)."""
        family = self.name[: -len(str(self.depth))] if self.name.endswith(str(self.depth)) else self.name
        return f"vgg{self.depth}_{family}.safetensors"


KNOWN_FILES: dict[str, KnownFile] = {
    "torchvision": KnownFile(
        name="torchvision",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        filename="vgg19-dcbb9e9d.pth",
        source_format="torchvision_pth",
        size=574673361,
        sha256="dcbb9e9d",
        note="torchvision.models.vgg19 ImageNet weights (IMAGENET1K_V1); "
        "torch.hub checks the same 8-hex-digit sha256 prefix",
    ),
    "keras": KnownFile(
        name="keras",
        url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        source_format="keras_h5",
        size=80134624,
        md5="253f8cb515780f3b799900260a226db6",
        note="keras.applications.VGG19(include_top=False) weights; md5 is the "
        "file_hash Keras passes to get_file for WEIGHTS_PATH_NO_TOP",
    ),
    "gatys": KnownFile(
        name="gatys",
        url="https://bethgelab.org/media/uploads/pytorch_models/vgg_conv.pth",
        filename="vgg_conv.pth",
        source_format="gatys_pth",
        note="Gatys et al. normalised VGG19 (conv layers only) from "
        "leongatys/PytorchNeuralStyleTransfer; no published checksum",
    ),
    "torchvision16": KnownFile(
        name="torchvision16",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        filename="vgg16-397923af.pth",
        source_format="torchvision_pth",
        size=553433881,
        sha256="397923af",
        note="torchvision.models.vgg16 ImageNet weights (IMAGENET1K_V1), the loss network of "
        "Johnson et al.'s fast style transfer",
        depth=16,
    ),
    "keras16": KnownFile(
        name="keras16",
        url="https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        filename="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        source_format="keras_h5",
        size=58889256,
        md5="6d6bbae143d832006294945121d1f1fc",
        note="keras.applications.VGG16(include_top=False) weights (first published in "
        "fchollet/deep-learning-models release v0.1); md5 is Keras' file_hash",
        depth=16,
    ),
}


def known_file(name: str) -> KnownFile:
    """Return the :class:`KnownFile` called ``name`` or raise :class:`FetchError`."""
    try:
        return KNOWN_FILES[name]
    except KeyError:
        names = ", ".join(sorted(KNOWN_FILES))
        raise FetchError(f"unknown weight file {name!r}; choose one of: {names}") from None


def _hash_file(path: str | os.PathLike, algo: str, chunk_size: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    return _hash_file(path, "sha256")


def md5_file(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in chunks."""
    return _hash_file(path, "md5")


def _normalise_hex(value: str | None, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not value or len(value) > max_len or not _HEX.fullmatch(value):
        raise FetchError(f"invalid expected {what} {value!r}; give up to {max_len} hex digits")
    return value


def _mismatch(name: str, algo: str, expected: str, got: str) -> str | None:
    """Return an error message if ``got`` does not match ``expected`` (full or prefix)."""
    if got.startswith(expected):
        return None
    kind = algo if len(expected) == len(got) else f"{algo} prefix"
    shown = got if len(expected) == len(got) else got[: len(expected)] + "…"
    return f"checksum mismatch for {name}: expected {kind} {expected}, got {shown}"


def _verify(
    path: pathlib.Path,
    name: str,
    *,
    sha256: str | None,
    md5: str | None,
    size: int | None,
) -> str | None:
    """Check size and checksums of ``path``; return a problem description or None."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"size mismatch for {name}: expected {size} bytes, got {actual}"
    if sha256 is not None:
        problem = _mismatch(name, "sha256", sha256, sha256_file(path))
        if problem:
            return problem
    if md5 is not None:
        problem = _mismatch(name, "md5", md5, md5_file(path))
        if problem:
            return problem
    return None


def _reason(exc: BaseException) -> str:
    """One-line description of a network error."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        inner = exc.reason
        if isinstance(inner, BaseException):
            return _reason(inner)
        return str(inner)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


class _Transient(Exception):
    """A failure worth retrying (network trouble, server hiccup)."""

    def __init__(self, message: str, *, connected: bool) -> None:
        super().__init__(message)
        self.connected = connected


def _range_total(header: str | None) -> int | None:
    """Total size from a ``Content-Range`` header, if it states one."""
    match = _RANGE_TOTAL.match(header or "")
    return int(match.group(1)) if match else None


def _open(url: str, offset: int, timeout: float) -> Any:
    """Open ``url``, asking for the bytes from ``offset`` on."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def _transfer(
    url: str,
    part: pathlib.Path,
    *,
    name: str,
    size: int | None,
    progress: ProgressFn | None,
    timeout: float,
    chunk_size: int,
) -> None:
    """One attempt: fetch the rest of ``url`` into ``part``, resuming if it exists.

    Raises :class:`_Transient` for retryable problems and :class:`FetchError`
    for fatal ones. Returns once the server's whole body has been written.
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size and size > 0:
        return  # already complete; verification decides whether it is right

    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            total = _range_total(exc.headers.get("Content-Range"))
            if offset == (total if total is not None else size):
                if progress is not None:
                    progress(offset, offset)
                return
            # The part does not fit what the server has: start over.
            part.unlink()
            raise _Transient(f"server rejected resuming {part.name} at byte {offset}", connected=True)
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}", connected=True) from None
        raise FetchError(f"HTTP {exc.code} {exc.reason} from {url}; check the URL or use a mirror") from None
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}; give a full http(s):// URL") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(_reason(exc), connected=False) from None

    with response:
        status = getattr(response, "status", None) or 200
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if status == 206:
            match = _RANGE_START.match(response.headers.get("Content-Range") or "")
            start = int(match.group(1)) if match else offset
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Transient(f"server resumed at byte {start} instead of {offset}", connected=True)
            total = _range_total(response.headers.get("Content-Range"))
            if total is None:
                total = offset + length if length is not None else size
            mode = "ab"
        else:
            # No range support (or a fresh request): start from zero.
            offset = 0
            total = length if length is not None else size
            mode = "wb"

        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise FetchError(
                f"size mismatch for {name}: server reports {total} bytes, "
                f"expected {size}; the URL points at a different file, check it"
            )

        done = offset
        try:
            f = open(part, mode)
        except OSError as exc:
            raise FetchError(f"cannot write {part}: {_reason(exc)}; check the directory and its permissions") from None
        with f:
            while True:
                try:
                    chunk = response.read(chunk_size)
                except (http.client.HTTPException, OSError) as exc:
                    raise _Transient(
                        f"connection lost after {done} bytes: {_reason(exc)}",
                        connected=True,
                    ) from None
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as exc:
                    raise FetchError(f"cannot write {part}: {_reason(exc)}; check free disk space") from None
                done += len(chunk)
                if progress is not None:
                    progress(done, total)

    if total is not None and done < total:
        raise _Transient(f"connection closed after {done} of {total} bytes", connected=True)


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    chunk_size: int = 1 << 20,
) -> pathlib.Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` and verifying the result.

    ``sha256`` is a full hex digest or a prefix; ``md5`` a full hex digest.
    ``progress(done_bytes, total_bytes_or_None)`` is called as bytes arrive.
    An existing ``dest`` that verifies is returned without any request.
    Raises :class:`FetchError` on any failure.
    """
    dest = pathlib.Path(dest)
    sha256 = _normalise_hex(sha256, "sha256", 64)
    md5 = _normalise_hex(md5, "md5", 32)
    if md5 is not None and len(md5) != 32:
        raise FetchError(f"invalid expected md5 {md5!r}; give all 32 hex digits")
    checks = {"sha256": sha256, "md5": md5, "size": size}

    if dest.is_file() and _verify(dest, dest.name, **checks) is None:
        return dest

    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {dest.parent}: {_reason(exc)}; choose another destination") from None

    attempt = 0
    while True:
        try:
            _transfer(
                url,
                part,
                name=dest.name,
                size=size,
                progress=progress,
                timeout=timeout,
                chunk_size=chunk_size,
            )
            break
        except _Transient as exc:
            attempt += 1
            if attempt > retries:
                if not exc.connected:
                    raise FetchError(
                        f"cannot reach {url}: {exc}; check the network or download the file by hand to {dest}"
                    ) from None
                raise FetchError(
                    f"download of {url} failed after {attempt} attempts: {exc}; run the command again to resume"
                ) from None
            time.sleep(_BACKOFF_S * attempt)

    problem = _verify(part, dest.name, **checks)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise FetchError(f"{problem}; the download is corrupt, run the command again")
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise FetchError(f"cannot move {part.name} to {dest}: {_reason(exc)}; check permissions") from None
    return dest


def fetch_known(
    name: str,
    dest_dir: str | os.PathLike,
    *,
    url: str | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> pathlib.Path:
    """Download the known file ``name`` into ``dest_dir``; ``url`` overrides its URL."""
    known = known_file(name)
    return download(
        url or known.url,
        pathlib.Path(dest_dir) / known.filename,
        sha256=known.sha256,
        md5=known.md5,
        size=known.size,
        progress=progress,
        timeout=timeout,
    )
