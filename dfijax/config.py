"""Settings declared once: a frozen dataclass field, its type, its bounds and its help.

A system's config is a frozen dataclass. Each field says everything about one setting: its type
(`Literal[...]` for a choice, `X | None` for an optional one), its bounds (`Annotated[float,
Bounds(ge=0)]`), its CLI spelling where it differs from the field's name (`flag(...)`), and its help, in
the docstring under it. `check(config)` (called from `__post_init__`) refuses any value outside them
with one line naming the field, so a notebook, a command and the studio refuse the same values alike;
the experiments' command lines are generated from the same fields (tyro), so a new setting is one field.
`to_dict` / `from_dict` round-trip any config through JSON. A system's presets are typed config
instances in one registry (`registry(Preset(name, config, doc), ...)`, names checked unique, as openpi
keeps its `_CONFIGS`), each written out or derived from another with `dataclasses.replace`;
`preset(cls, table, name, **overrides)` gives one with fields overridden. (Tables of field dicts, the
older form, are still read while the systems move over.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import tyro


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Numeric bounds of a field (None: unbounded); floats are also required to be finite."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def text(self) -> str:
        parts = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else ""]
        parts.append(f"<= {self.le:g}" if self.le is not None else "")
        return " and ".join(p for p in parts if p)

    def holds(self, v: float) -> bool:
        return (
            (self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt) and (self.le is None or v <= self.le)
        )


FLAT = tyro.conf.arg(name="")  # a nested config whose fields are flags of their own name (no "outer." prefix)
NONNEG = Bounds(ge=0)
POSITIVE = Bounds(ge=1)


def flag(name: str | None = None, aliases: tuple[str, ...] = ()) -> Any:
    """A field's command-line spelling: `name` replaces the field's name, `aliases` add spellings."""
    return tyro.conf.arg(name=name, aliases=aliases or None)


def comma_list(
    item: Callable[[str], Any], sep: str = ",", metavar: str = "A,B,...", fmt: Callable[[Any], str] = str
) -> Any:
    """A tuple field typed on the command line as one word, items separated by `sep` ('0.1,0.3');
    `item` reads one item, `fmt` writes one (for the help's default)."""

    noun = {float: "numbers", int: "integers", str: "names"}.get(item, metavar)

    def parse(args: list[str]) -> tuple:
        try:
            values = tuple(item(x.strip()) for x in args[0].split(sep) if x.strip())
        except (TypeError, ValueError):
            values = None
        if values is None or (item is float and not all(math.isfinite(v) for v in values)):
            raise ValueError(f"{args[0]!r} is not a list of {'finite ' * (item is float)}{noun} separated by {sep!r}")
        return values

    return tyro.constructors.PrimitiveConstructorSpec(
        nargs=1,
        metavar=metavar,
        instance_from_str=parse,
        is_instance=lambda x: isinstance(x, tuple),
        str_from_instance=lambda x: ["None" if x is None else sep.join(fmt(v) for v in x)],
    )


def _split(hint: Any) -> tuple[Any, tuple]:
    if typing.get_origin(hint) is typing.Annotated:
        return hint.__origin__, hint.__metadata__
    return hint, ()


def _options(t: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), len(args) < len(typing.get_args(t))
    return t, False


def _check_value(name: str, t: Any, bounds: Bounds | None, v: Any) -> None:
    t, optional = _options(t)
    t = _split(t)[0]
    if v is None:
        if not optional:
            raise ValueError(f"{name} must be set, got None")
        return
    origin = typing.get_origin(t)
    if origin is Literal:
        choices = typing.get_args(t)
        if v not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {v!r}")
    elif origin is tuple and isinstance(v, tuple):
        args = typing.get_args(t)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        for i, x in enumerate(v):
            _check_value(f"{name}[{i}]", item if item is not None else args[i], bounds, x)
    elif t is float or t is int:
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        need = f" {bounds.text()}" if bounds is not None and bounds.text() else ""
        if t is int and not (number and float(v).is_integer()):
            raise ValueError(f"{name} must be an integer{need}, got {v!r}")
        if not number or not math.isfinite(v) or (bounds is not None and not bounds.holds(v)):
            raise ValueError(f"{name} must be {'an integer' if t is int else 'a finite number'}{need}, got {v!r}")
    elif t is bool and not isinstance(v, bool):
        raise ValueError(f"{name} must be true or false, got {v!r}")
    elif t is str and not isinstance(v, str):
        raise ValueError(f"{name} must be text, got {v!r}")


def check(config: Any) -> None:
    """A one-line ValueError for the first field of `config` outside its type, choices or bounds, naming
    the setting as it is typed (its command-line name)."""
    hints = typing.get_type_hints(type(config), include_extras=True)
    for f in dataclasses.fields(config):
        t, meta = _split(hints[f.name])
        bounds = next((m for m in meta if isinstance(m, Bounds)), None)
        v = getattr(config, f.name)
        if dataclasses.is_dataclass(v):
            continue
        _check_value(_flag_name(f, hints[f.name]), t, bounds, v)


def freeze_tuples(config: Any) -> None:
    """Lists given to tuple fields become tuples (a frozen config stays hashable and comparable)."""
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, list):
            object.__setattr__(config, f.name, tuple(v))


