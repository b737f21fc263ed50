"""One runner for every experiment (as scenic's `app.run(main)`). An experiment is a frozen settings
dataclass (the system's config in `config`, its fields flags, beside the run's own settings) and a
`run(args, ctx) -> Outputs`. `Experiment(...).main(argv)`: tyro reads the command line twice (the preset
or saved config, then every flag over it; a flag it cannot read is its own message), a refused value or
a library error is one `error:` line before any folder is made; then config.json, results.json,
report.html and the "wrote …" line (process 0 of a multi-process job speaks and writes)."""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tyro

from dfijax import config, distributed, report, runtime
from dfijax.report import Outputs
from dfijax.runtime import check_out, out_dir
from dfijax.weights import load_vgg

FLAT = config.FLAT  # the system config's fields are flags of their own name
ERRORS = (ValueError, FileNotFoundError)  # the library's errors a run reports in one line


@dataclasses.dataclass(frozen=True)
class Processes:
    """The multi-controller flags (dfijax.distributed.initialize); none given: detected, or alone."""

    coordinator: str | None = None
    """HOST:PORT of process 0 (multi-process runs without auto-detection)"""
    num_processes: int | None = None
    """processes in the job"""
    process_id: int | None = None
    """this process's id in [0, num-processes)"""


@dataclasses.dataclass
class Context:
    """A run's surroundings: name, device summary, output folder (made on demand), process, weights."""

    name: str
    device: str
    out_arg: str | None
    proc: Any = None  # dfijax.distributed.ProcessInfo of a multi-process experiment
    weights: Any = None
    _out: pathlib.Path | None = None

    main_proc = property(lambda self: self.proc is None or self.proc.index == 0)

    def out(self) -> pathlib.Path:
        if self._out is None:
            self._out = out_dir(self.out_arg, self.name) if self.main_proc else pathlib.Path(self.out_arg)
        return self._out.absolute()

    def load_weights(self, path: str | None, seed: int = 0, depth: int | None = 19) -> Any:
        """The VGG weights (depth None: what the file holds), announced by process 0; a random net says so."""
        self.weights = load_vgg(path, depth=depth, seed=seed)
        note = "  <-- NOTICE: results show what the method does, not what trained features give"
        note = "" if self.weights.pretrained else note
        self.say(f"weights: {self.weights.description}{note}")
        return self.weights

    def say(self, line: str) -> None:
        if self.main_proc:
            print(line, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """name: runs/<name> and results' "experiment"; args: the settings dataclass; run(args, ctx);
    presets: the config class's registry ({name: config}); preset_field: the field (of args or of the
    config) naming the preset; resolve(args, start): a last step, `start` the config the flags were
    given over (what differs from it was given)."""

    name: str
    args: type
    run: Callable[[Any, Context], Outputs | None]
    doc: str = ""
    presets: Mapping[str, Any] | None = None
    resolve: Callable[[Any, Any], Any] | None = None
    preset_field: str = "preset"

    def entry_points(self) -> tuple[Callable[..., int], Callable[..., Any]]:
        return self.main, self.parse

    def start(self, argv: Sequence[str]) -> Any:
        """The settings the flags are given over: --config's saved config, else the named preset."""
        cls = typing.get_args(typing.get_type_hints(self.args, include_extras=True)["config"])[0]
        k, own = self.preset_field, self.args.__dataclass_fields__
        wanted = {k: self.args if k in own else cls} if self.presets is not None else {}
        wanted |= {"saved_config": self.args} if "saved_config" in own else {}
        hint = lambda c, n: typing.get_type_hints(c, include_extras=True)[n]
        fields = [
            (n, hint(c, n), dataclasses.field(default=c.__dataclass_fields__[n].default)) for n, c in wanted.items()
        ]
        pre = dataclasses.make_dataclass("Start", fields, frozen=True)
        start, _ = tyro.cli(pre, args=list(argv), return_unknown_args=True, add_help=False, prog=self.prog)
        if getattr(start, "saved_config", None):
            return self.args(config=config.from_dict(cls, report.load_config(start.saved_config)))
        if self.presets is None:
            return self.args()
        return self.args(config=self.presets[getattr(start, k)], **({k: getattr(start, k)} if k in own else {}))

    prog = property(lambda self: f"python -m experiments.{self.name}")

    def parse(self, argv: Sequence[str] | None = None) -> Any:
        argv = list(sys.argv[1:] if argv is None else argv)
        start = self.start(argv)
        args = tyro.cli(self.args, args=argv, default=start, description=self.doc, prog=self.prog)
        if self.resolve is not None:
            args = self.resolve(args, start.config)
        config.check(args)
        return args

    def main(self, argv: Sequence[str] | None = None) -> int:
        try:
            args = self.parse(argv)
        except SystemExit as e:  # tyro's --help (0) or its own message on a flag it cannot read (2)
            return int(e.code or 0)
        except ERRORS as e:
            return _fail(e)
        try:
            check_out(getattr(args, "out", None))
            p = getattr(args, "processes", None)
            proc = distributed.initialize(p.coordinator, p.num_processes, p.process_id) if p is not None else None
            runtime.enable_compilation_cache()
            ctx = Context(self.name, runtime.device_summary(), getattr(args, "out", None), proc)
            if (o := self.run(args, ctx)) is not None and ctx.main_proc:
                self.write(ctx, args, o)
        except ERRORS as e:
            return _fail(e)
        return 0

    def write(self, ctx: Context, args: Any, o: Outputs) -> None:
        cfg = config.to_dict(o.config if o.config is not None else args.config)
        settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.name != "config"}
        head = {"experiment": self.name, "config": cfg, "settings": settings, "device": ctx.device}
        report.write_run(out := ctx.out(), o, head, ctx.weights)
        for line in o.summary:
            print(line, file=sys.stderr)
        print(f"wrote {', '.join(str(out / f) for f in (*o.files, 'report.html'))} and {out / o.results_file}")


def _fail(e: BaseException) -> int:
    print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
    return 1
