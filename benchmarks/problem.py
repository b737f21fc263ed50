"""The DFI-shaped problem the inversion benchmarks and the cost analysis share: its taps and the
VGG-19 work of one forward pass."""

from __future__ import annotations

from dfijax.vgg import CONV_CHANNELS, CONV_NAMES, tap_shapes

TAPS = ("relu3_1", "relu4_1", "relu5_1")


def macs_to(last_conv: str, size: int, pool_rounding: str = "floor") -> int:
    """Multiply-accumulates of VGG-19's forward pass up to `last_conv` at size×size (pools rounding odd
    sizes as pool_rounding: "ceil" for the references' Caffe/Chainer/loadcaffe nets)."""
    total = 0
    for name in CONV_NAMES[: CONV_NAMES.index(last_conv) + 1]:
        h, w, _ = tap_shapes((size, size), (name,), pool_rounding=pool_rounding)[name]
        cin, cout = CONV_CHANNELS[name]
        total += h * w * 9 * cin * cout
    return total