def to_dict(config: Any) -> dict[str, Any]:
    """A (nested) dataclass config as plain JSON values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def upgrade(config_cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """A saved dict of `config_cls` in its current layout: the class's own `upgrade(d)` where it has one,
    then settings saved flat moved into their nested configs (`nest`)."""
    return nest(config_cls, getattr(config_cls, "upgrade", dict)(dict(d)))


def from_dict(config_cls: type, d: Mapping[str, Any]) -> Any:
    """The inverse of to_dict: nested dataclasses rebuilt, lists turned back into tuples, older layouts
    read (`upgrade`), names a config has renamed (its RENAMED table: {old: new}) read under the new name;
    keys the class lacks are a one-line ValueError."""
    hints = typing.get_type_hints(config_cls)
    d = upgrade(config_cls, d)
    renamed = getattr(config_cls, "RENAMED", {})
    d = {renamed.get(k, k): v for k, v in d.items()}
    names = {f.name for f in dataclasses.fields(config_cls)}
    if unknown := sorted(set(d) - names):
        raise ValueError(
            f"settings {', '.join(unknown)} are not fields of {config_cls.__name__} (written by another version?)"
        )

    def value(t: Any, v: Any) -> Any:
        t = _options(t)[0] if t is not None else None
        if isinstance(v, dict) and dataclasses.is_dataclass(t):
            return from_dict(t, v)
        if isinstance(v, list):
            return tuple(value(None, x) for x in v)
        return v

    return config_cls(**{k: value(hints.get(k), v) for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named config instance and what it is (the reference code it follows, or what it is for)."""

    name: str
    config: Any
    doc: str = ""


