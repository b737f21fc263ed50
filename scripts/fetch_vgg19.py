"""Download pretrained VGG19 (or VGG16) weights and convert them to the dfijax format.

Usage (from the repository root)::

    python scripts/fetch_vgg19.py torchvision            # torchvision ImageNet VGG19
    python scripts/fetch_vgg19.py keras                  # keras-applications notop .h5
    python scripts/fetch_vgg19.py gatys                  # Gatys' normalised VGG19
    python scripts/fetch_vgg19.py torchvision16          # torchvision ImageNet VGG16 (fast style's loss net)
    python scripts/fetch_vgg19.py keras16                # keras-applications VGG16 notop .h5
    python scripts/fetch_vgg19.py keras --dest weights --out weights/vgg19.safetensors
    python scripts/fetch_vgg19.py torchvision --no-convert
    python -m scripts.fetch_vgg19 torchvision            # same thing, as a module

Downloads resume from ``<dest>/<file>.part`` when interrupted; run the command
again to continue. The file is checked against its known size and checksum.
Unless ``--no-convert`` is given, it is then converted to
``<dest>/vgg19_<name>.safetensors`` (VGG16: ``<dest>/vgg16_<torchvision|keras>.safetensors``), or ``--out``.

``--url URL`` fetches from a mirror instead. ``--sha256 HEX`` and ``--size N``
(not listed in ``--help``) override the expected checksum/size, e.g. for a
mirror; ``--sha256`` replaces every known checksum of the file.

Exit status: 0 on success, 1 with a one-line ``error: ...`` on stderr otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from dfijax.fetch import (  # noqa: E402  (needs the sys.path entry above)
    KNOWN_FILES,
    FetchError,
    KnownFile,
    download,
    known_file,
    sha256_file,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetch_vgg19.py",
        description="Download pretrained VGG19/VGG16 weights (resumable, checksum-verified) "
        "and convert them to the dfijax safetensors format.",
    )
    parser.add_argument("name", choices=sorted(KNOWN_FILES), help="which published weights")
    parser.add_argument("--dest", default="weights", help="download directory (default: weights)")
    parser.add_argument("--url", help="download from this URL (a mirror) instead")
    parser.add_argument("--no-convert", action="store_true", help="only download, do not convert")
    parser.add_argument(
        "--out", help="converted file (default: <dest>/vgg19_<name>.safetensors; VGG16: vgg16_<family>)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    # Override the expected checksum/size, e.g. for a mirror.
    parser.add_argument("--sha256", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return parser


def _download(known: KnownFile, dest_dir: pathlib.Path, url: str, timeout: float) -> pathlib.Path:
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, pipes).
    with tqdm(
        total=known.size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=known.filename,
        disable=None,
        leave=False,
    ) as bar:

        def progress(done: int, total: int | None) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return download(
            url,
            dest_dir / known.filename,
            sha256=known.sha256,
            md5=known.md5,
            size=known.size,
            progress=progress,
            timeout=timeout,
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    return _parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = parse(argv)
    try:
        known = known_file(args.name)
        if args.sha256 is not None:
            known = dataclasses.replace(known, sha256=args.sha256, md5=None)
        if args.size is not None:
            known = dataclasses.replace(known, size=args.size)
        dest_dir = pathlib.Path(args.dest)
        path = _download(known, dest_dir, args.url or known.url, args.timeout)

        if known.sha256 is None and known.md5 is None:
            digest = sha256_file(path)
            print(f"{path}: sha256 {digest} (not verified: no published checksum)")
        else:
            checks = ", ".join(
                f"{algo} {value}" for algo, value in (("sha256", known.sha256), ("md5", known.md5)) if value
            )
            print(f"{path}: verified ({checks})")

        if args.no_convert:
            return 0
        out = pathlib.Path(args.out) if args.out else dest_dir / known.converted_name
        try:
            from dfijax.weights import convert_file
        except ImportError as exc:
            raise FetchError(
                f"cannot import dfijax.weights ({exc}); rerun with --no-convert and convert later"
            ) from None
        meta = convert_file(path, out, source_format=known.source_format, depth=known.depth)
        summary = ", ".join(f"{k}={v}" for k, v in meta.items() if k != "source_sha256")
        print(f"wrote {out} ({summary})")
        return 0
    except (FetchError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
