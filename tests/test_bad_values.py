"""Loss weights are checked once, in the configs: every entry point refuses NaN, infinite or negative
weights with the same one-line message, before any work or output folder."""

from __future__ import annotations

import importlib

import pytest

from dfijax import invert as inv
from dfijax import losses
from dfijax.dfi import presets
from dfijax.reconstruct import ReconstructConfig
from dfijax.style import gatys


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, "x"])
def test_configs_refuse_bad_weights(bad):
    for make, name in (
        (lambda: inv.FeatureLoss(taps=("relu1_1",), tv_weight=bad), "tv_weight"),
        (lambda: inv.FeatureLoss(taps=("relu1_1",), layer_weights=(bad,)), "layer weight 0"),
        (lambda: ReconstructConfig(tv_weight=bad), "tv_weight"),
        (lambda: presets.preset("dfijax", tv_weight=bad), "tv_weight"),
        (lambda: presets.preset("official", ftol=bad), "ftol"),
        (lambda: gatys.style_config("quick", content_weight=bad), "content_weight"),
        (lambda: gatys.StyleLoss(tv_weight=bad), "tv_weight"),
    ):
        with pytest.raises(ValueError, match=f"^{name} must be a finite number >= 0, got "):
            make()
    losses.check_weights(tv=0.0, other=None, third=2)  # zero, unset and ints are fine


@pytest.mark.parametrize(
    "module, args, name",
    [
        ("invert_features", ["--tv", "nan"], "tv_weight"),
        ("alpha_sweep", ["--tv", "inf"], "tv_weight"),
        ("style_transfer", ["--tv", "-1"], "tv_weight"),
        ("style_transfer", ["--content-weight", "nan"], "content_weight"),
    ],
)
def test_commands_refuse_bad_weights_before_any_work(module, args, name, tmp_path, capsys):
    out = tmp_path / "out"
    assert importlib.import_module(f"experiments.{module}").main(args + ["--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {name} must be a finite number >= 0") and not out.exists()
