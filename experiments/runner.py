"""One runner for every experiment (as scenic's `app.run(main)`).

An experiment module declares its settings as a frozen dataclass: the system's library config in the
field `config` (its fields become flags, with their help) plus the run's own settings (data, inputs,
`--out`), and a `run(args, ctx) -> Outputs`. `Experiment(...).main(argv)` does the rest, once for all:
the command line generated from the dataclasses (tyro; `--preset NAME` or `--config run/config.json`
to start from, every flag given over it; a bad flag or value is one `error:` line before any work),
the `--out` check, joining a multi-process job (a `processes` field; only process 0 speaks and writes),
the compilation cache, device summary and weights notice, one `error:` line for the library's errors
(no folder left behind), then config.json, results.json, report.html and the final "wrote …" line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import pathlib
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import tyro

from dfijax import config as cfglib
from dfijax import report, runtime
from dfijax.progress import Bars  # noqa: F401  (the experiments')
from dfijax.runtime import cache_dir, cache_root, check_out, out_dir  # noqa: F401  (the experiments')
from dfijax.weights import VGGWeights, load_vgg

# the system config's fields are flags of their own name, without a "config." prefix
FLAT = tyro.conf.arg(name="")


@dataclasses.dataclass(frozen=True)
class Processes:
    """The multi-controller flags of a multi-host experiment (dfijax.distributed.initialize); none given:
    detected (Cloud TPU pod slices, SLURM, Open MPI, JAX_* variables) or alone."""

    coordinator: str | None = None
    """HOST:PORT of process 0 (multi-process runs without auto-detection)"""
    num_processes: int | None = None
    """processes in the job"""
    process_id: int | None = None
    """this process's id in [0, num-processes)"""


class UsageError(ValueError):
    """A command line that does not parse (printed as one `error:` line)."""


@dataclasses.dataclass
class Outputs:
    """What a run hands back to the runner: the report's title and sections (report.write_report),
    its own results (merged into results.json), the data and timings it used, the files the final
    line names, and lines printed before it (the run's numbers)."""

    title: str
    results: dict[str, Any]
    sections: list[dict[str, Any]]
    files: Sequence[str] = ("grid.png",)
    results_file: str = "results.json"
    device: str | None = None  # the report's device line, when it says more than the device summary
    weights: str | None = None  # the report's weights line, for a run without VGG weights (default "none")
    data: str | None = None
    seconds: Mapping[str, float] | None = None
    summary: Sequence[str] = ()
    config: Any = None  # the config the run resolved, when it differs from args.config


@dataclasses.dataclass
class Context:
    """The run's surroundings: its name, device summary, output folder (made on demand, after the
    inputs were checked) and the weights it loaded."""

    name: str
    device: str
    out_arg: str | None
    proc: Any = None  # dfijax.distributed.ProcessInfo of a multi-process experiment
    weights: Any = None
    _out: pathlib.Path | None = None

    @property
    def main_proc(self) -> bool:
        """Whether this process writes the files and speaks (process 0, or the only one)."""
        return self.proc is None or self.proc.index == 0

    def out(self) -> pathlib.Path:
        if self._out is None:
            self._out = out_dir(self.out_arg, self.name) if self.main_proc else pathlib.Path(self.out_arg)
        return self._out.absolute()

    def load_weights(self, path: str | None, seed: int = 0, depth: int | None = 19) -> Any:
        """The VGG weights, announced (by process 0 only)."""
        with contextlib.nullcontext() if self.main_proc else contextlib.redirect_stderr(io.StringIO()):
            self.weights = _load_weights(path, seed, depth)
        return self.weights

    def say(self, line: str) -> None:
        if self.main_proc:
            print(line, file=sys.stderr, flush=True)


# the library's errors a run reports in one line (DataError and ImageError are ValueErrors)
ERRORS = (ValueError, FileNotFoundError)


