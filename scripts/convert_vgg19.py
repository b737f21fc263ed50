"""Convert a VGG-19 or VGG-16 weight file into dfijax's format (safetensors + metadata).

    python scripts/convert_vgg19.py weights/vgg19-dcbb9e9d.pth            # torchvision (needs torch)
    python scripts/convert_vgg19.py weights/vgg16-397923af.pth            # torchvision VGG-16
    python scripts/convert_vgg19.py weights/vgg_conv.pth                   # Gatys (needs torch)
    python scripts/convert_vgg19.py weights/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5
    python scripts/convert_vgg19.py weights/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
    python scripts/convert_vgg19.py vgg19.safetensors --preprocess torchvision --out weights/vgg19_st.safetensors

The depth (16 or 19) is detected from the layers in the file (--depth requires one). Writes
weights/vgg<depth>_<source stem>.safetensors by default and prints what it wrote.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dfijax.weights import (  # noqa: E402
    DEFAULT_WEIGHTS_DIR,
    WeightsError,
    convert_params,
    default_converted_name,
    params_depth,
    read_source,
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="source weight file (.pth, .safetensors, .h5)")
    p.add_argument("--out", help="output path (default: weights/vgg<depth>_<stem>.safetensors)")
    p.add_argument(
        "--format",
        dest="source_format",
        choices=["torchvision_pth", "gatys_pth", "safetensors", "keras_h5"],
        help="source format (default: from the extension and the key layout)",
    )
    p.add_argument(
        "--preprocess",
        choices=["torchvision", "caffe"],
        help="override the preprocessing the weights expect (default: from the format)",
    )
    p.add_argument("--depth", type=int, choices=[16, 19], help="require a VGG-16 or VGG-19 file (default: detect)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    src = pathlib.Path(args.src)
    try:
        params, fmt, pre = read_source(src, args.source_format, args.preprocess, args.depth)
        depth = params_depth(params)
        out = pathlib.Path(args.out) if args.out else DEFAULT_WEIGHTS_DIR / default_converted_name(src, depth)
        meta = convert_params(src, out, params, fmt, pre)
    except (WeightsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {out} (VGG-{depth}, {meta['source_format']}, {meta['preprocess']} preprocessing, "
        f"source sha256 {meta['source_sha256'][:12]}…)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
