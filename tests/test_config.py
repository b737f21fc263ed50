"""Settings declared once (dfijax.config) and the command lines generated from them (experiments.runner)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Annotated, ClassVar, Literal

import pytest

from dfijax import config
from experiments import runner


@dataclasses.dataclass(frozen=True)
class Toy:
    RENAMED: ClassVar[dict[str, str]] = {"old_rate": "rate"}

    rate: Annotated[float, config.NONNEG, config.flag(aliases=("--r",))] = 0.5
    """a learning rate"""
    steps: Annotated[int, config.POSITIVE] = 10
    """how many steps"""
    mode: Literal["a", "b"] = "a"
    """which mode"""
    scales: Annotated[tuple[float, ...], config.comma_list(float), config.Bounds(gt=0)] = (1.0,)
    """multipliers"""
    cap: Annotated[int | None, config.Bounds(ge=2, le=8)] = None
    """an optional cap"""
    fast: bool = True
    """go fast"""

    def __post_init__(self):
        config.freeze_tuples(self)
        config.check(self)


PRESETS = config.registry(config.Preset("small", Toy(steps=3)), config.Preset("big", Toy(steps=300, mode="b")))


@dataclasses.dataclass(frozen=True)
class Args:
    config: Annotated[Toy, runner.FLAT] = Toy()
    preset: Literal[tuple(PRESETS)] = "small"
    """named settings"""
    out: str | None = None
    """output folder"""


def _run(args, ctx):
    return None


TOY = runner.Experiment("toy", Args, _run, "A toy experiment.", PRESETS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rate=float("nan")), "rate must be a finite number >= 0, got nan"),
        (dict(rate=-1.0), "rate must be a finite number >= 0, got -1.0"),
        (dict(rate="x"), "rate must be a finite number >= 0, got 'x'"),
        (dict(steps=0), "steps must be an integer >= 1, got 0"),
        (dict(steps=2.5), "steps must be an integer >= 1, got 2.5"),
        (dict(mode="c"), "mode must be one of a, b; got 'c'"),
        (dict(scales=(1.0, 0.0)), "scales[1] must be a finite number > 0, got 0.0"),
        (dict(cap=9), "cap must be an integer >= 2 and <= 8, got 9"),
        (dict(fast="yes"), "fast must be true or false, got 'yes'"),
    ],
)
def test_check_refuses_values_outside_the_declaration(kwargs, message):
    with pytest.raises(ValueError) as e:
        Toy(**kwargs)
    assert str(e.value) == message


def test_round_trip_renamed_fields_and_presets():
    t = Toy(rate=0.1, scales=[2.0, 3.0], cap=4)
    assert t.scales == (2.0, 3.0)  # lists frozen into tuples
    assert config.from_dict(Toy, config.to_dict(t)) == t
    assert config.from_dict(Toy, {"old_rate": 0.25}).rate == 0.25  # a saved config from before the rename
    with pytest.raises(ValueError, match="settings speed are not fields of Toy"):
        config.from_dict(Toy, {"speed": 1})
    assert config.preset(Toy, PRESETS, "big", steps=None, rate=0.2) == Toy(steps=300, mode="b", rate=0.2)
    with pytest.raises(ValueError, match="unknown preset 'huge'; use one of small, big"):
        config.preset(Toy, PRESETS, "huge")


@dataclasses.dataclass(frozen=True)
class Outer:
    RENAMED: ClassVar[dict[str, str]] = {"old_rate": "rate"}

    toy: Annotated[Toy, config.FLAT] = Toy()
    size: int = 4


def test_nested_configs_keep_flat_names_and_read_the_flat_layout():
    from dfijax import training

    o = Outer(Toy(steps=5), size=8)
    assert config.leaves(Outer)["steps"] == ("toy", "steps") and config.leaves(o) == config.leaves(Outer)
    assert config.replace(o, steps=6, size=9, rate=0.4) == Outer(Toy(steps=6, rate=0.4), size=9)
    assert config.changed(o, config.replace(o, steps=6)) == ("steps",)
    flat = {"old_rate": 0.25, "steps": 5, "size": 8, "cap": 4}  # saved before the nesting (and the rename)
    assert config.from_dict(Outer, flat) == Outer(Toy(rate=0.25, steps=5, cap=4), size=8)
    assert config.from_dict(Outer, config.to_dict(o)) == o
    assert training.config_diff(flat, config.replace(o, rate=0.25, cap=4)) == []
    assert training.config_diff(flat, config.replace(o, rate=0.25, cap=4, steps=7)) == ["steps 5 (now 7)"]


def test_the_command_line_is_generated_from_the_fields():
    assert TOY.parse([]).config == Toy(steps=3)  # the default preset
    a = TOY.parse(["--preset", "big", "--r", "0.3", "--scales", "1,2.5", "--no-fast", "--cap", "4"])
    assert a.config == Toy(rate=0.3, steps=300, mode="b", scales=(1.0, 2.5), cap=4, fast=False)
    assert a.preset == "big" and TOY.parse(["--preset", "big", "--steps", "7"]).config.steps == 7
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), pytest.raises(SystemExit):
        TOY.parse(["--help"])
    text = " ".join(help_text.getvalue().split())
    for flag, help_line in (("--rate", "a learning rate"), ("--steps", "how many steps"), ("--cap", "an optional cap")):
        assert flag in text and help_line in text
    assert "--r " in text and "--no-fast" in text and "(default: 3)" in text  # the preset's value is the default


def test_a_value_the_config_refuses_is_one_line(capsys):
    assert TOY.main(["--steps", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: steps must be an integer >= 1, got 0"], err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mode", "c"], "invalid choice 'c' for argument '--mode'"),
        (["--scales", "1,x"], "'1,x' is not a list of finite numbers separated by ','"),
        (["--bogus"], "--bogus"),
        (["--preset", "huge"], "invalid choice 'huge' for argument '--preset'"),
    ],
)
def test_flags_tyro_cannot_read_get_tyros_own_message(argv, message, capsys):
    """Exit status 2 (tyro's, before any work) and tyro's message naming the flag."""
    assert TOY.main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err, err


def test_presets_are_typed_instances_in_one_registry():
    from dfijax.dfi import SweepConfig, presets

    assert all(type(c) is SweepConfig for c in presets.PRESETS.values())
    off = presets.PRESETS["official"]
    assert presets.preset("official", iters=20, tv_weight=None) == dataclasses.replace(
        off, solve=dataclasses.replace(off.solve, iters=20)
    )  # overrides by command-line name, into their group; None keeps the preset's
    with pytest.raises(ValueError, match="preset 'a' is defined twice"):
        config.registry(config.Preset("a", SweepConfig()), config.Preset("a", SweepConfig(size=48)))
    with pytest.raises(ValueError, match="must be a config instance"):
        config.registry(config.Preset("a", {"k": 3}))
    with pytest.raises(ValueError, match="not settings of SweepConfig"):
        presets.preset("tiny", kk=3)
    # a config that records its preset's name must record this one; the names are the declared ones
    from dfijax.reconstruct import PRESET_NAMES, RECONSTRUCT_PRESETS, ReconstructConfig

    assert tuple(RECONSTRUCT_PRESETS) == PRESET_NAMES and all(c.preset == n for n, c in RECONSTRUCT_PRESETS.items())
    with pytest.raises(ValueError, match="preset 'paper' holds a config whose preset field says 'quick'"):
        config.registry(config.Preset("paper", ReconstructConfig()))
    with pytest.raises(ValueError, match=r"presets \('quick',\) are not the declared \('quick', 'paper'\)"):
        config.registry(config.Preset("quick", ReconstructConfig()), names=("quick", "paper"))