def registry(*presets: Preset, field: str = "preset", names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """{name: config} of the presets, in order; a ValueError when two share a name, a config is not a
    dataclass instance, a config's own `field` (where it has one) names another preset, or the names
    are not `names` (the tuple that field's `Literal[...]` was declared with)."""
    seen: dict[str, Any] = {}
    for p in presets:
        if p.name in seen:
            raise ValueError(f"preset {p.name!r} is defined twice")
        if not dataclasses.is_dataclass(p.config) or isinstance(p.config, type):
            raise ValueError(f"preset {p.name!r} must be a config instance, got {type(p.config).__name__}")
        if getattr(p.config, field, p.name) != p.name:
            raise ValueError(f"preset {p.name!r} holds a config whose {field} field says {getattr(p.config, field)!r}")
        seen[p.name] = p.config
    if names is not None and tuple(seen) != tuple(names):
        raise ValueError(f"presets {tuple(seen)} are not the declared {tuple(names)}")
    return seen


def _flag_name(f: dataclasses.Field, hint: Any) -> str:
    """A field's name on the command line, with "_" for "-" (its flag(...) name, else its own)."""
    meta = typing.get_args(hint)[1:] if typing.get_origin(hint) is typing.Annotated else ()
    named = [m.name for m in meta if isinstance(m, tyro.conf._confstruct._ArgConfig) and m.name]
    return named[0].replace("-", "_") if named else f.name


def _nested(t: Any) -> bool:
    return dataclasses.is_dataclass(_split(t)[0])


def leaves(config: Any) -> dict[str, tuple[str, ...]]:
    """{command-line name: field path} of every setting of `config` (a config or its class), nested FLAT
    configs' fields by their own names (`flag` names where given): what a flag or a keyword override names."""
    cls = config if isinstance(config, type) else type(config)
    out: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        t, meta = _split(hints[f.name])
        if dataclasses.is_dataclass(t) and FLAT in meta:
            out |= {k: (f.name, *p) for k, p in leaves(t).items()}
        else:
            out[_flag_name(f, hints[f.name])] = (f.name,)
    return out


def get(config: Any, path: tuple[str, ...]) -> Any:
    """The setting at field path `path` of `config` (`leaves` gives the paths)."""
    for name in path:
        config = getattr(config, name)
    return config


def _paths(config: Any) -> dict[str, tuple[str, ...]]:  # a config or its class
    """`leaves`, and every field also by its own name where that names nothing else."""
    out = dict(leaves(config))
    for name, path in list(out.items()):
        out.setdefault(path[-1], path)
    return out


def replace(config: Any, **values: Any) -> Any:
    """`config` with settings replaced by their command-line or field names (`leaves`), nested ones
    included."""
    names = _paths(config)
    if bad := sorted(set(values) - set(names)):
        raise ValueError(f"{', '.join(bad)}: not settings of {type(config).__name__}")
    top = {names[k][0]: v for k, v in values.items() if len(names[k]) == 1}
    inner: dict[str, dict[str, Any]] = {}
    for k, v in values.items():
        if len(names[k]) > 1:
            inner.setdefault(names[k][0], {})[names[k][-1]] = v
    top |= {field: replace(getattr(config, field), **kw) for field, kw in inner.items()}
    return dataclasses.replace(config, **top)


def nest(config_cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """A saved dict of `config_cls` in its nested layout, where `d` may hold nested settings flat at the
    top under their command-line or field names (an older layout; its RENAMED names read too)."""
    hints = typing.get_type_hints(config_cls, include_extras=True)
    renamed = getattr(config_cls, "RENAMED", {})
    paths = _paths(config_cls)
    out: dict[str, Any] = {}
    for k, v in d.items():
        k = renamed.get(k, k)
        if k in hints and (not _nested(hints[k]) or isinstance(v, Mapping)):
            path: tuple[str, ...] = (k,)
        else:
            path = paths.get(k, (k,))
        into = out
        for name in path[:-1]:
            into = into.setdefault(name, {})
        if isinstance(v, Mapping) and isinstance(into.get(path[-1]), dict):
            into[path[-1]] |= v
        else:
            into[path[-1]] = v
    return out


def changed(base: Any, new: Any, skip: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The sorted command-line names of the settings where config `new` differs from `base` (what was
    given over it), nested ones included."""
    names = {k: p for k, p in leaves(base).items() if p[0] not in skip}
    return tuple(sorted(k for k, p in names.items() if get(base, p) != get(new, p)))


def preset(config_cls: type, table: Mapping[str, Any], name: str, **overrides: Any) -> Any:
    """Preset `name` of `table` (a `registry` of `config_cls` instances, or {name: {field: value}}) with
    `overrides` (None values are ignored); one-line ValueErrors for an unknown preset or field. A config
    with a `preset` field (or the field its PRESET_FIELD names) records the name."""
    if name not in table:
        raise ValueError(f"unknown preset {name!r}; use one of {', '.join(table)}")
    names = {f.name for f in dataclasses.fields(config_cls)}
    given = {k: v for k, v in overrides.items() if v is not None}
    if dataclasses.is_dataclass(table[name]):
        if not isinstance(table[name], config_cls):
            raise ValueError(f"preset {name!r} is a {type(table[name]).__name__}, not a {config_cls.__name__}")
        return replace(table[name], **given)
    if bad := sorted(set(overrides) - names):
        raise ValueError(f"{', '.join(bad)}: not settings of {config_cls.__name__}")
    values = {**table[name], **given}
    field = getattr(config_cls, "PRESET_FIELD", "preset")
    if field in names:
        values.setdefault(field, name)
    return config_cls(**values)
