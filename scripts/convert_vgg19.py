"""Convert a VGG-19 weight file into dfijax's format (safetensors + metadata).

    python scripts/convert_vgg19.py weights/vgg19-dcbb9e9d.pth            # torchvision (needs torch)
    python scripts/convert_vgg19.py weights/vgg_conv.pth                   # Gatys (needs torch)
    python scripts/convert_vgg19.py weights/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5
    python scripts/convert_vgg19.py vgg19.safetensors --preprocess torchvision --out weights/vgg19_st.safetensors

Writes weights/vgg19_<source stem>.safetensors by default and prints what it wrote.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dfijax.weights import DEFAULT_WEIGHTS_DIR, WeightsError, convert_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="source weight file (.pth, .safetensors, .h5)")
    p.add_argument("--out", help="output path (default: weights/vgg19_<stem>.safetensors)")
    p.add_argument("--format", dest="source_format", choices=["torchvision_pth", "gatys_pth", "safetensors", "keras_h5"],
                   help="source format (default: from the extension and the key layout)")
    p.add_argument("--preprocess", choices=["torchvision", "caffe"],
                   help="override the preprocessing the weights expect (default: from the format)")
    args = p.parse_args(argv)
    src = pathlib.Path(args.src)
    stem = src.stem if src.stem.startswith("vgg19") else f"vgg19_{src.stem}"
    out = pathlib.Path(args.out) if args.out else DEFAULT_WEIGHTS_DIR / f"{stem}.safetensors"
    try:
        meta = convert_file(src, out, source_format=args.source_format, preprocess=args.preprocess)
    except (WeightsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({meta['source_format']}, {meta['preprocess']} preprocessing, source sha256 {meta['source_sha256'][:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
