"""Nothing a user types disappears by accident: every experiment's --help option set, compared with the
list committed in tests/cli_options.json (regenerate it on purpose with
`python -m tests.test_cli_options --write` when an option is meant to go or come)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAVED = ROOT / "tests" / "cli_options.json"
NOT_EXPERIMENTS = {"__init__", "common", "report", "runner"}


def experiments() -> list[str]:
    return sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem not in NOT_EXPERIMENTS)


def help_options(name: str) -> list[str]:
    """The long options `python -m experiments.<name> --help` lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        importlib.import_module(f"experiments.{name}").parse(["--help"])
    text = out.getvalue()
    usage_and_options = text.split("options:", 1)[-1] if "options:" in text else text
    return sorted(set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", usage_and_options)))


def current() -> dict[str, list[str]]:
    return {name: help_options(name) for name in experiments()}


def test_every_experiment_keeps_its_options():
    saved = json.loads(SAVED.read_text())
    now = current()
    assert sorted(now) == sorted(saved), f"experiments added or gone: {sorted(set(now) ^ set(saved))}"
    for name, options in saved.items():
        gone = sorted(set(options) - set(now[name]))
        assert not gone, f"experiments.{name} lost {gone}"
        assert "--help" in now[name] and len(now[name]) >= len(options)


if __name__ == "__main__" and "--write" in sys.argv:
    SAVED.write_text(json.dumps(current(), indent=1) + "\n")
    print(f"wrote {SAVED}")