def _one_line(text: str) -> str:
    """tyro's parse error as one line: its message, without the title, help excerpt or borders (boxed
    on a terminal; plain, title first, when written elsewhere)."""
    segments: list[list[str]] = [[]]
    for raw in text.splitlines():
        if raw.strip()[:1] in ("╭", "╰", "+"):
            continue
        line = raw.strip().strip("│|").strip()
        if line and set(line) <= set("─- "):
            segments.append([])
        elif line:
            segments[-1].append(line)
    segments = [s for s in segments if s]
    if len(segments) > 1 and not text.lstrip().startswith(("╭", "+")):
        segments = segments[1:]  # the plain form's title
    return re.sub(r"\s+", " ", " ".join(segments[0])) if segments else "bad command line (see --help)"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """name: the runs/<name> folder and results' "experiment"; args: the settings dataclass (its
    `config` field holds the system config; optional `preset` and `saved_config` fields name a preset
    and a saved run to start from); run(args, ctx) -> Outputs; presets: {name: {field: value}} of the
    config class; doc: the --help description; resolve(args, given) -> args: a last step over the
    parsed settings, `given` the flags typed (for flags that stand for several fields)."""

    name: str
    args: type
    run: Callable[[Any, Context], Outputs]
    doc: str = ""
    presets: Mapping[str, Mapping[str, Any]] | None = None
    resolve: Callable[[Any, set[str]], Any] | None = None

    def entry_points(self) -> tuple[Callable[..., int], Callable[..., Any]]:
        """(main, parse) for the experiment module."""
        return self.main, self.parse

    def config_class(self) -> type:
        hint = typing.get_type_hints(self.args)["config"]
        return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint

    def defaults(self, argv: Sequence[str]) -> Any:
        """The settings before the flags: the class defaults, the config from --preset or --config. A
        config class whose PRESET_FIELD names another field is given its preset by that field's flag
        (e.g. --scale), and its `preset` field, if any, is an ordinary setting."""
        cls = self.config_class()
        key = getattr(cls, "PRESET_FIELD", "preset")
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument(f"--{key.replace('_', '-')}", dest="preset")
        pre.add_argument("--config")
        known, _ = pre.parse_known_args(list(argv))
        fields = {f.name: f for f in dataclasses.fields(self.args)}
        over: dict[str, Any] = {}
        if known.config and "saved_config" in fields:
            base = cfglib.from_dict(cls, report.load_config(known.config))
            over["saved_config"] = known.config
        elif self.presets is not None:
            where = fields if key in fields else {f.name: f for f in dataclasses.fields(cls)}
            name = known.preset or where[key].default
            base = cfglib.preset(cls, self.presets, name)
        else:
            base = cls()
        if known.preset and key in fields:
            over[key] = known.preset
        return self.args(config=base, **over)

    def parse(self, argv: Sequence[str] | None = None) -> Any:
        argv = list(sys.argv[1:] if argv is None else argv)
        default = self.defaults(argv)
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                args = tyro.cli(
                    self.args,
                    args=argv,
                    default=default,
                    description=self.doc,
                    prog=f"python -m experiments.{self.name}",
                )
        except SystemExit as e:
            if e.code in (0, None):
                raise
            raise UsageError(_one_line(err.getvalue())) from None
        if self.resolve is not None:
            args = self.resolve(args, {a.split("=")[0] for a in argv if a.startswith("--")})
        cfglib.check(args)  # the run's own settings (the config checked itself)
        return args

    def main(self, argv: Sequence[str] | None = None) -> int:
        try:
            args = self.parse(argv)
            check_out(getattr(args, "out", None))
            proc = None
            if isinstance(p := getattr(args, "processes", None), Processes):
                from dfijax import distributed

                proc = distributed.initialize(p.coordinator, p.num_processes, p.process_id)
        except ERRORS as e:
            return fail(e)
        ctx = Context(self.name, setup(), getattr(args, "out", None), proc)
        try:
            outputs = self.run(args, ctx)
        except ERRORS as e:
            return fail(e)
        if outputs is not None and ctx.main_proc:
            self.write(ctx, args, outputs)
        return 0

    def write(self, ctx: Context, args: Any, o: Outputs) -> None:
        out = ctx.out()
        cfg = cfglib.to_dict(o.config if o.config is not None else args.config)
        w = ctx.weights
        settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.name != "config"}
        base = {"experiment": self.name, "config": cfg, "settings": settings, "device": ctx.device}
        if w is not None:
            base.update(weights=w.description, weights_pretrained=w.pretrained, weights_meta=w.meta)
        if o.data is not None:
            base["data"] = o.data
        report.write_json(out / o.results_file, {**base, **o.results})
        report.save_config(out, cfg)
        report.write_report(
            out / "report.html",
            o.title,
            weights=w.description if w is not None else o.weights or "none",
            pretrained=w.pretrained if w is not None else True,
            device=o.device or ctx.device,
            data=o.data,
            seconds=o.seconds,
            config=cfg,
            sections=o.sections,
        )
        for line in o.summary:
            print(line, file=sys.stderr)
        named = [str(out / f) for f in o.files] + [str(out / "report.html")]
        print(f"wrote {', '.join(named)} and {out / o.results_file}")


def _load_weights(path: str | None, seed: int = 0, depth: int | None = 19) -> VGGWeights:
    """Load weights and say plainly what they are (a random net is announced, never hidden).
    depth: the VGG the caller builds (None: whatever `path` holds; VGG-19 when no path)."""
    w = load_vgg(path, depth=depth, seed=seed)
    note = "" if w.pretrained else "  <-- NOTICE: results show what the method does, not what trained features give"
    print(f"weights: {w.description}{note}", file=sys.stderr)
    return w


def setup() -> str:
    """Persistent compilation cache on; returns a device summary."""
    runtime.enable_compilation_cache()
    return runtime.device_summary()


def fail(e: BaseException) -> int:
    """One `error:` line (the message's first) and the exit status 1."""
    print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
    return 1
